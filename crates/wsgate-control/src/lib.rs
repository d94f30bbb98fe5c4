//! wsgate's control plane: the publisher's and the developer portal's REST API, and the OAuth2
//! key manager, served over HTTPS on one listener (by default `:9443`, with the gateway's
//! certificate). It writes APIs, plans, users, applications, subscriptions, credentials and
//! signing keys into the store; the gateway reads them from there.
//!
//! Modules, in reading order:
//! - [`error`]: [`ControlError`] for the library's callers, `ApiError` for REST refusals,
//!   each rendered in one place.
//! - `crypto`: random ids and secrets, SHA-256.
//! - `hashing`: argon2id password hashes on a bounded pool of threads.
//! - `throttle`: failed sign-ins counted per account and address, with exponential back-off.
//! - `limits`: what bounds a request before a handler runs (body size and deadline, form
//!   parameters) and the client's address.
//! - `sealing`: signing keys encrypted at rest under a key-encryption key.
//! - `state`: what every handler shares.
//! - [`auth`]: sessions, CSRF tokens, the `Caller` extractor and role checks.
//! - [`keys`]: the key manager: ES256 keys and their rotation, JWT signing and verification,
//!   the JWKS.
//! - [`clients`]: an application's OAuth2 client id and secret.
//! - `scopes`: which scopes an application's tokens may carry (granted, not requested).
//! - `oauth2`: token, revoke, introspect, JWKS and discovery endpoints.
//! - `rest`: the REST API, one module per resource.
//! - [`routes`]: the route table, the one list both the router and the OpenAPI test read.
//! - `portal`: the publisher and developer portal web pages, over the REST handlers.
//! - [`ops`]: `/metrics`, `/healthz`, `/readyz`, on the control listener and optionally their own.
//! - `server`: [`ControlPlane`]: HTTPS accept loop and graceful shutdown.
//! - this file: [`bootstrap`], the first start of an empty store.
//!
//! Invariants: no password, secret or token is stored in clear or logged (a token is logged by
//! its `jti` at most); every REST error is `{"error","message","field"?}`; a user who may not
//! see a record gets 404, never a hint that it exists.

pub mod error;
mod crypto;
mod hashing;
mod throttle;
mod limits;
mod sealing;
mod state;
pub mod auth;
pub mod keys;
pub mod clients;
mod scopes;
mod oauth2;
mod rest;
pub mod routes;
mod portal;
pub mod ops;
mod server;

use wsgate_core::config::ControlSettings;
use wsgate_core::model::{Role, UnixTime, User};
use wsgate_store::{Store, StoreError};

pub use error::ControlError;
pub use keys::{AccessToken, KeyManager};
pub use portal::{GatewayUrls, gateway_url};
pub use server::ControlPlane;

/// The user name `bootstrap` creates.
pub const ADMIN_USER: &str = "admin";

/// Prepares an empty store for its first start: creates the user `admin` (role admin) with
/// `admin_password`, or with a generated password that is returned so the binary can print it
/// once. Also makes sure a signing key exists (sealed as `settings` say), so the JWKS is never
/// empty. Idempotent: a store that has users is left as it is and `Ok(None)` returned.
pub async fn bootstrap(
    store: &dyn Store,
    settings: &ControlSettings,
    admin_password: Option<&str>,
) -> Result<Option<String>, ControlError> {
    keys::ensure_signing_key(
        store,
        i64::try_from(settings.token_ttl.as_secs()).unwrap_or(3600),
        i64::try_from(settings.signing_key_rotation.as_secs()).unwrap_or(86400),
        &sealing::Sealer::from_settings(settings)?,
    )
    .await?;
    if !store.list_users().await?.is_empty() {
        return Ok(None);
    }
    let (password, generated) = match admin_password {
        Some("") => return Err(ControlError::EmptyAdminPassword),
        Some(given) => (given.to_string(), false),
        None => (crypto::secret()?[..24].to_string(), true),
    };
    let admin = User {
        name: ADMIN_USER.to_string(),
        // One hash, once: a pool of one thread, gone when this returns.
        password_hash: hashing::Hasher::start(1)?.hash(password.clone()).await?,
        roles: vec![Role::Admin],
        created_at: now(),
    };
    match store.create_user(&admin).await {
        Ok(()) => {}
        // Another node bootstrapped the same store at the same moment: its admin stands.
        Err(StoreError::Conflict(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    tracing::info!(user = ADMIN_USER, "admin user created");
    Ok(generated.then_some(password))
}

/// The `iss` a node proposes for issued tokens: `control.issuer`, else
/// `https://localhost:<port>`. The one used is [`fixed_issuer`]'s.
pub fn issuer(settings: &ControlSettings, port: u16) -> String {
    settings.issuer.clone().unwrap_or_else(|| format!("https://localhost:{port}"))
}

/// The setting under which the store keeps the issuer.
pub const ISSUER_SETTING: &str = "issuer";

/// The issuer of every node sharing `store`: fixed in the store by the first node that started
/// on it (its `proposed` issuer, see [`issuer`]) and read by every later one, so a token issued
/// through any node is accepted by every node's gateway. A node whose `control.issuer` names
/// another one refuses to start ([`ControlError::IssuerMismatch`]) rather than issue tokens
/// the others refuse.
pub async fn fixed_issuer(
    store: &dyn Store,
    settings: &ControlSettings,
    proposed: &str,
) -> Result<String, ControlError> {
    let stored = store.fix_setting(ISSUER_SETTING, proposed).await?;
    match &settings.issuer {
        Some(configured) if *configured != stored => {
            Err(ControlError::IssuerMismatch { configured: configured.clone(), stored })
        }
        _ => Ok(stored),
    }
}

/// Now, in the store's unit: seconds since the Unix epoch.
pub(crate) fn now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

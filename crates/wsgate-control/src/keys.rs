//! The key manager: ES256 signing keys kept in the store, rotated on a schedule, access tokens
//! signed and verified as compact JWS (RFC 7515/7519) with ring, and the JWKS (RFC 7517) that
//! lets anyone verify them.
//!
//! Rotation: the newest key that may still sign is used; when none may, a new one is made. A
//! key signs for `signing_key_rotation` after its creation, then stays in the JWKS until
//! `retire_at`, and no token it signs expires after `retire_at`, so a published key always
//! outlives every token it signed.
//!
//! Several nodes share the keys, so a new key is made exactly once: the store's
//! [`Store::rotate_signing_key`] checks and writes in one exclusive transaction, and a node
//! that comes second is handed the key the first one made. The node holding the cluster's
//! duties makes the next key [ahead of the edge](KeyManager::pre_rotate), so the others find
//! it instead of racing for it; an admin may [force a rotation](KeyManager::rotate_away_from).
//! Each node caches the key it signs with and drops it when the store's change feed says the
//! keys changed, so a rotation made through one node is followed by all.

use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::{self, error::TryRecvError};
use wsgate_core::config::ControlSettings;
use wsgate_core::model::{SigningKey, UnixTime};
use wsgate_store::{Change, KeyRotation, Store};

use crate::crypto::{self, base64url, from_base64url};
use crate::hashing::Hasher;
use crate::sealing::Sealer;
use crate::{ControlError, clients, now};

/// The `aud` of every access token: the gateway is the one audience.
pub const AUDIENCE: &str = "wsgate";
pub const ALGORITHM: &str = "ES256";

/// A token the key manager signed, with what it says.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The compact JWT. A bearer secret: never log it (log `claims.jti`).
    pub token: String,
    pub claims: Claims,
}

impl AccessToken {
    /// Seconds from issue to expiry, the token endpoint's `expires_in`.
    pub fn expires_in(&self) -> i64 {
        self.claims.exp - self.claims.iat
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The client id, as RFC 9068 has it for client-credentials tokens.
    pub sub: String,
    pub aud: String,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub nbf: UnixTime,
    /// Random; the handle revocation and logs use.
    pub jti: String,
    pub client_id: String,
    pub application_id: String,
    /// Space-separated, possibly empty.
    pub scope: String,
}

/// Why a presented token is not accepted. Facts, for logs and introspection; a client is only
/// ever told "inactive".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejected {
    #[error("not a compact JWS")]
    Malformed,
    #[error("signed with an algorithm other than ES256")]
    WrongAlgorithm,
    #[error("signed by a key that is unknown or retired")]
    UnknownKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("not valid yet")]
    NotYetValid,
    #[error("issued by someone else")]
    WrongIssuer,
    #[error("meant for another audience")]
    WrongAudience,
}

/// How far a verifier's clock may lag the signer's for `nbf` (several nodes, one store).
const CLOCK_SKEW: i64 = 30;

/// Signs and verifies access tokens. A cheap-clone handle; the binary's `demo` holds one too.
#[derive(Clone)]
pub struct KeyManager {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    issuer: String,
    token_ttl: i64,
    rotation: i64,
    /// The key now signing, so that issuing a token reads no key from the store. The lock is
    /// held while a new key is made, so one process asks for one key per rotation.
    current: tokio::sync::Mutex<Cached>,
    /// Hashes the secrets of client credentials made on the way to a token.
    hasher: Hasher,
    /// Encrypts private keys before they are stored (see `sealing`).
    sealer: Sealer,
}

/// The cached key and the feed that says when it may be stale.
struct Cached {
    key: Option<Arc<ActiveKey>>,
    changes: broadcast::Receiver<Change>,
}

impl Cached {
    /// Whether the signing keys changed in the store since the last look (another node rotated
    /// them). A lagging feed may have lost such a change, so it counts as one.
    fn keys_changed(&mut self) -> bool {
        let mut changed = false;
        loop {
            match self.changes.try_recv() {
                Ok(Change::SigningKeys) | Err(TryRecvError::Lagged(_)) => changed = true,
                Ok(_) => {}
                Err(TryRecvError::Empty | TryRecvError::Closed) => return changed,
            }
        }
    }
}

struct ActiveKey {
    kid: String,
    pair: EcdsaKeyPair,
    signs_until: UnixTime,
    retire_at: UnixTime,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManager").field("issuer", &self.inner.issuer).finish_non_exhaustive()
    }
}

impl KeyManager {
    /// `issuer` is the `iss` of the tokens: see [`crate::issuer`].
    pub fn new(
        store: Arc<dyn Store>,
        settings: &ControlSettings,
        issuer: String,
        hasher: Hasher,
        sealer: Sealer,
    ) -> KeyManager {
        KeyManager {
            inner: Arc::new(Inner {
                store: store.clone(),
                issuer,
                token_ttl: secs(settings.token_ttl),
                rotation: secs(settings.signing_key_rotation),
                current: tokio::sync::Mutex::new(Cached { key: None, changes: store.changes() }),
                hasher,
                sealer,
            }),
        }
    }

    /// Run at start: with a key-encryption key, seals every key still stored in plain PKCS#8
    /// and checks that sealed ones open; without one, refuses to go on if any key is sealed
    /// (it could not sign) and warns that keys are stored in plain.
    pub async fn seal_stored_keys(&self) -> Result<(), ControlError> {
        let Inner { store, sealer, .. } = &*self.inner;
        for mut key in store.list_signing_keys().await? {
            let unusable = |problem: String| ControlError::UnusableSigningKey { kid: key.kid.clone(), problem };
            let pkcs8 = sealer.open(&key.kid, &key.private_pkcs8).map_err(|err| unusable(err.to_string()))?;
            if sealer.is_enabled() && !Sealer::is_sealed(&key.private_pkcs8) {
                key.private_pkcs8 = sealer.seal(&key.kid, &pkcs8)?;
                store.put_signing_key(&key).await?;
                tracing::info!(kid = %key.kid, "signing key sealed with the key-encryption key");
            }
        }
        if !sealer.is_enabled() {
            tracing::warn!(
                "signing keys are stored unencrypted: set control.key_encryption_key_file to encrypt them at rest"
            );
        }
        Ok(())
    }

    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Signs a token for an application's client. `scope` is already validated.
    pub async fn issue(&self, client_id: &str, application_id: &str, scope: &str) -> Result<AccessToken, ControlError> {
        let key = self.signing_key().await?;
        let now = now();
        let claims = Claims {
            iss: self.inner.issuer.clone(),
            sub: client_id.to_string(),
            aud: AUDIENCE.to_string(),
            // Never past the key's retirement, so every valid token can be checked in the JWKS.
            exp: (now + self.inner.token_ttl).min(key.retire_at),
            iat: now,
            nbf: now,
            jti: crypto::id()?,
            client_id: client_id.to_string(),
            application_id: application_id.to_string(),
            scope: scope.to_string(),
        };
        let token = sign(&key.kid, &key.pair, &claims)?;
        tracing::info!(jti = %claims.jti, client_id, kid = %key.kid, "access token issued");
        Ok(AccessToken { token, claims })
    }

    /// Signs a token for an application, making its client credentials first when it has
    /// none (the secret of such credentials is never shown; regenerating keys shows one).
    /// This is how the portal wizard, `wsgate token` and `wsgate demo` get a token without
    /// handling a client secret.
    pub async fn issue_for_application(
        &self,
        application_id: &str,
        scope: Option<&str>,
    ) -> Result<AccessToken, ControlError> {
        let store = &*self.inner.store;
        if store.application(application_id).await?.is_none() {
            return Err(ControlError::ApplicationNotFound(application_id.to_string()));
        }
        let client_id = match store.credentials_for_application(application_id).await? {
            Some(credentials) => credentials.client_id,
            None => clients::generate(&self.inner.hasher, store, application_id).await?.client_id,
        };
        self.issue(&client_id, application_id, scope.unwrap_or_default()).await
    }

    /// Checks signature, algorithm, key, times, issuer and audience (not revocation, which
    /// the caller checks against the store).
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let keys = self.inner.store.list_signing_keys().await?;
        Ok(verify_with(token, &keys, &self.inner.issuer, now())?)
    }

    /// Every key not yet retired, for `GET /oauth2/jwks`.
    pub async fn jwks(&self) -> Result<Jwks, ControlError> {
        let now = now();
        let keys = self.inner.store.list_signing_keys().await?;
        Ok(Jwks { keys: keys.iter().filter(|k| k.retire_at > now && k.algorithm == ALGORITHM).map(Jwk::of).collect() })
    }

    /// The key to sign with now: the cached one while it may sign and the store's keys have
    /// not changed, else the newest stored one that may (another node may have made it), else
    /// a new one.
    async fn signing_key(&self) -> Result<Arc<ActiveKey>, ControlError> {
        let mut current = self.inner.current.lock().await;
        let now = now();
        let changed = current.keys_changed();
        if let Some(key) = current.key.as_ref().filter(|key| key.signs_until > now && !changed) {
            return Ok(key.clone());
        }
        let inner = &*self.inner;
        let stored = ensure_signing_key(&*inner.store, inner.token_ttl, inner.rotation, &inner.sealer).await?;
        let key = Arc::new(self.activate(stored)?);
        current.key = Some(key.clone());
        Ok(key)
    }

    /// Opens a stored key for signing.
    fn activate(&self, stored: SigningKey) -> Result<ActiveKey, ControlError> {
        let inner = &*self.inner;
        let unusable = |problem: String| ControlError::UnusableSigningKey { kid: stored.kid.clone(), problem };
        let pkcs8 = inner.sealer.open(&stored.kid, &stored.private_pkcs8).map_err(|err| unusable(err.to_string()))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &SystemRandom::new())
            .map_err(|err| unusable(err.to_string()))?;
        Ok(ActiveKey {
            signs_until: signs_until(&stored, inner.rotation),
            retire_at: stored.retire_at,
            kid: stored.kid,
            pair,
        })
    }

    /// Makes the next key when the current one stops signing within `margin` seconds, so that
    /// no node meets the edge without a key (then every node would ask for one at once; the
    /// store would still make one, but each would wait for it). Run by the node holding the
    /// cluster's duties at every tick; it only reads while a key will still sign then. Returns
    /// the key that signs `margin` seconds from now.
    pub async fn pre_rotate(&self, margin: i64) -> Result<SigningKey, ControlError> {
        let inner = &*self.inner;
        let needed_at = now().saturating_add(margin.clamp(0, inner.rotation / 2));
        ensure_signing_at(&*inner.store, inner.token_ttl, inner.rotation, &inner.sealer, needed_at).await
    }

    /// A forced rotation (`POST /api/v1/signing-keys/rotate`): away from the key `kid`, or
    /// from the one signing now when `None`. The old key stops signing and stays in the JWKS
    /// until it retires, so the tokens it signed keep verifying. Idempotent for the same kid:
    /// when it no longer signs (another request, on any node, rotated it already), nothing is
    /// made and the key signing now is returned. `None` when there is no key `kid`.
    pub async fn rotate_away_from(&self, kid: Option<&str>) -> Result<Option<(SigningKey, UnixTime)>, ControlError> {
        let inner = &*self.inner;
        let now = now();
        let keys = inner.store.list_signing_keys().await?;
        let away_from = match kid {
            Some(kid) => match keys.iter().find(|key| key.kid == kid) {
                Some(key) => Some(key.kid.clone()),
                None => return Ok(None),
            },
            // Nothing signs: a rotation by time makes the key (below).
            None => keys
                .iter()
                .find(|k| k.algorithm == ALGORITHM && signs_until(k, inner.rotation) > now)
                .map(|key| key.kid.clone()),
        };
        let key = match away_from {
            Some(kid) => rotate(&*inner.store, inner.token_ttl, inner.rotation, &inner.sealer, Some(&kid), now).await?,
            None => ensure_signing_key(&*inner.store, inner.token_ttl, inner.rotation, &inner.sealer).await?,
        };
        // This node signs with it from the next token on; others follow the change feed.
        self.inner.current.lock().await.key = None;
        let signs_until = signs_until(&key, inner.rotation);
        Ok(Some((key, signs_until)))
    }

    /// Every stored key, newest first, with the time it signs until under the configured
    /// rotation (the listing for admins; private material stays in the store).
    pub async fn list(&self) -> Result<Vec<(SigningKey, UnixTime)>, ControlError> {
        let keys = self.inner.store.list_signing_keys().await?;
        Ok(keys
            .into_iter()
            .map(|key| {
                let until = signs_until(&key, self.inner.rotation);
                (key, until)
            })
            .collect())
    }
}

/// Why verification could not be completed or failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Rejected(#[from] TokenRejected),
    #[error(transparent)]
    Store(#[from] wsgate_store::StoreError),
}

fn secs(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX / 4)
}

/// Until when a stored key signs. The configured rotation caps the stored `active_until`, so
/// that shortening the rotation in the config applies to a key made before the change.
fn signs_until(key: &SigningKey, rotation: i64) -> UnixTime {
    key.active_until.min(key.created_at.saturating_add(rotation))
}

/// The stored key that signs now, made and stored (sealed by `sealer`) when there is none.
/// Called at bootstrap (so the JWKS is never empty) and whenever the cached key's signing time
/// is over.
pub(crate) async fn ensure_signing_key(
    store: &dyn Store,
    token_ttl: i64,
    rotation: i64,
    sealer: &Sealer,
) -> Result<SigningKey, ControlError> {
    ensure_signing_at(store, token_ttl, rotation, sealer, now()).await
}

/// The newest stored key that signs at `needed_at`, made when there is none.
async fn ensure_signing_at(
    store: &dyn Store,
    token_ttl: i64,
    rotation: i64,
    sealer: &Sealer,
    needed_at: UnixTime,
) -> Result<SigningKey, ControlError> {
    let keys = store.list_signing_keys().await?;
    let signs_then = |k: &SigningKey| k.algorithm == ALGORITHM && signs_until(k, rotation) > needed_at;
    if let Some(key) = keys.into_iter().find(signs_then) {
        return Ok(key);
    }
    rotate(store, token_ttl, rotation, sealer, None, needed_at).await
}

/// Makes a key and hands it to the store's exclusive rotation, which stores it only if no other
/// node got there first (see [`KeyRotation`]); returns the key that signs afterwards.
async fn rotate(
    store: &dyn Store,
    token_ttl: i64,
    rotation: i64,
    sealer: &Sealer,
    away_from: Option<&str>,
    needed_at: UnixTime,
) -> Result<SigningKey, ControlError> {
    let now = now();
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| crypto::CryptoError::RandomUnavailable)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|err| ControlError::UnusableSigningKey { kid: "(new)".into(), problem: err.to_string() })?;
    let public_key = pair.public_key().as_ref().to_vec();
    let active_until = now.saturating_add(rotation);
    let kid = thumbprint(&public_key);
    let key = SigningKey {
        private_pkcs8: sealer.seal(&kid, pkcs8.as_ref())?,
        kid,
        algorithm: ALGORITHM.to_string(),
        public_key,
        created_at: now,
        active_until,
        retire_at: active_until.saturating_add(token_ttl),
    };
    let rotation = KeyRotation { away_from, now, needed_at, period: rotation };
    Ok(store.rotate_signing_key(&key, rotation).await?)
}

/// The `kid`: the key's RFC 7638 JWK thumbprint, so that anyone holding the JWK can recompute
/// it and two keys never share one.
fn thumbprint(public_key: &[u8]) -> String {
    let jwk = Jwk::from_point("", public_key);
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, jwk.x, jwk.y);
    base64url(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

#[derive(Deserialize)]
struct ReadHeader {
    alg: String,
    kid: Option<String>,
}

fn sign(kid: &str, pair: &EcdsaKeyPair, claims: &Claims) -> Result<String, ControlError> {
    // RFC 9068's type for JWT access tokens, so that no resource server can take one of them
    // for another kind of token, nor another kind of token for one of them (RFC 8725 3.11).
    let header = Header { alg: ALGORITHM, typ: "at+jwt", kid };
    let input = format!("{}.{}", encode(&header), encode(claims));
    let signature = pair
        .sign(&SystemRandom::new(), input.as_bytes())
        .map_err(|_| ControlError::Crypto(crypto::CryptoError::RandomUnavailable))?;
    Ok(format!("{input}.{}", base64url(signature.as_ref())))
}

/// A JWS part: base64url of the JSON. Plain structs of strings and integers always serialise.
fn encode<T: Serialize>(value: &T) -> String {
    base64url(&serde_json::to_vec(value).unwrap_or_default())
}

/// Verifies `token` against `keys` (as stored) at time `now`. Public so that any holder of the
/// store's keys (the gateway) checks tokens exactly as the key manager does.
pub fn verify_with(token: &str, keys: &[SigningKey], issuer: &str, now: UnixTime) -> Result<Claims, TokenRejected> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenRejected::Malformed);
    };
    let decode = |part: &str| from_base64url(part).ok_or(TokenRejected::Malformed);
    let head: ReadHeader = serde_json::from_slice(&decode(header)?).map_err(|_| TokenRejected::Malformed)?;
    // The algorithm is fixed, never taken from the token: "none" or HS256 tricks go nowhere.
    if head.alg != ALGORITHM {
        return Err(TokenRejected::WrongAlgorithm);
    }
    let kid = head.kid.ok_or(TokenRejected::UnknownKey)?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid && k.algorithm == ALGORITHM && k.retire_at > now)
        .ok_or(TokenRejected::UnknownKey)?;
    let input_len = header.len() + 1 + payload.len();
    ring::signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &key.public_key)
        .verify(&token.as_bytes()[..input_len], &decode(signature)?)
        .map_err(|_| TokenRejected::BadSignature)?;
    let claims: Claims = serde_json::from_slice(&decode(payload)?).map_err(|_| TokenRejected::Malformed)?;
    if claims.exp <= now {
        return Err(TokenRejected::Expired);
    }
    if claims.nbf > now + CLOCK_SKEW {
        return Err(TokenRejected::NotYetValid);
    }
    if claims.iss != issuer {
        return Err(TokenRejected::WrongIssuer);
    }
    if claims.aud != AUDIENCE {
        return Err(TokenRejected::WrongAudience);
    }
    Ok(claims)
}

/// `GET /oauth2/jwks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One public key, RFC 7517/7518 EC form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

impl Jwk {
    fn of(key: &SigningKey) -> Jwk {
        Jwk::from_point(&key.kid, &key.public_key)
    }

    /// From an uncompressed P-256 point: `0x04 || x (32) || y (32)`.
    fn from_point(kid: &str, point: &[u8]) -> Jwk {
        let coordinate = |range: std::ops::Range<usize>| point.get(range).map(base64url).unwrap_or_default();
        Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: coordinate(1..33),
            y: coordinate(33..65),
            kid: kid.into(),
            alg: ALGORITHM.into(),
            use_: "sig".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(now: UnixTime) -> (SigningKey, EcdsaKeyPair) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("generate");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("parse");
        let public_key = pair.public_key().as_ref().to_vec();
        let stored = SigningKey {
            kid: thumbprint(&public_key),
            algorithm: ALGORITHM.into(),
            private_pkcs8: pkcs8.as_ref().to_vec(),
            public_key,
            created_at: now,
            active_until: now + 100,
            retire_at: now + 200,
        };
        (stored, pair)
    }

    fn claims(now: UnixTime) -> Claims {
        Claims {
            iss: "https://localhost:9443".into(),
            sub: "c1".into(),
            aud: AUDIENCE.into(),
            exp: now + 60,
            iat: now,
            nbf: now,
            jti: "j1".into(),
            client_id: "c1".into(),
            application_id: "a1".into(),
            scope: String::new(),
        }
    }

    #[test]
    fn a_signed_token_verifies_and_a_tampered_one_does_not() {
        let now = 1_700_000_000;
        let (stored, pair) = key(now);
        let token = sign(&stored.kid, &pair, &claims(now)).expect("sign");
        let keys = [stored.clone()];
        let iss = "https://localhost:9443";
        assert_eq!(verify_with(&token, &keys, iss, now), Ok(claims(now)));
        assert_eq!(verify_with(&token, &keys, iss, now + 60), Err(TokenRejected::Expired));
        assert_eq!(verify_with(&token, &keys, "https://other", now), Err(TokenRejected::WrongIssuer));
        assert_eq!(verify_with(&token, &keys, iss, now + 200), Err(TokenRejected::UnknownKey));
        assert_eq!(verify_with(&token, &[], iss, now), Err(TokenRejected::UnknownKey));
        assert_eq!(verify_with("a.b", &keys, iss, now), Err(TokenRejected::Malformed));

        let mut forged = claims(now);
        forged.application_id = "a2".into();
        let (head, rest) = token.split_once('.').expect("dot");
        let signature = rest.rsplit_once('.').expect("dot").1;
        let payload = base64url(&serde_json::to_vec(&forged).expect("json"));
        assert_eq!(
            verify_with(&format!("{head}.{payload}.{signature}"), &keys, iss, now),
            Err(TokenRejected::BadSignature)
        );
        let none = format!("{}.{payload}.", base64url(br#"{"alg":"none","kid":"x"}"#));
        assert_eq!(verify_with(&none, &keys, iss, now), Err(TokenRejected::WrongAlgorithm));
    }

    #[test]
    fn the_jwk_holds_the_point_coordinates_and_the_kid_is_its_thumbprint() {
        let (stored, _) = key(0);
        let jwk = Jwk::of(&stored);
        assert_eq!(from_base64url(&jwk.x).expect("x"), stored.public_key[1..33]);
        assert_eq!(from_base64url(&jwk.y).expect("y"), stored.public_key[33..65]);
        assert_eq!(jwk.kid.len(), 43);
        assert_eq!(thumbprint(&stored.public_key), jwk.kid);
    }

    #[test]
    fn a_shorter_configured_rotation_caps_a_stored_key() {
        let (stored, _) = key(1_000);
        assert_eq!(signs_until(&stored, 10), 1_010);
        assert_eq!(signs_until(&stored, 10_000), 1_100);
    }
}

//! OAuth2 clients: an application's client id and secret. The secret exists in clear only in
//! the answer that creates it; the store keeps its argon2 hash, like a password.

use wsgate_core::model::ClientCredentials;
use wsgate_store::Store;

use crate::hashing::Hasher;
use crate::{ControlError, crypto, now};

/// Credentials as shown once to their owner.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedCredentials {
    pub client_id: String,
    /// A bearer secret: never logged.
    pub client_secret: String,
}

/// Makes (or remakes) the application's credentials. Regenerating keeps the client id, so the
/// gateway's view of the application does not change, and replaces the secret, so the old one
/// stops working at once.
pub async fn generate(
    hasher: &Hasher,
    store: &dyn Store,
    application_id: &str,
) -> Result<IssuedCredentials, ControlError> {
    let client_id = match store.credentials_for_application(application_id).await? {
        Some(existing) => existing.client_id,
        None => crypto::id()?,
    };
    let client_secret = crypto::secret()?;
    let credentials = ClientCredentials {
        application_id: application_id.to_string(),
        client_id: client_id.clone(),
        secret_hash: hasher.hash(client_secret.clone()).await?,
        created_at: now(),
    };
    store.put_credentials(&credentials).await?;
    tracing::info!(application_id, client_id, "client credentials generated");
    Ok(IssuedCredentials { client_id, client_secret })
}

/// The credentials these match, or `None`. An unknown client id costs the same hashing time
/// as a wrong secret (`decoy_hash`), so timing does not tell which client ids exist.
pub async fn authenticate(
    hasher: &Hasher,
    store: &dyn Store,
    decoy_hash: &str,
    client_id: &str,
    client_secret: &str,
) -> Result<Option<ClientCredentials>, ControlError> {
    let found = store.credentials_by_client_id(client_id).await?;
    let hash = found.as_ref().map_or(decoy_hash, |c| c.secret_hash.as_str()).to_string();
    let matches = hasher.verify(client_secret.to_string(), hash).await?;
    Ok(found.filter(|_| matches))
}

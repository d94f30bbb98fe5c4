//! Random ids and secrets, digests and password hashes: the few primitives every other module
//! builds on, so that each choice (ring's system random, SHA-256, argon2id) is made once.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

/// Why a primitive failed. Both are failures of the machine, not of the caller's input.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the system random source failed")]
    RandomUnavailable,
    #[error("password hashing failed: {0}")]
    HashFailed(String),
}

/// `N` bytes from the operating system's random source.
pub fn random<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).map_err(|_| CryptoError::RandomUnavailable)?;
    Ok(bytes)
}

/// A record id: 16 random bytes as lowercase hex. Random rather than sequential so that ids
/// reveal nothing about how many records exist and cannot be guessed.
pub fn id() -> Result<String, CryptoError> {
    Ok(hex(&random::<16>()?))
}

/// A bearer secret (session token, client secret, generated password): 32 random bytes,
/// base64url without padding, safe in headers, cookies, URLs and form bodies as it is.
pub fn secret() -> Result<String, CryptoError> {
    Ok(URL_SAFE_NO_PAD.encode(random::<32>()?))
}

pub fn sha256_hex(text: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn from_base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// An argon2id PHC string for `password`, with argon2's default (OWASP) cost. Slow on purpose
/// (tens of milliseconds), so it runs on the blocking pool and never stalls other requests.
pub async fn hash_password(password: String) -> Result<String, CryptoError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&random::<16>()?).map_err(|err| CryptoError::HashFailed(err.to_string()))?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| CryptoError::HashFailed(err.to_string()))
    })
    .await
    .map_err(|err| CryptoError::HashFailed(err.to_string()))?
}

/// Whether `password` matches the PHC string `hash`. A malformed hash matches nothing.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse".into()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), hash.clone()).await);
        assert!(!verify_password("wrong".into(), hash).await);
        assert!(!verify_password("x".into(), "not a hash".into()).await);
    }

    #[test]
    fn ids_and_secrets_have_their_documented_shape() {
        let id = id().expect("id");
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(secret().expect("secret").len(), 43);
        assert_ne!(secret().expect("a"), secret().expect("b"));
    }
}

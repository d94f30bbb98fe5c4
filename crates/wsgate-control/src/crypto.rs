//! Random ids and secrets and digests: the few primitives every other module builds on, so that
//! each choice (ring's system random, SHA-256) is made once. Password hashes are `hashing`'s.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

/// Why a primitive failed. A failure of the machine, not of the caller's input.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the system random source failed")]
    RandomUnavailable,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_have_their_documented_shape() {
        let id = id().expect("id");
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(secret().expect("secret").len(), 43);
        assert_ne!(secret().expect("a"), secret().expect("b"));
    }
}

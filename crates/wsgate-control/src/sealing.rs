//! Signing keys at rest. With `control.key_encryption_key_file` set, every private key is
//! stored encrypted (AES-256-GCM, ring) under that key-encryption key, with the key's `kid` as
//! associated data so a sealed key cannot be passed off as another; a store copied, dumped or
//! backed up without the file holds no usable signing key. Keys stored in plain PKCS#8 before
//! the file was configured are sealed at the next start.
//!
//! Without the file, keys are stored in plain PKCS#8 (a warning at start says so): whoever
//! reads the store could then sign tokens. A sealed key is never silently used without the
//! file: the control plane refuses to start instead.
//!
//! Stored form: `MAGIC || nonce (12 bytes) || ciphertext || tag`. Plain PKCS#8 DER starts with
//! `0x30` (a SEQUENCE), so the two forms cannot be mistaken for each other.

use std::path::Path;

use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use wsgate_core::config::ControlSettings;

use crate::ControlError;
use crate::crypto;

const MAGIC: &[u8] = b"wsgate-sealed-v1:";

/// Seals and opens private keys; a no-op without a key-encryption key.
pub struct Sealer {
    key: Option<LessSafeKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("enabled", &self.is_enabled()).finish()
    }
}

/// Why a stored key could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("it is encrypted and no control.key_encryption_key_file is configured")]
    NoKey,
    #[error("it does not decrypt with the configured key-encryption key (a different key, or altered)")]
    WrongKey,
}

impl Sealer {
    pub fn none() -> Sealer {
        Sealer { key: None }
    }

    /// From the 32 bytes of a key-encryption key.
    pub fn with_key(bytes: &[u8; 32]) -> Sealer {
        // A 32-byte key is always valid for AES-256-GCM.
        Sealer { key: UnboundKey::new(&AES_256_GCM, bytes).ok().map(LessSafeKey::new) }
    }

    /// As `control.key_encryption_key_file` says: the file holds 32 random bytes as 64 hex
    /// digits or as base64 (`openssl rand -base64 32`), surrounding whitespace ignored.
    pub fn from_settings(settings: &ControlSettings) -> Result<Sealer, ControlError> {
        match &settings.key_encryption_key_file {
            None => Ok(Sealer::none()),
            Some(path) => Ok(Sealer::with_key(&read_key_file(path)?)),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.key.is_some()
    }

    pub fn is_sealed(stored: &[u8]) -> bool {
        stored.starts_with(MAGIC)
    }

    /// What to store for the private key `pkcs8` of `kid`.
    pub fn seal(&self, kid: &str, pkcs8: &[u8]) -> Result<Vec<u8>, crypto::CryptoError> {
        let Some(key) = &self.key else { return Ok(pkcs8.to_vec()) };
        let nonce = crypto::random::<NONCE_LEN>()?;
        let mut sealed = pkcs8.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(kid.as_bytes()), &mut sealed)
            .map_err(|_| crypto::CryptoError::RandomUnavailable)?;
        Ok([MAGIC, &nonce, &sealed].concat())
    }

    /// The PKCS#8 of a stored private key, sealed or plain.
    pub fn open(&self, kid: &str, stored: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some(rest) = stored.strip_prefix(MAGIC) else { return Ok(stored.to_vec()) };
        let key = self.key.as_ref().ok_or(SealError::NoKey)?;
        let (nonce, sealed) = rest.split_at_checked(NONCE_LEN).ok_or(SealError::WrongKey)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::WrongKey)?;
        let mut buffer = sealed.to_vec();
        let plain =
            key.open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer).map_err(|_| SealError::WrongKey)?;
        Ok(plain.to_vec())
    }
}

fn read_key_file(path: &Path) -> Result<[u8; 32], ControlError> {
    let problem = |problem: String| ControlError::KeyEncryptionKey { path: path.display().to_string(), problem };
    let text = std::fs::read_to_string(path).map_err(|err| problem(format!("cannot read it: {err}")))?;
    let text = text.trim();
    let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or(0)).collect()
    } else {
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        engines.iter().find_map(|engine| engine.decode(text).ok()).unwrap_or_default()
    };
    <[u8; 32]>::try_from(decoded.as_slice())
        .map_err(|_| problem("must hold 32 bytes as 64 hex digits or base64 (openssl rand -base64 32)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_with_its_kek_and_kid() {
        let sealer = Sealer::with_key(&[7; 32]);
        let sealed = sealer.seal("kid-1", b"0\x81pkcs8 bytes").expect("seal");
        assert!(Sealer::is_sealed(&sealed));
        assert!(!sealed.windows(5).any(|w| w == b"pkcs8"), "no plain text in the sealed form");
        assert_eq!(sealer.open("kid-1", &sealed).expect("open"), b"0\x81pkcs8 bytes");
        assert_eq!(sealer.open("kid-2", &sealed), Err(SealError::WrongKey), "bound to its kid");
        assert_eq!(Sealer::with_key(&[8; 32]).open("kid-1", &sealed), Err(SealError::WrongKey));
        assert_eq!(Sealer::none().open("kid-1", &sealed), Err(SealError::NoKey));
        // Plain keys (stored before a KEK was configured) open as they are.
        assert_eq!(sealer.open("kid-1", b"0\x81plain").expect("plain"), b"0\x81plain");
        assert_eq!(Sealer::none().seal("kid-1", b"0\x81plain").expect("no-op"), b"0\x81plain");
    }

    #[test]
    fn the_key_file_holds_hex_or_base64() {
        let dir = std::env::temp_dir().join(format!("wsgate-kek-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("kek");
        std::fs::write(&file, format!("{}\n", "ab".repeat(32))).expect("write");
        assert_eq!(read_key_file(&file).expect("hex"), [0xab; 32]);
        std::fs::write(&file, base64::engine::general_purpose::STANDARD.encode([5u8; 32])).expect("write");
        assert_eq!(read_key_file(&file).expect("base64"), [5; 32]);
        std::fs::write(&file, "too short").expect("write");
        assert!(read_key_file(&file).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

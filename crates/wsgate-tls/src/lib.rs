//! TLS for wsgate, on rustls with the ring provider.
//!
//! Modules, in reading order:
//! - [`pem`]: certificate chains and keys from PEM files, with errors that name the file.
//! - [`server`]: the listener certificate: from files or generated on first start, reloaded
//!   when the files change without touching live connections.
//! - [`client`]: how the gateway verifies `wss://` upstreams: system roots, a per-API CA
//!   bundle, an optional client certificate, or (explicitly) no verification.
//! - [`pinning`]: the CA bundle's verifier, which also trusts the exact certificates it holds
//!   (a self-signed `CA:TRUE` upstream certificate, as `openssl req -x509` makes).
//! - [`failure`]: a failed upstream handshake as one sentence with its fix.

pub mod pem;
pub mod server;
pub mod client;
pub mod pinning;
pub mod failure;

use std::path::PathBuf;
use std::sync::Arc;

/// Errors from loading or generating TLS material. Each names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider every config uses, so the choice is made in one place.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// SHA-256 fingerprint of a DER certificate, as `AB:CD:…`, the form browsers and `openssl
/// x509 -fingerprint -sha256` show.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

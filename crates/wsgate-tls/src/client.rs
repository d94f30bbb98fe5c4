//! How the gateway checks `wss://` upstreams. Verification is on by default against the
//! system's roots; an API may name its own CA bundle instead (whose certificates are also
//! pinned, see [`crate::pinning`]), present a client certificate, or, only when it says so
//! explicitly, skip verification.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::pinning::BundleVerifier;
use crate::{TlsError, pem};

/// Per-API upstream TLS settings.
#[derive(Debug, Default, Clone, Copy)]
pub struct UpstreamTlsOptions<'a> {
    /// PEM bundle of CAs (or of the upstreams' own certificates) to trust instead of the
    /// system roots.
    pub ca_file: Option<&'a Path>,
    /// Client certificate chain and key for mutual TLS.
    pub client_cert: Option<(&'a Path, &'a Path)>,
    /// Accept any certificate. Only ever set by an explicit per-API setting.
    pub insecure_skip_verify: bool,
}

/// Builds the client config for one API's upstreams.
pub fn client_config(options: UpstreamTlsOptions<'_>) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(crate::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = if options.insecure_skip_verify {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate))
    } else if let Some(path) = options.ca_file {
        let bundle = pem::certificates(path)?;
        let verifier = BundleVerifier::new(bundle.clone(), bundle_roots(path, bundle)?)?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier))
    } else {
        builder.with_root_certificates(system_roots())
    };
    let mut config = match options.client_cert {
        Some((cert, key)) => builder.with_client_auth_cert(pem::certificates(cert)?, pem::private_key(key)?)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn bundle_roots(path: &Path, bundle: Vec<CertificateDer<'static>>) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in bundle {
        roots.add(cert).map_err(|err| TlsError::Invalid {
            path: path.to_path_buf(),
            problem: format!("unusable CA certificate ({err})"),
        })?;
    }
    Ok(Arc::new(roots))
}

/// The system's trusted root certificates (DER), read once per process: reading /etc/ssl takes
/// milliseconds. Unreadable entries are skipped, as every TLS client does.
pub fn system_root_certificates() -> Arc<Vec<CertificateDer<'static>>> {
    static CERTS: OnceLock<Arc<Vec<CertificateDer<'static>>>> = OnceLock::new();
    CERTS.get_or_init(|| Arc::new(rustls_native_certs::load_native_certs().certs)).clone()
}

fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(system_root_certificates().iter().cloned());
            if added == 0 {
                tracing::warn!("no system root certificates found: wss:// upstreams need a ca_file");
            }
            Arc::new(roots)
        })
        .clone()
}

/// Accepts any server certificate but still checks handshake signatures, so the connection is
/// encrypted to whoever answered, just not authenticated.
#[derive(Debug)]
struct AcceptAnyCertificate;

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &crate::provider().signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &crate::provider().signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        crate::provider().signature_verification_algorithms.supported_schemes()
    }
}

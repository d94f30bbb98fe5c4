//! The listener certificate. Configured files are used as they are; with none configured, a
//! self-signed certificate for localhost is generated once into the data directory and kept,
//! so that users can trust it once. Either way the files are watched and reloaded when they
//! change: new handshakes get the new certificate, live connections are not touched.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::{TlsError, pem};

/// Where the listener's certificate and key live.
#[derive(Debug, Clone)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// True when this start generated them.
    pub generated: bool,
}

/// Uses `cert` and `key` when given; otherwise `data_dir/tls/{cert,key}.pem`, generated on
/// first use.
pub fn locate_or_generate(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
) -> Result<CertificateFiles, TlsError> {
    if let (Some(cert), Some(key)) = (cert, key) {
        return Ok(CertificateFiles { cert: cert.to_path_buf(), key: key.to_path_buf(), generated: false });
    }
    let dir = data_dir.join("tls");
    let files = CertificateFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem"), generated: false };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    generate_into(&dir)?;
    Ok(CertificateFiles { generated: true, ..files })
}

/// Writes a fresh pair into a private temporary folder and renames the folder into place, so
/// that two gateways starting at once never see a certificate without its key or a mismatch.
fn generate_into(dir: &Path) -> Result<(), TlsError> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let generated = rcgen::generate_simple_self_signed(names).map_err(|err| TlsError::Generate(err.to_string()))?;
    let parent = dir.parent().unwrap_or(Path::new("."));
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Write { path, source }
    };
    std::fs::create_dir_all(parent).map_err(write_err(parent))?;
    let staging =
        parent.join(format!(".tls-{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], ""));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(write_err(&staging))?;
    std::fs::write(staging.join("cert.pem"), generated.cert.pem()).map_err(write_err(&staging))?;
    write_private(&staging.join("key.pem"), generated.signing_key.serialize_pem().as_bytes())?;
    match std::fs::rename(&staging, dir) {
        Ok(()) => Ok(()),
        // Another process won the race: its pair is as good as ours.
        Err(_) if dir.join("cert.pem").exists() && dir.join("key.pem").exists() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(())
        }
        Err(source) => Err(TlsError::Write { path: dir.to_path_buf(), source }),
    }
}

/// Private keys are readable by their owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let err = |source| TlsError::Write { path: path.to_path_buf(), source };
    options.open(path).and_then(|mut file| file.write_all(bytes)).map_err(err)
}

/// The certificate the listener presents, swapped in place when its files change.
#[derive(Debug)]
pub struct ReloadingCertificate {
    files: CertificateFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// Modification times of the pair last loaded; a change triggers a reload.
    loaded_at: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl ReloadingCertificate {
    pub fn load(files: CertificateFiles) -> Result<Arc<ReloadingCertificate>, TlsError> {
        let stamps = stamps(&files);
        let key = load_pair(&files)?;
        Ok(Arc::new(ReloadingCertificate { files, current: RwLock::new(Arc::new(key)), loaded_at: Mutex::new(stamps) }))
    }

    pub fn files(&self) -> &CertificateFiles {
        &self.files
    }

    /// SHA-256 fingerprint of the leaf certificate now presented.
    pub fn fingerprint(&self) -> String {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        current.cert.first().map(|c| crate::fingerprint(c)).unwrap_or_default()
    }

    /// Reloads when either file changed since the last load. A pair that does not load (half
    /// written, key not matching) keeps the old certificate and is tried again next time.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamps(&self.files);
        let mut loaded_at = self.loaded_at.lock().unwrap_or_else(|e| e.into_inner());
        if *loaded_at == now {
            return Ok(false);
        }
        let key = load_pair(&self.files)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        *loaded_at = now;
        Ok(true)
    }

    /// Checks the files every `every` until the certificate is dropped.
    pub fn watch(self: &Arc<Self>, every: Duration) {
        let weak: Weak<ReloadingCertificate> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(cert) = weak.upgrade() else { return };
                match cert.reload_if_changed() {
                    Ok(true) => {
                        tracing::info!(cert = %cert.files.cert.display(), fingerprint = %cert.fingerprint(), "TLS certificate reloaded")
                    }
                    Ok(false) => {}
                    Err(err) => tracing::warn!(error = %err, "TLS certificate not reloaded; keeping the previous one"),
                }
            }
        });
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn stamps(files: &CertificateFiles) -> (Option<SystemTime>, Option<SystemTime>) {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    (modified(&files.cert), modified(&files.key))
}

fn load_pair(files: &CertificateFiles) -> Result<CertifiedKey, TlsError> {
    let chain = pem::certificates(&files.cert)?;
    let key = pem::private_key(&files.key)?;
    let signing_key = crate::provider().key_provider.load_private_key(key).map_err(|err| TlsError::Invalid {
        path: files.key.clone(),
        problem: format!("unsupported private key ({err})"),
    })?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|_| TlsError::Invalid {
        path: files.key.clone(),
        problem: format!("does not match the certificate in {}", files.cert.display()),
    })?;
    Ok(certified)
}

/// A server config for TLS 1.2 and 1.3 with ALPN `http/1.1` (WebSocket upgrades are HTTP/1.1).
pub fn server_config(certificate: Arc<ReloadingCertificate>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(crate::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wsgate-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_generated_certificate_is_kept_for_the_next_start() {
        let dir = scratch("keep");
        let first = locate_or_generate(None, None, &dir).expect("generate");
        assert!(first.generated);
        let fingerprint = ReloadingCertificate::load(first.clone()).expect("load").fingerprint();
        let second = locate_or_generate(None, None, &dir).expect("reuse");
        assert!(!second.generated);
        assert_eq!(ReloadingCertificate::load(second).expect("load").fingerprint(), fingerprint);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.key).expect("key").permissions().mode();
            assert_eq!(mode & 0o077, 0, "key must not be readable by others");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn changed_files_are_reloaded_and_broken_ones_are_not() {
        let dir = scratch("reload");
        let files = locate_or_generate(None, None, &dir).expect("generate");
        let cert = ReloadingCertificate::load(files.clone()).expect("load");
        let before = cert.fingerprint();
        assert!(!cert.reload_if_changed().expect("unchanged"));

        std::fs::write(&files.cert, "not a certificate").expect("write");
        assert!(cert.reload_if_changed().is_err());
        assert_eq!(cert.fingerprint(), before, "the old certificate stays");

        let fresh = scratch("reload-fresh");
        let other = locate_or_generate(None, None, &fresh).expect("generate");
        std::fs::copy(&other.cert, &files.cert).expect("copy cert");
        std::fs::copy(&other.key, &files.key).expect("copy key");
        assert!(cert.reload_if_changed().expect("reload"));
        assert_ne!(cert.fingerprint(), before);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&fresh);
    }
}

//! External identity providers: their public keys, fetched from each provider's JWKS URL and
//! cached. A token naming a key not in the cache triggers one fetch, at most once per refresh
//! interval per provider, so tokens with made-up key ids cannot turn the gateway into a flood
//! of requests to the provider.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::Deserialize;
use wsgate_core::config::IdentityProvider;

/// How long one JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A verification key; its algorithm is the key's, never the token's choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyKey {
    /// P-256 public point, uncompressed (65 bytes).
    Es256(Vec<u8>),
    /// RSA modulus and exponent, big-endian.
    Rs256 { n: Vec<u8>, e: Vec<u8> },
}

impl VerifyKey {
    /// The JWS `alg` this key verifies.
    pub fn alg(&self) -> &'static str {
        match self {
            VerifyKey::Es256(_) => "ES256",
            VerifyKey::Rs256 { .. } => "RS256",
        }
    }

    /// Whether `signature` signs `message` under this key.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature::{
            ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
        };
        match self {
            VerifyKey::Es256(point) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(message, signature).is_ok()
            }
            VerifyKey::Rs256 { n, e } => {
                RsaPublicKeyComponents { n, e }.verify(&RSA_PKCS1_2048_8192_SHA256, message, signature).is_ok()
            }
        }
    }
}

/// All configured providers.
#[derive(Debug, Default)]
pub struct Providers {
    list: Vec<Arc<Provider>>,
}

impl Providers {
    pub fn new(config: &[IdentityProvider]) -> Result<Providers, wsgate_tls::TlsError> {
        let list = config.iter().map(|c| Provider::new(c).map(Arc::new)).collect::<Result<_, _>>()?;
        Ok(Providers { list })
    }

    /// The provider that issues tokens with this `iss`.
    pub fn for_issuer(&self, issuer: &str) -> Option<&Arc<Provider>> {
        self.list.iter().find(|p| p.issuer == issuer)
    }

    /// Fetches every provider's keys once, in the background; a provider that is down now is
    /// tried again when a token needs it.
    pub fn warm_up(&self) {
        for provider in &self.list {
            let provider = provider.clone();
            tokio::spawn(async move { provider.refresh().await });
        }
    }
}

#[derive(Debug)]
pub struct Provider {
    pub issuer: String,
    pub audience: String,
    jwks_url: String,
    refresh_interval: Duration,
    agent: ureq::Agent,
    keys: RwLock<Arc<HashMap<String, VerifyKey>>>,
    /// When the last fetch started; guards the refresh rate.
    last_fetch: std::sync::Mutex<Option<Instant>>,
    /// One fetch at a time; callers that arrive meanwhile wait for it and use its result.
    fetching: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl Provider {
    fn new(config: &IdentityProvider) -> Result<Provider, wsgate_tls::TlsError> {
        Ok(Provider {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            jwks_url: config.jwks_url.clone(),
            refresh_interval: config.jwks_refresh_interval,
            agent: agent(config.ca_file.as_deref())?,
            keys: RwLock::default(),
            last_fetch: std::sync::Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        })
    }

    /// How many times the JWKS was fetched (for tests and metrics).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The key named `kid`, fetching the JWKS when it is unknown and the refresh interval has
    /// passed since the last fetch.
    pub async fn key(&self, kid: &str) -> Option<VerifyKey> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        self.refresh().await;
        self.cached(kid)
    }

    fn cached(&self, kid: &str) -> Option<VerifyKey> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).get(kid).cloned()
    }

    async fn refresh(&self) {
        let _one_at_a_time = self.fetching.lock().await;
        {
            let mut last = self.last_fetch.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < self.refresh_interval) {
                return;
            }
            *last = Some(Instant::now());
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let (agent, url) = (self.agent.clone(), self.jwks_url.clone());
        let fetched = tokio::task::spawn_blocking(move || fetch(&agent, &url)).await;
        match fetched {
            Ok(Ok(keys)) => *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys),
            Ok(Err(err)) => {
                tracing::warn!(issuer = %self.issuer, error = %err, "cannot fetch the identity provider's keys")
            }
            Err(err) => tracing::warn!(issuer = %self.issuer, error = %err, "JWKS fetch stopped"),
        }
    }
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// Keys usable for signatures, by kid. Keys of other types or uses are skipped.
fn fetch(agent: &ureq::Agent, url: &str) -> Result<HashMap<String, VerifyKey>, String> {
    let mut response = agent.get(url).call().map_err(|err| err.to_string())?;
    if response.status() != 200 {
        return Err(format!("{url} answered {}", response.status()));
    }
    let jwks: Jwks = response.body_mut().read_json().map_err(|err| format!("{url}: not a JWKS ({err})"))?;
    Ok(jwks.keys.into_iter().filter_map(|jwk| Some((jwk.kid.clone()?, to_key(&jwk)?))).collect())
}

fn to_key(jwk: &Jwk) -> Option<VerifyKey> {
    if jwk.usage.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let bytes = |field: &Option<String>| B64URL.decode(field.as_deref()?).ok();
    match (jwk.kty.as_str(), jwk.alg.as_deref()) {
        ("EC", None | Some("ES256")) if jwk.crv.as_deref() == Some("P-256") => {
            let (x, y) = (bytes(&jwk.x)?, bytes(&jwk.y)?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            Some(VerifyKey::Es256([&[4u8][..], &x, &y].concat()))
        }
        ("RSA", None | Some("RS256")) => Some(VerifyKey::Rs256 { n: bytes(&jwk.n)?, e: bytes(&jwk.e)? }),
        _ => None,
    }
}

fn agent(ca_file: Option<&std::path::Path>) -> Result<ureq::Agent, wsgate_tls::TlsError> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let der = match ca_file {
        Some(path) => wsgate_tls::pem::certificates(path)?,
        None => wsgate_tls::client::system_root_certificates().to_vec(),
    };
    let roots = RootCerts::Specific(Arc::new(der.iter().map(|c| Certificate::from_der(c).to_owned()).collect()));
    let tls = TlsConfig::builder().provider(TlsProvider::Rustls).root_certs(roots).build();
    let config = ureq::Agent::config_builder().tls_config(tls).timeout_global(Some(FETCH_TIMEOUT)).build();
    Ok(config.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_entries_become_keys_of_their_own_algorithm() {
        let jwks: Jwks = serde_json::from_str(
            r#"{"keys":[
                {"kty":"EC","crv":"P-256","kid":"e","alg":"ES256","use":"sig",
                 "x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"},
                {"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},
                {"kty":"oct","kid":"h","k":"c2VjcmV0"},
                {"kty":"EC","crv":"P-256","kid":"enc","use":"enc","x":"AA","y":"AA"}
            ]}"#,
        )
        .expect("a JWKS");
        let keys: HashMap<_, _> = jwks.keys.iter().filter_map(|j| Some((j.kid.clone()?, to_key(j)?))).collect();
        assert_eq!(keys.len(), 2, "symmetric and encryption keys are skipped");
        assert_eq!(keys["e"].alg(), "ES256");
        assert_eq!(keys["r"].alg(), "RS256");
    }
}

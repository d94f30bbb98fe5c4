//! What every handler shares: the store, the settings, the key manager, the password-hashing
//! pool and the sign-in throttle. One `Arc`, cloned per request by axum.

use std::sync::Arc;

use wsgate_core::config::{AllowList, Config, ControlSettings};
use wsgate_core::upstream::EndpointHealth;
use wsgate_counters::Counters;
use wsgate_store::Store;

use crate::ControlError;
use crate::crypto;
use crate::hashing::Hasher;
use crate::keys::KeyManager;
use crate::sealing::Sealer;
use crate::throttle::Throttle;

pub type AppState = Arc<Shared>;

pub struct Shared {
    pub store: Arc<dyn Store>,
    pub settings: ControlSettings,
    pub keys: KeyManager,
    /// Every password and client-secret hash is computed here, on a bounded pool.
    pub hasher: Hasher,
    /// Failed sign-ins and client authentications, per account and address.
    pub throttle: Throttle,
    /// Sign-ups per address, counted like failures: a few are free, then they slow down.
    pub signups: Throttle,
    /// An argon2 hash of a random password nobody knows. Sign-in and client authentication
    /// verify against it when the user or client does not exist, so that both answers take
    /// the same time and timing does not reveal which names exist.
    pub decoy_hash: String,
    /// Where non-admins' endpoints may point (`control.endpoint_allowlist`).
    pub endpoint_allowlist: AllowList,
    /// The `iss` of every configured external identity provider: the only issuers an
    /// application may register external clients of.
    pub identity_providers: Vec<String>,
    /// Where the gateway listens, for the portals' invoke URLs; set once by the binary after
    /// the gateway bound its listeners (before `run`), read by every portal page.
    pub gateway_urls: std::sync::OnceLock<crate::portal::GatewayUrls>,
    /// The certificate file the control plane (and the gateway's wss listener) presents; set
    /// once when the listener starts. The "Try it" diagnosis trusts exactly it.
    pub own_certificate: std::sync::OnceLock<std::path::PathBuf>,
    /// The gateway's counters, for usage pages; set once by the binary. Without them (a control
    /// plane alone, in tests) usage reads fresh in-process counters: limits with nothing spent.
    pub counters: std::sync::OnceLock<Arc<dyn Counters>>,
    /// What this node's gateway knows of each API's endpoints (up, suspended, connections);
    /// set once by the binary. Without it (a control plane alone) endpoint state is unknown.
    pub endpoint_health: std::sync::OnceLock<Arc<dyn EndpointHealth>>,
}

impl Shared {
    pub async fn new(store: Arc<dyn Store>, config: &Config, issuer: String) -> Result<AppState, ControlError> {
        let settings = config.control.clone();
        let endpoint_allowlist = settings.endpoint_allowlist()?;
        let hasher = Hasher::per_core()?;
        let sealer = Sealer::from_settings(&settings)?;
        let keys = KeyManager::new(store.clone(), &settings, issuer, hasher.clone(), sealer);
        keys.seal_stored_keys().await?;
        let decoy_hash = hasher.hash(crypto::secret()?).await?;
        Ok(Arc::new(Shared {
            store,
            settings,
            keys,
            hasher,
            throttle: Throttle::default(),
            signups: Throttle::default(),
            endpoint_allowlist,
            decoy_hash,
            identity_providers: config.identity_providers.iter().map(|p| p.issuer.clone()).collect(),
            gateway_urls: Default::default(),
            own_certificate: Default::default(),
            counters: Default::default(),
            endpoint_health: Default::default(),
        }))
    }

    pub fn counters(&self) -> Arc<dyn Counters> {
        self.counters.get_or_init(|| Arc::new(wsgate_counters::LocalCounters::new())).clone()
    }

    pub fn store(&self) -> &dyn Store {
        &*self.store
    }
}

//! What every handler shares: the store, the settings, the key manager. One `Arc`, cloned per
//! request by axum; nothing in it changes after start.

use std::sync::Arc;

use wsgate_core::config::ControlSettings;
use wsgate_counters::Counters;
use wsgate_store::Store;

use crate::keys::KeyManager;
use crate::{ControlError, crypto};

pub type AppState = Arc<Shared>;

pub struct Shared {
    pub store: Arc<dyn Store>,
    pub settings: ControlSettings,
    pub keys: KeyManager,
    /// An argon2 hash of a random password nobody knows. Sign-in and client authentication
    /// verify against it when the user or client does not exist, so that both answers take
    /// the same time and timing does not reveal which names exist.
    pub decoy_hash: String,
    /// Where the gateway listens, for the portals' invoke URLs; set once by the binary after
    /// the gateway bound its listeners (before `run`), read by every portal page.
    pub gateway_urls: std::sync::OnceLock<crate::portal::GatewayUrls>,
    /// The gateway's counters, for usage pages; set once by the binary. Without them (a control
    /// plane alone, in tests) usage reads fresh in-process counters: limits with nothing spent.
    pub counters: std::sync::OnceLock<Arc<dyn Counters>>,
}

impl Shared {
    pub async fn new(
        store: Arc<dyn Store>,
        settings: ControlSettings,
        issuer: String,
    ) -> Result<AppState, ControlError> {
        let keys = KeyManager::new(store.clone(), &settings, issuer);
        let decoy_hash = crypto::hash_password(crypto::secret()?).await?;
        Ok(Arc::new(Shared {
            store,
            settings,
            keys,
            decoy_hash,
            gateway_urls: Default::default(),
            counters: Default::default(),
        }))
    }

    pub fn counters(&self) -> Arc<dyn Counters> {
        self.counters.get_or_init(|| Arc::new(wsgate_counters::LocalCounters::new())).clone()
    }

    pub fn store(&self) -> &dyn Store {
        &*self.store
    }
}

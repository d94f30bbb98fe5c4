//! Live connections opened with an access token. After every snapshot swap the registry checks
//! each of them against the new snapshot, so that revoking the token, blocking or removing the
//! subscription, deleting the application, or blocking or retiring the API closes exactly the
//! connections it concerns (close 1008 with the reason) and no other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::auth::Principal;
use crate::relay::stop::StopSignal;
use crate::snapshot::{Denial, Snapshot};

#[derive(Debug, Default)]
pub struct Registry {
    /// Locked on connect, disconnect and sweep only; never per frame.
    live: Mutex<HashMap<u64, Live>>,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct Live {
    jti: String,
    issued_at: i64,
    application_id: String,
    api_id: String,
    stop: Arc<StopSignal>,
}

/// Keeps a connection in the registry while it lives; dropping it removes the connection.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.live.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

impl Registry {
    pub fn register(self: &Arc<Self>, principal: &Principal, api_id: &str, stop: Arc<StopSignal>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let live = Live {
            jti: principal.jti.clone(),
            issued_at: principal.issued_at,
            application_id: principal.application_id.clone(),
            api_id: api_id.to_string(),
            stop,
        };
        self.live.lock().unwrap_or_else(|e| e.into_inner()).insert(id, live);
        Registration { registry: self.clone(), id }
    }

    /// Connections registered now.
    pub fn len(&self) -> usize {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops every live connection that `snapshot` no longer allows.
    pub fn sweep(&self, snapshot: &Snapshot) {
        let apis = snapshot.routes.managed_apis();
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for connection in live.values() {
            let reason =
                if snapshot.access.is_revoked(&connection.jti, &connection.application_id, connection.issued_at) {
                    Some("token revoked")
                } else {
                    match apis.get(connection.api_id.as_str()) {
                        None => Some("API retired or deleted"),
                        Some(true) => Some("API blocked"),
                        Some(false) => match snapshot.access.allows(&connection.application_id, &connection.api_id) {
                            Ok(_) => None,
                            Err(Denial::ApplicationDeleted) => Some("application deleted"),
                            Err(Denial::NotSubscribed) => Some("subscription removed"),
                            Err(Denial::SubscriptionBlocked) => Some("subscription blocked"),
                        },
                    }
                };
            if let Some(reason) = reason {
                connection.stop.stop(1008, reason);
            }
        }
    }
}

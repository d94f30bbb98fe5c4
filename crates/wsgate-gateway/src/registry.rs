//! Every live relayed connection, keyless or not, with what later snapshots are checked
//! against. After every snapshot swap the registry sweeps them all: revoking a token, blocking
//! or removing a subscription, deleting an application, or blocking or retiring an API closes
//! exactly the connections it concerns (close 1008 with the reason); a connection whose limits
//! changed (its plan, its application's, its API's) is told to follow the new ones. A config-file
//! API removed by a reload keeps its connections through the reload's grace, then they are told
//! to go away (1001). On shutdown every connection is told to go away (1001), and connections
//! that register later are told at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::auth::Principal;
use crate::policy::{Admission, ConnLimits};
use crate::relay::Metering;
use crate::relay::live::Live;
use crate::snapshot::{Denial, Snapshot};
use wsgate_core::session::SessionRecord;
use wsgate_counters::Counters;

#[derive(Debug)]
pub struct Registry {
    /// Locked on connect, disconnect, sweep and shutdown; never per frame.
    state: Mutex<State>,
    next_id: AtomicU64,
    /// What connections told to follow new limits draw their budgets from.
    counters: Arc<dyn Counters>,
}

#[derive(Debug, Default)]
struct State {
    live: HashMap<u64, Entry>,
    /// Set by shutdown: the close every connection gets, including those registering later.
    closing: Option<(u16, &'static str)>,
}

#[derive(Debug)]
struct Entry {
    live: Arc<Live>,
    /// [`crate::route::Api::counter_key`] of its API.
    api_key: String,
    caller: Option<Arc<Principal>>,
    client: IpAddr,
    limits: Arc<ConnLimits>,
    /// What its interim session records start from, when records are kept.
    session: Option<Arc<SessionRecord>>,
}

/// Keeps a connection in the registry while it lives; dropping it removes the connection.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().live.remove(&self.id);
    }
}

impl Registry {
    pub fn new(counters: Arc<dyn Counters>) -> Registry {
        Registry { state: Mutex::default(), next_id: AtomicU64::new(0), counters }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an upgraded connection; `live` is how the registry reaches its relay.
    /// `session` is the template of its interim session records, if records are kept.
    pub fn register(
        self: &Arc<Self>,
        admission: &Admission,
        client: IpAddr,
        live: Arc<Live>,
        session: Option<Arc<SessionRecord>>,
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            api_key: admission.route.api.counter_key(),
            caller: admission.caller.clone(),
            client,
            limits: admission.limits.clone(),
            live,
            session,
        };
        let mut state = self.lock();
        if let Some((code, reason)) = state.closing {
            entry.live.stop(code, reason);
        }
        state.live.insert(id, entry);
        Registration { registry: self.clone(), id }
    }

    /// Connections registered now.
    pub fn len(&self) -> usize {
        self.lock().live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The connections that keep session records, with their record template (taken under the
    /// lock, read after it).
    pub fn sessions(&self) -> Vec<(Arc<SessionRecord>, Arc<Live>)> {
        let state = self.lock();
        state.live.values().filter_map(|e| Some((e.session.clone()?, e.live.clone()))).collect()
    }

    /// Tells every connection, and every one that registers from now on, to close.
    pub fn stop_all(&self, code: u16, reason: &'static str) {
        let mut state = self.lock();
        state.closing = Some((code, reason));
        for entry in state.live.values() {
            entry.live.stop(code, reason);
        }
    }

    /// Tells the connections of config-file APIs that `snapshot` no longer routes to go away
    /// (1001); returns how many.
    pub fn stop_removed_file_apis(&self, snapshot: &Snapshot) -> usize {
        let apis = snapshot.routes.by_key();
        let state = self.lock();
        let mut stopped = 0;
        for entry in state.live.values().filter(|e| e.api_key.starts_with("file:") && !apis.contains_key(&e.api_key)) {
            entry.live.stop(1001, "API removed from the config file");
            stopped += 1;
        }
        stopped
    }

    /// Stops every live connection that `snapshot` no longer allows, and tells those whose
    /// limits changed to follow the new ones.
    pub fn sweep(&self, snapshot: &Snapshot) {
        let apis = snapshot.routes.by_key();
        let mut state = self.lock();
        for entry in state.live.values_mut() {
            let api = match apis.get(&entry.api_key) {
                Some(api) => api,
                // A file API removed by a reload keeps its connections through the reload's grace
                // (`stop_removed_file_apis`); store APIs vanish when retired.
                None if entry.api_key.starts_with("file:") => continue,
                None => {
                    entry.live.stop(1008, "API retired or deleted");
                    continue;
                }
            };
            if let Some(managed) = &api.managed {
                if managed.blocked {
                    entry.live.stop(1008, "API blocked");
                    continue;
                }
                if let Some(caller) = &entry.caller
                    && let Some(reason) = refusal(snapshot, caller, &managed.id)
                {
                    entry.live.stop(1008, reason);
                    continue;
                }
            }
            let limits = ConnLimits::resolve(snapshot, api, entry.caller.as_deref(), entry.client);
            if limits != *entry.limits {
                entry.limits = Arc::new(limits);
                entry.live.follow(Metering { limits: entry.limits.clone(), counters: self.counters.clone() });
            }
        }
    }
}

/// Why `caller` may no longer use API `api_id` under `snapshot`, if it may not.
fn refusal(snapshot: &Snapshot, caller: &Principal, api_id: &str) -> Option<&'static str> {
    if snapshot.access.is_revoked(&caller.jti, &caller.application_id, caller.issued_at) {
        return Some("token revoked");
    }
    match snapshot.access.allows(&caller.application_id, api_id) {
        Ok(_) => None,
        Err(Denial::ApplicationDeleted) => Some("application deleted"),
        Err(Denial::NotSubscribed) => Some("subscription removed"),
        Err(Denial::SubscriptionBlocked) => Some("subscription blocked"),
    }
}

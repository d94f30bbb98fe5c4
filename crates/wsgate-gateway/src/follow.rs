//! Following the store and the config file: load everything into a new snapshot, swap it in,
//! then run the after-swap hooks (the registry's sweep: revoked and blocked connections close,
//! live connections follow changed limits). Changes come from the store's change feed; bursts
//! are taken together and reloaded once. A config reload swaps in the file's new APIs over the
//! store's contents as last loaded, without asking the store again.
//!
//! Only changes the gateway reads trigger a reload: a flood of sign-ups (users) costs the data
//! plane nothing. While the store is unreachable the last snapshot keeps serving.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use wsgate_core::config::ApiSpec;
use wsgate_core::version;
use wsgate_store::{Change, Store, StoreError};

use crate::snapshot::{Snapshot, SnapshotHandle, StoreView, build};

/// Runs after each swap with the new snapshot.
pub type AfterSwap = Box<dyn Fn(&Snapshot) + Send + Sync>;

/// What the snapshot is built from, and who is told when it changes. The follow loop (new
/// store contents) and config reloads (new file APIs) both rebuild through it; its lock makes
/// each rebuild-and-swap one step, so neither undoes the other's change.
pub(crate) struct Sources {
    inputs: Mutex<Inputs>,
    handle: SnapshotHandle,
    after_swap: Vec<AfterSwap>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

/// The inputs of the next snapshot.
pub(crate) struct Inputs {
    pub file_apis: Vec<ApiSpec>,
    /// The store's contents as last loaded: empty until the gateway follows a store.
    pub view: StoreView,
    /// The `iss` of the control plane's tokens; `None`: no token is valid.
    pub issuer: Option<String>,
    generation: u64,
    /// APIs that skip upstream certificate checks, warned about already.
    unverified: HashMap<String, (String, String)>,
}

impl Sources {
    /// Sources of the snapshot `handle` holds now, built from `file_apis` alone.
    pub fn new(file_apis: Vec<ApiSpec>, handle: SnapshotHandle, after_swap: Vec<AfterSwap>) -> Sources {
        // `Gateway::on` warned about the config file's APIs already.
        let unverified = handle.current().routes.unverified();
        let inputs = Inputs { file_apis, view: StoreView::default(), issuer: None, generation: 1, unverified };
        Sources { inputs: Mutex::new(inputs), handle, after_swap }
    }

    /// Changes the inputs with `update`, then builds the snapshot, swaps it in and runs the
    /// hooks, all under the lock. Returns what `update` returned.
    pub fn swap<R>(&self, update: impl FnOnce(&mut Inputs) -> R) -> R {
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        let result = update(&mut inputs);
        let mut next = build(&inputs.file_apis, &inputs.view, inputs.issuer.as_deref());
        next.generation = inputs.generation;
        inputs.generation += 1;
        warn_unverified(&mut inputs.unverified, &next);
        let snapshot = self.handle.replace(next);
        for hook in &self.after_swap {
            hook(&snapshot);
        }
        result
    }
}

/// What a reload changed in the config file's APIs, each named `context version`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileApiChanges {
    pub added: Vec<String>,
    /// Same context and version, other settings: live connections go on under the new ones.
    pub changed: Vec<String>,
    /// Live connections get 1001 after `reload_grace`.
    pub removed: Vec<String>,
}

impl FileApiChanges {
    /// What differs from `old` to `new`; an API is known by its context and canonical version.
    pub fn between(old: &[ApiSpec], new: &[ApiSpec]) -> FileApiChanges {
        let by_route = |apis: &[ApiSpec]| -> BTreeMap<(String, String), ApiSpec> {
            apis.iter()
                .map(|api| ((api.context.clone(), version::canonical(&api.version).to_string()), api.clone()))
                .collect()
        };
        let named = |api: &ApiSpec| format!("{} {}", api.context, api.version);
        let (old, new) = (by_route(old), by_route(new));
        let mut changes = FileApiChanges::default();
        for (route, api) in &new {
            match old.get(route) {
                None => changes.added.push(named(api)),
                Some(before) if before != api => changes.changed.push(named(api)),
                Some(_) => {}
            }
        }
        changes.removed =
            old.iter().filter(|(route, _)| !new.contains_key(*route)).map(|(_, api)| named(api)).collect();
        changes
    }
}

/// Whether a change is one the snapshot is built from.
fn concerns_gateway(change: Change) -> bool {
    !matches!(change, Change::Users)
}

/// Warns once about each API that starts skipping upstream certificate checks, not at every
/// rebuild of the snapshot; `unverified` is what was warned about so far.
fn warn_unverified(unverified: &mut HashMap<String, (String, String)>, next: &Snapshot) {
    let now = next.routes.unverified();
    for (key, (name, version)) in &now {
        if !unverified.contains_key(key) {
            tracing::warn!(api = %name, version = %version, "insecure_skip_verify: upstream certificates are NOT verified for this API");
        }
    }
    *unverified = now;
}

/// Loads the store into the snapshot now (with `file_apis` and `issuer`), then keeps it
/// current until `shutdown`.
pub async fn follow(
    sources: Arc<Sources>,
    store: Arc<dyn Store>,
    file_apis: Vec<ApiSpec>,
    issuer: Option<String>,
    shutdown: CancellationToken,
) -> Result<(), StoreError> {
    // Subscribe before the first load, so a change committed in between is not missed.
    let mut changes = store.changes();
    let view = StoreView::load(store.as_ref()).await?;
    sources.swap(|inputs| {
        inputs.file_apis = file_apis;
        inputs.issuer = issuer;
        inputs.view = view;
    });
    tokio::spawn(async move {
        loop {
            let mut wanted = tokio::select! {
                _ = shutdown.cancelled() => return,
                change = changes.recv() => match change {
                    Ok(change) => concerns_gateway(change),
                    // Missed some: reload everything, which is what happens anyway.
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return,
                },
            };
            // Changes often come in bursts (create then publish): take them all, reload once.
            loop {
                match changes.try_recv() {
                    Ok(change) => wanted |= concerns_gateway(change),
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => wanted = true,
                    Err(_) => break,
                }
            }
            if !wanted {
                continue;
            }
            loop {
                match StoreView::load(store.as_ref()).await {
                    Ok(view) => {
                        sources.swap(|inputs| inputs.view = view);
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot reload from the store; the previous snapshot stays");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(context: &str, version: &str, endpoint: &str) -> ApiSpec {
        ApiSpec {
            name: "A".into(),
            context: context.into(),
            version: version.into(),
            endpoints: vec![endpoint.into()],
            auth: wsgate_core::config::AuthMode::None,
            ..ApiSpec::default()
        }
    }

    #[test]
    fn changes_between_two_files_are_added_changed_and_removed_by_context_and_version() {
        let old = [
            api("/a", "1.0", "ws://u:1"),
            api("/b", "1.0", "ws://u:1"),
            api("/c", "1", "ws://u:1"),
            api("/e", "1", "ws://u:1"),
        ];
        let new = [
            api("/a", "1.0", "ws://u:1"),
            api("/b", "1.0", "ws://u:2"),
            api("/d", "2.0", "ws://u:1"),
            // The same route with its version written another way: the same API, changed.
            api("/e", "1.0.0", "ws://u:1"),
        ];
        let changes = FileApiChanges::between(&old, &new);
        assert_eq!(changes.added, ["/d 2.0"]);
        assert_eq!(changes.changed, ["/b 1.0", "/e 1.0.0"]);
        assert_eq!(changes.removed, ["/c 1"]);
        assert_eq!(FileApiChanges::between(&new, &new), FileApiChanges::default());
    }

    #[test]
    fn a_swap_of_file_apis_keeps_the_store_contents_and_counts_generations() {
        let handle = SnapshotHandle::default();
        let sources = Sources::new(Vec::new(), handle.clone(), Vec::new());
        sources.swap(|inputs| inputs.issuer = Some("https://issuer".into()));
        let first = handle.current();
        sources.swap(|inputs| inputs.file_apis = vec![api("/a", "1.0", "ws://127.0.0.1:1")]);
        let second = handle.current();
        assert_eq!((first.generation, second.generation), (1, 2));
        assert_eq!(second.access.issuer.as_deref(), Some("https://issuer"), "the rest of the inputs stay");
        assert!(second.routes.resolve("/a/1.0").is_some(), "the new file API routes");
        assert!(first.routes.resolve("/a/1.0").is_none());
    }
}

//! What the gateway knows about APIs, as one immutable snapshot. The store is never queried on
//! a connection's path: the snapshot is rebuilt from the store's change feed and swapped in
//! whole, and each connection resolves its route against the snapshot current at its handshake.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wsgate_core::config::ApiSpec;
use wsgate_core::model::ApiRecord;
use wsgate_store::{Change, Store, StoreError};

use crate::route::{Api, RouteTable};

/// Everything a handshake looks up.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub routes: RouteTable,
}

/// A cheap-clone handle to the current snapshot. Readers take the lock only to clone an `Arc`,
/// once per handshake; the relay never touches it.
#[derive(Debug, Clone, Default)]
pub struct SnapshotHandle(Arc<RwLock<Arc<Snapshot>>>);

impl SnapshotHandle {
    pub fn new(snapshot: Snapshot) -> SnapshotHandle {
        SnapshotHandle(Arc::new(RwLock::new(Arc::new(snapshot))))
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn replace(&self, snapshot: Snapshot) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
    }
}

/// Builds routes from the config file's APIs and the store's invokable ones. A store API whose
/// TLS settings do not load is left out (and logged) rather than taking the others down; file
/// APIs win over store APIs with the same context and version.
pub fn build(file_apis: &[ApiSpec], store_apis: &[ApiRecord]) -> Snapshot {
    let mut specs = Vec::new();
    let mut apis = Vec::new();
    let store_specs = store_apis.iter().filter(|record| record.state.invokable()).map(ApiRecord::to_spec);
    for spec in store_specs.chain(file_apis.iter().cloned()) {
        match Api::from_spec(&spec) {
            Ok(api) => {
                apis.push(api);
                specs.push(spec);
            }
            Err(err) => tracing::error!(api = %spec.name, version = %spec.version, error = %err, "API left out of routing"),
        }
    }
    Snapshot { routes: RouteTable::from_apis(apis, &specs) }
}

/// Loads the store's APIs into `handle` now, then keeps it current until `shutdown`. While the
/// store is unreachable the last snapshot keeps serving.
pub async fn follow(
    store: Arc<dyn Store>,
    file_apis: Vec<ApiSpec>,
    handle: SnapshotHandle,
    shutdown: CancellationToken,
) -> Result<(), StoreError> {
    // Subscribe before the first load, so a change committed in between is not missed.
    let mut changes = store.changes();
    handle.replace(build(&file_apis, &store.list_apis().await?));
    tokio::spawn(async move {
        loop {
            let relevant = tokio::select! {
                _ = shutdown.cancelled() => return,
                change = changes.recv() => match change {
                    Ok(change) => change == Change::Apis,
                    // Missed some: reload to be sure. Closed: the store is gone.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            };
            if !relevant {
                continue;
            }
            // Changes often come in bursts (create then publish): take them all, reload once.
            while changes.try_recv().is_ok() {}
            loop {
                match store.list_apis().await {
                    Ok(apis) => {
                        handle.replace(build(&file_apis, &apis));
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot reload APIs; the previous routes stay");
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

//! Following the store: load everything into a new snapshot, swap it in, then run the
//! after-swap hooks (the registry's sweep: revoked and blocked connections close, live
//! connections follow changed limits). Changes come from the store's change feed; bursts are
//! taken together and reloaded once.
//!
//! Only changes the gateway reads trigger a reload: a flood of sign-ups (users) costs the data
//! plane nothing. While the store is unreachable the last snapshot keeps serving.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use wsgate_core::config::ApiSpec;
use wsgate_store::{Change, Store, StoreError};

use crate::snapshot::{Snapshot, SnapshotHandle, StoreView, build};

/// Runs after each swap with the new snapshot.
pub type AfterSwap = Box<dyn Fn(&Snapshot) + Send + Sync>;

/// Where the snapshot comes from and who is told when it changes.
pub struct Follow {
    pub store: Arc<dyn Store>,
    pub file_apis: Vec<ApiSpec>,
    pub issuer: Option<String>,
    pub handle: SnapshotHandle,
    pub after_swap: Vec<AfterSwap>,
}

/// Whether a change is one the snapshot is built from.
fn concerns_gateway(change: Change) -> bool {
    !matches!(change, Change::Users)
}

/// Warns once about each API that starts skipping upstream certificate checks, not at every
/// rebuild of the snapshot; `unverified` is what was warned about so far.
fn warn_unverified(unverified: &mut std::collections::HashMap<String, (String, String)>, next: &Snapshot) {
    let now = next.routes.unverified();
    for (key, (name, version)) in &now {
        if !unverified.contains_key(key) {
            tracing::warn!(api = %name, version = %version, "insecure_skip_verify: upstream certificates are NOT verified for this API");
        }
    }
    *unverified = now;
}

/// Loads the store into the snapshot now, then keeps it current until `shutdown`.
pub async fn follow(follow: Follow, shutdown: CancellationToken) -> Result<(), StoreError> {
    let Follow { store, file_apis, issuer, handle, after_swap } = follow;
    // Subscribe before the first load, so a change committed in between is not missed.
    let mut changes = store.changes();
    let mut generation = 0;
    // `Gateway::bind` warned about the config file's APIs already.
    let mut unverified = handle.current().routes.unverified();
    let mut swap = move |view: &StoreView| {
        let mut next = build(&file_apis, view, issuer.as_deref());
        next.generation = generation;
        generation += 1;
        warn_unverified(&mut unverified, &next);
        let snapshot = handle.replace(next);
        for hook in &after_swap {
            hook(&snapshot);
        }
    };
    swap(&StoreView::load(store.as_ref()).await?);
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
                        swap(&view);
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

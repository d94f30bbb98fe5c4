//! The cluster's one-writer jobs: what must run on one node at a time, never twice and never
//! not at all when that node dies.
//!
//! Every node runs [`start`]'s task. Each tick (a third of `cluster.duties_lease`) it asks the
//! store for the lease [`LEASE`] (taken when free or expired, renewed when already ours; see
//! `Store::acquire_lease`), and while it holds it runs the jobs:
//! - signing-key pre-rotation: the next key is made a little before the current one stops
//!   signing, so that no node meets the edge without a key;
//! - analytics retention: buckets older than `analytics.retention` are deleted, hourly.
//!
//! Analytics aggregation is not among them: each node stores its own counts, and the store adds
//! them up (see `wsgate_analytics`).
//!
//! A node that dies stops renewing; another takes the lease once it has expired, within
//! `duties_lease` and a tick. A clean shutdown releases it at once. The lease makes one writer
//! the normal case; the jobs are safe even if two nodes ever overlapped (a node cut off from the
//! store while its lease expired): the store makes a rotation exclusive and checks it, and
//! deleting old buckets twice deletes nothing more.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use wsgate_control::KeyManager;
use wsgate_store::Store;

/// The lease's name in the store.
pub const LEASE: &str = "duties";

/// What the runner needs: the store, this node's name for the lease, and the jobs' settings.
pub struct Duties {
    pub store: Arc<dyn Store>,
    /// This node's id among the nodes sharing the store (`heartbeat::node_id`, the node list's).
    pub holder: String,
    /// `cluster.duties_lease`.
    pub lease: Duration,
    /// This node's key manager, when it runs the control plane (a gateway-only node does not
    /// pre-rotate; the control-plane nodes still make a key at the edge, once).
    pub keys: Option<KeyManager>,
    /// `analytics.retention`, when analytics are on.
    pub retention: Option<Duration>,
    /// `wsgate_cluster_duties`: 1 while this node holds the duties, when metrics are on.
    pub gauge: Option<metrics::Gauge>,
}

/// Runs the duties until `shutdown`, then releases the lease if this node holds it.
pub fn start(duties: Duties, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(duties.run(shutdown))
}

impl Duties {
    async fn run(self, shutdown: CancellationToken) {
        let tick = (self.lease / 3).max(Duration::from_millis(500));
        let mut ticks = tokio::time::interval(tick);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let mut holding = false;
        let mut retention_due = Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let held = match self.store.acquire_lease(LEASE, &self.holder, now_ms(), lease_ms).await {
                Ok(held) => held,
                Err(error) => {
                    // Unrenewed, the lease expires and another node takes over; this one stops
                    // until it can renew.
                    tracing::warn!(%error, "cannot renew the cluster's duties lease; pausing its jobs");
                    false
                }
            };
            if held != holding {
                holding = held;
                if holding {
                    tracing::info!(holder = %self.holder, "this node took the cluster's duties (key rotation, retention)");
                    retention_due = Instant::now();
                } else {
                    tracing::info!(holder = %self.holder, "this node no longer holds the cluster's duties");
                }
                if let Some(gauge) = &self.gauge {
                    gauge.set(if holding { 1.0 } else { 0.0 });
                }
            }
            if holding {
                self.pre_rotate(tick).await;
                if Instant::now() >= retention_due {
                    self.delete_expired_analytics().await;
                    retention_due = Instant::now() + wsgate_analytics::RETENTION_EVERY;
                }
            }
        }
        if holding {
            match self.store.release_lease(LEASE, &self.holder).await {
                Ok(()) => tracing::info!(holder = %self.holder, "released the cluster's duties"),
                Err(error) => {
                    tracing::warn!(%error, "cannot release the cluster's duties; they pass on when the lease expires")
                }
            }
        }
    }

    /// Makes the next signing key when the current one stops signing within two ticks, so it
    /// exists before the edge even if a tick is missed.
    async fn pre_rotate(&self, tick: Duration) {
        let Some(keys) = &self.keys else { return };
        let margin = i64::try_from((2 * tick).as_secs()).unwrap_or(i64::MAX).max(1);
        if let Err(error) = keys.pre_rotate(margin).await {
            tracing::warn!(%error, "cannot make the next signing key ahead of time; the edge will make it");
        }
    }

    async fn delete_expired_analytics(&self) {
        let Some(retention) = self.retention else { return };
        if let Err(error) = wsgate_analytics::delete_expired(&*self.store, retention).await {
            tracing::warn!(%error, "cannot delete expired session analytics; retrying within the hour");
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

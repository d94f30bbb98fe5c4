//! The session analytics writer: the gateway's [`SessionSink`], which turns session records into
//! per-minute buckets in the store, off every connection's path.
//!
//! `record` only tries to put the record on a bounded queue (a full queue drops it and counts
//! it). One task takes records off the queue, aggregates them in memory (`aggregate`), and
//! stores what it has every `flush_interval` or `batch` records, in one transaction. When the
//! store fails, the buckets are kept for the next flush, as far as their bound allows, and the
//! failure is logged once per [`LOG_EVERY`]; so an outage costs bounded memory, not an unbounded
//! backlog. [`WriterHandle::shutdown`] stores what is queued before returning.
//!
//! Every node of a cluster runs its own writer: storing is additive (the store adds a batch's
//! counts to the stored ones, in one transaction), so nodes writing the same minute of the same
//! API add up instead of overwriting each other, and no node needs to be the only writer.
//! Deleting old buckets ([`delete_expired`]) is different: it is one job for the whole store,
//! run by the node that holds the cluster's duties (the binary's `duties`), not by each writer.

mod aggregate;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use wsgate_core::config::AnalyticsSettings;
use wsgate_core::session::{SessionRecord, SessionSink};
use wsgate_store::Store;
use wsgate_store::analytics::MINUTE;

use aggregate::{Aggregator, Overflow};
pub use aggregate::{api_key, minute_of};

/// The longest the writer stays silent about a store that keeps failing.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// Buckets held in memory at most (a minute of one API and application is one), and
/// connections followed across their interim records at most.
const MAX_BUCKETS: usize = 100_000;
const MAX_LIVE: usize = 1_000_000;

/// What the writer has counted, for tests and the operator's logs.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Records dropped because the queue was full.
    pub dropped_records: AtomicU64,
    /// Records (or buckets after a failed flush) not counted because memory was at its bound.
    pub dropped_buckets: AtomicU64,
    /// Batches stored.
    pub flushes: AtomicU64,
    /// Flushes that failed (their buckets were kept, if there was room).
    pub failed_flushes: AtomicU64,
}

/// The gateway's session sink. Cheap to call from any connection.
#[derive(Debug)]
pub struct AnalyticsWriter {
    queue: mpsc::Sender<SessionRecord>,
    stats: Arc<WriterStats>,
}

impl SessionSink for AnalyticsWriter {
    fn record(&self, record: SessionRecord) {
        if self.queue.try_send(record).is_err() {
            self.stats.dropped_records.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl AnalyticsWriter {
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }
}

/// Owns the writer's task: stop it with [`WriterHandle::shutdown`].
#[derive(Debug)]
pub struct WriterHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl WriterHandle {
    /// Stores every record already queued, then ends the task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the analytics writer ended abnormally");
        }
    }
}

/// Starts the writer on the current runtime.
pub fn start(store: Arc<dyn Store>, settings: &AnalyticsSettings) -> (Arc<AnalyticsWriter>, WriterHandle) {
    let (queue, records) = mpsc::channel(settings.queue.max(1));
    let stats = Arc::new(WriterStats::default());
    let (stop, stopped) = watch::channel(false);
    let retention = seconds(settings.retention);
    let task = Task {
        store,
        records,
        stopped,
        stats: Arc::clone(&stats),
        aggregator: Aggregator::new(MAX_BUCKETS, MAX_LIVE, retention),
        flush_interval: settings.flush_interval,
        batch: settings.batch.max(1),
        last_logged: None,
        unlogged_failures: 0,
    };
    let task = tokio::spawn(task.run());
    (Arc::new(AnalyticsWriter { queue, stats }), WriterHandle { stop, task })
}

struct Task {
    store: Arc<dyn Store>,
    records: mpsc::Receiver<SessionRecord>,
    stopped: watch::Receiver<bool>,
    stats: Arc<WriterStats>,
    aggregator: Aggregator,
    flush_interval: Duration,
    batch: usize,
    last_logged: Option<Instant>,
    unlogged_failures: u64,
}

impl Task {
    async fn run(mut self) {
        let mut flush = tokio::time::interval(self.flush_interval);
        flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = self.records.recv() => match received {
                    Some(record) => {
                        self.add(&record);
                        if self.aggregator.records() >= self.batch {
                            self.flush().await;
                        }
                    }
                    // Every sender is gone: nothing more can come.
                    None => break,
                },
                _ = flush.tick() => self.flush().await,
                _ = self.stopped.changed() => break,
            }
        }
        // Shutdown: what is queued now is the last of it.
        while let Ok(record) = self.records.try_recv() {
            self.add(&record);
        }
        self.flush().await;
        let dropped_records = self.stats.dropped_records.load(Ordering::Relaxed);
        let dropped_buckets = self.stats.dropped_buckets.load(Ordering::Relaxed);
        if dropped_records + dropped_buckets > 0 || !self.aggregator.is_empty() {
            tracing::warn!(
                dropped_records,
                dropped_buckets,
                unstored = !self.aggregator.is_empty(),
                "session analytics were incomplete in this run (queue full or store unavailable)"
            );
        }
    }

    fn add(&mut self, record: &SessionRecord) {
        if let Err(Overflow::Buckets) = self.aggregator.add(record) {
            self.stats.dropped_buckets.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn flush(&mut self) {
        if self.aggregator.is_empty() {
            return;
        }
        let buckets = self.aggregator.take();
        match self.store.add_analytics(&buckets).await {
            Ok(()) => {
                self.stats.flushes.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                self.stats.failed_flushes.fetch_add(1, Ordering::Relaxed);
                let dropped = self.aggregator.restore(buckets);
                self.stats.dropped_buckets.fetch_add(dropped as u64, Ordering::Relaxed);
                self.log_failure(&error);
            }
        }
    }

    /// Logs the first failure, then at most one line per [`LOG_EVERY`] with how many failed.
    fn log_failure(&mut self, error: &wsgate_store::StoreError) {
        self.unlogged_failures += 1;
        if self.last_logged.is_some_and(|at| at.elapsed() < LOG_EVERY) {
            return;
        }
        let dropped =
            self.stats.dropped_buckets.load(Ordering::Relaxed) + self.stats.dropped_records.load(Ordering::Relaxed);
        tracing::warn!(
            %error,
            failures = self.unlogged_failures,
            dropped,
            "session analytics could not be stored; keeping them in memory (bounded) and retrying"
        );
        self.unlogged_failures = 0;
        self.last_logged = Some(Instant::now());
    }
}

/// How often [`delete_expired`] should run: buckets outlive the retention by at most this.
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Retention: deletes the buckets older than `retention` (the minute that began `retention`
/// ago is kept). One job for the whole store, whichever node runs it, as often as
/// [`RETENTION_EVERY`].
pub async fn delete_expired(store: &dyn Store, retention: Duration) -> Result<(), wsgate_store::StoreError> {
    store.delete_analytics_before(retention_cutoff(now_ms(), retention)).await
}

/// The first minute (Unix seconds) retention keeps at `now_ms`.
fn retention_cutoff(now_ms: i64, retention: Duration) -> i64 {
    minute_of(now_ms) - seconds(retention).saturating_sub(MINUTE)
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_the_minute_that_began_retention_ago() {
        let now_ms = 1_750_000_030_000; // 30 s into a minute
        let hour = Duration::from_secs(3600);
        assert_eq!(retention_cutoff(now_ms, hour), minute_of(now_ms) - 3540);
        assert_eq!(retention_cutoff(now_ms, Duration::from_secs(60)), minute_of(now_ms));
    }
}

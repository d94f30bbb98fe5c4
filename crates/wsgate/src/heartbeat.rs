//! The node's heartbeat: its record in the store's node list (addresses, version, start, open
//! connections), written at start, then every `[cluster] heartbeat_interval`, and a last time
//! marked stopped when the node shuts down cleanly. Each beat also deletes the records of nodes
//! not seen for `[cluster] node_retention`.
//!
//! The heartbeat never affects serving: it runs on a task of its own, reads the connection
//! count once per beat, and a store that fails is logged once per outage and tried again at the
//! next beat.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use wsgate_core::config::ClusterSettings;
use wsgate_core::node::NodeRecord;
use wsgate_gateway::registry::Registry;
use wsgate_store::{Store, StoreError};

/// The longest the last record may take on shutdown: a store that is down must not hold the
/// exit.
const LAST_WRITE_LIMIT: Duration = Duration::from_secs(3);

/// The running heartbeat; [`Heartbeat::stop`] writes the last record.
pub struct Heartbeat {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Where this node listens, as bound (`host:port`), for its record.
pub struct Addresses {
    pub ws: Option<std::net::SocketAddr>,
    pub wss: Option<std::net::SocketAddr>,
    pub control: Option<std::net::SocketAddr>,
}

impl Heartbeat {
    /// Writes the node's first record now (so the node is listed once `serve` says it
    /// listens), then beats on a task of its own until [`Heartbeat::stop`].
    pub async fn start(
        store: Arc<dyn Store>,
        settings: &ClusterSettings,
        id: String,
        addresses: Addresses,
        registry: Arc<Registry>,
    ) -> Heartbeat {
        let record = first_record(settings, id, addresses);
        tracing::info!(node = %record.id, name = %record.name, "this node's id in the node list");
        let mut beat = Beat {
            store,
            record,
            registry,
            interval: settings.heartbeat_interval,
            retention: settings.node_retention,
            outage: Outage::default(),
        };
        beat.beat().await;
        let stop = CancellationToken::new();
        let task = tokio::spawn(beat.run(stop.clone()));
        Heartbeat { stop, task }
    }

    /// Stops beating and writes the last record, marked stopped (within a few seconds, or the
    /// node shows as gone instead).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

struct Beat {
    store: Arc<dyn Store>,
    record: NodeRecord,
    registry: Arc<Registry>,
    interval: Duration,
    retention: Duration,
    outage: Outage,
}

/// Whether the store is failing the heartbeat: an outage is logged when it starts and when it
/// ends, not at every beat in between.
#[derive(Debug, Default)]
struct Outage {
    failing: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Turn {
    Started,
    Ended,
    Unchanged,
}

impl Outage {
    fn note(&mut self, written: bool) -> Turn {
        let turn = match (self.failing, written) {
            (false, false) => Turn::Started,
            (true, true) => Turn::Ended,
            _ => Turn::Unchanged,
        };
        self.failing = !written;
        turn
    }
}

impl Beat {
    async fn run(mut self, stop: CancellationToken) {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + self.interval, self.interval);
        // A beat delayed by a slow store is not made up for by a burst.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticker.tick() => self.beat().await,
            }
        }
        self.last().await;
    }

    async fn beat(&mut self) {
        self.record.connections = self.registry.len() as u64;
        self.record.last_seen_ms = now_ms();
        let cut = self.record.last_seen_ms.saturating_sub(millis(self.retention));
        // Not one of the duties: it is idempotent, so every node running it costs one cheap
        // DELETE per beat and breaks nothing, and a node list never waits for a lease.
        let outcome = match self.store.put_node(&self.record).await {
            Ok(()) => self.store.delete_nodes_seen_before(cut).await,
            Err(error) => Err(error),
        };
        self.report(outcome);
    }

    fn report(&mut self, outcome: Result<(), StoreError>) {
        match (self.outage.note(outcome.is_ok()), outcome) {
            (Turn::Started, Err(error)) => tracing::warn!(
                %error,
                "heartbeat: cannot write this node's record to the store; trying again at every beat"
            ),
            (Turn::Ended, _) => tracing::info!("heartbeat: this node's record is written again"),
            _ => {}
        }
    }

    async fn last(mut self) {
        let now = now_ms();
        self.record.connections = self.registry.len() as u64;
        self.record.last_seen_ms = now;
        self.record.stopped_at = Some(now / 1000);
        match tokio::time::timeout(LAST_WRITE_LIMIT, self.store.put_node(&self.record)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "heartbeat: cannot mark this node stopped; it will show as gone"),
            Err(_) => tracing::warn!("heartbeat: the store did not answer in time; this node will show as gone"),
        }
    }
}

/// This process's id among the nodes (its node-list record, the holder of the duties' lease):
/// the host name and a random part, new at each start, so a restart is a new row.
pub fn node_id() -> String {
    format!("{}-{}", host_name(), random_hex())
}

/// The record of this process's start.
fn first_record(settings: &ClusterSettings, id: String, addresses: Addresses) -> NodeRecord {
    let now = now_ms();
    NodeRecord {
        id,
        name: settings.node_name.clone().unwrap_or_else(host_name),
        ws_addr: addresses.ws.map(|a| a.to_string()),
        wss_addr: addresses.wss.map(|a| a.to_string()),
        control_addr: addresses.control.map(|a| a.to_string()),
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: now / 1000,
        connections: 0,
        last_seen_ms: now,
        heartbeat_ms: millis(settings.heartbeat_interval),
        stopped_at: None,
    }
}

/// The machine's host name as the kernel has it, else `$HOSTNAME`, else "wsgate".
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .chain(std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty() && !name.chars().any(char::is_control))
        .unwrap_or_else(|| "wsgate".into())
}

/// Six random hex digits; without a random source, the process id keeps ids apart on one host.
fn random_hex() -> String {
    let mut bytes = [0u8; 3];
    match SystemRandom::new().fill(&mut bytes) {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => format!("{:06x}", std::process::id() & 0xff_ffff),
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_reported_when_it_starts_and_when_it_ends_only() {
        let mut outage = Outage::default();
        let turns: Vec<Turn> = [true, false, false, false, true, true, false].map(|ok| outage.note(ok)).into();
        use Turn::*;
        assert_eq!(turns, [Unchanged, Started, Unchanged, Unchanged, Ended, Unchanged, Started]);
    }

    #[test]
    fn each_start_gets_its_own_id_named_after_the_host() {
        let settings = ClusterSettings::default();
        let addresses = || Addresses { ws: "127.0.0.1:9099".parse().ok(), wss: None, control: None };
        let (a, b) = (first_record(&settings, node_id(), addresses()), first_record(&settings, node_id(), addresses()));
        assert_ne!(a.id, b.id);
        let host = host_name();
        assert_eq!(a.name, host);
        let suffix = a.id.strip_prefix(&format!("{host}-")).expect("the id starts with the host name");
        assert!(suffix.len() == 6 && suffix.chars().all(|c| c.is_ascii_hexdigit()), "{}", a.id);
        assert_eq!(a.ws_addr.as_deref(), Some("127.0.0.1:9099"));
        assert_eq!(a.heartbeat_ms, 5000);
        let named = ClusterSettings { node_name: Some("edge-1".into()), ..settings };
        assert_eq!(first_record(&named, node_id(), addresses()).name, "edge-1");
    }
}

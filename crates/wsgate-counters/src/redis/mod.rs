//! Counters shared by every node through Redis.
//!
//! - Message and byte rates: a token bucket per key in Redis. A node's [`Pool`] leases tokens
//!   from it in batches in the background and hands them to connections in chunks, so no frame
//!   waits on Redis; tokens a node leased and did not hand out for a second go back.
//! - Concurrent connections: a sorted set per key whose members are this node's connections,
//!   scored by an expiry that a heartbeat pushes forward every third of `lease_ttl`. A node that
//!   dies stops beating, and its connections stop counting by themselves.
//! - New connections per period: the same bucket as rates, one token per handshake.
//!
//! While Redis does not answer, every count falls back to this node's own tables (which always
//! count this node's connections too): `redis_failure = "open"` keeps admitting under them,
//! `"closed"` refuses new connections to limited APIs. A probe asks Redis every second; once it
//! answers, the heartbeat puts every live connection back into the shared sets and the shared
//! counts are exact again. The failure is logged when it starts, every 30 s while it lasts, and
//! when it ends.

mod scripts;

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;
use tokio::time::Instant;
use wsgate_core::config::{ClusterSettings, FailureMode};
use wsgate_core::limits::Rate;

use crate::local::{FULL_RETRY_AFTER, Tables};
use crate::pool::{Lender, Pool};
use crate::{Counters, CountersError, Health, Refusal, Slot, SlotOwner};

/// The longest a handshake waits for Redis before deciding without it.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest background work (leases, the heartbeat, releases) waits for an answer.
const BACKGROUND_TIMEOUT: Duration = Duration::from_secs(3);
/// Slow answers in a row that count as Redis being down. One slow answer (a busy machine) does
/// not make a node count alone; an error, or a second one in a row, does.
const SLOW_IN_A_ROW: u32 = 2;
/// How often a node that lost Redis asks again.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How often "still unreachable" is logged.
const LOG_EVERY: Duration = Duration::from_secs(30);
/// Leased tokens untouched this long go back to the shared bucket.
const RECLAIM_AFTER: Duration = Duration::from_secs(1);
/// Keys per heartbeat script call.
const REFRESH_BATCH: usize = 500;

/// The Redis counters; cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisCounters {
    inner: Arc<Inner>,
}

/// This node's tables (fallback counts, and the pools that lease from Redis) beside Redis.
/// The tables' pools reach `Shared` through a weak reference, so there is no cycle.
#[derive(Debug)]
struct Inner {
    tables: Arc<Tables>,
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    /// The live connection; `None` while Redis is down (the probe makes a new one).
    connection: Mutex<Option<MultiplexedConnection>>,
    /// Where Redis is, for log lines (never with a password).
    server: String,
    prefix: String,
    /// Distinguishes this process's slot members from every other node's.
    node: String,
    failure: FailureMode,
    lease_ttl: Duration,
    up: AtomicBool,
    /// Calls in a row that timed out; reset by any answer.
    slow: std::sync::atomic::AtomicU32,
    /// This node's slots held in Redis: member → key, for the heartbeat.
    live: Mutex<HashMap<u64, String>>,
    /// Slots to remove from Redis (a dropped [`Slot`] cannot await).
    releases: mpsc::UnboundedSender<(String, u64)>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("server", &self.server).field("up", &self.up).finish_non_exhaustive()
    }
}

impl RedisCounters {
    /// Starts the Redis counters; Redis need not answer yet. Must be called within a tokio
    /// runtime: the heartbeat, the probe and the lease work run as tasks that end when the
    /// counters are dropped.
    pub fn connect(url: &str, settings: &ClusterSettings) -> Result<RedisCounters, CountersError> {
        let client = redis::Client::open(url).map_err(|error| CountersError::InvalidRedisUrl(error.to_string()))?;
        let server = client.get_connection_info().addr().to_string();
        let (releases, released) = mpsc::unbounded_channel();
        let node = format!("{:016x}", RandomState::new().hash_one(std::process::id()));
        let shared = Arc::new(Shared {
            client,
            connection: Mutex::default(),
            server,
            prefix: settings.redis_prefix.clone(),
            node,
            failure: settings.redis_failure,
            lease_ttl: settings.lease_ttl,
            // Until the first probe answers, decide alone (as when Redis is down).
            up: AtomicBool::new(false),
            slow: std::sync::atomic::AtomicU32::new(0),
            live: Mutex::default(),
            releases,
        });
        let lender: Arc<dyn Lender> = Arc::new(WeakLender(Arc::downgrade(&shared)));
        let tables = Tables::new(Some(lender));
        tokio::spawn(run_background(Arc::downgrade(&shared), Arc::downgrade(&tables), released));
        Ok(RedisCounters { inner: Arc::new(Inner { tables, shared }) })
    }

    /// Whether Redis answered the last time it was asked.
    pub fn is_up(&self) -> bool {
        self.inner.shared.is_up()
    }

    /// Waits (up to `limit`) for Redis to answer once; for start-up and tests.
    pub async fn wait_until_up(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.inner.shared.is_up() || self.inner.shared.probe().await {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Shared {
    fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    fn member(&self, member: u64) -> String {
        format!("{}:{member}", self.node)
    }

    fn connection(&self) -> Option<MultiplexedConnection> {
        self.connection.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Redis failed a call: decide alone from now on, until the probe sees it answer.
    fn went_down(&self, error: &dyn std::fmt::Display) {
        *self.connection.lock().unwrap_or_else(PoisonError::into_inner) = None;
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                server = %self.server,
                %error,
                mode = ?self.failure,
                "Redis is unreachable: limits are counted by this node alone until it answers"
            );
        }
    }

    /// Connects and sends one PING; marks Redis up when it answers.
    async fn probe(&self) -> bool {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT));
        let attempt = async {
            let mut connection = self.client.get_multiplexed_async_connection_with_config(&config).await?;
            redis::cmd("PING").query_async::<String>(&mut connection).await?;
            Ok::<_, redis::RedisError>(connection)
        };
        match tokio::time::timeout(CALL_TIMEOUT * 2, attempt).await {
            Ok(Ok(connection)) => {
                *self.connection.lock().unwrap_or_else(PoisonError::into_inner) = Some(connection);
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!(server = %self.server, "Redis answers: limits are shared across nodes");
                }
                true
            }
            _ => false,
        }
    }

    /// Runs a script within [`CALL_TIMEOUT`] (a handshake waits for it).
    async fn run<T: redis::FromRedisValue>(&self, invocation: redis::ScriptInvocation<'_>) -> Option<T> {
        self.run_within(invocation, CALL_TIMEOUT).await
    }

    /// Runs a script within `limit`; an error, or [`SLOW_IN_A_ROW`] timeouts, mark Redis down.
    async fn run_within<T: redis::FromRedisValue>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
        limit: Duration,
    ) -> Option<T> {
        let mut connection = self.connection()?;
        match tokio::time::timeout(limit, invocation.invoke_async::<T>(&mut connection)).await {
            Ok(Ok(value)) => {
                self.slow.store(0, Ordering::Relaxed);
                Some(value)
            }
            Ok(Err(error)) => {
                self.went_down(&error);
                None
            }
            Err(_) => {
                if self.slow.fetch_add(1, Ordering::Relaxed) + 1 >= SLOW_IN_A_ROW {
                    self.went_down(&format!("no answer within {limit:?}, {SLOW_IN_A_ROW} times in a row"));
                }
                None
            }
        }
    }

    /// `{granted, wait_ms, left}` of the bucket script, waiting at most `limit`.
    async fn take(&self, key: &str, rate: Rate, want: i64, limit: Duration) -> Option<(u64, Duration)> {
        let period = rate.period.as_duration().as_millis() as u64;
        let mut invocation = scripts::TAKE.key(self.key(key));
        invocation.arg(rate.amount).arg(period).arg(want);
        let (granted, wait, _left): (i64, i64, i64) = self.run_within(invocation, limit).await?;
        Some((granted.max(0) as u64, Duration::from_millis(wait.max(0) as u64)))
    }
}

/// The tables' pools lease through this; weak, so pools do not keep Redis alive.
#[derive(Debug)]
struct WeakLender(Weak<Shared>);

impl Lender for WeakLender {
    fn is_up(&self) -> bool {
        self.0.upgrade().is_some_and(|shared| shared.is_up())
    }

    fn lend(&self, pool: Arc<Pool>, want: u64) {
        let Some(shared) = self.0.upgrade() else { return pool.lease_failed() };
        tokio::spawn(async move {
            match shared.take(pool.key(), pool.rate(), want as i64, BACKGROUND_TIMEOUT).await {
                Some((granted, wait)) => pool.credit(granted, (granted == 0).then_some(wait)),
                None => pool.lease_failed(),
            }
        });
    }
}

impl SlotOwner for Inner {
    fn release(&self, key: &str, member: u64) {
        self.tables.release_slot(key);
        let held = self.shared.live.lock().unwrap_or_else(PoisonError::into_inner).remove(&member).is_some();
        if held {
            let _ = self.shared.releases.send((key.to_string(), member));
        }
    }
}

impl Inner {
    /// Decides alone: this node's own count, or a refusal in fail-closed mode.
    fn decide_alone(self: &Arc<Self>, key: &str, cap: u32) -> Result<Slot, Refusal> {
        if self.shared.failure == FailureMode::Closed {
            return Err(Refusal::Unavailable { retry_after: PROBE_EVERY });
        }
        if !self.tables.try_slot(key, cap) {
            return Err(Refusal::Full { retry_after: FULL_RETRY_AFTER });
        }
        // Listed for the heartbeat, which adds it to Redis once Redis answers again.
        let member = self.tables.next_member();
        self.shared.live.lock().unwrap_or_else(PoisonError::into_inner).insert(member, key.to_string());
        Ok(Slot { key: key.to_string(), member, owner: Arc::downgrade(self) as Weak<dyn SlotOwner> })
    }
}

#[async_trait]
impl Counters for RedisCounters {
    async fn acquire_slot(&self, key: &str, cap: u32) -> Result<Slot, Refusal> {
        let inner = &self.inner;
        let shared = &inner.shared;
        if !shared.is_up() {
            return inner.decide_alone(key, cap);
        }
        let member = inner.tables.next_member();
        let mut invocation = scripts::ACQUIRE.key(shared.key(key));
        invocation.arg(cap).arg(shared.member(member)).arg(shared.lease_ttl.as_millis() as u64);
        match shared.run::<i64>(invocation).await {
            Some(1) => {
                inner.tables.add_slot(key);
                shared.live.lock().unwrap_or_else(PoisonError::into_inner).insert(member, key.to_string());
                Ok(Slot { key: key.to_string(), member, owner: Arc::downgrade(inner) as Weak<dyn SlotOwner> })
            }
            Some(_) => Err(Refusal::Full { retry_after: FULL_RETRY_AFTER }),
            None => inner.decide_alone(key, cap),
        }
    }

    async fn take_connection(&self, key: &str, rate: Rate) -> Result<(), Refusal> {
        let shared = &self.inner.shared;
        if shared.is_up()
            && let Some((granted, wait)) = shared.take(key, rate, 1, CALL_TIMEOUT).await
        {
            return if granted == 1 { Ok(()) } else { Err(Refusal::TooFast { retry_after: wait }) };
        }
        if shared.failure == FailureMode::Closed {
            return Err(Refusal::Unavailable { retry_after: PROBE_EVERY });
        }
        self.inner.tables.take_rate(key, rate).map_err(|retry_after| Refusal::TooFast { retry_after })
    }

    fn pool(&self, key: &str, rate: Rate) -> Arc<Pool> {
        self.inner.tables.pool(key, rate)
    }

    async fn open_slots(&self, key: &str) -> u64 {
        let shared = &self.inner.shared;
        if shared.is_up()
            && let Some(holders) = shared.run::<i64>(scripts::HOLDERS.key(shared.key(key))).await
        {
            return holders.max(0) as u64;
        }
        self.inner.tables.slots(key)
    }

    async fn tokens_left(&self, key: &str, rate: Rate) -> u64 {
        let shared = &self.inner.shared;
        if shared.is_up() {
            let mut invocation = scripts::PEEK.key(shared.key(key));
            invocation.arg(rate.amount).arg(rate.period.as_duration().as_millis() as u64);
            if let Some(left) = shared.run::<i64>(invocation).await {
                return left.max(0) as u64;
            }
        }
        self.inner.tables.tokens_left(key, rate)
    }

    fn health(&self) -> Health {
        if self.inner.shared.is_up() { Health::Shared } else { Health::SharedUnreachable }
    }
}

/// The heartbeat, the probe, slot releases and the return of idle leases, until the counters
/// are dropped.
async fn run_background(
    shared: Weak<Shared>,
    tables: Weak<Tables>,
    mut released: mpsc::UnboundedReceiver<(String, u64)>,
) {
    let Some(first) = shared.upgrade() else { return };
    let beat_every = first.lease_ttl / 3;
    drop(first);
    let mut beat = tokio::time::interval(beat_every);
    let mut tick = tokio::time::interval(PROBE_EVERY.min(RECLAIM_AFTER));
    let mut last_complaint: Option<Instant> = None;
    loop {
        tokio::select! {
            release = released.recv() => {
                let (Some((key, member)), Some(shared)) = (release, shared.upgrade()) else { return };
                if let Some(mut connection) = shared.connection() {
                    let mut command = redis::cmd("ZREM");
                    command.arg(shared.key(&key)).arg(shared.member(member));
                    let removal = command.query_async::<i64>(&mut connection);
                    if let Ok(Err(error)) = tokio::time::timeout(BACKGROUND_TIMEOUT, removal).await {
                        shared.went_down(&error);
                    }
                }
            }
            _ = beat.tick() => {
                let Some(shared) = shared.upgrade() else { return };
                if shared.is_up() {
                    heartbeat(&shared).await;
                }
            }
            _ = tick.tick() => {
                let (Some(shared), Some(tables)) = (shared.upgrade(), tables.upgrade()) else { return };
                if !shared.is_up() {
                    let was_up_before = last_complaint.is_none();
                    if shared.probe().await {
                        last_complaint = None;
                        // Put this node's connections back into the shared counts at once.
                        heartbeat(&shared).await;
                    } else if was_up_before || last_complaint.is_some_and(|at| at.elapsed() >= LOG_EVERY) {
                        if !was_up_before {
                            tracing::warn!(server = %shared.server, "Redis is still unreachable");
                        }
                        last_complaint = Some(Instant::now());
                    }
                    continue;
                }
                for pool in tables.pools() {
                    let idle = pool.reclaim(RECLAIM_AFTER);
                    if idle > 0 {
                        let _ = shared.take(pool.key(), pool.rate(), -(idle as i64), BACKGROUND_TIMEOUT).await;
                    }
                }
            }
        }
    }
}

/// Pushes the expiry of every slot this node holds (re-adding those Redis lost).
async fn heartbeat(shared: &Shared) {
    let live: Vec<(u64, String)> = shared
        .live
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(member, key)| (*member, key.clone()))
        .collect();
    for batch in live.chunks(REFRESH_BATCH) {
        let mut invocation = scripts::REFRESH.prepare_invoke();
        invocation.arg(shared.lease_ttl.as_millis() as u64);
        for (member, key) in batch {
            invocation.key(shared.key(key));
            invocation.arg(shared.member(*member));
        }
        if shared.run_within::<i64>(invocation, BACKGROUND_TIMEOUT).await.is_none() {
            return;
        }
    }
}

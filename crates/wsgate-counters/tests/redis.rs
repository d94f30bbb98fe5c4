//! The Redis counters against a real Redis: the machine's (`WSGATE_REDIS_URL`, default
//! `redis://127.0.0.1:6379`) for sharing, and a `redis-server` of the test's own on a free port
//! for the tests that kill it. Each test writes under a prefix of its own, so runs side by side
//! do not meet. Several `RedisCounters` in one process stand for several gateway nodes: they
//! share nothing but Redis.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use wsgate_core::config::{ClusterSettings, FailureMode};
use wsgate_core::limits::{Period, Rate};
use wsgate_counters::{Counters, Health, RedisCounters, Refusal};

fn shared_redis() -> String {
    std::env::var("WSGATE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn settings(url: &str, failure: FailureMode) -> ClusterSettings {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ClusterSettings {
        redis_url: Some(url.to_string()),
        redis_prefix: format!("wsgate-test-{}-{n}", std::process::id()),
        redis_failure: failure,
        lease_ttl: Duration::from_secs(2),
        ..ClusterSettings::default()
    }
}

/// A node of the cluster under test: counters over `settings`, once Redis answered.
async fn node(settings: &ClusterSettings) -> RedisCounters {
    let url = settings.redis_url.as_deref().unwrap();
    let counters = RedisCounters::connect(url, settings).expect("valid url");
    assert!(counters.wait_until_up(Duration::from_secs(5)).await, "Redis at {url} answers");
    counters
}

#[tokio::test]
async fn a_connection_cap_holds_exactly_across_nodes() {
    let settings = settings(&shared_redis(), FailureMode::Open);
    let (a, b) = (node(&settings).await, node(&settings).await);
    let first = a.acquire_slot("sub:1:conn", 2).await.expect("first on a");
    let _second = b.acquire_slot("sub:1:conn", 2).await.expect("second on b");
    assert!(matches!(a.acquire_slot("sub:1:conn", 2).await, Err(Refusal::Full { .. })));
    assert!(matches!(b.acquire_slot("sub:1:conn", 2).await, Err(Refusal::Full { .. })));
    assert_eq!(a.open_slots("sub:1:conn").await, 2);
    drop(first);
    // The release goes to Redis in the background.
    let mut freed = false;
    for _ in 0..50 {
        if b.acquire_slot("sub:1:conn", 2).await.is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "a slot freed on a is free for b");
}

#[tokio::test]
async fn a_dead_nodes_slots_expire_by_themselves() {
    let settings = settings(&shared_redis(), FailureMode::Open);
    let survivor = node(&settings).await;
    {
        let doomed = node(&settings).await;
        let held = doomed.acquire_slot("sub:2:conn", 1).await.expect("held by the doomed node");
        // A killed process releases nothing: forget the slot instead of dropping it.
        std::mem::forget(held);
    }
    assert!(matches!(survivor.acquire_slot("sub:2:conn", 1).await, Err(Refusal::Full { .. })));
    let started = std::time::Instant::now();
    let slot = loop {
        match survivor.acquire_slot("sub:2:conn", 1).await {
            Ok(slot) => break slot,
            Err(_) if started.elapsed() < Duration::from_secs(6) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(refusal) => panic!("the dead node's slot did not expire: {refusal:?}"),
        }
    };
    assert!(started.elapsed() >= Duration::from_millis(1500), "not before the lease ran out");
    drop(slot);
}

#[tokio::test]
async fn nodes_share_one_message_rate() {
    let settings = settings(&shared_redis(), FailureMode::Open);
    let nodes = [node(&settings).await, node(&settings).await, node(&settings).await];
    let rate = Rate::new(200, Period::Second);
    let pools: Vec<_> = nodes.iter().map(|n| n.pool("sub:3:msg", rate)).collect();
    let spend = Duration::from_secs(2);
    let started = tokio::time::Instant::now();
    let mut spent = 0u64;
    while started.elapsed() < spend {
        for pool in &pools {
            spent += pool.take(1, pool.chunk()).granted;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // A full bucket (200) plus two seconds of refill (400); each node may hold one batch more.
    let allowed = 200.0 + rate.per_second() * started.elapsed().as_secs_f64();
    let batch = 4 * pools[0].chunk();
    assert!(spent as f64 <= allowed * 1.02 + (3 * batch) as f64, "spent {spent}, allowed {allowed}");
    assert!(spent as f64 >= allowed * 0.9, "spent {spent} of {allowed}: the nodes starved");
}

/// A generous rate (chunks sized for a billion tokens a second) and a hundred connections
/// starting at once, as a busy subscription sees after a deploy: every one gets tokens from the
/// first lease, none waits for further round trips to Redis.
#[tokio::test]
async fn many_connections_starting_together_share_the_first_lease() {
    let settings = settings(&shared_redis(), FailureMode::Open);
    let counters = node(&settings).await;
    let pool = counters.pool("sub:4:msg", Rate::new(1_000_000_000, Period::Second));
    assert_eq!(pool.take(1, 1 + pool.chunk()).granted, 0, "nothing is leased before the first ask");
    until("the first lease arrives", || {
        let take = pool.take(1, 1);
        pool.give_back(take.granted);
        take.granted == 1
    })
    .await;
    let starved = (0..100).filter(|_| pool.take(1, 1 + pool.chunk()).granted == 0).count();
    assert_eq!(starved, 0, "connections left without a token by the first lease");
}

/// A `redis-server` of the test's own, on a free port, stopped when dropped.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut own = OwnRedis { port, child: None };
        own.restart();
        own
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian package redis-server)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not listen on {}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 5 s: {what}");
}

#[tokio::test]
async fn without_redis_fail_open_counts_alone_and_exact_sharing_returns() {
    let mut redis = OwnRedis::start();
    let settings = settings(&redis.url(), FailureMode::Open);
    let (a, b) = (Arc::new(node(&settings).await), node(&settings).await);
    let _held = a.acquire_slot("sub:4:conn", 2).await.expect("via Redis");
    redis.kill();
    // The first call after the crash finds out; every later one decides at once.
    let started = std::time::Instant::now();
    let during = a.acquire_slot("sub:4:conn", 2).await.expect("a's own count has room for one more");
    assert!(
        started.elapsed() <= Duration::from_millis(1500),
        "a dead Redis costs a handshake at most the call timeout"
    );
    assert_eq!(a.health(), Health::SharedUnreachable);
    assert!(matches!(a.acquire_slot("sub:4:conn", 2).await, Err(Refusal::Full { .. })), "a counts its own two");
    let rate = Rate::new(5, Period::Second);
    let pool = a.pool("sub:4:msg", rate);
    assert_eq!(pool.take(1, 100).granted, 5, "messages fall back to the node's own bucket");

    redis.restart();
    until("a sees Redis again", || a.is_up()).await;
    until("b sees Redis again", || b.is_up()).await;
    // The heartbeat put a's two live connections back: b, which holds none, finds no room.
    let mut shared_again = false;
    for _ in 0..50 {
        if matches!(b.acquire_slot("sub:4:conn", 2).await, Err(Refusal::Full { .. })) {
            shared_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(shared_again, "after Redis returns, the count includes what was admitted without it");
    drop(during);
}

#[tokio::test]
async fn without_redis_fail_closed_refuses_new_connections() {
    let mut redis = OwnRedis::start();
    let settings = settings(&redis.url(), FailureMode::Closed);
    let node = node(&settings).await;
    assert!(node.acquire_slot("sub:5:conn", 2).await.is_ok());
    redis.kill();
    let mut refused = false;
    for _ in 0..3 {
        if matches!(node.acquire_slot("sub:5:conn", 2).await, Err(Refusal::Unavailable { .. })) {
            refused = true;
            break;
        }
    }
    assert!(refused, "fail-closed refuses while Redis is away");
    assert!(matches!(
        node.take_connection("sub:5:rate", Rate::new(10, Period::Second)).await,
        Err(Refusal::Unavailable { .. })
    ));
}

//! Upstream protection: circuit breakers, active probes, retries, load balancing, per-API
//! handshake timeouts, the Origin allow-list and the connection caps. The upstreams here count
//! every TCP connection they accept, so "no connect attempt" is a count that did not move.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::harness::raw::{HttpResponse, RawClient, upgrade_request};
use crate::harness::{STEP, api, gateway, within};

/// What a [`Backend`] does with the connections it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// Accepts and closes at once: the gateway sees the connection end before an answer.
    Drop,
    /// A WebSocket echo server (tokio-tungstenite).
    Echo,
    /// Accepts and never answers.
    Silent,
}

/// An upstream whose behaviour can change during a test, counting accepted connections.
struct Backend {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    mode: Arc<AtomicU8>,
    task: JoinHandle<()>,
}

impl Backend {
    async fn start(mode: Mode) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let mode = Arc::new(AtomicU8::new(mode as u8));
        let task = tokio::spawn({
            let (accepted, mode) = (accepted.clone(), mode.clone());
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    match mode.load(Ordering::SeqCst) {
                        m if m == Mode::Drop as u8 => drop(stream),
                        m if m == Mode::Echo as u8 => {
                            tokio::spawn(echo(stream));
                        }
                        _ => {
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_secs(60)).await;
                                drop(stream);
                            });
                        }
                    }
                }
            }
        });
        Backend { addr, accepted, mode, task }
    }

    fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(stream: TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
            return;
        }
    }
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so connecting to it
/// hangs until the connect timeout, like a host that went away. Keep it alive while in use.
struct Blackhole {
    addr: SocketAddr,
    _listener: tokio::net::TcpListener,
    _queued: Vec<TcpStream>,
}

async fn blackhole() -> Blackhole {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let addr = socket.local_addr().expect("addr");
    let listener = socket.listen(1).expect("listen");
    let mut queued = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => queued.push(stream),
            _ => return Blackhole { addr, _listener: listener, _queued: queued },
        }
    }
    panic!("the accept queue of {addr} never filled");
}

/// One handshake from `from` to `path`: the gateway's answer and how long it took.
async fn handshake_from(
    from: IpAddr,
    gw: SocketAddr,
    path: &str,
    extra: &[(&str, &str)],
) -> (HttpResponse, Duration, RawClient) {
    let mut client = RawClient::connect_from(from, gw).await;
    let started = Instant::now();
    client.send(&upgrade_request(gw, path, extra)).await;
    let head = client.read_response_head().await;
    let took = started.elapsed();
    (HttpResponse { head, body: Vec::new() }, took, client)
}

async fn handshake(gw: SocketAddr, path: &str) -> (u16, Duration, RawClient) {
    let (response, took, client) = handshake_from([127, 0, 0, 1].into(), gw, path, &[]).await;
    (response.status(), took, client)
}

#[tokio::test]
async fn an_open_breaker_answers_503_at_once_and_a_trial_closes_it_when_the_endpoint_is_back() {
    let backend = Backend::start(Mode::Drop).await;
    let breaker = r#"endpoint_settings = { breaker = { consecutive_failures = 3, cool_down = "1s" } }"#;
    let gw = gateway().api(api("/flaky", "1", &backend.url()).with_toml(breaker)).start().await;
    for attempt in 1..=3 {
        let (status, _, _) = handshake(gw.addr(), "/flaky/1").await;
        assert_eq!(status, 502, "attempt {attempt} reaches the failing endpoint");
    }
    assert_eq!(backend.accepted(), 3);

    let (response, took, _) = handshake_from([127, 0, 0, 1].into(), gw.addr(), "/flaky/1", &[]).await;
    assert_eq!(response.status(), 503, "the breaker is open");
    assert_eq!(response.header("Retry-After"), Some("1"), "retry when the cool-down ends");
    assert!(took < Duration::from_millis(50), "answered without waiting for anything: {took:?}");
    assert_eq!(backend.accepted(), 3, "no connect attempt while the breaker is open");

    // The endpoint comes back; after the cool-down one trial goes through and closes the breaker.
    backend.set(Mode::Echo);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, _trial) = handshake(gw.addr(), "/flaky/1").await;
    assert_eq!(status, 101, "the trial connection is relayed");
    assert_eq!(backend.accepted(), 4);
    for _ in 0..3 {
        assert_eq!(handshake(gw.addr(), "/flaky/1").await.0, 101, "the breaker is closed again");
    }
    assert_eq!(backend.accepted(), 7);
}

#[tokio::test]
async fn a_failed_trial_suspends_the_endpoint_again_for_longer() {
    let backend = Backend::start(Mode::Drop).await;
    let breaker = r#"endpoint_settings = { breaker = { consecutive_failures = 1, cool_down = "500ms", progression_factor = 4 } }"#;
    let gw = gateway().api(api("/flaky", "1", &backend.url()).with_toml(breaker)).start().await;
    assert_eq!(handshake(gw.addr(), "/flaky/1").await.0, 502);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(handshake(gw.addr(), "/flaky/1").await.0, 502, "the trial fails");
    let (response, _, _) = handshake_from([127, 0, 0, 1].into(), gw.addr(), "/flaky/1", &[]).await;
    assert_eq!((response.status(), response.header("Retry-After")), (503, Some("2")), "suspended for 4 × 500 ms");
    assert_eq!(backend.accepted(), 2);
}

#[tokio::test]
async fn the_per_api_handshake_timeout_is_honoured() {
    let silent = Backend::start(Mode::Silent).await;
    let settings = r#"endpoint_settings = { upstream_handshake_timeout = "300ms" }"#;
    let gw = gateway()
        .upstream_handshake_timeout("10s")
        .api(api("/silent", "1", &silent.url()).with_toml(settings))
        .start()
        .await;
    let (status, took, _) = handshake(gw.addr(), "/silent/1").await;
    assert_eq!(status, 504);
    assert!(took >= Duration::from_millis(280) && took < Duration::from_secs(3), "gave up after {took:?}");
}

/// Two endpoints, one gone: connects to it time out and are retried on the live one.
fn two_endpoints(dead: &Blackhole, live: &Backend, extra: &str) -> crate::harness::gateway::Api {
    let endpoints = [format!("ws://{}", dead.addr), live.url()];
    api("/pair", "1", &live.url()).endpoints(&endpoints).with_toml(extra)
}

#[tokio::test]
async fn with_one_endpoint_dead_every_client_lands_on_the_live_one_and_stops_waiting_once_it_is_suspended() {
    let dead = blackhole().await;
    let live = Backend::start(Mode::Echo).await;
    let settings = r#"endpoint_settings = { connect_timeout = "300ms", breaker = { consecutive_failures = 2, cool_down = "1m" } }"#;
    let gw = gateway().api(two_endpoints(&dead, &live, settings)).start().await;
    let mut slow = 0;
    let mut clients = Vec::new();
    for n in 0..10 {
        let (status, took, client) = handshake(gw.addr(), "/pair/1").await;
        assert_eq!(status, 101, "client {n} is relayed to the live endpoint");
        if took >= Duration::from_millis(250) {
            slow += 1;
            assert!(n < 4, "client {n} waited {took:?} after the dead endpoint should have been suspended");
        }
        clients.push(client);
    }
    assert_eq!(slow, 2, "exactly the two failures that open the breaker cost a connect timeout");
    assert_eq!(live.accepted(), 10);
}

#[tokio::test]
async fn an_active_probe_marks_a_dead_endpoint_down_before_any_client_tries_it() {
    let dead = blackhole().await;
    let live = Backend::start(Mode::Echo).await;
    let settings = r#"endpoint_settings = { connect_timeout = "2s", probe = { kind = "tcp", interval = "200ms", timeout = "150ms", unhealthy_after = 1 } }"#;
    let gw = gateway().api(two_endpoints(&dead, &live, settings)).start().await;
    // The health task looks at the snapshot every second, then probes every 200 ms.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    for n in 0..6 {
        let (status, took, _) = handshake(gw.addr(), "/pair/1").await;
        assert_eq!(status, 101, "client {n}");
        assert!(
            took < Duration::from_millis(500),
            "client {n} waited {took:?}: the probe had marked the endpoint down"
        );
    }
    assert!(live.accepted() >= 6, "the clients and the live endpoint's own probes");
}

#[tokio::test]
async fn a_websocket_probe_needs_a_real_upgrade() {
    let silent = Backend::start(Mode::Silent).await;
    let live = Backend::start(Mode::Echo).await;
    let settings = r#"endpoint_settings = { probe = { kind = "websocket", path = "/health", interval = "200ms", timeout = "150ms", unhealthy_after = 1 }, upstream_handshake_timeout = "3s" }"#;
    let endpoints = [silent.url(), live.url()];
    let gw = gateway().api(api("/pair", "1", &live.url()).endpoints(&endpoints).with_toml(settings)).start().await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let accepted_by_probes = silent.accepted();
    assert!(accepted_by_probes > 0, "the probe connected to the silent endpoint (TCP alone would pass)");
    for n in 0..4 {
        let (status, took, _) = handshake(gw.addr(), "/pair/1").await;
        assert_eq!(status, 101, "client {n}");
        assert!(took < Duration::from_millis(500), "client {n} waited {took:?} on the endpoint that never answers");
    }
    assert!(live.accepted() > 4, "the live endpoint took the clients and passed its probes");
}

#[tokio::test]
async fn least_connections_sends_new_clients_to_the_emptiest_endpoint() {
    let (a, b) = (Backend::start(Mode::Echo).await, Backend::start(Mode::Echo).await);
    let settings = r#"endpoint_settings = { load_balancing = "least_connections" }"#;
    let gw = gateway().api(api("/lc", "1", &a.url()).endpoints(&[a.url(), b.url()]).with_toml(settings)).start().await;
    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    for _ in 0..4 {
        let before = a.accepted();
        let (status, _, client) = handshake(gw.addr(), "/lc/1").await;
        assert_eq!(status, 101);
        if a.accepted() > before { on_a.push(client) } else { on_b.push(client) }
    }
    assert_eq!((on_a.len(), on_b.len()), (2, 2), "equal loads alternate");
    drop(on_a);
    // The gateway notices both clients left when their sockets close.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (a_before, b_before) = (a.accepted(), b.accepted());
    let (_first, _second) = (handshake(gw.addr(), "/lc/1").await, handshake(gw.addr(), "/lc/1").await);
    assert_eq!(
        (a.accepted() - a_before, b.accepted() - b_before),
        (2, 0),
        "0 and 1 connections on A are both fewer than B's 2 (round robin would have split them)"
    );
}

#[tokio::test]
async fn sticky_hashing_keeps_each_client_address_on_one_endpoint() {
    let (a, b) = (Backend::start(Mode::Echo).await, Backend::start(Mode::Echo).await);
    let settings = r#"endpoint_settings = { load_balancing = "hash_client_address" }"#;
    let gw =
        gateway().api(api("/sticky", "1", &a.url()).endpoints(&[a.url(), b.url()]).with_toml(settings)).start().await;
    let mut landed_on_a = 0;
    for host in 1..=16u8 {
        let from: IpAddr = [127, 0, 0, host].into();
        let mut endpoints = Vec::new();
        for _ in 0..3 {
            let before = a.accepted();
            let (response, _, _) = handshake_from(from, gw.addr(), "/sticky/1", &[]).await;
            assert_eq!(response.status(), 101);
            endpoints.push(a.accepted() > before);
        }
        assert!(endpoints.iter().all(|on_a| *on_a == endpoints[0]), "{from} moved between endpoints: {endpoints:?}");
        landed_on_a += usize::from(endpoints[0]);
    }
    assert!((3..=13).contains(&landed_on_a), "16 addresses spread over both endpoints ({landed_on_a} on A)");
}

#[tokio::test]
async fn a_disallowed_origin_gets_403_and_the_upstream_is_never_contacted() {
    let backend = Backend::start(Mode::Echo).await;
    let origins = r#"allowed_origins = ["https://app.example.com"]"#;
    let gw = gateway().api(api("/chat", "1", &backend.url()).with_toml(origins)).start().await;
    let local: IpAddr = [127, 0, 0, 1].into();
    for evil in ["https://evil.example", "https://app.example.com.evil.example", "null", "http://app.example.com"] {
        let (response, _, _) = handshake_from(local, gw.addr(), "/chat/1", &[("Origin", evil)]).await;
        assert_eq!(response.status(), 403, "Origin {evil}");
    }
    let (twice, _, _) = handshake_from(
        local,
        gw.addr(),
        "/chat/1",
        &[("Origin", "https://app.example.com"), ("Origin", "https://evil.example")],
    )
    .await;
    assert_eq!(twice.status(), 403, "two Origin headers are refused");
    assert_eq!(backend.accepted(), 0, "no refused handshake reached the upstream");
    let (allowed, _, _) = handshake_from(local, gw.addr(), "/chat/1", &[("Origin", "https://APP.example.com")]).await;
    assert_eq!(allowed.status(), 101);
    let (tool, _, _) = handshake_from(local, gw.addr(), "/chat/1", &[]).await;
    assert_eq!(tool.status(), 101, "a client that is not a browser sends no Origin");
}

#[tokio::test]
async fn the_per_address_cap_refuses_the_extra_connections_and_serves_the_others() {
    let backend = Backend::start(Mode::Echo).await;
    let gw =
        gateway().setting("max_connections_per_address", "2").api(api("/capped", "1", &backend.url())).start().await;
    let one: IpAddr = [127, 0, 0, 1].into();
    let (first, _, held_1) = handshake_from(one, gw.addr(), "/capped/1", &[]).await;
    // An unauthenticated, unfinished handshake holds a slot too.
    let half_open = RawClient::connect_from(one, gw.addr()).await;
    assert_eq!(first.status(), 101);
    let (refused, took, _) = handshake_from(one, gw.addr(), "/capped/1", &[]).await;
    assert_eq!((refused.status(), refused.header("Retry-After")), (429, Some("1")));
    assert!(took < Duration::from_millis(500), "refused at once: {took:?}");
    let (other, _, _held_2) = handshake_from([127, 0, 0, 2].into(), gw.addr(), "/capped/1", &[]).await;
    assert_eq!(other.status(), 101, "another address is served");
    drop((held_1, half_open));
    // The slots come back when those connections end.
    let again = within(STEP, "a slot comes back", async {
        loop {
            let (response, _, client) = handshake_from(one, gw.addr(), "/capped/1", &[]).await;
            if response.status() == 101 {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    drop(again);
    assert_eq!(backend.accepted(), 3, "refused connections never reached the upstream");
}

#[tokio::test]
async fn the_global_cap_answers_503() {
    let backend = Backend::start(Mode::Echo).await;
    let gw = gateway().setting("max_connections", "2").api(api("/capped", "1", &backend.url())).start().await;
    let (_a, _b) = (handshake(gw.addr(), "/capped/1").await, handshake(gw.addr(), "/capped/1").await);
    let (response, _, _) = handshake_from([127, 0, 0, 3].into(), gw.addr(), "/capped/1", &[]).await;
    assert_eq!((response.status(), response.header("Retry-After")), (503, Some("1")));
}

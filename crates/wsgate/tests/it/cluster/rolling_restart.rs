//! A rolling restart behind HAProxy (the shipped configuration): each of three nodes in turn
//! gets SIGTERM, exits, starts again and is seen UP by HAProxy before the next, while 200
//! clients keep reconnecting through HAProxy (connect, exchange a message, hold until closed,
//! reconnect). No handshake is refused or fails, and every client that was closed got 1001
//! first: `/readyz` turned 503 at the SIGTERM, the node kept accepting for `shutdown_delay`
//! (above HAProxy's 2 × 500 ms checks), and a connect refused after that went to another node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::{keyless_api, until_routed};
use crate::harness::cluster::{Node, cluster};
use crate::harness::gateway::echo_upstream;
use crate::harness::haproxy::Haproxy;
use crate::harness::within;

const CLIENTS: usize = 200;
/// Connect, upgrade, one echo: each must be this quick, or it counts as failed.
const STEP: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Tally {
    handshakes: AtomicUsize,
    closed_with_1001: AtomicUsize,
    /// Every handshake refused or failed, and every end that was not a 1001 first.
    failures: Mutex<Vec<String>>,
}

impl Tally {
    async fn fail(&self, what: String) {
        self.failures.lock().await.push(what);
    }
}

/// One client's loop until `stop`; returns how many times it was closed with 1001.
async fn client(i: usize, balancer: SocketAddr, path: String, stop: CancellationToken, tally: Arc<Tally>) -> usize {
    let url = format!("ws://{balancer}{path}");
    let mut closed = 0;
    while !stop.is_cancelled() {
        let handshake = async {
            let tcp = TcpStream::connect(balancer).await.map_err(|err| format!("connect: {err}"))?;
            tokio_tungstenite::client_async(url.as_str(), tcp).await.map_err(|err| format!("upgrade: {err}"))
        };
        let mut ws = match tokio::time::timeout(STEP, handshake).await {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(err)) => {
                tally.fail(format!("client {i}: handshake failed: {err}")).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(_) => {
                tally.fail(format!("client {i}: no handshake within {STEP:?}")).await;
                continue;
            }
        };
        tally.handshakes.fetch_add(1, Ordering::Relaxed);
        let text = format!("client {i} handshake {}", closed);
        if let Err(err) = ws.send(Message::text(text.clone())).await {
            tally.fail(format!("client {i}: cannot send: {err}")).await;
            continue;
        }
        // Hold the connection: the echo, then nothing until the node closes it or the test ends.
        let mut echoed = false;
        let end = loop {
            let next = tokio::select! {
                () = stop.cancelled() => break None,
                next = ws.next() => next,
            };
            match next {
                Some(Ok(Message::Text(echo))) if !echoed && echo.as_str() == text => echoed = true,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => break Some(other),
            }
        };
        match end {
            None => {
                let _ = tokio::time::timeout(STEP, ws.close(None)).await;
                return closed;
            }
            Some(Some(Ok(Message::Close(Some(frame))))) if frame.code == CloseCode::Away => {
                closed += 1;
                tally.closed_with_1001.fetch_add(1, Ordering::Relaxed);
                // Our answer to the close goes out as the stream is read to its end.
                let _ = tokio::time::timeout(STEP, async { while ws.next().await.is_some() {} }).await;
            }
            Some(other) => tally.fail(format!("client {i}: ended without 1001 first: {other:?}")).await,
        }
    }
    closed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_behind_haproxy_refuses_nobody_and_closes_everyone_with_1001() {
    let echo = echo_upstream().await;
    let mut cluster = cluster(3).setting("gateway", "shutdown_delay = \"2s\"").start().await;
    let admin = cluster.admin(0).await;
    let path = keyless_api(&admin, "/rolling", &echo.url()).await;
    for node in &cluster.nodes {
        until_routed(node.ws, &path, std::time::Instant::now(), Duration::from_secs(5)).await;
    }
    let haproxy = Haproxy::start(&cluster.nodes.iter().collect::<Vec<&Node>>()).await;
    let (stop, tally) = (CancellationToken::new(), Arc::new(Tally::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(client(i, haproxy.addr, path.clone(), stop.clone(), tally.clone())))
        .collect();
    within(Duration::from_secs(20), "every client is connected through HAProxy", async {
        while tally.handshakes.load(Ordering::Relaxed) < CLIENTS {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    for i in 0..cluster.nodes.len() {
        let node = &mut cluster.nodes[i];
        let status = node.terminate().await;
        assert!(status.success(), "node {i} exits cleanly after SIGTERM: {status}");
        node.restart().await;
        haproxy.until(&format!("node{i}"), "UP", Duration::from_secs(10)).await;
    }
    // The last node's clients are reconnecting elsewhere: let them land before stopping.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    let mut closes = Vec::new();
    for task in clients {
        closes.push(within(Duration::from_secs(20), "a client stops", task).await.expect("a client task"));
    }

    let failures = tally.failures.lock().await;
    let states = haproxy.states().await;
    let (handshakes, closed) =
        (tally.handshakes.load(Ordering::Relaxed), tally.closed_with_1001.load(Ordering::Relaxed));
    eprintln!(
        "rolling restart: {handshakes} handshakes, {closed} closes with 1001, {} failures; HAProxy: {:?}",
        failures.len(),
        states
            .iter()
            .map(|s| format!(
                "{}: {} connect errors, {} retried, {} redispatched",
                s.name, s.connect_errors, s.retries, s.redispatches
            ))
            .collect::<Vec<_>>()
    );
    assert!(failures.is_empty(), "{} failures, first ones: {:#?}", failures.len(), &failures[..failures.len().min(10)]);
    // Every client was on some node when it restarted (none is restarted twice in a row).
    let never_closed = closes.iter().filter(|n| **n == 0).count();
    assert_eq!(never_closed, 0, "every client was closed with 1001 at least once ({closes:?})");
    assert!(handshakes >= CLIENTS + closed, "every close was followed by a reconnection: {handshakes} handshakes");
}

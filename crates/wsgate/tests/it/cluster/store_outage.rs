//! PostgreSQL cut off from one node (a TCP proxy between that node and PostgreSQL, cut and
//! restored), the other node still connected: on the cut-off node live connections keep
//! relaying, new handshakes to known APIs keep being admitted from its last snapshot, its
//! control plane answers 503 with a message that says so (at once, not after a hang) and
//! `/readyz` stays 200 (the node serves from its snapshot, so the balancer should keep sending
//! it clients); once the cable is back it catches up within seconds with a change made through
//! the other node meanwhile, whose notification it never heard.

use std::time::{Duration, Instant};

use super::{keyless_api, routes, until_routed};
use crate::harness::cluster::cluster;
use crate::harness::gateway::echo_upstream;
use crate::harness::services::pg_server;
use crate::harness::tcp_proxy::TcpProxy;
use crate::security::socket::{Socket, attempt};

/// How long a control-plane call may take while the store is unreachable.
const ANSWER_LIMIT: Duration = Duration::from_secs(6);
/// How long a node may take to catch up once PostgreSQL is reachable again.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(10);

async fn upgraded(node: std::net::SocketAddr, path: &str) -> Socket {
    let (head, socket) = attempt(node, path, &[]).await;
    socket.unwrap_or_else(|| panic!("{node} upgrades {path}: {}", head.start_line))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_postgresql_keeps_serving_and_catches_up_when_it_returns() {
    let echo = echo_upstream().await;
    let mut cable = TcpProxy::start(pg_server()).await;
    let cluster = cluster(2).store_via(0, cable.addr).start().await;
    let (cut_off, direct) = (cluster.nodes[0].ws, cluster.nodes[1].ws);
    let cut_off_admin = cluster.admin(0).await;
    let admin = cluster.admin(1).await;
    let before = keyless_api(&admin, "/before", &echo.url()).await;
    until_routed(cut_off, &before, Instant::now(), Duration::from_secs(5)).await;
    let mut live = upgraded(cut_off, &before).await;
    live.echoes("before the cut").await;

    cable.cut().await;

    live.echoes("during the cut").await;
    // Past the store's health check (every few seconds), new clients are still admitted.
    let cut_at = Instant::now();
    while cut_at.elapsed() < Duration::from_secs(3) {
        upgraded(cut_off, &before).await.echoes("a newcomer during the cut").await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let asked = Instant::now();
    let reply = cut_off_admin.get("/api/v1/apis").await;
    let took = asked.elapsed();
    let body = reply.refused(503, "store_unavailable", None);
    let message = body["message"].as_str().expect("message");
    assert!(message.starts_with("the store is unavailable; try again"), "{message}");
    assert!(message.contains("PostgreSQL at"), "the message names what is unreachable: {message}");
    assert!(took < ANSWER_LIMIT, "the control plane answered after {took:?}");
    eprintln!("store outage: the control plane answered 503 in {took:?}: {message}");

    // A change the cut-off node cannot hear about: its LISTEN connection is down.
    let during = keyless_api(&admin, "/during", &echo.url()).await;
    until_routed(direct, &during, Instant::now(), Duration::from_secs(5)).await;
    assert!(!routes(cut_off, &during).await, "the cut-off node cannot know the new API yet");

    cable.restore().await;
    let restored = Instant::now();
    let caught_up = until_routed(cut_off, &during, restored, CATCH_UP_LIMIT).await;
    eprintln!("store outage: the cut-off node routed the API made meanwhile {caught_up:?} after the cable came back");
    let answered = loop {
        let reply = cut_off_admin.get("/api/v1/apis").await;
        if reply.status == 200 {
            break restored.elapsed();
        }
        assert!(restored.elapsed() < CATCH_UP_LIMIT, "the control plane still answers {}", reply.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("store outage: the control plane answered 200 again {answered:?} after");
    live.echoes("after the cut").await;
    upgraded(cut_off, &during).await.echoes("the new API through the node that was cut off").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_stays_200_while_postgresql_is_unreachable() {
    let echo = echo_upstream().await;
    let mut cable = TcpProxy::start(pg_server()).await;
    let cluster = cluster(1).store_via(0, cable.addr).start().await;
    let node = &cluster.nodes[0];
    let path = keyless_api(&cluster.admin(0).await, "/ready", &echo.url()).await;
    until_routed(node.ws, &path, Instant::now(), Duration::from_secs(5)).await;
    assert_eq!(node.readyz().await, Some(200), "ready before the cut");

    cable.cut().await;
    // Longer than the node's store health check (every 5 s): it has seen the store unreachable.
    let cut_at = Instant::now();
    while cut_at.elapsed() < Duration::from_secs(6) {
        assert_eq!(node.readyz().await, Some(200), "/readyz {:?} into the cut", cut_at.elapsed());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    upgraded(node.ws, &path).await.echoes("admitted from the snapshot").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_that_stops_answering_costs_a_control_plane_call_at_most_the_store_timeout() {
    let echo = echo_upstream().await;
    let cable = TcpProxy::start(pg_server()).await;
    let cluster = cluster(1).store_via(0, cable.addr).start().await;
    let node = &cluster.nodes[0];
    let admin = cluster.admin(0).await;
    let path = keyless_api(&admin, "/silent", &echo.url()).await;
    until_routed(node.ws, &path, Instant::now(), Duration::from_secs(5)).await;
    let mut live = upgraded(node.ws, &path).await;

    // Nothing refused, nothing closed: PostgreSQL just stops answering, as behind a partition.
    cable.stall();
    let asked = Instant::now();
    let reply = admin.get("/api/v1/apis").await;
    let took = asked.elapsed();
    let body = reply.refused(503, "store_unavailable", None);
    let message = body["message"].as_str().expect("message");
    eprintln!("store outage: a silent PostgreSQL: the control plane answered 503 in {took:?}: {message}");
    assert!(took < ANSWER_LIMIT, "the control plane answered after {took:?}");
    assert!(message.contains("did not answer within"), "{message}");
    live.echoes("while PostgreSQL is silent").await;
    upgraded(node.ws, &path).await.echoes("a newcomer while PostgreSQL is silent").await;
}

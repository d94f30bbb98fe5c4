//! The node list over real nodes: three `wsgate serve` processes on one PostgreSQL schema, each
//! writing its heartbeat every 500 ms. Every node's `GET /api/v1/nodes` lists all three as up
//! with the addresses they bound; an open WebSocket shows in its node's connections at the next
//! beat; a SIGKILLed node turns gone within a few beats while the others stay up; a SIGTERMed
//! one is stopped at once; and after the 6 s retention both leave the list. When the store
//! cannot be reached, a node logs it once, goes on serving, and is listed again once it is back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::control::harness::Session;
use crate::harness::cluster::{Cluster, cluster};
use crate::harness::gateway::echo_upstream;
use crate::harness::services::pg_server;
use crate::harness::tcp_proxy::TcpProxy;
use crate::security::socket::{attempt, eventually};

/// The node list as `admin` reads it, by ws address.
async fn nodes(admin: &Session) -> BTreeMap<String, Value> {
    let list = admin.get("/api/v1/nodes").await.expect(200);
    let list = list.as_array().cloned().unwrap_or_default();
    list.into_iter().map(|node| (node["addresses"]["ws"].as_str().unwrap_or_default().to_string(), node)).collect()
}

/// Each node's state by its index in the cluster ("absent" when it is not listed).
async fn states(cluster: &Cluster, admin: &Session) -> Vec<String> {
    let listed = nodes(admin).await;
    let state = |node: &crate::harness::cluster::Node| {
        listed.get(&node.ws.to_string()).map_or("absent", |n| n["state"].as_str().unwrap_or("?")).to_string()
    };
    cluster.nodes.iter().map(state).collect()
}

/// Waits until the node states are `expected`, polling for up to `limit`; returns how long it
/// took.
async fn until(cluster: &Cluster, admin: &Session, expected: &[&str], limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let now = states(cluster, admin).await;
        if now == expected {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "node states still {now:?} after {limit:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_listed_up_then_gone_or_stopped_then_removed() {
    let echo = echo_upstream().await;
    let mut cluster = cluster(3).heartbeat("500ms", "6s").start().await;
    let through_0 = cluster.admin(0).await;
    let through_2 = cluster.admin(2).await;

    // Every node's control plane lists all three, up, with the addresses they bound.
    for admin in [&through_0, &cluster.admin(1).await, &through_2] {
        until(&cluster, admin, &["up", "up", "up"], Duration::from_secs(5)).await;
    }
    let listed = nodes(&through_2).await;
    let mut ids = Vec::new();
    for node in &cluster.nodes {
        let record = &listed[&node.ws.to_string()];
        assert_eq!(record["addresses"]["control"], node.control.to_string(), "{record}");
        assert!(record["addresses"].get("wss").is_none(), "the wss listener is off: {record}");
        assert_eq!(record["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(record["heartbeat_interval_ms"], 500);
        assert_eq!(record["connections"], 0, "{record}");
        ids.push(record["id"].as_str().expect("an id").to_string());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each node has an id of its own: {ids:?}");

    // An open WebSocket through node 0 is counted at its next beat, on node 0 only.
    let body = json!({"name": "Counted", "context": "/counted", "version": "1", "endpoints": [echo.url()],
                      "plans": ["Gold"], "auth": "none", "publish": true});
    through_0.post("/api/v1/apis", body).await.expect(201);
    let mut socket = eventually("node 0 routes the new API", || async {
        match attempt(cluster.nodes[0].ws, "/counted/1", &[]).await {
            (_, Some(socket)) => Ok(socket),
            (head, None) => Err(head.start_line),
        }
    })
    .await;
    socket.echoes("counted").await;
    let ws_0 = cluster.nodes[0].ws.to_string();
    eventually("node 0 reports its open connection", || async {
        let listed = nodes(&through_2).await;
        let counts: Vec<u64> =
            cluster.nodes.iter().map(|n| listed[&n.ws.to_string()]["connections"].as_u64().unwrap_or(99)).collect();
        if counts == [1, 0, 0] { Ok(()) } else { Err(format!("connections {counts:?}")) }
    })
    .await;

    // SIGKILL: node 2 says nothing; after three missed beats it is gone, the others stay up.
    cluster.nodes[2].kill().await;
    let gone_after = until(&cluster, &through_0, &["up", "up", "gone"], Duration::from_secs(5)).await;
    eprintln!("nodes: a killed node was shown gone {} ms after SIGKILL", gone_after.as_millis());
    assert!(gone_after >= Duration::from_millis(900), "not before three 500 ms beats were missed: {gone_after:?}");

    // SIGTERM: node 1 drains, writes its last record and exits: stopped, not gone.
    let status = cluster.nodes[1].terminate().await;
    assert!(status.success(), "a SIGTERMed node exits cleanly: {status}");
    let listed = nodes(&through_0).await;
    let stopped = &listed[&cluster.nodes[1].ws.to_string()];
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert!(stopped["stopped_at"].as_i64().is_some(), "{stopped}");
    assert_eq!(listed[&ws_0]["state"], "up");
    assert_eq!(listed[&ws_0]["connections"], 1, "the connection on node 0 still counts");

    // Retention (6 s): node 0's heartbeat deletes both records; node 0 stays.
    until(&cluster, &through_0, &["up", "absent", "absent"], Duration::from_secs(15)).await;
    socket.echoes("still relayed").await;
}

const FAILED: &str = "cannot write this node's record";
const BACK: &str = "record is written again";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_is_logged_once_and_the_node_serves_on() {
    let echo = echo_upstream().await;
    let mut proxy = TcpProxy::start(pg_server()).await;
    let cluster = cluster(1).heartbeat("200ms", "1m").store_through(proxy.addr).logs().start().await;
    let admin = cluster.admin(0).await;
    let body = json!({"name": "Steady", "context": "/steady", "version": "1", "endpoints": [echo.url()],
                      "plans": ["Gold"], "auth": "none", "publish": true});
    admin.post("/api/v1/apis", body).await.expect(201);
    let node = cluster.nodes[0].ws;
    let mut before = eventually("the node routes the API", || async {
        match attempt(node, "/steady/1", &[]).await {
            (_, Some(socket)) => Ok(socket),
            (head, None) => Err(head.start_line),
        }
    })
    .await;

    // Ten beats without the store: one line in the log, and serving goes on.
    proxy.cut().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    before.echoes("during the outage").await;
    let (head, during) = attempt(node, "/steady/1", &[]).await;
    assert_eq!(head.status(), 101, "a new handshake is admitted from the last snapshot: {}", head.start_line);
    let mut during = during.expect("upgraded");
    during.echoes("opened during the outage").await;
    // Read once the line is there: a loaded machine may have run fewer beats by now.
    let log = logged(&cluster, FAILED).await;
    assert_eq!(log.matches(FAILED).count(), 1, "one line for the whole outage:\n{log}");

    // The store is back: the next beat writes the record, with both connections.
    proxy.restore().await;
    eventually("the node is listed up again", || async {
        let reply = admin.get("/api/v1/nodes").await;
        if reply.status != 200 {
            return Err(format!("{} {}", reply.status, reply.text));
        }
        let nodes = reply.json();
        match (nodes[0]["state"].as_str(), nodes[0]["connections"].as_u64()) {
            (Some("up"), Some(2)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // The beat logs its return after the record is written (and listed), so wait for the line.
    let log = logged(&cluster, BACK).await;
    assert_eq!((log.matches(FAILED).count(), log.matches(BACK).count()), (1, 1), "{log}");
}

/// The node's log once it holds `line`.
async fn logged(cluster: &Cluster, line: &str) -> String {
    eventually(&format!("the log says {line:?}"), || async {
        let log = cluster.nodes[0].log();
        if log.contains(line) { Ok(log) } else { Err(log) }
    })
    .await
}

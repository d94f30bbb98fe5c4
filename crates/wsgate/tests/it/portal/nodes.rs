//! The publisher's Nodes page (tests/e2e/nodes.mjs in headless Chromium) against the real
//! `wsgate serve`: beside the live node, with an open WebSocket counted, the store holds a node
//! gone two minutes ago and one that stopped cleanly, as other nodes' heartbeats would leave
//! them; the admin sees each with its state, and a publisher gets the 403 page and no link.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use wsgate_core::node::NodeRecord;

use super::browser::{ADMIN_PASSWORD, Served, Tools, repo_root, run_script};
use crate::control::harness::{Http, PASSWORD};
use crate::harness::echo_upstream;
use crate::harness::process::TempDir;
use crate::security::socket::{attempt, eventually};

fn other_node(name: &str, last_seen_ms: i64, stopped_at: Option<i64>) -> NodeRecord {
    NodeRecord {
        id: format!("{name}-0a0b0c"),
        name: name.into(),
        ws_addr: Some("10.0.0.7:9099".into()),
        wss_addr: Some("10.0.0.7:8099".into()),
        control_addr: None,
        version: "0.0.9".into(),
        started_at: last_seen_ms / 1000 - 3 * 3600,
        connections: 42,
        last_seen_ms,
        heartbeat_ms: 5000,
        stopped_at,
    }
}

#[tokio::test]
async fn an_admin_reads_the_nodes_page_and_a_publisher_may_not() {
    let tools = Tools::find();
    let echo = echo_upstream().await;
    let dir = TempDir::new("portal-nodes");
    let served = Served::start(&dir, "[cluster]\nnode_name = \"edge-1\"\nheartbeat_interval = \"500ms\"\n").await;
    let http = Http::trusting(&dir.path().join("data/tls/cert.pem"), served.control.clone());
    let admin = http.login("admin", ADMIN_PASSWORD).await;
    admin
        .post("/api/v1/users", json!({"name": "pat", "password": PASSWORD, "roles": ["publisher", "creator"]}))
        .await
        .expect(201);

    // One open WebSocket on the live node, counted at its next beat.
    let body = json!({"name": "Counted", "context": "/counted", "version": "1", "endpoints": [echo.url()],
                      "plans": ["Gold"], "auth": "none", "publish": true});
    admin.post("/api/v1/apis", body).await.expect(201);
    let addr: std::net::SocketAddr = served.ws.trim_start_matches("ws://").parse().expect("the ws address");
    let _socket = eventually("the gateway routes the API", || async {
        match attempt(addr, "/counted/1", &[]).await {
            (_, Some(socket)) => Ok(socket),
            (head, None) => Err(head.start_line),
        }
    })
    .await;
    eventually("the live node reports its connection", || async {
        let nodes = admin.get("/api/v1/nodes").await.expect(200);
        match nodes[0]["connections"].as_u64() {
            Some(1) => Ok(()),
            other => Err(format!("{other:?} connections")),
        }
    })
    .await;

    // Two other nodes' last records, in the same store file (as nodes sharing PostgreSQL would).
    let store =
        wsgate_store::open_sqlite(&dir.path().join("data").join(wsgate_store::SQLITE_FILE)).await.expect("open");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as i64;
    store.put_node(&other_node("edge-2", now - 120_000, None)).await.expect("a gone node");
    store.put_node(&other_node("edge-3", now - 30_000, Some(now / 1000 - 30))).await.expect("a stopped node");

    let screenshots = repo_root().join("target/e2e/screenshots/nodes");
    let _ = std::fs::remove_dir_all(&screenshots);
    let env = [
        ("WSGATE_CONTROL_URL", served.control.clone()),
        ("WSGATE_ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
        ("WSGATE_PUBLISHER", "pat".to_string()),
        ("WSGATE_PUBLISHER_PASSWORD", PASSWORD.to_string()),
        ("WSGATE_SCREENSHOTS", screenshots.display().to_string()),
    ];
    let outcome = run_script(&tools, "nodes.mjs", &env, Duration::from_secs(120)).await;
    outcome.assert_ok(&screenshots, &served);

    let nodes = &outcome.answer["nodes"];
    let live = &nodes["edge-1"];
    assert_eq!((live["state"].as_str(), live["badge"].as_str()), (Some("up"), Some("up")), "{nodes}");
    assert_eq!(live["connections"], "1", "the open WebSocket is counted: {nodes}");
    assert_eq!(live["version"], env!("CARGO_PKG_VERSION"));
    assert!(live["addresses"].as_str().is_some_and(|a| a.contains(&addr.to_string())), "{live}");
    let seen = live["seen"].as_str().unwrap_or_default();
    let seconds = seen.strip_suffix(" s ago").and_then(|n| n.parse::<f64>().ok());
    assert!(seconds.is_some_and(|s| s < 3.0), "seen at one of the last 500 ms beats: {seen}");
    assert_eq!(nodes["edge-2"]["state"], "gone");
    assert_eq!(nodes["edge-2"]["seen"], "2 min ago");
    assert_eq!(nodes["edge-3"]["state"], "stopped");
    assert!(nodes["edge-3"]["seen"].as_str().is_some_and(|s| s.starts_with("stopped 3")), "{nodes}");
    assert_eq!(
        outcome.answer["summary"], "3 nodes: 1 up, 1 gone, 1 stopped; 1 open connection on the nodes that are up.",
        "{nodes}"
    );
}

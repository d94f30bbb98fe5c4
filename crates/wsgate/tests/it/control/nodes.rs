//! `GET /api/v1/nodes`: each node's last heartbeat record with its state, judged by the node's
//! own interval (up, gone after three missed beats, stopped when it said so), for admins only.
//! The records are written straight into the store, as the nodes' heartbeats write them; the
//! heartbeat itself is tested with real nodes in `cluster_nodes`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use ureq::http::Method;
use wsgate_core::node::NodeRecord;

use super::harness::control;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).expect("the clock is past 1970")
}

fn node(id: &str, name: &str, last_seen_ms: i64, heartbeat_ms: i64) -> NodeRecord {
    NodeRecord {
        id: id.into(),
        name: name.into(),
        ws_addr: Some("127.0.0.1:9099".into()),
        wss_addr: None,
        control_addr: Some("127.0.0.1:9443".into()),
        version: "9.9.9".into(),
        started_at: last_seen_ms / 1000 - 60,
        connections: 17,
        last_seen_ms,
        heartbeat_ms,
        stopped_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_every_node_up_gone_or_stopped_and_nobody_else_does() {
    let control = control().start().await;
    let now = now_ms();
    // Up: late by two of its 5 s beats. Gone: late by more than three of its 1 s beats, though
    // a node beating every 5 s would still be up that late. Stopped: shut down cleanly.
    let up = node("alpha-000001", "alpha", now - 10_000, 5000);
    let gone = node("beta-000002", "beta", now - 4_000, 1000);
    let stopped = NodeRecord { stopped_at: Some(now / 1000), ..node("gamma-000003", "gamma", now, 5000) };
    for record in [&up, &gone, &stopped] {
        control.store.put_node(record).await.expect("a heartbeat is stored");
    }

    let admin = control.admin().await;
    let nodes = admin.get("/api/v1/nodes").await.expect(200);
    let nodes = nodes.as_array().expect("a list");
    let states: Vec<(&str, &str)> =
        nodes.iter().map(|n| (n["name"].as_str().unwrap_or(""), n["state"].as_str().unwrap_or(""))).collect();
    assert_eq!(states, [("alpha", "up"), ("beta", "gone"), ("gamma", "stopped")], "{nodes:?}");
    let alpha = &nodes[0];
    assert_eq!(alpha["id"], "alpha-000001");
    assert_eq!(alpha["addresses"], json!({"ws": "127.0.0.1:9099", "control": "127.0.0.1:9443"}));
    assert_eq!((alpha["version"].as_str(), alpha["connections"].as_u64()), (Some("9.9.9"), Some(17)));
    assert_eq!(alpha["last_seen"], (now - 10_000) / 1000);
    assert_eq!(alpha["heartbeat_interval_ms"], 5000);
    let since = alpha["seconds_since_seen"].as_f64().expect("seconds since seen");
    assert!((10.0..20.0).contains(&since), "seen 10 s ago, as this node's clock says: {since}");
    assert!(alpha.get("stopped_at").is_none(), "only a stopped node has stopped_at: {alpha}");
    assert_eq!(nodes[2]["stopped_at"], now / 1000);

    // Admins only: 401 without a session, 403 for every other role.
    control.http.send(Method::GET, "/api/v1/nodes", vec![], None).await.refused(401, "not_signed_in", None);
    for role in ["publisher", "creator", "subscriber"] {
        let user = control.user(&format!("a-{role}"), &[role]).await;
        user.get("/api/v1/nodes").await.refused(403, "missing_role", None);
    }
}

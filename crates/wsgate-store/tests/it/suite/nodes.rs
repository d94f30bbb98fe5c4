//! The node list's heartbeat records.

use wsgate_core::node::NodeRecord;

use super::{Db, NOW};

fn node(id: &str, name: &str, last_seen_ms: i64) -> NodeRecord {
    NodeRecord {
        id: id.into(),
        name: name.into(),
        ws_addr: Some("127.0.0.1:9099".into()),
        wss_addr: None,
        control_addr: Some("[::1]:9443".into()),
        version: "0.1.0".into(),
        started_at: NOW,
        connections: 0,
        last_seen_ms,
        heartbeat_ms: 5000,
        stopped_at: None,
    }
}

pub async fn nodes_are_put_replaced_listed_and_retained(db: Db) {
    assert_eq!(db.list_nodes().await.expect("list"), vec![]);
    let ms = NOW * 1000;
    let b = node("edge-b-000001", "edge-b", ms);
    let a2 = node("edge-a-000002", "edge-a", ms - 10_000);
    let a1 = node("edge-a-000001", "edge-a", ms - 20_000);
    for record in [&b, &a2, &a1] {
        db.put_node(record).await.expect("put");
    }
    assert_eq!(db.list_nodes().await.expect("list"), vec![a1.clone(), a2.clone(), b.clone()], "by name, then id");

    // A heartbeat replaces the whole record; a clean stop is its last one.
    let beat = NodeRecord { connections: u64::from(u32::MAX) + 7, last_seen_ms: ms + 5000, ..b.clone() };
    db.put_node(&beat).await.expect("beat");
    let stopped = NodeRecord { stopped_at: Some(NOW + 9), ws_addr: None, ..a2.clone() };
    db.put_node(&stopped).await.expect("stop");
    assert_eq!(db.list_nodes().await.expect("list"), vec![a1.clone(), stopped.clone(), beat.clone()]);

    // Retention deletes what was last seen before the cut, not at it; twice is harmless.
    db.delete_nodes_seen_before(ms - 10_000).await.expect("retention");
    db.delete_nodes_seen_before(ms - 10_000).await.expect("retention again");
    assert_eq!(db.list_nodes().await.expect("list"), vec![stopped.clone(), beat.clone()]);
    db.delete_nodes_seen_before(ms + 5001).await.expect("retention of all");
    assert_eq!(db.list_nodes().await.expect("list"), vec![]);
}

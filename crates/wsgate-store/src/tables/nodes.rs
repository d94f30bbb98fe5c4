//! The node list: each node's heartbeat record. Not announced on the change feed: no node caches
//! it, the control plane reads it when asked.

use wsgate_core::node::NodeRecord;

use super::{from_i64, read, write};
use crate::Result;
use crate::sql::{Backend, Param, Statement};

/// Creates or replaces the node's row: each heartbeat writes the whole record.
pub(super) async fn put_node(db: &impl Backend, node: &NodeRecord) -> Result<()> {
    const SQL: &str = "INSERT INTO nodes (id, name, ws_addr, wss_addr, control_addr, version, started_at, \
        connections, last_seen_ms, heartbeat_ms, stopped_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, ws_addr = excluded.ws_addr, \
        wss_addr = excluded.wss_addr, control_addr = excluded.control_addr, version = excluded.version, \
        started_at = excluded.started_at, connections = excluded.connections, \
        last_seen_ms = excluded.last_seen_ms, heartbeat_ms = excluded.heartbeat_ms, stopped_at = excluded.stopped_at";
    let params = vec![
        node.id.as_str().into(),
        node.name.as_str().into(),
        Param::OptText(node.ws_addr.clone()),
        Param::OptText(node.wss_addr.clone()),
        Param::OptText(node.control_addr.clone()),
        node.version.as_str().into(),
        node.started_at.into(),
        Param::Int(i64::try_from(node.connections).unwrap_or(i64::MAX)),
        node.last_seen_ms.into(),
        node.heartbeat_ms.into(),
        Param::OptInt(node.stopped_at),
    ];
    write(db, vec![Statement::new(SQL, params)], &[], |rule| format!("node {} breaks {rule:?}", node.id)).await
}

/// Every node, by name then id (the same order on every backend).
pub(super) async fn list_nodes(db: &impl Backend) -> Result<Vec<NodeRecord>> {
    const SQL: &str = "SELECT id, name, ws_addr, wss_addr, control_addr, version, started_at, connections, \
        last_seen_ms, heartbeat_ms, stopped_at FROM nodes";
    let mut nodes = read(db, SQL, vec![], |row| {
        Ok(NodeRecord {
            id: row.text(0)?,
            name: row.text(1)?,
            ws_addr: row.opt_text(2)?,
            wss_addr: row.opt_text(3)?,
            control_addr: row.opt_text(4)?,
            version: row.text(5)?,
            started_at: row.int(6)?,
            connections: from_i64(row.int(7)?, "connections")?,
            last_seen_ms: row.int(8)?,
            heartbeat_ms: row.int(9)?,
            stopped_at: row.opt_int(10)?,
        })
    })
    .await?;
    nodes.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    Ok(nodes)
}

/// Retention: deletes the rows last written before `ms` (milliseconds since the epoch).
/// Idempotent, so every node may run it.
pub(super) async fn delete_nodes_seen_before(db: &impl Backend, ms: i64) -> Result<()> {
    const SQL: &str = "DELETE FROM nodes WHERE last_seen_ms < $1";
    write(db, vec![Statement::new(SQL, vec![ms.into()])], &[], |rule| format!("node retention breaks {rule:?}")).await
}

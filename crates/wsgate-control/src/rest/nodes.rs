//! The cluster's nodes: `GET /api/v1/nodes`, for admins. Each node writes its own record (its
//! heartbeat, in the binary); this reads them and says which are up, gone or stopped, judging
//! each by its own heartbeat interval.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use wsgate_core::model::Role;
use wsgate_core::node::{NodeRecord, NodeState};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// A node as the API shows it.
#[derive(Debug, Serialize)]
pub struct NodeView {
    pub id: String,
    pub name: String,
    pub addresses: Addresses,
    pub version: String,
    pub started_at: i64,
    /// Unix seconds of its last heartbeat.
    pub last_seen: i64,
    /// By this node's clock, to a tenth of a second.
    pub seconds_since_seen: f64,
    pub heartbeat_interval_ms: i64,
    pub connections: u64,
    pub state: NodeState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
}

/// The node's listeners as bound; an absent one is off.
#[derive(Debug, Serialize)]
pub struct Addresses {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ws: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
}

impl NodeView {
    /// The node as seen at `now_ms` (milliseconds since the epoch).
    pub fn of(node: NodeRecord, now_ms: i64) -> NodeView {
        let age_ms = node.age_ms(now_ms);
        NodeView {
            state: node.state(now_ms),
            seconds_since_seen: (age_ms / 100) as f64 / 10.0,
            last_seen: node.last_seen_ms.div_euclid(1000),
            id: node.id,
            name: node.name,
            addresses: Addresses { ws: node.ws_addr, wss: node.wss_addr, control: node.control_addr },
            version: node.version,
            started_at: node.started_at,
            heartbeat_interval_ms: node.heartbeat_ms,
            connections: node.connections,
            stopped_at: node.stopped_at,
        }
    }
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<NodeView>>, ApiError> {
    caller.require(Role::Admin)?;
    let now_ms = now_ms();
    Ok(Json(state.store().list_nodes().await?.into_iter().map(|node| NodeView::of(node, now_ms)).collect()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

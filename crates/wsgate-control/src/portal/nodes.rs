//! The publisher's "Nodes" page, for admins: every node of the cluster as its heartbeat last
//! reported it (state, open connections, version, addresses, start, last heartbeat), through
//! `GET /api/v1/nodes` called in-process.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use wsgate_core::model::Role;
use wsgate_core::node::NodeState;

use super::charts::time;
use super::html::{Area, Page, esc};
use super::{backend, visit};
use crate::rest::nodes::NodeView;
use crate::state::AppState;

const AREA: Area = Area::Publisher;
const BACK: &str = "/publisher/nodes";

pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let caller = match visit::page(&state, &headers, AREA, BACK).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    if let Some(refusal) = visit::lacking(&caller, AREA, Role::Admin) {
        return refusal;
    }
    let nodes = match backend::list_nodes(&state, &caller).await {
        Ok(nodes) => nodes,
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    let body = format!(
        r#"<p class="lead">Every <code>wsgate serve</code> sharing this store writes its record when it starts, at
each heartbeat and, marked stopped, when it shuts down cleanly. A node silent for three of its heartbeat
intervals is <strong>gone</strong> (killed, crashed or cut off from the store); stopped and gone nodes leave
the list after <code>[cluster] node_retention</code>.</p>
{summary}
{table}
<p class="hint">As the store holds them now; reload the page to refresh.</p>"#,
        summary = summary(&nodes),
        table = table(&nodes),
    );
    Page { area: AREA, title: "Nodes", viewer: Some(visit::viewer(&caller)), notice: None, body }.render(StatusCode::OK)
}

/// "3 nodes: 2 up, 1 gone", the states that have nodes only.
fn summary(nodes: &[NodeView]) -> String {
    let count = |state| nodes.iter().filter(|n| n.state == state).count();
    let parts: Vec<String> = [NodeState::Up, NodeState::Gone, NodeState::Stopped]
        .into_iter()
        .map(|state| (state, count(state)))
        .filter(|(_, n)| *n > 0)
        .map(|(state, n)| format!("{n} {}", state.as_str()))
        .collect();
    let total = match nodes.len() {
        1 => "1 node".to_string(),
        n => format!("{n} nodes"),
    };
    let connections: u64 = nodes.iter().filter(|n| n.state == NodeState::Up).map(|n| n.connections).sum();
    format!(
        r#"<p class="node-summary" data-up="{up}">{total}{colon}{parts}; {connections} open connection{s} on the nodes that are up.</p>"#,
        up = count(NodeState::Up),
        colon = if parts.is_empty() { "" } else { ": " },
        parts = parts.join(", "),
        s = if connections == 1 { "" } else { "s" },
    )
}

fn table(nodes: &[NodeView]) -> String {
    if nodes.is_empty() {
        return r#"<p class="empty">No node has written a heartbeat yet.</p>"#.into();
    }
    let rows: String = nodes.iter().map(row).collect();
    format!(
        r#"<div class="table-wrap"><table class="nodes"><caption class="visually-hidden">Nodes</caption>
<thead><tr><th scope="col">Node</th><th scope="col">State</th><th scope="col">Open connections</th><th scope="col">Version</th><th scope="col">Addresses</th><th scope="col">Started</th><th scope="col">Last seen</th></tr></thead>
<tbody>{rows}</tbody></table></div>"#
    )
}

fn row(node: &NodeView) -> String {
    let state = node.state.as_str();
    let addresses: Vec<String> =
        [("ws", &node.addresses.ws), ("wss", &node.addresses.wss), ("control", &node.addresses.control)]
            .into_iter()
            .filter_map(|(label, addr)| {
                addr.as_ref().map(|a| format!(r#"<span class="addr">{label} <code>{}</code></span>"#, esc(a)))
            })
            .collect();
    let seen = match node.stopped_at {
        Some(at) => format!(r#"stopped {} <span class="hint">({} UTC)</span>"#, ago(node.seconds_since_seen), time(at)),
        None => ago(node.seconds_since_seen),
    };
    format!(
        r#"<tr data-node="{id}" data-state="{state}"><th scope="row"><span class="node-name">{name}</span><br><span class="hint node-id">{id}</span></th><td class="state"><span class="badge badge-{state}">{state}</span></td><td class="connections">{connections}</td><td class="version">{version}</td><td class="addresses">{addresses}</td><td class="started">{started} UTC</td><td class="seen" title="every {interval}">{seen}</td></tr>"#,
        id = esc(&node.id),
        name = esc(&node.name),
        // A node that is not up may hold none of them any more: its count is its last word.
        connections = match node.state {
            NodeState::Up => node.connections.to_string(),
            _ => format!(r#"<span class="hint" title="at its last heartbeat">{}</span>"#, node.connections),
        },
        version = esc(&node.version),
        addresses = if addresses.is_empty() { "–".into() } else { addresses.join("<br>") },
        started = time(node.started_at),
        interval = interval(node.heartbeat_interval_ms),
    )
}

/// "0.4 s ago", "12 s ago", "5 min ago", "3 h ago", "2 days ago".
fn ago(seconds: f64) -> String {
    let whole = seconds as u64;
    match whole {
        0..10 => format!("{seconds:.1} s ago"),
        10..120 => format!("{whole} s ago"),
        120..7200 => format!("{} min ago", whole / 60),
        7200..172_800 => format!("{} h ago", whole / 3600),
        _ => format!("{} days ago", whole / 86_400),
    }
}

/// A heartbeat interval as the config file writes it.
fn interval(ms: i64) -> String {
    wsgate_core::duration::format(std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_ago_read_well() {
        assert_eq!(ago(0.4), "0.4 s ago");
        assert_eq!(ago(12.3), "12 s ago");
        assert_eq!(ago(300.0), "5 min ago");
        assert_eq!(ago(3.0 * 3600.0), "3 h ago");
        assert_eq!(ago(2.0 * 86_400.0), "2 days ago");
        assert_eq!(interval(500), "500ms");
    }
}

//! A node of a cluster as its heartbeat reports it: every `wsgate serve` writes its record to the
//! store when it starts and then every `[cluster] heartbeat_interval`, and a last one marked
//! stopped when it shuts down cleanly. Whether a node is up is read from how long ago it last
//! wrote, against its own interval.

use serde::{Deserialize, Serialize};

use crate::model::UnixTime;

/// How many heartbeat intervals a node may miss before it counts as gone: one late beat (a
/// busy store, a paused process) is not a dead node.
pub const MISSED_BEATS: i64 = 3;

/// One node's last report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Unique per process start (`<hostname>-<6 random hex digits>`): a restarted node is a
    /// new record, and its previous life is shown stopped or gone until retention removes it.
    pub id: String,
    /// `[cluster] node_name`, by default the host name: what the admin calls the machine.
    pub name: String,
    /// The listeners as bound (`host:port`), `None` when off.
    pub ws_addr: Option<String>,
    pub wss_addr: Option<String>,
    pub control_addr: Option<String>,
    /// The wsgate version the node runs.
    pub version: String,
    pub started_at: UnixTime,
    /// The node's live WebSocket connections when it wrote the record.
    pub connections: u64,
    /// Milliseconds since the Unix epoch, by the node's clock: heartbeats may come more often
    /// than once a second.
    pub last_seen_ms: i64,
    /// The node's heartbeat interval in milliseconds, so that whether it is late is judged by
    /// its own setting, whichever node looks.
    pub heartbeat_ms: i64,
    /// When it shut down cleanly (its last record); `None` while it runs.
    pub stopped_at: Option<UnixTime>,
}

/// Whether a node serves, as far as its heartbeat tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// It wrote within its last [`MISSED_BEATS`] intervals.
    Up,
    /// It stopped writing without saying goodbye: killed, crashed, cut off from the store.
    Gone,
    /// It shut down cleanly.
    Stopped,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Gone => "gone",
            NodeState::Stopped => "stopped",
        }
    }
}

impl NodeRecord {
    /// The node's state at `now_ms` (milliseconds since the epoch).
    pub fn state(&self, now_ms: i64) -> NodeState {
        if self.stopped_at.is_some() {
            NodeState::Stopped
        } else if self.age_ms(now_ms) > MISSED_BEATS.saturating_mul(self.heartbeat_ms.max(1)) {
            NodeState::Gone
        } else {
            NodeState::Up
        }
    }

    /// How long ago, at `now_ms`, the node last wrote; 0 when its clock is ahead of ours.
    pub fn age_ms(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(self.last_seen_ms).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(last_seen_ms: i64, stopped_at: Option<UnixTime>) -> NodeRecord {
        NodeRecord {
            id: "host-abc123".into(),
            name: "host".into(),
            ws_addr: Some("127.0.0.1:9099".into()),
            wss_addr: None,
            control_addr: None,
            version: "0.1.0".into(),
            started_at: 1_750_000_000,
            connections: 0,
            last_seen_ms,
            heartbeat_ms: 500,
            stopped_at,
        }
    }

    #[test]
    fn a_node_is_gone_after_three_missed_beats_and_stopped_when_it_said_so() {
        let now = 1_750_000_010_000;
        assert_eq!(node(now, None).state(now), NodeState::Up);
        assert_eq!(node(now - 1500, None).state(now), NodeState::Up, "three intervals late is still up");
        assert_eq!(node(now - 1501, None).state(now), NodeState::Gone);
        assert_eq!(node(now + 2000, None).state(now), NodeState::Up, "a clock ahead of ours is not late");
        assert_eq!(node(now + 2000, None).age_ms(now), 0);
        assert_eq!(node(now - 60_000, Some(1)).state(now), NodeState::Stopped, "stopped wins over late");
    }
}

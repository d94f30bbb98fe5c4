//! Session analytics records: what the gateway tells the analytics writer about each connection.
//!
//! The gateway emits one record per connection when it ends (`last = true`) and, for connections
//! that live long, interim records while they run (`last = false`), each carrying the counts
//! since the previous record of the same connection; a refused handshake is one record with its
//! status. The sum of a connection's records is its whole traffic, so per-minute buckets can be
//! built by adding records without ever reading one twice.

use serde::{Deserialize, Serialize};

/// Who ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedBy {
    Client,
    Upstream,
    /// The gateway itself: a limit, a revocation, an expired token, an idle timeout, a drain.
    Gateway,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The connection's id, as in its access log line (unique within one gateway process).
    pub connection: u64,
    /// The store id of a managed API; `None` for an API of the config file.
    pub api_id: Option<String>,
    pub api_name: String,
    pub api_version: String,
    /// The application id of the token's principal; `None` on keyless APIs and refusals before
    /// authentication.
    pub application_id: Option<String>,
    pub plan: Option<String>,
    /// The client address, already truncated as configured (or `None` when turned off).
    pub client_ip: Option<String>,
    /// Unix milliseconds when the connection was accepted.
    pub started_at: i64,
    /// Unix milliseconds when this record was taken.
    pub at: i64,
    /// Whether this is the connection's last record.
    pub last: bool,
    /// 101 for an upgraded connection, the refusal's HTTP status otherwise.
    pub status: u16,
    /// For a refusal: a short, stable reason kind (e.g. `invalid_token`, `limit_reached`).
    pub refusal: Option<String>,
    /// Counts since the previous record of this connection. `in`: from the client.
    pub messages_in: u64,
    pub bytes_in: u64,
    pub messages_out: u64,
    pub bytes_out: u64,
    /// Close codes each side sent (last record only).
    pub client_close: Option<u16>,
    pub upstream_close: Option<u16>,
    pub closed_by: Option<ClosedBy>,
}

/// Where session records go. `record` is called on connection paths and must never block or
/// await: an implementation queues the record (bounded, dropping and counting when full) and
/// writes in batches elsewhere.
pub trait SessionSink: Send + Sync + std::fmt::Debug {
    fn record(&self, record: SessionRecord);
}

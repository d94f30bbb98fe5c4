//! Session analytics as the store keeps them: per-minute buckets of counts per API and
//! application, and counts of refusals and closes by code. The analytics writer adds buckets;
//! the control plane reads series, code totals and top lists over a time range.
//!
//! Times are Unix seconds; a bucket's `minute` is the start of its minute (a multiple of 60).

use serde::Serialize;

/// Seconds in a bucket.
pub const MINUTE: i64 = 60;

/// What happened in one bucket (or a slot of several). All counts add up, except
/// `open_connections`: in a bucket, the connections open at some moment of the minute; in a
/// slot of several minutes, the largest of its minutes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Connections upgraded (counted in the minute they started).
    pub opened: u64,
    /// Upgraded connections that ended (counted in the minute they ended).
    pub closed: u64,
    /// Handshakes refused with an HTTP status.
    pub refused: u64,
    pub open_connections: u64,
    /// `in`: from clients; `out`: to clients.
    pub messages_in: u64,
    pub bytes_in: u64,
    pub messages_out: u64,
    pub bytes_out: u64,
}

impl Counts {
    /// Adds every count of `other` (also `open_connections`: two records of different
    /// connections in the same minute are two open connections).
    pub fn add(&mut self, other: &Counts) {
        self.opened = self.opened.saturating_add(other.opened);
        self.closed = self.closed.saturating_add(other.closed);
        self.refused = self.refused.saturating_add(other.refused);
        self.open_connections = self.open_connections.saturating_add(other.open_connections);
        self.messages_in = self.messages_in.saturating_add(other.messages_in);
        self.bytes_in = self.bytes_in.saturating_add(other.bytes_in);
        self.messages_out = self.messages_out.saturating_add(other.messages_out);
        self.bytes_out = self.bytes_out.saturating_add(other.bytes_out);
    }
}

/// What a code counts: a refusal's HTTP status, or a close code with the side that closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    Refused,
    CloseClient,
    CloseUpstream,
    CloseGateway,
}

impl CodeKind {
    pub const ALL: [CodeKind; 4] =
        [CodeKind::Refused, CodeKind::CloseClient, CodeKind::CloseUpstream, CodeKind::CloseGateway];

    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::Refused => "refused",
            CodeKind::CloseClient => "close_client",
            CodeKind::CloseUpstream => "close_upstream",
            CodeKind::CloseGateway => "close_gateway",
        }
    }

    pub fn parse(text: &str) -> Option<CodeKind> {
        CodeKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Keeps the set of codes bounded: anything outside the kind's range is stored as 0.
    pub fn bounded(self, code: u16) -> u16 {
        let range = if self == CodeKind::Refused { 100..=599 } else { 1000..=4999 };
        if range.contains(&code) { code } else { 0 }
    }
}

/// One minute of one API and application, as the writer adds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteBucket {
    pub minute: i64,
    /// The API's store id, or `config:<name>:<version>` for an API of the config file.
    pub api: String,
    /// The application id, or `""` when there is none.
    pub application: String,
    pub counts: Counts,
    /// `(kind, code, how many)`.
    pub codes: Vec<(CodeKind, u16, u64)>,
}

/// Which buckets a read covers; `None` matches every API or application.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnalyticsFilter<'a> {
    pub api: Option<&'a str>,
    pub application: Option<&'a str>,
}

/// A time range `[from, to)` cut into slots of `step` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: i64,
    pub to: i64,
    pub step: i64,
}

/// One slot of a series: its start and what happened in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeriesPoint {
    pub at: i64,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CodeCount {
    pub kind: CodeKind,
    pub code: u16,
    pub total: u64,
}

/// What a top list ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopBy {
    Application,
    Api,
}

/// One line of a top list: an application id or an API key and its totals over the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopEntry {
    pub key: String,
    pub connections: u64,
    pub messages: u64,
    pub bytes: u64,
    pub refused: u64,
}

//! How the gateway treats one API's upstream ("endpoint settings"): timeouts and sizes that
//! override the `[gateway]` defaults, retries, load balancing over several endpoints, the
//! circuit breaker, an optional active probe and keepalive pings; plus the API's `Origin`
//! allow-list. The config file (`[apis.endpoint_settings]`), the store (one JSON column) and the
//! REST API (`endpoint_settings`) share these types, so a setting means the same from each.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{serde_opt_text, serde_text};

/// One API's endpoint settings. Every `None` means "the `[gateway]` default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointSettings {
    /// TCP connect to one endpoint (504 when every attempt timed out).
    #[serde(with = "serde_opt_text", skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    /// TLS and the upgrade's answer from the endpoint (504 when exceeded).
    #[serde(with = "serde_opt_text", skip_serializing_if = "Option::is_none")]
    pub upstream_handshake_timeout: Option<Duration>,
    /// No frame either way for this long closes the connection with 1001.
    #[serde(with = "serde_opt_text", skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    /// How long a side may take to answer a close frame.
    #[serde(with = "serde_opt_text", skip_serializing_if = "Option::is_none")]
    pub close_timeout: Option<Duration>,
    /// Largest frame payload either side may announce (1009 beyond).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_frame_size: Option<u64>,
    /// Largest message, all fragments together (1009 beyond).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_message_size: Option<u64>,
    /// The longest a connection may live; then both sides get 1001.
    #[serde(with = "serde_opt_text", skip_serializing_if = "Option::is_none")]
    pub max_lifetime: Option<Duration>,
    /// A ping to each quiet side every interval (keepalive); `None`: the gateway default.
    #[serde(with = "serde_opt_text", skip_serializing_if = "Option::is_none")]
    pub ping_interval: Option<Duration>,
    /// How long a pinged side may stay silent before the connection is closed.
    #[serde(with = "serde_opt_text", skip_serializing_if = "Option::is_none")]
    pub ping_timeout: Option<Duration>,
    /// Further endpoints tried when connecting to one fails (each a different endpoint, each
    /// within `connect_timeout`). Default [`DEFAULT_RETRIES`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// How a connection picks its endpoint.
    pub load_balancing: Balancing,
    /// One weight per endpoint, in the order of `endpoints` (empty: all 1). A weight of 0 takes
    /// no new connections (draining), but at least one endpoint must weigh more.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<u32>,
    /// The passive health check: on unless turned off.
    pub breaker: BreakerSettings,
    /// The active health check: off unless set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeSettings>,
}

/// Further endpoints tried after a failed connect, when `retries` is not set.
pub const DEFAULT_RETRIES: u32 = 2;

/// How a connection picks among an API's endpoints that are up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balancing {
    /// In turn, in proportion to the weights.
    #[default]
    RoundRobin,
    /// The endpoint with the fewest live connections for its weight.
    LeastConnections,
    /// Sticky: the same application lands on the same endpoint while it is up (keyless
    /// connections hash their client address).
    HashApplication,
    /// Sticky: the same client address lands on the same endpoint while it is up.
    HashClientAddress,
}

impl Balancing {
    pub const ALL: [Balancing; 4] =
        [Balancing::RoundRobin, Balancing::LeastConnections, Balancing::HashApplication, Balancing::HashClientAddress];

    pub fn as_str(self) -> &'static str {
        match self {
            Balancing::RoundRobin => "round_robin",
            Balancing::LeastConnections => "least_connections",
            Balancing::HashApplication => "hash_application",
            Balancing::HashClientAddress => "hash_client_address",
        }
    }

    pub fn parse(text: &str) -> Option<Balancing> {
        Balancing::ALL.into_iter().find(|b| b.as_str() == text)
    }
}

/// The passive circuit breaker of each endpoint (WSO2's "endpoint suspension"). Closed, it
/// counts failed connects and upgrades; `consecutive_failures` in a row, or a failure ratio of
/// `failure_percent` over at least `min_attempts` in `window`, open it for `cool_down`. Then one
/// trial connection half-opens it: success closes it, failure opens it again for the cool-down
/// times `progression_factor`, up to `max_cool_down`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    pub enabled: bool,
    /// 0: only the ratio counts.
    pub consecutive_failures: u32,
    /// 0: only consecutive failures count.
    pub failure_percent: u32,
    pub min_attempts: u32,
    #[serde(with = "serde_text")]
    pub window: Duration,
    #[serde(with = "serde_text")]
    pub cool_down: Duration,
    pub progression_factor: u32,
    #[serde(with = "serde_text")]
    pub max_cool_down: Duration,
}

impl Default for BreakerSettings {
    /// Conservative: five failures in a row (or half of at least twenty attempts in 30 s)
    /// suspend an endpoint for 10 s, doubling while it keeps failing, up to 5 minutes.
    fn default() -> Self {
        BreakerSettings {
            enabled: true,
            consecutive_failures: 5,
            failure_percent: 50,
            min_attempts: 20,
            window: Duration::from_secs(30),
            cool_down: Duration::from_secs(10),
            progression_factor: 2,
            max_cool_down: Duration::from_secs(300),
        }
    }
}

/// What an active probe does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// A TCP connect.
    #[default]
    Tcp,
    /// A WebSocket upgrade to `path` that must be answered 101 (then closed with 1000).
    Websocket,
}

/// An active health check of every endpoint of an API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSettings {
    pub kind: ProbeKind,
    /// The path a `websocket` probe upgrades (below the endpoint's own path).
    pub path: String,
    #[serde(with = "serde_text")]
    pub interval: Duration,
    #[serde(with = "serde_text")]
    pub timeout: Duration,
    /// Failed probes in a row that mark an endpoint down.
    pub unhealthy_after: u32,
    /// Passed probes in a row that mark it up again.
    pub healthy_after: u32,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            kind: ProbeKind::Tcp,
            path: "/".into(),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            unhealthy_after: 2,
            healthy_after: 1,
        }
    }
}

impl EndpointSettings {
    /// Checks the settings of an API with `endpoints` endpoints; the error is the field at
    /// fault (relative, like `breaker.window`) and the problem.
    pub fn check(&self, endpoints: usize) -> Result<(), (String, String)> {
        let bad = |field: &str, problem: &str| Err((field.to_string(), problem.to_string()));
        for (field, value) in [
            ("connect_timeout", self.connect_timeout),
            ("upstream_handshake_timeout", self.upstream_handshake_timeout),
            ("idle_timeout", self.idle_timeout),
            ("close_timeout", self.close_timeout),
            ("max_lifetime", self.max_lifetime),
            ("ping_interval", self.ping_interval),
            ("ping_timeout", self.ping_timeout),
        ] {
            if value.is_some_and(|v| v.is_zero()) {
                return bad(field, "must be longer than 0 (leave it out for the gateway default)");
            }
        }
        for (field, value) in [("max_frame_size", self.max_frame_size), ("max_message_size", self.max_message_size)] {
            if value == Some(0) {
                return bad(field, "must be greater than 0");
            }
        }
        if self.retries.is_some_and(|r| r > 16) {
            return bad("retries", "must be at most 16");
        }
        if !self.weights.is_empty() {
            if self.weights.len() != endpoints {
                return Err((
                    "weights".into(),
                    format!("has {} entries for {endpoints} endpoints (one per endpoint, or none)", self.weights.len()),
                ));
            }
            if self.weights.iter().all(|w| *w == 0) {
                return bad("weights", "at least one endpoint must weigh more than 0");
            }
            if self.weights.iter().any(|w| *w > 1000) {
                return bad("weights", "each weight must be at most 1000");
            }
        }
        let breaker = &self.breaker;
        if breaker.enabled {
            if breaker.consecutive_failures == 0 && breaker.failure_percent == 0 {
                return bad("breaker", "needs consecutive_failures or failure_percent (or enabled = false)");
            }
            if breaker.failure_percent > 100 {
                return bad("breaker.failure_percent", "must be at most 100");
            }
            if breaker.failure_percent > 0 && breaker.min_attempts == 0 {
                return bad("breaker.min_attempts", "must be greater than 0");
            }
            for (field, value) in [
                ("breaker.window", breaker.window),
                ("breaker.cool_down", breaker.cool_down),
                ("breaker.max_cool_down", breaker.max_cool_down),
            ] {
                if value.is_zero() {
                    return bad(field, "must be longer than 0");
                }
            }
            if breaker.max_cool_down < breaker.cool_down {
                return bad("breaker.max_cool_down", "must be at least cool_down");
            }
            if breaker.progression_factor == 0 || breaker.progression_factor > 10 {
                return bad("breaker.progression_factor", "must be between 1 and 10");
            }
        }
        if let Some(probe) = &self.probe {
            if probe.interval < Duration::from_millis(100) {
                return bad("probe.interval", "must be at least 100ms");
            }
            if probe.timeout.is_zero() {
                return bad("probe.timeout", "must be longer than 0");
            }
            if probe.unhealthy_after == 0 || probe.healthy_after == 0 {
                let field = if probe.unhealthy_after == 0 { "probe.unhealthy_after" } else { "probe.healthy_after" };
                return bad(field, "must be at least 1");
            }
            let path_ok = probe.path.starts_with('/')
                && probe.path.len() <= 200
                && probe.path.bytes().all(|b| b.is_ascii_graphic() && b != b'#' && b != b'\\');
            if !path_ok {
                return bad("probe.path", "must start with '/' and hold printable ASCII only (at most 200)");
            }
        }
        Ok(())
    }

    /// The weight of endpoint `index` (1 when no weights are set).
    pub fn weight(&self, index: usize) -> u32 {
        self.weights.get(index).copied().unwrap_or(1)
    }
}

/// What one gateway node knows of an API's endpoints now; the control plane shows it on the
/// publisher's API page and at `GET /api/v1/apis/{id}/endpoints`. The gateway implements it
/// over its endpoint table; the binary hands it to the control plane.
pub trait EndpointHealth: Send + Sync {
    /// The endpoints of the API with this store id, in its order; empty when this node has not
    /// routed the API (not published, or a node without a gateway).
    fn endpoints(&self, api_id: &str) -> Vec<EndpointStatus>;
}

/// One endpoint as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStatus {
    /// The endpoint as configured.
    pub url: String,
    pub state: EndpointCondition,
    /// Connections relayed to it now (from this node).
    pub active_connections: u64,
    /// Failed connects or upgrades in a row.
    pub consecutive_failures: u32,
    /// While suspended: milliseconds until a trial connection may go through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
    /// The last failure, as the access log words it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

impl EndpointStatus {
    /// An endpoint no gateway reported: configured, state unknown.
    pub fn unreported(url: &str) -> EndpointStatus {
        EndpointStatus {
            url: url.to_string(),
            state: EndpointCondition::Unknown,
            active_connections: 0,
            consecutive_failures: 0,
            retry_in_ms: None,
            last_failure: None,
        }
    }
}

/// Whether new connections may go to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointCondition {
    /// Takes connections (breaker closed, probe passing or off).
    Up,
    /// The breaker is open: skipped until its cool-down ends.
    Suspended,
    /// The cool-down ended: the next connection is a trial.
    HalfOpen,
    /// The active probe fails: skipped until it passes again.
    Down,
    /// Not reported: the control plane knows the endpoint from the API, but no gateway beside it
    /// routes the API (never said by a gateway).
    Unknown,
}

impl EndpointCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointCondition::Up => "up",
            EndpointCondition::Suspended => "suspended",
            EndpointCondition::HalfOpen => "half_open",
            EndpointCondition::Down => "down",
            EndpointCondition::Unknown => "unknown",
        }
    }
}

/// Checks an `allowed_origins` list: each entry is `scheme://host[:port]` (what browsers send
/// in `Origin`) or `null`; the error is the index at fault and the problem.
pub fn check_origins(origins: &[String]) -> Result<(), (usize, String)> {
    for (index, origin) in origins.iter().enumerate() {
        let problem = || (index, format!("{origin:?} is not an origin like https://app.example.com[:port]"));
        if origin == "null" {
            continue;
        }
        let Some((scheme, rest)) = origin.split_once("://") else { return Err(problem()) };
        let scheme_ok = !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        let host_ok = !rest.is_empty()
            && rest.len() <= 260
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
        if !scheme_ok || !host_ok {
            return Err(problem());
        }
    }
    Ok(())
}

/// Whether a request's `Origin` value passes `allowed`: an empty list allows any origin, and a
/// request without `Origin` (not a browser: a browser always sends one on a WebSocket upgrade)
/// passes too. Compared case-insensitively, as origins are (RFC 6454 serializes them lower-case).
pub fn origin_allowed(allowed: &[String], origin: Option<&[u8]>) -> bool {
    match origin {
        _ if allowed.is_empty() => true,
        None => true,
        Some(origin) => allowed.iter().any(|entry| entry.as_bytes().eq_ignore_ascii_case(origin.trim_ascii())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_conservative_and_valid() {
        let settings = EndpointSettings::default();
        assert!(settings.breaker.enabled);
        assert_eq!(settings.load_balancing, Balancing::RoundRobin);
        assert_eq!(settings.check(1), Ok(()));
        assert_eq!(settings.weight(3), 1);
    }

    #[test]
    fn settings_round_trip_as_json_with_durations_as_text() {
        let settings = EndpointSettings {
            connect_timeout: Some(Duration::from_millis(1500)),
            max_lifetime: Some(Duration::from_secs(3600)),
            load_balancing: Balancing::LeastConnections,
            weights: vec![3, 1],
            probe: Some(ProbeSettings { kind: ProbeKind::Websocket, ..ProbeSettings::default() }),
            ..EndpointSettings::default()
        };
        let json = serde_json::to_string(&settings).expect("json");
        assert!(json.contains("\"connect_timeout\":\"1500ms\""), "{json}");
        assert!(json.contains("\"max_lifetime\":\"1h\""), "{json}");
        assert!(json.contains("\"load_balancing\":\"least_connections\""), "{json}");
        assert_eq!(serde_json::from_str::<EndpointSettings>(&json).expect("back"), settings);
        assert_eq!(serde_json::from_str::<EndpointSettings>("{}").expect("empty"), EndpointSettings::default());
    }

    #[test]
    fn bad_settings_name_their_field() {
        let field = |settings: EndpointSettings, endpoints| settings.check(endpoints).expect_err("refused").0;
        let zero = EndpointSettings { connect_timeout: Some(Duration::ZERO), ..EndpointSettings::default() };
        assert_eq!(field(zero, 1), "connect_timeout");
        assert_eq!(field(EndpointSettings { weights: vec![1], ..EndpointSettings::default() }, 2), "weights");
        assert_eq!(field(EndpointSettings { weights: vec![0, 0], ..EndpointSettings::default() }, 2), "weights");
        let ratio = BreakerSettings { failure_percent: 101, ..BreakerSettings::default() };
        assert_eq!(
            field(EndpointSettings { breaker: ratio, ..EndpointSettings::default() }, 1),
            "breaker.failure_percent"
        );
        let probe = ProbeSettings { path: "no-slash".into(), ..ProbeSettings::default() };
        assert_eq!(field(EndpointSettings { probe: Some(probe), ..EndpointSettings::default() }, 1), "probe.path");
        let off = BreakerSettings {
            enabled: false,
            consecutive_failures: 0,
            failure_percent: 0,
            ..BreakerSettings::default()
        };
        assert_eq!(EndpointSettings { breaker: off, ..EndpointSettings::default() }.check(1), Ok(()));
    }

    #[test]
    fn origins_are_checked_and_matched() {
        let allowed = vec!["https://app.example.com".to_string(), "http://localhost:3000".to_string()];
        assert_eq!(check_origins(&allowed), Ok(()));
        assert!(check_origins(&["app.example.com".into()]).is_err());
        assert!(check_origins(&["https://app.example.com/path".into()]).is_err());
        assert!(origin_allowed(&allowed, Some(b"https://APP.example.com")));
        assert!(!origin_allowed(&allowed, Some(b"https://evil.example")));
        assert!(!origin_allowed(&allowed, Some(b"https://app.example.com.evil.example")));
        assert!(origin_allowed(&allowed, None), "non-browser clients send no Origin");
        assert!(origin_allowed(&[], Some(b"https://evil.example")), "no list: any origin");
    }
}

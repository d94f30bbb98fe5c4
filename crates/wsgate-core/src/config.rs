//! The configuration file: parse, validate, freeze. Nothing binds a port before
//! [`Config::from_toml`] has accepted the whole file, so a typo never half-starts a gateway;
//! [`bind_problem`] says which setting to change when a port cannot be bound.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::endpoint::{AllowList, Endpoint, Scheme};
use crate::limits::Limits;
pub use crate::upstream::EndpointSettings;
use crate::{duration, version};

/// A config problem, rendered as one line that names the key: `apis[0].version: must not be empty`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0}")]
    Syntax(String),
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), problem: problem.into() }
}

/// The whole file. Every section is optional so that an empty file is a valid gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub gateway: GatewaySettings,
    #[serde(default)]
    pub control: ControlSettings,
    #[serde(default)]
    pub store: StoreSettings,
    #[serde(default)]
    pub cluster: ClusterSettings,
    #[serde(default)]
    pub observability: ObservabilitySettings,
    /// External OAuth2/OIDC providers whose access tokens the gateway accepts besides the
    /// control plane's own.
    #[serde(default)]
    pub identity_providers: Vec<IdentityProvider>,
    #[serde(default)]
    pub apis: Vec<ApiSpec>,
    #[serde(default)]
    pub analytics: AnalyticsSettings,
}

/// Listener addresses, limits and timeouts of the data plane.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySettings {
    /// Plain `ws://` listener, or `"off"`. Kept as text until [`Config::validate`] so its error
    /// names the key.
    pub ws_listen: String,
    /// TLS `wss://` listener, or `"off"`.
    pub wss_listen: String,
    /// PEM certificate chain for the wss listener; with `tls_key`. When both are absent a
    /// self-signed certificate is generated into `data_dir` on first start.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// How often the certificate files are checked for changes (new handshakes get the new one).
    #[serde(with = "duration::serde_text")]
    pub tls_reload_interval: Duration,
    /// Where the store and generated certificates live; see [`default_data_dir`].
    pub data_dir: Option<PathBuf>,
    /// A frame whose header announces more payload than this is refused with close 1009.
    pub max_frame_size: u64,
    /// A message (all fragments together) larger than this is refused with close 1009.
    pub max_message_size: u64,
    /// Pings and pongs one side of a connection may send per second (each direction on its
    /// own, counted between ticks of the connection's timer: every second while traffic flows,
    /// more often when `idle_timeout` is under 4 s); one more closes that connection with 1008
    /// on both sides. 0 turns the limit off.
    pub max_control_frames_per_second: u32,
    /// Request line plus headers of the upgrade request; larger gets 431.
    pub max_header_size: usize,
    /// The client must finish sending its upgrade request within this time (else 408), and take
    /// the answer (a refusal or the 101) within it too, so a slow client or one that never
    /// reads cannot hold a connection slot.
    #[serde(with = "duration::serde_text")]
    pub handshake_timeout: Duration,
    /// TCP connect to the upstream (504 when exceeded).
    #[serde(with = "duration::serde_text")]
    pub connect_timeout: Duration,
    /// The upstream must answer the upgrade request within this time (504 when exceeded).
    #[serde(with = "duration::serde_text")]
    pub upstream_handshake_timeout: Duration,
    /// No frame in either direction for this long closes the connection with 1001.
    #[serde(with = "duration::serde_text")]
    pub idle_timeout: Duration,
    /// After a close frame is sent, how long the other side may take to answer it.
    #[serde(with = "duration::serde_text")]
    pub close_timeout: Duration,
    /// On SIGTERM or SIGINT, how long the node goes on accepting new connections after
    /// `/readyz` turned 503, so that a load balancer notices before the listeners close (set it
    /// to the balancer's health-check interval times its fall count). A second signal ends the
    /// wait early. `"0s"`: the listeners close at once.
    #[serde(with = "duration::serde_text")]
    pub shutdown_delay: Duration,
    /// Once the listeners closed, how long live connections get to finish their close
    /// handshakes (after 1001 to both sides).
    #[serde(with = "duration::serde_text")]
    pub shutdown_timeout: Duration,
    /// After a config reload (SIGHUP, `serve --watch-config`) removed a file API, how long its
    /// live connections may go on before both sides get 1001; new handshakes to it get 404 at
    /// once. An API put back within the grace keeps its connections.
    #[serde(with = "duration::serde_text")]
    pub reload_grace: Duration,
    /// The longest any connection may live, then both sides get 1001; absent: no limit. An
    /// API's `endpoint_settings.max_lifetime` overrides it.
    #[serde(with = "duration::serde_opt_text")]
    pub max_lifetime: Option<Duration>,
    /// Keepalive: a ping to each side of a connection that has been quiet this long; absent:
    /// no pings. The gateway's pings are answered to the gateway, never relayed.
    #[serde(with = "duration::serde_opt_text")]
    pub ping_interval: Option<Duration>,
    /// How long a side pinged for keepalive may stay silent before the connection is closed.
    #[serde(with = "duration::serde_text")]
    pub ping_timeout: Duration,
    /// Connections the gateway holds at once, all listeners together; one more is answered 503
    /// at once. 0: no cap.
    pub max_connections: usize,
    /// Connections one client address may hold at once, counted from accept (before
    /// authentication, so unauthenticated handshakes count too); one more is answered 429.
    /// 0: no cap.
    pub max_connections_per_address: usize,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            ws_listen: "0.0.0.0:9099".into(),
            wss_listen: "0.0.0.0:8099".into(),
            tls_cert: None,
            tls_key: None,
            tls_reload_interval: Duration::from_secs(5),
            data_dir: None,
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_control_frames_per_second: 100,
            max_header_size: 16 << 10,
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            upstream_handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            close_timeout: Duration::from_secs(5),
            shutdown_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(10),
            reload_grace: Duration::from_secs(30),
            max_lifetime: None,
            ping_interval: None,
            ping_timeout: Duration::from_secs(10),
            max_connections: 100_000,
            max_connections_per_address: 1024,
        }
    }
}

impl GatewaySettings {
    /// The `ws_listen` address, `None` when it is `"off"`.
    pub fn ws_listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        listen_addr("gateway.ws_listen", &self.ws_listen)
    }

    /// The `wss_listen` address, `None` when it is `"off"`.
    pub fn wss_listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        listen_addr("gateway.wss_listen", &self.wss_listen)
    }

    /// The data directory: as configured, else [`default_data_dir`].
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }
}

fn listen_addr(key: &str, text: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if text == "off" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| invalid(key, format!("\"{text}\" is not an IP:port address (or \"off\")")))
}

/// What to tell someone whose listener could not be bound: the operating system's reason in
/// words, and the setting (and the command-line flag, where there is one) that picks another
/// address. `key` is the setting: `gateway.ws_listen`, `gateway.wss_listen`, `control.listen`
/// or `observability.metrics_listen`.
pub fn bind_problem(key: &str, addr: SocketAddr, err: &std::io::Error) -> String {
    let flag = match key {
        "gateway.ws_listen" => " or --ws-listen",
        "gateway.wss_listen" => " or --wss-listen",
        "control.listen" => " or --control-listen",
        _ => "",
    };
    let why = match err.kind() {
        std::io::ErrorKind::AddrInUse => {
            format!("port {} is already in use (another wsgate, or another server, listens there)", addr.port())
        }
        std::io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            "ports below 1024 need root or the CAP_NET_BIND_SERVICE capability".to_string()
        }
        std::io::ErrorKind::AddrNotAvailable => format!("{} is not an address of this machine", addr.ip()),
        _ => err.to_string(),
    };
    format!("cannot listen on {addr}: {why}; set another address with {key} in the config file{flag} (or \"off\")")
}

/// Where `serve`, `demo` and the CLI look for their data when no `--data-dir` is given:
/// `$WSGATE_DATA_DIR`, else `$XDG_DATA_HOME/wsgate`, else `~/.local/share/wsgate`, else
/// `./wsgate-data`. One rule for all, so client commands find the server's certificate.
pub fn default_data_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("WSGATE_DATA_DIR") {
        return dir;
    }
    if let Some(dir) = var("XDG_DATA_HOME") {
        return dir.join("wsgate");
    }
    match var("HOME") {
        Some(home) => home.join(".local/share/wsgate"),
        None => PathBuf::from("wsgate-data"),
    }
}

/// The control plane: portals, REST API and OAuth2 server on one HTTPS listener, with the
/// same certificate as the wss listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSettings {
    /// HTTPS listener, or `"off"` (also `--control-listen`).
    pub listen: String,
    /// Lifetime of access tokens issued by the OAuth2 token endpoint.
    #[serde(with = "duration::serde_text")]
    pub token_ttl: Duration,
    /// Lifetime of a signed-in session (portal cookie or CLI bearer).
    #[serde(with = "duration::serde_text")]
    pub session_ttl: Duration,
    /// How long a signing key signs new tokens before a new one replaces it. It stays in the
    /// JWKS for one `token_ttl` more, so tokens it signed stay valid until they expire.
    #[serde(with = "duration::serde_text")]
    pub signing_key_rotation: Duration,
    /// `iss` of issued tokens, for every node sharing the store: the first node to start on a
    /// store fixes it there (this value, else `https://localhost:<its control port>`) and every
    /// later node uses the stored one. A node configured with another value refuses to start.
    pub issuer: Option<String>,
    /// Whether anyone may create a subscriber account in the developer portal.
    pub self_signup: bool,
    /// Whether visitors who are not signed in may browse the developer portal's catalogue and
    /// API pages (as WSO2's developer portal lets them); subscribing, keys and "Try it" still
    /// need an account.
    pub anonymous_browsing: bool,
    /// A file holding the key-encryption key (32 random bytes, hex or base64) that signing keys
    /// are encrypted with in the store. Without it they are stored unencrypted (and a warning
    /// says so at start). Every node sharing a store needs the same file.
    pub key_encryption_key_file: Option<PathBuf>,
    /// Where API endpoints may point, for APIs made by anyone but an admin: host names,
    /// `*.domain`, IP addresses or CIDR ranges, each with an optional `:port`. Empty: anywhere.
    pub endpoint_allowlist: Vec<String>,
}

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings {
            listen: "0.0.0.0:9443".into(),
            token_ttl: Duration::from_secs(3600),
            session_ttl: Duration::from_secs(8 * 3600),
            signing_key_rotation: Duration::from_secs(24 * 3600),
            issuer: None,
            self_signup: true,
            anonymous_browsing: true,
            key_encryption_key_file: None,
            endpoint_allowlist: Vec::new(),
        }
    }
}

impl ControlSettings {
    /// The `listen` address, `None` when it is `"off"`.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        listen_addr("control.listen", &self.listen)
    }

    /// The parsed `endpoint_allowlist`.
    pub fn endpoint_allowlist(&self) -> Result<AllowList, ConfigError> {
        AllowList::parse(&self.endpoint_allowlist)
            .map_err(|(index, problem)| invalid(format!("control.endpoint_allowlist[{index}]"), problem))
    }
}

/// An external identity provider, trusted for the tokens whose `iss` is `issuer`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityProvider {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// Where its public keys are published (`https://` only). Fetched at start and again when a
    /// token names a key not seen yet, at most once per `jwks_refresh_interval`.
    pub jwks_url: String,
    /// The `aud` its tokens must carry for this gateway.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// PEM CA bundle to trust for `jwks_url` instead of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The least time between two fetches of the JWKS, so that tokens naming unknown keys
    /// cannot make the gateway hammer the provider.
    #[serde(default = "default_jwks_refresh", with = "duration::serde_text")]
    pub jwks_refresh_interval: Duration,
}

fn default_audience() -> String {
    "wsgate".into()
}

fn default_jwks_refresh() -> Duration {
    Duration::from_secs(10)
}

/// Where configuration, keys and subscriptions are kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `postgres://user@host:port/db` to share one store between gateway nodes. Absent: an
    /// SQLite file `wsgate.db` in the data directory.
    pub url: Option<String>,
}

/// What gateway nodes share besides the store: Redis for the counters of limits; and how each
/// node reports itself in the store's node list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// `redis://host:port[/db]` shared by every node, so that limits hold across nodes. Absent:
    /// counters live in this process (right for one node).
    pub redis_url: Option<String>,
    /// Prefix of every Redis key wsgate writes, so one Redis can serve several installations.
    pub redis_prefix: String,
    /// While Redis is unreachable: `"open"` keeps serving with this node's own counters,
    /// `"closed"` refuses new connections to limited APIs with 503. Live connections go on
    /// with this node's counters either way; Redis is used again as soon as it answers.
    pub redis_failure: FailureMode,
    /// How long a node's open connections stay counted in Redis without a heartbeat: the time
    /// after which a node that died stops holding its subscribers' connection slots.
    #[serde(with = "duration::serde_text")]
    pub lease_ttl: Duration,
    /// How long the node that runs the cluster's one-writer jobs (signing-key pre-rotation,
    /// analytics retention) holds them in the store without renewing (it renews every third
    /// of it): the time after which another node takes over from one that died.
    #[serde(with = "duration::serde_text")]
    pub duties_lease: Duration,
    /// What the node list calls this node. Absent: the machine's host name.
    pub node_name: Option<String>,
    /// How often the node writes its record (addresses, version, open connections) to the
    /// store, for the node list. A node silent for three intervals is shown as gone.
    #[serde(with = "duration::serde_text")]
    pub heartbeat_interval: Duration,
    /// How long a node that stopped or is gone stays in the node list before its record is
    /// deleted.
    #[serde(with = "duration::serde_text")]
    pub node_retention: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            redis_url: None,
            redis_prefix: "wsgate".into(),
            redis_failure: FailureMode::Open,
            lease_ttl: Duration::from_secs(15),
            duties_lease: Duration::from_secs(30),
            node_name: None,
            heartbeat_interval: Duration::from_secs(5),
            node_retention: Duration::from_secs(3600),
        }
    }
}

impl ClusterSettings {
    /// The node list's settings: a name one can read, a heartbeat neither too frequent for the
    /// store nor too rare to notice a dead node, and a retention that outlasts being gone.
    fn validate_nodes(&self) -> Result<(), ConfigError> {
        if let Some(name) = &self.node_name
            && (name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control))
        {
            return Err(invalid("cluster.node_name", "must be 1 to 100 characters, none of them control characters"));
        }
        if self.heartbeat_interval < Duration::from_millis(100) || self.heartbeat_interval > Duration::from_secs(300) {
            return Err(invalid("cluster.heartbeat_interval", "must be between 100ms and 5m"));
        }
        let gone_after = self.heartbeat_interval * 3;
        if self.node_retention <= gone_after {
            return Err(invalid(
                "cluster.node_retention",
                format!("must be longer than 3 heartbeat intervals ({})", duration::format(gone_after)),
            ));
        }
        Ok(())
    }
}

/// Metrics, health endpoints and the access log's format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObservabilitySettings {
    /// Whether the gateway keeps Prometheus metrics (`/metrics`); off saves their few atomic
    /// adds per connection and tick.
    pub metrics: bool,
    /// A listener of its own for `/metrics`, `/healthz` and `/readyz` (plain HTTP), or
    /// `"off"`: they are served on the control listener either way.
    pub metrics_listen: String,
    /// Whether metrics carry an `application` label besides `api` and `plan`. Off by default:
    /// every application is a new series.
    pub per_application_labels: bool,
    /// `"text"` (one line per event; colours only on a terminal) or `"json"` (one JSON object
    /// per line).
    pub log_format: LogFormat,
}

impl Default for ObservabilitySettings {
    fn default() -> Self {
        ObservabilitySettings {
            metrics: true,
            metrics_listen: "off".into(),
            per_application_labels: false,
            log_format: LogFormat::Text,
        }
    }
}

impl ObservabilitySettings {
    /// The `metrics_listen` address, `None` when it is `"off"`.
    pub fn metrics_listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        listen_addr("observability.metrics_listen", &self.metrics_listen)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// How much of a client's address session records keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientIpMode {
    Full,
    /// The network only: /24 of an IPv4 address, /48 of an IPv6 one.
    #[default]
    Truncated,
    Off,
}

impl ClientIpMode {
    /// `ip` as a record keeps it.
    pub fn apply(self, ip: std::net::IpAddr) -> Option<String> {
        use std::net::IpAddr;
        match (self, ip) {
            (ClientIpMode::Off, _) => None,
            (ClientIpMode::Full, ip) => Some(ip.to_string()),
            (ClientIpMode::Truncated, IpAddr::V4(v4)) => {
                let [a, b, c, _] = v4.octets();
                Some(format!("{a}.{b}.{c}.0"))
            }
            (ClientIpMode::Truncated, IpAddr::V6(v6)) => {
                let s = v6.segments();
                Some(std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string())
            }
        }
    }
}

/// Session analytics: what the gateway records about each connection (`interim_interval`,
/// `client_ip`) and how the analytics writer keeps it (the keys after them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsSettings {
    /// A connection open longer than this adds an interim record every interval, so a socket
    /// open for a day shows its traffic while it lives.
    #[serde(with = "duration::serde_text")]
    pub interim_interval: Duration,
    /// How much of the client's address a record keeps.
    pub client_ip: ClientIpMode,
    /// Whether session records are aggregated and stored at all (the per-API and
    /// per-application charts and their REST endpoints stay empty when off).
    pub enabled: bool,
    /// How long per-minute buckets are kept; older ones are deleted hourly by the node that
    /// holds the cluster's duties (`cluster.duties_lease`).
    #[serde(with = "duration::serde_text")]
    pub retention: Duration,
    /// How often the writer stores what it aggregated (also on a full `batch`).
    #[serde(with = "duration::serde_text")]
    pub flush_interval: Duration,
    /// How many records the writer aggregates at most before it stores them.
    pub batch: usize,
    /// How many records may wait for the writer; when full, new records are dropped and counted
    /// rather than slowing a connection down.
    pub queue: usize,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        AnalyticsSettings {
            interim_interval: Duration::from_secs(60),
            client_ip: ClientIpMode::Truncated,
            enabled: true,
            retention: Duration::from_secs(7 * 86_400),
            flush_interval: Duration::from_secs(1),
            batch: 10_000,
            queue: 65_536,
        }
    }
}

/// What limits do while the shared counters cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    #[default]
    Open,
    Closed,
}

/// How a client proves who it is. `oauth2` is the default, so an API is never open by omission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    Oauth2,
    /// Keyless ("Open" in Tyk's words): anyone who can reach the gateway may connect.
    None,
}

/// One WebSocket API as declared in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    pub name: String,
    pub context: String,
    pub version: String,
    pub endpoints: Vec<String>,
    #[serde(default)]
    pub auth: AuthMode,
    /// Whether `/context/...` without a version segment routes to this version.
    #[serde(default)]
    pub default_version: bool,
    /// PEM bundle of CAs trusted for this API's `wss://` endpoints instead of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key presented to `wss://` endpoints (mutual TLS).
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Accept any certificate from this API's `wss://` endpoints. Logged as a warning at start.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Limits all connections to this API share (protects the backend).
    #[serde(default)]
    pub limits: Option<Limits>,
    /// Limits each client address gets on its own (keyless APIs have no subscription).
    #[serde(default)]
    pub client_limits: Option<Limits>,
    /// Origins whose pages may open connections (`https://app.example.com`): another
    /// `Origin` gets 403 before authentication or the upstream. Empty: any origin.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Timeouts, sizes, balancing, breaker, probe and keepalive for this API's endpoints.
    #[serde(default)]
    pub endpoint_settings: EndpointSettings,
}

impl Config {
    /// Parses and validates a whole file.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|err| ConfigError::Syntax(one_line(&err.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule that serde cannot express; the error names the offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let gw = &self.gateway;
        if gw.ws_listen_addr()?.is_none() && gw.wss_listen_addr()?.is_none() {
            return Err(invalid("gateway.ws_listen", "ws_listen and wss_listen cannot both be \"off\""));
        }
        self.control.listen_addr()?;
        self.observability.metrics_listen_addr()?;
        if self.analytics.interim_interval < Duration::from_secs(1) {
            return Err(invalid("analytics.interim_interval", "must be at least 1s"));
        }
        self.control.endpoint_allowlist()?;
        for (key, value) in [
            ("control.token_ttl", self.control.token_ttl),
            ("control.session_ttl", self.control.session_ttl),
            ("control.signing_key_rotation", self.control.signing_key_rotation),
        ] {
            if value.is_zero() {
                return Err(invalid(key, "must be longer than 0"));
            }
        }
        if let Some(url) = &self.store.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid("store.url", format!("\"{url}\" must be a postgres:// URL (leave it out for SQLite)")));
        }
        if let Some(url) = &self.cluster.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(invalid("cluster.redis_url", format!("\"{url}\" must be a redis:// URL")));
        }
        if self.cluster.redis_prefix.is_empty() || self.cluster.redis_prefix.contains(char::is_whitespace) {
            return Err(invalid("cluster.redis_prefix", "must be a non-empty word without spaces"));
        }
        if self.analytics.retention < Duration::from_secs(3600) {
            return Err(invalid("analytics.retention", "must be at least 1h (the hour chart reads that far back)"));
        }
        if self.analytics.flush_interval.is_zero() || self.analytics.flush_interval > Duration::from_secs(60) {
            return Err(invalid("analytics.flush_interval", "must be longer than 0 and at most 60s"));
        }
        if self.analytics.batch == 0 || self.analytics.queue == 0 {
            let key = if self.analytics.batch == 0 { "analytics.batch" } else { "analytics.queue" };
            return Err(invalid(key, "must be greater than 0"));
        }
        if self.cluster.lease_ttl < Duration::from_secs(2) {
            return Err(invalid("cluster.lease_ttl", "must be at least 2s"));
        }
        if self.cluster.duties_lease < Duration::from_secs(3) {
            return Err(invalid("cluster.duties_lease", "must be at least 3s"));
        }
        self.cluster.validate_nodes()?;
        if gw.tls_cert.is_some() != gw.tls_key.is_some() {
            return Err(invalid("gateway.tls_key", "tls_cert and tls_key go together: set both or neither"));
        }
        for (key, value) in [
            ("gateway.max_frame_size", gw.max_frame_size),
            ("gateway.max_message_size", gw.max_message_size),
            ("gateway.max_header_size", gw.max_header_size as u64),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        if gw.max_header_size < 1024 {
            return Err(invalid("gateway.max_header_size", "must be at least 1024 bytes"));
        }
        for (key, value) in [
            ("gateway.handshake_timeout", gw.handshake_timeout),
            ("gateway.connect_timeout", gw.connect_timeout),
            ("gateway.upstream_handshake_timeout", gw.upstream_handshake_timeout),
            ("gateway.idle_timeout", gw.idle_timeout),
            ("gateway.close_timeout", gw.close_timeout),
            ("gateway.tls_reload_interval", gw.tls_reload_interval),
            ("gateway.ping_timeout", gw.ping_timeout),
            ("gateway.max_lifetime", gw.max_lifetime.unwrap_or(Duration::MAX)),
            ("gateway.ping_interval", gw.ping_interval.unwrap_or(Duration::MAX)),
        ] {
            if value.is_zero() {
                return Err(invalid(key, "must be longer than 0"));
            }
        }
        for (index, provider) in self.identity_providers.iter().enumerate() {
            let key = |field: &str| format!("identity_providers[{index}].{field}");
            if provider.issuer.trim().is_empty() {
                return Err(invalid(key("issuer"), "must not be empty"));
            }
            if !provider.jwks_url.starts_with("https://") {
                return Err(invalid(key("jwks_url"), format!("\"{}\" must be an https:// URL", provider.jwks_url)));
            }
            if self.identity_providers[..index].iter().any(|other| other.issuer == provider.issuer) {
                return Err(invalid(key("issuer"), format!("{} is declared twice", provider.issuer)));
            }
        }
        let mut seen: Vec<(&str, &str)> = Vec::new();
        let mut defaults: Vec<&str> = Vec::new();
        for (index, api) in self.apis.iter().enumerate() {
            let key = |field: &str| format!("apis[{index}].{field}");
            api.validate(&key)?;
            let route = (api.context.as_str(), version::canonical(&api.version));
            if seen.contains(&route) {
                return Err(invalid(key("version"), format!("{} {} is declared twice", api.context, api.version)));
            }
            seen.push(route);
            if api.default_version {
                if defaults.contains(&api.context.as_str()) {
                    return Err(invalid(
                        key("default_version"),
                        format!("{} already has a default version", api.context),
                    ));
                }
                defaults.push(&api.context);
            }
        }
        Ok(())
    }
}

impl ApiSpec {
    fn validate(&self, key: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() || self.name.chars().any(char::is_control) {
            return Err(invalid(key("name"), "must not be empty or hold control characters"));
        }
        validate_context(&self.context).map_err(|problem| invalid(key("context"), problem))?;
        if self.version.is_empty() {
            return Err(invalid(key("version"), "is required (e.g. 1.0)"));
        }
        if !version::is_valid(&self.version) {
            return Err(invalid(
                key("version"),
                format!("\"{}\" must be 1-64 letters, digits, '.', '-' or '_'", self.version),
            ));
        }
        if self.endpoints.is_empty() {
            return Err(invalid(key("endpoints"), "needs at least one ws:// or wss:// URL"));
        }
        for (i, url) in self.endpoints.iter().enumerate() {
            Endpoint::parse(url).map_err(|problem| invalid(format!("{}[{i}]", key("endpoints")), problem))?;
        }
        for (field, limits) in [("limits", &self.limits), ("client_limits", &self.client_limits)] {
            if let Some(Err((name, problem))) = limits.as_ref().map(Limits::check) {
                return Err(invalid(format!("{}.{name}", key(field)), problem));
            }
        }
        if let Err((field, problem)) = self.endpoint_settings.check(self.endpoints.len()) {
            return Err(invalid(format!("{}.{field}", key("endpoint_settings")), problem));
        }
        if let Err((i, problem)) = crate::upstream::check_origins(&self.allowed_origins) {
            return Err(invalid(format!("{}[{i}]", key("allowed_origins")), problem));
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(invalid(key("client_key"), "client_cert and client_key go together: set both or neither"));
        }
        if self.auth == AuthMode::Oauth2 {
            return Err(invalid(
                key("auth"),
                "\"oauth2\" (the default) needs an API managed in the control plane (wsgate api create); APIs in this file must be keyless: set auth = \"none\"",
            ));
        }
        Ok(())
    }

    /// The parsed endpoints; only valid after [`Config::validate`].
    pub fn parsed_endpoints(&self) -> Vec<Endpoint> {
        self.endpoints.iter().filter_map(|url| Endpoint::parse(url).ok()).collect()
    }
}

/// The settings outside `[[apis]]` whose values differ between two versions of a config file,
/// as dotted keys (`gateway.ws_listen`, `store.url`, `identity_providers`), sorted: what a
/// reload cannot apply without a restart. Values are compared as written, so a key added with
/// its default value counts as changed. Text that is not TOML has no keys to compare; parse
/// both with [`Config::from_toml`] first.
pub fn changed_settings(old: &str, new: &str) -> Vec<String> {
    fn flatten(prefix: &str, table: &toml::Table, into: &mut std::collections::BTreeMap<String, toml::Value>) {
        for (key, value) in table {
            if prefix.is_empty() && key == "apis" {
                continue;
            }
            let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            match value {
                toml::Value::Table(inner) => flatten(&path, inner, into),
                _ => {
                    into.insert(path, value.clone());
                }
            }
        }
    }
    let settings = |text: &str| {
        let mut flat = std::collections::BTreeMap::new();
        if let Ok(table) = toml::from_str::<toml::Table>(text) {
            flatten("", &table, &mut flat);
        }
        flat
    };
    let (old, new) = (settings(old), settings(new));
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter().filter(|key| old.get(*key) != new.get(*key)).cloned().collect()
}

/// A context is `/segment[/segment…]` with URL-safe segments and no trailing slash.
fn validate_context(context: &str) -> Result<(), String> {
    if context.is_empty() {
        return Err("is required (e.g. /echowebsocket)".into());
    }
    let Some(rest) = context.strip_prefix('/') else {
        return Err(format!("\"{context}\" must start with '/'"));
    };
    if rest.is_empty() || context.len() > 200 {
        return Err(format!("\"{context}\" must name 1 to 200 characters of path"));
    }
    let segment_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !rest.split('/').all(segment_ok) {
        return Err(format!(
            "\"{context}\" must be '/'-separated segments of letters, digits, '-', '.', '_' or '~' (no trailing '/')"
        ));
    }
    Ok(())
}

/// toml reports errors over several lines with a source excerpt; the CLI promises one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECHO: &str = r#"
        [gateway]
        ws_listen = "127.0.0.1:0"
        idle_timeout = "2s"
        [[apis]]
        name = "EchoWebSocket"
        context = "/echowebsocket"
        version = "1.0"
        endpoints = ["ws://127.0.0.1:7070"]
        auth = "none"
    "#;

    fn error_of(text: &str) -> String {
        Config::from_toml(text).expect_err("config should be refused").to_string()
    }

    #[test]
    fn the_example_file_in_the_repo_parses() {
        let example = include_str!("../../../config/wsgate.example.toml");
        let config = Config::from_toml(example).expect("config/wsgate.example.toml is valid");
        assert_eq!(config.apis.len(), 1);
        assert_eq!(config.gateway.wss_listen, "0.0.0.0:8099");
    }

    #[test]
    fn the_documented_example_parses() {
        let config = Config::from_toml(ECHO).expect("valid");
        assert_eq!(config.gateway.idle_timeout, Duration::from_secs(2));
        assert_eq!(config.apis[0].parsed_endpoints()[0].port, 7070);
    }

    #[test]
    fn errors_name_the_key() {
        assert!(error_of(&ECHO.replace("\"1.0\"", "\"\"")).starts_with("apis[0].version:"));
        assert!(error_of(&ECHO.replace("ws://127", "http://127")).starts_with("apis[0].endpoints[0]:"));
        assert!(error_of(&ECHO.replace("/echowebsocket", "echo")).starts_with("apis[0].context:"));
        assert!(error_of(&ECHO.replace("127.0.0.1:0", "nowhere")).starts_with("gateway.ws_listen:"));
        assert!(error_of(&ECHO.replace("\"2s\"", "\"2\"")).contains("idle_timeout"));
        assert!(error_of(&ECHO.replace("auth = \"none\"", "")).starts_with("apis[0].auth:"));
        assert!(error_of(&format!("{ECHO}\nbogus = 1")).contains("bogus"));
    }

    #[test]
    fn node_list_keys_have_defaults_and_are_checked() {
        let config = Config::default();
        assert_eq!(config.cluster.heartbeat_interval, Duration::from_secs(5));
        assert_eq!(config.cluster.node_retention, Duration::from_secs(3600));
        let config = Config::from_toml(
            "[cluster]\nnode_name = \"edge-1\"\nheartbeat_interval = \"500ms\"\nnode_retention = \"2s\"\n",
        )
        .expect("valid");
        assert_eq!(config.cluster.node_name.as_deref(), Some("edge-1"));
        assert_eq!(config.cluster.heartbeat_interval, Duration::from_millis(500));
        for (text, key) in [
            ("node_name = \" \"", "cluster.node_name:"),
            ("heartbeat_interval = \"10ms\"", "cluster.heartbeat_interval:"),
            ("heartbeat_interval = \"1h\"", "cluster.heartbeat_interval:"),
            ("node_retention = \"15s\"", "cluster.node_retention: must be longer than 3 heartbeat intervals (15s)"),
        ] {
            let error = error_of(&format!("[cluster]\n{text}\n"));
            assert!(error.starts_with(key), "{text}: {error}");
        }
    }

    #[test]
    fn observability_and_analytics_keys_parse_and_are_checked() {
        let config = Config::from_toml(
            "[observability]\nmetrics_listen = \"127.0.0.1:9464\"\nlog_format = \"json\"\n\
             [analytics]\ninterim_interval = \"30s\"\nclient_ip = \"full\"\n",
        )
        .expect("valid");
        assert_eq!(config.observability.metrics_listen_addr(), Ok(Some(([127, 0, 0, 1], 9464).into())));
        assert_eq!(config.observability.log_format, LogFormat::Json);
        assert_eq!(config.analytics.interim_interval, Duration::from_secs(30));
        assert!(error_of("[observability]\nmetrics_listen = \"x\"").starts_with("observability.metrics_listen:"));
        assert!(error_of("[analytics]\ninterim_interval = \"0s\"").starts_with("analytics.interim_interval:"));
        assert!(error_of("[analytics]\nclient_ip = \"half\"").contains("client_ip"));
    }

    #[test]
    fn truncated_client_addresses_keep_the_network_only() {
        let v4: std::net::IpAddr = "203.0.113.77".parse().expect("ip");
        let v6: std::net::IpAddr = "2001:db8:aa:bb::1".parse().expect("ip");
        assert_eq!(ClientIpMode::Truncated.apply(v4).as_deref(), Some("203.0.113.0"));
        assert_eq!(ClientIpMode::Truncated.apply(v6).as_deref(), Some("2001:db8:aa::"));
        assert_eq!(ClientIpMode::Full.apply(v4).as_deref(), Some("203.0.113.77"));
        assert_eq!(ClientIpMode::Off.apply(v4), None);
    }

    #[test]
    fn endpoint_settings_and_origins_parse_and_are_checked() {
        let with = format!(
            "{ECHO}allowed_origins = [\"https://app.example.com\"]\n[apis.endpoint_settings]\n\
             connect_timeout = \"250ms\"\nload_balancing = \"least_connections\"\n\
             [apis.endpoint_settings.breaker]\nconsecutive_failures = 3\n"
        );
        let config = Config::from_toml(&with).expect("valid");
        let settings = &config.apis[0].endpoint_settings;
        assert_eq!(settings.connect_timeout, Some(Duration::from_millis(250)));
        assert_eq!(settings.breaker.consecutive_failures, 3);
        assert!(settings.breaker.enabled, "the rest of the breaker keeps its defaults");
        assert_eq!(config.apis[0].allowed_origins, ["https://app.example.com"]);
        assert!(
            error_of(&format!("{ECHO}[apis.endpoint_settings]\nweights = [1, 2]\n"))
                .starts_with("apis[0].endpoint_settings.weights:")
        );
        assert!(error_of(&format!("{ECHO}allowed_origins = [\"evil\"]\n")).starts_with("apis[0].allowed_origins[0]:"));
        assert!(error_of("[gateway]\nping_timeout = \"0s\"").starts_with("gateway.ping_timeout:"));
        assert!(error_of("[gateway]\nmax_lifetime = \"0s\"").starts_with("gateway.max_lifetime:"));
    }

    #[test]
    fn the_same_context_and_version_twice_is_refused() {
        let twice = format!("{ECHO}{}", &ECHO[ECHO.find("[[apis]]").expect("apis")..].replace("\"1.0\"", "\"1.0.0\""));
        assert!(error_of(&twice).starts_with("apis[1].version:"));
    }

    #[test]
    fn an_endpoint_with_a_line_break_is_refused_with_one_line() {
        let split = ECHO.replace("ws://127.0.0.1:7070", "ws://127.0.0.1:7070/x\\r\\nX-Injected: yes");
        let message = error_of(&split);
        assert!(message.starts_with("apis[0].endpoints[0]:"), "{message}");
        assert!(!message.contains('\n') && !message.contains('\r'), "{message}");
        assert!(
            error_of(&format!("{ECHO}\n[control]\nendpoint_allowlist = [\"10.0.0.0/99\"]"))
                .starts_with("control.endpoint_allowlist[0]:")
        );
    }

    #[test]
    fn changed_settings_name_every_key_but_the_apis() {
        let old = format!("{ECHO}\n[store]\nurl = \"postgres://a/db\"\n");
        assert_eq!(changed_settings(&old, &old), Vec::<String>::new());
        let apis_only = old.replace("ws://127.0.0.1:7070", "ws://127.0.0.1:7071").replace("/echowebsocket", "/other");
        assert_eq!(changed_settings(&old, &apis_only), Vec::<String>::new(), "APIs reload without a restart");
        let new = old
            .replace("127.0.0.1:0", "127.0.0.1:9")
            .replace("postgres://a/db", "postgres://b/db")
            .replace("idle_timeout = \"2s\"", "");
        let new = format!("{new}\n[[identity_providers]]\nissuer = \"x\"\njwks_url = \"https://x\"\n");
        assert_eq!(
            changed_settings(&old, &new),
            ["gateway.idle_timeout", "gateway.ws_listen", "identity_providers", "store.url"]
        );
    }

    #[test]
    fn shutdown_delay_and_reload_grace_have_defaults() {
        let config = Config::from_toml(ECHO).expect("valid");
        assert_eq!(config.gateway.shutdown_delay, Duration::ZERO);
        assert_eq!(config.gateway.reload_grace, Duration::from_secs(30));
        let set =
            Config::from_toml(&ECHO.replace("[gateway]", "[gateway]\nshutdown_delay = \"15s\"\nreload_grace = \"0s\""))
                .expect("valid");
        assert_eq!((set.gateway.shutdown_delay, set.gateway.reload_grace), (Duration::from_secs(15), Duration::ZERO));
        assert!(error_of(&ECHO.replace("[gateway]", "[gateway]\nshutdown_delay = \"15\"")).contains("shutdown_delay"));
    }

    #[test]
    fn analytics_settings_have_defaults_and_are_checked() {
        let config = Config::from_toml(ECHO).expect("valid");
        assert!(config.analytics.enabled);
        assert_eq!(config.analytics.retention, Duration::from_secs(7 * 86_400));
        let set =
            Config::from_toml(&format!("{ECHO}\n[analytics]\nenabled = false\nretention = \"2d\"")).expect("valid");
        assert!(!set.analytics.enabled);
        assert_eq!(set.analytics.retention, Duration::from_secs(2 * 86_400));
        assert!(error_of(&format!("{ECHO}\n[analytics]\nretention = \"5m\"")).starts_with("analytics.retention:"));
        assert!(error_of(&format!("{ECHO}\n[analytics]\nbatch = 0")).starts_with("analytics.batch:"));
    }
}

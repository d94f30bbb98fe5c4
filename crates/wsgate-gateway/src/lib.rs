//! The wsgate data plane: it accepts WebSocket clients, checks their upgrade, routes them to
//! an API's upstream, and relays frames unchanged in both directions.
//!
//! Modules, in the order a connection meets them:
//! - [`conn`]: the connection's context (id, start, client address), made at accept.
//! - `tls`: decrypt connections of the wss listener.
//! - [`handshake`]: read and check the client's upgrade request.
//! - [`route`]: find the API by context and version, in the current [`snapshot`] (kept current
//!   by `follow`, from the store's change feed and config reloads).
//! - [`auth`]: check the access token and the caller's subscription; [`idp`]: keys of external
//!   identity providers.
//! - [`policy`]: the limits a connection runs under, its admission (connection caps and rates)
//!   and the budget its traffic spends.
//! - [`upstream`]: connect and upgrade to the API's endpoint.
//! - [`relay`]: frame-aware, payload-blind relay of both directions, metering both.
//! - [`rejection`]: every refusal before the upgrade, written as an HTTP response.
//! - [`registry`]: every live connection; closes those a new snapshot no longer allows and
//!   tells the others about changed limits; drains on shutdown.
//! - `pipeline`: the one function that chains the steps; [`observe`]: every connection's
//!   outcome, delivered to the access log, the metrics and the session records.
//! - `fuzzing`: the fuzz targets' entry points (hidden; see `fuzz/README.md`).
//!
//! [`Gateway`] binds the listener and runs the accept loop; shutdown is an argument.
//! [`FileApis`] reloads the config file's APIs while it runs.

pub mod conn;
pub mod handshake;
pub mod route;
pub mod snapshot;
mod follow;
pub mod auth;
pub mod idp;
pub mod policy;
pub mod upstream;
pub mod relay;
pub mod rejection;
pub mod registry;
pub mod caps;
mod tls;
mod pipeline;
pub mod observe;
#[doc(hidden)]
pub mod fuzzing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wsgate_core::config::{Config, ConfigError, GatewaySettings};
use wsgate_tls::TlsError;
use wsgate_tls::server::{CertificateFiles, ReloadingCertificate};

pub use follow::FileApiChanges;
use registry::Registry;
use relay::RelayConfig;
use route::{RouteTable, UpstreamTlsError};
use snapshot::{Snapshot, SnapshotHandle};
use upstream::{ClientInfo, UpstreamTimeouts};
use wsgate_counters::{Counters, CountersError};

/// Errors that stop the gateway from starting.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener address that cannot be bound; `problem` says why and which setting to change.
    #[error("{problem}")]
    Bind { addr: SocketAddr, problem: String },
    #[error("wss listener certificate: {0}")]
    ListenerTls(#[from] TlsError),
    #[error(transparent)]
    UpstreamTls(#[from] UpstreamTlsError),
    #[error(transparent)]
    Counters(#[from] CountersError),
}

/// What every connection reads and nobody writes after start.
#[derive(Debug)]
pub(crate) struct Shared {
    pub settings: GatewaySettings,
    /// APIs by context and version; swapped whole when the store or the config file changes.
    pub snapshot: SnapshotHandle,
    /// What the snapshot is built from (file APIs, the store's last contents); every swap goes
    /// through it.
    pub sources: Arc<follow::Sources>,
    /// External identity providers and their cached keys.
    pub providers: idp::Providers,
    /// Every live connection, swept after each snapshot swap and drained on shutdown.
    pub registry: Arc<Registry>,
    /// What limits count with: in process, or Redis shared by every node.
    pub counters: Arc<dyn Counters>,
    /// The next connection's id.
    pub next_connection: AtomicU64,
    /// Per-connection relay settings; `extensions` is set per connection from its handshake.
    pub relay_limits: RelayConfig,
    pub upstream_timeouts: UpstreamTimeouts,
    /// Where each connection's outcome goes: access log, metrics, session records.
    pub observe: observe::Observe,
    /// How often long connections add an interim session record.
    pub interim_interval: std::time::Duration,
    /// Every routed API's endpoints: breakers, probe verdicts, live connections. Outlives
    /// snapshots.
    pub endpoints: Arc<upstream::health::EndpointTable>,
    /// `max_connections` and `max_connections_per_address`, taken at accept.
    pub caps: Arc<caps::ConnectionCaps>,
}

/// The wss listener with the certificate it presents.
struct TlsListener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    certificate: Arc<ReloadingCertificate>,
}

/// A bound, not yet running gateway.
pub struct Gateway {
    ws: Option<TcpListener>,
    wss: Option<TlsListener>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("ws", &self.ws_addr()).field("wss", &self.wss_addr()).finish()
    }
}

/// The gateway's bound listeners. `wsgate serve` binds them (with the control plane's) before it
/// writes anything, so that a port in use stops the start before the store is touched.
#[derive(Debug)]
pub struct Listeners {
    pub ws: Option<TcpListener>,
    pub wss: Option<TcpListener>,
}

impl Listeners {
    /// Binds `ws_listen` and `wss_listen` (those not `"off"`).
    pub async fn bind(settings: &GatewaySettings) -> Result<Listeners, GatewayError> {
        let ws = match settings.ws_listen_addr()? {
            Some(addr) => Some(listen("gateway.ws_listen", addr).await?),
            None => None,
        };
        let wss = match settings.wss_listen_addr()? {
            Some(addr) => Some(listen("gateway.wss_listen", addr).await?),
            None => None,
        };
        Ok(Listeners { ws, wss })
    }
}

/// Binds the listener of setting `key`, or says why not and what to change.
pub async fn listen(key: &str, addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|err| GatewayError::Bind { addr, problem: wsgate_core::config::bind_problem(key, addr, &err) })
}

impl Gateway {
    /// Validates `config`, binds the listeners and loads what the gateway serves with
    /// ([`Gateway::on`]). Must be called within a tokio runtime (the counters start their
    /// background work).
    pub async fn bind(config: &Config) -> Result<Gateway, GatewayError> {
        config.validate()?;
        Gateway::on(config, Listeners::bind(&config.gateway).await?).await
    }

    /// The gateway on listeners bound already: loads TLS material (generating the listener's
    /// certificate on first start), the config file's APIs and the counters. Nothing here
    /// binds a port; dropping the result releases `listeners`.
    pub async fn on(config: &Config, listeners: Listeners) -> Result<Gateway, GatewayError> {
        config.validate()?;
        let counters = wsgate_counters::open(&config.cluster)?;
        let settings = config.gateway.clone();
        let routes = RouteTable::new(&config.apis)?;
        for (name, version) in routes.unverified().values() {
            tracing::warn!(api = %name, version = %version, "insecure_skip_verify: upstream certificates are NOT verified for this API");
        }
        let providers = idp::Providers::new(&config.identity_providers)?;
        let certificate = match &listeners.wss {
            Some(_) => {
                let files = wsgate_tls::server::locate_or_generate(
                    settings.tls_cert.as_deref(),
                    settings.tls_key.as_deref(),
                    &settings.data_dir(),
                )?;
                Some(ReloadingCertificate::load(files)?)
            }
            None => None,
        };
        let ws = listeners.ws;
        let wss = match (listeners.wss, certificate) {
            (Some(listener), Some(certificate)) => {
                let acceptor = TlsAcceptor::from(wsgate_tls::server::server_config(certificate.clone())?);
                certificate.watch(settings.tls_reload_interval);
                Some(TlsListener { listener, acceptor, certificate })
            }
            _ => None,
        };
        let snapshot = SnapshotHandle::new(Snapshot { routes, ..Snapshot::default() });
        let registry = Arc::new(Registry::new(counters.clone()));
        let sweep = registry.clone();
        let sources = follow::Sources::new(
            config.apis.clone(),
            snapshot.clone(),
            vec![Box::new(move |snapshot| sweep.sweep(snapshot))],
        );
        let shared = Shared {
            relay_limits: RelayConfig {
                extensions: false,
                max_frame: settings.max_frame_size,
                max_message: settings.max_message_size,
                max_control_frames: settings.max_control_frames_per_second,
                idle_timeout: settings.idle_timeout,
                close_timeout: settings.close_timeout,
                max_lifetime: settings.max_lifetime,
                ping_interval: settings.ping_interval,
                ping_timeout: settings.ping_timeout,
            },
            upstream_timeouts: UpstreamTimeouts {
                connect: settings.connect_timeout,
                handshake: settings.upstream_handshake_timeout,
            },
            snapshot,
            sources: Arc::new(sources),
            registry,
            counters,
            next_connection: AtomicU64::new(1),
            providers,
            settings,
            observe: observe::Observe { client_ip: config.analytics.client_ip, ..observe::Observe::default() },
            interim_interval: config.analytics.interim_interval,
            endpoints: Arc::default(),
            caps: Arc::new(caps::ConnectionCaps::new(
                config.gateway.max_connections,
                config.gateway.max_connections_per_address,
            )),
        };
        shared.providers.warm_up();
        Ok(Gateway { ws, wss, shared: Arc::new(shared) })
    }

    /// The address of the ws listener (useful with port 0); `None` when it is off.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address of the wss listener; `None` when it is off.
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        self.wss.as_ref().and_then(|l| l.listener.local_addr().ok())
    }

    /// The wss listener's certificate files (generated or configured).
    pub fn certificate_files(&self) -> Option<&CertificateFiles> {
        self.wss.as_ref().map(|w| w.certificate.files())
    }

    /// The snapshot the gateway serves from, as it is swapped (for tests and diagnostics).
    pub fn snapshots(&self) -> SnapshotHandle {
        self.shared.snapshot.clone()
    }

    /// The counters limits are counted with (the control plane reads usage from them).
    pub fn counters(&self) -> Arc<dyn Counters> {
        self.shared.counters.clone()
    }

    /// Every live connection; its length is the node's open connections, as the node list
    /// shows them (read once per heartbeat, never on a connection's path).
    pub fn registry(&self) -> Arc<Registry> {
        self.shared.registry.clone()
    }

    /// Records the gateway's metrics through `recorder` (the binary gives a Prometheus one);
    /// `per_application` adds an `application` label to traffic series. Without it, nothing is
    /// recorded. Only the first call counts.
    pub fn set_metrics(&mut self, recorder: Arc<dyn metrics::Recorder + Send + Sync>, per_application: bool) {
        let _ = self.shared.observe.metrics.set(observe::metrics::Metrics::new(recorder, per_application));
    }

    /// A gauge of the gateway's metrics recorder (store and Redis health, build info), or
    /// `None` before [`Gateway::set_metrics`].
    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Option<metrics::Gauge> {
        self.shared.observe.metrics.get().map(|m| m.gauge(name, labels))
    }

    /// Sends a session record of every connection to `sink`: one per refusal, one when an
    /// upgraded connection ends, and interim ones while it lives (`analytics.interim_interval`).
    /// Without it, none are made. Only the first call counts.
    pub fn set_sessions(&mut self, sink: Arc<dyn wsgate_core::session::SessionSink>) {
        let _ = self.shared.observe.sessions.set(sink);
    }

    /// What this node knows of each API's endpoints now (breaker, probe, live connections),
    /// for the control plane's API pages.
    pub fn endpoint_health(&self) -> Arc<dyn wsgate_core::upstream::EndpointHealth> {
        self.shared.endpoints.clone()
    }

    /// A handle that reloads the config file's APIs while the gateway runs.
    pub fn file_apis(&self) -> FileApis {
        FileApis(self.shared.clone())
    }

    /// Serves `apis` as the config file's APIs from now on: see [`FileApis::reload`].
    pub fn reload_file_apis(&self, apis: Vec<wsgate_core::config::ApiSpec>) -> Result<FileApiChanges, GatewayError> {
        self.file_apis().reload(apis)
    }

    /// SHA-256 fingerprint of the certificate the wss listener presents now.
    pub fn certificate_fingerprint(&self) -> Option<String> {
        self.wss.as_ref().map(|w| w.certificate.fingerprint())
    }

    /// Serves the store's published APIs beside the config file's: loads them now, then follows
    /// the store's change feed until `shutdown`, so an API published through the control plane
    /// takes connections within moments and a retired one stops taking them.
    ///
    /// `issuer` is the `iss` the control plane puts in access tokens (`None`: no token is
    /// valid). Revoking a token, subscription, application or API closes its live connections.
    pub async fn follow_store(
        &self,
        store: Arc<dyn wsgate_store::Store>,
        file_apis: Vec<wsgate_core::config::ApiSpec>,
        issuer: Option<String>,
        shutdown: CancellationToken,
    ) -> Result<(), wsgate_store::StoreError> {
        follow::follow(self.shared.sources.clone(), store, file_apis, issuer, shutdown).await
    }

    /// Accepts connections until `shutdown` is cancelled, then lets live connections close
    /// (1001 to both sides) for up to the configured shutdown timeout.
    pub async fn run(self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        if let Some(sink) = self.shared.observe.sessions.get() {
            let interim = observe::sessions::interim(
                self.shared.registry.clone(),
                sink.clone(),
                self.shared.interim_interval,
                shutdown.clone(),
            );
            tokio::spawn(interim);
        }
        tokio::spawn(upstream::probe::run(self.shared.clone(), shutdown.clone()));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = accept(self.ws.as_ref()) => {
                    if let Some((stream, addr)) = accepted {
                        let info = ClientInfo { addr, proto: "http" };
                        let shared = self.shared.clone();
                        match shared.caps.admit(addr.ip()) {
                            Ok(slot) => tracker.spawn(async move {
                                let _slot = slot;
                                pipeline::serve_connection(stream, info, shared).await
                            }),
                            Err(rejection) => tracker.spawn(pipeline::refuse_at_accept(stream, info, shared, rejection, true)),
                        };
                    }
                }
                accepted = accept(self.wss.as_ref().map(|w| &w.listener)) => {
                    if let (Some((stream, addr)), Some(wss)) = (accepted, &self.wss) {
                        let info = ClientInfo { addr, proto: "https" };
                        let shared = self.shared.clone();
                        match shared.caps.admit(addr.ip()) {
                            Ok(slot) => {
                                let acceptor = wss.acceptor.clone();
                                tracker.spawn(async move {
                                    let _slot = slot;
                                    pipeline::serve_tls_connection(stream, acceptor, info, shared).await
                                })
                            }
                            Err(rejection) => tracker.spawn(pipeline::refuse_at_accept(stream, info, shared, rejection, false)),
                        };
                    }
                }
            }
        }
        drop(self.ws);
        drop(self.wss);
        self.shared.registry.stop_all(1001, "gateway shutting down");
        tracker.close();
        let timeout = self.shared.settings.shutdown_timeout;
        tracing::info!(
            live = self.shared.registry.len(),
            shutdown_timeout = %wsgate_core::duration::format(timeout),
            "listeners closed; live connections told to go away (1001)"
        );
        match tokio::time::timeout(timeout, tracker.wait()).await {
            Ok(()) => tracing::info!("drained: every connection closed"),
            Err(_) => tracing::warn!(live = tracker.len(), "shutdown deadline passed with connections still open"),
        }
    }
}

/// Reloads the config file's APIs of a running gateway (the binary's SIGHUP handler and file
/// watcher hold one); cheap to clone.
#[derive(Clone)]
pub struct FileApis(Arc<Shared>);

impl std::fmt::Debug for FileApis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileApis").finish_non_exhaustive()
    }
}

impl FileApis {
    /// Serves `apis` as the config file's APIs from now on, over the store's contents as last
    /// loaded: one snapshot swap, so every handshake sees either the old APIs or the new ones.
    /// Added and changed APIs take new handshakes at once, and live connections of a changed
    /// API go on under its new limits; a removed API answers 404 at once, and its live
    /// connections get 1001 after `gateway.reload_grace` unless it is back by then. APIs that
    /// do not validate, or whose TLS files do not load, change nothing: the error names the
    /// key or the API.
    pub fn reload(&self, apis: Vec<wsgate_core::config::ApiSpec>) -> Result<FileApiChanges, GatewayError> {
        Config { apis: apis.clone(), ..Config::default() }.validate()?;
        // The same check as at start, so a broken ca_file is an error here rather than an API
        // silently left out of routing.
        RouteTable::new(&apis)?;
        let shared = &self.0;
        let changes = shared.sources.swap(|inputs| {
            let changes = FileApiChanges::between(&inputs.file_apis, &apis);
            inputs.file_apis = apis;
            changes
        });
        if !changes.removed.is_empty() {
            let (registry, snapshots, grace) =
                (shared.registry.clone(), shared.snapshot.clone(), shared.settings.reload_grace);
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let stopped = registry.stop_removed_file_apis(&snapshots.current());
                if stopped > 0 {
                    tracing::info!(
                        connections = stopped,
                        "reload grace over: connections of removed APIs told to go away (1001)"
                    );
                }
            });
        }
        Ok(changes)
    }

    /// Counts one reload of the config file, `applied` or refused, in
    /// `wsgate_config_reloads_total`.
    pub fn count(&self, applied: bool) {
        if let Some(metrics) = self.0.observe.metrics.get() {
            let result = if applied { "applied" } else { "refused" };
            metrics.counter("wsgate_config_reloads_total", &[("result", result)]).increment(1);
        }
    }
}

/// Accepts on `listener`, or waits forever when it is off. Accept errors (out of file
/// descriptors, say) back off briefly instead of spinning.
async fn accept(listener: Option<&TcpListener>) -> Option<(TcpStream, SocketAddr)> {
    let Some(listener) = listener else { return std::future::pending().await };
    match listener.accept().await {
        Ok((stream, addr)) => {
            // Frames are small and latency matters more than packet count.
            let _ = stream.set_nodelay(true);
            Some((stream, addr))
        }
        Err(err) => {
            tracing::warn!(error = %err, "accept failed");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle proxied connection costs its task (this future plus tokio's header), two
    /// sockets and nothing else; the future's size is the part this crate controls.
    #[tokio::test]
    async fn a_relayed_connection_task_stays_small() {
        let config =
            Config::from_toml("[gateway]\nws_listen = \"127.0.0.1:0\"\nwss_listen = \"off\"\n").expect("config");
        let gateway = Gateway::bind(&config).await.expect("bind");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let _client = TcpStream::connect(listener.local_addr().expect("addr")).await.expect("connect");
        let (server, peer) = listener.accept().await.expect("accept");
        let info = ClientInfo { addr: peer, proto: "http" };
        let connection = pipeline::serve_connection(server, info, gateway.shared.clone());
        let size = std::mem::size_of_val(&connection);
        assert!(size <= 768, "a connection's future is {size} bytes");
    }

    /// A gateway with a 1 s handshake time and one keyless API at `/ctx/1.0` relaying to
    /// `upstream`.
    async fn gateway_to(upstream: std::net::SocketAddr) -> Gateway {
        let toml = format!(
            "[gateway]\nws_listen = \"127.0.0.1:0\"\nwss_listen = \"off\"\nhandshake_timeout = \"1s\"\n\
             [[apis]]\nname = \"A\"\ncontext = \"/ctx\"\nversion = \"1.0\"\nendpoints = [\"ws://{upstream}\"]\nauth = \"none\"\n"
        );
        Gateway::bind(&Config::from_toml(&toml).expect("config")).await.expect("bind")
    }

    const UPGRADE: &[u8] = b"GET /ctx/1.0 HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    /// Serves `connection` (the client's end stays with the caller, which writes `request` and
    /// then never reads: the pipe holds 16 bytes, so no answer fits) and returns how long the
    /// gateway held on.
    async fn held_by_a_client_that_never_reads(gateway: &Gateway, request: &[u8]) -> std::time::Duration {
        use tokio::io::AsyncWriteExt;
        let (mut client, server) = tokio::io::duplex(16);
        let info = ClientInfo { addr: ([127, 0, 0, 1], 1).into(), proto: "http" };
        let started = std::time::Instant::now();
        let served = tokio::spawn(pipeline::serve_connection(server, info, gateway.shared.clone()));
        client.write_all(request).await.expect("the request is read");
        let ended = tokio::time::timeout(std::time::Duration::from_secs(5), served).await;
        assert!(ended.is_ok(), "the gateway still waits for a client that does not read");
        drop(client);
        started.elapsed()
    }

    #[tokio::test]
    async fn a_refusal_the_client_never_reads_is_given_up_after_the_handshake_time() {
        let nowhere = TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let gateway = gateway_to(nowhere.local_addr().expect("addr")).await;
        let request = b"GET /no/such/api HTTP/1.1\r\nHost: gw\r\n\r\n";
        let held = held_by_a_client_that_never_reads(&gateway, request).await;
        assert!(held >= std::time::Duration::from_millis(900), "gave up after {held:?}");
    }

    #[tokio::test]
    async fn a_101_the_client_never_reads_is_given_up_after_the_handshake_time() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let gateway = gateway_to(listener.local_addr().expect("addr")).await;
        // An upstream that accepts the gateway's key and then stays quiet.
        let upstream = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("the gateway connects");
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0];
                socket.read_exact(&mut byte).await.expect("the request head");
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let key = head.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).expect("a key");
            let answer = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                handshake::accept_value(key)
            );
            socket.write_all(answer.as_bytes()).await.expect("the 101 is written");
            let _ = socket.read(&mut [0; 64]).await;
        });
        let held = held_by_a_client_that_never_reads(&gateway, UPGRADE).await;
        assert!(held >= std::time::Duration::from_millis(900), "gave up after {held:?}");
        upstream.abort();
    }
}

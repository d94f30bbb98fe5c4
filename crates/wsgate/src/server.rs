//! The commands that run servers: `serve` (store, control plane, gateway), `demo` (the same
//! plus a built-in echo upstream and seeded data) and `echo`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use wsgate::echo::EchoServer;
use wsgate_control::ControlPlane;
use wsgate_control::ops::{Health, Ops};
use wsgate_core::config::Config;
use wsgate_gateway::Gateway;
use wsgate_tls::server::{CertificateFiles, ReloadingCertificate};

use crate::cli::ServerArgs;
use crate::heartbeat::{self, Addresses, Heartbeat};
use crate::{duties, observability};

/// Everything `serve` runs, bound and ready.
pub struct Running {
    pub gateway: Gateway,
    pub control: Option<ControlPlane>,
    pub data_dir: PathBuf,
    /// `observability.metrics_listen`, when it is on.
    pub metrics_listener: Option<tokio::net::TcpListener>,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub ops: Ops,
    /// The session analytics writer (`[analytics] enabled`), stopped after the gateway drained
    /// so the last connections' records are stored.
    pub analytics: Option<(Arc<wsgate_analytics::AnalyticsWriter>, wsgate_analytics::WriterHandle)>,
    /// Cancelled when the node announces its drain (`/readyz` answers 503), before `shutdown`
    /// closes the listeners; a child of `shutdown`.
    pub draining: CancellationToken,
    /// The one-writer jobs' runner; it stops (and releases the lease) as soon as shutdown
    /// begins, so another node takes over while this one drains.
    pub duties: tokio::task::JoinHandle<()>,
    /// This node in the store's node list; marked stopped after the gateway drained.
    pub heartbeat: Heartbeat,
}

/// `wsgate serve`.
pub async fn serve(config_path: Option<PathBuf>, watch_config: bool, args: ServerArgs) -> anyhow::Result<()> {
    let (mut config, text) = match &config_path {
        Some(path) => {
            let text = read_config(path)?;
            (parse_config(path, &text)?, Some(text))
        }
        None => (Config::default(), None),
    };
    apply_args(&mut config, &args)?;
    let shutdown = CancellationToken::new();
    let admin_password = std::env::var("WSGATE_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty());
    let running = start(&config, admin_password.as_deref(), shutdown.clone()).await?;
    stop_on_signal(running.draining.clone(), shutdown.clone(), config.gateway.shutdown_delay)?;
    let reload = config_path.zip(text).map(|(path, started)| crate::reload::Reload {
        path,
        args,
        started,
        apis: running.gateway.file_apis(),
    });
    crate::reload::on_hangup(reload, watch_config, shutdown.clone())?;
    print_listeners(&running);
    run(running, shutdown).await;
    Ok(())
}

/// Binds every listener, then opens the store, makes sure an admin and a signing key exist
/// (when this node runs the control plane) and loads what the gateway serves. A port that
/// cannot be bound stops the start before anything is written: no data directory, store,
/// certificate or admin user comes from a start that could not listen.
pub async fn start(
    config: &Config,
    admin_password: Option<&str>,
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    config.validate()?;
    let listeners = wsgate_gateway::Listeners::bind(&config.gateway).await?;
    let control_listener = match config.control.listen_addr()? {
        Some(addr) => Some(ControlPlane::listen(addr).await?),
        None => None,
    };
    let metrics_listener = match config.observability.metrics_listen_addr()? {
        Some(addr) => Some(wsgate_control::ops::listen(addr).await?),
        None => None,
    };
    let data_dir = config.gateway.data_dir();
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let store = wsgate_store::open(&config.store, &data_dir).await.context("cannot open the store")?;
    let control = match control_listener {
        Some(listener) => {
            // The admin exists to sign in to the control plane; a node without one makes none.
            if let Some(generated) = wsgate_control::bootstrap(store.as_ref(), &config.control, admin_password).await? {
                // Printed once, at the first start: only its hash is kept.
                println!(
                    "wsgate: created user admin with password {generated} (set WSGATE_ADMIN_PASSWORD to choose it)"
                );
            }
            let files = wsgate_tls::server::locate_or_generate(
                config.gateway.tls_cert.as_deref(),
                config.gateway.tls_key.as_deref(),
                &data_dir,
            )?;
            let certificate = ReloadingCertificate::load(files)?;
            certificate.watch(config.gateway.tls_reload_interval);
            Some(ControlPlane::on(config, store.clone(), certificate, Some(listener)).await?)
        }
        None => None,
    };
    // Tokens name the store's issuer (fixed by the first node); the gateway accepts no other.
    let issuer = match &control {
        Some(control) => Some(control.key_manager().issuer().to_string()),
        None => gateway_only_issuer(store.as_ref(), config).await?,
    };
    let mut gateway = Gateway::on(config, listeners).await?;
    let draining = shutdown.child_token();
    let health = Health::new(draining.clone());
    health.listening.store(true, Ordering::Relaxed);
    let metrics = match config.observability.metrics {
        true => Some(observability::install(&mut gateway, config)?),
        false => None,
    };
    let ops = Ops { metrics, health: health.clone() };
    // Session records go to the store through the writer, aggregated per minute, off every
    // connection's path.
    let analytics = config.analytics.enabled.then(|| wsgate_analytics::start(store.clone(), &config.analytics));
    if let Some((writer, _)) = &analytics {
        gateway.set_sessions(writer.clone());
    }
    if let Some(control) = &control {
        control.set_ops(ops.clone());
        // The portals print invoke URLs; they learn the addresses the gateway actually bound.
        let url = wsgate_control::gateway_url;
        control.set_gateway_urls(gateway.ws_addr().map(|a| url("ws", a)), gateway.wss_addr().map(|a| url("wss", a)));
        // Usage pages read the same counters the gateway counts with.
        control.set_counters(gateway.counters());
        // The publisher's Endpoints tab and GET /api/v1/apis/{id}/endpoints read the gateway's
        // endpoint table (state, connections, failures).
        control.set_endpoint_health(gateway.endpoint_health());
    }
    observability::watch_health(&gateway, store.clone(), health.clone(), shutdown.clone()).await;
    gateway
        .follow_store(store.clone(), config.apis.clone(), issuer, shutdown.clone())
        .await
        .context("cannot load APIs from the store")?;
    health.snapshot_loaded.store(true, Ordering::Relaxed);
    let node_id = heartbeat::node_id();
    let duties = duties::Duties {
        store: store.clone(),
        holder: node_id.clone(),
        lease: config.cluster.duties_lease,
        keys: control.as_ref().map(ControlPlane::key_manager),
        retention: config.analytics.enabled.then_some(config.analytics.retention),
        gauge: gateway.gauge("wsgate_cluster_duties", &[]),
    };
    let duties = duties::start(duties, draining.clone());
    // Every node, control plane on or off, is in the node list.
    let addresses = Addresses {
        ws: gateway.ws_addr(),
        wss: gateway.wss_addr(),
        control: control.as_ref().and_then(ControlPlane::addr),
    };
    let heartbeat = Heartbeat::start(store.clone(), &config.cluster, node_id, addresses, gateway.registry()).await;
    Ok(Running { gateway, control, data_dir, metrics_listener, ops, analytics, draining, duties, heartbeat })
}

/// The issuer a node without the control plane accepts: the store's. With `control.issuer`
/// set, it is checked against (or, on a new store, fixed as) the store's. Read once, at start:
/// a gateway-only node started on a store no control plane has started on yet accepts no
/// control-plane token until it is restarted after one has.
async fn gateway_only_issuer(store: &dyn wsgate_store::Store, config: &Config) -> anyhow::Result<Option<String>> {
    if let Some(configured) = &config.control.issuer {
        return Ok(Some(wsgate_control::fixed_issuer(store, &config.control, configured).await?));
    }
    let stored = store.setting(wsgate_control::ISSUER_SETTING).await.context("cannot read the store's issuer")?;
    if stored.is_none() {
        tracing::warn!(
            "the store has no token issuer yet (no control plane has started on it): this node accepts no \
             control-plane token until it is restarted after one has"
        );
    }
    Ok(stored)
}

/// Runs until `shutdown`, then drains. The control plane and the metrics listener keep
/// answering while the gateway drains, so `/readyz` says 503 to load balancers meanwhile.
pub async fn run(running: Running, shutdown: CancellationToken) {
    let drained = CancellationToken::new();
    let control = running.control.map(|control| tokio::spawn(control.run(drained.clone())));
    let metrics = running
        .metrics_listener
        .map(|listener| tokio::spawn(wsgate_control::ops::serve(listener, running.ops.clone(), drained.clone())));
    running.gateway.run(shutdown).await;
    // It stopped when draining began (another node takes over meanwhile); this waits for the
    // lease's release.
    let _ = running.duties.await;
    // The last connections' records are stored before the process ends.
    if let Some((_, writer)) = running.analytics {
        writer.shutdown().await;
    }
    running.heartbeat.stop().await;
    drained.cancel();
    for task in [control, metrics].into_iter().flatten() {
        let _ = task.await;
    }
}

pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    parse_config(path, &read_config(path)?)
}

fn read_config(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn parse_config(path: &Path, text: &str) -> anyhow::Result<Config> {
    Config::from_toml(text).with_context(|| format!("config {}", path.display()))
}

pub fn apply_args(config: &mut Config, args: &ServerArgs) -> anyhow::Result<()> {
    if let Some(addr) = &args.ws_listen {
        config.gateway.ws_listen = addr.clone();
    }
    if let Some(addr) = &args.wss_listen {
        config.gateway.wss_listen = addr.clone();
    }
    if let Some(addr) = &args.control_listen {
        config.control.listen = addr.clone();
    }
    if let Some(dir) = &args.data_dir {
        config.gateway.data_dir = Some(dir.clone());
    }
    config.validate()?;
    Ok(())
}

/// One line per listener, the format scripts and tests read: `wsgate: ws listening on ADDR`.
pub fn print_listeners(running: &Running) {
    let gateway = &running.gateway;
    if let Some(addr) = gateway.ws_addr() {
        println!("wsgate: ws listening on {addr}");
    }
    if let Some(addr) = gateway.wss_addr() {
        println!("wsgate: wss listening on {addr}");
    }
    if let Some(addr) = running.control.as_ref().and_then(ControlPlane::addr) {
        println!("wsgate: control listening on {addr}");
    }
    if let Some(addr) = running.metrics_listener.as_ref().and_then(|l| l.local_addr().ok()) {
        println!("wsgate: metrics listening on {addr}");
    }
    if let (Some(files), Some(fingerprint)) = (gateway.certificate_files(), gateway.certificate_fingerprint()) {
        let origin = if files.generated { "generated self-signed" } else { "from" };
        println!("wsgate: TLS certificate {origin} {} (SHA-256 {fingerprint})", files.cert.display());
    }
}

/// `wsgate echo`.
pub async fn echo(listen: std::net::SocketAddr, tls: Option<(PathBuf, PathBuf)>) -> anyhow::Result<()> {
    let mut echo = EchoServer::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    if let Some((cert, key)) = tls {
        let certificate = ReloadingCertificate::load(CertificateFiles { cert, key, generated: false })?;
        let config = wsgate_tls::server::server_config(certificate)?;
        echo = echo.with_tls(tokio_rustls::TlsAcceptor::from(config));
    }
    let shutdown = CancellationToken::new();
    stop_on_signal(shutdown.clone(), shutdown.clone(), Duration::ZERO)?;
    println!("wsgate: echo listening on {}", echo.local_addr());
    echo.run(shutdown).await;
    Ok(())
}

/// On SIGTERM or Ctrl-C: cancels `draining` at once (`/readyz` answers 503), goes on serving
/// for `delay` so that load balancers notice, then cancels `shutdown` (the listeners close and
/// live connections get 1001). A second signal ends the delay early. The handlers are installed
/// before this returns, so a signal sent as soon as the "listening" line appears already drains
/// instead of killing.
pub fn stop_on_signal(draining: CancellationToken, shutdown: CancellationToken, delay: Duration) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
            draining.cancel();
            tracing::info!(
                shutdown_delay = %wsgate_core::duration::format(delay),
                "shutting down: /readyz answers 503; new connections are accepted until the shutdown delay ends (a second signal ends it)"
            );
            if !delay.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = term.recv() => tracing::info!("second signal: the rest of the shutdown delay is skipped"),
                    _ = interrupt.recv() => tracing::info!("second signal: the rest of the shutdown delay is skipped"),
                }
            }
            shutdown.cancel();
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        draining.cancel();
        tokio::time::sleep(delay).await;
        shutdown.cancel();
    });
    Ok(())
}

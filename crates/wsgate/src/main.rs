//! `wsgate`: the command line. Wiring only: parse arguments, load config, start the pieces,
//! turn errors into one line on stderr and a non-zero exit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use wsgate::echo::EchoServer;
use wsgate_core::config::{ApiSpec, AuthMode, Config};
use wsgate_gateway::Gateway;

#[derive(Parser)]
#[command(name = "wsgate", version, about = "WebSocket API gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway. APIs may be declared in the config file.
    Serve {
        /// TOML config file (see config/wsgate.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Run the gateway with a built-in echo upstream and the EchoWebSocket API, then print what
    /// to try.
    Demo {
        #[command(flatten)]
        common: Common,
    },
    /// Run a WebSocket echo server (a demo, test and benchmark upstream).
    Echo {
        /// Address to listen on, e.g. 127.0.0.1:7070.
        #[arg(long)]
        listen: SocketAddr,
        /// Serve wss:// with this PEM certificate chain (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct Common {
    /// Directory for the store and generated certificates [default: $WSGATE_DATA_DIR, else
    /// ~/.local/share/wsgate].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Plain ws:// listener address (overrides gateway.ws_listen).
    #[arg(long)]
    ws_listen: Option<SocketAddr>,
    /// TLS wss:// listener address (overrides gateway.wss_listen).
    #[arg(long)]
    wss_listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return fail(anyhow::Error::new(err).context("cannot start the async runtime")),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(err),
    }
}

fn fail(err: anyhow::Error) -> ExitCode {
    eprintln!("wsgate: error: {err:#}");
    ExitCode::FAILURE
}

async fn run(command: Command) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    match command {
        Command::Serve { config, common } => {
            let mut config = match &config {
                Some(path) => load_config(path)?,
                None => Config::default(),
            };
            apply_common(&mut config, &common)?;
            let gateway = Gateway::bind(&config).await?;
            stop_on_signal(shutdown.clone())?;
            print_listeners(&gateway);
            gateway.run(shutdown).await;
        }
        Command::Demo { common } => demo(common, shutdown).await?,
        Command::Echo { listen, tls_cert, tls_key } => {
            let mut echo = EchoServer::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
            if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
                let files = wsgate_tls::server::CertificateFiles { cert, key, generated: false };
                let certificate = wsgate_tls::server::ReloadingCertificate::load(files)?;
                let config = wsgate_tls::server::server_config(certificate)?;
                echo = echo.with_tls(tokio_rustls::TlsAcceptor::from(config));
            }
            stop_on_signal(shutdown.clone())?;
            println!("wsgate: echo listening on {}", echo.local_addr());
            echo.run(shutdown).await;
        }
    }
    Ok(())
}

fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Config::from_toml(&text).with_context(|| format!("config {}", path.display()))
}

fn apply_common(config: &mut Config, common: &Common) -> anyhow::Result<()> {
    if let Some(addr) = common.ws_listen {
        config.gateway.ws_listen = addr.to_string();
    }
    if let Some(addr) = common.wss_listen {
        config.gateway.wss_listen = addr.to_string();
    }
    if let Some(dir) = &common.data_dir {
        config.gateway.data_dir = Some(dir.clone());
    }
    let data_dir = config.gateway.data_dir();
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    Ok(())
}

/// `serve` plus a built-in echo upstream and the seeds' EchoWebSocket API.
async fn demo(common: Common, shutdown: CancellationToken) -> anyhow::Result<()> {
    let echo =
        EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.context("cannot start the demo echo upstream")?;
    let echo_addr = echo.local_addr();
    let mut config = Config::default();
    config.apis.push(ApiSpec {
        name: "EchoWebSocket".into(),
        context: "/echowebsocket".into(),
        version: "1.0".into(),
        endpoints: vec![format!("ws://{echo_addr}")],
        auth: AuthMode::None,
        ..ApiSpec::default()
    });
    apply_common(&mut config, &common)?;
    let gateway = Gateway::bind(&config).await?;
    stop_on_signal(shutdown.clone())?;
    print_listeners(&gateway);
    println!();
    println!("wsgate demo is running: the EchoWebSocket API (context /echowebsocket, version 1.0)");
    println!("relays to a built-in echo server at ws://{echo_addr} (keyless in this build).");
    println!();
    println!("Try it with the stock wscat client (npm install -g wscat):");
    if let Some(addr) = gateway.ws_addr() {
        println!("  wscat -c ws://localhost:{}/echowebsocket/1.0.0", addr.port());
    }
    if let Some(addr) = gateway.wss_addr() {
        println!("  wscat -n -c wss://localhost:{}/echowebsocket/1.0.0", addr.port());
    }
    println!();
    println!("Press Ctrl-C to stop.");
    let echo_task = tokio::spawn(echo.run(shutdown.clone()));
    gateway.run(shutdown).await;
    let _ = echo_task.await;
    Ok(())
}

/// One line per listener, the format scripts and tests read: `wsgate: ws listening on ADDR`.
fn print_listeners(gateway: &Gateway) {
    if let Some(addr) = gateway.ws_addr() {
        println!("wsgate: ws listening on {addr}");
    }
    if let Some(addr) = gateway.wss_addr() {
        println!("wsgate: wss listening on {addr}");
    }
    if let (Some(files), Some(fingerprint)) = (gateway.certificate_files(), gateway.certificate_fingerprint()) {
        let origin = if files.generated { "generated self-signed" } else { "from" };
        println!("wsgate: TLS certificate {origin} {} (SHA-256 {fingerprint})", files.cert.display());
    }
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C. The handlers are installed before this returns, so
/// a signal sent as soon as the "listening" line appears already drains instead of killing.
fn stop_on_signal(shutdown: CancellationToken) -> anyhow::Result<()> {
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
            tracing::info!("shutting down: draining live connections");
            shutdown.cancel();
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        shutdown.cancel();
    });
    Ok(())
}

/// Logs go to stderr; `WSGATE_LOG_FORMAT=json` makes them JSON lines, `RUST_LOG` filters them.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("WSGATE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

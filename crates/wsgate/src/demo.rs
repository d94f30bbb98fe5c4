//! `wsgate demo`: `serve` on a data directory of its own, plus a built-in echo upstream, the
//! seeds' EchoWebSocket API published, an application subscribed with Gold, and the lines to
//! paste. Seeding goes through the REST API, the same path the portals and the CLI take.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wsgate::echo::EchoServer;
use wsgate_core::config::Config;

use crate::cli::{ClientArgs, ServerArgs};
use crate::client::ControlClient;
use crate::server;

const ADMIN: (&str, &str) = ("admin", "admin");
const APP: &str = "DemoApp";
/// As in the seeds: the API takes OAuth2 access tokens.
const DEMO_AUTH: &str = "oauth2";

pub async fn demo(args: ServerArgs) -> anyhow::Result<()> {
    let echo =
        EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.context("cannot start the demo echo upstream")?;
    let echo_url = format!("ws://{}", echo.local_addr());
    let mut config = Config::default();
    // A data directory of its own, so the demo's admin/admin never meets a real installation.
    config.gateway.data_dir = Some(wsgate_core::config::default_data_dir().join("demo"));
    server::apply_args(&mut config, &args)?;
    if config.control.listen_addr()?.is_none() {
        bail!("the demo needs the control plane: leave out --control-listen off");
    }
    let shutdown = CancellationToken::new();
    let running = server::start(&config, Some(ADMIN.1), shutdown.clone()).await?;
    let Some(control) = running.control.as_ref().and_then(|c| c.addr()) else {
        bail!("the demo needs the control plane: leave out --control-listen off");
    };
    server::stop_on_signal(running.draining.clone(), shutdown.clone(), config.gateway.shutdown_delay)?;
    let echo_task = tokio::spawn(echo.run(shutdown.clone()));
    let control_task = running.control.map(|c| tokio::spawn(c.run(shutdown.clone())));
    let server_url = format!("https://localhost:{}", control.port());
    let ca = running.data_dir.join("tls").join("cert.pem");
    let seeded = {
        let (server_url, echo_url) = (server_url.clone(), echo_url.clone());
        tokio::task::spawn_blocking(move || seed(&server_url, &ca, &echo_url)).await.context("seeding stopped")?
    };
    let token = match seeded {
        Ok(token) => token,
        Err(err) => {
            shutdown.cancel();
            return Err(err.context("cannot seed the demo"));
        }
    };
    let certificate = portal_certificate(&running.data_dir.join("tls").join("cert.pem"));
    let gateway = running.gateway;
    if let Some(addr) = gateway.ws_addr() {
        println!("wsgate: ws listening on {addr}");
    }
    if let Some(addr) = gateway.wss_addr() {
        println!("wsgate: wss listening on {addr}");
    }
    println!("wsgate: control listening on {control}");
    println!();
    println!("wsgate demo is running, with its data in {}.", running.data_dir.display());
    println!("  Publisher portal:   {server_url}/publisher    sign in as admin / admin");
    println!("  Developer portal:   {server_url}/devportal    (sign up as a subscriber, or admin / admin)");
    println!("  REST API, OAuth2:   {server_url}/api/v1 , {server_url}/oauth2/token");
    println!("  {certificate}");
    println!("  API EchoWebSocket 1.0 at /echowebsocket -> built-in echo {echo_url}");
    println!("  Application {APP}, subscribed with Gold. Its access token (valid 1 hour):");
    println!();
    println!("export TOKEN={token}");
    println!();
    println!("Try it with the stock wscat client (npm install -g wscat), as in the WSO2 tutorial:");
    if let Some(addr) = gateway.ws_addr() {
        let port = addr.port();
        println!("  wscat -c ws://localhost:{port}/echowebsocket/1.0.0 -H \"Authorization: Bearer $TOKEN\"");
        println!("  wscat -c \"ws://localhost:{port}/echowebsocket/1.0.0?access_token=$TOKEN\"");
    }
    if let Some(addr) = gateway.wss_addr() {
        println!(
            "  wscat -n -c wss://localhost:{}/echowebsocket/1.0.0 -H \"Authorization: Bearer $TOKEN\"",
            addr.port()
        );
    }
    println!(
        "And the CLI, e.g.:  WSGATE_USER=admin WSGATE_PASSWORD=admin {} api list --server {server_url} --data-dir {}",
        this_command(),
        running.data_dir.display()
    );
    println!();
    println!("Press Ctrl-C to stop.");
    gateway.run(shutdown).await;
    let _ = echo_task.await;
    if let Some(task) = control_task {
        let _ = task.await;
    }
    Ok(())
}

/// The line about the portals' certificate: where it is and its fingerprint, which a browser's
/// warning page shows too, so that it can be checked before it is accepted.
fn portal_certificate(path: &Path) -> String {
    let fingerprint = wsgate_tls::pem::certificates(path)
        .ok()
        .and_then(|chain| chain.first().map(|cert| wsgate_tls::fingerprint(cert)))
        .unwrap_or_else(|| "unreadable".into());
    format!(
        "Certificate:        self-signed, {} (portals and wss://): your browser warns once;\n                      \
         accept it if it shows SHA-256 {fingerprint}",
        path.display()
    )
}

/// How the user runs this very binary from where they stand: `wsgate` when that is what their
/// PATH finds, else its path (relative to the current directory when it is below it, as
/// `target/release/wsgate` is after `cargo run --release`).
fn this_command() -> String {
    let Ok(exe) = std::env::current_exe().and_then(std::fs::canonicalize) else {
        return "wsgate".into();
    };
    let on_path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .filter_map(|dir| std::fs::canonicalize(dir.join("wsgate")).ok())
        .next();
    if on_path.as_ref() == Some(&exe) {
        return "wsgate".into();
    }
    let here = std::env::current_dir().and_then(std::fs::canonicalize).ok();
    let shown = here.and_then(|here| exe.strip_prefix(here).ok().map(Path::to_path_buf)).unwrap_or(exe);
    let shown = shown.display().to_string();
    // A path with a space would split in the shell.
    if shown.contains(' ') { format!("'{shown}'") } else { shown }
}

/// Makes sure the demo's API, application and subscription exist (a second run finds them and
/// points the API at this run's echo port), and returns a fresh access token.
fn seed(server_url: &str, ca: &Path, echo_url: &str) -> anyhow::Result<String> {
    let args = ClientArgs {
        server: server_url.to_string(),
        user: Some(ADMIN.0.into()),
        password: Some(ADMIN.1.into()),
        ca: Some(ca.to_path_buf()),
        data_dir: None,
    };
    let client = ControlClient::connect(&args)?;
    let apis: Vec<Value> = client.get("/api/v1/apis")?;
    let existing = apis.iter().find(|api| api["name"] == "EchoWebSocket" && api["version"] == "1.0");
    let body = json!({
        "name": "EchoWebSocket", "context": "/echowebsocket", "version": "1.0",
        "endpoints": [echo_url], "plans": ["Gold", "Silver"], "auth": DEMO_AUTH,
    });
    let api: Value = match existing {
        Some(api) => client.put(&format!("/api/v1/apis/{}", api["id"].as_str().unwrap_or_default()), body)?,
        None => {
            let mut body = body;
            body["publish"] = json!(true);
            client.post("/api/v1/apis", body)?
        }
    };
    let api_id = api["id"].as_str().unwrap_or_default().to_string();
    let apps: Vec<Value> = client.get("/api/v1/applications")?;
    let app = match apps.into_iter().find(|app| app["name"] == APP) {
        Some(app) => app,
        None => client.post("/api/v1/applications", json!({ "name": APP, "description": "made by wsgate demo" }))?,
    };
    let app_id = app["id"].as_str().unwrap_or_default().to_string();
    let subscriptions: Vec<Value> =
        client.get(&format!("/api/v1/subscriptions?application_id={app_id}&api_id={api_id}"))?;
    if !subscriptions.iter().any(|s| s["state"] != "REMOVED") {
        let _: Value = client
            .post("/api/v1/subscriptions", json!({ "application_id": app_id, "api_id": api_id, "plan": "Gold" }))?;
    }
    let token: Value = client.post(&format!("/api/v1/applications/{app_id}/token"), json!({}))?;
    token["access_token"].as_str().map(str::to_string).context("the token answer holds no access_token")
}

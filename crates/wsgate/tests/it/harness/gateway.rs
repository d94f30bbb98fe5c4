//! The gateway under test, started in-process from a TOML config, and the
//! echo server it usually fronts.
//!
//! `gateway().api(api("/echowebsocket", "1.0", &echo.url())).start().await`
//! reads as the sentence it is. The config is rendered to TOML and parsed by
//! the real `Config::from_toml`, so the tests exercise the same path as the
//! binary.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wsgate::echo::EchoServer;
use wsgate_core::config::Config;
use wsgate_gateway::Gateway;

use super::{STEP, within};

/// One `[[apis]]` entry.
#[derive(Debug, Clone)]
pub struct Api {
    context: String,
    version: String,
    endpoints: Vec<String>,
    default_version: bool,
    /// More `key = value` lines of the `[[apis]]` table, as written.
    extra: Vec<String>,
}

/// A keyless API at `context` + `version` relaying to `endpoint`.
pub fn api(context: &str, version: &str, endpoint: &str) -> Api {
    Api {
        context: context.to_string(),
        version: version.to_string(),
        endpoints: vec![endpoint.to_string()],
        default_version: false,
        extra: Vec::new(),
    }
}

impl Api {
    /// Also routes paths under the context that name no version.
    pub fn default_version(mut self) -> Self {
        self.default_version = true;
        self
    }

    /// Relays to these endpoints instead (several: load balancing, health).
    pub fn endpoints(mut self, urls: &[String]) -> Self {
        self.endpoints = urls.to_vec();
        self
    }

    /// One more `key = value` line of the API's table, e.g. inline limits.
    pub fn with_toml(mut self, line: &str) -> Self {
        self.extra.push(line.to_string());
        self
    }
}

/// A gateway config under construction; every `[gateway]` key starts at the
/// documented default, except `ws_listen`, which asks the OS for a free port, and
/// `wss_listen`, which is off. The control plane (only started by `wsgate serve`)
/// listens on a free port too.
#[derive(Debug, Clone)]
pub struct GatewayBuilder {
    settings: BTreeMap<&'static str, String>,
    apis: Vec<Api>,
}

pub fn gateway() -> GatewayBuilder {
    let settings = [
        ("ws_listen", "\"127.0.0.1:0\""),
        // The wss listener has tests of its own (tls.rs); here it would only hold a port.
        ("wss_listen", "\"off\""),
        ("max_frame_size", "16777216"),
        ("max_message_size", "67108864"),
        ("handshake_timeout", "\"10s\""),
        ("connect_timeout", "\"5s\""),
        ("upstream_handshake_timeout", "\"10s\""),
        ("idle_timeout", "\"300s\""),
        ("close_timeout", "\"5s\""),
        ("shutdown_timeout", "\"10s\""),
        ("max_header_size", "16384"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .chain([("data_dir", format!("{:?}", std::env::temp_dir().join("wsgate-it-data")))])
    .collect();
    GatewayBuilder { settings, apis: Vec::new() }
}

impl GatewayBuilder {
    pub fn api(mut self, api: Api) -> Self {
        self.apis.push(api);
        self
    }

    pub fn max_frame_size(self, bytes: u64) -> Self {
        self.set("max_frame_size", bytes.to_string())
    }

    pub fn max_message_size(self, bytes: u64) -> Self {
        self.set("max_message_size", bytes.to_string())
    }

    /// Not set unless asked for: the key's default is the documented one.
    pub fn max_control_frames_per_second(self, limit: u32) -> Self {
        self.set("max_control_frames_per_second", limit.to_string())
    }

    pub fn handshake_timeout(self, duration: &str) -> Self {
        self.set("handshake_timeout", format!("{duration:?}"))
    }

    pub fn upstream_handshake_timeout(self, duration: &str) -> Self {
        self.set("upstream_handshake_timeout", format!("{duration:?}"))
    }

    pub fn idle_timeout(self, duration: &str) -> Self {
        self.set("idle_timeout", format!("{duration:?}"))
    }

    pub fn shutdown_timeout(self, duration: &str) -> Self {
        self.set("shutdown_timeout", format!("{duration:?}"))
    }

    /// Any other `[gateway]` key, with its value as TOML (`"2"`, `"\"1s\""`).
    pub fn setting(self, key: &'static str, toml_value: &str) -> Self {
        self.set(key, toml_value.to_string())
    }

    /// Not set unless asked for: no limit.
    pub fn max_lifetime(self, duration: &str) -> Self {
        self.set("max_lifetime", format!("{duration:?}"))
    }

    /// Not set unless asked for: no keepalive pings.
    pub fn ping_interval(self, duration: &str) -> Self {
        self.set("ping_interval", format!("{duration:?}"))
    }

    pub fn ping_timeout(self, duration: &str) -> Self {
        self.set("ping_timeout", format!("{duration:?}"))
    }

    fn set(mut self, key: &'static str, toml_value: String) -> Self {
        self.settings.insert(key, toml_value);
        self
    }

    /// The config file this builder describes.
    pub fn toml(&self) -> String {
        let mut out = String::from("[control]\nlisten = \"127.0.0.1:0\"\n\n[gateway]\n");
        for (key, value) in &self.settings {
            out.push_str(&format!("{key} = {value}\n"));
        }
        for (i, api) in self.apis.iter().enumerate() {
            let endpoints: Vec<String> = api.endpoints.iter().map(|e| format!("{e:?}")).collect();
            out.push_str(&format!(
                "\n[[apis]]\nname = \"TestApi{i}\"\ncontext = {:?}\nversion = {:?}\n\
                 endpoints = [{}]\nauth = \"none\"\ndefault_version = {}\n",
                api.context,
                api.version,
                endpoints.join(", "),
                api.default_version
            ));
            for line in &api.extra {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Parses the config as the binary would, binds, and runs the gateway in a task.
    pub async fn start(self) -> RunningGateway {
        let toml = self.toml();
        let config = Config::from_toml(&toml).unwrap_or_else(|err| panic!("test config is valid ({err:?}):\n{toml}"));
        let gateway = within(STEP, "the gateway binds", Gateway::bind(&config))
            .await
            .unwrap_or_else(|err| panic!("the gateway binds: {err:?}"));
        let addr = gateway.ws_addr().expect("the ws listener is on");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                gateway.run(shutdown).await;
            }
        });
        RunningGateway { addr, shutdown, task }
    }
}

/// A gateway running in this process; dropping it stops it.
pub struct RunningGateway {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl RunningGateway {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.task.abort();
    }
}

/// The project's own echo server, running in this process; dropping it stops it.
pub struct Echo {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

pub async fn echo_upstream() -> Echo {
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("a socket address");
    let echo = within(STEP, "the echo server binds", EchoServer::bind(loopback)).await.expect("the echo server binds");
    let addr = echo.local_addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            echo.run(shutdown).await;
        }
    });
    Echo { addr, shutdown, task }
}

impl Echo {
    /// The endpoint to declare in an API: `ws://ADDR`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.task.abort();
    }
}

//! Several `wsgate serve` nodes, real processes, sharing one PostgreSQL schema and one Redis, as
//! a team that outgrew one machine runs them. Each node's ports (ws, control, metrics) are picked
//! once, free, before it starts, so a node restarted is found where it was (a load balancer's
//! server line stays true). They share a data directory (so one generated certificate) and an
//! issuer.
//!
//! ```text
//! let cluster = cluster(3).redis(&own_redis.url()).start().await;
//! let admin = cluster.admin(0).await;          // signed in through node 0's control plane
//! cluster.nodes[1].ws                          // where node 1's gateway listens
//! cluster.nodes[2].kill();                     // SIGKILL, as a crash would
//! cluster.nodes[0].terminate(); .restart()     // SIGTERM and wait for the exit; start again
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use super::ports::unused_port;
use super::process::TempDir;
use super::services::{PgSchema, shared_redis_url, unique};
use super::{STEP, within};
use crate::control::harness::{ADMIN_PASSWORD, Http, Session};

/// How long a node may take to exit after SIGTERM: its `shutdown_delay` and `shutdown_timeout`
/// (a few seconds in these tests) and the analytics writer's last flush.
const EXIT_LIMIT: Duration = Duration::from_secs(30);

pub struct ClusterBuilder {
    nodes: usize,
    redis_url: String,
    redis_failure: &'static str,
    lease_ttl: &'static str,
    /// Extra `key = value` lines, each for a section (`gateway`, `control`, ...).
    settings: Vec<(String, String)>,
    /// Nodes whose store connections go to another address (a proxy in front of PostgreSQL).
    store_via: Vec<(usize, SocketAddr)>,
    /// `control.issuer`; `false`: the store fixes the first node's default.
    issuer: bool,
    /// Whether each node's stderr goes to a file of its own ([`Node::log`]) rather than the test's.
    logs: bool,
}

/// `nodes` nodes on a new schema of the machine's PostgreSQL and its Redis.
pub fn cluster(nodes: usize) -> ClusterBuilder {
    ClusterBuilder {
        nodes,
        redis_url: shared_redis_url(),
        redis_failure: "open",
        lease_ttl: "3s",
        settings: Vec::new(),
        store_via: Vec::new(),
        issuer: true,
        logs: false,
    }
}

impl ClusterBuilder {
    /// Another Redis (one the test can kill).
    pub fn redis(mut self, url: &str) -> Self {
        self.redis_url = url.to_string();
        self
    }

    /// `[cluster] redis_failure = "closed"`.
    pub fn failing_closed(mut self) -> Self {
        self.redis_failure = "closed";
        self
    }

    /// One more line of config for every node, in `section`: `.setting("gateway",
    /// "shutdown_delay = \"2s\"")`.
    pub fn setting(mut self, section: &str, line: &str) -> Self {
        self.settings.push((section.to_string(), line.to_string()));
        self
    }

    /// Node `node` reaches PostgreSQL at `addr` (a proxy the test can cut) instead of directly.
    pub fn store_via(mut self, node: usize, addr: SocketAddr) -> Self {
        self.store_via.push((node, addr));
        self
    }

    /// Every node reaches PostgreSQL at `addr` (a proxy the test can cut).
    pub fn store_through(mut self, addr: SocketAddr) -> Self {
        self.store_via = (0..self.nodes).map(|node| (node, addr)).collect();
        self
    }

    /// No `control.issuer`, as the README's cluster starts: the store fixes the first node's.
    pub fn without_issuer(mut self) -> Self {
        self.issuer = false;
        self
    }

    /// `[cluster] duties_lease`.
    pub fn duties_lease(self, lease: &str) -> Self {
        self.setting("cluster", &format!("duties_lease = {lease:?}"))
    }

    /// `[control] signing_key_rotation`.
    pub fn signing_key_rotation(self, rotation: &str) -> Self {
        self.setting("control", &format!("signing_key_rotation = {rotation:?}"))
    }

    /// `[cluster] heartbeat_interval = interval` and `node_retention = retention` (e.g. "500ms"
    /// and "5s"), so that the node list changes within a test's patience.
    pub fn heartbeat(self, interval: &str, retention: &str) -> Self {
        self.setting("cluster", &format!("heartbeat_interval = {interval:?}\nnode_retention = {retention:?}"))
    }

    /// Each node's stderr (its log, at `warn` and above) goes to a file read by [`Node::log`].
    pub fn logs(mut self) -> Self {
        self.logs = true;
        self
    }

    pub async fn start(self) -> Cluster {
        let schema = PgSchema::create().await;
        let dir = TempDir::new("cluster");
        let prefix = unique("wsgate-it");
        let mut nodes = Vec::new();
        // One after the other: the first creates the schema and the admin, the others find them.
        for i in 0..self.nodes {
            let ports = Ports::pick();
            let store_url = match self.store_via.iter().find(|(node, _)| *node == i) {
                Some((_, addr)) => schema.url_via(*addr),
                None => schema.url.clone(),
            };
            let config = dir.write(&format!("node{i}.toml"), &self.config(&ports, &store_url, &prefix));
            let log = self.logs.then(|| dir.path().join(format!("node-{i}.log")));
            nodes.push(Node::start(config, dir.path().to_path_buf(), ports, log).await);
        }
        let cert = dir.path().join("tls").join("cert.pem");
        Cluster { nodes, cert, schema, _dir: dir }
    }

    fn config(&self, ports: &Ports, store_url: &str, prefix: &str) -> String {
        let issuer = if self.issuer { "issuer = \"https://wsgate-cluster.test\"\n" } else { "" };
        let mut sections = vec![
            ("gateway", format!("ws_listen = \"{}\"\nwss_listen = \"off\"\nshutdown_timeout = \"2s\"\n", ports.ws)),
            ("control", format!("listen = \"{}\"\n{issuer}", ports.control)),
            ("store", format!("url = {store_url:?}\n")),
            (
                "cluster",
                format!(
                    "redis_url = {:?}\nredis_prefix = {prefix:?}\nredis_failure = {:?}\nlease_ttl = {:?}\n",
                    self.redis_url, self.redis_failure, self.lease_ttl
                ),
            ),
            ("observability", format!("metrics_listen = \"{}\"\n", ports.metrics)),
        ];
        for (section, line) in &self.settings {
            match sections.iter_mut().find(|(name, _)| name == section) {
                Some((_, text)) => text.push_str(&format!("{line}\n")),
                None => sections.push((section.as_str(), format!("{line}\n"))),
            }
        }
        sections.iter().map(|(name, text)| format!("[{name}]\n{text}")).collect()
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    cert: PathBuf,
    schema: PgSchema,
    _dir: TempDir,
}

impl Cluster {
    /// The admin, signed in through node `i`'s control plane.
    pub async fn admin(&self, i: usize) -> Session {
        self.http(i).login("admin", ADMIN_PASSWORD).await
    }

    pub fn http(&self, i: usize) -> Http {
        Http::trusting(&self.cert, format!("https://127.0.0.1:{}", self.nodes[i].control.port()))
    }

    /// The nodes' PostgreSQL schema, for reading what they stored.
    pub fn schema(&self) -> &PgSchema {
        &self.schema
    }
}

/// A node's addresses, fixed for its life and its restarts.
#[derive(Clone, Copy)]
struct Ports {
    ws: SocketAddr,
    control: SocketAddr,
    metrics: SocketAddr,
}

impl Ports {
    fn pick() -> Ports {
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Ports { ws: at(unused_port()), control: at(unused_port()), metrics: at(unused_port()) }
    }
}

/// One `wsgate serve` process; killed when dropped.
pub struct Node {
    child: Option<Child>,
    pub ws: SocketAddr,
    pub control: SocketAddr,
    /// `observability.metrics_listen`: `/readyz` for load balancers.
    pub metrics: SocketAddr,
    config: PathBuf,
    data_dir: PathBuf,
    /// Where its stderr goes, when the cluster was built with `logs()`.
    log: Option<PathBuf>,
    /// Kept open, so a node never writes to a closed pipe.
    stdout: Option<BufReader<ChildStdout>>,
}

impl Node {
    async fn start(config: PathBuf, data_dir: PathBuf, ports: Ports, log: Option<PathBuf>) -> Node {
        let mut node = Node {
            child: None,
            ws: ports.ws,
            control: ports.control,
            metrics: ports.metrics,
            config,
            data_dir,
            log,
            stdout: None,
        };
        node.restart().await;
        node
    }

    /// Starts the node (again) with its config, on its ports, and waits until it prints its
    /// listening lines, which it does once its snapshot is loaded.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a node only after terminate() or kill()");
        let stderr = match &self.log {
            Some(path) => {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
                Stdio::from(file.expect("the node's log file opens"))
            }
            None => Stdio::inherit(),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_wsgate"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("WSGATE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // A node logging to its own file also says how its heartbeat fares.
            .env("RUST_LOG", if self.log.is_some() { "warn,wsgate::heartbeat=info" } else { "warn" })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("the wsgate binary starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let wanted = [
            format!("wsgate: ws listening on {}", self.ws),
            format!("wsgate: control listening on {}", self.control),
            format!("wsgate: metrics listening on {}", self.metrics),
        ];
        within(Duration::from_secs(30), "a node prints its listening lines", async {
            let mut seen = 0;
            let mut line = String::new();
            while seen < wanted.len() {
                line.clear();
                let n = stdout.read_line(&mut line).await.expect("stdout is readable");
                assert!(n > 0, "a node exited before it listened ({})", self.config.display());
                if wanted.iter().any(|w| w == line.trim()) {
                    seen += 1;
                }
            }
        })
        .await;
        self.child = Some(child);
        self.stdout = Some(stdout);
    }

    /// What the node logged so far (empty unless the cluster was built with `logs()`).
    pub fn log(&self) -> String {
        self.log.as_ref().and_then(|path| std::fs::read_to_string(path).ok()).unwrap_or_default()
    }

    /// SIGKILL: the node dies as in a crash, releasing nothing.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// SIGTERM, as a rolling restart sends it, then waits until the process has exited (after
    /// its shutdown delay and drain); its exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the node is running");
        super::process::terminate(&child);
        within(EXIT_LIMIT, "a node exits after SIGTERM", child.wait()).await.expect("its exit status")
    }

    /// The status of `GET /readyz` on the metrics listener, `None` when nothing answers.
    pub async fn readyz(&self) -> Option<u16> {
        plain_get_status(self.metrics, "/readyz").await
    }
}

/// One plain-HTTP GET; the answer's status, `None` when the connection fails.
pub async fn plain_get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let text = String::from_utf8_lossy(&answer);
        text.split(' ').nth(1)?.parse().ok()
    };
    within(STEP, &format!("GET {path} on {addr} answers"), exchange).await
}

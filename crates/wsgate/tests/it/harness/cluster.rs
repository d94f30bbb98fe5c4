//! Several `wsgate serve` nodes, real processes, sharing one PostgreSQL schema and one Redis, as
//! a team that outgrew one machine runs them. Each node binds `127.0.0.1:0`; they share a data
//! directory (so one generated certificate) and an issuer.
//!
//! ```text
//! let cluster = cluster(3).redis(&own_redis.url()).start().await;
//! let admin = cluster.admin(0).await;          // signed in through node 0's control plane
//! cluster.nodes[1].ws                          // where node 1's gateway listens
//! cluster.nodes[2].kill();                     // SIGKILL, as a crash would
//! cluster.nodes[1].terminate();                // SIGTERM: drain and exit
//! ```

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use super::process::TempDir;
use super::services::{PgSchema, shared_redis_url, unique};
use super::within;
use crate::control::harness::{ADMIN_PASSWORD, Http, Session};

pub struct ClusterBuilder {
    nodes: usize,
    redis_url: String,
    redis_failure: &'static str,
    lease_ttl: &'static str,
    /// `[cluster] heartbeat_interval` and `node_retention`, when a test sets them.
    heartbeat: Option<(&'static str, &'static str)>,
    /// Where nodes reach PostgreSQL instead of its own address (a proxy the test can cut).
    store_through: Option<SocketAddr>,
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
        heartbeat: None,
        store_through: None,
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

    /// `[cluster] heartbeat_interval = interval` and `node_retention = retention` (e.g. "500ms"
    /// and "5s"), so that the node list changes within a test's patience.
    pub fn heartbeat(mut self, interval: &'static str, retention: &'static str) -> Self {
        self.heartbeat = Some((interval, retention));
        self
    }

    /// Nodes reach PostgreSQL through `addr` (which relays to the machine's server).
    pub fn store_through(mut self, addr: SocketAddr) -> Self {
        self.store_through = Some(addr);
        self
    }

    /// Each node's stderr (its log, at `warn` and above) goes to a file read by [`Node::log`].
    pub fn logs(mut self) -> Self {
        self.logs = true;
        self
    }

    pub async fn start(self) -> Cluster {
        let schema = PgSchema::create().await;
        let store_url = match self.store_through {
            Some(addr) => with_address(&schema.url, addr),
            None => schema.url.clone(),
        };
        let dir = TempDir::new("cluster");
        let mut config = format!(
            "[gateway]\nws_listen = \"127.0.0.1:0\"\nwss_listen = \"off\"\nshutdown_timeout = \"2s\"\n\
             [control]\nlisten = \"127.0.0.1:0\"\nissuer = \"https://wsgate-cluster.test\"\n\
             [store]\nurl = {:?}\n\
             [cluster]\nredis_url = {:?}\nredis_prefix = {:?}\nredis_failure = {:?}\nlease_ttl = {:?}\n",
            store_url,
            self.redis_url,
            unique("wsgate-it"),
            self.redis_failure,
            self.lease_ttl,
        );
        if let Some((interval, retention)) = self.heartbeat {
            config.push_str(&format!("heartbeat_interval = {interval:?}\nnode_retention = {retention:?}\n"));
        }
        let config_path = dir.write("wsgate.toml", &config);
        let mut nodes = Vec::new();
        // One after the other: the first creates the schema and the admin, the others find them.
        for i in 0..self.nodes {
            let log = self.logs.then(|| dir.path().join(format!("node-{i}.log")));
            nodes.push(Node::start(&config_path, dir.path(), log).await);
        }
        let cert = dir.path().join("tls").join("cert.pem");
        Cluster { nodes, cert, _schema: schema, _dir: dir }
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    cert: std::path::PathBuf,
    _schema: PgSchema,
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
}

/// One `wsgate serve` process; killed when dropped.
pub struct Node {
    child: Child,
    log: Option<std::path::PathBuf>,
    pub ws: SocketAddr,
    pub control: SocketAddr,
    _stdout: BufReader<ChildStdout>,
}

impl Node {
    async fn start(config: &std::path::Path, data_dir: &std::path::Path, log: Option<std::path::PathBuf>) -> Node {
        let stderr = match &log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("the node's log file is created")),
            None => Stdio::inherit(),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_wsgate"))
            .args(["serve", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .env("WSGATE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // A node logging to its own file also says how its heartbeat fares.
            .env("RUST_LOG", if log.is_some() { "warn,wsgate::heartbeat=info" } else { "warn" })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("the wsgate binary starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let (mut ws, mut control) = (None, None);
        within(Duration::from_secs(30), "a node prints its listening lines", async {
            let mut line = String::new();
            while ws.is_none() || control.is_none() {
                line.clear();
                let n = stdout.read_line(&mut line).await.expect("stdout is readable");
                assert!(n > 0, "a node exited before it listened");
                let line = line.trim();
                if let Some(addr) = line.strip_prefix("wsgate: ws listening on ") {
                    ws = addr.parse().ok();
                }
                if let Some(addr) = line.strip_prefix("wsgate: control listening on ") {
                    control = addr.parse().ok();
                }
            }
        })
        .await;
        Node { child, log, ws: ws.expect("ws address"), control: control.expect("control address"), _stdout: stdout }
    }

    /// What the node logged so far (empty unless the cluster was built with `logs()`).
    pub fn log(&self) -> String {
        self.log.as_ref().and_then(|path| std::fs::read_to_string(path).ok()).unwrap_or_default()
    }

    /// SIGKILL: the node dies as in a crash, releasing nothing.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// SIGTERM, then waits (up to 30 s) for the node to drain and exit on its own.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        super::process::terminate(&self.child);
        within(Duration::from_secs(30), "a node exits after SIGTERM", self.child.wait()).await.expect("its status")
    }
}

/// `url` (`postgres://user@host:port/db?…`) with `addr` in place of its host and port.
fn with_address(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let user = authority.rsplit_once('@').map(|(user, _)| format!("{user}@")).unwrap_or_default();
    format!("{scheme}://{user}{addr}/{path}")
}

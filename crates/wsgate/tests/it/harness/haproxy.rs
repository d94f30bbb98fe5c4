//! HAProxy in front of cluster nodes, from the configuration the project ships
//! (`deploy/haproxy/wsgate-cluster.cfg`), rendered with the nodes' ports: the balancer a user
//! would run, not a stand-in. Its admin socket tells the test which nodes it sees as UP and how
//! many connects it retried elsewhere.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};

use super::cluster::Node;
use super::ports::unused_port;
use super::process::{TempDir, tool};
use super::within;

/// A running `haproxy -db`; killed when dropped.
pub struct Haproxy {
    pub addr: SocketAddr,
    socket: PathBuf,
    _child: Child,
    _dir: TempDir,
}

/// The shipped template, with `@LISTEN@`, `@STATS_SOCKET@` and the `@SERVERS@` line filled in.
pub fn render(listen: SocketAddr, stats_socket: &Path, nodes: &[&Node]) -> String {
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/haproxy/wsgate-cluster.cfg");
    let template =
        std::fs::read_to_string(&template).unwrap_or_else(|err| panic!("{} is readable: {err}", template.display()));
    let servers: Vec<String> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| format!("    server node{i} {} check port {}", node.ws, node.metrics.port()))
        .collect();
    let rendered = template
        .replace("\n    @SERVERS@\n", &format!("\n{}\n", servers.join("\n")))
        .replace("@LISTEN@", &listen.to_string())
        .replace("@STATS_SOCKET@", &stats_socket.display().to_string());
    assert!(!rendered.contains("\n    @SERVERS@"), "the template has its `    @SERVERS@` line");
    rendered
}

impl Haproxy {
    /// Starts HAProxy (`WSGATE_HAPROXY`, else `haproxy` on PATH) in front of `nodes` and waits
    /// until it sees every one of them UP.
    pub async fn start(nodes: &[&Node]) -> Haproxy {
        let binary = tool("WSGATE_HAPROXY", "haproxy");
        let dir = TempDir::new("haproxy");
        let port = unused_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let socket = dir.path().join("admin.sock");
        let config = dir.write("haproxy.cfg", &render(addr, &socket, nodes));
        let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("a log file");
        let child = Command::new(&binary)
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("{} starts: {err}", binary.display()));
        let haproxy = Haproxy { addr, socket, _child: child, _dir: dir };
        let names: Vec<String> = (0..nodes.len()).map(|i| format!("node{i}")).collect();
        within(Duration::from_secs(15), "HAProxy listens and sees every node UP", async {
            loop {
                if let Some(states) = haproxy.try_states().await
                    && names.iter().all(|name| states.iter().any(|s| &s.name == name && s.status == "UP"))
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        haproxy
    }

    /// Each node as HAProxy sees it now.
    pub async fn states(&self) -> Vec<ServerState> {
        self.try_states().await.expect("HAProxy's admin socket answers")
    }

    /// Waits until HAProxy's checks give `node` (`node0`, ...) the status `status` (`UP`, `DOWN`).
    pub async fn until(&self, node: &str, status: &str, limit: Duration) {
        within(limit, &format!("HAProxy sees {node} {status}"), async {
            loop {
                if self.states().await.iter().any(|s| s.name == node && s.status == status) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
    }

    /// `show stat` over the admin socket, its server rows; `None` while it does not answer.
    async fn try_states(&self) -> Option<Vec<ServerState>> {
        let mut stream = UnixStream::connect(&self.socket).await.ok()?;
        stream.write_all(b"show stat\n").await.ok()?;
        let mut csv = String::new();
        within(Duration::from_secs(5), "HAProxy's admin socket answers", stream.read_to_string(&mut csv)).await.ok()?;
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
        let column = |name: &str| header.iter().position(|h| *h == name);
        let (sv, status, retries, redispatches, failed) =
            (column("svname")?, column("status")?, column("wretr")?, column("wredis")?, column("econ")?);
        let number = |cells: &[&str], i: usize| cells.get(i).and_then(|c| c.parse().ok()).unwrap_or(0);
        Some(
            lines
                .map(|line| line.split(',').collect::<Vec<_>>())
                .filter(|cells| cells.get(sv).is_some_and(|name| name.starts_with("node")))
                .map(|cells| ServerState {
                    name: cells[sv].to_string(),
                    status: cells.get(status).map_or("", |s| s.split(' ').next().unwrap_or("")).to_string(),
                    retries: number(&cells, retries),
                    redispatches: number(&cells, redispatches),
                    connect_errors: number(&cells, failed),
                })
                .collect(),
        )
    }
}

/// One server row of HAProxy's `show stat`.
#[derive(Debug, Clone)]
pub struct ServerState {
    pub name: String,
    /// `UP`, `DOWN`, `MAINT` (a transition reads `UP`/`DOWN` plus its progress, cut off here).
    pub status: String,
    /// Connects retried (`wretr`), sent to another server (`wredis`), failed (`econ`).
    pub retries: u64,
    pub redispatches: u64,
    pub connect_errors: u64,
}

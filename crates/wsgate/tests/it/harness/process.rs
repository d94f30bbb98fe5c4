//! Child processes: the real `wsgate` binary and the external tools (wscat,
//! python `websockets`) that prove interoperability with clients we did not
//! write. Every child is spawned with `kill_on_drop`, so a failing test does
//! not leave one behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

use super::{STEP, within};

/// A directory under the system temp dir, unique to one test, removed when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let path = std::env::temp_dir().join(format!("wsgate-it-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("the temp dir is created");
        TempDir { path }
    }

    /// Writes `contents` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, contents).expect("the temp file is written");
        path
    }

    /// Replaces `name` with `contents` at once (written beside it, then renamed over it), as
    /// editors and GitOps tools do: a reader sees the old file or the new one, never half.
    pub fn replace(&self, name: &str, contents: &str) -> PathBuf {
        let next = self.write(&format!("{name}.next"), contents);
        let path = self.path.join(name);
        std::fs::rename(&next, &path).expect("the temp file is renamed");
        path
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A `wsgate serve` process and its stdout, past the "listening" line.
pub struct Served {
    pub child: Child,
    pub ws_addr: String,
    _stdout: BufReader<ChildStdout>,
}

/// Spawns `wsgate serve --config CONFIG` and waits for it to print the address it bound.
pub async fn serve(config: &Path, data_dir: &Path) -> Served {
    spawn_serve(config, data_dir, false).await
}

/// Like [`serve`], with the logs as JSON lines on a pipe, to read the access log from.
pub async fn serve_logging(config: &Path, data_dir: &Path) -> (Served, AccessLog) {
    let mut served = spawn_serve(config, data_dir, true).await;
    let stderr = served.child.stderr.take().expect("stderr is piped");
    (served, AccessLog { lines: BufReader::new(stderr).lines() })
}

/// The log of a `wsgate serve` started by [`serve_logging`].
pub struct AccessLog {
    lines: Lines<BufReader<ChildStderr>>,
}

impl AccessLog {
    /// The fields of the next access log event of an upgraded connection (`connection closed`).
    pub async fn next_closed_connection(&mut self) -> serde_json::Value {
        self.next_access_event("connection closed").await
    }

    /// The fields of the next access log event of a refused connection.
    pub async fn next_refusal(&mut self) -> serde_json::Value {
        self.next_access_event("connection refused").await
    }

    async fn next_access_event(&mut self, message: &str) -> serde_json::Value {
        within(STEP, &format!("the access log reports: {message}"), async {
            loop {
                let line = self.lines.next_line().await.expect("the log is readable").expect("wsgate is still logging");
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                if event["target"] == "wsgate::access" && event["fields"]["message"] == message {
                    return event["fields"].clone();
                }
            }
        })
        .await
    }
}

/// `json_log`: the log goes to a pipe as JSON lines, instead of to the test's stderr.
async fn spawn_serve(config: &Path, data_dir: &Path, json_log: bool) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsgate"));
    command.arg("serve").arg("--config").arg(config).arg("--data-dir").arg(data_dir);
    if json_log {
        command.env("WSGATE_LOG_FORMAT", "json").env("RUST_LOG", "info").stderr(Stdio::piped());
    } else {
        command.stderr(Stdio::inherit());
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the wsgate binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stdout = BufReader::new(stdout);
    let ws_addr = within(STEP, "wsgate prints its ws listening line", async {
        let mut line = String::new();
        loop {
            line.clear();
            let n = stdout.read_line(&mut line).await.expect("stdout is readable");
            assert!(n > 0, "wsgate exited before printing `wsgate: ws listening on ADDR`");
            if let Some(addr) = line.trim().strip_prefix("wsgate: ws listening on ") {
                return addr.to_string();
            }
        }
    })
    .await;
    Served { child, ws_addr, _stdout: stdout }
}

/// A `wsgate serve` whose log (text, `RUST_LOG=info`) goes to a file, with the addresses it
/// printed.
pub struct Node {
    pub child: Child,
    pub ws: String,
    /// Empty unless the config sets `metrics_listen`.
    pub metrics: String,
}

/// Spawns `wsgate serve --config CONFIG --data-dir DIR ARGS…` with its stderr in `log`, and
/// waits for its ws listening line and, when the config sets `metrics_listen`, its metrics one.
pub async fn serve_node(config: &Path, dir: &Path, log: &Path, args: &[&str]) -> Node {
    let wants_metrics = std::fs::read_to_string(config).expect("the config is readable").contains("metrics_listen");
    let stderr = std::fs::File::create(log).expect("the log file is created");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("WSGATE_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true)
        .spawn()
        .expect("the wsgate binary starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let (mut ws, mut metrics) = (None, None);
    within(STEP * 2, "wsgate prints its ws and metrics listening lines", async {
        while ws.is_none() || (wants_metrics && metrics.is_none()) {
            let line = stdout.next_line().await.expect("stdout is readable").expect("wsgate is still running");
            if let Some(addr) = line.strip_prefix("wsgate: ws listening on ") {
                ws = Some(addr.to_string());
            }
            if let Some(addr) = line.strip_prefix("wsgate: metrics listening on ") {
                metrics = Some(addr.to_string());
            }
        }
    })
    .await;
    // Keep reading stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    Node { child, ws: ws.unwrap_or_default(), metrics: metrics.unwrap_or_default() }
}

/// `GET path` over plain HTTP: status and body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    within(STEP, &format!("GET {path}"), async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("the listener accepts");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.expect("the request is written");
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.expect("the answer is read");
        let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    })
    .await
}

/// Sends SIGTERM to a child we spawned.
pub fn terminate(child: &Child) {
    signal(child, "TERM");
}

/// Sends SIGHUP to a child we spawned: `wsgate serve` re-reads its config file.
pub fn hang_up(child: &Child) {
    signal(child, "HUP");
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().expect("the child is still running");
    let status =
        std::process::Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().expect("kill runs");
    assert!(status.success(), "kill -{name} {pid} succeeds");
}

/// An external tool: the path in `env_var` if set, else `name` found on PATH.
/// Fails the test (never skips it) with a hint when the tool is absent.
pub fn tool(env_var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{env_var}={} does not exist; run ./scripts/test, which installs it", path.display());
        return path;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: neither {env_var} is set nor `{name}` is on PATH; \
                 run ./scripts/test, which installs it and sets {env_var}"
            )
        })
}

/// What one run of the stock wscat gave.
pub struct WscatRun {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl WscatRun {
    /// Whether wscat printed `message` as a message it received (a leading `< ` is drawn only
    /// on a terminal).
    pub fn received(&self, message: &str) -> bool {
        self.ok && self.stdout.lines().any(|line| line.trim_start_matches("< ") == message)
    }
}

/// Runs the stock wscat (`WSGATE_WSCAT`) with `args`, sending `message` and waiting a second
/// for answers. wscat quits as soon as its stdin closes, so stdin stays open (piped, never
/// written) until it exits.
pub async fn wscat(args: &[&str], message: &str) -> WscatRun {
    let wscat = tool("WSGATE_WSCAT", "wscat");
    let mut child = tokio::process::Command::new(&wscat)
        .args(args)
        .args(["-x", message, "-w", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("{} starts: {err}", wscat.display()));
    let stdin = child.stdin.take();
    let output = within(std::time::Duration::from_secs(20), "wscat finishes", child.wait_with_output())
        .await
        .expect("wscat's output is readable");
    drop(stdin);
    WscatRun {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// An echo server written with another library (python `websockets`), from
/// `tests/it/fixtures/echo_peers.py`; killed when dropped.
pub struct PythonEcho {
    pub addr: std::net::SocketAddr,
    _child: Child,
}

impl PythonEcho {
    /// The endpoint to declare in an API: `ws://ADDR`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

/// Starts `echo_peers.py MODE` (`websockets`: the library's own server; `drop-on-close`: one
/// that answers a client's close by dropping TCP) and waits for the port it prints.
pub async fn python_echo(mode: &str) -> PythonEcho {
    let python = tool("WSGATE_PYTHON", "python3");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/echo_peers.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("{} {} starts: {err}", python.display(), script.display()));
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    let mut stdout = BufReader::new(stdout);
    within(STEP * 2, "the python echo prints its port", stdout.read_line(&mut line))
        .await
        .expect("its stdout is readable");
    let port: u16 = line.trim().parse().unwrap_or_else(|_| {
        panic!("{} {mode} printed {line:?}, not a port (is `websockets` installed in that python?)", script.display())
    });
    PythonEcho { addr: ([127, 0, 0, 1], port).into(), _child: child }
}

/// `wsgate echo` as a user runs it, serving wss:// with `tls` (certificate, key) when given;
/// killed when dropped.
pub struct EchoProcess {
    pub addr: std::net::SocketAddr,
    _child: Child,
    _stdout: BufReader<ChildStdout>,
}

pub async fn echo_process(tls: Option<(&Path, &Path)>) -> EchoProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsgate"));
    command.args(["echo", "--listen", "127.0.0.1:0"]);
    if let Some((cert, key)) = tls {
        command.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("wsgate echo starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut line = String::new();
    within(STEP, "wsgate echo prints its address", stdout.read_line(&mut line)).await.expect("stdout is readable");
    let addr = line
        .trim()
        .strip_prefix("wsgate: echo listening on ")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("wsgate echo printed {line:?} instead of its address"));
    EchoProcess { addr, _child: child, _stdout: stdout }
}

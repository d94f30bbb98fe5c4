//! What the browser test needs around it: the tools (node, Chromium, playwright-core, wscat),
//! a `wsgate serve` process with every listener on `127.0.0.1:0`, and the script's answer.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::harness::process::{TempDir, tool};
use crate::harness::{STEP, within};

/// The admin's password in the served store.
pub const ADMIN_PASSWORD: &str = "portal-admin-password";

/// The repository's root (the browser script and `.tools/` live there).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root exists")
}

/// The tools the browser test runs, each checked before anything starts.
pub struct Tools {
    pub node: PathBuf,
    pub chromium: PathBuf,
    pub node_modules: PathBuf,
}

impl Tools {
    /// Finds every tool or fails the test naming the missing one (never skips).
    pub fn find() -> Tools {
        let chromium = std::env::var_os("WSGATE_CHROMIUM")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
        assert!(
            chromium.is_file(),
            "Chromium is not installed at {} (set WSGATE_CHROMIUM); run ./scripts/test, which installs it",
            chromium.display()
        );
        let node_modules = std::env::var_os("WSGATE_E2E_NODE_MODULES")
            .filter(|p| !p.is_empty())
            .map_or_else(|| repo_root().join(".tools/e2e/node_modules"), PathBuf::from);
        assert!(
            node_modules.join("playwright-core/package.json").is_file(),
            "playwright-core is not installed in {} (set WSGATE_E2E_NODE_MODULES); run ./scripts/test, which installs it",
            node_modules.display()
        );
        // wscat runs after the browser; checked now so that a missing one fails at once.
        tool("WSGATE_WSCAT", "wscat");
        Tools { node: tool("WSGATE_NODE", "node"), chromium, node_modules }
    }
}

/// A `wsgate serve` process and the addresses it printed.
pub struct Served {
    pub ws: String,
    pub wss: String,
    pub control: String,
    /// Where its log goes; shown when the test fails.
    pub log: PathBuf,
    _child: Child,
    _stdout: BufReader<ChildStdout>,
}

impl Served {
    /// Starts `wsgate serve` over a fresh data directory in `dir`, every listener on
    /// `127.0.0.1:0`, with `config` as its config file.
    pub async fn start(dir: &TempDir, config: &str) -> Served {
        Served::start_with(dir, config, true).await
    }

    /// Like [`Served::start`]; without `ws` the plain listener is off (`ws` is then empty).
    pub async fn start_with(dir: &TempDir, config: &str, ws_on: bool) -> Served {
        let log = dir.path().join("wsgate.log");
        let stderr = std::fs::File::create(&log).expect("the log file is created");
        let ws_listen = if ws_on { "127.0.0.1:0" } else { "off" };
        let mut child = Command::new(env!("CARGO_BIN_EXE_wsgate"))
            .args(["serve", "--ws-listen", ws_listen, "--wss-listen", "127.0.0.1:0"])
            .args(["--control-listen", "127.0.0.1:0", "--config"])
            .arg(dir.write("wsgate.toml", config))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("WSGATE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("the wsgate binary starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let (mut ws, mut wss, mut control) = (if ws_on { None } else { Some(String::new()) }, None, None);
        within(STEP * 4, "wsgate prints its three listening lines", async {
            let mut line = String::new();
            while ws.is_none() || wss.is_none() || control.is_none() {
                line.clear();
                let n = stdout.read_line(&mut line).await.expect("stdout is readable");
                assert!(n > 0, "wsgate serve exited before printing its listeners; log: {}", tail(&log));
                let line = line.trim();
                let addr = |prefix: &str| line.strip_prefix(prefix).map(str::to_string);
                ws = ws.take().or_else(|| addr("wsgate: ws listening on "));
                wss = wss.take().or_else(|| addr("wsgate: wss listening on "));
                control = control.take().or_else(|| addr("wsgate: control listening on "));
            }
        })
        .await;
        Served {
            ws: ws.filter(|addr| !addr.is_empty()).map(|addr| format!("ws://{addr}")).unwrap_or_default(),
            wss: format!("wss://{}", wss.unwrap_or_default()),
            control: format!("https://{}", control.unwrap_or_default()),
            log,
            _child: child,
            _stdout: stdout,
        }
    }
}

/// The last lines of a log file, for failure messages.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// What the browser script printed and how it ended.
pub struct Outcome {
    pub success: bool,
    pub answer: serde_json::Value,
    pub stderr: String,
}

impl Outcome {
    /// Fails the test unless the script ended well, with everything needed to see why: the
    /// step and page it failed at, its error, the screenshots, its stderr and the server's log.
    pub fn assert_ok(&self, screenshots: &Path, served: &Served) {
        let answer = &self.answer;
        assert!(
            self.success && answer["ok"] == true,
            "the browser failed at step {} ({}): {}\nscreenshots: {}\nstderr: {}\nwsgate log:\n{}",
            answer["step"],
            answer["url"],
            answer["error"].as_str().unwrap_or_default(),
            screenshots.display(),
            self.stderr,
            tail(&served.log),
        );
    }
}

/// Runs a script of `tests/e2e` with `env`, within `limit`.
pub async fn run_script(tools: &Tools, script: &str, env: &[(&str, String)], limit: Duration) -> Outcome {
    let path = repo_root().join("tests/e2e").join(script);
    let mut command = Command::new(&tools.node);
    command
        .arg(&path)
        .env("WSGATE_CHROMIUM", &tools.chromium)
        .env("WSGATE_E2E_NODE_MODULES", &tools.node_modules)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().unwrap_or_else(|err| panic!("{} runs {}: {err}", tools.node.display(), path.display()));
    let output = within(limit, "the browser script finishes", child.wait_with_output()).await.expect("its output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let last = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
    let answer = serde_json::from_str(last).unwrap_or_else(|err| {
        panic!(
            "the browser script printed no JSON answer ({err}); status {:?}\nstdout: {stdout}\nstderr: {stderr}",
            output.status
        )
    });
    Outcome { success: output.status.success(), answer, stderr }
}

/// Splits a command line as a shell would for the commands the portal prints: words separated
/// by spaces, double quotes grouping (no escapes inside them).
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut started) = (false, false);
    for c in line.chars() {
        match c {
            '"' => (quoted, started) = (!quoted, true),
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            _ => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

#[test]
fn commands_split_like_a_shell_does() {
    assert_eq!(
        shell_words(r#"wscat -c ws://h/x -H "Authorization: Bearer T""#),
        ["wscat", "-c", "ws://h/x", "-H", "Authorization: Bearer T"]
    );
    assert_eq!(shell_words(r#"wscat -c "ws://h/x?access_token=T""#), ["wscat", "-c", "ws://h/x?access_token=T"]);
}

//! Autobahn TestSuite conformance through the gateway.
//!
//! kosoku (a native runner of the Autobahn case files, installed by
//! `scripts/test`) fuzzes the echo upstream twice in one test: once directly
//! and once through a gateway route in front of it. A relay that is
//! transparent at the WebSocket level must not make any case fail, and must
//! not change any case's verdict: whatever the echo does on its own (OK,
//! NON-STRICT, INFORMATIONAL), it must still do behind the gateway.
//!
//! Cases 12.* and 13.* are left out: they exercise permessage-deflate, which
//! the echo upstream does not negotiate, so they only measure "unimplemented".
//!
//! `scripts/autobahn` runs kosoku and flattens its JSON report into
//! `verdicts.tsv` (the test crate has no JSON parser); the reports stay under
//! `target/autobahn/{direct,gateway}/` for a human to read (index.html).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wsgate::echo::EchoServer;
use wsgate_core::config::Config;
use wsgate_gateway::Gateway;

/// Families that need permessage-deflate, which the echo upstream lacks.
const EXCLUDED: &[&str] = &["12.*", "13.*"];

/// kosoku's own limit per script run. The 301 cases take ~15 s per run here
/// (debug build, 2 cores); the margin is for a CI machine whose cores are
/// busy with the other tests of this binary while 9.* relays 16 MiB messages.
const KOSOKU_TIMEOUT: Duration = Duration::from_secs(240);

/// Time allowed for the servers to drain once the runs are over.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// Most disagreeing-but-passing cases re-run before the comparison; more than this is no
/// longer timing noise.
const MAX_RERUN: usize = 12;

/// Fewer cases than this means kosoku ran a selection we did not ask for.
const MIN_CASES: usize = 290;

/// kosoku's notion of a passing case: both verdicts acceptable.
const PASSING: &[&str] = &["OK", "NON-STRICT", "INFORMATIONAL"];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    behavior: String,
    behavior_close: String,
}

impl Verdict {
    fn passed(&self) -> bool {
        PASSING.contains(&self.behavior.as_str()) && PASSING.contains(&self.behavior_close.as_str())
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.behavior, self.behavior_close)
    }
}

/// One case's outcome as scripts/autobahn reports it.
#[derive(Debug, Clone)]
struct Case {
    id: String,
    verdict: Verdict,
    /// kosoku's explanation; not compared, since it may mention timings.
    reason: String,
}

/// Case id (numerically ordered: 1.1.10 after 1.1.9) -> outcome.
type Verdicts = BTreeMap<Vec<u32>, Case>;

/// At most this many problem cases are listed in a failure message; the rest
/// are in the reports.
const MAX_LISTED: usize = 80;

fn workspace_root() -> PathBuf {
    // crates/wsgate -> the workspace root, where scripts/ and target/ live.
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir).to_path_buf()
}

fn report_root() -> PathBuf {
    // A relative CARGO_TARGET_DIR is taken from the workspace root: the test
    // runs in crates/wsgate, not where cargo was started.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    workspace_root().join(target).join("autobahn")
}

/// `WSGATE_KOSOKU` (exported by scripts/test) or `kosoku` on PATH. Missing is
/// a failure, not a skip: a silently skipped conformance suite hides bugs.
fn find_kosoku() -> PathBuf {
    if let Some(path) = std::env::var_os("WSGATE_KOSOKU").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "WSGATE_KOSOKU={} does not exist; run ./scripts/test, which installs kosoku",
            path.display()
        );
        return path;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join("kosoku")).find(|candidate| candidate.is_file())
    });
    match on_path {
        Some(path) => path,
        None => panic!(
            "kosoku (the Autobahn test runner) was not found: WSGATE_KOSOKU is unset and no \
             kosoku is on PATH; run ./scripts/test, which installs it into .tools/venv"
        ),
    }
}

fn python() -> PathBuf {
    std::env::var_os("WSGATE_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// Runs scripts/autobahn against `url`, blocking; returns the parsed verdicts. `only` limits
/// the run to these case ids (empty: the whole suite but the excluded families).
fn run_kosoku(kosoku: &Path, url: &str, outdir: &Path, only: &[String]) -> Verdicts {
    let script = workspace_root().join("scripts/autobahn");
    let mut cmd = Command::new(python());
    cmd.arg(&script)
        .arg("--kosoku")
        .arg(kosoku)
        .arg("--outdir")
        .arg(outdir)
        .arg("--timeout")
        .arg(KOSOKU_TIMEOUT.as_secs().to_string());
    for family in EXCLUDED {
        cmd.arg("-x").arg(family);
    }
    for case in only {
        cmd.arg("-i").arg(case);
    }
    cmd.arg(url).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());

    let started = Instant::now();
    let mut child =
        cmd.spawn().unwrap_or_else(|e| panic!("cannot start {} {}: {e}", python().display(), script.display()));
    // The script enforces KOSOKU_TIMEOUT on kosoku itself; this outer
    // deadline only guards against the script hanging, so the test is
    // bounded whatever happens.
    let deadline = started + KOSOKU_TIMEOUT + Duration::from_secs(30);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(None) => {
                // Best effort: the child may exit between the check and the kill.
                let _ = child.kill();
                let _ = child.wait();
                panic!("scripts/autobahn against {url} did not finish in time");
            }
            Err(e) => panic!("waiting for scripts/autobahn: {e}"),
        }
    };
    // The script prints one summary line and kosoku's chatter goes to a log
    // file, so the pipes cannot fill up while we wait above.
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    println!(
        "{} [{:.1}s]{}",
        stdout.trim_end(),
        started.elapsed().as_secs_f64(),
        if stderr.is_empty() { String::new() } else { format!("\n{}", stderr.trim_end()) }
    );
    assert!(status.success(), "scripts/autobahn against {url} failed ({status}): {}", stderr.trim_end());
    parse_verdicts(&outdir.join("verdicts.tsv"))
}

fn parse_verdicts(path: &Path) -> Verdicts {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut verdicts = Verdicts::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut fields = line.splitn(4, '\t');
        let (Some(id), Some(behavior), Some(behavior_close)) = (fields.next(), fields.next(), fields.next()) else {
            panic!("malformed line in {}: {line:?}", path.display());
        };
        let key = id.split('.').map(|part| part.parse::<u32>().unwrap_or(u32::MAX)).collect();
        let case = Case {
            id: id.to_owned(),
            verdict: Verdict { behavior: behavior.to_owned(), behavior_close: behavior_close.to_owned() },
            reason: fields.next().unwrap_or_default().to_owned(),
        };
        verdicts.insert(key, case);
    }
    verdicts
}

fn summary(verdicts: &Verdicts) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for case in verdicts.values() {
        *counts.entry(case.verdict.to_string()).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    format!("{} cases: {}", verdicts.len(), parts.join(", "))
}

fn gateway_config(echo: SocketAddr) -> Config {
    // Limits stay at their defaults: the largest Autobahn message (9.*, 16 MiB
    // in one frame) is within the default max_frame_size, and a test that
    // passes only with raised limits would not say much about the defaults.
    let toml = format!(
        r#"
[gateway]
ws_listen = "127.0.0.1:0"
# Off, or it would take the default 0.0.0.0:8099, which another gateway on the machine may hold.
wss_listen = "off"

[[apis]]
name = "Autobahn"
context = "/autobahn"
version = "1.0"
endpoints = ["ws://{echo}"]
auth = "none"
"#
    );
    match Config::from_toml(&toml) {
        Ok(config) => config,
        Err(e) => panic!("gateway config rejected: {e}\n{toml}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_verdicts_through_gateway_match_direct() {
    let kosoku = find_kosoku();
    let reports = report_root();

    let shutdown = CancellationToken::new();
    let echo = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind echo upstream");
    let echo_addr = echo.local_addr();
    let echo_task = tokio::spawn(echo.run(shutdown.clone()));

    let gateway = Gateway::bind(&gateway_config(echo_addr)).await.expect("bind gateway");
    let gateway_addr = gateway.ws_addr().expect("the config sets ws_listen, so the gateway has a ws listener");
    let gateway_task = tokio::spawn(gateway.run(shutdown.clone()));

    // One run after the other, not side by side: the 9.* cases are timed,
    // and two fuzzers on 2 cores would mostly measure each other.
    let direct_url = format!("ws://{echo_addr}/");
    let gateway_url = format!("ws://{gateway_addr}/autobahn/1.0");
    let runs = {
        let kosoku = kosoku.clone();
        let reports = reports.clone();
        tokio::task::spawn_blocking(move || {
            let mut direct = run_kosoku(&kosoku, &direct_url, &reports.join("direct"), &[]);
            let mut through = run_kosoku(&kosoku, &gateway_url, &reports.join("gateway"), &[]);
            // A few cases' verdicts depend on timing (how far a fuzzer got before the peer
            // failed the connection), and a loaded 2-core machine shifts them run to run even
            // against the echo alone. Cases that passed both ways but disagree are run once
            // more, both ways; a real difference stays a difference.
            let unsettled: Vec<String> = through
                .iter()
                .filter(|(key, g)| {
                    g.verdict.passed() && direct.get(*key).is_some_and(|d| d.verdict.passed() && d.verdict != g.verdict)
                })
                .map(|(_, g)| g.id.clone())
                .collect();
            if !unsettled.is_empty() && unsettled.len() <= MAX_RERUN {
                println!(
                    "autobahn: running {} timing-sensitive case(s) again: {}",
                    unsettled.len(),
                    unsettled.join(" ")
                );
                direct.extend(run_kosoku(&kosoku, &direct_url, &reports.join("direct-again"), &unsettled));
                through.extend(run_kosoku(&kosoku, &gateway_url, &reports.join("gateway-again"), &unsettled));
            }
            (direct, through)
        })
        .await
    };

    // Stop the servers before judging, so a failed assertion below still
    // leaves nothing running (the runtime would otherwise tear them down).
    shutdown.cancel();
    let drained = tokio::time::timeout(SHUTDOWN_TIMEOUT, async {
        let _ = gateway_task.await;
        let _ = echo_task.await;
    })
    .await;

    let (direct, through) = match runs {
        Ok(verdicts) => verdicts,
        // Re-raise the panic from the blocking task with its own message.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    assert!(drained.is_ok(), "gateway and echo did not shut down within {SHUTDOWN_TIMEOUT:?}");

    println!("autobahn direct:  {}", summary(&direct));
    println!("autobahn gateway: {}", summary(&through));

    assert!(direct.len() >= MIN_CASES, "kosoku ran only {} cases against the echo directly", direct.len());

    // One line per case that failed through the gateway or whose verdict
    // differs from the direct run, with kosoku's reason for the gateway's.
    let mut keys: Vec<&Vec<u32>> = direct.keys().chain(through.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut failing = 0;
    let mut differing = 0;
    let mut lines = Vec::new();
    for key in keys {
        let (d, g) = (direct.get(key), through.get(key));
        let fails = g.is_none_or(|g| !g.verdict.passed());
        let differs = match (d, g) {
            (Some(d), Some(g)) => d.verdict != g.verdict,
            _ => true,
        };
        if !fails && !differs {
            continue;
        }
        failing += usize::from(fails);
        differing += usize::from(differs);
        let id = d.or(g).map_or("?", |c| c.id.as_str());
        let show = |c: Option<&Case>| c.map_or_else(|| "missing".to_owned(), |c| c.verdict.to_string());
        let mark = if fails { "  FAILED" } else { "" };
        let why = g.map_or("", |g| g.reason.as_str());
        lines.push(format!("  {id}: direct {} | gateway {}{mark} -- {why}", show(d), show(g)));
    }
    if lines.len() > MAX_LISTED {
        let more = lines.len() - MAX_LISTED;
        lines.truncate(MAX_LISTED);
        lines.push(format!("  ... and {more} more"));
    }

    assert!(
        lines.is_empty(),
        "Autobahn through the gateway: {failing} case(s) failed, {differing} verdict(s) differ \
         from the echo directly (verdict = behavior/behaviorClose; reports and kosoku.log under \
         {}/{{direct,gateway}}/):\n{}",
        reports.display(),
        lines.join("\n"),
    );
}

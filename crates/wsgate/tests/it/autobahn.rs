//! Autobahn TestSuite conformance through the gateway.
//!
//! kosoku (a native runner of the Autobahn case files, installed by
//! `scripts/test`) fuzzes three echo upstreams, each twice: once directly and
//! once through a gateway route in front of it. The echoes are the project's
//! own (tokio-tungstenite), python `websockets`' server, and the same library
//! driven to answer a client's close by dropping TCP, as many servers in the
//! wild do (`fixtures/echo_peers.py`). A relay that is transparent at the
//! WebSocket level must not change any case's verdict: whatever an echo does
//! on its own (OK, NON-STRICT, INFORMATIONAL, or even a failure of its own),
//! it must still do behind the gateway.
//!
//! Two differences are improvements, not changes, and are accepted (and
//! listed): when an echo drops TCP instead of answering the client's close,
//! kosoku alone sees an UNCLEAN close, while the gateway finishes the close
//! handshake for it (a close without a code, valid as the answer to any
//! close), which kosoku grades OK; and when kosoku sends a message and a
//! broken frame in one write, an echo reading both at once may fail the
//! connection before it echoes the message (NON-STRICT), while through the
//! gateway the message may arrive first and its echo come back (OK). A case
//! worse through the gateway is never accepted, except a timing-dependent
//! verdict that the echo also gets on its own in one of the runs, and OK
//! against NON-STRICT in the families where that is the echo's own race (see
//! [`RACING_FAMILIES`]).
//!
//! Cases 12.* and 13.* are left out: they exercise permessage-deflate, which
//! the echo upstreams do not negotiate, so they only measure "unimplemented".
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

use crate::harness::process::python_echo;

/// Families that need permessage-deflate, which the echo upstream lacks.
const EXCLUDED: &[&str] = &["12.*", "13.*"];

/// kosoku's own limit per script run. The 301 cases take ~15 s per run here
/// (debug build, 2 cores); the margin is for a CI machine whose cores are
/// busy with the other tests of this binary while 9.* relays 16 MiB messages.
const KOSOKU_TIMEOUT: Duration = Duration::from_secs(240);

/// Time allowed for the servers to drain once the runs are over.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// Most disagreeing cases re-run before the comparison; more than this is no longer timing
/// noise.
const MAX_RERUN: usize = 12;

/// How many more times a disagreeing case runs, each way.
const RERUNS: usize = 2;

/// Families whose cases send a message and then a frame that fails the connection (a
/// reserved bit or opcode). The strict outcome is the message's echo, then the close (OK);
/// Autobahn also passes the close alone (NON-STRICT), since the echo races the failure. The
/// race is the echo's own: python `websockets` answers a close as soon as it reads it, while
/// its handler may not have sent the echo yet, and flips between the two run to run even
/// alone. Through the gateway the close reaches it sooner (the gateway fails the connection
/// at the bad frame's first byte, before its octet-wise rest has trickled in), which moves
/// the odds, not the behaviour: both verdicts are taken as one here, in either direction.
/// Anything else (FAILED, a close code, UNCLEAN) is still compared.
const RACING_FAMILIES: &[&str] = &["3.", "4."];

/// Fewer cases than this means kosoku ran a selection we did not ask for.
const MIN_CASES: usize = 290;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    behavior: String,
    behavior_close: String,
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

/// Case id -> every outcome seen for it, one per run.
type Seen = BTreeMap<Vec<u32>, Vec<Case>>;

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

fn gateway_config(echoes: &[(&str, SocketAddr)]) -> Config {
    // Limits stay at their defaults: the largest Autobahn message (9.*, 16 MiB
    // in one frame) is within the default max_frame_size, and a test that
    // passes only with raised limits would not say much about the defaults.
    // The wss listener is off, or it would take the default 0.0.0.0:8099, which another
    // gateway on the machine may hold.
    let mut toml = String::from("[gateway]\nws_listen = \"127.0.0.1:0\"\nwss_listen = \"off\"\n");
    for (name, addr) in echoes {
        toml.push_str(&format!(
            "\n[[apis]]\nname = \"Autobahn-{name}\"\ncontext = \"/autobahn/{name}\"\nversion = \"1.0\"\n\
             endpoints = [\"ws://{addr}\"]\nauth = \"none\"\n"
        ));
    }
    match Config::from_toml(&toml) {
        Ok(config) => config,
        Err(e) => panic!("gateway config rejected: {e}\n{toml}"),
    }
}

/// Whether the gateway's outcome for a case is one the echo also has on its own, or better.
fn agrees(direct: &[Case], through: &[Case]) -> bool {
    through
        .iter()
        .any(|g| direct.iter().any(|d| d.verdict == g.verdict || improves(&d.verdict, &g.verdict) || races(d, g)))
}

/// The two outcomes differ only by who won the race [`RACING_FAMILIES`] describes.
fn races(direct: &Case, through: &Case) -> bool {
    let passes = |behavior: &str| behavior == "OK" || behavior == "NON-STRICT";
    RACING_FAMILIES.iter().any(|family| direct.id.starts_with(family))
        && passes(&direct.verdict.behavior)
        && passes(&through.verdict.behavior)
        && direct.verdict.behavior_close == through.verdict.behavior_close
}

/// The gateway's verdict is the echo's with one or both of the improvements the module's
/// comment describes: a message echoed before the failure (NON-STRICT to OK), a dropped close
/// answered (UNCLEAN to OK).
fn improves(direct: &Verdict, through: &Verdict) -> bool {
    let as_good = |d: &str, g: &str, worse: &str| d == g || (d == worse && g == "OK");
    direct != through
        && as_good(&direct.behavior, &through.behavior, "NON-STRICT")
        && as_good(&direct.behavior_close, &through.behavior_close, "UNCLEAN")
}

fn seen(verdicts: Verdicts) -> Seen {
    verdicts.into_iter().map(|(key, case)| (key, vec![case])).collect()
}

fn add(seen: &mut Seen, verdicts: Verdicts) {
    for (key, case) in verdicts {
        seen.entry(key).or_default().push(case);
    }
}

/// Both runs for one echo, plus re-runs of the cases they disagree on: a few cases' verdicts
/// depend on timing (how far a fuzzer got before the peer failed the connection, whether a
/// message and the close after it reached the echo in one read), and a loaded 2-core machine
/// shifts them run to run even against the echo alone. A real difference stays a difference.
fn runs_for(kosoku: &Path, reports: &Path, name: &str, direct_url: &str, gateway_url: &str) -> (Seen, Seen) {
    let dir = reports.join(name);
    // An earlier run's re-run reports would read as this run's; missing is fine.
    let _ = std::fs::remove_dir_all(&dir);
    let mut direct = seen(run_kosoku(kosoku, direct_url, &dir.join("direct"), &[]));
    let mut through = seen(run_kosoku(kosoku, gateway_url, &dir.join("gateway"), &[]));
    for round in 1..=RERUNS {
        let unsettled: Vec<String> = through
            .iter()
            .filter(|(key, g)| direct.get(*key).is_some_and(|d| !agrees(d, g)))
            .map(|(_, g)| g[0].id.clone())
            .collect();
        if unsettled.is_empty() || unsettled.len() > MAX_RERUN {
            break;
        }
        println!("autobahn {name}: running {} disagreeing case(s) again: {}", unsettled.len(), unsettled.join(" "));
        add(&mut direct, run_kosoku(kosoku, direct_url, &dir.join(format!("direct-again-{round}")), &unsettled));
        add(&mut through, run_kosoku(kosoku, gateway_url, &dir.join(format!("gateway-again-{round}")), &unsettled));
    }
    (direct, through)
}

/// A count and the first few case ids.
fn listing(ids: &[String]) -> String {
    const SHOWN: usize = 12;
    let more = if ids.len() > SHOWN { " …" } else { "" };
    format!("{} case(s) {}{more}", ids.len(), ids[..ids.len().min(SHOWN)].join(" "))
}

/// One line per case whose outcome through the gateway is not one the echo has alone.
fn disagreements(name: &str, direct: &Seen, through: &Seen) -> Vec<String> {
    let mut keys: Vec<&Vec<u32>> = direct.keys().chain(through.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |cases: Option<&Vec<Case>>| {
        cases.map_or_else(
            || "missing".to_owned(),
            |cases| cases.iter().map(|c| c.verdict.to_string()).collect::<Vec<_>>().join(", "),
        )
    };
    let mut lines = Vec::new();
    let (mut improved, mut raced) = (Vec::new(), Vec::new());
    for key in keys {
        let (d, g) = (direct.get(key), through.get(key));
        if let (Some(d), Some(g)) = (d, g)
            && agrees(d, g)
        {
            let any = |test: fn(&Case, &Case) -> bool| g.iter().any(|g| d.iter().any(|d| test(d, g)));
            if !any(|d, g| d.verdict == g.verdict) {
                let id = g[0].id.clone();
                if any(|d, g| improves(&d.verdict, &g.verdict)) { improved.push(id) } else { raced.push(id) }
            }
            continue;
        }
        let id = d.or(g).map_or("?", |c| c[0].id.as_str());
        let why = g.and_then(|g| g.last()).map_or("", |g| g.reason.as_str());
        lines.push(format!("  {name} {id}: direct {} | gateway {} -- {why}", show(d), show(g)));
    }
    println!("autobahn {name}: better through the gateway than directly: {}", listing(&improved));
    println!("autobahn {name}: the echo's race won the other way through the gateway: {}", listing(&raced));
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_verdicts_through_gateway_match_direct_for_three_echoes() {
    let kosoku = find_kosoku();
    let reports = report_root();

    let shutdown = CancellationToken::new();
    let echo = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind echo upstream");
    let echo_addr = echo.local_addr();
    let echo_task = tokio::spawn(echo.run(shutdown.clone()));
    let websockets = python_echo("websockets").await;
    let drop_on_close = python_echo("drop-on-close").await;
    let echoes = [("tungstenite", echo_addr), ("websockets", websockets.addr), ("drop-on-close", drop_on_close.addr)];

    let gateway = Gateway::bind(&gateway_config(&echoes)).await.expect("bind gateway");
    let gateway_addr = gateway.ws_addr().expect("the config sets ws_listen, so the gateway has a ws listener");
    let gateway_task = tokio::spawn(gateway.run(shutdown.clone()));

    // One run after the other, not side by side: the 9.* cases are timed,
    // and two fuzzers on 2 cores would mostly measure each other.
    let runs = {
        let kosoku = kosoku.clone();
        let reports = reports.clone();
        tokio::task::spawn_blocking(move || {
            echoes.map(|(name, addr)| {
                let (direct, through) = runs_for(
                    &kosoku,
                    &reports,
                    name,
                    &format!("ws://{addr}/"),
                    &format!("ws://{gateway_addr}/autobahn/{name}/1.0"),
                );
                (name, direct, through)
            })
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
    drop((websockets, drop_on_close));

    let runs = match runs {
        Ok(runs) => runs,
        // Re-raise the panic from the blocking task with its own message.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    assert!(drained.is_ok(), "gateway and echo did not shut down within {SHUTDOWN_TIMEOUT:?}");

    let mut lines = Vec::new();
    for (name, direct, through) in &runs {
        let first = |seen: &Seen| seen.iter().map(|(k, cases)| (k.clone(), cases[0].clone())).collect::<Verdicts>();
        println!("autobahn {name} direct:  {}", summary(&first(direct)));
        println!("autobahn {name} gateway: {}", summary(&first(through)));
        assert!(direct.len() >= MIN_CASES, "kosoku ran only {} cases against the {name} echo directly", direct.len());
        lines.extend(disagreements(name, direct, through));
    }
    let differing = lines.len();
    if lines.len() > MAX_LISTED {
        let more = lines.len() - MAX_LISTED;
        lines.truncate(MAX_LISTED);
        lines.push(format!("  ... and {more} more"));
    }
    assert!(
        lines.is_empty(),
        "Autobahn through the gateway: {differing} case(s) whose verdict (behavior/behaviorClose) is \
         not one the echo has on its own (reports and kosoku.log under {}/<echo>/):\n{}",
        reports.display(),
        lines.join("\n"),
    );
}

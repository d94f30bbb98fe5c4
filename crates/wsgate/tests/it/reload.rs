//! Config reload on a real `wsgate serve` while clients keep connecting: SIGHUP (and
//! `--watch-config` without it) applies the file's added, changed and removed APIs to new
//! handshakes at once; a changed API's live connection goes on, a removed API's gets 1001 after
//! `reload_grace`; a broken file changes nothing and is named in one log line; not one
//! handshake to the API that stays fails meanwhile.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::harness::gateway::{Api, GatewayBuilder};
use crate::harness::process::{Node, TempDir, hang_up, http_get, serve_node, terminate};
use crate::harness::{Client, STEP, api, echo_upstream, gateway, within};

/// How many times each client loop connects at most, so a loop ends on its own.
const MAX_ROUNDS: usize = 2_000;

/// The config with `apis`, a short reload grace, `extra` `[gateway]` settings and a metrics
/// listener.
fn config_with(apis: &[&Api], extra: &[(&'static str, &str)]) -> String {
    let mut builder: GatewayBuilder = gateway().setting("reload_grace", "\"1s\"");
    for (key, value) in extra {
        builder = builder.setting(key, value);
    }
    apis.iter().map(|api| (*api).clone()).fold(builder, GatewayBuilder::api).toml()
        + "\n[observability]\nmetrics_listen = \"127.0.0.1:0\"\n"
}

/// The status a refused upgrade got, or `None` if it was upgraded.
async fn refusal(url: &str, headers: &[(&str, &str)]) -> Option<u16> {
    match Client::try_connect_with(url, headers).await {
        Ok(mut client) => {
            client.close_with(1000).await;
            client.finish().await;
            None
        }
        Err(WsError::Http(response)) => Some(response.status().as_u16()),
        Err(err) => panic!("the upgrade to {url} failed without an HTTP answer: {err}"),
    }
}

/// Polls `url` until its upgrade is refused with `status` (`None`: upgraded); returns how long
/// that took from `since`.
async fn until_answer(url: &str, headers: &[(&str, &str)], status: Option<u16>, since: Instant) -> Duration {
    within(STEP, &format!("{url} answers {status:?}"), async {
        while refusal(url, headers).await != status {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        since.elapsed()
    })
    .await
}

/// The lines of the log that contain `text`.
fn log_lines(log: &Path, text: &str) -> Vec<String> {
    let log = std::fs::read_to_string(log).expect("the log is readable");
    log.lines().filter(|line| line.contains(text)).map(str::to_string).collect()
}

/// Waits until the log has `count` lines containing `text`, and returns them.
async fn until_logged(log: &Path, text: &str, count: usize) -> Vec<String> {
    within(STEP, &format!("the log has {count} line(s) with `{text}`"), async {
        loop {
            let lines = log_lines(log, text);
            if lines.len() >= count {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// `loops` clients that connect to `url`, echo one message and close, over and over until
/// `stop` (or `MAX_ROUNDS` each): how many rounds went through, and every failed handshake.
fn clients_in_a_loop(
    url: String,
    loops: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..loops {
            let (url, stop) = (url.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let (mut rounds, mut failures) = (0, Vec::new());
                while !stop.load(Ordering::Relaxed) && rounds < MAX_ROUNDS {
                    match Client::try_connect_with(&url, &[]).await {
                        Ok(mut client) => {
                            client.echoes(Message::text(format!("round {rounds}"))).await;
                            client.close_with(1000).await;
                            client.finish().await;
                        }
                        Err(err) => failures.push(err.to_string()),
                    }
                    rounds += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (rounds, failures)
            }));
        }
        let mut total = (0, Vec::new());
        for task in tasks {
            let (rounds, failures) = task.await.expect("a client loop finishes");
            total.0 += rounds;
            total.1.extend(failures);
        }
        total
    })
}

struct World {
    dir: TempDir,
    node: Node,
    log: PathBuf,
}

impl World {
    async fn start(label: &str, toml: &str, args: &[&str]) -> World {
        let dir = TempDir::new(label);
        let config = dir.write("wsgate.toml", toml);
        let log = dir.path().join("stderr.log");
        let node = serve_node(&config, dir.path(), &log, args).await;
        World { dir, node, log }
    }

    fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.node.ws)
    }

    /// Replaces the config file with `toml`.
    fn rewrite(&self, toml: &str) {
        self.dir.replace("wsgate.toml", toml);
    }

    async fn stop(self) {
        terminate(&self.node.child);
        let mut child = self.node.child;
        let status = within(STEP * 2, "wsgate exits", child.wait()).await.expect("exit status");
        assert!(status.success(), "wsgate exits 0, got {status:?}");
    }
}

#[tokio::test]
async fn sighup_adds_changes_and_removes_file_apis_while_clients_keep_connecting() {
    let echo = echo_upstream().await;
    let a = api("/a", "1.0", &echo.url());
    let b = api("/b", "1.0", &echo.url());
    let b_for_one_origin = b.clone().with_toml("allowed_origins = [\"https://app.example\"]");
    let world = World::start("reload-sighup", &config_with(&[&a], &[]), &[]).await;
    let (a_url, b_url) = (world.url("/a/1.0"), world.url("/b/1.0"));
    let evil = [("Origin", "https://evil.example")];
    assert_eq!(refusal(&b_url, &[]).await, Some(404), "no B before the reload");

    let stop = Arc::new(AtomicBool::new(false));
    let loops = clients_in_a_loop(a_url.clone(), 4, stop.clone());

    // Added: B takes new handshakes within a second of the signal.
    world.rewrite(&config_with(&[&a, &b], &[]));
    let signalled = Instant::now();
    hang_up(&world.node.child);
    let routed_after = until_answer(&b_url, &[], None, signalled).await;
    assert!(routed_after < Duration::from_secs(1), "B routes {routed_after:?} after SIGHUP");
    until_logged(&world.log, "config reloaded", 1).await;
    let mut live_b = Client::connect(&b_url).await;
    live_b.echoes(Message::text("B is live")).await;
    assert_eq!(refusal(&b_url, &evil).await, None, "B takes any origin so far");

    // Changed: B now takes one origin; its live connection goes on.
    world.rewrite(&config_with(&[&a, &b_for_one_origin], &[]));
    let signalled = Instant::now();
    hang_up(&world.node.child);
    let changed_after = until_answer(&b_url, &evil, Some(403), signalled).await;
    assert!(changed_after < Duration::from_secs(1), "B's change applies {changed_after:?} after SIGHUP");
    live_b.echoes(Message::text("B's live connection survives the change")).await;

    // Broken: an unknown key changes nothing, and one line names it.
    world.rewrite(&config_with(&[&a], &[("bogus_key", "1")]));
    hang_up(&world.node.child);
    let failed = until_logged(&world.log, "config reload failed", 1).await;
    assert!(failed[0].contains("bogus_key"), "the line names the key: {failed:?}");
    assert_eq!(refusal(&b_url, &[]).await, None, "B still routes");
    assert_eq!(refusal(&b_url, &evil).await, Some(403), "with its changed settings");
    live_b.echoes(Message::text("B's live connection survives the broken file")).await;

    // Removed: new handshakes get 404 at once, the live connection 1001 after the grace.
    world.rewrite(&config_with(&[&a], &[]));
    let signalled = Instant::now();
    hang_up(&world.node.child);
    let removed_after = until_answer(&b_url, &[], Some(404), signalled).await;
    assert!(removed_after < Duration::from_secs(1), "B answers 404 {removed_after:?} after SIGHUP");
    assert_eq!(live_b.expect_close_code().await, Some(1001), "B's live connection is told B went away");
    let closed_after = signalled.elapsed();
    assert!(closed_after >= Duration::from_secs(1), "only after the 1s grace, not at {closed_after:?}");
    live_b.finish().await;

    stop.store(true, Ordering::Relaxed);
    let (rounds, failures) = within(STEP * 2, "the client loops end", loops).await.expect("the loops ran");
    assert!(failures.is_empty(), "{} of {rounds} handshakes to A failed: {failures:?}", failures.len());
    assert!(rounds >= 40, "the loops kept connecting through the reloads: {rounds} rounds");
    eprintln!("reload under load: {rounds} handshakes to the API that stays, none failed");
    let reloaded = log_lines(&world.log, "config reloaded");
    assert_eq!(reloaded.len(), 3, "one line per reload that applied: {reloaded:?}");
    for (line, counts) in reloaded.iter().zip(["added=1 changed=0 removed=0", "added=0 changed=1", "removed=1"]) {
        assert!(line.contains(counts), "`{counts}` in {line}");
    }
    assert_eq!(log_lines(&world.log, "config reload failed").len(), 1, "one line for the broken file");
    let (_, metrics) = http_get(&world.node.metrics, "/metrics").await;
    for sample in
        ["wsgate_config_reloads_total{result=\"applied\"} 3", "wsgate_config_reloads_total{result=\"refused\"} 1"]
    {
        assert!(metrics.lines().any(|line| line == sample), "`{sample}` in:\n{metrics}");
    }
    world.stop().await;
}

#[tokio::test]
async fn watch_config_applies_a_changed_file_without_a_signal_and_names_settings_that_need_a_restart() {
    let echo = echo_upstream().await;
    let a = api("/a", "1.0", &echo.url());
    let b = api("/b", "1.0", &echo.url());
    let world = World::start("reload-watch", &config_with(&[&a], &[]), &["--watch-config"]).await;
    let b_url = world.url("/b/1.0");
    assert_eq!(refusal(&b_url, &[]).await, Some(404));

    world.rewrite(&config_with(&[&a, &b], &[("idle_timeout", "\"42s\"")]));
    let written = Instant::now();
    // The file is read every second.
    let routed_after = until_answer(&b_url, &[], None, written).await;
    assert!(routed_after < Duration::from_secs(3), "B routes {routed_after:?} after the file changed");
    let restart = until_logged(&world.log, "a restart is needed to apply", 1).await;
    assert!(restart[0].contains("gateway.idle_timeout"), "the line names the key: {restart:?}");
    assert!(!restart[0].contains("apis"), "APIs need no restart: {restart:?}");
    // The same content read again is no new reload.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(log_lines(&world.log, "config reloaded").len(), 1, "one reload per change");
    world.stop().await;
}

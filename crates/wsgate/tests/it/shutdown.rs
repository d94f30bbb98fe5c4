//! The real binary: SIGTERM drains live connections with close 1001 and exits
//! 0, after `shutdown_delay` during which `/readyz` says 503 and new clients are
//! still served (a second SIGTERM skips it); a bad config exits non-zero with one
//! line naming the key.

use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::process::{Node, TempDir, http_get, serve, serve_node, terminate};
use crate::harness::{Client, STEP, Script, api, check_rows, gateway, upstream, within};

#[tokio::test]
async fn sigterm_closes_live_connections_with_1001_on_both_sides_and_exits_0() {
    let recorder = upstream(Script::Echo).await;
    let dir = TempDir::new("sigterm");
    let config = gateway().shutdown_timeout("3s").api(api("/echowebsocket", "1.0", &recorder.url())).toml();
    let config = dir.write("wsgate.toml", &config);
    let mut served = serve(&config, dir.path()).await;

    let url = format!("ws://{}/echowebsocket/1.0.0", served.ws_addr);
    let mut client = Client::connect(&url).await;
    client.echoes(Message::text("before the signal")).await;

    terminate(&served.child);

    assert_eq!(client.expect_close_code().await, Some(1001), "the client is told the gateway is going away");
    client.finish().await;
    assert_eq!(recorder.next_close_code().await, Some(1001), "the upstream is told too");
    let status = within(Duration::from_secs(6), "wsgate exits within its 3s shutdown deadline", served.child.wait())
        .await
        .expect("wsgate's exit status");
    assert!(status.success(), "wsgate exits 0 after draining, got {status:?}");
}

/// The listening line is the readiness signal scripts wait for, so a SIGTERM
/// sent the moment it appears must already find the drain handler in place.
#[tokio::test]
async fn sigterm_right_after_the_listening_line_exits_0() {
    let dir = TempDir::new("sigterm-idle");
    let config = dir.write("wsgate.toml", &gateway().toml());
    let mut served = serve(&config, dir.path()).await;

    terminate(&served.child);

    let status = within(Duration::from_secs(3), "wsgate exits promptly", served.child.wait())
        .await
        .expect("wsgate's exit status");
    assert!(status.success(), "wsgate exits 0, got {status:?}");
}

/// `/readyz` on the node's metrics listener, polled until it is not 200.
async fn readyz_once_unready(node: &Node) -> (u16, String) {
    within(STEP, "readyz stops answering 200", async {
        loop {
            let (status, body) = http_get(&node.metrics, "/readyz").await;
            if status != 200 {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// A node with a metrics listener, `shutdown_delay` set, and one echo API at `/echo/1.0`.
async fn delayed_node(dir: &TempDir, echo_url: &str, delay: &str) -> (Node, std::path::PathBuf) {
    let toml = gateway()
        .shutdown_timeout("3s")
        .setting("shutdown_delay", &format!("{delay:?}"))
        .api(api("/echo", "1.0", echo_url))
        .toml()
        + "\n[observability]\nmetrics_listen = \"127.0.0.1:0\"\n";
    let config = dir.write("wsgate.toml", &toml);
    let log = dir.path().join("stderr.log");
    (serve_node(&config, dir.path(), &log, &[]).await, log)
}

#[tokio::test]
async fn sigterm_turns_readyz_503_at_once_serves_new_clients_through_the_delay_then_drains_with_1001() {
    let recorder = upstream(Script::Echo).await;
    let dir = TempDir::new("shutdown-delay");
    let delay = Duration::from_secs(2);
    let (node, log) = delayed_node(&dir, &recorder.url(), "2s").await;
    let url = format!("ws://{}/echo/1.0", node.ws);
    assert_eq!(http_get(&node.metrics, "/readyz").await.0, 200, "ready before the signal");
    let mut before = Client::connect(&url).await;
    before.echoes(Message::text("before the signal")).await;

    terminate(&node.child);
    let signalled = Instant::now();
    let (status, body) = readyz_once_unready(&node).await;
    assert_eq!((status, body.as_str()), (503, "not ready: draining\n"));
    assert!(signalled.elapsed() < Duration::from_millis(500), "503 at once, not after {:?}", signalled.elapsed());

    // The balancer has not noticed yet: a new client is still upgraded and relayed.
    let mut during = Client::connect(&url).await;
    during.echoes(Message::text("during the delay")).await;
    before.echoes(Message::text("still relayed")).await;
    assert!(signalled.elapsed() < delay, "the new client was served within the delay");

    for client in [&mut before, &mut during] {
        assert_eq!(client.expect_close_code().await, Some(1001), "told the gateway is going away");
        client.finish().await;
    }
    let closed = signalled.elapsed();
    assert!(closed >= delay, "live connections closed only after the delay, at {closed:?}");
    assert!(closed < delay + Duration::from_secs(2), "and soon after it, at {closed:?}");
    assert!(Client::try_connect_with(&url, &[]).await.is_err(), "the listeners are closed once the delay is over");
    let mut child = node.child;
    let status = within(STEP, "wsgate exits after the drain", child.wait()).await.expect("exit status");
    assert!(status.success(), "wsgate exits 0, got {status:?}");
    let log = std::fs::read_to_string(&log).expect("the log is readable");
    for phase in ["shutting down: /readyz answers 503", "listeners closed", "drained: every connection closed"] {
        assert_eq!(log.lines().filter(|l| l.contains(phase)).count(), 1, "one line for `{phase}`:\n{log}");
    }
}

#[tokio::test]
async fn a_second_sigterm_skips_the_rest_of_the_shutdown_delay() {
    let recorder = upstream(Script::Echo).await;
    let dir = TempDir::new("shutdown-delay-skip");
    let (node, _log) = delayed_node(&dir, &recorder.url(), "60s").await;
    let mut client = Client::connect(&format!("ws://{}/echo/1.0", node.ws)).await;
    client.echoes(Message::text("before the signals")).await;

    terminate(&node.child);
    assert_eq!(readyz_once_unready(&node).await.0, 503);
    client.echoes(Message::text("in the delay")).await;
    terminate(&node.child);

    assert_eq!(client.expect_close_code().await, Some(1001), "closed without waiting out 60s");
    client.finish().await;
    let mut child = node.child;
    let status = within(STEP, "wsgate exits long before 60s", child.wait()).await.expect("exit status");
    assert!(status.success(), "wsgate exits 0, got {status:?}");
}

#[tokio::test]
async fn an_invalid_config_exits_non_zero_with_one_line_naming_the_key() {
    struct Row {
        name: &'static str,
        toml: String,
        key: &'static str,
    }
    let valid = "[gateway]\nws_listen = \"127.0.0.1:0\"\nwss_listen = \"off\"\n";
    let api_with =
        |field: &str| format!("{valid}\n[[apis]]\nname = \"Bad\"\ncontext = \"/bad\"\nauth = \"none\"\n{field}\n");
    let rows = vec![
        Row {
            name: "an empty version",
            toml: api_with("version = \"\"\nendpoints = [\"ws://127.0.0.1:1\"]"),
            key: "version",
        },
        Row {
            name: "an http:// endpoint",
            toml: api_with("version = \"1.0\"\nendpoints = [\"http://x\"]"),
            key: "endpoints",
        },
        Row {
            name: "a listen address that is not IP:port",
            toml: "[gateway]\nws_listen = \"nowhere\"\nwss_listen = \"off\"\n".to_string(),
            key: "ws_listen",
        },
        Row { name: "a duration without a unit", toml: format!("{valid}idle_timeout = \"10\"\n"), key: "idle_timeout" },
    ];
    check_rows(
        rows,
        |row| row.name.to_string(),
        |row| async move {
            let dir = TempDir::new("bad-config");
            let config = dir.write("wsgate.toml", &row.toml);
            let run = Command::new(env!("CARGO_BIN_EXE_wsgate"))
                .arg("serve")
                .arg("--config")
                .arg(&config)
                .arg("--data-dir")
                .arg(dir.path())
                .kill_on_drop(true)
                .output();
            let output = within(Duration::from_secs(10), "wsgate refuses the config", run).await.expect("wsgate runs");
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stdout = String::from_utf8_lossy(&output.stdout);

            assert!(!output.status.success(), "exits non-zero; stderr: {stderr}");
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "exactly one line on stderr, got {stderr:?}");
            assert!(lines[0].contains(row.key), "the line names `{}`: {stderr:?}", row.key);
            assert!(!stdout.contains("listening"), "nothing was bound: {stdout:?}");
        },
    )
    .await;
}

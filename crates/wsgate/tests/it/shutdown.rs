//! The real binary: SIGTERM drains live connections with close 1001 and exits
//! 0; a bad config exits non-zero with one line naming the key.

use std::time::Duration;

use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::process::{TempDir, serve, terminate};
use crate::harness::{Client, Script, api, check_rows, gateway, upstream, within};

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

//! `wsgate serve` as a newcomer starts it: a port in use is one line that names the setting to
//! change (and its flag, where it has one), said before anything is written (no data directory, store or admin user); the
//! listeners can be turned off on the command line as in the config file; a node without the
//! control plane makes no admin and prints no password; a warning is printed once.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::harness::process::{TempDir, terminate};
use crate::harness::within;

/// Runs `wsgate serve ARGS` with its data in `data`, expecting it to fail at once.
async fn serve_fails(data: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .arg("serve")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = within(Duration::from_secs(20), "wsgate serve gives up", output).await.expect("wsgate runs");
    assert!(!output.status.success(), "wsgate serve {args:?} should fail");
    output
}

#[tokio::test]
async fn a_port_in_use_names_its_setting_before_anything_is_written() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let port = taken.local_addr().expect("its address").port();
    let held = format!("127.0.0.1:{port}");
    let cases = [
        (
            ["--ws-listen", held.as_str(), "--wss-listen", "off", "--control-listen", "127.0.0.1:0"],
            "gateway.ws_listen",
            "--ws-listen",
        ),
        (
            ["--ws-listen", "127.0.0.1:0", "--wss-listen", held.as_str(), "--control-listen", "off"],
            "gateway.wss_listen",
            "--wss-listen",
        ),
        (
            ["--ws-listen", "127.0.0.1:0", "--wss-listen", "off", "--control-listen", held.as_str()],
            "control.listen",
            "--control-listen",
        ),
    ];
    for (args, setting, flag) in cases {
        let dir = TempDir::new("port-in-use");
        let data = dir.path().join("data");
        let output = serve_fails(&data, &args).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{setting}: one line on stderr: {stderr}");
        let line = lines[0];
        assert!(line.starts_with("wsgate: error: cannot listen on 127.0.0.1:"), "{setting}: {line}");
        assert!(line.contains(&format!("port {port} is already in use")), "{setting}: {line}");
        assert!(line.contains(setting) && line.contains(flag), "{setting}: names the setting and flag: {line}");
        assert!(!line.contains("os error"), "{setting}: the OS error is put in words, once: {line}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.contains("password"), "{setting}: no admin was made: {stdout}");
        assert!(!data.exists(), "{setting}: nothing was written: {} exists", data.display());
    }
}

#[tokio::test]
async fn a_metrics_port_in_use_names_its_setting_and_no_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let held = taken.local_addr().expect("its address");
    let dir = TempDir::new("metrics-port-in-use");
    let config = dir.write("wsgate.toml", &format!("[observability]\nmetrics_listen = \"{held}\"\n"));
    let data = dir.path().join("data");
    let config = config.to_str().expect("a UTF-8 path");
    let args = ["--config", config, "--ws-listen", "127.0.0.1:0", "--wss-listen", "off", "--control-listen", "off"];
    let output = serve_fails(&data, &args).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.lines().find(|line| !line.trim().is_empty()).unwrap_or_default();
    assert!(line.contains(&format!("cannot listen on {held}")), "{stderr}");
    // There is no command-line flag for it: the line must not send anyone to another one's.
    assert!(line.contains("observability.metrics_listen in the config file (or \"off\")"), "{line}");
    assert!(!line.contains("--"), "no flag is named: {line}");
    assert!(!data.exists(), "nothing was written: {} exists", data.display());
}

/// Starts `wsgate serve ARGS` over `data` and returns what it printed on stdout up to the line
/// starting with `until`, then stops it.
async fn serve_until(data: &Path, args: &[&str], until: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .arg("serve")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("WSGATE_ADMIN_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("wsgate serve starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut printed = String::new();
    within(Duration::from_secs(20), &format!("wsgate prints {until:?}"), async {
        while !printed.lines().any(|line| line.starts_with(until)) {
            let n = stdout.read_line(&mut printed).await.expect("stdout is readable");
            assert!(n > 0, "wsgate exited before printing {until:?}; it printed: {printed}");
        }
    })
    .await;
    terminate(&child);
    within(Duration::from_secs(20), "wsgate stops", stdout.read_to_string(&mut printed)).await.expect("stdout");
    let _ = child.wait().await;
    printed
}

#[tokio::test]
async fn listeners_turn_off_on_the_command_line_and_without_a_control_plane_no_admin_is_made() {
    let dir = TempDir::new("listeners-off");
    let gateway_only = ["--ws-listen", "127.0.0.1:0", "--wss-listen", "off", "--control-listen", "off"];
    let printed = serve_until(dir.path(), &gateway_only, "wsgate: ws listening on ").await;
    assert!(!printed.contains("wss listening") && !printed.contains("control listening"), "{printed}");
    assert!(!printed.contains("password") && !printed.contains("admin"), "no admin without a control plane: {printed}");

    // The same store with the control plane on: the admin is made now, so none was before.
    let with_control = ["--ws-listen", "off", "--wss-listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0"];
    let printed = serve_until(dir.path(), &with_control, "wsgate: control listening on ").await;
    assert!(printed.contains("wsgate: created user admin with password "), "{printed}");

    let output = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["serve", "--ws-listen", "nowhere"])
        .output()
        .await
        .expect("wsgate runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("\"nowhere\" is not IP:PORT"), "{stderr}");
}

#[tokio::test]
async fn the_insecure_skip_verify_warning_is_printed_once() {
    let dir = TempDir::new("insecure-once");
    let config = dir.write(
        "wsgate.toml",
        "[gateway]\nws_listen = \"127.0.0.1:0\"\nwss_listen = \"off\"\n[control]\nlisten = \"127.0.0.1:0\"\n\
         [[apis]]\nname = \"Unchecked\"\ncontext = \"/unchecked\"\nversion = \"1\"\n\
         endpoints = [\"wss://127.0.0.1:1\"]\nauth = \"none\"\ninsecure_skip_verify = true\n",
    );
    let log = dir.path().join("wsgate.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("WSGATE_ADMIN_PASSWORD", "startup-test-password")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("the log file"))
        .kill_on_drop(true)
        .spawn()
        .expect("wsgate serve starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut printed = String::new();
    within(Duration::from_secs(20), "wsgate prints its control listening line", async {
        while !printed.contains("wsgate: control listening on ") {
            let n = stdout.read_line(&mut printed).await.expect("stdout is readable");
            assert!(n > 0, "wsgate exited before listening; it printed: {printed}");
        }
    })
    .await;
    // The snapshot is rebuilt at start and after changes; the warning follows the API, not them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    terminate(&child);
    let _ = within(Duration::from_secs(20), "wsgate stops", child.wait()).await;
    let text = std::fs::read_to_string(&log).expect("the log");
    let warnings = text.lines().filter(|line| line.contains("insecure_skip_verify")).count();
    assert_eq!(warnings, 1, "one warning per API:\n{text}");
}

//! The stock `wscat` from npm, invoked as the seed tutorials do, echoes through
//! the gateway.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::harness::process::tool;
use crate::harness::{api, echo_upstream, gateway, within};

#[tokio::test]
async fn wscat_round_trips_a_message_through_the_gateway() {
    let wscat = tool("WSGATE_WSCAT", "wscat");
    let echo = echo_upstream().await;
    let gw = gateway().api(api("/echowebsocket", "1.0", &echo.url())).start().await;

    // wscat quits as soon as its stdin closes, so stdin stays open (piped,
    // never written) until it has sent `hello`, waited a second and closed.
    let mut child = Command::new(&wscat)
        .args(["-c", &gw.url("/echowebsocket/1.0.0"), "-x", "hello", "-w", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("{} starts: {err}", wscat.display()));
    let stdin = child.stdin.take();
    let output = within(Duration::from_secs(20), "wscat finishes", child.wait_with_output())
        .await
        .expect("wscat's output is readable");
    drop(stdin);

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "wscat exits 0: {:?}\nstdout: {stdout}\nstderr: {stderr}", output.status);
    // With stdout not a terminal, wscat prints each incoming message alone on a
    // line (the `< ` prefix is only drawn on a terminal, and not with -x).
    assert!(
        stdout.lines().any(|line| line.trim_start_matches("< ") == "hello"),
        "wscat printed the echo of hello; stdout: {stdout:?}, stderr: {stderr:?}"
    );
}

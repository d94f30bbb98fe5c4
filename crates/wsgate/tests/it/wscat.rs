//! The stock `wscat` from npm, invoked as the seed tutorials do, echoes through
//! the gateway.

use crate::harness::{api, echo_upstream, gateway};

#[tokio::test]
async fn wscat_round_trips_a_message_through_the_gateway() {
    let echo = echo_upstream().await;
    let gw = gateway().api(api("/echowebsocket", "1.0", &echo.url())).start().await;

    let run = crate::harness::process::wscat(&["-c", &gw.url("/echowebsocket/1.0.0")], "hello").await;
    assert!(run.ok, "wscat exits 0\nstdout: {}\nstderr: {}", run.stdout, run.stderr);
    // With stdout not a terminal, wscat prints each incoming message alone on a line (the
    // `< ` prefix is only drawn on a terminal, and not with -x).
    assert!(run.received("hello"), "wscat printed the echo of hello; stdout: {:?}", run.stdout);
}

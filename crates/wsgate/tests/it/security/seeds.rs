//! The seed tutorials' three invocations of the stock `wscat`, with a token from
//! `/oauth2/token`: the header over ws, the header over wss (`-n`, the gateway's generated
//! certificate), and `?access_token=` as a browser must. A recording upstream proves what the
//! gateway sends on: the caller's identity, never the token, never a client's forged identity.

use super::world::{App, world};
use crate::harness::raw::Head;
use crate::harness::{Script, upstream};

/// Runs wscat with `args`, sends `hello`, and returns what it printed.
async fn wscat(args: &[&str]) -> String {
    let run = crate::harness::process::wscat(args, "hello").await;
    assert!(run.ok, "wscat {args:?} exits 0\nstdout: {}\nstderr: {}", run.stdout, run.stderr);
    run.stdout
}

/// Asserts the upstream saw the caller's identity and none of its credentials.
fn assert_identity_without_token(what: &str, head: &Head, app: &App, token: &str, proto: &str) {
    assert_eq!(head.target(), "/", "{what}: the access_token parameter is gone: {head:?}");
    assert_eq!(head.header("Authorization"), None, "{what}: the bearer token is the gateway's: {head:?}");
    assert!(!format!("{head:?}").contains(token), "{what}: the token appears nowhere upstream: {head:?}");
    let identity = |name: &str| -> Vec<&str> {
        head.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    };
    assert_eq!(identity("X-Wsgate-Application"), [app.name.as_str()], "{what}: {head:?}");
    assert_eq!(identity("X-Wsgate-Application-Id"), [app.id.as_str()], "{what}: {head:?}");
    assert_eq!(identity("X-Wsgate-Client-Id"), [app.client_id.as_str()], "{what}: {head:?}");
    assert_eq!(identity("X-Wsgate-Subscriber"), ["admin"], "{what}: {head:?}");
    assert_eq!(identity("X-Wsgate-Plan"), ["Gold"], "{what}: the client's own X-Wsgate-Plan is dropped: {head:?}");
    assert_eq!(head.header("X-Forwarded-Proto"), Some(proto), "{what}: {head:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_wscat_invocations_reach_the_upstream_with_identity_and_without_the_token() {
    let recording = upstream(Script::Echo).await;
    let world = world().start().await;
    let api = world.api("/echowebsocket").named("EchoWebSocket").endpoint(&recording.url()).published().await;
    let app = world.application("DefaultApplication").await;
    world.subscribe(&app, &api).await;
    let token = world.client_credentials_token(&app).await;
    // Once this opens, the gateway has the subscription; its request is not one of the seeds'.
    drop(world.connect(&api, &token).await);
    recording.next_request().await;

    let header = format!("Authorization: Bearer {token}");
    let forged = "X-Wsgate-Plan: Platinum";
    let ws = world.ws_url("/echowebsocket/1.0.0");
    let wss = world.wss_url("/echowebsocket/1.0.0");
    let query = world.ws_url(&format!("/echowebsocket/1.0.0?access_token={token}"));
    let invocations: [(&str, Vec<&str>, &str); 3] = [
        ("header over ws", vec!["-c", &ws, "-H", &header, "-H", forged], "http"),
        ("header over wss", vec!["-n", "-c", &wss, "-H", &header, "-H", forged], "https"),
        ("access_token in the query", vec!["-c", &query, "-H", forged], "http"),
    ];
    for (what, args, proto) in invocations {
        let stdout = wscat(&args).await;
        // Without a terminal, wscat prints each incoming message alone on a line.
        assert!(stdout.lines().any(|line| line.trim_start_matches("< ") == "hello"), "{what}: the echo: {stdout:?}");
        let head = recording.next_request().await;
        assert_identity_without_token(what, &head, &app, &token, proto);
    }
}

//! The seed journey, start to end, as a new user clicks it: publish EchoWebSocket in the
//! publisher, sign up in the developer portal, run the key generation wizard, copy the token,
//! and call the API with the stock wscat and from the browser's "Try it" console.

use std::time::{Duration, Instant};

use super::browser::{ADMIN_PASSWORD, Served, Tools, repo_root, run_script, shell_words};
use crate::harness::echo_upstream;
use crate::harness::process::{TempDir, WscatRun, wscat};

#[tokio::test]
async fn a_new_user_publishes_subscribes_and_invokes_through_the_portals() {
    let tools = Tools::find();
    let started = Instant::now();
    let echo = echo_upstream().await;
    let dir = TempDir::new("portal");
    let served = Served::start(&dir, "").await;
    // A second server shows what a closed sign-up looks like.
    let closed_dir = TempDir::new("portal-closed");
    let closed = Served::start(&closed_dir, "[control]\nself_signup = false\n").await;
    let screenshots = repo_root().join("target/e2e/screenshots");
    // Screenshots of an earlier run would pass for this run's. Only the journey's own: the
    // other browser tests write theirs into subfolders, perhaps at this moment.
    for entry in std::fs::read_dir(&screenshots).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|ext| ext == "png") {
            let _ = std::fs::remove_file(entry.path());
        }
    }

    let env = [
        ("WSGATE_CONTROL_URL", served.control.clone()),
        ("WSGATE_WS_URL", served.ws.clone()),
        ("WSGATE_WSS_URL", served.wss.clone()),
        ("WSGATE_ECHO_URL", echo.url()),
        ("WSGATE_ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
        ("WSGATE_CLOSED_CONTROL_URL", closed.control.clone()),
        ("WSGATE_SCREENSHOTS", screenshots.display().to_string()),
    ];
    let outcome = run_script(&tools, "portal.mjs", &env, Duration::from_secs(240)).await;
    outcome.assert_ok(&screenshots, &served);
    let answer = &outcome.answer;
    assert_eq!(answer["echoed"], "hello from the browser", "the Try it console showed the echo");

    // The token the subscriber copied, with the commands the page printed, through the gateway.
    let token = answer["token"].as_str().expect("the token copied from the page");
    let commands: Vec<&str> =
        answer["commands"].as_array().expect("commands").iter().filter_map(|c| c.as_str()).collect();
    assert_eq!(commands.len(), 3, "ws header, wss header and access_token query: {commands:?}");
    for command in &commands {
        assert!(command.contains(token), "the command carries the copied token: {command}");
        let run = run_printed(command).await;
        assert!(run.received("hello"), "`{command}` gets the echo of hello: {}, stderr: {}", run.stdout, run.stderr);
    }
    // Without the token the gateway refuses, so the echoes above were the token's doing.
    let without_token = commands[0].split(" -H ").next().expect("the command without its header");
    let run = run_printed(without_token).await;
    assert!(!run.ok && !run.received("hello"), "`{without_token}` is refused: {}", run.stdout);
    assert!(run.stderr.contains("401"), "the refusal is a 401: {}", run.stderr);

    let steps = answer["steps"].as_array().map_or(0, Vec::len);
    println!(
        "portal journey: {steps} browser steps, screenshots in {}, {:?} in all",
        screenshots.display(),
        started.elapsed()
    );
}

/// Runs a wscat command line exactly as the portal printed it (the stock wscat in place of
/// `wscat`), sending `hello`.
async fn run_printed(command: &str) -> WscatRun {
    let words = shell_words(command);
    assert_eq!(words.first().map(String::as_str), Some("wscat"), "a wscat command: {command}");
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    wscat(&args, "hello").await
}

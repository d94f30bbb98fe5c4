//! The seeds' walk-through through the command line, against the real binary: a publisher
//! creates and publishes EchoWebSocket, an application subscribes with Gold, gets keys and a
//! token, and the stock wscat talks to the API through the gateway. Then the lifecycle takes
//! it away again, and bad commands fail with one line.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::process::TempDir;
use crate::harness::{echo_upstream, within};

const ADMIN_PASSWORD: &str = "walkthrough-admin";

/// `wsgate serve` with all listeners on free ports and its data in `dir`.
struct Served {
    child: Child,
    ws: String,
    control: String,
}

async fn serve(dir: &Path) -> Served {
    let config = "[gateway]\nws_listen = \"127.0.0.1:0\"\nwss_listen = \"off\"\n[control]\nlisten = \"127.0.0.1:0\"\n";
    let config_path = dir.join("wsgate.toml");
    std::fs::write(&config_path, config).expect("config written");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .arg("--data-dir")
        .arg(dir)
        .env("WSGATE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("wsgate serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let (mut ws, mut control) = (None, None);
    within(Duration::from_secs(30), "wsgate serve prints its listeners", async {
        while ws.is_none() || control.is_none() {
            let line = lines.next_line().await.expect("stdout readable").expect("wsgate exited before listening");
            if let Some(addr) = line.strip_prefix("wsgate: ws listening on ") {
                ws = Some(addr.to_string());
            }
            if let Some(addr) = line.strip_prefix("wsgate: control listening on ") {
                control = Some(addr.to_string());
            }
        }
    })
    .await;
    // Keep reading stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Served { child, ws: ws.unwrap_or_default(), control: control.unwrap_or_default() }
}

/// What one CLI run gave.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `wsgate ARGS` as the admin against `served`, trusting the certificate in `dir`.
async fn wsgate(served: &Served, dir: &Path, args: &[&str]) -> Run {
    let port = served.control.rsplit(':').next().unwrap_or_default();
    let output = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(args)
        .arg("--server")
        .arg(format!("https://localhost:{port}"))
        .arg("--data-dir")
        .arg(dir)
        .env("WSGATE_USER", "admin")
        .env("WSGATE_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = within(Duration::from_secs(30), "the CLI finishes", output).await.expect("the CLI runs");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn ok(served: &Served, dir: &Path, args: &[&str]) -> String {
    let run = wsgate(served, dir, args).await;
    assert!(run.ok, "wsgate {args:?} succeeds; stderr: {}", run.stderr);
    run.stdout
}

/// A failing command: non-zero, one line on stderr containing `expected`.
async fn fails(served: &Served, dir: &Path, args: &[&str], expected: &str) {
    let run = wsgate(served, dir, args).await;
    assert!(!run.ok, "wsgate {args:?} fails");
    let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr for {args:?}: {:?}", run.stderr);
    assert!(lines[0].contains(expected), "{args:?}: {:?} mentions {expected:?}", lines[0]);
}

/// Runs the stock wscat against `url` with `extra` arguments: whether `hello` came back, and
/// what it printed.
async fn wscat(url: &str, extra: &[&str]) -> (bool, String) {
    let args: Vec<&str> = ["-c", url].into_iter().chain(extra.iter().copied()).collect();
    let run = crate::harness::process::wscat(&args, "hello").await;
    (run.received("hello"), run.stdout)
}

/// Tries wscat with `header` until its success equals `expected` (changes take a moment to
/// reach the gateway); returns the last outcome.
async fn wscat_eventually(url: &str, header: &str, expected: bool) -> bool {
    let mut outcome = !expected;
    for _ in 0..20 {
        outcome = wscat(url, &["-H", header]).await.0;
        if outcome == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    outcome
}

#[tokio::test]
async fn the_seed_walk_through_works_from_the_command_line() {
    let dir = TempDir::new("cli-walkthrough");
    let echo = echo_upstream().await;
    let mut served = serve(dir.path()).await;

    let created = ok(
        &served,
        dir.path(),
        &[
            "api",
            "create",
            "--name",
            "EchoWebSocket",
            "--context",
            "/echowebsocket",
            "--version",
            "1.0",
            "--endpoint",
            &echo.url(),
            "--plans",
            "Gold,Silver",
        ],
    )
    .await;
    assert!(created.contains("CREATED"), "{created}");
    assert!(ok(&served, dir.path(), &["api", "publish", "EchoWebSocket:1.0"]).await.contains("PUBLISHED"));
    let listed = ok(&served, dir.path(), &["api", "list"]).await;
    assert!(listed.contains("EchoWebSocket") && listed.contains("PUBLISHED"), "{listed}");
    // The one node, up, with the ws address it bound.
    let nodes = ok(&served, dir.path(), &["nodes"]).await;
    let lines: Vec<&str> = nodes.lines().collect();
    assert!(lines.len() == 2 && lines[0].starts_with("NAME "), "a header and one node: {nodes}");
    let words: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(words.get(1), Some(&"up"), "{nodes}");
    assert_eq!(words.get(4), Some(&served.ws.as_str()), "{nodes}");

    ok(&served, dir.path(), &["app", "create", "--name", "MyApp"]).await;
    assert!(ok(&served, dir.path(), &["app", "list"]).await.contains("MyApp"));
    ok(&served, dir.path(), &["subscribe", "--app", "MyApp", "--api", "EchoWebSocket:1.0.0", "--plan", "Gold"]).await;
    let keys = ok(&served, dir.path(), &["keys", "--app", "MyApp"]).await;
    assert!(keys.contains("client_id: ") && keys.contains("client_secret: "), "{keys}");
    let token = ok(&served, dir.path(), &["token", "--app", "MyApp"]).await;
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "`wsgate token` prints a JWT and nothing else: {token:?}");

    // Published through the control plane, reachable through the gateway within a second,
    // with the token in the header or (for browsers) in the query, as in the seeds.
    let url = format!("ws://{}/echowebsocket/1.0.0", served.ws);
    let header = format!("Authorization: Bearer {token}");
    let mut reached = false;
    for _ in 0..10 {
        if wscat(&url, &["-H", &header]).await.0 {
            reached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reached, "wscat echoes through the gateway after `api publish`");
    assert!(wscat(&format!("{url}?access_token={token}"), &[]).await.0, "the access_token query works too");
    assert!(!wscat(&url, &[]).await.0, "without a token the gateway refuses");

    // Revoked: that token no longer opens connections; a new one does, until the application's
    // tokens are all revoked.
    let revoked = ok(&served, dir.path(), &["revoke", "--token", token]).await;
    assert!(revoked.contains("revoked token"), "{revoked}");
    assert!(!wscat_eventually(&url, &header, false).await, "a revoked token is refused");
    let second = ok(&served, dir.path(), &["token", "--app", "MyApp"]).await;
    let second_header = format!("Authorization: Bearer {}", second.trim());
    assert!(wscat_eventually(&url, &second_header, true).await, "a new token works");
    ok(&served, dir.path(), &["revoke", "--app", "MyApp"]).await;
    assert!(!wscat_eventually(&url, &second_header, false).await, "revoke --app revokes the app's earlier tokens");
    let third = ok(&served, dir.path(), &["token", "--app", "MyApp"]).await;
    let third_header = format!("Authorization: Bearer {}", third.trim());
    assert!(wscat_eventually(&url, &third_header, true).await, "a token issued after revoke --app works");
    fails(&served, dir.path(), &["revoke", "--token", "not-a-token"], "not a valid access token").await;

    // Retired: new connections are refused.
    ok(&served, dir.path(), &["api", "deprecate", "EchoWebSocket:1.0"]).await;
    ok(&served, dir.path(), &["api", "retire", "EchoWebSocket:1.0"]).await;
    let mut refused = false;
    for _ in 0..20 {
        if !wscat(&url, &[]).await.0 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "a retired API takes no new connections");

    // Bad commands: one line each, non-zero.
    fails(&served, dir.path(), &["api", "publish", "Nope:1.0"], "no API Nope:1.0").await;
    fails(&served, dir.path(), &["api", "publish", "EchoWebSocket:1.0"], "RETIRED").await;
    fails(
        &served,
        dir.path(),
        &["subscribe", "--app", "MyApp", "--api", "EchoWebSocket:1.0", "--plan", "Platinum"],
        "",
    )
    .await;
    fails(&served, dir.path(), &["api", "show", "missing-colon"], "NAME:VERSION").await;
    // Empty values say what is required, not `"" must start with '/'`.
    let create = ["api", "create", "--name", "Empty", "--version", "1", "--endpoint", "ws://127.0.0.1:7"];
    let with = |extra: &[&'static str]| create.iter().chain(extra).copied().collect::<Vec<&str>>();
    fails(&served, dir.path(), &with(&["--context", ""]), "Context is required (e.g. /echowebsocket)").await;
    fails(&served, dir.path(), &with(&["--context", "/empty", "--plans", ""]), "--plans holds an empty name").await;
    fails(&served, dir.path(), &with(&["--context", "/empty", "--endpoint", ""]), "An endpoint is required").await;
    let _ = served.child.start_kill();
}

#[tokio::test]
async fn wrong_credentials_and_an_unreachable_server_fail_with_one_line() {
    let dir = TempDir::new("cli-errors");
    let served = serve(dir.path()).await;
    let port = served.control.rsplit(':').next().unwrap_or_default().to_string();
    let wrong = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["api", "list", "--server", &format!("https://localhost:{port}"), "--data-dir"])
        .arg(dir.path())
        .env("WSGATE_USER", "admin")
        .env("WSGATE_PASSWORD", "not-the-password")
        .output()
        .await
        .expect("runs");
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot sign in"), "{stderr}");

    let nowhere = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["api", "list", "--server", "https://localhost:1", "--data-dir"])
        .arg(dir.path())
        .env("WSGATE_USER", "admin")
        .env("WSGATE_PASSWORD", ADMIN_PASSWORD)
        .output()
        .await
        .expect("runs");
    assert!(!nowhere.status.success());
    let stderr = String::from_utf8_lossy(&nowhere.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot reach the control plane"), "{stderr}");
}

/// Issue 9: a publisher lists subscriptions, grants an API's scopes and blocks from the
/// command line; a token carries only what is granted.
#[tokio::test]
async fn publishers_grant_scopes_and_block_from_the_command_line() {
    let dir = TempDir::new("cli-grants");
    let echo = echo_upstream().await;
    let served = serve(dir.path()).await;
    let d = dir.path();
    let create = ["api", "create", "--name", "Chat", "--context", "/chat", "--version", "1.0", "--endpoint"];
    let mut args: Vec<&str> = create.to_vec();
    let url = echo.url();
    args.extend([url.as_str(), "--plans", "Gold", "--scopes", "chat,read", "--publish"]);
    ok(&served, d, &args).await;
    ok(&served, d, &["app", "create", "--name", "Talker"]).await;
    ok(&served, d, &["subscribe", "--app", "Talker", "--api", "Chat:1.0", "--plan", "Gold"]).await;
    fails(&served, d, &["token", "--app", "Talker", "--scope", "chat"], "not granted").await;

    let listed = ok(&served, d, &["subscription", "list", "--api", "Chat:1.0"]).await;
    let id = listed.lines().nth(1).and_then(|row| row.split_whitespace().next()).expect("a subscription row");
    assert!(listed.contains("ACTIVE"), "{listed}");
    assert!(ok(&served, d, &["subscription", "grant", id, "--scopes", "chat"]).await.contains("granted: chat"));
    fails(&served, d, &["subscription", "grant", id, "--scopes", "root"], "is not a scope of Chat 1.0").await;
    let token = ok(&served, d, &["token", "--app", "Talker", "--scope", "chat"]).await;
    assert_eq!(token.trim().split('.').count(), 3, "{token}");

    assert!(ok(&served, d, &["subscription", "block", id]).await.contains("BLOCKED"));
    assert!(ok(&served, d, &["subscription", "list"]).await.contains("BLOCKED"));
    assert!(ok(&served, d, &["subscription", "unblock", id]).await.contains("ACTIVE"));
}

#[tokio::test]
async fn plans_are_managed_and_used_from_the_command_line() {
    let dir = TempDir::new("cli-plans");
    let echo = echo_upstream().await;
    let mut served = serve(dir.path()).await;
    let created = ok(
        &served,
        dir.path(),
        &["plan", "create", "--name", "Fifty", "--messages", "50/s", "--count", "in", "--connections", "2"],
    )
    .await;
    assert!(created.contains("Fifty: 50/s messages (in, throttle), 2 connections at once"), "{created}");
    let listed = ok(&served, dir.path(), &["plan", "list"]).await;
    assert!(listed.lines().any(|l| l.starts_with("Fifty") && l.contains("50/s")), "{listed}");
    assert!(listed.lines().any(|l| l.starts_with("Gold") && l.contains("20000/min")), "{listed}");
    let updated =
        ok(&served, dir.path(), &["plan", "update", "Fifty", "--on-exceed", "close", "--connections", "none"]).await;
    assert!(updated.contains("Fifty: 50/s messages (in, close)") && !updated.contains("connections"), "{updated}");
    let shown = ok(&served, dir.path(), &["plan", "show", "Fifty"]).await;
    assert!(shown.contains("\"on_exceed\": \"close\""), "{shown}");
    fails(&served, dir.path(), &["plan", "create", "--name", "Bad", "--messages", "lots"], "is not N/PERIOD").await;
    fails(&served, dir.path(), &["plan", "update", "Fifty", "--connections", "many"], "whole number").await;

    let api = ["api", "create", "--name", "Metered", "--context", "/metered", "--version", "1", "--endpoint"];
    let endpoint = echo.url();
    let api: Vec<&str> = api.into_iter().chain([endpoint.as_str(), "--plans", "Fifty,Gold", "--publish"]).collect();
    ok(&served, dir.path(), &api).await;
    ok(&served, dir.path(), &["app", "create", "--name", "Meter"]).await;
    let subscribed =
        ok(&served, dir.path(), &["subscribe", "--app", "Meter", "--api", "Metered:1", "--plan", "Fifty"]).await;
    assert!(subscribed.contains("with Fifty"), "{subscribed}");
    fails(&served, dir.path(), &["plan", "delete", "Fifty"], "in use by API Metered 1").await;
    // The subscription's id, as the REST API lists it.
    let port = served.control.rsplit(':').next().unwrap_or_default();
    let http =
        crate::control::harness::Http::trusting(&dir.path().join("tls/cert.pem"), format!("https://127.0.0.1:{port}"));
    let admin = http.login("admin", ADMIN_PASSWORD).await;
    let subscriptions = admin.get("/api/v1/subscriptions").await.expect(200);
    let id = subscriptions[0]["id"].as_str().expect("id").to_string();
    let usage = ok(&served, dir.path(), &["subscription", "usage", &id]).await;
    assert!(usage.contains("plan Fifty") && usage.contains("messages: 0 used, 50 left of 50/s"), "{usage}");
    let moved = ok(&served, dir.path(), &["subscription", "plan", &id, "Gold"]).await;
    assert!(moved.contains("now on Gold"), "{moved}");
    fails(&served, dir.path(), &["subscription", "plan", &id, "Bronze"], "does not offer").await;
    ok(&served, dir.path(), &["plan", "create", "--name", "Spare"]).await;
    assert!(ok(&served, dir.path(), &["plan", "delete", "Spare"]).await.contains("deleted plan Spare"));
    let _ = served.child.start_kill();
}

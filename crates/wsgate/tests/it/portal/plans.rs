//! A plan changed in the developer portal reaches a live connection within a second: a client
//! keeps sending 20 messages a second on Gold while the browser (tests/e2e/plans.mjs) moves its
//! subscription to Silver (5 a second, close on exceed); the gateway then closes it with 1008.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::browser::{ADMIN_PASSWORD, Served, Tools, repo_root, run_script};
use crate::control::harness::Http;
use crate::harness::echo_upstream;
use crate::harness::process::TempDir;
use crate::plans::traffic::open;
use crate::security::socket::{attempt, eventually};
use crate::security::world::bearer;

fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

#[tokio::test]
async fn moving_a_subscription_to_silver_in_the_portal_tightens_its_live_connection() {
    let tools = Tools::find();
    let echo = echo_upstream().await;
    let dir = TempDir::new("portal-plans");
    let served = Served::start(&dir, "").await;
    let http = Http::trusting(&dir.path().join("data/tls/cert.pem"), served.control.clone());
    let admin = http.login("admin", ADMIN_PASSWORD).await;
    let silver = json!({"description": "Tight, for the test", "messages": "5/s", "count": "in", "on_exceed": "close"});
    admin.put("/api/v1/plans/Silver", silver).await.expect(200);
    let body = json!({"name": "Busy", "context": "/busy", "version": "1", "endpoints": [echo.url()],
                      "plans": ["Gold", "Silver"], "publish": true});
    let api = admin.post("/api/v1/apis", body).await.expect(201);
    let app = admin.post("/api/v1/applications", json!({"name": "Busy app"})).await.expect(201);
    let subscribe = json!({"application_id": app["id"], "api_id": api["id"], "plan": "Gold"});
    let subscription = admin.post("/api/v1/subscriptions", subscribe).await.expect(201);
    let token_path = format!("/api/v1/applications/{}/token", app["id"].as_str().expect("id"));
    let token =
        admin.post(&token_path, json!({})).await.expect(200)["access_token"].as_str().expect("token").to_string();

    // The busy client: a message every 50 ms, noting when (and how) the gateway closes it.
    let addr: std::net::SocketAddr = served.ws.trim_start_matches("ws://").parse().expect("the ws address");
    eventually("the gateway knows the API and the subscription", || async {
        match attempt(addr, "/busy/1", &bearer(&token)).await {
            (_, Some(_)) => Ok(()),
            (head, None) => Err(head.start_line),
        }
    })
    .await;
    let (mut sink, mut stream) = open(addr, "/busy/1", &token).await.split();
    let client = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(Ok(Message::Close(frame))) => return (frame.map(|f| u16::from(f.code)), epoch_ms()),
                    Some(Ok(_)) => {}
                    _ => return (None, epoch_ms()),
                },
                _ = ticker.tick() => {
                    let _ = sink.send(Message::text("busy")).await;
                }
            }
        }
    });
    // Let Gold carry some traffic first, so the usage shows it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!client.is_finished(), "Gold carries 20 messages a second");

    let screenshots = repo_root().join("target/e2e/screenshots/plans");
    let _ = std::fs::remove_dir_all(&screenshots);
    let env = [
        ("WSGATE_CONTROL_URL", served.control.clone()),
        ("WSGATE_ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
        ("WSGATE_API_ID", api["id"].as_str().expect("id").to_string()),
        ("WSGATE_SUBSCRIPTION_ID", subscription["id"].as_str().expect("id").to_string()),
        ("WSGATE_SCREENSHOTS", screenshots.display().to_string()),
    ];
    let outcome = run_script(&tools, "plans.mjs", &env, Duration::from_secs(120)).await;
    outcome.assert_ok(&screenshots, &served);
    let answer = &outcome.answer;
    let changed_at = answer["changed_at"].as_u64().expect("when the plan was changed");
    let (code, closed_at) = tokio::time::timeout(Duration::from_secs(10), client).await.expect("closed").expect("task");
    assert_eq!(code, Some(1008), "Silver closes a client over 5 messages a second");
    let after = closed_at.saturating_sub(changed_at);
    assert!(after <= 1000, "the new plan reached the live connection {after} ms after the change");
}

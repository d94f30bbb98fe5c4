//! Session analytics in the portals, in headless Chromium (tests/e2e/analytics.mjs): after a
//! known traffic pattern (3 connections of one application sending 4 messages each and reading
//! the echoes, 2 handshakes refused with a bad token), the publisher's Analytics tab shows
//! non-empty charts for the hour, day and week, with the application among the top ones, and
//! the developer portal shows the application's own usage. Screenshots stay in
//! target/e2e/screenshots/analytics.
//!
//! The records are the gateway's own (`wsgate serve` hands the analytics writer to the gateway
//! with `Gateway::set_sessions`); the test waits until the stored totals settle. Numbers are
//! checked as "at least the pattern": the probe that waits for the subscription connects too.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::browser::{ADMIN_PASSWORD, Served, Tools, repo_root, run_script};
use crate::control::harness::Http;
use crate::harness::echo_upstream;
use crate::harness::process::TempDir;
use crate::plans::traffic::open;
use crate::security::socket::{attempt, eventually};
use crate::security::world::bearer;

const CONNECTIONS: u64 = 3;
const MESSAGES: u64 = 4;
const PAYLOAD: &str = "chart me";
const REFUSED: u64 = 2;

#[tokio::test]
async fn the_publisher_sees_charts_of_real_traffic() {
    let tools = Tools::find();
    let echo = echo_upstream().await;
    let dir = TempDir::new("portal-analytics");
    let served = Served::start(&dir, "").await;
    let http = Http::trusting(&dir.path().join("data/tls/cert.pem"), served.control.clone());
    let admin = http.login("admin", ADMIN_PASSWORD).await;
    let body = json!({"name": "Charted", "context": "/charted", "version": "1", "endpoints": [echo.url()],
                      "plans": ["Gold"], "publish": true});
    let api = admin.post("/api/v1/apis", body).await.expect(201);
    let api_id = api["id"].as_str().expect("id").to_string();
    let app = admin.post("/api/v1/applications", json!({"name": "Chart app"})).await.expect(201);
    let app_id = app["id"].as_str().expect("id").to_string();
    admin
        .post("/api/v1/subscriptions", json!({"application_id": app_id, "api_id": api_id, "plan": "Gold"}))
        .await
        .expect(201);
    let token =
        admin.post(&format!("/api/v1/applications/{app_id}/token"), json!({})).await.expect(200)["access_token"]
            .as_str()
            .expect("token")
            .to_string();

    // The traffic: connections that echo, then refusals.
    let addr: std::net::SocketAddr = served.ws.trim_start_matches("ws://").parse().expect("the ws address");
    eventually("the gateway knows the API and the subscription", || async {
        match attempt(addr, "/charted/1", &bearer(&token)).await {
            (_, Some(_)) => Ok(()),
            (head, None) => Err(head.start_line),
        }
    })
    .await;
    for _ in 0..CONNECTIONS {
        let mut ws = open(addr, "/charted/1", &token).await;
        for _ in 0..MESSAGES {
            ws.send(Message::text(PAYLOAD)).await.expect("send");
            let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("an echo in time");
            assert!(matches!(echoed, Some(Ok(Message::Text(_)))), "echoed: {echoed:?}");
        }
        ws.close(None).await.expect("close");
        while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {}
    }
    for _ in 0..REFUSED {
        let (head, socket) = attempt(addr, "/charted/1", &bearer("not-a-token")).await;
        assert!(socket.is_none(), "a bad token is refused: {}", head.start_line);
    }

    // The gateway's records reach the store through the writer within a second or so: wait
    // until the totals are there and stay the same.
    let url = format!("/api/v1/apis/{api_id}/analytics?range=hour");
    let mut rest = Value::Null;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let now = admin.get(&url).await.expect(200);
        let settled = now["totals"] == rest["totals"] && now["totals"]["opened"].as_u64() >= Some(CONNECTIONS);
        rest = now;
        if settled {
            break;
        }
    }
    assert!(rest["totals"]["opened"].as_u64() >= Some(CONNECTIONS), "{rest}");
    let screenshots = repo_root().join("target/e2e/screenshots/analytics");
    let _ = std::fs::remove_dir_all(&screenshots);
    let env = [
        ("WSGATE_CONTROL_URL", served.control.clone()),
        ("WSGATE_ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
        ("WSGATE_API_ID", api_id.clone()),
        ("WSGATE_APPLICATION_ID", app_id.clone()),
        ("WSGATE_APPLICATION_NAME", "Chart app".to_string()),
        ("WSGATE_SCREENSHOTS", screenshots.display().to_string()),
    ];
    let outcome = run_script(&tools, "analytics.mjs", &env, Duration::from_secs(120)).await;
    outcome.assert_ok(&screenshots, &served);
    let answer = &outcome.answer;
    for range in ["hour", "day", "week"] {
        let seen: &Value = &answer[range];
        assert!(seen["opened"].as_u64() >= Some(CONNECTIONS), "{range}: {seen}");
        assert!(seen["refused"].as_u64() >= Some(REFUSED), "{range}: {seen}");
        assert!(seen["messages_in"].as_u64() >= Some(CONNECTIONS * MESSAGES), "{range}: {seen}");
        assert_eq!(seen["opened"], rest["totals"]["opened"], "{range}: the page shows what REST says");
        let statuses = &seen["charts"]["refusals-by-status"]["names"];
        assert!(statuses.as_array().is_some_and(|s| s.iter().any(|n| n[0] == "HTTP 401")), "{range}: {statuses}");
    }
    let application = &answer["application"];
    assert!(application["opened"].as_u64() >= Some(CONNECTIONS), "{application}");
    assert_eq!(application["refused"], 0, "refusals before authentication are nobody's");
}

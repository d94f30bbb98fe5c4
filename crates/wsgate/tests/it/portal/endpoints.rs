//! The publisher's Endpoints tab (tests/e2e/endpoints.mjs in headless Chromium) against the real
//! `wsgate serve`: after real clients made the gateway suspend an endpoint that refuses, the tab
//! shows it suspended (with the seconds left) beside the live one; it refuses a bad duration next
//! to its field, and saves timeouts, balancing and weights, the breaker, a probe and allowed
//! origins, which the REST API then reads back as stored.

use std::time::Duration;

use serde_json::json;

use super::browser::{ADMIN_PASSWORD, Served, Tools, repo_root, run_script};
use crate::control::harness::Http;
use crate::harness::echo_upstream;
use crate::harness::process::TempDir;
use crate::security::socket::{attempt, eventually};

#[tokio::test]
async fn a_publisher_edits_endpoint_settings_and_sees_endpoint_state() {
    let tools = Tools::find();
    let echo = echo_upstream().await;
    // A port nothing listens on: the endpoint that refuses.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        format!("ws://{}", listener.local_addr().expect("its address"))
    };
    let dir = TempDir::new("portal-endpoints");
    let served = Served::start(&dir, "").await;
    let http = Http::trusting(&dir.path().join("data/tls/cert.pem"), served.control.clone());
    let admin = http.login("admin", ADMIN_PASSWORD).await;
    // Keyless, so that plain clients can connect; a long cool-down, so that the suspension
    // outlasts the browser's start.
    let body = json!({"name": "Balanced", "context": "/balanced", "version": "1", "endpoints": [echo.url(), dead],
                      "plans": ["Gold"], "auth": "none", "publish": true,
                      "endpoint_settings": {"breaker": {"cool_down": "2m", "max_cool_down": "5m"}}});
    let api = admin.post("/api/v1/apis", body).await.expect(201);
    let id = api["id"].as_str().expect("id").to_string();

    // Clients connect (each reaching the live endpoint, some after a refused try of the dead
    // one) until the gateway has suspended the dead endpoint.
    let addr: std::net::SocketAddr = served.ws.trim_start_matches("ws://").parse().expect("the ws address");
    let state_of = |view: &serde_json::Value, url: &str| {
        let endpoints = view["endpoints"].as_array().cloned().unwrap_or_default();
        let found = endpoints.into_iter().find(|e| e["url"] == url);
        found.map(|e| e["state"].as_str().unwrap_or_default().to_string()).unwrap_or_default()
    };
    eventually("the gateway suspends the endpoint that refuses", || async {
        let (head, _socket) = attempt(addr, "/balanced/1", &[]).await;
        let view = admin.get(&format!("/api/v1/apis/{id}/endpoints")).await.expect(200);
        match (head.status(), state_of(&view, &echo.url()), state_of(&view, &dead)) {
            (101, live, refusing) if live == "up" && refusing == "suspended" => Ok(()),
            (status, live, refusing) => Err(format!("{status}, live {live}, dead {refusing}")),
        }
    })
    .await;

    let screenshots = repo_root().join("target/e2e/screenshots/endpoints");
    let _ = std::fs::remove_dir_all(&screenshots);
    let env = [
        ("WSGATE_CONTROL_URL", served.control.clone()),
        ("WSGATE_ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
        ("WSGATE_API_ID", id.clone()),
        ("WSGATE_LIVE_ENDPOINT", echo.url()),
        ("WSGATE_DEAD_ENDPOINT", dead.clone()),
        ("WSGATE_SCREENSHOTS", screenshots.display().to_string()),
    ];
    let outcome = run_script(&tools, "endpoints.mjs", &env, Duration::from_secs(120)).await;
    outcome.assert_ok(&screenshots, &served);

    // The page showed what the gateway knows: the live endpoint up, the other suspended.
    let answer = &outcome.answer;
    assert_eq!(answer["reported"], true, "the gateway reported the endpoints");
    assert_eq!(answer["states"][&echo.url()], "up");
    assert_eq!(answer["states"][&dead], "suspended");
    let said = answer["texts"][&dead].as_str().unwrap_or_default();
    assert!(said.starts_with("suspended, retry in ") && said.ends_with(" s"), "the seconds left are shown: {said}");
    let failures = answer["failures"][&dead].as_str().unwrap_or_default();
    assert!(failures.parse::<u32>().is_ok_and(|n| n >= 5), "the failures in a row are shown: {failures}");

    let stored = admin.get(&format!("/api/v1/apis/{id}")).await.expect(200);
    let settings = &stored["endpoint_settings"];
    assert_eq!(settings["connect_timeout"], "2s");
    assert_eq!(settings["max_lifetime"], "1h");
    assert_eq!(settings["load_balancing"], "least_connections");
    assert_eq!(settings["weights"], json!([3, 1]));
    assert_eq!(settings["breaker"]["enabled"], true);
    assert_eq!(settings["breaker"]["consecutive_failures"], 3);
    assert_eq!(settings["breaker"]["cool_down"], "15s");
    assert_eq!(settings["probe"]["kind"], "websocket");
    assert_eq!(settings["probe"]["path"], "/health");
    assert_eq!(settings["probe"]["interval"], "5s");
    assert_eq!(settings.get("idle_timeout"), None, "fields left empty keep the gateway's default");
    assert_eq!(stored["allowed_origins"], json!(["https://app.example.com", "http://localhost:3000"]));
    assert_eq!(stored["endpoints"], json!([echo.url(), dead]), "the rest of the API is unchanged");
    assert_eq!(stored["state"], "PUBLISHED");
}

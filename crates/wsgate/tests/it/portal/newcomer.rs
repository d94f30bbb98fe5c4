//! A newcomer's first hour in the portals (tests/e2e/newcomer.mjs in headless Chromium):
//! browsing the developer portal without an account, and a server where that is off; "Context
//! is required" in the publisher; the publisher moving a subscription to Silver from the API's
//! Subscriptions tab; and the "Try it" console showing the gateway's own 502 reason when the
//! upstream is down, instead of blaming the token and the certificate.

use std::time::Duration;

use serde_json::json;

use super::browser::{ADMIN_PASSWORD, Served, Tools, repo_root, run_script};
use crate::control::harness::Http;
use crate::harness::echo_upstream;
use crate::harness::process::TempDir;

#[tokio::test]
async fn a_newcomer_browses_without_an_account_and_the_console_tells_the_gateway_s_reason() {
    let tools = Tools::find();
    let dir = TempDir::new("portal-newcomer");
    let served = Served::start(&dir, "").await;
    let closed_dir = TempDir::new("portal-newcomer-closed");
    let closed = Served::start(&closed_dir, "[control]\nanonymous_browsing = false\n").await;

    // An API whose upstream is down: a port that was free a moment ago.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("its address");
    let http = Http::trusting(&dir.path().join("data/tls/cert.pem"), served.control.clone());
    let admin = http.login("admin", ADMIN_PASSWORD).await;
    let body = json!({"name": "Downstairs", "context": "/downstairs", "version": "1", "endpoints": [format!("ws://{dead}")],
                      "plans": ["Gold", "Silver"], "publish": true});
    let api = admin.post("/api/v1/apis", body).await.expect(201);
    let app = admin.post("/api/v1/applications", json!({"name": "Curious"})).await.expect(201);
    let subscribe = json!({"application_id": app["id"], "api_id": api["id"], "plan": "Gold"});
    let subscription = admin.post("/api/v1/subscriptions", subscribe).await.expect(201);
    let subscription_id = subscription["id"].as_str().expect("id").to_string();

    let screenshots = repo_root().join("target/e2e/screenshots/newcomer");
    let _ = std::fs::remove_dir_all(&screenshots);
    let env = [
        ("WSGATE_CONTROL_URL", served.control.clone()),
        ("WSGATE_ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
        ("WSGATE_API_ID", api["id"].as_str().expect("id").to_string()),
        ("WSGATE_API_NAME", "Downstairs".to_string()),
        ("WSGATE_SUBSCRIPTION_ID", subscription_id.clone()),
        ("WSGATE_CLOSED_CONTROL_URL", closed.control.clone()),
        ("WSGATE_SCREENSHOTS", screenshots.display().to_string()),
    ];
    let outcome = run_script(&tools, "newcomer.mjs", &env, Duration::from_secs(180)).await;
    outcome.assert_ok(&screenshots, &served);
    // The publisher's change reached the store, not only the page.
    let api_id = api["id"].as_str().expect("id");
    let listed = admin.get(&format!("/api/v1/subscriptions?api_id={api_id}")).await.expect(200);
    let stored = listed.as_array().and_then(|all| all.iter().find(|s| s["id"] == subscription_id.as_str()));
    assert_eq!(stored.map(|s| s["plan"].clone()), Some(json!("Silver")), "{listed}");
}

/// What the console's diagnosis answers, without a browser: the gateway's status and reason for
/// a token over the ws listener, and over the wss one (pinned to the server's own certificate)
/// on a server whose ws listener is off. A token that could bend the request is not sent.
#[tokio::test]
async fn the_console_diagnosis_reports_the_gateway_s_own_answer() {
    let echo = echo_upstream().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("its address");
    for ws_on in [true, false] {
        let dir = TempDir::new("portal-diagnosis");
        let served = Served::start_with(&dir, "", ws_on).await;
        let http = Http::trusting(&dir.path().join("data/tls/cert.pem"), served.control.clone());
        let admin = http.login("admin", ADMIN_PASSWORD).await;
        let mut ids = Vec::new();
        for (name, endpoint) in [("Up", echo.url()), ("Down", format!("ws://{dead}"))] {
            let body = json!({"name": name, "context": format!("/{name}"), "version": "1", "endpoints": [endpoint],
                              "plans": ["Gold"], "publish": true});
            ids.push(admin.post("/api/v1/apis", body).await.expect(201)["id"].as_str().expect("id").to_string());
        }
        let app = admin.post("/api/v1/applications", json!({"name": "Diagnosed"})).await.expect(201);
        for api in &ids {
            let subscribe = json!({"application_id": app["id"], "api_id": api, "plan": "Gold"});
            admin.post("/api/v1/subscriptions", subscribe).await.expect(201);
        }
        let app_id = app["id"].as_str().expect("id");
        let token = admin.post(&format!("/api/v1/applications/{app_id}/token"), json!({})).await.expect(200);
        let token = token["access_token"].as_str().expect("a token").to_string();
        let bearer = vec![("Authorization".to_string(), format!("Bearer {}", admin.token))];
        let diagnose = |api: &str, token: &str| {
            let path = format!("/devportal/apis/{api}/diagnose");
            let (http, bearer, token) = (&http, bearer.clone(), token.to_string());
            async move { http.post_form(&path, bearer, &[("token", &token)]).await.expect(200) }
        };
        let listener = if ws_on { "ws" } else { "wss" };
        // A new subscription takes a moment to reach the gateway.
        let mut up = diagnose(&ids[0], &token).await;
        for _ in 0..50 {
            if up["status"] == 101 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            up = diagnose(&ids[0], &token).await;
        }
        assert_eq!(up["status"], 101, "{listener}: the gateway takes the connection: {up}");
        let down = diagnose(&ids[1], &token).await;
        assert_eq!(down["status"], 502, "{listener}: {down}");
        assert_eq!(down["reason"], "upstream refused the connection", "{listener}: {down}");
        let forged = diagnose(&ids[1], "abc.def.ghi").await;
        assert_eq!(forged["status"], 401, "{listener}: {forged}");
        assert!(forged["reason"].as_str().is_some_and(|r| r.starts_with("invalid access token")), "{forged}");
        let bent = diagnose(&ids[1], &format!("{token}\r\nX-Injected: yes")).await;
        assert_eq!(bent["status"], 0, "{listener}: not sent: {bent}");
    }
}

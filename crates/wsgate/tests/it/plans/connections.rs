//! Connection caps and new-connection rates: refused at the handshake with 429, `Retry-After`
//! and a body naming the limit, before the upstream is contacted; a freed place is free again.

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::json;

use super::messages::subscribed_with;
use super::traffic::{CountingProxy, open, open_from, refusal_body, refused};
use crate::security::socket::{attempt, eventually};
use crate::security::world::{bearer, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cap_refuses_the_extra_one_until_a_place_frees() {
    let world = world().start().await;
    let upstream = CountingProxy::to(world.echo.url()).await;
    world.admin.post("/api/v1/plans", json!({"name": "Two", "connections": 2})).await.expect(201);
    let api = world.api("/capped").with("plans", json!(["Two"])).endpoint(&upstream.url()).published().await;
    let app = world.application("Capped").await;
    world.subscribe_with_plan(&app, &api, "Two").await;
    let token = world.token(&app).await;
    let mut first = open(world.ws_addr(), &api.path, &token).await;
    let _second = open(world.ws_addr(), &api.path, &token).await;
    let accepted_before = upstream.accepted();
    let (status, retry_after, line) = refused(world.ws_addr(), &api.path, &token).await;
    assert_eq!(status, 429, "{line}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    let (_, body) = refusal_body(world.ws_addr(), &api.path, Some(&token)).await;
    assert!(body.contains("subscription plan Two allows 2 connections at once"), "{body}");
    assert_eq!(upstream.accepted(), accepted_before, "a refused handshake never reaches the upstream");
    first.close(None).await.expect("close");
    drop(first);
    eventually("the third connects once one closed", || async {
        match attempt(world.ws_addr(), &api.path, &bearer(&token)).await {
            (_, Some(socket)) => Ok(socket),
            (head, None) => Err(head.start_line),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connection_rate_refuses_with_the_time_to_wait() {
    let world = world().start().await;
    let (api, token) =
        subscribed_with(&world, "/rated", json!({"name": "TwoAMinute", "connection_rate": "2/min"})).await;
    for _ in 0..2 {
        drop(open(world.ws_addr(), &api.path, &token).await);
    }
    let (status, retry_after, line) = refused(world.ws_addr(), &api.path, &token).await;
    assert_eq!(status, 429, "{line}");
    let wait: u64 = retry_after.expect("Retry-After").parse().expect("whole seconds");
    assert!((1..=30).contains(&wait), "one new connection every 30 s: retry after {wait}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_wide_cap_counts_every_subscriber_together() {
    let world = world().start().await;
    world.admin.post("/api/v1/plans", json!({"name": "Backend2", "connections": 2})).await.expect(201);
    let api = world.api("/shared-backend").with("api_plan", json!("Backend2")).published().await;
    let mut tokens = Vec::new();
    for name in ["first", "second", "third"] {
        let app = world.application(name).await;
        world.subscribe(&app, &api).await;
        tokens.push(world.token(&app).await);
    }
    let _a = open(world.ws_addr(), &api.path, &tokens[0]).await;
    let _b = open(world.ws_addr(), &api.path, &tokens[1]).await;
    // The third subscription reaches the gateway a moment after it is made (403 until then).
    world.until_answered(&api.path, &bearer(&tokens[2]), 429).await;
    let (status, _, _) = refused(world.ws_addr(), &api.path, &tokens[2]).await;
    assert_eq!(status, 429, "a third subscriber finds the API full");
    let (_, body) = refusal_body(world.ws_addr(), &api.path, Some(&tokens[2])).await;
    assert!(body.contains("API plan Backend2"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_api_limits_each_client_address_on_its_own() {
    let world = world().start().await;
    let plan = json!({"name": "PerAddress", "connections": 1, "messages": "5/s", "count": "in", "on_exceed": "close"});
    world.admin.post("/api/v1/plans", plan).await.expect(201);
    let api = world
        .api("/open")
        .with("auth", json!("none"))
        .with("client_plan", json!("PerAddress"))
        .published_keyless()
        .await;
    let (one, two) = ([127, 0, 0, 1].into(), [127, 0, 0, 2].into());
    let mut first = open_from(world.ws_addr(), &api.path, None, one).await;
    let (head, socket) = attempt(world.ws_addr(), &api.path, &[]).await;
    assert!(socket.is_none() && head.status() == 429, "a second connection from 127.0.0.1: {}", head.start_line);
    let other = open_from(world.ws_addr(), &api.path, None, two).await;
    // Messages count per address too: 127.0.0.2's five do not spend 127.0.0.1's.
    let flood = super::traffic::flood(other, 20, 1, Duration::from_secs(5)).await;
    assert_eq!(flood.close.as_ref().map(|c| c.0), Some(1008), "{flood:?}");
    first.send(tokio_tungstenite::tungstenite::Message::text("still mine")).await.expect("127.0.0.1 still sends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_api_takes_inline_per_address_limits() {
    let echo = crate::harness::echo_upstream().await;
    let limits = "client_limits = { connections = 1, connection_rate = \"100/min\" }";
    let api = crate::harness::api("/filed", "1", &echo.url()).with_toml(limits);
    let gateway = crate::harness::gateway().api(api).start().await;
    let _held = open_from(gateway.addr(), "/filed/1", None, [127, 0, 0, 1].into()).await;
    let (status, body) = refusal_body(gateway.addr(), "/filed/1", None).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("client address limit allows 1 connections at once"), "{body}");
    let _other = open_from(gateway.addr(), "/filed/1", None, [127, 0, 0, 3].into()).await;
}

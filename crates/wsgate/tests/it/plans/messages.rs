//! Message and byte rates: a client floods, the plan throttles (everything arrives, in order,
//! no sooner than the rate allows) or closes (1008 naming the limit, the upstream saw no more
//! than the limit plus one chunk).

use std::time::Duration;

use serde_json::{Value, json};

use super::traffic::{flood, numbered, open};
use crate::security::world::{Api, World, world};

/// A world with `plan` defined and an API offering only it; returns the API, and a token of an
/// application subscribed with it.
pub async fn subscribed_with(world: &World, context: &str, plan: Value) -> (Api, String) {
    let name = plan["name"].as_str().expect("plan name").to_string();
    world.admin.post("/api/v1/plans", plan).await.expect(201);
    let api = world.api(context).with("plans", json!([name])).published().await;
    let app = world.application(&format!("{name} app")).await;
    world.subscribe_with_plan(&app, &api, &name).await;
    let token = world.token(&app).await;
    (api, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_flood_arrives_whole_in_order_at_the_plans_rate() {
    let world = world().start().await;
    let plan = json!({"name": "Fifty", "messages": "50/s", "count": "in"});
    let (api, token) = subscribed_with(&world, "/throttled", plan).await;
    let ws = open(world.ws_addr(), &api.path, &token).await;
    let flood = flood(ws, 500, 3, Duration::from_secs(30)).await;
    assert_eq!(flood.close, None, "throttling never closes");
    let expected: Vec<String> = (0..500).map(|n| numbered(n, 3)).collect();
    assert!(flood.echoes == expected, "all 500 echoes, in order (got {})", flood.echoes.len());
    // A burst of 50, then 450 at 50/s.
    assert!(flood.took >= Duration::from_millis(8500), "500 messages at 50/s took only {:?}", flood.took);
    assert!(flood.took <= Duration::from_secs(12), "throttling is not much slower than the rate: {:?}", flood.took);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_plan_closes_both_sides_with_1008_after_the_limit() {
    let world = world().start().await;
    let plan = json!({"name": "Strict", "messages": "50/s", "count": "in", "on_exceed": "close"});
    let (api, token) = subscribed_with(&world, "/strict", plan).await;
    let ws = open(world.ws_addr(), &api.path, &token).await;
    let flood = flood(ws, 400, 3, Duration::from_secs(10)).await;
    let (code, reason) = flood.close.expect("the gateway closes the connection");
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("subscription message limit"), "the reason names the limit: {reason}");
    // The echo answers every message it got: what came back is what went upstream.
    let upstream_saw = flood.echoes.len();
    assert!((45..=54).contains(&upstream_saw), "the upstream saw {upstream_saw} messages of a 50 limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_count_both_ways_by_default() {
    let world = world().start().await;
    // 20 messages of 100 bytes and their echoes: 4000 bytes both ways, 2000 from the client.
    let both = json!({"name": "KiloBoth", "bytes": "1000/s"});
    let (api, token) = subscribed_with(&world, "/bytes-both", both).await;
    let flood_both = flood(open(world.ws_addr(), &api.path, &token).await, 20, 100, Duration::from_secs(20)).await;
    assert_eq!(flood_both.echoes.len(), 20, "{:?}", flood_both.close);
    let inbound = json!({"name": "KiloIn", "bytes": "1000/s", "count": "in"});
    let (api, token) = subscribed_with(&world, "/bytes-in", inbound).await;
    let flood_in = flood(open(world.ws_addr(), &api.path, &token).await, 20, 100, Duration::from_secs(20)).await;
    assert_eq!(flood_in.echoes.len(), 20, "{:?}", flood_in.close);
    // Both ways: a burst of 1000, then 3000 at 1000/s; inbound only: 1000, then 1000.
    assert!(flood_both.took >= Duration::from_millis(2500), "both ways took {:?}", flood_both.took);
    assert!(flood_in.took >= Duration::from_millis(700), "inbound took {:?}", flood_in.took);
    assert!(flood_in.took < flood_both.took, "{:?} vs {:?}", flood_in.took, flood_both.took);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_plan_limits_its_connections_to_every_api_together() {
    let world = world().start().await;
    world
        .admin
        .post("/api/v1/plans", json!({"name": "AppTwenty", "messages": "20/s", "count": "in"}))
        .await
        .expect(201);
    let first = world.api("/app-one").with("plans", json!(["Unlimited"])).published().await;
    let second = world.api("/app-two").with("plans", json!(["Unlimited"])).published().await;
    let app = world.application("Shared").await;
    world.subscribe_with_plan(&app, &first, "Unlimited").await;
    world.subscribe_with_plan(&app, &second, "Unlimited").await;
    world.admin.put(&format!("/api/v1/applications/{}/plan", app.id), json!({"plan": "AppTwenty"})).await.expect(200);
    let token = world.token(&app).await;
    // Waits for the gateway to see the application's plan: one message over the burst waits.
    let (one, two) =
        (open(world.ws_addr(), &first.path, &token).await, open(world.ws_addr(), &second.path, &token).await);
    let (a, b) = tokio::join!(flood(one, 30, 2, Duration::from_secs(20)), flood(two, 30, 2, Duration::from_secs(20)));
    assert_eq!((a.echoes.len(), b.echoes.len()), (30, 30));
    // 60 messages against one 20/s budget: a burst of 20, then 40 at 20/s.
    let took = a.took.max(b.took);
    assert!(took >= Duration::from_millis(1700), "60 messages under an application limit of 20/s took {took:?}");
}

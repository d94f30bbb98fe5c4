//! Plans changed under live connections, and usage read while they run.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::traffic::open;
use crate::harness::within;
use crate::security::world::world;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_subscription_to_a_tighter_plan_reaches_its_live_connection_within_a_second() {
    let world = world().start().await;
    for plan in [
        json!({"name": "Roomy", "messages": "1000/s", "count": "in", "on_exceed": "close", "connections": 5}),
        json!({"name": "Tight", "messages": "5/s", "count": "in", "on_exceed": "close"}),
    ] {
        world.admin.post("/api/v1/plans", plan).await.expect(201);
    }
    let api = world.api("/moving").with("plans", json!(["Roomy", "Tight"])).published().await;
    let app = world.application("Mover").await;
    let subscription = world.subscribe_with_plan(&app, &api, "Roomy").await;
    let token = world.token(&app).await;
    let (mut sink, mut stream) = open(world.ws_addr(), &api.path, &token).await.split();
    for n in 0..20 {
        sink.send(Message::text(n.to_string())).await.expect("send");
        let echo = within(Duration::from_secs(5), "the echo", stream.next()).await;
        assert!(matches!(echo, Some(Ok(Message::Text(_)))), "{echo:?}");
    }
    let usage = world.admin.get(&format!("/api/v1/subscriptions/{}/usage", subscription.id)).await.expect(200);
    assert_eq!(usage["plan"], "Roomy");
    assert_eq!(usage["connections"], json!({"limit": 5, "open": 1}), "{usage}");
    assert!(usage["messages"]["used"].as_u64().is_some_and(|used| used >= 20), "{usage}");

    let path = format!("/api/v1/subscriptions/{}/plan", subscription.id);
    world.admin.put(&path, json!({"plan": "Tight"})).await.expect(200);
    let moved = Instant::now();
    // Keep sending a message every 20 ms; under Tight the sixth within a second closes.
    let closed = within(Duration::from_secs(5), "the tighter plan closes the connection", async {
        let mut n = 0;
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(Ok(Message::Close(Some(frame)))) => return (u16::from(frame.code), frame.reason.to_string()),
                    Some(Ok(_)) => {}
                    other => panic!("the connection ended without a close frame: {other:?}"),
                },
                _ = tokio::time::sleep(Duration::from_millis(20)) => {
                    n += 1;
                    let _ = sink.send(Message::text(format!("after {n}"))).await;
                }
            }
        }
    })
    .await;
    assert_eq!(closed.0, 1008, "{closed:?}");
    assert!(moved.elapsed() < Duration::from_millis(1500), "the new plan took {:?} to bite", moved.elapsed());
    let usage = world.admin.get(&format!("/api/v1/subscriptions/{}/usage", subscription.id)).await.expect(200);
    assert_eq!(usage["plan"], "Tight");
    assert_eq!(usage["messages"]["limit"], "5/s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_move_their_own_subscription_but_not_out_of_a_block() {
    let world = world().start().await;
    let api = world.api("/own").published().await;
    let subscriber = world.control.user("sue", &["subscriber"]).await;
    let app = crate::security::world::create_application(&subscriber, "Sue's").await;
    let body = json!({"application_id": app.id, "api_id": api.id, "plan": "Gold"});
    let subscription = subscriber.post("/api/v1/subscriptions", body).await.expect(201);
    let id = subscription["id"].as_str().expect("id");
    let path = format!("/api/v1/subscriptions/{id}/plan");
    subscriber.put(&path, json!({"plan": "Silver"})).await.expect(200);
    subscriber.put(&path, json!({"plan": "Bronze"})).await.refused(422, "invalid_value", Some("plan"));
    world.admin.post(&format!("/api/v1/subscriptions/{id}/state"), json!({"state": "BLOCKED"})).await.expect(200);
    subscriber.put(&path, json!({"plan": "Gold"})).await.refused(403, "missing_role", None);
    let stranger = world.control.user("sam", &["subscriber"]).await;
    stranger.put(&path, json!({"plan": "Gold"})).await.refused(404, "not_found", None);
    stranger.get(&format!("/api/v1/subscriptions/{id}/usage")).await.refused(404, "not_found", None);
}

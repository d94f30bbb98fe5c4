//! Limits across three `wsgate serve` nodes on one PostgreSQL and one Redis: connection caps
//! hold exactly, a message rate holds in total (within 2% plus one lease batch per node), a
//! killed node's connections stop counting within the lease, and losing Redis keeps traffic
//! going (fail-open) or refuses new connections (fail-closed), exact again once it is back.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::traffic::{Ws, open};
use crate::control::harness::Session;
use crate::harness::cluster::{Cluster, cluster};
use crate::harness::gateway::{Echo, echo_upstream};
use crate::harness::services::OwnRedis;
use crate::security::socket::{Socket, attempt, eventually};
use crate::security::world::{bearer, create_application};

/// An API on `cluster` offering `plan`, an application subscribed with it and its token; every
/// node routes the API before this returns.
async fn limited_api(cluster: &Cluster, echo: &Echo, plan: serde_json::Value) -> (String, String, Session) {
    let admin = cluster.admin(0).await;
    let name = plan["name"].as_str().expect("name").to_string();
    admin.post("/api/v1/plans", plan).await.expect(201);
    let body = json!({"name": "Shared", "context": "/shared", "version": "1.0", "endpoints": [echo.url()],
                      "plans": [name], "publish": true});
    let api = admin.post("/api/v1/apis", body).await.expect(201);
    let app = create_application(&admin, "Everywhere").await;
    let subscribe = json!({"application_id": app.id, "api_id": api["id"], "plan": name});
    let subscription = admin.post("/api/v1/subscriptions", subscribe).await.expect(201);
    let token = admin.post(&format!("/api/v1/applications/{}/token", app.id), json!({})).await.expect(200);
    let token = token["access_token"].as_str().expect("token").to_string();
    let path = "/shared/1.0.0".to_string();
    for node in &cluster.nodes {
        eventually("every node knows the subscription", || async {
            match attempt(node.ws, &path, &bearer(&token)).await {
                (_, Some(_)) => Ok(()),
                (head, None) => Err(head.start_line),
            }
        })
        .await;
    }
    // Those probes held places for a moment: wait until every node gave them back.
    let usage = format!("/api/v1/subscriptions/{}/usage", subscription["id"].as_str().expect("id"));
    eventually("the probes' places are free again", || async {
        let open = admin.get(&usage).await.expect(200)["connections"]["open"].as_u64().unwrap_or(0);
        if open == 0 { Ok(()) } else { Err(format!("{open} open")) }
    })
    .await;
    (path, token, admin)
}

/// One upgrade on `node`: the live socket, or the status it answered instead.
async fn connect(node: SocketAddr, path: &str, token: &str) -> Result<Socket, u16> {
    match attempt(node, path, &bearer(token)).await {
        (_, Some(socket)) => Ok(socket),
        (head, None) => Err(head.status()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cap_holds_exactly_across_nodes_and_a_killed_node_frees_its_places() {
    let echo = echo_upstream().await;
    let mut cluster = cluster(3).start().await;
    let (path, token, _admin) = limited_api(&cluster, &echo, json!({"name": "Three", "connections": 3})).await;
    let (a, b, c) = (cluster.nodes[0].ws, cluster.nodes[1].ws, cluster.nodes[2].ws);
    let first = open(a, &path, &token).await;
    let _second = open(b, &path, &token).await;
    let _third = open(b, &path, &token).await;
    for node in [a, b, c] {
        let (head, _) = attempt(node, &path, &bearer(&token)).await;
        assert_eq!(head.status(), 429, "a fourth connection anywhere is refused: {}", head.start_line);
    }
    drop(first);
    let _on_c = eventually("a place freed on node 0 is free on node 2", || async {
        connect(c, &path, &token).await.map_err(|status| status.to_string())
    })
    .await;
    // Node 1 holds two places; it dies without releasing them.
    cluster.nodes[1].kill().await;
    let killed = Instant::now();
    let held = eventually("node 1's places expire with its lease (3 s)", || async {
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(connect(a, &path, &token).await.map_err(|status| status.to_string())?);
        }
        Ok(held)
    });
    let held = tokio::time::timeout(Duration::from_secs(10), held).await.expect("within 10 s");
    assert_eq!(held.len(), 2);
    assert!(killed.elapsed() >= Duration::from_secs(1), "not before the lease ran out: {:?}", killed.elapsed());
}

/// Sends as fast as the gateway takes for `seconds`, counting the echoes.
async fn spend_for(ws: Ws, seconds: Duration) -> usize {
    let (mut sink, mut stream) = ws.split();
    let deadline = tokio::time::Instant::now() + seconds;
    let writer = tokio::spawn(async move {
        while tokio::time::Instant::now() < deadline {
            if sink.send(Message::text("x")).await.is_err() {
                break;
            }
        }
    });
    let mut echoes = 0;
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, stream.next()).await {
        if message.is_text() {
            echoes += 1;
        }
    }
    writer.abort();
    echoes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_rate_holds_in_total_across_nodes() {
    let echo = echo_upstream().await;
    let cluster = cluster(3).start().await;
    let plan = json!({"name": "Hundred", "messages": "100/s", "count": "in"});
    let (path, token, _admin) = limited_api(&cluster, &echo, plan).await;
    let mut sockets = Vec::new();
    for node in &cluster.nodes {
        sockets.push(open(node.ws, &path, &token).await);
    }
    let started = Instant::now();
    let spent: Vec<usize> =
        futures_util::future::join_all(sockets.into_iter().map(|ws| spend_for(ws, Duration::from_secs(3)))).await;
    let elapsed = started.elapsed().as_secs_f64();
    let total: usize = spent.iter().sum();
    // A full bucket of 100, then 100/s; each node may hold one lease batch (4 chunks of 5).
    let allowed = 100.0 + 100.0 * elapsed;
    assert!(total as f64 <= allowed * 1.02 + 3.0 * 20.0, "{total} messages passed, {allowed:.0} allowed: {spent:?}");
    assert!(total as f64 >= allowed * 0.8, "{total} messages passed of {allowed:.0}: {spent:?}");
    assert!(spent.iter().all(|n| *n > 0), "every node got a share: {spent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_keeps_traffic_going_and_exact_counts_return_with_it() {
    let echo = echo_upstream().await;
    let mut redis = OwnRedis::start();
    let cluster = cluster(2).redis(&redis.url()).start().await;
    let (path, token, _admin) = limited_api(&cluster, &echo, json!({"name": "Two", "connections": 2})).await;
    let (a, b) = (cluster.nodes[0].ws, cluster.nodes[1].ws);
    let mut first = open(a, &path, &token).await;
    redis.kill();
    // Fail-open: the live connection goes on, and each node admits under its own count.
    first.send(Message::text("still here")).await.expect("send");
    let echo_back = tokio::time::timeout(Duration::from_secs(5), first.next()).await.expect("the echo comes");
    assert!(matches!(echo_back, Some(Ok(Message::Text(ref t))) if t.as_str() == "still here"));
    let _on_b = connect(b, &path, &token).await.expect("node 1 admits alone while Redis is down");
    let _also_b = connect(b, &path, &token).await.expect("node 1 counts only its own");
    redis.restart();
    // Back: the heartbeats put all four connections into Redis; the cap of 2 holds again.
    eventually("after Redis returns, the cap counts every node's connections", || async {
        match connect(a, &path, &token).await {
            Err(429) => Ok(()),
            Err(status) => Err(status.to_string()),
            Ok(_) => Err("admitted".to_string()),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_when_failing_closed_refuses_limited_apis_with_503() {
    let echo = echo_upstream().await;
    let mut redis = OwnRedis::start();
    let cluster = cluster(1).redis(&redis.url()).failing_closed().start().await;
    let (path, token, _admin) = limited_api(&cluster, &echo, json!({"name": "Two", "connections": 2})).await;
    let node = cluster.nodes[0].ws;
    let _first = open(node, &path, &token).await;
    redis.kill();
    let head = eventually("a limited API answers 503 while Redis is down", || async {
        let (head, _) = attempt(node, &path, &bearer(&token)).await;
        if head.status() == 503 { Ok(head) } else { Err(head.start_line) }
    })
    .await;
    assert!(head.header("retry-after").is_some(), "{head:?}");
}

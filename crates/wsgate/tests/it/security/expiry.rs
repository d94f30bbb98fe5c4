//! A token's expiry ends the connections it opened (close 4001 "token expired", as WSO2 users
//! expect), unless the API says `"close_on_token_expiry": false`. The gateway accepts a token
//! until 30 s (its clock-skew leeway) past its `exp`, and a live connection lives exactly as
//! long: a token accepted inside the leeway is not closed a moment after its 101.
//!
//! The tokens here are crafted (signed by a test key the gateway trusts) with an `exp` already
//! in the past, so that the leeway ends a few seconds into the test.

use std::time::{Duration, Instant};

use serde_json::json;

use super::hostile::valid;
use super::socket::Socket;
use super::tokens::{TestKey, claims_of, now};
use super::world::{Api, World, bearer, unix_now, world};

/// The gateway's clock-skew leeway past `exp`, in seconds.
const LEEWAY: i64 = 30;

/// A world with `api` published and a connection to it opened with a token whose leeway ends
/// `left` seconds from now. Returns the connection and the token's `exp`.
async fn connected_with_leeway_left(world: &World, api: &Api, left: i64) -> (Socket, i64) {
    let app = world.application("Skewed").await;
    world.subscribe(&app, api).await;
    let key = TestKey::generate("expiry-test-key");
    world.control.store.put_signing_key(&key.record()).await.expect("the test key is stored");
    let fresh = valid(world, &key, &app).signed_by(&key);
    world.until_answered(&api.path, &bearer(&fresh), 101).await;

    let exp = now() - LEEWAY + left;
    let skewed = valid(world, &key, &app).claim("exp", json!(exp)).signed_by(&key);
    (world.connect(api, &skewed).await, exp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_accepted_inside_the_leeway_lives_until_the_leeway_ends_then_gets_4001() {
    let world = world().start().await;
    let api = world.api("/expiring").published().await;
    let (mut socket, exp) = connected_with_leeway_left(&world, &api, 3).await;
    assert!(unix_now() > exp as f64, "the token is past its exp, inside the leeway");

    // Past `exp` already, yet the connection works: no 4001 right after the 101.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    socket.echoes("inside the leeway").await;

    let close = socket.closed_by(Instant::now() + Duration::from_secs(5)).await;
    let closed_at = unix_now();
    assert_eq!(close, (Some(4001), "token expired".to_string()));
    // `exp` is in whole seconds; the close may come up to a second after the leeway's end.
    let end = (exp + LEEWAY) as f64;
    assert!(closed_at >= end, "closed at {closed_at:.3}, before the leeway ended at {end}");
    assert!(closed_at < end + 2.0, "closed at {closed_at:.3}, well after the leeway ended at {end}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_keeps_connections_past_expiry_keeps_them() {
    let world = world().start().await;
    let api = world.api("/lasting").keeping_connections_past_token_expiry().published().await;
    let (mut socket, exp) = connected_with_leeway_left(&world, &api, 2).await;

    let wait = ((exp + LEEWAY) as f64 + 1.0 - unix_now()).max(0.0);
    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
    socket.echoes("a second after the leeway ended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_token_keeps_its_connection_through_the_leeway_past_its_exp() {
    let world = world().token_ttl(Duration::from_secs(2)).start().await;
    let api = world.api("/skewed").published().await;
    let app = world.application("ShortLived").await;
    world.subscribe(&app, &api).await;
    let token = world.token(&app).await;
    let exp = claims_of(&token)["exp"].as_i64().expect("exp");
    let mut socket = world.connect(&api, &token).await;

    // The same rule as for a new connection: the token is good until the leeway past `exp`.
    let wait = (exp as f64 + 1.0 - unix_now()).max(0.0);
    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
    socket.echoes("a second past exp, inside the leeway").await;
}

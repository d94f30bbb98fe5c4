//! A token's `exp` ends the connections it opened (close 4001 "token expired", as WSO2 users
//! expect), unless the API says `"close_on_token_expiry": false`. Tokens here live two seconds
//! (`[control] token_ttl = "2s"`).

use std::time::Duration;

use super::tokens::claims_of;
use super::world::{unix_now, world};

const TOKEN_TTL: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_connection_is_closed_with_4001_when_its_token_expires() {
    let world = world().token_ttl(TOKEN_TTL).start().await;
    let api = world.api("/expiring").published().await;
    let app = world.application("ShortLived").await;
    world.subscribe(&app, &api).await;
    let token = world.token(&app).await;
    let exp = claims_of(&token)["exp"].as_i64().expect("exp") as f64;

    let mut socket = world.connect(&api, &token).await;
    socket.echoes("before expiry").await;
    let close = socket.closed_by(std::time::Instant::now() + TOKEN_TTL + Duration::from_secs(3)).await;
    let closed_at = unix_now();
    assert_eq!(close, (Some(4001), "token expired".to_string()));
    // `exp` is in whole seconds; the close may come up to a second after it, never before.
    assert!(closed_at >= exp, "closed at {closed_at:.3}, before the token's exp {exp}");
    assert!(closed_at < exp + 2.0, "closed at {closed_at:.3}, well after the token's exp {exp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_keeps_connections_past_expiry_keeps_them() {
    let world = world().token_ttl(TOKEN_TTL).start().await;
    let api = world.api("/lasting").keeping_connections_past_token_expiry().published().await;
    let app = world.application("ShortLived").await;
    world.subscribe(&app, &api).await;
    let token = world.token(&app).await;
    let exp = claims_of(&token)["exp"].as_i64().expect("exp") as f64;

    let mut socket = world.connect(&api, &token).await;
    socket.echoes("before expiry").await;
    let wait = (exp + 1.0 - unix_now()).max(0.0);
    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
    assert!(unix_now() >= exp + 1.0);
    socket.echoes("a second after expiry").await;
}

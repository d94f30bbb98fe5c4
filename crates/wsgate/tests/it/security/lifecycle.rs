//! Which lifecycle states take connections: PUBLISHED and DEPRECATED serve their subscribers,
//! BLOCKED refuses everyone with 403, CREATED and RETIRED are not routed at all (404).
//!
//! Each step waits for an answer that only the new state gives, so the gateway is known to have
//! seen it before the next step.

use super::world::{bearer, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_published_and_deprecated_apis_take_connections() {
    let world = world().start().await;
    let api = world.api("/lifecycle").published().await;
    let app = world.application("Subscriber").await;
    world.subscribe(&app, &api).await;
    let token = world.token(&app).await;
    world.connect(&api, &token).await.echoes("published").await;

    world.move_api(&api, "BLOCKED").await;
    let blocked = world.until_answered(&api.path, &bearer(&token), 403).await;
    assert_eq!(blocked.header("WWW-Authenticate"), None, "a blocked API is no token problem: {blocked:?}");
    // Without a token too: the block is checked before the token.
    world.until_answered(&api.path, &[], 403).await;

    // BLOCKED → DEPRECATED: only the new state can turn the 403 into a 101.
    world.move_api(&api, "DEPRECATED").await;
    let mut socket = world.connect(&api, &token).await;
    socket.echoes("deprecated, still served to existing subscribers").await;

    // A CREATED API is never routed; it is created before the retirement below, so once the
    // retirement shows, the gateway has seen it too.
    let created = world.api("/drafted").created().await;
    world.move_api(&api, "RETIRED").await;
    world.until_answered(&api.path, &bearer(&token), 404).await;
    assert_eq!(world.answer(&created.path, &bearer(&token)).await.status(), 404);
    assert_eq!(world.answer(&created.path, &[]).await.status(), 404);
}

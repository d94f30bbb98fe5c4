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

/// Keyless connections are swept like token ones: blocking or retiring a keyless API made in
/// the control plane closes its live connections with 1008 within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_or_retiring_a_keyless_api_closes_its_live_connections() {
    let world = world().start().await;
    let api = world.api("/open-door").published_keyless().await;
    let open = || async {
        match super::socket::attempt(world.ws_addr(), &api.path, &[]).await {
            (_, Some(socket)) => socket,
            (head, None) => panic!("a keyless connection opens: {}", head.start_line),
        }
    };
    let mut first = open().await;
    first.echoes("before the block").await;
    world.move_api(&api, "BLOCKED").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    assert_eq!(first.closed_by(deadline).await, (Some(1008), "API blocked".to_string()));

    world.move_api(&api, "DEPRECATED").await;
    let mut second = super::socket::eventually("the deprecated API takes connections", || async {
        match super::socket::attempt(world.ws_addr(), &api.path, &[]).await {
            (_, Some(socket)) => Ok(socket),
            (head, None) => Err(head.start_line),
        }
    })
    .await;
    world.move_api(&api, "RETIRED").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    assert_eq!(second.closed_by(deadline).await, (Some(1008), "API retired or deleted".to_string()));
}

/// Changes the gateway does not read cost it nothing: a flood of sign-ups (users) rebuilds no
/// snapshot, while a change it reads (a new API) does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_do_not_rebuild_the_gateways_snapshot() {
    let world = world().start().await;
    let api = world.api("/quiet").published().await;
    let before = world.snapshots.current().generation;
    let admin = &world.admin;
    for n in 0..5 {
        let user = serde_json::json!({"name": format!("user{n}"), "password": "a long enough password", "roles": ["subscriber"]});
        admin.post("/api/v1/users", user).await.expect(201);
    }
    // The API change after the users: once the gateway has it, it has seen the users' changes.
    world.move_api(&api, "DEPRECATED").await;
    super::socket::eventually("the gateway sees the move", || async {
        let generation = world.snapshots.current().generation;
        if generation > before { Ok(generation) } else { Err(generation.to_string()) }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let after = world.snapshots.current().generation;
    assert_eq!(after, before + 1, "five users and one API move rebuilt the snapshot once, not six times");
}

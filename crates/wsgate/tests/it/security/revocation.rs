//! Taking a right away reaches the live sockets that used it within one second: each is closed
//! with 1008 and the reason, and every other socket stays up and keeps echoing.
//!
//! Every test starts from the same scene: APIs `alpha` and `beta`; application `a` subscribed
//! to both, application `b` to `alpha` only.

use std::time::{Duration, Instant};

use super::socket::Socket;
use super::tokens::claims_of;
use super::world::{Api, App, Subscription, World, bearer, world};

/// How long a revocation may take to reach a live socket.
const ONE_SECOND: Duration = Duration::from_secs(1);

struct Scene {
    world: World,
    alpha: Api,
    beta: Api,
    a: App,
    b: App,
    a_alpha: Subscription,
}

async fn scene() -> Scene {
    let world = world().start().await;
    let alpha = world.api("/alpha").published().await;
    let beta = world.api("/beta").published().await;
    let a = world.application("A").await;
    let b = world.application("B").await;
    let a_alpha = world.subscribe(&a, &alpha).await;
    world.subscribe(&a, &beta).await;
    world.subscribe(&b, &alpha).await;
    Scene { world, alpha, beta, a, b, a_alpha }
}

/// Asserts each socket gets close 1008 with `reason` before `deadline`.
async fn all_closed(sockets: &mut [&mut Socket], reason: &str, deadline: Instant) {
    for (i, socket) in sockets.iter_mut().enumerate() {
        let close = socket.closed_by(deadline).await;
        assert_eq!(close, (Some(1008), reason.to_string()), "socket {i} of those that should close");
    }
}

/// Asserts each socket still echoes.
async fn all_echo(sockets: &mut [&mut Socket]) {
    for socket in sockets.iter_mut() {
        socket.echoes("still here").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_closes_its_connections_and_no_others() {
    let Scene { world, alpha, beta, a, b, .. } = scene().await;
    let revoked = world.token(&a).await;
    let kept = world.token(&a).await;
    let mut revoked_on_alpha = world.connect(&alpha, &revoked).await;
    let mut revoked_on_beta = world.connect(&beta, &revoked).await;
    let mut kept_on_alpha = world.connect(&alpha, &kept).await;
    let mut b_on_alpha = world.connect(&alpha, &world.token(&b).await).await;

    world.revoke(&a, &revoked).await;
    let deadline = Instant::now() + ONE_SECOND;
    all_closed(&mut [&mut revoked_on_alpha, &mut revoked_on_beta], "token revoked", deadline).await;
    all_echo(&mut [&mut kept_on_alpha, &mut b_on_alpha]).await;
    assert_eq!(world.answer(&alpha.path, &bearer(&revoked)).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_every_token_of_an_application_closes_its_connections_and_no_others() {
    let Scene { world, alpha, beta, a, b, .. } = scene().await;
    let mut a_on_alpha = world.connect(&alpha, &world.token(&a).await).await;
    let mut a_on_beta = world.connect(&beta, &world.token(&a).await).await;
    let mut b_on_alpha = world.connect(&alpha, &world.token(&b).await).await;

    world.revoke_all_tokens(&a).await;
    let deadline = Instant::now() + ONE_SECOND;
    all_closed(&mut [&mut a_on_alpha, &mut a_on_beta], "token revoked", deadline).await;
    all_echo(&mut [&mut b_on_alpha]).await;
}

/// "Tokens issued afterwards are valid", the revocation says, and a script that revokes an
/// application's tokens and gets a new one at once (`wsgate revoke --app A; wsgate token --app
/// A`) relies on it. Issue times are whole seconds and the revocation covers its whole second,
/// so the endpoint answers only after that second: the next token is always issued later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issued_right_after_an_application_wide_revocation_is_valid() {
    let Scene { world, alpha, a, .. } = scene().await;
    for _ in 0..3 {
        let cutoff = world.revoke_all_tokens(&a).await;
        let fresh = world.token(&a).await;
        let issued = claims_of(&fresh)["iat"].as_i64().expect("the token has an iat");
        assert!(issued > cutoff, "the token minted after the answer is later than the cutoff ({issued} <= {cutoff})");
        let answer = world.answer(&alpha.path, &bearer(&fresh)).await;
        assert_eq!(answer.status(), 101, "a token issued after the revocation: {answer:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_a_subscription_closes_that_application_on_that_api_only() {
    let Scene { world, alpha, beta, a, b, a_alpha } = scene().await;
    let token = world.token(&a).await;
    let mut a_on_alpha = world.connect(&alpha, &token).await;
    let mut a_on_beta = world.connect(&beta, &token).await;
    let mut b_on_alpha = world.connect(&alpha, &world.token(&b).await).await;

    world.block(&a_alpha).await;
    let deadline = Instant::now() + ONE_SECOND;
    all_closed(&mut [&mut a_on_alpha], "subscription blocked", deadline).await;
    all_echo(&mut [&mut a_on_beta, &mut b_on_alpha]).await;
    assert_eq!(world.answer(&alpha.path, &bearer(&token)).await.status(), 403);

    // Unblocked, the same token works again; unsubscribed, its new socket closes too.
    world.unblock(&a_alpha).await;
    let mut again = world.connect(&alpha, &token).await;
    world.unsubscribe(&a_alpha).await;
    let deadline = Instant::now() + ONE_SECOND;
    all_closed(&mut [&mut again], "subscription removed", deadline).await;
    all_echo(&mut [&mut a_on_beta, &mut b_on_alpha]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_application_closes_its_connections_and_no_others() {
    let Scene { world, alpha, beta, a, b, .. } = scene().await;
    let token = world.token(&a).await;
    let mut a_on_alpha = world.connect(&alpha, &token).await;
    let mut a_on_beta = world.connect(&beta, &world.token(&a).await).await;
    let mut b_on_alpha = world.connect(&alpha, &world.token(&b).await).await;

    world.delete_application(&a).await;
    let deadline = Instant::now() + ONE_SECOND;
    all_closed(&mut [&mut a_on_alpha, &mut a_on_beta], "application deleted", deadline).await;
    all_echo(&mut [&mut b_on_alpha]).await;
    assert_eq!(world.answer(&alpha.path, &bearer(&token)).await.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_an_api_closes_its_connections_and_no_others() {
    let Scene { world, alpha, beta, a, b, .. } = scene().await;
    let token = world.token(&a).await;
    let mut a_on_alpha = world.connect(&alpha, &token).await;
    let mut a_on_beta = world.connect(&beta, &token).await;
    let mut b_on_alpha = world.connect(&alpha, &world.token(&b).await).await;

    world.move_api(&alpha, "BLOCKED").await;
    let deadline = Instant::now() + ONE_SECOND;
    all_closed(&mut [&mut a_on_alpha, &mut b_on_alpha], "API blocked", deadline).await;
    all_echo(&mut [&mut a_on_beta]).await;
    assert_eq!(world.answer(&alpha.path, &bearer(&token)).await.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retiring_an_api_closes_its_connections_and_deprecating_it_does_not() {
    let Scene { world, alpha, beta, a, b, .. } = scene().await;
    let token = world.token(&a).await;
    let mut a_on_alpha = world.connect(&alpha, &token).await;
    let mut a_on_beta = world.connect(&beta, &token).await;
    let mut b_on_alpha = world.connect(&alpha, &world.token(&b).await).await;
    let sentinel = world.token(&a).await;
    let mut sentinel_on_beta = world.connect(&beta, &sentinel).await;

    // Deprecation closes nothing. Revoking the sentinel after it proves that the gateway swept
    // its live sockets with a snapshot that has the API deprecated.
    world.move_api(&alpha, "DEPRECATED").await;
    world.revoke(&a, &sentinel).await;
    let deadline = Instant::now() + ONE_SECOND;
    all_closed(&mut [&mut sentinel_on_beta], "token revoked", deadline).await;
    all_echo(&mut [&mut a_on_alpha, &mut b_on_alpha, &mut a_on_beta]).await;

    world.move_api(&alpha, "RETIRED").await;
    let deadline = Instant::now() + ONE_SECOND;
    all_closed(&mut [&mut a_on_alpha, &mut b_on_alpha], "API retired or deleted", deadline).await;
    all_echo(&mut [&mut a_on_beta]).await;
    assert_eq!(world.answer(&alpha.path, &bearer(&token)).await.status(), 404);
}

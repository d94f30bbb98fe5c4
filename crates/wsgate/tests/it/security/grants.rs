//! Scopes end to end (issue 9, finding 3): a token opens a scoped API only with a scope a
//! publisher granted to its subscription, and stops opening it when the grant is withdrawn,
//! even a token issued before.

use serde_json::json;

use super::world::{bearer, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_api_takes_only_tokens_whose_scope_is_still_granted() {
    let world = world().start().await;
    let api = world.api("/admin-only").scopes(&["admin"]).published().await;
    let app = world.application("Eager").await;
    let subscription = world.subscribe(&app, &api).await;

    // Asking for the scope is not enough.
    let path = format!("/api/v1/applications/{}/token", app.id);
    world.admin.post(&path, json!({"scope": "admin"})).await.refused(422, "invalid_value", Some("scope"));
    let unscoped = world.token(&app).await;
    world.until_answered(&api.path, &bearer(&unscoped), 403).await;

    world.grant(&subscription, &["admin"]).await;
    let token = world.token_with_scope(&app, "admin").await;
    world.connect(&api, &token).await.echoes("granted").await;

    // Withdrawn: the token in hand still says "admin", but the gateway asks the grant.
    world.grant(&subscription, &[]).await;
    let refused = world.until_answered(&api.path, &bearer(&token), 403).await;
    assert!(refused.header("WWW-Authenticate").unwrap_or_default().contains("insufficient_scope"), "{refused:?}");
}

//! The developer portal's side: applications, their keys, subscriptions, and that one
//! subscriber can neither see nor use another's.

use serde_json::json;

use super::harness::{With, api_body, control};

fn basic(client_id: &str, secret: &str) -> Vec<(String, String)> {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    vec![("authorization".to_string(), format!("Basic {encoded}"))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_shown_once_and_regenerating_replaces_the_secret() {
    let control = control().start().await;
    let alice = control.user("alice", &["subscriber"]).await;
    let app = alice.post("/api/v1/applications", json!({"name": "DefaultApplication"})).await.expect(201);
    assert_eq!(app["owner"], "alice");
    assert_eq!(app["description"], "");
    let id = app["id"].as_str().expect("id");
    let keys = format!("/api/v1/applications/{id}/keys");

    alice.get(&keys).await.refused(404, "not_found", None);
    let first = alice.post(&keys, json!({})).await.expect(201);
    let client_id = first["client_id"].as_str().expect("client_id");
    let old_secret = first["client_secret"].as_str().expect("client_secret");
    let shown = alice.get(&keys).await.expect(200);
    assert_eq!(shown["client_id"], client_id);
    assert!(shown.get("client_secret").is_none() && !shown.to_string().contains(old_secret), "{shown}");

    let grant = [("grant_type", "client_credentials")];
    control.http.post_form("/oauth2/token", basic(client_id, old_secret), &grant).await.expect(200);

    let second = alice.post(&keys, json!({})).await.expect(201);
    assert_eq!(second["client_id"], client_id, "regenerating keeps the client id");
    let new_secret = second["client_secret"].as_str().expect("client_secret");
    assert_ne!(new_secret, old_secret);
    let stale = control.http.post_form("/oauth2/token", basic(client_id, old_secret), &grant).await;
    assert_eq!(stale.expect(401)["error"], "invalid_client");
    control.http.post_form("/oauth2/token", basic(client_id, new_secret), &grant).await.expect(200);

    // The list, a duplicate name, and deletion.
    let listed = alice.get("/api/v1/applications").await.expect(200);
    assert_eq!(listed.as_array().expect("list").len(), 1);
    alice.post("/api/v1/applications", json!({"name": "DefaultApplication"})).await.refused(409, "conflict", None);
    alice.post("/api/v1/applications", json!({"name": ""})).await.refused(422, "invalid_value", Some("name"));
    alice.post("/api/v1/applications", json!({"title": "x"})).await.refused(400, "malformed_body", Some("title"));
    alice.delete(&format!("/api/v1/applications/{id}")).await.expect(204);
    let gone = control.http.post_form("/oauth2/token", basic(client_id, new_secret), &grant).await;
    assert_eq!(gone.expect(401)["error"], "invalid_client", "a deleted application's keys stop working");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_subscriber_cannot_see_or_use_anothers_application() {
    let control = control().start().await;
    let owner = control.user("bea", &["creator", "publisher"]).await;
    let api = control.published_api(&owner, "/echowebsocket", &["Gold"]).await;
    let alice = control.user("alice", &["subscriber"]).await;
    let bob = control.user("bob", &["subscriber"]).await;
    let app = alice.post("/api/v1/applications", json!({"name": "Mine"})).await.expect(201);
    let id = app["id"].as_str().expect("id");
    let sub = json!({"application_id": id, "api_id": api["id"], "plan": "Gold"});
    let subscription = alice.post("/api/v1/subscriptions", sub.clone()).await.expect(201);
    let sub_id = subscription["id"].as_str().expect("id");

    bob.get(&format!("/api/v1/applications/{id}")).await.refused(404, "not_found", None);
    bob.post(&format!("/api/v1/applications/{id}/keys"), json!({})).await.refused(404, "not_found", None);
    bob.get(&format!("/api/v1/applications/{id}/keys")).await.refused(404, "not_found", None);
    bob.post(&format!("/api/v1/applications/{id}/token"), json!({})).await.refused(404, "not_found", None);
    bob.post("/api/v1/subscriptions", sub).await.refused(404, "not_found", Some("application_id"));
    bob.get(&format!("/api/v1/subscriptions?application_id={id}")).await.refused(404, "not_found", None);
    assert!(bob.get("/api/v1/subscriptions").await.expect(200).as_array().expect("list").is_empty());
    assert!(bob.get("/api/v1/applications").await.expect(200).as_array().expect("list").is_empty());
    bob.post(&format!("/api/v1/subscriptions/{sub_id}/state"), json!({"state": "BLOCKED"})).await.refused(
        404,
        "not_found",
        None,
    );
    bob.delete(&format!("/api/v1/subscriptions/{sub_id}")).await.refused(404, "not_found", None);
    bob.delete(&format!("/api/v1/applications/{id}")).await.refused(404, "not_found", None);
    alice.get(&format!("/api/v1/applications/{id}")).await.expect(200);

    // Admins see every application.
    let admin = control.admin().await;
    assert_eq!(admin.get("/api/v1/applications").await.expect(200).as_array().expect("list").len(), 1);
    // Creators and publishers own no applications unless they are subscribers too.
    let creator = control.user("carl", &["creator"]).await;
    creator.post("/api/v1/applications", json!({"name": "X"})).await.refused(403, "missing_role", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_need_a_published_api_and_a_plan_it_offers() {
    let control = control().start().await;
    let owner = control.user("bea", &["creator", "publisher"]).await;
    let published = control.published_api(&owner, "/echowebsocket", &["Gold", "Silver"]).await;
    let created = owner.post("/api/v1/apis", api_body("Draft", "/draft", "1.0")).await.expect(201);
    let deprecated = control.published_api(&owner, "/old", &["Gold"]).await;
    let old_id = deprecated["id"].as_str().expect("id");
    owner.post(&format!("/api/v1/apis/{old_id}/lifecycle"), json!({"state": "DEPRECATED"})).await.expect(200);

    let alice = control.user("alice", &["subscriber"]).await;
    let app = alice.post("/api/v1/applications", json!({"name": "App", "description": "mine"})).await.expect(201);
    let subscribe =
        |api: &serde_json::Value, plan: &str| json!({"application_id": app["id"], "api_id": api["id"], "plan": plan});

    alice.post("/api/v1/subscriptions", subscribe(&created, "Gold")).await.refused(404, "not_found", Some("api_id"));
    alice.post("/api/v1/subscriptions", subscribe(&deprecated, "Gold")).await.refused(
        422,
        "invalid_value",
        Some("api_id"),
    );
    alice.post("/api/v1/subscriptions", subscribe(&published, "Bronze")).await.refused(
        422,
        "invalid_value",
        Some("plan"),
    );
    let missing = subscribe(&published, "Gold").without("plan");
    alice.post("/api/v1/subscriptions", missing).await.refused(400, "malformed_body", Some("plan"));

    let subscription = alice.post("/api/v1/subscriptions", subscribe(&published, "Gold")).await.expect(201);
    assert_eq!(subscription["state"], "ACTIVE");
    assert_eq!(subscription["plan"], "Gold");
    alice.post("/api/v1/subscriptions", subscribe(&published, "Silver")).await.refused(409, "conflict", None);
    let listed = alice.get(&format!("/api/v1/subscriptions?api_id={}", published["id"].as_str().expect("id"))).await;
    assert_eq!(listed.expect(200).as_array().expect("list").len(), 1);

    // Only a publisher blocks and lifts a block.
    let state = format!("/api/v1/subscriptions/{}/state", subscription["id"].as_str().expect("id"));
    alice.post(&state, json!({"state": "BLOCKED"})).await.refused(403, "missing_role", None);
    assert_eq!(owner.post(&state, json!({"state": "BLOCKED"})).await.expect(200)["state"], "BLOCKED");
    alice.post(&state, json!({"state": "ACTIVE"})).await.refused(403, "missing_role", None);
    owner.post(&state, json!({"state": "REMOVED"})).await.refused(422, "invalid_value", Some("state"));
    assert_eq!(owner.post(&state, json!({"state": "ACTIVE"})).await.expect(200)["state"], "ACTIVE");
    assert_eq!(owner.get("/api/v1/subscriptions").await.expect(200).as_array().expect("list").len(), 1);

    let path = format!("/api/v1/subscriptions/{}", subscription["id"].as_str().expect("id"));
    assert_eq!(alice.delete(&path).await.expect(200)["state"], "REMOVED");
    owner.post(&state, json!({"state": "ACTIVE"})).await.refused(409, "conflict", None);
    // Unsubscribed, the application may subscribe again.
    alice.post("/api/v1/subscriptions", subscribe(&published, "Silver")).await.expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_mints_a_token_for_their_application_without_its_secret() {
    let control = control().start().await;
    let alice = control.user("alice", &["subscriber"]).await;
    let app = alice.post("/api/v1/applications", json!({"name": "App"})).await.expect(201);
    let id = app["id"].as_str().expect("id");
    let token = alice.post(&format!("/api/v1/applications/{id}/token"), json!({})).await.expect(200);
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 3600);
    // Nothing is granted to an application without subscriptions: asking for a scope is refused.
    alice.post(&format!("/api/v1/applications/{id}/token"), json!({"scope": "chat read"})).await.refused(
        422,
        "invalid_value",
        Some("scope"),
    );
    // Keys were made on the way, so the client id is known now; a bodiless POST works too.
    alice.get(&format!("/api/v1/applications/{id}/keys")).await.expect(200);
    let path = format!("/api/v1/applications/{id}/token");
    let bearer = vec![("authorization".into(), format!("Bearer {}", alice.token))];
    let bodiless = alice.http.send(ureq::http::Method::POST, &path, bearer, None).await;
    assert!(bodiless.expect(200).get("scope").is_none());
    alice.post(&format!("/api/v1/applications/{id}/token"), json!({"scope": "a\"b"})).await.refused(
        422,
        "invalid_value",
        Some("scope"),
    );
}

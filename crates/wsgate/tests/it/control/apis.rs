//! The publisher's side: creating APIs, validation, duplicates, lifecycle and visibility.

use serde_json::{Value, json};
use wsgate_core::model::Lifecycle;

use super::harness::{Session, With, api_body, control};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creator_creates_and_a_publisher_publishes() {
    let control = control().start().await;
    let creator = control.user("carl", &["creator"]).await;
    let publisher = control.user("paula", &["publisher"]).await;
    let subscriber = control.user("sam", &["subscriber"]).await;

    subscriber.post("/api/v1/apis", api_body("EchoWebSocket", "/echowebsocket", "1.0")).await.refused(
        403,
        "missing_role",
        None,
    );
    let api = creator.post("/api/v1/apis", api_body("EchoWebSocket", "/echowebsocket", "1.0")).await.expect(201);
    assert_eq!(api["state"], "CREATED");
    assert_eq!(api["auth"], "oauth2", "an API is never open by omission");
    assert_eq!(api["owner"], "carl");
    assert_eq!(api["plans"], json!(["Gold", "Silver"]));
    let id = api["id"].as_str().expect("id");
    assert_eq!(id.len(), 32);

    let lifecycle = format!("/api/v1/apis/{id}/lifecycle");
    creator.post(&lifecycle, json!({"state": "PUBLISHED"})).await.refused(403, "missing_role", None);
    let published = publisher.post(&lifecycle, json!({"state": "PUBLISHED"})).await.expect(200);
    assert_eq!(published["state"], "PUBLISHED");
    publisher.post(&lifecycle, json!({"state": "SHINY"})).await.refused(422, "invalid_value", Some("state"));

    // Publishers cannot edit or delete; creators can.
    let path = format!("/api/v1/apis/{id}");
    let edited = api_body("EchoWebSocket", "/echowebsocket", "1.0").with("endpoints", json!(["wss://echo.example"]));
    publisher.put(&path, edited.clone()).await.refused(403, "missing_role", None);
    let stored = creator.put(&path, edited).await.expect(200);
    assert_eq!(stored["endpoints"], json!(["wss://echo.example"]));
    assert_eq!(stored["state"], "PUBLISHED", "editing keeps the state");
    let emptied = api_body("EchoWebSocket", "/echowebsocket", "1.0").with("endpoints", json!([]));
    creator.put(&path, emptied).await.refused(422, "invalid_value", Some("endpoints"));
    assert_eq!(subscriber.get(&path).await.expect(200)["name"], "EchoWebSocket");
    publisher.delete(&path).await.refused(403, "missing_role", None);
    creator.delete(&path).await.expect(204);
    creator.get(&path).await.refused(404, "not_found", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_publish_needs_both_roles_an_endpoint_and_a_plan() {
    let control = control().start().await;
    let creator = control.user("carl", &["creator"]).await;
    let both = control.user("bea", &["creator", "publisher"]).await;
    let publish = |context: &str| api_body("EchoWebSocket", context, "1.0").with("publish", json!(true));

    creator.post("/api/v1/apis", publish("/a")).await.refused(403, "missing_role", None);
    let api = both.post("/api/v1/apis", publish("/a")).await.expect(201);
    assert_eq!(api["state"], "PUBLISHED");

    both.post("/api/v1/apis", publish("/b").with("endpoints", json!([]))).await.refused(
        422,
        "invalid_value",
        Some("endpoints"),
    );
    both.post("/api/v1/apis", publish("/b").with("plans", json!([]))).await.refused(
        422,
        "invalid_value",
        Some("plans"),
    );

    // Created without endpoint or plan, it cannot be published later either.
    let bare = api_body("Bare", "/bare", "1.0").without("endpoints").without("plans");
    let bare = creator.post("/api/v1/apis", bare).await.expect(201);
    let lifecycle = format!("/api/v1/apis/{}/lifecycle", bare["id"].as_str().expect("id"));
    both.post(&lifecycle, json!({"state": "PUBLISHED"})).await.refused(422, "invalid_value", Some("endpoints"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_context_and_version_twice_is_a_conflict() {
    let control = control().start().await;
    let creator = control.user("carl", &["creator"]).await;
    creator.post("/api/v1/apis", api_body("EchoWebSocket", "/echowebsocket", "1.0")).await.expect(201);
    for (name, context, version) in [
        ("Other", "/echowebsocket", "1.0"),
        ("Other", "/echowebsocket", "1.0.0"),
        ("Other", "/echowebsocket", "1"),
        ("EchoWebSocket", "/elsewhere", "1.0"),
    ] {
        let reply = creator.post("/api/v1/apis", api_body(name, context, version)).await;
        reply.refused(409, "conflict", None);
    }
    creator.post("/api/v1/apis", api_body("EchoWebSocket", "/echowebsocket", "2.0")).await.expect(201);

    // Only one default version per context.
    let first = api_body("D", "/d", "1").with("default_version", json!(true));
    creator.post("/api/v1/apis", first).await.expect(201);
    let second = api_body("D", "/d", "2").with("default_version", json!(true));
    creator.post("/api/v1/apis", second).await.refused(409, "conflict", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_naming_the_field() {
    let control = control().start().await;
    let creator = control.user("carl", &["creator"]).await;
    let good = || api_body("EchoWebSocket", "/echowebsocket", "1.0");
    let rows: Vec<(&str, Value, u16, &str, Option<&str>)> = vec![
        ("missing name", good().without("name"), 400, "malformed_body", Some("name")),
        ("name not a string", good().with("name", json!(7)), 400, "malformed_body", Some("name")),
        ("endpoints not a list", good().with("endpoints", json!("ws://x")), 400, "malformed_body", Some("endpoints")),
        ("endpoint not a string", good().with("endpoints", json!([1])), 400, "malformed_body", Some("endpoints[0]")),
        ("unknown field", good().with("endpoint", json!("ws://x")), 400, "malformed_body", Some("endpoint")),
        ("publish not a bool", good().with("publish", json!("yes")), 400, "malformed_body", Some("publish")),
        ("context without slash", good().with("context", json!("echo")), 422, "invalid_value", Some("context")),
        ("context trailing slash", good().with("context", json!("/echo/")), 422, "invalid_value", Some("context")),
        ("context with space", good().with("context", json!("/ec ho")), 422, "invalid_value", Some("context")),
        ("version with slash", good().with("version", json!("1/0")), 422, "invalid_value", Some("version")),
        ("empty name", good().with("name", json!("  ")), 422, "invalid_value", Some("name")),
        (
            "http endpoint",
            good().with("endpoints", json!(["http://127.0.0.1:7070"])),
            422,
            "invalid_value",
            Some("endpoints[0]"),
        ),
        (
            "second endpoint bad",
            good().with("endpoints", json!(["ws://a", "ws://"])),
            422,
            "invalid_value",
            Some("endpoints[1]"),
        ),
        ("unknown plan", good().with("plans", json!(["Gold", "Platinum"])), 422, "invalid_value", Some("plans[1]")),
        ("unknown auth", good().with("auth", json!("basic")), 422, "invalid_value", Some("auth")),
    ];
    let mut failures = Vec::new();
    for (what, body, status, code, field) in rows {
        let reply = creator.post("/api/v1/apis", body).await;
        let answer = reply.json();
        if reply.status != status || answer["error"] != code || answer["field"].as_str() != field {
            failures.push(format!("{what}: {} {answer}", reply.status));
        }
    }
    let trailing = format!("{} x", good());
    for (what, text, field) in
        [("not JSON", "{\"name\": ", None), ("trailing garbage", trailing.as_str(), None), ("an array", "[]", None)]
    {
        let reply = creator.post_raw("/api/v1/apis", text).await;
        let answer = reply.json();
        if reply.status != 400 || answer["error"] != "malformed_body" || answer["field"].as_str() != field {
            failures.push(format!("{what}: {} {answer}", reply.status));
        }
    }
    assert!(failures.is_empty(), "rows that failed:\n{}", failures.join("\n"));
    assert!(creator.get("/api/v1/apis").await.expect(200).as_array().expect("list").is_empty(), "nothing was stored");
}

/// Drives a new API from CREATED to `state` through allowed moves.
async fn api_in(creator: &Session, publisher: &Session, context: &str, state: Lifecycle) -> String {
    let api = creator.post("/api/v1/apis", api_body(&context[1..], context, "1.0")).await.expect(201);
    let id = api["id"].as_str().expect("id").to_string();
    let path: &[&str] = match state {
        Lifecycle::Created => &[],
        Lifecycle::Published => &["PUBLISHED"],
        Lifecycle::Deprecated => &["PUBLISHED", "DEPRECATED"],
        Lifecycle::Retired => &["PUBLISHED", "DEPRECATED", "RETIRED"],
        Lifecycle::Blocked => &["PUBLISHED", "BLOCKED"],
    };
    for step in path {
        publisher.post(&format!("/api/v1/apis/{id}/lifecycle"), json!({"state": step})).await.expect(200);
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_allowed_lifecycle_move_succeeds_and_every_other_is_409() {
    let control = control().start().await;
    let creator = control.user("carl", &["creator"]).await;
    let publisher = control.user("paula", &["publisher"]).await;
    let mut failures = Vec::new();
    let mut allowed = 0;
    for (i, from) in Lifecycle::ALL.into_iter().enumerate() {
        for (j, to) in Lifecycle::ALL.into_iter().enumerate() {
            let id = api_in(&creator, &publisher, &format!("/l{i}{j}"), from).await;
            let reply = publisher.post(&format!("/api/v1/apis/{id}/lifecycle"), json!({"state": to.as_str()})).await;
            let answer = reply.json();
            let ok = if from.can_move_to(to) {
                allowed += 1;
                reply.status == 200 && answer["state"] == to.as_str()
            } else {
                let message = answer["message"].as_str().unwrap_or_default();
                reply.status == 409
                    && answer["error"] == "lifecycle_move_refused"
                    && message.contains(from.as_str())
                    && message.contains(to.as_str())
            };
            if !ok {
                failures.push(format!("{} -> {}: {} {answer}", from.as_str(), to.as_str(), reply.status));
            }
        }
    }
    assert_eq!(allowed, 8, "the documented graph has eight moves");
    assert!(failures.is_empty(), "moves answered wrongly:\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_see_only_published_and_deprecated_apis() {
    let control = control().start().await;
    let creator = control.user("carl", &["creator"]).await;
    let publisher = control.user("paula", &["publisher"]).await;
    let subscriber = control.user("sam", &["subscriber"]).await;
    let mut ids = Vec::new();
    for (i, state) in Lifecycle::ALL.into_iter().enumerate() {
        ids.push((state, api_in(&creator, &publisher, &format!("/v{i}"), state).await));
    }
    let listed = subscriber.get("/api/v1/apis").await.expect(200);
    let mut states: Vec<&str> = listed.as_array().expect("list").iter().filter_map(|a| a["state"].as_str()).collect();
    states.sort();
    assert_eq!(states, ["DEPRECATED", "PUBLISHED"]);
    for (state, id) in &ids {
        let reply = subscriber.get(&format!("/api/v1/apis/{id}")).await;
        assert_eq!(reply.status, if state.invokable() { 200 } else { 404 }, "{state:?}");
    }
    assert_eq!(creator.get("/api/v1/apis").await.expect(200).as_array().expect("list").len(), 5);

    // The name/version filter compares versions as the gateway routes them.
    let found = subscriber.get("/api/v1/apis?name=v1&version=1.0.0").await.expect(200);
    assert_eq!(found.as_array().expect("list").len(), 1, "v1 is PUBLISHED: {found}");
    assert!(subscriber.get("/api/v1/apis?name=v0").await.expect(200).as_array().expect("list").is_empty());
    assert!(subscriber.get("/api/v1/apis?name=Nope").await.expect(200).as_array().expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_are_read_by_all_and_written_by_admins() {
    let control = control().start().await;
    let admin = control.admin().await;
    let subscriber = control.user("sam", &["subscriber"]).await;
    let plans = subscriber.get("/api/v1/plans").await.expect(200);
    let names: Vec<&str> = plans.as_array().expect("list").iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["Bronze", "Gold", "Silver", "Unlimited"]);

    let platinum = json!({"description": "More", "messages": "100000/min", "connections": null, "on_exceed": "close"});
    subscriber.put("/api/v1/plans/Platinum", platinum.clone()).await.refused(403, "missing_role", None);
    let stored = admin.put("/api/v1/plans/Platinum", platinum).await.expect(200);
    assert_eq!(stored["messages"], "100000/min");
    assert_eq!(stored["on_exceed"], "close");
    assert_eq!(stored["count"], "both", "both directions count unless told otherwise");
    assert_eq!(stored.get("connections"), None, "an absent limit is unlimited");
    assert_eq!(admin.get("/api/v1/plans/Platinum").await.expect(200), stored);
    admin.put("/api/v1/plans/Bad%20Name", json!({})).await.refused(422, "invalid_value", Some("name"));
    admin.put("/api/v1/plans/Gold", json!({"connections": -1})).await.refused(
        400,
        "malformed_body",
        Some("connections"),
    );
    admin.put("/api/v1/plans/Gold", json!({"connections": 0})).await.refused(422, "invalid_value", Some("connections"));
    for (field, value) in [("messages", "50"), ("bytes", "5/week"), ("connection_rate", "0/s")] {
        admin.put("/api/v1/plans/Gold", json!({ field: value })).await.refused(422, "invalid_value", Some(field));
    }
    admin.put("/api/v1/plans/Gold", json!({"count": "sideways"})).await.refused(422, "invalid_value", Some("count"));
    admin.put("/api/v1/plans/Gold", json!({"on_exceed": "explode"})).await.refused(
        422,
        "invalid_value",
        Some("on_exceed"),
    );
    admin.post("/api/v1/plans", json!({"name": "Platinum"})).await.refused(409, "conflict", None);
    admin.post("/api/v1/plans", json!({"name": "Tiny", "messages": "5/s", "count": "in"})).await.expect(201);
    // A new plan can be offered at once.
    let creator = control.user("carl", &["creator"]).await;
    let body = api_body("P", "/p", "1").with("plans", json!(["Platinum"]));
    creator.post("/api/v1/apis", body).await.expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_in_use_is_not_deleted() {
    let control = control().start().await;
    let admin = control.admin().await;
    admin.post("/api/v1/plans", json!({"name": "Wide", "messages": "500/s"})).await.expect(201);
    admin.post("/api/v1/plans", json!({"name": "Spare"})).await.expect(201);
    let body = api_body("W", "/w", "1").with("api_plan", json!("Wide"));
    let api = admin.post("/api/v1/apis", body).await.expect(201);
    let refusal = admin.delete("/api/v1/plans/Wide").await.refused(409, "conflict", None);
    assert!(refusal["message"].as_str().is_some_and(|m| m.contains("API W 1")), "{refusal}");
    let subscriber = control.user("sam", &["subscriber"]).await;
    subscriber.delete("/api/v1/plans/Spare").await.refused(403, "missing_role", None);
    admin.delete("/api/v1/plans/Spare").await.expect(204);
    admin.get("/api/v1/plans/Spare").await.refused(404, "not_found", None);
    let id = api["id"].as_str().expect("id");
    admin.put(&format!("/api/v1/apis/{id}"), api_body("W", "/w", "1")).await.expect(200);
    admin.delete("/api/v1/plans/Wide").await.expect(204);
    let body = api_body("X", "/x", "1").with("client_plan", json!("Nope"));
    admin.post("/api/v1/apis", body).await.refused(422, "invalid_value", Some("client_plan"));
}

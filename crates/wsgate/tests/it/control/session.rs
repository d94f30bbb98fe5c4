//! Signing in, roles, CSRF and self sign-up.

use serde_json::json;
use ureq::http::Method;

use super::harness::{ADMIN_PASSWORD, PASSWORD, Scratch, control};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_opens_a_session_and_a_wrong_password_is_401() {
    let control = control().start().await;
    let reply =
        control.http.post_json("/api/v1/login", None, json!({"username": "admin", "password": ADMIN_PASSWORD})).await;
    let body = reply.expect(200);
    assert_eq!(body["user"]["name"], "admin");
    assert_eq!(body["user"]["roles"], json!(["admin"]));
    assert!(body["expires_at"].as_i64().is_some());
    let cookie = reply.header("set-cookie").expect("a session cookie");
    let token = body["token"].as_str().expect("token");
    assert!(cookie.starts_with(&format!("wsgate_session={token};")), "{cookie}");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert_eq!(reply.header("cache-control"), Some("no-store"));

    let admin = control.admin().await;
    let me = admin.get("/api/v1/me").await.expect(200);
    assert_eq!(me["name"], "admin");
    assert_eq!(me["csrf_token"], admin.csrf.as_str());

    let wrong = json!({"username": "admin", "password": "not-the-password"});
    control.http.post_json("/api/v1/login", None, wrong).await.refused(401, "wrong_credentials", None);
    let nobody = json!({"username": "nobody", "password": "whatever1"});
    control.http.post_json("/api/v1/login", None, nobody).await.refused(401, "wrong_credentials", None);
    control.http.post_json("/api/v1/login", None, json!({"username": "admin"})).await.refused(
        400,
        "malformed_body",
        Some("password"),
    );

    control.http.send(Method::GET, "/api/v1/me", vec![], None).await.refused(401, "not_signed_in", None);
    let forged = vec![("authorization".to_string(), "Bearer not-a-session".to_string())];
    control.http.send(Method::GET, "/api/v1/me", forged, None).await.refused(401, "not_signed_in", None);

    admin.post("/api/v1/logout", json!({})).await.expect(204);
    admin.get("/api/v1/me").await.refused(401, "not_signed_in", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_made_by_admins_with_the_roles_they_are_given() {
    let control = control().start().await;
    let admin = control.admin().await;
    let alice = control.user("alice", &["subscriber"]).await;
    assert_eq!(alice.get("/api/v1/me").await.expect(200)["roles"], json!(["subscriber"]));

    let users = admin.get("/api/v1/users").await.expect(200);
    let names: Vec<&str> = users.as_array().expect("list").iter().filter_map(|u| u["name"].as_str()).collect();
    assert_eq!(names, ["admin", "alice"]);
    assert!(!users.to_string().contains("argon2"), "no password hash is ever shown: {users}");

    alice.get("/api/v1/users").await.refused(403, "missing_role", None);
    let mallory = json!({"name": "mallory", "password": PASSWORD, "roles": ["admin"]});
    alice.post("/api/v1/users", mallory).await.refused(403, "missing_role", None);

    let taken = json!({"name": "alice", "password": PASSWORD, "roles": ["creator"]});
    admin.post("/api/v1/users", taken).await.refused(409, "conflict", None);
    let bad_role = json!({"name": "carol", "password": PASSWORD, "roles": ["subscriber", "wizard"]});
    admin.post("/api/v1/users", bad_role).await.refused(422, "invalid_value", Some("roles[1]"));
    let short = json!({"name": "carol", "password": "short", "roles": ["subscriber"]});
    admin.post("/api/v1/users", short).await.refused(422, "invalid_value", Some("password"));
    let bad_name = json!({"name": "carol smith", "password": PASSWORD, "roles": ["subscriber"]});
    admin.post("/api/v1/users", bad_name).await.refused(422, "invalid_value", Some("name"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_authenticated_writes_need_the_csrf_header() {
    let control = control().start().await;
    let alice = control.user("alice", &["subscriber"]).await;
    let cookie = ("cookie".to_string(), format!("wsgate_session={}", alice.token));
    let csrf = ("x-csrf-token".to_string(), alice.csrf.clone());
    let app = |name: &str| Some(("application/json".to_string(), json!({"name": name}).to_string().into_bytes()));

    // Reading with the cookie alone is fine: a cross-site page cannot read the answer.
    control.http.send(Method::GET, "/api/v1/me", vec![cookie.clone()], None).await.expect(200);

    let without = control.http.send(Method::POST, "/api/v1/applications", vec![cookie.clone()], app("a")).await;
    without.refused(403, "csrf_token_mismatch", None);
    let wrong = ("x-csrf-token".to_string(), "AAAA".to_string());
    let forged = control.http.send(Method::POST, "/api/v1/applications", vec![cookie.clone(), wrong], app("a")).await;
    forged.refused(403, "csrf_token_mismatch", None);
    let with =
        control.http.send(Method::POST, "/api/v1/applications", vec![cookie.clone(), csrf.clone()], app("a")).await;
    with.expect(201);

    // Another session's CSRF token does not fit this session.
    let other = control.login("alice", PASSWORD).await;
    let mismatched = ("x-csrf-token".to_string(), other.csrf.clone());
    let crossed =
        control.http.send(Method::POST, "/api/v1/applications", vec![cookie.clone(), mismatched], app("b")).await;
    crossed.refused(403, "csrf_token_mismatch", None);

    // Bearer requests carry no ambient credential, so they need no CSRF token.
    alice.post("/api/v1/applications", json!({"name": "c"})).await.expect(201);
    // Signing out with the cookie is a write too.
    control.http.send(Method::POST, "/api/v1/logout", vec![cookie.clone()], None).await.expect(403);
    control.http.send(Method::POST, "/api/v1/logout", vec![cookie, csrf], None).await.expect(204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signup_makes_subscribers_only_when_open() {
    let open = control().start().await;
    let reply = open.http.post_json("/api/v1/signup", None, json!({"name": "dora", "password": PASSWORD})).await;
    let answer = reply.expect(202);
    let dora = open.login("dora", PASSWORD).await;
    assert_eq!(dora.get("/api/v1/me").await.expect(200)["roles"], json!(["subscriber"]));
    dora.post("/api/v1/apis", super::harness::api_body("X", "/x", "1")).await.refused(403, "missing_role", None);
    // A taken name gets the very same answer (no 409 listing who has an account), and the
    // account stays as it was.
    let again =
        open.http.post_json("/api/v1/signup", None, json!({"name": "dora", "password": "another-passw0rd"})).await;
    assert_eq!(again.expect(202), answer, "a taken name answers as a free one");
    open.login("dora", PASSWORD).await;

    let closed = control().self_signup(false).start().await;
    let reply = closed.http.post_json("/api/v1/signup", None, json!({"name": "dora", "password": PASSWORD})).await;
    reply.refused(403, "forbidden", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_generates_an_admin_password_once() {
    let dir = Scratch::new("bootstrap");
    let store = wsgate_store::open_sqlite(&dir.0.join("wsgate.db")).await.expect("store");
    let password = wsgate_control::bootstrap(&*store, &Default::default(), None)
        .await
        .expect("bootstrap")
        .expect("a generated password");
    assert!(password.len() >= 16);
    assert_eq!(wsgate_control::bootstrap(&*store, &Default::default(), None).await.expect("again"), None, "idempotent");
    assert_eq!(wsgate_control::bootstrap(&*store, &Default::default(), Some("other")).await.expect("again"), None);
    let users = store.list_users().await.expect("users");
    assert_eq!(users.len(), 1);
    assert!(!users[0].password_hash.contains(&password));
    assert!(!store.list_signing_keys().await.expect("keys").is_empty(), "a signing key exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_json_and_the_openapi_document_is_served() {
    let control = control().start().await;
    let admin = control.admin().await;
    admin.get("/api/v1/nothing-here").await.refused(404, "not_found", None);
    let reply = admin.put("/api/v1/login", json!({})).await;
    assert_eq!(reply.expect(405)["error"], "method_not_allowed");
    let document = control.http.send(Method::GET, "/api/v1/openapi.json", vec![], None).await.expect(200);
    assert!(document["paths"]["/oauth2/token"]["post"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_listener() {
    let control = control().start().await;
    let http = control.http.clone();
    control.admin().await;
    control.stop().await;
    let refused = tokio::task::spawn_blocking(move || {
        let addr = http.base.trim_start_matches("https://").to_string();
        std::net::TcpStream::connect(addr).is_err()
    });
    assert!(refused.await.expect("probe"), "no new connection is accepted after shutdown");
}

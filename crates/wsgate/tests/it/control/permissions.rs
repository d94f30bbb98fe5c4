//! Who may do what, held against the owner too (issue 9): scopes are granted by a publisher,
//! never merely requested; a publisher's block holds; only admins reach beyond the gateway
//! (upstream TLS files, endpoints outside the allow-list); endpoints cannot split an HTTP head;
//! signing keys are sealed at rest; external clients are registered explicitly.

use serde_json::{Value, json};
use wsgate_control::ControlPlane;
use wsgate_core::config::Config;

use super::harness::{Control, PASSWORD, Scratch, Session, With, api_body, control};

/// A published API with these scopes, made by the admin.
async fn scoped_api(admin: &Session, context: &str, scopes: &[&str]) -> Value {
    let body = api_body(&context[1..], context, "1.0").with("scopes", json!(scopes)).with("publish", json!(true));
    admin.post("/api/v1/apis", body).await.expect(201)
}

/// A self-signed-up subscriber with an application subscribed to `api`: (session, app id,
/// subscription id).
async fn subscriber(control: &Control, name: &str, api: &Value) -> (Session, String, String) {
    let signup = json!({"name": name, "password": PASSWORD});
    control.http.post_json("/api/v1/signup", None, signup).await.expect(202);
    let session = control.login(name, PASSWORD).await;
    let app = session.post("/api/v1/applications", json!({"name": "Mine"})).await.expect(201);
    let app_id = app["id"].as_str().expect("id").to_string();
    let body = json!({"application_id": app_id, "api_id": api["id"], "plan": "Gold"});
    let subscription = session.post("/api/v1/subscriptions", body).await.expect(201);
    assert_eq!(subscription["granted_scopes"], json!([]), "nothing is granted by subscribing");
    (session, app_id, subscription["id"].as_str().expect("id").to_string())
}

/// Finding 3: a self-signed-up subscriber asked for `admin` and got it. Now the token carries
/// only what a publisher granted; asking for more is `invalid_scope` / 422 naming the scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_granted_by_a_publisher_not_requested() {
    let control = control().start().await;
    let admin = control.admin().await;
    let api = scoped_api(&admin, "/guarded", &["admin", "chat"]).await;
    let (eve, app, subscription) = subscriber(&control, "eve", &api).await;
    let token_path = format!("/api/v1/applications/{app}/token");

    let refused = eve.post(&token_path, json!({"scope": "admin"})).await.refused(422, "invalid_value", Some("scope"));
    assert!(refused["message"].as_str().is_some_and(|m| m.contains("\"admin\"")), "{refused}");
    let keys = eve.post(&format!("/api/v1/applications/{app}/keys"), json!({})).await.expect(201);
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "admin"),
        ("client_id", keys["client_id"].as_str().expect("id")),
        ("client_secret", keys["client_secret"].as_str().expect("secret")),
    ];
    let oauth = control.http.post_form("/oauth2/token", vec![], &form).await;
    assert_eq!((oauth.status, oauth.json()["error"].as_str()), (400, Some("invalid_scope")), "{}", oauth.text);

    // The owner cannot grant themselves anything; a publisher grants only declared scopes.
    let grant = format!("/api/v1/subscriptions/{subscription}/scopes");
    eve.put(&grant, json!({"scopes": ["admin"]})).await.refused(403, "missing_role", None);
    admin.put(&grant, json!({"scopes": ["chat", "root"]})).await.refused(422, "invalid_value", Some("scopes[1]"));
    let granted = admin.put(&grant, json!({"scopes": ["chat"]})).await.expect(200);
    assert_eq!(granted["granted_scopes"], json!(["chat"]));

    assert_eq!(eve.post(&token_path, json!({"scope": "chat"})).await.expect(200)["scope"], "chat");
    assert_eq!(eve.post(&token_path, json!({})).await.expect(200)["scope"], "chat", "the default is what is granted");
    eve.post(&token_path, json!({"scope": "chat admin"})).await.refused(422, "invalid_value", Some("scope"));
    let oauth = control.http.post_form("/oauth2/token", vec![], &form).await;
    assert_eq!(oauth.json()["error"], "invalid_scope");
}

/// Finding 4: the owner of a BLOCKED subscription deleted it and subscribed again. Now the
/// block holds against every way round it until a publisher lifts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishers_block_holds_against_the_owner() {
    let control = control().start().await;
    let admin = control.admin().await;
    let api = scoped_api(&admin, "/blockable", &[]).await;
    let (bob, app, subscription) = subscriber(&control, "bob", &api).await;
    let state = format!("/api/v1/subscriptions/{subscription}/state");
    admin.post(&state, json!({"state": "BLOCKED"})).await.expect(200);

    bob.post(&state, json!({"state": "ACTIVE"})).await.refused(403, "missing_role", None);
    bob.delete(&format!("/api/v1/subscriptions/{subscription}")).await.refused(403, "forbidden", None);
    bob.delete(&format!("/api/v1/applications/{app}")).await.refused(403, "forbidden", None);
    let again = json!({"application_id": app, "api_id": api["id"], "plan": "Gold"});
    bob.post("/api/v1/subscriptions", again).await.refused(403, "forbidden", None);
    let other = bob.post("/api/v1/applications", json!({"name": "Fresh"})).await.expect(201);
    let fresh = json!({"application_id": other["id"], "api_id": api["id"], "plan": "Gold"});
    bob.post("/api/v1/subscriptions", fresh.clone()).await.refused(403, "forbidden", None);
    let listed = bob.get(&format!("/api/v1/subscriptions?application_id={app}")).await.expect(200);
    assert_eq!(listed[0]["state"], "BLOCKED", "the block is still there: {listed}");

    // Once the publisher lifts it, the owner is free again.
    admin.post(&state, json!({"state": "ACTIVE"})).await.expect(200);
    bob.delete(&format!("/api/v1/subscriptions/{subscription}")).await.expect(200);
    bob.post("/api/v1/subscriptions", fresh).await.expect(201);
}

/// Finding 8: a creator set `ca_file` (a file the gateway reads), `insecure_skip_verify` and
/// any endpoint. Now the first two are an admin's, and a non-admin's endpoints stay inside
/// `control.endpoint_allowlist`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_reach_beyond_the_allowlist_or_set_upstream_tls() {
    let control =
        control().settings(|s| s.endpoint_allowlist = vec!["127.0.0.1:7070".into(), "*.internal".into()]).start().await;
    let admin = control.admin().await;
    let cora = control.user("cora", &["creator", "publisher"]).await;
    let body = || api_body("Cora", "/cora", "1.0");
    cora.post("/api/v1/apis", body().with("ca_file", json!("/etc/shadow"))).await.refused(
        422,
        "invalid_value",
        Some("ca_file"),
    );
    cora.post("/api/v1/apis", body().with("insecure_skip_verify", json!(true))).await.refused(
        422,
        "invalid_value",
        Some("insecure_skip_verify"),
    );
    let metadata = body().with("endpoints", json!(["ws://127.0.0.1:7070", "ws://169.254.169.254/latest/meta-data"]));
    cora.post("/api/v1/apis", metadata).await.refused(422, "invalid_value", Some("endpoints[1]"));
    let internal = body().with("endpoints", json!(["wss://echo.internal/ws"]));
    let created = cora.post("/api/v1/apis", internal).await.expect(201);
    assert_eq!(created["ca_file"], Value::Null);

    // An admin may; a creator may then edit the admin's API without touching those settings.
    let outside = api_body("Ops", "/ops", "1.0")
        .with("endpoints", json!(["wss://10.9.8.7:8443"]))
        .with("ca_file", json!("/etc/wsgate/ops-ca.pem"));
    let ops = admin.post("/api/v1/apis", outside.clone()).await.expect(201);
    let path = format!("/api/v1/apis/{}", ops["id"].as_str().expect("id"));
    let renamed = cora.put(&path, outside.clone().with("name", json!("Ops renamed"))).await.expect(200);
    assert_eq!(renamed["ca_file"], "/etc/wsgate/ops-ca.pem");
    cora.put(&path, outside.with("ca_file", json!("/root/.ssh/id_rsa"))).await.refused(
        422,
        "invalid_value",
        Some("ca_file"),
    );
}

/// Finding 6: an endpoint with CR/LF split the upstream request. Now endpoints (and the names
/// that reach the upstream in X-Wsgate-* headers) hold no control characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_that_could_split_an_http_head_is_stored() {
    let control = control().start().await;
    let admin = control.admin().await;
    for (i, url) in [
        "ws://127.0.0.1:7070/x\r\nX-Injected: 1",
        "ws://127.0.0.1:7070/x\nHost: evil",
        "ws://127.0.0.1\r\n:7070/",
        "ws://127.0.0.1:7070/\u{0}",
        "ws://127.0.0.1:7070/caf\u{e9}",
        "ws://user@127.0.0.1:7070/",
    ]
    .iter()
    .enumerate()
    {
        let body = api_body(&format!("Split{i}"), &format!("/split{i}"), "1.0").with("endpoints", json!([url]));
        admin.post("/api/v1/apis", body).await.refused(422, "invalid_value", Some("endpoints[0]"));
    }
    let name = api_body("Evil\r\nX-Wsgate-Plan: Platinum", "/evil", "1.0");
    admin.post("/api/v1/apis", name).await.refused(422, "invalid_value", Some("name"));
    let app = json!({"name": "App\r\nX-Injected: 1"});
    admin.post("/api/v1/applications", app).await.refused(422, "invalid_value", Some("name"));
}

/// External clients are registered explicitly, by the application's owner, for a configured
/// provider only, and on one application only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_clients_are_registered_for_configured_providers_only() {
    let control = control().trusting_issuer("https://idp.example").start().await;
    let alice = control.user("alice", &["subscriber"]).await;
    let bob = control.user("bob", &["subscriber"]).await;
    let mine = alice.post("/api/v1/applications", json!({"name": "A"})).await.expect(201);
    let theirs = bob.post("/api/v1/applications", json!({"name": "B"})).await.expect(201);
    let register = |issuer: &str, client: &str| json!({"external_clients": [{"issuer": issuer, "client_id": client}]});
    let path = |app: &Value| format!("/api/v1/applications/{}/external_clients", app["id"].as_str().expect("id"));
    alice.put(&path(&mine), register("https://other.example", "c1")).await.refused(
        422,
        "invalid_value",
        Some("external_clients[0].issuer"),
    );
    alice.put(&path(&mine), register("https://idp.example", "bad id")).await.refused(
        422,
        "invalid_value",
        Some("external_clients[0].client_id"),
    );
    let registered = alice.put(&path(&mine), register("https://idp.example", "c1")).await.expect(200);
    assert_eq!(registered["external_clients"][0]["client_id"], "c1");
    bob.put(&path(&theirs), register("https://idp.example", "c1")).await.refused(409, "conflict", None);
    bob.put(&path(&mine), register("https://idp.example", "c2")).await.refused(404, "not_found", None);
}

/// Finding 9: ES256 private keys were stored in plain PKCS#8. With a key-encryption key they
/// are sealed (AES-256-GCM), plain ones are sealed at the next start, and a sealed store does
/// not start without the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_are_sealed_at_rest_under_a_key_encryption_key() {
    let dir = Scratch::new("sealed");
    let store = wsgate_store::open_sqlite(&dir.0.join("wsgate.db")).await.expect("store");
    let plain = Config::default();
    wsgate_control::bootstrap(&*store, &plain.control, Some("admin-password")).await.expect("bootstrap");
    let keys = store.list_signing_keys().await.expect("keys");
    assert!(keys.iter().all(|k| k.private_pkcs8.first() == Some(&0x30)), "plain PKCS#8 without a key");

    let kek = dir.0.join("kek");
    std::fs::write(&kek, format!("{}\n", "5a".repeat(32))).expect("write the key-encryption key");
    let mut sealed = Config::default();
    sealed.control.listen = "127.0.0.1:0".into();
    sealed.control.key_encryption_key_file = Some(kek.clone());
    let plane = bind(&sealed, &store, &dir).await.expect("a control plane with the key starts");
    let keys = store.list_signing_keys().await.expect("keys");
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(key.private_pkcs8.starts_with(b"wsgate-sealed-v1:"), "{} is sealed", key.kid);
    }
    // It still signs with the sealed key, and the signature verifies against the JWKS.
    let token = plane.key_manager().issue("client", "app", "").await.expect("a token");
    plane.key_manager().verify(&token.token).await.expect("it verifies");
    drop(plane);

    let mut without = sealed.clone();
    without.control.key_encryption_key_file = None;
    let refused = bind(&without, &store, &dir).await.expect_err("a sealed store needs its key");
    assert!(refused.to_string().contains("key_encryption_key_file"), "{refused}");
    std::fs::write(&kek, "6b".repeat(32)).expect("another key");
    let refused = bind(&sealed, &store, &dir).await.expect_err("another key does not open it");
    assert!(refused.to_string().contains("does not decrypt"), "{refused}");
}

async fn bind(
    config: &Config,
    store: &std::sync::Arc<dyn wsgate_store::Store>,
    dir: &Scratch,
) -> Result<ControlPlane, wsgate_control::ControlError> {
    let files = wsgate_tls::server::locate_or_generate(None, None, &dir.0).expect("certificate");
    let certificate = wsgate_tls::server::ReloadingCertificate::load(files).expect("load certificate");
    // Not run: binding is where stored keys are checked and sealed.
    ControlPlane::bind(config, store.clone(), certificate).await
}

/// The publisher grants scopes and blocks from the API's Subscriptions page, through the same
/// rules as the REST API (a form post with the session cookie and its CSRF field).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_grant_scopes_and_block_from_the_portal() {
    let control = control().start().await;
    let admin = control.admin().await;
    let api = scoped_api(&admin, "/portal-scoped", &["chat", "admin"]).await;
    let (_, _, subscription) = subscriber(&control, "dana", &api).await;
    let cookie = ("cookie".to_string(), format!("wsgate_session={}", admin.token));
    let page = format!("/publisher/apis/{}/subscriptions", api["id"].as_str().expect("id"));
    let html = control.http.send(ureq::http::Method::GET, &page, vec![cookie.clone()], None).await;
    assert_eq!(html.status, 200, "{}", html.text);
    assert!(html.text.contains("dana") && html.text.contains("Save scopes"), "{}", html.text);

    let form = |fields: &str| Some(("application/x-www-form-urlencoded".to_string(), fields.as_bytes().to_vec()));
    let post = |path: String, fields: String| {
        let http = control.http.clone();
        let cookie = cookie.clone();
        async move { http.send(ureq::http::Method::POST, &path, vec![cookie], form(&fields)).await }
    };
    let csrf = &admin.csrf;
    let granted =
        post(format!("/publisher/subscriptions/{subscription}/scopes"), format!("csrf={csrf}&scopes=chat")).await;
    assert!(granted.status == 303 || granted.status == 200, "{} {}", granted.status, granted.text);
    let listed = admin.get(&format!("/api/v1/subscriptions?api_id={}", api["id"].as_str().expect("id"))).await;
    assert_eq!(listed.expect(200)[0]["granted_scopes"], json!(["chat"]));
    let forged =
        post(format!("/publisher/subscriptions/{subscription}/scopes"), "csrf=forged&scopes=admin".into()).await;
    assert_eq!(forged.status, 403, "a form without the session's CSRF field changes nothing");

    post(format!("/publisher/subscriptions/{subscription}/state"), format!("csrf={csrf}&state=BLOCKED")).await;
    let listed = admin.get(&format!("/api/v1/subscriptions?api_id={}", api["id"].as_str().expect("id"))).await;
    let listed = listed.expect(200);
    assert_eq!((listed[0]["state"].as_str(), &listed[0]["granted_scopes"]), (Some("BLOCKED"), &json!(["chat"])));
}

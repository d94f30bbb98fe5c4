//! Signing keys for admins: the listing shows public facts only, a forced rotation makes one
//! key however often it is asked for the same kid, and nobody else may do either. Several nodes
//! rotating at once are in `cluster_state`.

use serde_json::json;
use ureq::http::Method;

use super::harness::control;

#[tokio::test]
async fn an_admin_lists_keys_and_forces_a_rotation_once_per_kid() {
    let control = control().start().await;
    let admin = control.admin().await;
    let keys = admin.get("/api/v1/signing-keys").await.expect(200);
    let keys = keys.as_array().expect("a list");
    assert_eq!(keys.len(), 1, "bootstrap made one key: {keys:?}");
    let first = keys[0]["kid"].as_str().expect("kid").to_string();
    for field in ["kid", "algorithm", "created_at", "signs_until", "retire_at"] {
        assert!(!keys[0][field].is_null(), "{field} is shown: {}", keys[0]);
    }
    assert_eq!(keys[0].as_object().map(|o| o.len()), Some(5), "nothing more, no private material: {}", keys[0]);

    let rotated = admin.post("/api/v1/signing-keys/rotate", json!({"kid": first})).await.expect(200);
    let second = rotated["kid"].as_str().expect("kid").to_string();
    assert_ne!(second, first);
    let again = admin.post("/api/v1/signing-keys/rotate", json!({"kid": first})).await.expect(200);
    assert_eq!(again["kid"], second.as_str(), "the same kid again: the same answer, no new key");

    let listed = admin.get("/api/v1/signing-keys").await.expect(200);
    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), 2, "{listed:?}");
    let old = listed.iter().find(|key| key["kid"] == first.as_str()).expect("the old key is listed");
    assert!(old["signs_until"].as_i64() <= rotated["created_at"].as_i64(), "the old key signs no more: {old}");
    let jwks = control.http.send(Method::GET, "/oauth2/jwks", vec![], None).await.expect(200);
    assert!(jwks["keys"].as_array().expect("keys").iter().any(|k| k["kid"] == first.as_str()), "still published");

    // No body: away from the key signing now.
    let third = admin.post_raw("/api/v1/signing-keys/rotate", "").await.expect(200);
    assert_ne!(third["kid"], second.as_str());
    admin.post("/api/v1/signing-keys/rotate", json!({"kid": "no-such-key"})).await.refused(
        404,
        "not_found",
        Some("kid"),
    );
    admin.post("/api/v1/signing-keys/rotate", json!({"kid": 7})).await.expect(400);
}

#[tokio::test]
async fn only_admins_see_or_rotate_signing_keys() {
    let control = control().start().await;
    let publisher = control.user("pat", &["publisher", "creator"]).await;
    let subscriber = control.user("sue", &["subscriber"]).await;
    for session in [&publisher, &subscriber] {
        session.get("/api/v1/signing-keys").await.expect(403);
        session.post("/api/v1/signing-keys/rotate", json!({})).await.expect(403);
    }
    control.http.send(Method::GET, "/api/v1/signing-keys", vec![], None).await.expect(401);
    control.http.send(Method::POST, "/api/v1/signing-keys/rotate", vec![], None).await.expect(401);
    let keys = control.admin().await.get("/api/v1/signing-keys").await.expect(200);
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "nothing was rotated");
}

#[tokio::test]
async fn the_cli_lists_and_rotates_signing_keys() {
    let control = control().start().await;
    let cli = |args: &'static [&'static str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
            .args(args)
            .arg("--server")
            .arg(format!("https://localhost:{}", control.port))
            .arg("--ca")
            .arg(&control.certificate.cert)
            .env("WSGATE_USER", "admin")
            .env("WSGATE_PASSWORD", super::harness::ADMIN_PASSWORD)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
    };
    let within = |output| crate::harness::within(std::time::Duration::from_secs(30), "the CLI finishes", output);
    let listed = within(cli(&["signing-key", "list"])).await.expect("runs");
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert_eq!(listed.lines().count(), 2, "a header and the one key: {listed}");
    let first = listed.lines().nth(1).and_then(|l| l.split_whitespace().next()).expect("a kid").to_string();

    let rotated = within(cli(&["signing-key", "rotate"])).await.expect("runs");
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let rotated = String::from_utf8_lossy(&rotated.stdout).into_owned();
    let second = rotated.lines().nth(1).and_then(|l| l.split_whitespace().next()).expect("a kid").to_string();
    assert_ne!(second, first, "{rotated}");
    let keys = control.admin().await.get("/api/v1/signing-keys").await.expect(200);
    assert_eq!(keys.as_array().map(Vec::len), Some(2));

    let unknown = within(cli(&["signing-key", "rotate", "--kid", "nope"])).await.expect("runs");
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.trim().lines().count() == 1 && stderr.contains("signing key not found"), "{stderr}");
}

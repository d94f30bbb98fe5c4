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

//! The OAuth2 key manager: the token endpoint and its RFC 6749 errors, JWTs that verify
//! against the JWKS, revocation and introspection, and key rotation.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::harness::{Control, Session, With, control};

/// A subscriber with an application and its fresh client credentials.
struct Client {
    session: Session,
    application_id: String,
    client_id: String,
    secret: String,
}

async fn client(control: &Control, user: &str) -> Client {
    let session = control.user(user, &["subscriber"]).await;
    let app = session.post("/api/v1/applications", json!({"name": "App"})).await.expect(201);
    let application_id = app["id"].as_str().expect("id").to_string();
    let keys = session.post(&format!("/api/v1/applications/{application_id}/keys"), json!({})).await.expect(201);
    Client {
        session,
        application_id,
        client_id: keys["client_id"].as_str().expect("client_id").to_string(),
        secret: keys["client_secret"].as_str().expect("client_secret").to_string(),
    }
}

/// Publishes an API that knows `scopes` (as the admin), subscribes the client's application to
/// it and has the admin grant them all: the scopes its tokens may then carry.
async fn grant(control: &Control, client: &Client, scopes: &[&str]) {
    let admin = control.admin().await;
    let context = format!("/scoped-{}", &client.application_id[..8]);
    let body = super::harness::api_body(&context[1..], &context, "1.0")
        .with("scopes", json!(scopes))
        .with("publish", json!(true));
    let api = admin.post("/api/v1/apis", body).await.expect(201);
    let subscribe = json!({"application_id": client.application_id, "api_id": api["id"], "plan": "Gold"});
    let subscription = client.session.post("/api/v1/subscriptions", subscribe).await.expect(201);
    let path = format!("/api/v1/subscriptions/{}/scopes", subscription["id"].as_str().expect("id"));
    admin.put(&path, json!({ "scopes": scopes })).await.expect(200);
}

impl Client {
    fn basic(&self) -> Vec<(String, String)> {
        let encoded = STANDARD.encode(format!("{}:{}", self.client_id, self.secret));
        vec![("authorization".to_string(), format!("Basic {encoded}"))]
    }

    async fn token(&self, control: &Control, scope: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(scope.map(|s| ("scope", s)));
        let answer = control.http.post_form("/oauth2/token", self.basic(), &form).await.expect(200);
        answer["access_token"].as_str().expect("access_token").to_string()
    }
}

fn oauth_error(reply: &super::harness::Reply, status: u16, code: &str) {
    let body = reply.expect(status);
    assert_eq!(body["error"], code, "{}: {body}", reply.what);
    assert!(body["error_description"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_issues_tokens_and_answers_rfc_6749_errors() {
    let control = control().start().await;
    let client = client(&control, "alice").await;
    grant(&control, &client, &["chat"]).await;
    let http = &control.http;
    let grant = [("grant_type", "client_credentials")];

    let reply = http
        .post_form("/oauth2/token", client.basic(), &[("grant_type", "client_credentials"), ("scope", "chat")])
        .await;
    let answer = reply.expect(200);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 3600);
    assert_eq!(answer["scope"], "chat");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("pragma"), Some("no-cache"));

    // Client credentials in the body work as well as HTTP Basic; without `scope`, the token
    // carries every granted scope.
    let posted =
        [("grant_type", "client_credentials"), ("client_id", &client.client_id), ("client_secret", &client.secret)];
    assert_eq!(http.post_form("/oauth2/token", vec![], &posted).await.expect(200)["scope"], "chat");

    let none = http.post_form("/oauth2/token", vec![], &grant).await;
    oauth_error(&none, 401, "invalid_client");
    assert_eq!(none.header("www-authenticate"), Some("Basic realm=\"wsgate\""));
    let wrong = Client { secret: "wrong".into(), ..clone_of(&client) };
    oauth_error(&http.post_form("/oauth2/token", wrong.basic(), &grant).await, 401, "invalid_client");
    let unknown = Client { client_id: "nobody".into(), ..clone_of(&client) };
    oauth_error(&http.post_form("/oauth2/token", unknown.basic(), &grant).await, 401, "invalid_client");
    let garbled = vec![("authorization".to_string(), "Basic !!!".to_string())];
    oauth_error(&http.post_form("/oauth2/token", garbled, &grant).await, 401, "invalid_client");

    oauth_error(&http.post_form("/oauth2/token", client.basic(), &[]).await, 400, "invalid_request");
    let password = [("grant_type", "password"), ("username", "a"), ("password", "b")];
    oauth_error(&http.post_form("/oauth2/token", client.basic(), &password).await, 400, "unsupported_grant_type");
    let scope = [("grant_type", "client_credentials"), ("scope", "bad\\scope")];
    oauth_error(&http.post_form("/oauth2/token", client.basic(), &scope).await, 400, "invalid_scope");
    let twice = [("grant_type", "client_credentials"), ("grant_type", "client_credentials")];
    oauth_error(&http.post_form("/oauth2/token", client.basic(), &twice).await, 400, "invalid_request");
    let both = [("grant_type", "client_credentials"), ("client_secret", client.secret.as_str())];
    oauth_error(&http.post_form("/oauth2/token", client.basic(), &both).await, 400, "invalid_request");
    let json_body = Some(("application/json".to_string(), b"{\"grant_type\":\"client_credentials\"}".to_vec()));
    let as_json = http.send(ureq::http::Method::POST, "/oauth2/token", client.basic(), json_body).await;
    oauth_error(&as_json, 400, "invalid_request");
}

fn clone_of(client: &Client) -> Client {
    Client {
        session: client.session.clone(),
        application_id: client.application_id.clone(),
        client_id: client.client_id.clone(),
        secret: client.secret.clone(),
    }
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// Verifies an ES256 JWT against a JWKS with ring, independently of the server's code.
fn verify_es256(token: &str, jwks: &Value) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS");
    let header = decode_part(parts[0]);
    let key = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap_or_else(|| panic!("kid {} is in the JWKS {jwks}", header["kid"]));
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str(), key["use"].as_str()),
        (Some("EC"), Some("P-256"), Some("ES256"), Some("sig"))
    );
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(key["x"].as_str().expect("x")).expect("x"));
    point.extend(URL_SAFE_NO_PAD.decode(key["y"].as_str().expect("y")).expect("y"));
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("signature");
    let input = format!("{}.{}", parts[0], parts[1]);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point)
        .verify(input.as_bytes(), &signature)
        .expect("the signature verifies with the published key");
    (header, decode_part(parts[1]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issued_jwt_verifies_against_the_jwks_and_carries_the_documented_claims() {
    let control = control().start().await;
    let client = client(&control, "alice").await;
    grant(&control, &client, &["chat", "read"]).await;
    let token = client.token(&control, Some("chat read")).await;
    let jwks = control.http.send(ureq::http::Method::GET, "/oauth2/jwks", vec![], None).await.expect(200);
    let (header, claims) = verify_es256(&token, &jwks);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "at+jwt", "RFC 9068's type for access tokens");
    assert!(header["kid"].is_string());

    assert_eq!(claims["iss"], control.issuer().as_str());
    assert_eq!(claims["sub"], client.client_id.as_str());
    assert_eq!(claims["client_id"], client.client_id.as_str());
    assert_eq!(claims["application_id"], client.application_id.as_str());
    assert_eq!(claims["aud"], "wsgate");
    assert_eq!(claims["scope"], "chat read");
    let (iat, nbf, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["nbf"].as_i64().expect("nbf"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert_eq!(nbf, iat);
    assert_eq!(exp - iat, 3600);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    assert!((iat - now).abs() < 60, "iat is now");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    let other = client.token(&control, None).await;
    assert_ne!(
        decode_part(other.split('.').nth(1).expect("claims"))["jti"],
        claims["jti"],
        "every token has its own jti"
    );
    assert_eq!(decode_part(other.split('.').nth(1).expect("claims"))["scope"], "chat read", "all granted");

    let discovery = control.http.send(ureq::http::Method::GET, "/.well-known/openid-configuration", vec![], None).await;
    let discovery = discovery.expect(200);
    assert_eq!(discovery["issuer"], control.issuer().as_str());
    for (key, path) in [
        ("token_endpoint", "/oauth2/token"),
        ("jwks_uri", "/oauth2/jwks"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("introspection_endpoint", "/oauth2/introspect"),
    ] {
        assert_eq!(discovery[key], format!("{}{path}", control.issuer()).as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_introspects_as_inactive() {
    let control = control().start().await;
    let alice = client(&control, "alice").await;
    grant(&control, &alice, &["chat"]).await;
    let bob = client(&control, "bob").await;
    let token = alice.token(&control, Some("chat")).await;
    let http = &control.http;
    let introspect = |who: &Client, token: &str| {
        let (headers, form) = (who.basic(), vec![("token".to_string(), token.to_string())]);
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            http.post_form("/oauth2/introspect", headers, &form).await.expect(200)
        }
    };

    let active = introspect(&alice, &token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], alice.client_id.as_str());
    assert_eq!(active["scope"], "chat");
    assert_eq!(active["aud"], "wsgate");
    assert_eq!(active["token_type"], "Bearer");
    for claim in ["sub", "exp", "iat", "iss", "jti"] {
        assert!(!active[claim].is_null(), "introspection shows {claim}: {active}");
    }
    assert_eq!(introspect(&bob, &token).await, json!({"active": false}), "another client learns nothing");
    assert_eq!(introspect(&alice, "not.a.token").await, json!({"active": false}));

    // An admin session may introspect any token; a subscriber session may not.
    let admin = control.admin().await;
    let bearer = |s: &Session| vec![("authorization".to_string(), format!("Bearer {}", s.token))];
    let form = [("token", token.as_str())];
    assert_eq!(http.post_form("/oauth2/introspect", bearer(&admin), &form).await.expect(200)["active"], true);
    oauth_error(&http.post_form("/oauth2/introspect", bearer(&alice.session), &form).await, 403, "access_denied");
    oauth_error(&http.post_form("/oauth2/introspect", vec![], &form).await, 401, "invalid_client");

    // Another client's revocation is ignored (but still 200, RFC 7009).
    http.post_form("/oauth2/revoke", bob.basic(), &form).await.expect(200);
    assert_eq!(introspect(&alice, &token).await["active"], true);
    http.post_form("/oauth2/revoke", alice.basic(), &form).await.expect(200);
    assert_eq!(introspect(&alice, &token).await, json!({"active": false}));
    assert_eq!(http.post_form("/oauth2/introspect", bearer(&admin), &form).await.expect(200)["active"], false);
    // Revoking again, or revoking garbage, is not an error.
    http.post_form("/oauth2/revoke", alice.basic(), &form).await.expect(200);
    http.post_form("/oauth2/revoke", alice.basic(), &[("token", "garbage")]).await.expect(200);
    oauth_error(&http.post_form("/oauth2/revoke", alice.basic(), &[]).await, 400, "invalid_request");
    oauth_error(&http.post_form("/oauth2/revoke", vec![], &form).await, 401, "invalid_client");
    // Other tokens of the same client stay valid.
    let fresh = alice.token(&control, None).await;
    assert_eq!(introspect(&alice, &fresh).await["active"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_rotate_and_old_keys_stay_published() {
    let control = control().signing_key_rotation(Duration::from_secs(1)).start().await;
    let client = client(&control, "alice").await;
    let first = client.token(&control, None).await;
    let kid = |token: &str| decode_part(token.split('.').next().expect("header"))["kid"].clone();
    // The rotation is counted in whole seconds: two of them are sure to end the first key's turn.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let second = client.token(&control, None).await;
    assert_ne!(kid(&first), kid(&second), "a new key signs after the rotation period");

    let jwks = control.http.send(ureq::http::Method::GET, "/oauth2/jwks", vec![], None).await.expect(200);
    verify_es256(&first, &jwks);
    verify_es256(&second, &jwks);
    let form = [("token", first.as_str())];
    let old = control.http.post_form("/oauth2/introspect", client.basic(), &form).await.expect(200);
    assert_eq!(old["active"], true, "tokens of the previous key stay valid until they expire");
}

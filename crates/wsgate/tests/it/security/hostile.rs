//! Tokens an attacker would try, each refused before the upgrade with the status an OAuth2
//! client expects: 401 with `WWW-Authenticate: Bearer … error="invalid_token"` when the token
//! is not good, 403 when it is good but not for this API, 400 when the request is ambiguous
//! (two credentials: which one counts must never depend on which one a parser reads last).
//!
//! Crafted tokens are signed by a test key put in the store, which the gateway trusts like the
//! control plane's own; a row signed correctly in every respect opens a connection, so each
//! refusal below is due to the one thing its row gets wrong.

use serde_json::{Value, json};

use super::socket::attempt;
use super::tokens::{Jwt, TestKey, now};
use super::world::{App, World, bearer, world};
use crate::harness::check_rows;

/// One hostile request and the answer it must get.
struct Row {
    what: &'static str,
    target: String,
    headers: Vec<(String, String)>,
    status: u16,
    /// The `error_description` of the `WWW-Authenticate` challenge (401 rows), or the
    /// `error` (403 scope row); empty when the answer has no challenge to check.
    says: &'static str,
}

fn row(what: &'static str, target: &str, headers: Vec<(String, String)>, status: u16, says: &'static str) -> Row {
    Row { what, target: target.to_string(), headers, status, says }
}

/// A token as the control plane issues it for `app`, valid for five minutes, unsigned yet.
pub(super) fn valid(world: &World, key: &TestKey, app: &App) -> Jwt {
    let now = now();
    Jwt::es256(&key.kid)
        .claim("iss", json!(world.control.issuer()))
        .claim("sub", json!(app.client_id))
        .claim("aud", json!("wsgate"))
        .claim("exp", json!(now + 300))
        .claim("iat", json!(now - 5))
        .claim("nbf", json!(now - 5))
        .claim("client_id", json!(app.client_id))
        .claim("application_id", json!(app.id))
        .claim("scope", json!(""))
        .fresh_jti()
}

/// Replaces the claims of a signed token, keeping its header and signature.
fn with_claims_swapped(token: &str, claims: &Value) -> String {
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("JSON"));
    format!("{}.{payload}.{}", parts[0], parts[2])
}

fn header(name: &str, value: &str) -> Vec<(String, String)> {
    vec![(name.to_string(), value.to_string())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tokens_are_refused_with_the_right_status() {
    let world = world().start().await;
    let api = world.api("/hostile").published().await;
    let scoped = world.api("/scoped").scopes(&["chat"]).published().await;
    let app = world.application("Legit").await;
    world.subscribe(&app, &api).await;
    let scoped_subscription = world.subscribe(&app, &scoped).await;
    world.grant(&scoped_subscription, &["chat"]).await;
    let stranger = world.application("Stranger").await;
    let blocked = world.application("Blocked").await;
    let blocked_subscription = world.subscribe(&blocked, &api).await;
    world.block(&blocked_subscription).await;
    let revoked = world.token(&app).await;
    world.revoke(&app, &revoked).await;
    let stranger_token = world.token(&stranger).await;
    let blocked_token = world.token(&blocked).await;

    // The test key goes in last: once a token it signs opens a connection, the gateway's
    // snapshot holds every change above.
    let key = TestKey::generate("security-test-key");
    world.control.store.put_signing_key(&key.record()).await.expect("the test key is stored");
    let good = valid(&world, &key, &app).signed_by(&key);
    world.until_answered(&api.path, &bearer(&good), 101).await;

    let p = api.path.as_str();
    let now = now();
    let other_key = TestKey::generate(&key.kid);
    let tampered = with_claims_swapped(&good, valid(&world, &key, &stranger).claim("exp", json!(now + 86400)).claims());
    // A token of about `len` bytes: the padding claim grows by 4/3 in base64url.
    let long_token =
        |len: usize| valid(&world, &key, &app).claim("padding", json!("x".repeat(len * 3 / 4))).signed_by(&key);
    let (long, longer) = (long_token(9 * 1024), long_token(20 * 1024));
    assert!(long.len() > 8 * 1024 && long.len() < 15 * 1024, "{}", long.len());
    assert!(longer.len() > 16 * 1024, "{}", longer.len());
    let rows = vec![
        row("a token signed right in every respect", p, bearer(&good), 101, ""),
        row(
            "expired 10 s ago, inside the 30 s leeway",
            p,
            bearer(&valid(&world, &key, &app).claim("exp", json!(now - 10)).signed_by(&key)),
            101,
            "",
        ),
        row(
            "alg none, no signature",
            p,
            bearer(&valid(&world, &key, &app).header("alg", json!("none")).unsigned()),
            401,
            "algorithm does not match the key",
        ),
        row(
            "HS256 keyed with the public key's bytes",
            p,
            bearer(&valid(&world, &key, &app).header("alg", json!("HS256")).hmac_signed(key.public_key())),
            401,
            "algorithm does not match the key",
        ),
        row(
            "signed by another key under the trusted kid",
            p,
            bearer(&valid(&world, &key, &app).signed_by(&other_key)),
            401,
            "bad signature",
        ),
        row("claims changed after signing", p, bearer(&tampered), 401, "bad signature"),
        row(
            "an unknown kid",
            p,
            bearer(&valid(&world, &key, &app).header("kid", json!("no-such-key")).signed_by(&key)),
            401,
            "unknown signing key",
        ),
        row(
            "no kid",
            p,
            bearer(&valid(&world, &key, &app).header("kid", Value::Null).signed_by(&key)),
            401,
            "unknown signing key",
        ),
        row(
            "expired 60 s ago, beyond the leeway",
            p,
            bearer(&valid(&world, &key, &app).claim("exp", json!(now - 60)).signed_by(&key)),
            401,
            "token expired",
        ),
        row(
            "no exp",
            p,
            bearer(&valid(&world, &key, &app).claim("exp", Value::Null).signed_by(&key)),
            401,
            "token has no expiry",
        ),
        row(
            "nbf 60 s ahead, beyond the leeway",
            p,
            bearer(&valid(&world, &key, &app).claim("nbf", json!(now + 60)).signed_by(&key)),
            401,
            "token not yet valid",
        ),
        row(
            "another issuer",
            p,
            bearer(&valid(&world, &key, &app).claim("iss", json!("https://evil.example")).signed_by(&key)),
            401,
            "wrong issuer",
        ),
        row(
            "another audience",
            p,
            bearer(&valid(&world, &key, &app).claim("aud", json!("someone-else")).signed_by(&key)),
            401,
            "wrong audience",
        ),
        row(
            "no jti, so it could never be revoked",
            p,
            bearer(&valid(&world, &key, &app).claim("jti", Value::Null).signed_by(&key)),
            401,
            "token cannot be revoked (no jti or iat)",
        ),
        row(
            "no iat, so an application-wide revocation could not cover it",
            p,
            bearer(&valid(&world, &key, &app).claim("iat", Value::Null).signed_by(&key)),
            401,
            "token cannot be revoked (no jti or iat)",
        ),
        row("revoked by its client at /oauth2/revoke", p, bearer(&revoked), 401, "token revoked"),
        row("of an application not subscribed", p, bearer(&stranger_token), 403, ""),
        row("of a BLOCKED subscription", p, bearer(&blocked_token), 403, ""),
        row("without the API's required scope", &scoped.path, bearer(&good), 403, "insufficient_scope"),
        row(
            "with the API's required scope",
            &scoped.path,
            bearer(&valid(&world, &key, &app).claim("scope", json!("read chat")).signed_by(&key)),
            101,
            "",
        ),
        row("header and access_token that disagree", &format!("{p}?access_token={revoked}"), bearer(&good), 400, ""),
        row("two Authorization headers, the same token", p, [bearer(&good), bearer(&good)].concat(), 400, ""),
        row("two Authorization headers, the good one last", p, [bearer(&revoked), bearer(&good)].concat(), 400, ""),
        row(
            "an access_token parameter with an encoded name that disagrees",
            &format!("{p}?%61ccess_token={revoked}"),
            bearer(&good),
            400,
            "",
        ),
        row(
            "two access_token parameters that disagree",
            &format!("{p}?access_token={revoked}&access_token={good}"),
            vec![],
            400,
            "",
        ),
        row(
            "typed as an ID token (RFC 8725 3.11)",
            p,
            bearer(&valid(&world, &key, &app).header("typ", json!("id_token+jwt")).signed_by(&key)),
            401,
            "not an access token (typ)",
        ),
        row(
            "typed as a logout token",
            p,
            bearer(&valid(&world, &key, &app).header("typ", json!("logout+jwt")).signed_by(&key)),
            401,
            "not an access token (typ)",
        ),
        row(
            "typed as an access token (RFC 9068)",
            p,
            bearer(&valid(&world, &key, &app).header("typ", json!("at+jwt")).signed_by(&key)),
            101,
            "",
        ),
        row("untyped", p, bearer(&valid(&world, &key, &app).header("typ", Value::Null).signed_by(&key)), 101, ""),
        row("header and access_token that agree", &format!("{p}?access_token={good}"), bearer(&good), 101, ""),
        row("over 8 KiB, inside the 16 KiB head limit", p, bearer(&long), 401, "token too long"),
        row("over the 16 KiB head limit", p, bearer(&longer), 431, ""),
        row(
            "Basic credentials",
            p,
            header("Authorization", "Basic YWRtaW46YWRtaW4tcGFzc3dvcmQ="),
            401,
            "WebSocket APIs take OAuth2 bearer tokens",
        ),
        row("an apikey header", p, header("apikey", &good), 401, "WebSocket APIs take OAuth2 bearer tokens"),
        row("an x-api-key header", p, header("x-api-key", &good), 401, "WebSocket APIs take OAuth2 bearer tokens"),
        row("no token at all", p, vec![], 401, "missing access token"),
        row(
            "a token without its Bearer prefix",
            p,
            header("Authorization", &good),
            401,
            "the Authorization header lacks the Bearer prefix",
        ),
        row("Bearer abc", p, header("Authorization", "Bearer abc"), 401, "not a JWT"),
        row("Bearer and nothing else", p, header("Authorization", "Bearer "), 401, "missing access token"),
    ];

    let addr = world.ws_addr();
    check_rows(
        rows,
        |row| row.what.to_string(),
        move |row| async move {
            let (answer, _socket) = attempt(addr, &row.target, &row.headers).await;
            assert_eq!(answer.status(), row.status, "{answer:?}");
            let challenge = answer.header("WWW-Authenticate");
            match row.status {
                401 => {
                    let expected =
                        format!("Bearer realm=\"wsgate\", error=\"invalid_token\", error_description=\"{}\"", row.says);
                    assert_eq!(challenge, Some(expected.as_str()), "{answer:?}");
                }
                403 if !row.says.is_empty() => {
                    let challenge = challenge.unwrap_or_else(|| panic!("a challenge: {answer:?}"));
                    assert!(challenge.contains(&format!("error=\"{}\"", row.says)), "{answer:?}");
                }
                _ => assert_eq!(challenge, None, "{answer:?}"),
            }
        },
    )
    .await;
}

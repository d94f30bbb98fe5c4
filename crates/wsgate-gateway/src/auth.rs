//! Who is calling: the access token from `Authorization: Bearer …` or `?access_token=…`,
//! validated locally against the snapshot (no store query per handshake), then the caller's
//! right to this API. The result is a [`Principal`], or the refusal an OAuth2 client expects.
//!
//! Rules that matter for safety: the algorithm is the key's (ES256), never the token's header's
//! choice; `exp`/`nbf` get a small leeway for clock skew; `iss` and `aud` must match; revoked
//! `jti`s are refused; an application needs an ACTIVE subscription to the API, and each scope
//! the API requires must be both in the token and still granted to that subscription. An
//! external provider's token maps to an application only through a client registered on it
//! (`Application::external_clients`), never through a client id wsgate generated.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::Deserialize;

use crate::handshake::RequestHead;
use crate::idp::Providers;
use crate::rejection::Rejection;
use crate::route::Managed;
use crate::snapshot::Access;

/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY: i64 = 30;
/// The audience the key manager puts in every token for this gateway.
pub const AUDIENCE: &str = "wsgate";

/// The authenticated caller of one connection.
#[derive(Debug, Clone)]
pub struct Principal {
    pub jti: String,
    pub client_id: String,
    pub application_id: String,
    pub application: String,
    /// The application's owner.
    pub subscriber: String,
    pub plan: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    #[serde(default)]
    aud: Audience,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
    client_id: Option<String>,
    /// OIDC's "authorized party": the client id in some providers' access tokens.
    azp: Option<String>,
    application_id: Option<String>,
    #[serde(default)]
    scope: String,
}

/// `aud` may be a string or a list.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Audience {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Audience::None => false,
            Audience::One(one) => one == wanted,
            Audience::Many(many) => many.iter().any(|a| a == wanted),
        }
    }
}

/// Checks the caller of an OAuth2 API. `now` is unix seconds.
pub async fn authenticate(
    head: &RequestHead,
    managed: &Managed,
    access: &Access,
    providers: &Providers,
    now: i64,
) -> Result<Principal, Rejection> {
    let token = find_token(head)?;
    let (claims, external) = verify(token, access, providers, now).await?;
    let client_id = claims.client_id.clone().or_else(|| claims.azp.clone()).unwrap_or_default();
    // The control plane names the application; an external provider's token is mapped to one
    // through its client id.
    let application_id = if external {
        registered_application(access, claims.iss.as_deref().unwrap_or_default(), &client_id)?
    } else {
        claims.application_id.clone().ok_or(Rejection::InvalidToken("token names no application"))?
    };
    let issued_at = claims.iat.unwrap_or(0);
    if access.is_revoked(claims.jti.as_deref().unwrap_or_default(), &application_id, issued_at) {
        return Err(Rejection::InvalidToken("token revoked"));
    }
    let subscription = access.allows(&application_id, &managed.id).map_err(Rejection::NotAllowed)?;
    // A scope a publisher withdrew stops opening connections, even in tokens issued before.
    let carried: Vec<&str> = claims.scope.split_whitespace().collect();
    let granted = &subscription.granted_scopes;
    if !managed.scopes.iter().all(|needed| carried.contains(&needed.as_str()) && granted.contains(needed)) {
        return Err(Rejection::InsufficientScope);
    }
    let application = access.applications.get(&application_id);
    Ok(Principal {
        jti: claims.jti.unwrap_or_default(),
        client_id,
        application: application.map(|a| a.name.clone()).unwrap_or_default(),
        subscriber: application.map(|a| a.owner.clone()).unwrap_or_default(),
        plan: subscription.plan.clone(),
        application_id,
        issued_at,
        expires_at: claims.exp.unwrap_or(i64::MAX),
    })
}

/// The application on which `issuer`'s client `client_id` is registered.
fn registered_application(access: &Access, issuer: &str, client_id: &str) -> Result<String, Rejection> {
    match access.external_clients.get(&(issuer.to_string(), client_id.to_string())).map(Vec::as_slice) {
        Some([application]) => Ok(application.clone()),
        Some([_, _, ..]) => Err(Rejection::InvalidToken("the client is registered on several applications")),
        _ => Err(Rejection::InvalidToken("no application has this client id")),
    }
}

/// The bearer token from the header or the `access_token` query parameter. Basic credentials
/// and API keys get a refusal that says what WebSocket APIs take instead.
fn find_token(head: &RequestHead) -> Result<&str, Rejection> {
    let mut from_header = None;
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case("apikey") || name.eq_ignore_ascii_case("x-api-key") {
            return Err(Rejection::CredentialsNotAccepted);
        }
        if name.eq_ignore_ascii_case("authorization") {
            let value =
                std::str::from_utf8(value).map_err(|_| Rejection::InvalidToken("malformed Authorization header"))?;
            let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
            if scheme.eq_ignore_ascii_case("bearer") {
                from_header = Some(rest.trim());
            } else {
                return Err(Rejection::CredentialsNotAccepted);
            }
        }
    }
    let from_query = query_token(&head.target);
    let token = match (from_header, from_query) {
        (Some(header), Some(query)) if header != query => return Err(Rejection::ConflictingTokens),
        (Some(token), _) | (None, Some(token)) => token,
        (None, None) => return Err(Rejection::MissingToken),
    };
    if token.is_empty() {
        return Err(Rejection::MissingToken);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(Rejection::InvalidToken("token too long"));
    }
    Ok(token)
}

fn query_token(target: &str) -> Option<&str> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| pair.strip_prefix("access_token="))
}

/// `target` without its `access_token` parameter: the token is for the gateway, never for the
/// upstream or its logs.
pub fn without_access_token(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else { return target.to_string() };
    let kept: Vec<&str> =
        query.split('&').filter(|pair| !pair.starts_with("access_token=") && *pair != "access_token").collect();
    if kept.is_empty() { path.to_string() } else { format!("{path}?{}", kept.join("&")) }
}

/// Signature and registered claims. Returns the claims and whether an external provider
/// issued them.
async fn verify(token: &str, access: &Access, providers: &Providers, now: i64) -> Result<(Claims, bool), Rejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::InvalidToken("not a JWT"));
    };
    let decode = |part: &str| B64URL.decode(part).map_err(|_| Rejection::InvalidToken("not a JWT"));
    let head: Header = serde_json::from_slice(&decode(header)?).map_err(|_| Rejection::InvalidToken("not a JWT"))?;
    // Read before the signature is checked only to pick the issuer's keys; nothing in it is
    // trusted until the signature verifies with one of them.
    let claims: Claims =
        serde_json::from_slice(&decode(payload)?).map_err(|_| Rejection::InvalidToken("malformed claims"))?;
    let kid = head.kid.as_deref().ok_or(Rejection::InvalidToken("unknown signing key"))?;
    let issuer = claims.iss.as_deref().ok_or(Rejection::InvalidToken("wrong issuer"))?;
    let (key, audience, external) = if access.issuer.as_deref() == Some(issuer) {
        (access.keys.get(kid).cloned(), AUDIENCE, false)
    } else if let Some(provider) = providers.for_issuer(issuer) {
        (provider.key(kid).await, provider.audience.as_str(), true)
    } else {
        return Err(Rejection::InvalidToken("wrong issuer"));
    };
    let key = key.ok_or(Rejection::InvalidToken("unknown signing key"))?;
    // The key decides the algorithm: a token claiming another one (none, HS256 with the public
    // key as secret…) is refused before its signature is looked at.
    if head.alg != key.alg() {
        return Err(Rejection::InvalidToken("algorithm does not match the key"));
    }
    let signed = &token[..header.len() + 1 + payload.len()];
    if !key.verifies(signed.as_bytes(), &decode(signature)?) {
        return Err(Rejection::InvalidToken("bad signature"));
    }
    match claims.exp {
        Some(exp) if exp + LEEWAY > now => {}
        Some(_) => return Err(Rejection::InvalidToken("token expired")),
        None => return Err(Rejection::InvalidToken("token has no expiry")),
    }
    if claims.nbf.is_some_and(|nbf| nbf - LEEWAY > now) {
        return Err(Rejection::InvalidToken("token not yet valid"));
    }
    if !claims.aud.contains(audience) {
        return Err(Rejection::InvalidToken("wrong audience"));
    }
    // The control plane's tokens always carry a jti and an iat, so that they can be revoked
    // (checked once the application is known).
    if !external && (claims.jti.is_none() || claims.iat.is_none()) {
        return Err(Rejection::InvalidToken("token cannot be revoked (no jti or iat)"));
    }
    Ok((claims, external))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_token_parameter_never_goes_upstream() {
        assert_eq!(without_access_token("/x?access_token=abc"), "/x");
        assert_eq!(without_access_token("/x?a=1&access_token=abc&b=2"), "/x?a=1&b=2");
        assert_eq!(without_access_token("/x?a=1"), "/x?a=1");
        assert_eq!(without_access_token("/x"), "/x");
        assert_eq!(without_access_token("?access_token"), "");
    }

    #[test]
    fn audiences_may_be_one_or_many() {
        assert!(Audience::One("wsgate".into()).contains("wsgate"));
        assert!(Audience::Many(vec!["a".into(), "wsgate".into()]).contains("wsgate"));
        assert!(!Audience::None.contains("wsgate"));
    }
}

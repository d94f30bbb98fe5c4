//! Who is calling: the access token from `Authorization: Bearer …` or `?access_token=…`,
//! validated locally against the snapshot (no store query per handshake), then the caller's
//! right to this API. The result is a [`Principal`], or the refusal an OAuth2 client expects.
//!
//! Rules that matter for safety: the algorithm is the key's (ES256), never the token's header's
//! choice; a `typ` other than an access token's is refused (RFC 8725 section 3.11: an ID token
//! is not an access token); `exp`/`nbf` get a small leeway for clock skew, and a connection
//! lives until the leeway past `exp` ends, never less; `iss` and `aud` must match; revoked
//! `jti`s are refused; an application needs an ACTIVE subscription to the API, and each scope
//! the API requires must be both in the token and still granted to that subscription. An
//! external provider's token maps to an application only through a client registered on it
//! (`Application::external_clients`), never through a client id wsgate generated. A request
//! that carries two credentials (two Authorization headers, two different tokens) is refused:
//! which one counts must never depend on which one a parser happens to read last.

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

impl Principal {
    /// Unix seconds at which the token stops being accepted: `exp` plus the leeway. A live
    /// connection is closed then, so a token accepted inside the leeway (already past `exp` by
    /// this clock) gets the rest of the leeway instead of a 4001 right after its 101.
    pub fn valid_until(&self) -> i64 {
        self.expires_at.saturating_add(LEEWAY)
    }
}

#[derive(Deserialize)]
pub(crate) struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
}

/// Whether a JOSE `typ` names an access token: RFC 9068's `at+jwt` (what the control plane
/// writes), or the generic `JWT` most providers put on theirs; media types may carry the
/// `application/` prefix (RFC 7515 section 4.1.9). Anything else (an ID token's, a logout or
/// DPoP token's type) is another kind of token.
fn is_access_token_type(typ: &str) -> bool {
    let typ = typ.strip_prefix("application/").unwrap_or(typ);
    typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("jwt")
}

#[derive(Deserialize)]
pub(crate) struct Claims {
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
pub(crate) fn find_token(head: &RequestHead) -> Result<&str, Rejection> {
    if head.values("authorization").nth(1).is_some() {
        return Err(Rejection::RepeatedAuthorization);
    }
    let mut from_header = None;
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case("apikey") || name.eq_ignore_ascii_case("x-api-key") {
            return Err(Rejection::CredentialsNotAccepted);
        }
        if name.eq_ignore_ascii_case("authorization") {
            let value =
                std::str::from_utf8(value).map_err(|_| Rejection::InvalidToken("malformed Authorization header"))?;
            let Some((scheme, rest)) = value.trim().split_once(' ') else {
                // A value without a scheme is almost always a token pasted without "Bearer ".
                return Err(if value.trim().eq_ignore_ascii_case("bearer") {
                    Rejection::MissingToken
                } else {
                    Rejection::BearerPrefixMissing
                });
            };
            if scheme.eq_ignore_ascii_case("bearer") {
                from_header = Some(rest.trim());
            } else {
                return Err(Rejection::CredentialsNotAccepted);
            }
        }
    }
    let mut from_query = query_tokens(&head.target);
    let first_in_query = from_query.next();
    if from_query.any(|other| Some(other) != first_in_query) {
        return Err(Rejection::ConflictingTokens);
    }
    let token = match (from_header, first_in_query) {
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

/// Every `access_token` value in the query, in order.
fn query_tokens(target: &str) -> impl Iterator<Item = &str> {
    let query = target.split_once('?').map(|(_, query)| query).unwrap_or_default();
    query.split(QUERY_SEPARATORS).filter_map(|pair| match pair.split_once('=') {
        Some((name, value)) if names_access_token(name) => Some(value),
        _ => None,
    })
}

/// What separates query parameters: `&`, and `;` which some frameworks also split on (Rack
/// did by default), so that `a=1;access_token=…` is a token to them.
const QUERY_SEPARATORS: [char; 2] = ['&', ';'];

/// Whether a query parameter's name is `access_token` once percent-decoded, as an upstream
/// framework reads it: `%61ccess_token` or `access%5Ftoken` name the token just as well, and
/// must neither slip a second token past the gateway nor reach the upstream.
pub(crate) fn names_access_token(name: &str) -> bool {
    const WANTED: &[u8] = b"access_token";
    let mut bytes = name.bytes();
    let mut matched = 0;
    while let Some(byte) = bytes.next() {
        let decoded = match byte {
            b'%' => {
                let hex = [bytes.next(), bytes.next()];
                match hex {
                    [Some(hi), Some(lo)] => match (char::from(hi).to_digit(16), char::from(lo).to_digit(16)) {
                        (Some(hi), Some(lo)) => (hi * 16 + lo) as u8,
                        _ => return false,
                    },
                    _ => return false,
                }
            }
            other => other,
        };
        if WANTED.get(matched) != Some(&decoded) {
            return false;
        }
        matched += 1;
    }
    matched == WANTED.len()
}

/// `target` without its `access_token` parameters (however their names are encoded): the
/// token is for the gateway, never for the upstream or its logs.
pub fn without_access_token(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else { return target.to_string() };
    let mut kept = String::with_capacity(query.len());
    let mut separator = None;
    let mut rest = query;
    loop {
        let end = rest.find(QUERY_SEPARATORS).unwrap_or(rest.len());
        let pair = &rest[..end];
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        if !names_access_token(name) {
            if let Some(separator) = separator.filter(|_| !kept.is_empty()) {
                kept.push(separator);
            }
            kept.push_str(pair);
        }
        let Some(next) = rest[end..].chars().next() else { break };
        separator = Some(next);
        rest = &rest[end + 1..];
    }
    if kept.is_empty() { path.to_string() } else { format!("{path}?{kept}") }
}

/// A JWT split and parsed, its signature not checked yet: nothing in it is trusted until
/// [`verify`] has checked the signature with a key chosen by its issuer.
pub(crate) struct Decoded<'a> {
    pub header: Header,
    pub claims: Claims,
    /// `header.payload`, the bytes the signature covers.
    pub signed: &'a str,
    pub signature: Vec<u8>,
}

/// Splits a compact JWS and parses its header and claims. Also refuses a `typ` that is not an
/// access token's.
pub(crate) fn decode(token: &str) -> Result<Decoded<'_>, Rejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::InvalidToken("not a JWT"));
    };
    let decode = |part: &str| B64URL.decode(part).map_err(|_| Rejection::InvalidToken("not a JWT"));
    let head: Header = serde_json::from_slice(&decode(header)?).map_err(|_| Rejection::InvalidToken("not a JWT"))?;
    if head.typ.as_deref().is_some_and(|typ| !is_access_token_type(typ)) {
        return Err(Rejection::InvalidToken("not an access token (typ)"));
    }
    let claims: Claims =
        serde_json::from_slice(&decode(payload)?).map_err(|_| Rejection::InvalidToken("malformed claims"))?;
    Ok(Decoded {
        header: head,
        claims,
        signed: &token[..header.len() + 1 + payload.len()],
        signature: decode(signature)?,
    })
}

/// Signature and registered claims. Returns the claims and whether an external provider
/// issued them.
async fn verify(token: &str, access: &Access, providers: &Providers, now: i64) -> Result<(Claims, bool), Rejection> {
    // The claims are read before the signature is checked only to pick the issuer's keys.
    let Decoded { header: head, claims, signed, signature } = decode(token)?;
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
    if !key.verifies(signed.as_bytes(), &signature) {
        return Err(Rejection::InvalidToken("bad signature"));
    }
    check_claims(&claims, audience, external, now)?;
    Ok((claims, external))
}

/// The registered claims of a token whose signature verified.
pub(crate) fn check_claims(claims: &Claims, audience: &str, external: bool, now: i64) -> Result<(), Rejection> {
    match claims.exp {
        Some(exp) if exp.saturating_add(LEEWAY) > now => {}
        Some(_) => return Err(Rejection::InvalidToken("token expired")),
        None => return Err(Rejection::InvalidToken("token has no expiry")),
    }
    if claims.nbf.is_some_and(|nbf| nbf.saturating_sub(LEEWAY) > now) {
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
    Ok(())
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
        assert_eq!(without_access_token("/x?%61ccess_token=a&b=1;access%5Ftoken=c;d=2"), "/x?b=1;d=2");
        assert_eq!(
            without_access_token("/x?!access_token=a&access_tokens=b&c"),
            "/x?!access_token=a&access_tokens=b&c"
        );
        assert_eq!(without_access_token("/x?a=1&&b=2"), "/x?a=1&&b=2");
    }

    #[test]
    fn token_parameters_are_found_however_their_names_are_encoded() {
        let tokens = |target| query_tokens(target).collect::<Vec<_>>();
        assert_eq!(tokens("/x?access_token=a&%61ccess%5ftoken=b;access_token=c"), ["a", "b", "c"]);
        assert_eq!(tokens("/x?access_token&xaccess_token=a&access_token2=b&access_%2"), Vec::<&str>::new());
    }

    #[test]
    fn only_access_token_types_pass() {
        for typ in ["JWT", "jwt", "at+jwt", "AT+JWT", "application/at+jwt"] {
            assert!(is_access_token_type(typ), "{typ}");
        }
        for typ in ["id_token+jwt", "logout+jwt", "dpop+jwt", "secevent+jwt", "JOSE", ""] {
            assert!(!is_access_token_type(typ), "{typ}");
        }
    }

    #[test]
    fn audiences_may_be_one_or_many() {
        assert!(Audience::One("wsgate".into()).contains("wsgate"));
        assert!(Audience::Many(vec!["a".into(), "wsgate".into()]).contains("wsgate"));
        assert!(!Audience::None.contains("wsgate"));
    }
}

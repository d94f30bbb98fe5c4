//! What an OAuth2 request carries, read cheaply before anything expensive runs: the form
//! ([`OAuthForm`]: bounded size and parameter count, each name at most once, one linear pass)
//! and the client's credentials, then the client authentication itself, throttled per client
//! id and address (see `throttle`) before a single hash is computed.

use std::collections::HashSet;

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use wsgate_core::model::ClientCredentials;

use super::OAuthError;
use crate::clients;
use crate::limits::{ClientAddress, MAX_OAUTH_BODY, form_pairs, read_body};
use crate::state::AppState;
use crate::throttle::Kind;

/// The parameters of an `application/x-www-form-urlencoded` request, in order, each name at
/// most once (RFC 6749 section 3.2). At most 16 KiB and 256 parameters; duplicates are found
/// with a set, so the whole check is linear in the body's size.
#[derive(Debug)]
pub struct OAuthForm(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(request: Request, _: &S) -> Result<OAuthForm, OAuthError> {
        let (parts, body) = request.into_parts();
        let form_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !form_type {
            return Err(OAuthError::InvalidRequest(
                "the body must be application/x-www-form-urlencoded (Content-Type)".into(),
            ));
        }
        let bytes = read_body(&parts.headers, body, MAX_OAUTH_BODY).await.map_err(OAuthError::Body)?;
        let pairs = form_pairs(&bytes).map_err(OAuthError::Body)?;
        let mut seen = HashSet::with_capacity(pairs.len());
        if let Some((name, _)) = pairs.iter().find(|(name, _)| !seen.insert(name.as_str())) {
            return Err(OAuthError::InvalidRequest(format!("parameter {name} is given more than once")));
        }
        Ok(OAuthForm(pairs))
    }
}

impl OAuthForm {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The client id and secret presented by HTTP Basic (RFC 6749 section 2.3.1, each part
/// form-urlencoded) or by `client_id`/`client_secret` parameters; never both.
pub fn presented_client(headers: &HeaderMap, form: &OAuthForm) -> Result<Option<(String, String)>, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(value) => match value.split_once(' ') {
            Some((scheme, encoded)) if scheme.eq_ignore_ascii_case("basic") => {
                let malformed = || OAuthError::InvalidClient("malformed Basic credentials".into());
                let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
                let text = String::from_utf8(decoded).map_err(|_| malformed())?;
                let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
                Some((form_decode(id).ok_or_else(malformed)?, form_decode(secret).ok_or_else(malformed)?))
            }
            _ => None,
        },
        None => None,
    };
    let posted = form.get("client_secret").map(|secret| (form.get("client_id").unwrap_or_default(), secret));
    match (basic, posted) {
        (Some(_), Some(_)) => Err(OAuthError::InvalidRequest(
            "use one client authentication method: Basic or client_secret, not both".into(),
        )),
        (Some(basic), None) => Ok(Some(basic)),
        (None, Some((id, secret))) => Ok(Some((id.to_string(), secret.to_string()))),
        (None, None) => Ok(None),
    }
}

/// Decodes `%XX` and `+` (application/x-www-form-urlencoded).
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The authenticated client: its credentials as stored. A client id or address with too many
/// recent failures is refused with 429 before its secret is hashed; a failure is logged with
/// the client id and address (never the secret).
pub async fn authenticate(
    state: &AppState,
    address: ClientAddress,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<ClientCredentials, OAuthError> {
    let (id, secret) = presented_client(headers, form)?.ok_or_else(|| {
        OAuthError::InvalidClient("client authentication required (HTTP Basic or client_secret)".into())
    })?;
    if let Err(locked) = state.throttle.check(Kind::Client, &id, address.0) {
        tracing::info!(client_id = ?id, client_address = %address, "client authentication throttled");
        return Err(OAuthError::TooManyAttempts(locked.retry_after_secs()));
    }
    match clients::authenticate(&state.hasher, state.store(), &state.decoy_hash, &id, &secret).await? {
        Some(credentials) => {
            state.throttle.succeeded(Kind::Client, &id, address.0);
            Ok(credentials)
        }
        None => {
            state.throttle.failed(Kind::Client, &id, address.0);
            tracing::warn!(client_id = ?id, client_address = %address, "OAuth2 client authentication failed");
            Err(OAuthError::InvalidClient("unknown client or wrong secret".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded_and_exclusive() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("my%20id:s+cr%3At");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {encoded}")).expect("header"));
        let found = presented_client(&headers, &OAuthForm(vec![])).expect("ok");
        assert_eq!(found, Some(("my id".into(), "s cr:t".into())));
        let posted = OAuthForm(vec![("client_secret".to_string(), "x".to_string())]);
        assert!(matches!(presented_client(&headers, &posted), Err(OAuthError::InvalidRequest(_))));
    }

    #[tokio::test]
    async fn forty_thousand_repeated_parameters_are_refused_in_linear_time() {
        let form = |body: String| {
            Request::builder()
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(body))
                .expect("request")
        };
        let started = std::time::Instant::now();
        let big = OAuthForm::from_request(form("a=&".repeat(40_000)), &()).await;
        assert!(matches!(big, Err(OAuthError::Body(crate::limits::BodyError::TooLarge(_)))), "{big:?}");
        let repeated = OAuthForm::from_request(form("a=&".repeat(200)), &()).await;
        assert!(matches!(repeated, Err(OAuthError::InvalidRequest(m)) if m.contains("more than once")));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}

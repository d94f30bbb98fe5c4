//! Who is calling: sessions (made at sign-in, presented as a bearer token or a cookie), the
//! CSRF token that guards cookie-authenticated writes, the [`Caller`] extractor every REST
//! handler takes, and role checks.
//!
//! A session token is 32 random bytes; the store keeps only its SHA-256, so a leaked database
//! holds no usable session. The CSRF token is an HMAC of the session token: a page of another
//! site can make the browser send the cookie but cannot read it, so it cannot compute the
//! header, while the portal gets the value from the login answer or `GET /api/v1/me`. Bearer
//! requests need no CSRF token, because browsers never attach a bearer token by themselves.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use ring::hmac;
use wsgate_core::model::{Role, Session, User};

use crate::crypto::{self, base64url, from_base64url};
use crate::error::ApiError;
use crate::limits::ClientAddress;
use crate::now;
use crate::state::AppState;
use crate::throttle::Kind;

pub const SESSION_COOKIE: &str = "wsgate_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A signed-in user, as a handler sees them.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// SHA-256 of the session token (the store's key for the session).
    pub session_hash: String,
    pub csrf_token: String,
    pub expires_at: i64,
}

impl Caller {
    pub fn name(&self) -> &str {
        &self.user.name
    }

    /// Whether the caller holds `role` (admins hold every role).
    pub fn has(&self, role: Role) -> bool {
        self.user.has(role)
    }

    /// Refuses with 403 unless the caller holds `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.has(role) { Ok(()) } else { Err(ApiError::MissingRole(role)) }
    }

    pub fn is_admin(&self) -> bool {
        self.user.roles.contains(&Role::Admin)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        identify(state, &parts.method, &parts.headers).await
    }
}

/// How a request presented its session.
enum Presented {
    Bearer(String),
    Cookie(String),
}

/// The signed-in caller of a request, checking the CSRF header on cookie-authenticated writes.
pub async fn identify(state: &AppState, method: &Method, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let presented = presented_session(headers).ok_or(ApiError::NotSignedIn)?;
    let token = match &presented {
        Presented::Bearer(token) | Presented::Cookie(token) => token.as_str(),
    };
    if let Presented::Cookie(_) = presented
        && !is_safe(method)
        && !csrf_matches(token, headers)
    {
        return Err(ApiError::CsrfTokenMismatch);
    }
    let session_hash = crypto::sha256_hex(token);
    let session = state.store().session(&session_hash, now()).await?.ok_or(ApiError::NotSignedIn)?;
    // A user removed after signing in no longer has a session worth honouring.
    let user = state.store().user(&session.user).await?.ok_or(ApiError::NotSignedIn)?;
    Ok(Caller { user, session_hash, csrf_token: csrf_token(token), expires_at: session.expires_at })
}

/// The bearer token, else the session cookie. Another `Authorization` scheme is not a session.
fn presented_session(headers: &HeaderMap) -> Option<Presented> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| Presented::Bearer(token.trim().to_string()));
    }
    session_cookie(headers).map(Presented::Cookie)
}

/// The value of the `wsgate_session` cookie, if sent.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of the cookie `name`, if sent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

const CSRF_LABEL: &[u8] = b"wsgate csrf token v1";

/// The CSRF token bound to a session token.
pub fn csrf_token(session_token: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, session_token.as_bytes());
    base64url(hmac::sign(&key, CSRF_LABEL).as_ref())
}

/// Compared by `hmac::verify`, in constant time.
fn csrf_matches(session_token: &str, headers: &HeaderMap) -> bool {
    let Some(tag) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).and_then(from_base64url) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, session_token.as_bytes());
    hmac::verify(&key, CSRF_LABEL, &tag).is_ok()
}

/// A fresh session for a user whose password was checked.
pub struct NewSession {
    pub token: String,
    pub csrf_token: String,
    pub expires_at: i64,
}

pub async fn open_session(state: &AppState, user: &str) -> Result<NewSession, ApiError> {
    let token = crypto::secret()?;
    let ttl = i64::try_from(state.settings.session_ttl.as_secs()).unwrap_or(i64::MAX / 4);
    let expires_at = now().saturating_add(ttl);
    let session = Session { token_hash: crypto::sha256_hex(&token), user: user.to_string(), expires_at };
    state.store().create_session(&session).await?;
    Ok(NewSession { csrf_token: csrf_token(&token), token, expires_at })
}

/// Checks a user name and password. Unknown names cost the same time as wrong passwords. An
/// account or address with too many recent failures gets 429 before anything is hashed (see
/// `throttle`); a failure is logged with the name and the client's address, never the password.
pub async fn check_password(
    state: &AppState,
    address: ClientAddress,
    name: &str,
    password: &str,
) -> Result<User, ApiError> {
    if let Err(locked) = state.throttle.check(Kind::User, name, address.0) {
        tracing::info!(user = ?name, client_address = %address, "sign-in throttled");
        return Err(ApiError::TooManyAttempts { retry_after: locked.retry_after_secs() });
    }
    let user = state.store().user(name).await?;
    let hash = user.as_ref().map_or(state.decoy_hash.as_str(), |u| u.password_hash.as_str()).to_string();
    let matches = state.hasher.verify(password.to_string(), hash).await?;
    match user.filter(|_| matches) {
        Some(user) => {
            state.throttle.succeeded(Kind::User, name, address.0);
            Ok(user)
        }
        None => {
            state.throttle.failed(Kind::User, name, address.0);
            tracing::warn!(user = ?name, client_address = %address, "sign-in failed");
            Err(ApiError::WrongCredentials)
        }
    }
}

/// `Set-Cookie` for a new session: not readable by scripts, sent only over HTTPS and only by
/// pages of this site.
pub fn session_cookie_header(token: &str, max_age: i64) -> HeaderValue {
    let value = format!("{SESSION_COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={max_age}");
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the session cookie.
pub fn cleared_cookie_header() -> HeaderValue {
    HeaderValue::from_static("wsgate_session=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_is_bound_to_its_session() {
        let mut headers = HeaderMap::new();
        headers.insert(CSRF_HEADER, HeaderValue::from_str(&csrf_token("session-a")).expect("header"));
        assert!(csrf_matches("session-a", &headers));
        assert!(!csrf_matches("session-b", &headers));
        assert!(!csrf_matches("session-a", &HeaderMap::new()));
    }

    #[test]
    fn the_session_comes_from_bearer_first_then_the_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; wsgate_session=tok; b=2"));
        assert!(matches!(presented_session(&headers), Some(Presented::Cookie(t)) if t == "tok"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer xyz"));
        assert!(matches!(presented_session(&headers), Some(Presented::Bearer(t)) if t == "xyz"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic eHl6"));
        assert!(presented_session(&headers).is_none());
    }
}

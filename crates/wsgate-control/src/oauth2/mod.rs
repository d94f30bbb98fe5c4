//! The OAuth2 authorization server: token (RFC 6749 client credentials), revocation (RFC
//! 7009), introspection (RFC 7662), JWKS (RFC 7517) and discovery. Form-encoded requests,
//! RFC 6749 error bodies (`{"error", "error_description"}`), rendered by [`OAuthError`] only.
//!
//! `request` reads the form and authenticates the client, cheaply and throttled, before any
//! endpoint here does its work.

mod request;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use wsgate_core::model::RevokedToken;

pub use request::OAuthForm;
use request::authenticate;

use crate::error::{ApiError, ControlError};
use crate::keys::{AccessToken, Claims, VerifyError};
use crate::limits::{BodyError, ClientAddress};
use crate::state::AppState;
use crate::{auth, now, scopes};

/// A refusal of an OAuth2 endpoint, in RFC 6749 section 5.2's terms.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    /// Unknown client, wrong secret or no client authentication: 401 with a Basic challenge.
    #[error("{0}")]
    InvalidClient(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    AccessDenied(String),
    /// The body is too large, too slow, or has too many parameters.
    #[error(transparent)]
    Body(BodyError),
    /// Too many failed client authentications: 429 with `Retry-After` (these seconds).
    #[error("too many failed client authentications; try again in {0} s")]
    TooManyAttempts(u64),
    /// Every password-hashing thread is busy: 503 with `Retry-After: 1`.
    #[error("too many client authentications at once; try again in a second")]
    Busy,
    #[error("the store is unavailable; try again ({0})")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl OAuthError {
    fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::AccessDenied(_) => "access_denied",
            OAuthError::Body(_) => "invalid_request",
            OAuthError::TooManyAttempts(_) | OAuthError::Busy | OAuthError::Unavailable(_) => "temporarily_unavailable",
            OAuthError::Internal(_) => "server_error",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            OAuthError::AccessDenied(_) => StatusCode::FORBIDDEN,
            OAuthError::Body(err) => err.status(),
            OAuthError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::Busy | OAuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        if let OAuthError::Internal(detail) = &self {
            tracing::error!(error = %detail, "OAuth2 request failed");
        }
        let body = Json(json!({ "error": self.code(), "error_description": self.to_string() }));
        let mut response = (self.status(), no_store(), body).into_response();
        let headers = response.headers_mut();
        match self {
            OAuthError::InvalidClient(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"wsgate\""));
            }
            OAuthError::TooManyAttempts(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            OAuthError::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // The rest of the body may still be on its way: the connection cannot be reused.
            OAuthError::Body(err) if err.closes() => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

impl From<ControlError> for OAuthError {
    fn from(err: ControlError) -> OAuthError {
        match ApiError::from(err) {
            ApiError::StoreUnavailable(message) => OAuthError::Unavailable(message),
            ApiError::Busy => OAuthError::Busy,
            other => OAuthError::Internal(other.to_string()),
        }
    }
}

impl From<wsgate_store::StoreError> for OAuthError {
    fn from(err: wsgate_store::StoreError) -> OAuthError {
        ControlError::Store(err).into()
    }
}

/// Token answers are secrets: no cache may keep them (RFC 6749 section 5.1).
fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// The successful token answer, also returned by `POST /api/v1/applications/{id}/token`.
#[derive(Debug, Serialize)]
pub struct TokenAnswer {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

impl TokenAnswer {
    pub fn of(token: &AccessToken) -> TokenAnswer {
        TokenAnswer {
            access_token: token.token.clone(),
            token_type: "Bearer",
            expires_in: token.expires_in(),
            scope: Some(token.claims.scope.clone()).filter(|s| !s.is_empty()),
        }
    }
}

/// RFC 6749 section 3.3: space-separated tokens of `%x21 / %x23-5B / %x5D-7E`.
pub fn valid_scope(scope: &str) -> bool {
    scope.len() <= 1000
        && (scope.is_empty()
            || scope.split(' ').all(|word| {
                !word.is_empty()
                    && word.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            }))
}

/// `POST /oauth2/token`.
/// The token carries the scopes asked for, each of which must be granted to the application
/// (see `scopes`); without `scope`, every scope granted to it.
pub async fn token(
    State(state): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    let client = authenticate(&state, address, &headers, &form).await?;
    match form.get("grant_type") {
        None => return Err(OAuthError::InvalidRequest("grant_type is missing".into())),
        Some("client_credentials") => {}
        Some(other) => {
            return Err(OAuthError::UnsupportedGrantType(format!(
                "grant_type {other} is not supported; use client_credentials"
            )));
        }
    }
    let requested = form.get("scope").filter(|s| !s.is_empty());
    if requested.is_some_and(|scope| !valid_scope(scope)) {
        return Err(OAuthError::InvalidScope("scope must be space-separated printable ASCII words".into()));
    }
    let granted = scopes::granted(state.store(), &client.application_id).await?;
    let scope = scopes::decide(requested, &granted).map_err(|refused| OAuthError::InvalidScope(refused.to_string()))?;
    let token = state.keys.issue(&client.client_id, &client.application_id, &scope).await?;
    Ok((no_store(), Json(TokenAnswer::of(&token))).into_response())
}

/// `POST /oauth2/revoke`: always 200 once the client is authenticated (RFC 7009 section 2.2),
/// whether the token was valid, already revoked or another client's (which stays valid).
pub async fn revoke(
    State(state): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<StatusCode, OAuthError> {
    let client = authenticate(&state, address, &headers, &form).await?;
    let token = form.get("token").ok_or_else(|| OAuthError::InvalidRequest("token is missing".into()))?;
    match state.keys.verify(token).await {
        Ok(claims) if claims.client_id == client.client_id => {
            state.store().revoke_token(&RevokedToken { jti: claims.jti.clone(), expires_at: claims.exp }).await?;
            tracing::info!(jti = %claims.jti, client_id = %client.client_id, "access token revoked");
        }
        Ok(_) | Err(VerifyError::Rejected(_)) => {}
        Err(VerifyError::Store(err)) => return Err(err.into()),
    }
    Ok(StatusCode::OK)
}

/// `POST /oauth2/introspect`: a client learns about its own tokens, an admin (signed in)
/// about any; everything else is `{"active": false}`, which reveals nothing.
pub async fn introspect(
    State(state): State<AppState>,
    address: ClientAddress,
    method: Method,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    let is_basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("basic ")));
    let client_id = if is_basic || form.get("client_secret").is_some() {
        Some(authenticate(&state, address, &headers, &form).await?.client_id)
    } else {
        let caller = auth::identify(&state, &method, &headers).await.map_err(|err| match err {
            ApiError::CsrfTokenMismatch => OAuthError::AccessDenied(err.to_string()),
            ApiError::StoreUnavailable(message) => OAuthError::Unavailable(message),
            _ => OAuthError::InvalidClient("authenticate as a client (Basic) or sign in as an admin".into()),
        })?;
        if !caller.is_admin() {
            return Err(OAuthError::AccessDenied("introspection with a session needs the admin role".into()));
        }
        None
    };
    let token = form.get("token").ok_or_else(|| OAuthError::InvalidRequest("token is missing".into()))?;
    let inactive = || Ok((no_store(), Json(json!({ "active": false }))).into_response());
    let claims = match state.keys.verify(token).await {
        Ok(claims) => claims,
        Err(VerifyError::Rejected(_)) => return inactive(),
        Err(VerifyError::Store(err)) => return Err(err.into()),
    };
    if client_id.as_ref().is_some_and(|id| *id != claims.client_id) {
        return inactive();
    }
    let revoked = state.store().list_revoked_tokens(now()).await?;
    if revoked.iter().any(|r| r.revokes(&claims.jti, &claims.application_id, claims.iat)) {
        return inactive();
    }
    Ok((no_store(), Json(active(&claims))).into_response())
}

fn active(claims: &Claims) -> Value {
    json!({
        "active": true,
        "client_id": claims.client_id,
        "application_id": claims.application_id,
        "sub": claims.sub,
        "exp": claims.exp,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "scope": claims.scope,
        "aud": claims.aud,
        "iss": claims.iss,
        "jti": claims.jti,
        "token_type": "Bearer",
    })
}

/// `GET /oauth2/jwks`.
pub async fn jwks(State(state): State<AppState>) -> Result<Response, OAuthError> {
    Ok(Json(state.keys.jwks().await?).into_response())
}

/// `GET /.well-known/openid-configuration`: where everything is, for clients that discover.
pub async fn discovery(State(state): State<AppState>) -> Json<Value> {
    let issuer = state.keys.issuer().trim_end_matches('/');
    Json(json!({
        "issuer": state.keys.issuer(),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "jwks_uri": format!("{issuer}/oauth2/jwks"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": [crate::keys::ALGORITHM],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_rfc_6749() {
        assert!(valid_scope(""));
        assert!(valid_scope("read write:chat"));
        assert!(!valid_scope("read  write"));
        assert!(!valid_scope("quote\"d"));
        assert!(!valid_scope("back\\slash"));
        assert!(!valid_scope(" leading"));
    }
}

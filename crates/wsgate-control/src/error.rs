//! The control plane's errors. [`ControlError`] is what the library's functions return to the
//! binary; [`ApiError`] is every refusal of the REST API, rendered here and nowhere else as
//! `{"error": "<code>", "message": "...", "field": "..."}` with one status per variant.
//! (The OAuth2 endpoints answer in RFC 6749's own error format; see `oauth2`.)

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use wsgate_core::model::{Lifecycle, Role};
use wsgate_store::StoreError;

use crate::crypto::CryptoError;
use crate::hashing::HashError;
use crate::limits::BodyError;

/// Why starting, bootstrapping or minting a token failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Config(#[from] wsgate_core::config::ConfigError),
    /// `problem` says why and which setting to change.
    #[error("{problem}")]
    Bind { addr: std::net::SocketAddr, problem: String },
    #[error(transparent)]
    Tls(#[from] wsgate_tls::TlsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the admin password must not be empty")]
    EmptyAdminPassword,
    #[error("application {0} not found")]
    ApplicationNotFound(String),
    #[error("signing key {kid} in the store is unusable: {problem}")]
    UnusableSigningKey { kid: String, problem: String },
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error("control.key_encryption_key_file {path}: {problem}")]
    KeyEncryptionKey { path: String, problem: String },
    /// The configured issuer is not the one the store fixed at its first start: tokens of the
    /// other nodes would be refused here, and this node's there.
    #[error(
        "control.issuer is {configured:?} but this store's issuer is {stored:?} (fixed when the store was first set \
         up); remove control.issuer or set it to {stored:?}"
    )]
    IssuerMismatch { configured: String, stored: String },
}

/// A refusal of the REST API. Variants are facts; [`ApiError::status`] and [`ApiError::code`]
/// are the only places that turn them into HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or not the JSON this endpoint takes (missing field, wrong type).
    #[error("{message}")]
    MalformedBody { message: String, field: Option<String> },
    /// The body is too large, too slow or unreadable (before it is parsed at all).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// Too many failed sign-ins for this account or from this address; see `throttle`.
    #[error("too many failed attempts; try again in {retry_after} s")]
    TooManyAttempts { retry_after: u64 },
    /// Every password-hashing thread is busy and its queue is full.
    #[error("too many sign-ins at once; try again in a second")]
    Busy,
    #[error("not signed in: send Authorization: Bearer <token> from POST /api/v1/login, or the session cookie")]
    NotSignedIn,
    #[error("wrong user name or password")]
    WrongCredentials,
    #[error("this needs the {} role", .0.as_str())]
    MissingRole(Role),
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "a request signed in with the session cookie must carry the X-CSRF-Token header from the login answer or GET /api/v1/me"
    )]
    CsrfTokenMismatch,
    #[error("{what} not found")]
    NotFound { what: &'static str, field: Option<&'static str> },
    #[error("{0}")]
    Conflict(String),
    #[error("an API cannot move from {} to {}", .from.as_str(), .to.as_str())]
    LifecycleMoveRefused { from: Lifecycle, to: Lifecycle },
    /// Well-formed JSON whose value breaks a rule (context format, endpoint scheme, plan).
    #[error("{message}")]
    InvalidValue { field: String, message: String },
    #[error("the store is unavailable; try again ({0})")]
    StoreUnavailable(String),
    /// A failure that is not the caller's; the details go to the log, not to the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::InvalidValue { field: field.into(), message: message.into() }
    }

    pub fn not_found(what: &'static str) -> ApiError {
        ApiError::NotFound { what, field: None }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedBody { .. } => StatusCode::BAD_REQUEST,
            ApiError::Body(err) => err.status(),
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotSignedIn | ApiError::WrongCredentials => StatusCode::UNAUTHORIZED,
            ApiError::MissingRole(_) | ApiError::Forbidden(_) | ApiError::CsrfTokenMismatch => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::LifecycleMoveRefused { .. } => StatusCode::CONFLICT,
            ApiError::InvalidValue { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable name of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedBody { .. } => "malformed_body",
            ApiError::Body(BodyError::TooLarge(_)) => "body_too_large",
            ApiError::Body(BodyError::TimedOut) => "body_timed_out",
            ApiError::Body(_) => "malformed_body",
            ApiError::TooManyAttempts { .. } => "too_many_attempts",
            ApiError::Busy => "busy",
            ApiError::NotSignedIn => "not_signed_in",
            ApiError::WrongCredentials => "wrong_credentials",
            ApiError::MissingRole(_) => "missing_role",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::CsrfTokenMismatch => "csrf_token_mismatch",
            ApiError::NotFound { .. } => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::LifecycleMoveRefused { .. } => "lifecycle_move_refused",
            ApiError::InvalidValue { .. } => "invalid_value",
            ApiError::StoreUnavailable(_) => "store_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::MalformedBody { field, .. } => field.as_deref(),
            ApiError::NotFound { field, .. } => field.as_deref(),
            ApiError::InvalidValue { field, .. } => Some(field),
            ApiError::LifecycleMoveRefused { .. } => Some("state"),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "control plane request failed");
        }
        let body = ErrorBody { error: self.code(), message: self.to_string(), field: self.field() };
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::TooManyAttempts { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // The rest of the body may still be coming: the connection cannot be reused.
            ApiError::Body(err) if err.closes() => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::NotFound { what } => ApiError::not_found(what),
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::Unavailable(message) => ApiError::StoreUnavailable(message),
            StoreError::Backend(message) => ApiError::Internal(message),
        }
    }
}

impl From<CryptoError> for ApiError {
    fn from(err: CryptoError) -> ApiError {
        ApiError::Internal(err.to_string())
    }
}

impl From<HashError> for ApiError {
    fn from(err: HashError) -> ApiError {
        match err {
            HashError::Busy => ApiError::Busy,
            HashError::Failed(detail) => ApiError::Internal(detail),
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(err: ControlError) -> ApiError {
        match err {
            ControlError::Store(err) => err.into(),
            ControlError::Hashing(err) => err.into(),
            ControlError::ApplicationNotFound(_) => ApiError::not_found("application"),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

//! Every way a connection is refused before the upgrade, and the one place that writes the
//! refusal to the wire: an HTTP status with a short reason, then the socket is closed.
//! After the upgrade, refusals are close frames and live in the relay.

use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Who caused a refusal, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Upstream,
    /// The gateway itself (its shared counters are unreachable).
    Gateway,
}

/// A handshake that did not end in an upgrade. Variants are named as facts.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("malformed HTTP request")]
    MalformedRequest,
    #[error("this port speaks TLS: use wss://")]
    PlainHttpOnTlsPort,
    #[error("TLS handshake failed: {0}")]
    TlsHandshakeFailed(String),
    #[error("request head larger than {0} bytes")]
    HeadTooLarge(usize),
    #[error("upgrade request not received in time")]
    HandshakeTimeout,
    /// Logged only: a client that does not take the response cannot be told anything.
    #[error("the client did not take the response in time")]
    ResponseNotTaken,
    #[error("WebSocket needs HTTP/1.1")]
    HttpVersionNotSupported,
    #[error("no API at this path")]
    NoRoute,
    /// The path names a context, but not one of its versions (and it has no default).
    #[error("{}", unknown_version(.0))]
    UnknownVersion(crate::route::KnownContext),
    #[error("path must not contain '.' or '..' segments")]
    DotSegmentInPath,
    #[error("WebSocket upgrade needs GET")]
    MethodNotAllowed,
    #[error("this is a WebSocket API: send an Upgrade: websocket request")]
    UpgradeRequired,
    #[error("Connection header must contain Upgrade")]
    ConnectionNotUpgrade,
    #[error("Sec-WebSocket-Version must be 13")]
    UnsupportedWebSocketVersion,
    #[error("Sec-WebSocket-Key must be 16 bytes in base64")]
    InvalidWebSocketKey,
    #[error("Host header missing")]
    MissingHost,
    #[error("a body is not allowed on an upgrade request")]
    BodyNotAllowed,
    #[error("access token missing: send Authorization: Bearer <token> or ?access_token=<token>")]
    MissingToken,
    /// `Authorization: <token>`, without a scheme.
    #[error("the Authorization header lacks the \"Bearer \" prefix: send Authorization: Bearer <token>")]
    BearerPrefixMissing,
    #[error("invalid access token: {0}")]
    InvalidToken(&'static str),
    #[error("the request carries different access tokens (Authorization header, access_token parameters)")]
    ConflictingTokens,
    #[error("more than one Authorization header")]
    RepeatedAuthorization,
    #[error(
        "WebSocket APIs take OAuth2 bearer tokens (Authorization: Bearer or ?access_token=); API keys and Basic credentials are not accepted"
    )]
    CredentialsNotAccepted,
    #[error("forbidden: {0}")]
    NotAllowed(crate::snapshot::Denial),
    #[error("the access token lacks a scope this API requires")]
    InsufficientScope,
    #[error("this API is blocked")]
    ApiBlocked,
    /// A connection cap or new-connection rate is used up; `limit` says which, in words.
    #[error("limit reached: {limit}; retry after {} s", retry_seconds(*.retry_after))]
    LimitReached { limit: String, retry_after: std::time::Duration },
    /// The shared counters cannot be reached and `[cluster] redis_failure` is `closed`.
    #[error("limits cannot be checked right now; retry after {} s", retry_seconds(*.retry_after))]
    LimitsUnavailable { retry_after: std::time::Duration },
    /// The API's `allowed_origins` does not list the request's `Origin` (a page of another site
    /// trying to use the visitor's credentials: cross-site WebSocket hijacking).
    #[error("this API does not accept connections from pages of this origin")]
    OriginNotAllowed,
    /// `gateway.max_connections_per_address` connections from this address are open already.
    #[error("too many connections from your address; retry after {} s", retry_seconds(*.retry_after))]
    TooManyFromAddress { retry_after: std::time::Duration },
    /// `gateway.max_connections` connections are open already.
    #[error("the gateway is at its connection limit; retry after {} s", retry_seconds(*.retry_after))]
    GatewayFull { retry_after: std::time::Duration },
    /// Every endpoint of the API is suspended by its breaker or down by its probe: answered at
    /// once, without a connect attempt.
    #[error("no upstream endpoint is available; retry after {} s", retry_seconds(*.retry_after))]
    UpstreamUnavailable { retry_after: std::time::Duration },
    #[error("upstream refused the connection")]
    UpstreamRefused,
    #[error("upstream unreachable")]
    UpstreamUnreachable,
    #[error("upstream did not accept the connection in time")]
    UpstreamConnectTimeout,
    #[error("upstream did not answer the upgrade in time")]
    UpstreamHandshakeTimeout,
    #[error("upstream TLS handshake failed: {0}")]
    UpstreamTlsFailed(String),
    #[error("upstream sent an invalid upgrade response: {0}")]
    UpstreamInvalidUpgrade(&'static str),
    /// The upstream answered without upgrading; its response goes to the client as it is.
    #[error("upstream answered {status} instead of 101")]
    UpstreamDeclined { status: u16, response: Vec<u8> },
    /// An upstream failure and the endpoint it happened at. The endpoint is for the access log
    /// and the operator; the client's answer is the cause's, which never names the endpoint
    /// (often an internal address).
    #[error("{cause}")]
    AtEndpoint { endpoint: String, cause: Box<Rejection> },
}

impl Rejection {
    /// This failure, as having happened at `endpoint` (`ws://host:port/path`).
    pub fn at(self, endpoint: &wsgate_core::config::Endpoint) -> Rejection {
        match self {
            Rejection::AtEndpoint { .. } => self,
            cause => Rejection::AtEndpoint { endpoint: endpoint.to_string(), cause: Box::new(cause) },
        }
    }

    /// The endpoint a refusal happened at, for the access log.
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            Rejection::AtEndpoint { endpoint, .. } => Some(endpoint),
            _ => None,
        }
    }

    /// The refusal itself, without where it happened.
    fn cause(&self) -> &Rejection {
        match self {
            Rejection::AtEndpoint { cause, .. } => cause.cause(),
            other => other,
        }
    }

    pub fn status(&self) -> u16 {
        match self.cause() {
            Rejection::MalformedRequest
            | Rejection::PlainHttpOnTlsPort
            | Rejection::TlsHandshakeFailed(_)
            | Rejection::DotSegmentInPath
            | Rejection::ConnectionNotUpgrade
            | Rejection::InvalidWebSocketKey
            | Rejection::MissingHost
            | Rejection::BodyNotAllowed => 400,
            Rejection::NoRoute | Rejection::UnknownVersion(_) => 404,
            Rejection::MethodNotAllowed => 405,
            Rejection::HandshakeTimeout | Rejection::ResponseNotTaken => 408,
            Rejection::UpgradeRequired | Rejection::UnsupportedWebSocketVersion => 426,
            Rejection::HeadTooLarge(_) => 431,
            Rejection::HttpVersionNotSupported => 505,
            Rejection::UpstreamRefused
            | Rejection::UpstreamUnreachable
            | Rejection::UpstreamTlsFailed(_)
            | Rejection::UpstreamInvalidUpgrade(_) => 502,
            Rejection::UpstreamConnectTimeout | Rejection::UpstreamHandshakeTimeout => 504,
            Rejection::MissingToken
            | Rejection::BearerPrefixMissing
            | Rejection::InvalidToken(_)
            | Rejection::CredentialsNotAccepted => 401,
            Rejection::ConflictingTokens | Rejection::RepeatedAuthorization => 400,
            Rejection::NotAllowed(_)
            | Rejection::InsufficientScope
            | Rejection::ApiBlocked
            | Rejection::OriginNotAllowed => 403,
            Rejection::LimitReached { .. } | Rejection::TooManyFromAddress { .. } => 429,
            Rejection::LimitsUnavailable { .. }
            | Rejection::GatewayFull { .. }
            | Rejection::UpstreamUnavailable { .. } => 503,
            Rejection::UpstreamDeclined { status, .. } => *status,
            Rejection::AtEndpoint { cause, .. } => cause.status(),
        }
    }

    /// A short, stable name of the refusal's kind, for metrics labels and analytics records
    /// (never the text, which may carry details).
    pub fn kind(&self) -> &'static str {
        match self.cause() {
            Rejection::MalformedRequest => "malformed_request",
            Rejection::PlainHttpOnTlsPort => "plain_http_on_tls_port",
            Rejection::TlsHandshakeFailed(_) => "tls_handshake_failed",
            Rejection::HeadTooLarge(_) => "head_too_large",
            Rejection::HandshakeTimeout => "handshake_timeout",
            Rejection::ResponseNotTaken => "response_not_taken",
            Rejection::HttpVersionNotSupported => "http_version_not_supported",
            Rejection::NoRoute => "no_route",
            Rejection::UnknownVersion(_) => "unknown_version",
            Rejection::DotSegmentInPath => "dot_segment_in_path",
            Rejection::MethodNotAllowed => "method_not_allowed",
            Rejection::UpgradeRequired => "upgrade_required",
            Rejection::ConnectionNotUpgrade => "connection_not_upgrade",
            Rejection::UnsupportedWebSocketVersion => "unsupported_websocket_version",
            Rejection::InvalidWebSocketKey => "invalid_websocket_key",
            Rejection::MissingHost => "missing_host",
            Rejection::BodyNotAllowed => "body_not_allowed",
            Rejection::MissingToken => "missing_token",
            Rejection::BearerPrefixMissing => "bearer_prefix_missing",
            Rejection::InvalidToken(_) => "invalid_token",
            Rejection::ConflictingTokens => "conflicting_tokens",
            Rejection::RepeatedAuthorization => "repeated_authorization",
            Rejection::CredentialsNotAccepted => "credentials_not_accepted",
            Rejection::NotAllowed(_) => "not_allowed",
            Rejection::InsufficientScope => "insufficient_scope",
            Rejection::ApiBlocked => "api_blocked",
            Rejection::LimitReached { .. } => "limit_reached",
            Rejection::LimitsUnavailable { .. } => "limits_unavailable",
            Rejection::OriginNotAllowed => "origin_not_allowed",
            Rejection::TooManyFromAddress { .. } => "too_many_from_address",
            Rejection::GatewayFull { .. } => "gateway_full",
            Rejection::UpstreamUnavailable { .. } => "upstream_unavailable",
            Rejection::UpstreamRefused => "upstream_refused",
            Rejection::UpstreamUnreachable => "upstream_unreachable",
            Rejection::UpstreamConnectTimeout => "upstream_connect_timeout",
            Rejection::UpstreamHandshakeTimeout => "upstream_handshake_timeout",
            Rejection::UpstreamTlsFailed(_) => "upstream_tls_failed",
            Rejection::UpstreamInvalidUpgrade(_) => "upstream_invalid_upgrade",
            Rejection::UpstreamDeclined { .. } => "upstream_declined",
            Rejection::AtEndpoint { cause, .. } => cause.kind(),
        }
    }

    /// A short, quote-free description for the `WWW-Authenticate` header.
    fn description(&self) -> &'static str {
        match self {
            Rejection::MissingToken => "missing access token",
            Rejection::BearerPrefixMissing => "the Authorization header lacks the Bearer prefix",
            Rejection::InvalidToken(why) => why,
            Rejection::CredentialsNotAccepted => "WebSocket APIs take OAuth2 bearer tokens",
            _ => "",
        }
    }

    pub fn side(&self) -> Side {
        match self.cause() {
            Rejection::UpstreamRefused
            | Rejection::UpstreamUnreachable
            | Rejection::UpstreamConnectTimeout
            | Rejection::UpstreamHandshakeTimeout
            | Rejection::UpstreamTlsFailed(_)
            | Rejection::UpstreamInvalidUpgrade(_)
            | Rejection::UpstreamDeclined { .. }
            | Rejection::UpstreamUnavailable { .. } => Side::Upstream,
            Rejection::LimitsUnavailable { .. } | Rejection::GatewayFull { .. } => Side::Gateway,
            _ => Side::Client,
        }
    }

    /// The full HTTP response for this refusal.
    pub fn to_response(&self) -> Vec<u8> {
        if let Rejection::AtEndpoint { cause, .. } = self {
            return cause.to_response();
        }
        if let Rejection::UpstreamDeclined { response, .. } = self {
            return response.clone();
        }
        let status = self.status();
        let body = format!("{self}\n");
        let challenge;
        let retry;
        let extra = match self {
            Rejection::LimitReached { retry_after, .. }
            | Rejection::LimitsUnavailable { retry_after }
            | Rejection::TooManyFromAddress { retry_after }
            | Rejection::GatewayFull { retry_after }
            | Rejection::UpstreamUnavailable { retry_after } => {
                retry = format!("Retry-After: {}\r\n", retry_seconds(*retry_after));
                retry.as_str()
            }
            // RFC 6750 §3: what an OAuth2 client reads to know why.
            Rejection::MissingToken
            | Rejection::BearerPrefixMissing
            | Rejection::InvalidToken(_)
            | Rejection::CredentialsNotAccepted => {
                challenge = format!(
                    "WWW-Authenticate: Bearer realm=\"wsgate\", error=\"invalid_token\", error_description=\"{}\"\r\n",
                    self.description()
                );
                challenge.as_str()
            }
            Rejection::InsufficientScope => {
                "WWW-Authenticate: Bearer realm=\"wsgate\", error=\"insufficient_scope\", error_description=\"missing scope\"\r\n"
            }
            Rejection::MethodNotAllowed => "Allow: GET\r\n",
            Rejection::UpgradeRequired => "Upgrade: websocket\r\nConnection: Upgrade\r\n",
            Rejection::UnsupportedWebSocketVersion => "Sec-WebSocket-Version: 13\r\n",
            _ => "",
        };
        format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
            reason_phrase(status),
            body.len()
        )
        .into_bytes()
    }

    /// Writes the response and closes the write side, giving up after `deadline`: a client
    /// that sends a request and never reads the answer must not hold the connection. Errors
    /// are ignored: the client may already be gone, and there is nobody else to tell.
    pub async fn send<W: AsyncWrite + Unpin>(&self, client: &mut W, deadline: Duration) {
        let _ = tokio::time::timeout(deadline, async {
            client.write_all(&self.to_response()).await?;
            client.shutdown().await
        })
        .await;
    }
}

/// The 404 of a known context: which versions it has, so that a typo is one glance away.
/// At most ten are listed; the asked version is repeated only when it looks like one.
fn unknown_version(known: &crate::route::KnownContext) -> String {
    const SHOWN: usize = 10;
    let context = &known.context;
    let mut listed = known.versions.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if known.versions.len() > SHOWN {
        listed.push_str(&format!(" and {} more", known.versions.len() - SHOWN));
    }
    let first = known.versions.first().map(String::as_str).unwrap_or("1.0");
    match &known.asked {
        Some(asked) => format!("{context} has no version {asked}; its versions: {listed} (e.g. {context}/{first})"),
        None => format!("{context} needs a version in the path; its versions: {listed} (e.g. {context}/{first})"),
    }
}

/// Retry-After is whole seconds; a wait under a second still says 1, never 0 ("now").
fn retry_seconds(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0 || wait.is_zero())
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

//! Every way a connection is refused before the upgrade, and the one place that writes the
//! refusal to the wire: an HTTP status with a short reason, then the socket is closed.
//! After the upgrade, refusals are close frames and live in the relay.

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
    #[error("WebSocket needs HTTP/1.1")]
    HttpVersionNotSupported,
    #[error("no API at this path")]
    NoRoute,
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
    #[error("invalid access token: {0}")]
    InvalidToken(&'static str),
    #[error("the Authorization header and the access_token parameter carry different tokens")]
    ConflictingTokens,
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
}

impl Rejection {
    pub fn status(&self) -> u16 {
        match self {
            Rejection::MalformedRequest
            | Rejection::PlainHttpOnTlsPort
            | Rejection::TlsHandshakeFailed(_)
            | Rejection::DotSegmentInPath
            | Rejection::ConnectionNotUpgrade
            | Rejection::InvalidWebSocketKey
            | Rejection::MissingHost
            | Rejection::BodyNotAllowed => 400,
            Rejection::NoRoute => 404,
            Rejection::MethodNotAllowed => 405,
            Rejection::HandshakeTimeout => 408,
            Rejection::UpgradeRequired | Rejection::UnsupportedWebSocketVersion => 426,
            Rejection::HeadTooLarge(_) => 431,
            Rejection::HttpVersionNotSupported => 505,
            Rejection::UpstreamRefused
            | Rejection::UpstreamUnreachable
            | Rejection::UpstreamTlsFailed(_)
            | Rejection::UpstreamInvalidUpgrade(_) => 502,
            Rejection::UpstreamConnectTimeout | Rejection::UpstreamHandshakeTimeout => 504,
            Rejection::MissingToken | Rejection::InvalidToken(_) | Rejection::CredentialsNotAccepted => 401,
            Rejection::ConflictingTokens => 400,
            Rejection::NotAllowed(_) | Rejection::InsufficientScope | Rejection::ApiBlocked => 403,
            Rejection::LimitReached { .. } => 429,
            Rejection::LimitsUnavailable { .. } => 503,
            Rejection::UpstreamDeclined { status, .. } => *status,
        }
    }

    /// A short, quote-free description for the `WWW-Authenticate` header.
    fn description(&self) -> &'static str {
        match self {
            Rejection::MissingToken => "missing access token",
            Rejection::InvalidToken(why) => why,
            Rejection::CredentialsNotAccepted => "WebSocket APIs take OAuth2 bearer tokens",
            _ => "",
        }
    }

    pub fn side(&self) -> Side {
        match self {
            Rejection::UpstreamRefused
            | Rejection::UpstreamUnreachable
            | Rejection::UpstreamConnectTimeout
            | Rejection::UpstreamHandshakeTimeout
            | Rejection::UpstreamTlsFailed(_)
            | Rejection::UpstreamInvalidUpgrade(_)
            | Rejection::UpstreamDeclined { .. } => Side::Upstream,
            Rejection::LimitsUnavailable { .. } => Side::Gateway,
            _ => Side::Client,
        }
    }

    /// The full HTTP response for this refusal.
    pub fn to_response(&self) -> Vec<u8> {
        if let Rejection::UpstreamDeclined { response, .. } = self {
            return response.clone();
        }
        let status = self.status();
        let body = format!("{self}\n");
        let challenge;
        let retry;
        let extra = match self {
            Rejection::LimitReached { retry_after, .. } | Rejection::LimitsUnavailable { retry_after } => {
                retry = format!("Retry-After: {}\r\n", retry_seconds(*retry_after));
                retry.as_str()
            }
            // RFC 6750 §3: what an OAuth2 client reads to know why.
            Rejection::MissingToken | Rejection::InvalidToken(_) | Rejection::CredentialsNotAccepted => {
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

    /// Writes the response and closes the write side. Errors are ignored: the client may
    /// already be gone, and there is nobody else to tell.
    pub async fn send<W: AsyncWrite + Unpin>(&self, client: &mut W) {
        let _ = client.write_all(&self.to_response()).await;
        let _ = client.shutdown().await;
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

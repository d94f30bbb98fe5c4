//! What bounds a request before any handler runs, so that endpoints anyone can reach stay
//! cheap: the client's address (for throttling and logs), a deadline on reading the body, and
//! size limits on bodies and forms. The accept loop (`server`) attaches the address and the
//! deadline to every request; handlers read bodies through [`read_body`] and forms through
//! [`form_pairs`], whose refusals are [`BodyError`]s.
//!
//! Limits: a REST or portal body is at most [`MAX_BODY`] (64 KiB; an API record is a few KiB),
//! an OAuth2 form at most [`MAX_OAUTH_BODY`] (16 KiB; a token request is a few hundred bytes);
//! a form has at most [`MAX_FORM_PAIRS`] parameters, parsed in one linear pass. The request
//! head (line, query string, headers) is bounded by hyper's buffer, set in `server`.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use http_body::{Frame, SizeHint};

/// The largest JSON body of the REST API and the largest portal form.
pub const MAX_BODY: usize = 64 * 1024;
/// The largest body of `/oauth2/token`, `/oauth2/revoke` and `/oauth2/introspect`.
pub const MAX_OAUTH_BODY: usize = 16 * 1024;
/// The most parameters a form may have (the portal's API form has a few dozen at most).
pub const MAX_FORM_PAIRS: usize = 256;
/// The largest request head (request line with its query string, and headers).
pub const MAX_HEAD: usize = 32 * 1024;

/// The address the request came from: the TCP peer. Forwarded-for headers are not trusted,
/// since anyone can send them; behind a proxy every client counts as the proxy's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    /// A request that did not come through the accept loop (a test driving the router in
    /// memory) counts as `0.0.0.0`.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientAddress, Self::Rejection> {
        Ok(parts.extensions.get::<ClientAddress>().copied().unwrap_or(ClientAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

impl std::fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request body did not arrive in time")]
    TimedOut,
    #[error("the request body could not be read: {0}")]
    Broken(String),
    #[error("the form has more than {MAX_FORM_PAIRS} parameters")]
    TooManyParameters,
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TimedOut => StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken(_) | BodyError::TooManyParameters => StatusCode::BAD_REQUEST,
        }
    }

    /// Whether the rest of the body may still be on its way, so the connection must close
    /// after the answer rather than wait for it.
    pub fn closes(&self) -> bool {
        matches!(self, BodyError::TooLarge(_) | BodyError::TimedOut | BodyError::Broken(_))
    }
}

/// The whole body, at most `limit` bytes. A declared `Content-Length` over the limit is
/// refused before a byte is read.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(cause) = source {
            if cause.is::<http_body_util::LengthLimitError>() {
                return BodyError::TooLarge(limit);
            }
            if cause.is::<DeadlinePassed>() {
                return BodyError::TimedOut;
            }
            source = cause.source();
        }
        BodyError::Broken(err.to_string())
    })
}

/// An `application/x-www-form-urlencoded` body as its pairs, in one pass: at most
/// [`MAX_FORM_PAIRS`] of them.
pub fn form_pairs(body: &[u8]) -> Result<Vec<(String, String)>, BodyError> {
    let mut pairs = Vec::new();
    for (name, value) in form_urlencoded::parse(body) {
        if pairs.len() == MAX_FORM_PAIRS {
            return Err(BodyError::TooManyParameters);
        }
        pairs.push((name.into_owned(), value.into_owned()));
    }
    Ok(pairs)
}

/// The error a body reports once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body took longer than allowed")]
pub struct DeadlinePassed;

/// A request body that fails once `deadline` has passed since the request head arrived, so a
/// client trickling its body a byte at a time cannot hold a connection (and a task) for long.
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, within: Duration) -> DeadlineBody<B> {
        DeadlineBody { inner, deadline: Box::pin(tokio::time::sleep(within)) }
    }
}

impl<B> http_body::Body for DeadlineBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(DeadlinePassed)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_in_one_pass_with_a_bounded_count() {
        let pairs = form_pairs(b"grant_type=client_credentials&scope=a+b&x=%41").expect("form");
        assert_eq!(pairs[1], ("scope".to_string(), "a b".to_string()));
        assert_eq!(pairs[2].1, "A");
        let many = "a=1&".repeat(MAX_FORM_PAIRS + 1);
        assert_eq!(form_pairs(many.as_bytes()), Err(BodyError::TooManyParameters));
        // Empty parameters are skipped without counting.
        assert_eq!(form_pairs("&".repeat(10_000).as_bytes()).map(|p| p.len()), Ok(0));
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, "2000000".parse().expect("header"));
        let refused = read_body(&headers, Body::from("small"), MAX_OAUTH_BODY).await;
        assert_eq!(refused, Err(BodyError::TooLarge(MAX_OAUTH_BODY)));
        let big = read_body(&HeaderMap::new(), Body::from(vec![b'a'; 20_000]), MAX_OAUTH_BODY).await;
        assert_eq!(big, Err(BodyError::TooLarge(MAX_OAUTH_BODY)));
    }
}

//! The client's upgrade request (RFC 6455 §4.2.1): read within a size and time limit, then
//! checked field by field. Nothing goes upstream until the request is known to be a valid
//! WebSocket upgrade.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::rejection::Rejection;

/// Most headers a request may carry; more is refused as too large.
const MAX_HEADERS: usize = 64;

/// A parsed HTTP request head, not yet known to be an upgrade.
#[derive(Debug)]
pub struct RequestHead {
    pub method: String,
    /// Origin-form request target: path and query.
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Bytes that followed the head in the same reads: frames a client sent without waiting.
    pub early: Vec<u8>,
}

impl RequestHead {
    /// The value of a header that may appear once; `Err` when it appears twice.
    fn single(&self, name: &str) -> Result<Option<&[u8]>, Rejection> {
        let mut values = self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let first = values.next().map(|(_, v)| v.as_slice());
        if values.next().is_some() {
            return Err(Rejection::MalformedRequest);
        }
        Ok(first)
    }

    /// Every value of header `name`, in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// Whether any value of the comma-separated header `name` holds `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name)
            .flat_map(|v| v.split(|b| *b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }
}

/// A request that is a valid WebSocket upgrade.
#[derive(Debug)]
pub struct UpgradeRequest {
    pub head: RequestHead,
    pub host: String,
    /// The client's Sec-WebSocket-Key: the gateway answers it with its own accept value (the
    /// upstream gets a key of the gateway's).
    pub key: String,
}

/// Reads one request head. The caller bounds the time; this bounds the size.
pub async fn read_head<S: AsyncRead + Unpin>(client: &mut S, max_size: usize) -> Result<RequestHead, Rejection> {
    let (buf, len) = read_http_head(client, max_size, |bytes| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        httparse::Request::new(&mut headers).parse(bytes)
    })
    .await
    .map_err(|err| match err {
        HeadError::TooLarge | HeadError::Parse(httparse::Error::TooManyHeaders) => Rejection::HeadTooLarge(max_size),
        HeadError::Parse(httparse::Error::Version) => Rejection::HttpVersionNotSupported,
        HeadError::Parse(_) | HeadError::Closed => Rejection::MalformedRequest,
    })?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    request.parse(&buf[..len]).map_err(|_| Rejection::MalformedRequest)?;
    if request.version != Some(1) {
        return Err(Rejection::HttpVersionNotSupported);
    }
    Ok(RequestHead {
        method: request.method.unwrap_or_default().to_string(),
        target: request.path.unwrap_or_default().to_string(),
        headers: request.headers.iter().map(|h| (h.name.to_string(), h.value.to_vec())).collect(),
        early: buf[len..].to_vec(),
    })
}

/// Why an HTTP head could not be read.
#[derive(Debug)]
pub enum HeadError {
    TooLarge,
    Parse(httparse::Error),
    /// The peer closed or failed before the head was complete.
    Closed,
}

/// Reads until `parse` finds a complete head of at most `max_size` bytes. Returns everything
/// read and the head's length; bytes after it belong to the WebSocket stream.
pub async fn read_http_head<S, P>(stream: &mut S, max_size: usize, mut parse: P) -> Result<(Vec<u8>, usize), HeadError>
where
    S: AsyncRead + Unpin,
    P: FnMut(&[u8]) -> httparse::Result<usize>,
{
    // Read straight into the Vec: a stack array here would enlarge every connection's task
    // for its whole life, since an async fn is as big as its biggest state.
    let mut buf = Vec::with_capacity(1024.min(max_size + 1));
    loop {
        let old = buf.len();
        buf.resize(old + (max_size + 1 - old).min(1024), 0);
        match stream.read(&mut buf[old..]).await {
            Ok(0) | Err(_) => return Err(HeadError::Closed),
            Ok(n) => buf.truncate(old + n),
        }
        match parse(&buf) {
            Ok(httparse::Status::Complete(len)) if len <= max_size => return Ok((buf, len)),
            Ok(httparse::Status::Complete(_)) => return Err(HeadError::TooLarge),
            Ok(httparse::Status::Partial) if buf.len() > max_size => {
                return Err(HeadError::TooLarge);
            }
            Ok(httparse::Status::Partial) => {}
            Err(err) => return Err(HeadError::Parse(err)),
        }
    }
}

/// Checks the request target before routing: origin form, no dot segments (they would let a
/// client walk out of the upstream's base path). A segment counts as a dot segment however an
/// upstream might come to read it as one: with its dots or slashes percent-encoded (`.%2e`,
/// `%2e%2e`, `..%2f`), with a backslash for a slash, or with `;params` after it (`..;`).
pub fn check_target(head: &RequestHead) -> Result<(), Rejection> {
    if !head.target.starts_with('/') {
        return Err(Rejection::MalformedRequest);
    }
    let path = head.target.split('?').next().unwrap_or_default();
    let decoded = decode_separators(path);
    let dot_segment = |segment: &str| matches!(segment.split(';').next(), Some("." | ".."));
    if decoded.split(['/', '\\']).any(dot_segment) {
        return Err(Rejection::DotSegmentInPath);
    }
    Ok(())
}

/// `path` with the percent-escapes of `.`, `/` and `\\` decoded and every other byte kept.
fn decode_separators(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at + 1..at + 3).unwrap_or_default();
        let decoded = match escape.to_ascii_lowercase().as_str() {
            "2e" => Some('.'),
            "2f" => Some('/'),
            "5c" => Some('\\'),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Checks everything RFC 6455 requires of an upgrade request, in the order that gives the most
/// useful answer: a plain HTTP request to a WebSocket API learns it needs an upgrade.
pub fn check_upgrade(head: RequestHead) -> Result<UpgradeRequest, Rejection> {
    if head.method != "GET" {
        return Err(Rejection::MethodNotAllowed);
    }
    if !head.has_token("upgrade", "websocket") {
        return Err(Rejection::UpgradeRequired);
    }
    if !head.has_token("connection", "upgrade") {
        return Err(Rejection::ConnectionNotUpgrade);
    }
    if head.single("sec-websocket-version")?.map(<[u8]>::trim_ascii) != Some(b"13") {
        return Err(Rejection::UnsupportedWebSocketVersion);
    }
    let key = head.single("sec-websocket-key")?.map(<[u8]>::trim_ascii).ok_or(Rejection::InvalidWebSocketKey)?;
    match BASE64.decode(key) {
        Ok(bytes) if bytes.len() == 16 => {}
        _ => return Err(Rejection::InvalidWebSocketKey),
    }
    let key = String::from_utf8_lossy(key).into_owned();
    let host = head.single("host")?.ok_or(Rejection::MissingHost)?;
    let host = std::str::from_utf8(host).map_err(|_| Rejection::MalformedRequest)?.trim().to_string();
    if host.is_empty() {
        return Err(Rejection::MissingHost);
    }
    let has_body = head.headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("transfer-encoding")
            || (name.eq_ignore_ascii_case("content-length") && value.trim_ascii() != b"0")
    });
    if has_body {
        return Err(Rejection::BodyNotAllowed);
    }
    Ok(UpgradeRequest { head, host, key })
}

/// The Sec-WebSocket-Accept value that proves a server read this key.
pub fn accept_value(key: &str) -> String {
    const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(raw: &str) -> Result<UpgradeRequest, Rejection> {
        let head = read_head(&mut raw.as_bytes(), 4096).await?;
        check_target(&head)?;
        check_upgrade(head)
    }

    const GOOD: &str = "GET /echo/1.0 HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    #[test]
    fn accept_value_matches_rfc_example() {
        assert_eq!(accept_value("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[tokio::test]
    async fn a_valid_upgrade_is_accepted_with_early_bytes_kept() {
        let raw = format!("{GOOD}\u{81}");
        let request = parse(&raw).await.expect("valid");
        assert_eq!(request.host, "gw");
        assert_eq!(request.head.early, vec![0xC2, 0x81]);
    }

    #[tokio::test]
    async fn each_broken_rule_has_its_own_status() {
        let cases = [
            (GOOD.replace("GET", "POST"), 405),
            (GOOD.replace("HTTP/1.1", "HTTP/1.0"), 505),
            (GOOD.replace("Upgrade: websocket\r\n", ""), 426),
            (GOOD.replace("keep-alive, Upgrade", "keep-alive"), 400),
            (GOOD.replace("Version: 13", "Version: 8"), 426),
            (GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="), 400),
            (GOOD.replace("Host: gw\r\n", ""), 400),
            (GOOD.replace("/echo/1.0", "/echo/1.0/../../admin"), 400),
            (GOOD.replace("/echo/1.0", "/echo/1.0/.%2e/admin"), 400),
            (GOOD.replace("/echo/1.0", "/echo/1.0/%2e./admin"), 400),
            (GOOD.replace("/echo/1.0", "/echo/1.0/%2E/admin"), 400),
            (GOOD.replace("/echo/1.0", "/echo/1.0/..%2fadmin"), 400),
            (GOOD.replace("/echo/1.0", "/echo/1.0/..%5Cadmin"), 400),
            (GOOD.replace("/echo/1.0", "/echo/1.0/..;x=1/admin"), 400),
            (GOOD.replace("/echo/1.0", "/echo/1.0/%2e%2e"), 400),
            (GOOD.replace("/echo/1.0", "/echo/1.0/a..b/%2ex/%252e%252e/50%"), 101),
            ("\x16\x03\x01garbage\r\n\r\n".to_string(), 400),
        ];
        for (raw, status) in cases {
            let got = parse(&raw).await.map(|_| 101).unwrap_or_else(|r| r.status());
            assert_eq!(got, status, "{raw:?}");
        }
    }

    #[tokio::test]
    async fn oversized_heads_get_431() {
        let raw = GOOD.replace("Host: gw", &format!("Host: gw\r\nX-Big: {}", "a".repeat(5000)));
        assert_eq!(parse(&raw).await.map(|_| 0).unwrap_or_else(|r| r.status()), 431);
    }
}

//! The upgrade exchange with one endpoint: the request head sent upstream (end-to-end headers
//! forwarded as bytes, hop-by-hop ones rebuilt, identity headers written by the gateway only)
//! and the check of its answer. Only a correct 101 becomes an upgrade; any other answer goes
//! back to the client as an HTTP response the gateway writes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::AsyncWriteExt;

use super::health::EndpointLease;
use super::{ClientInfo, Upstream, UpstreamStream};
use crate::auth::Principal;
use crate::handshake::{HeadError, UpgradeRequest, accept_value, read_http_head};
use crate::rejection::{Rejection, reason_phrase};
use crate::route::Route;
use wsgate_core::config::{Endpoint, Scheme};

/// Largest upstream response head accepted.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// The headers of a non-101 upstream answer that reach the client; see [`declined`].
const RELAYED_ON_DECLINE: &[&str] = &["www-authenticate", "retry-after", "sec-websocket-version"];
const MAX_HEADERS: usize = 64;

/// Headers that describe one hop, never copied from one side to the other (RFC 9110 §7.6.1),
/// plus those the gateway writes itself.
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-accept",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

/// Headers that tell the upstream who the authenticated caller is. A client's own headers with
/// this prefix are dropped, so the upstream can trust them.
const IDENTITY_PREFIX: &str = "x-wsgate-";

/// Whether a client header named `lower` (lower-cased) is one the gateway drops or writes
/// itself. Underscores count as hyphens: servers behind CGI-style or framework header maps
/// (`HTTP_X_WSGATE_PLAN`) cannot tell `X_Wsgate_Plan` from `X-Wsgate-Plan`.
fn reserved(lower: &str, authenticated: bool) -> bool {
    let check = |name: &str| {
        NOT_FORWARDED.contains(&name) || name.starts_with(IDENTITY_PREFIX) || (authenticated && name == "authorization")
    };
    check(lower) || (lower.contains('_') && check(&lower.replace('_', "-")))
}

pub(super) async fn upgrade(
    mut stream: UpstreamStream,
    endpoint: &Endpoint,
    route: &Route,
    request: &UpgradeRequest,
    client: ClientInfo,
    caller: Option<&Principal>,
) -> Result<Upgraded, Rejection> {
    let key = fresh_key();
    let head = request_head(endpoint, route, request, &key, client, caller);
    stream.write_all(&head).await.map_err(|_| Rejection::UpstreamUnreachable)?;
    let (buf, len) = read_http_head(&mut stream, MAX_RESPONSE_HEAD, |bytes| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        httparse::Response::new(&mut headers).parse(bytes)
    })
    .await
    .map_err(|err| match err {
        HeadError::TooLarge => Rejection::UpstreamInvalidUpgrade("response head too large"),
        HeadError::Parse(_) => Rejection::UpstreamInvalidUpgrade("malformed HTTP response"),
        HeadError::Closed => Rejection::UpstreamInvalidUpgrade("connection closed before a response"),
    })?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    response.parse(&buf[..len]).map_err(|_| Rejection::UpstreamInvalidUpgrade("malformed HTTP response"))?;
    let status = response.code.unwrap_or_default();
    let headers: Vec<(&str, &[u8])> = response.headers.iter().map(|h| (h.name, h.value)).collect();
    match status {
        101 => {
            let response = switching_protocols(&headers, request, &key)?;
            let extensions = header(&headers, "sec-websocket-extensions").is_some_and(|v| !v.trim_ascii().is_empty());
            Ok(Upgraded { stream, response, early: buf[len..].to_vec(), extensions })
        }
        100..=199 => Err(Rejection::UpstreamInvalidUpgrade("informational response")),
        _ => Err(declined(status, &headers)),
    }
}

/// An accepted upgrade, before it is counted at its endpoint.
pub(super) struct Upgraded {
    stream: UpstreamStream,
    response: Vec<u8>,
    early: Vec<u8>,
    extensions: bool,
}

impl Upgraded {
    pub(super) fn into_upstream(self, lease: EndpointLease) -> Upstream {
        let Upgraded { stream, response, early, extensions } = self;
        Upstream { stream, response, early, extensions, lease }
    }
}

/// A `Sec-WebSocket-Key` for one upstream handshake: 16 bytes, base64. They come from SipHash
/// keyed by the process's random seed (as the relay's masks do), which makes them unique per
/// connection; the key only has to prove that the upstream read this handshake.
fn fresh_key() -> String {
    use std::hash::BuildHasher;
    let state = std::collections::hash_map::RandomState::new();
    let now = std::time::Instant::now();
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&state.hash_one((now, 0u8)).to_le_bytes());
    bytes[8..].copy_from_slice(&state.hash_one((now, 1u8)).to_le_bytes());
    BASE64.encode(bytes)
}

/// The request line and headers sent upstream, as bytes: header values are copied as they came.
pub(crate) fn request_head(
    endpoint: &Endpoint,
    route: &Route,
    request: &UpgradeRequest,
    key: &str,
    client: ClientInfo,
    caller: Option<&Principal>,
) -> Vec<u8> {
    let mut path = format!("{}{}", endpoint.base_path, route.rest);
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let default_port = if endpoint.scheme == Scheme::Ws { 80 } else { 443 };
    let host = if endpoint.port == default_port { bracketed(&endpoint.host) } else { endpoint.authority() };
    let mut head = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    )
    .into_bytes();
    let named_in_connection = connection_tokens(request.head.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())));
    let mut forwarded_for: Option<&[u8]> = None;
    for (name, value) in &request.head.headers {
        let lower = name.to_ascii_lowercase();
        if lower == "x-forwarded-for" {
            forwarded_for = Some(value);
        }
        // Identity headers come only from the gateway, and a bearer token is the gateway's.
        if reserved(&lower, caller.is_some()) || named_in_connection.contains(&lower) {
            continue;
        }
        push_header(&mut head, name, value);
    }
    let ip = client.addr.ip().to_string();
    match forwarded_for {
        Some(prior) => push_header(&mut head, "X-Forwarded-For", &[prior, b", ", ip.as_bytes()].concat()),
        None => push_header(&mut head, "X-Forwarded-For", ip.as_bytes()),
    }
    push_header(&mut head, "X-Forwarded-Proto", client.proto.as_bytes());
    push_header(&mut head, "X-Forwarded-Host", request.host.as_bytes());
    if let Some(caller) = caller {
        // The control plane validates these names, but a value that could end the header line
        // must never reach the upstream whatever the store holds.
        let safe = |text: &str| text.chars().filter(|c| !c.is_control()).collect::<String>();
        for (name, value) in [
            ("X-Wsgate-Application", &caller.application),
            ("X-Wsgate-Application-Id", &caller.application_id),
            ("X-Wsgate-Client-Id", &caller.client_id),
            ("X-Wsgate-Subscriber", &caller.subscriber),
            ("X-Wsgate-Plan", &caller.plan),
        ] {
            push_header(&mut head, name, safe(value).as_bytes());
        }
    }
    head.extend_from_slice(b"\r\n");
    head
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn bracketed(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_string() }
}

/// Lower-cased header names listed in Connection: hop-by-hop by declaration.
fn connection_tokens<'a>(headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> Vec<String> {
    headers
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| {
            String::from_utf8_lossy(value).split(',').map(|t| t.trim().to_ascii_lowercase()).collect::<Vec<_>>()
        })
        .filter(|token| !token.is_empty())
        .collect()
}

fn header<'a>(headers: &[(&str, &'a [u8])], name: &str) -> Option<&'a [u8]> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

fn has_token(headers: &[(&str, &[u8])], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(|b| *b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Checks a 101 to the gateway's `key` and builds the one the client gets: the upstream's
/// end-to-end headers (subprotocol, extensions, cookies) with the hop-by-hop ones rebuilt and
/// the accept value of the client's own key.
fn switching_protocols(headers: &[(&str, &[u8])], request: &UpgradeRequest, key: &str) -> Result<Vec<u8>, Rejection> {
    if !has_token(headers, "upgrade", "websocket") {
        return Err(Rejection::UpstreamInvalidUpgrade("Upgrade is not websocket"));
    }
    if !has_token(headers, "connection", "upgrade") {
        return Err(Rejection::UpstreamInvalidUpgrade("Connection is not upgrade"));
    }
    if header(headers, "sec-websocket-accept").map(<[u8]>::trim_ascii) != Some(accept_value(key).as_bytes()) {
        return Err(Rejection::UpstreamInvalidUpgrade("wrong Sec-WebSocket-Accept"));
    }
    if let Some(chosen) = header(headers, "sec-websocket-protocol") {
        let chosen = chosen.trim_ascii();
        let was_offered = request
            .head
            .values("sec-websocket-protocol")
            .flat_map(|v| v.split(|b| *b == b','))
            .any(|p| p.trim_ascii() == chosen);
        if !was_offered {
            return Err(Rejection::UpstreamInvalidUpgrade("subprotocol the client did not offer"));
        }
    }
    // RFC 6455 section 9.1: a server may only accept extensions the client offered; the relay
    // lets RSV bits through on the strength of this answer.
    let client_offers: Vec<&[u8]> = request.head.values("sec-websocket-extensions").flat_map(extension_names).collect();
    let accepted = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions"));
    if accepted
        .flat_map(|(_, v)| extension_names(v))
        .any(|name| !client_offers.iter().any(|o| o.eq_ignore_ascii_case(name)))
    {
        return Err(Rejection::UpstreamInvalidUpgrade("extension the client did not offer"));
    }
    let accept = accept_value(&request.key);
    let mut out = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n").into_bytes();
    append_end_to_end(&mut out, headers);
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

/// The extension names in a `Sec-WebSocket-Extensions` value: `a; x=1, b` names `a` and `b`.
fn extension_names(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(|item| item.split(|b| *b == b';').next().unwrap_or_default().trim_ascii())
        .filter(|name| !name.is_empty())
}

fn append_end_to_end(out: &mut Vec<u8>, headers: &[(&str, &[u8])]) {
    let named_in_connection = connection_tokens(headers.iter().copied());
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if NOT_FORWARDED.contains(&lower.as_str()) || named_in_connection.contains(&lower) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
}

/// The upstream's non-101 answer as the client gets it: its status, the few headers a client
/// needs to react (a challenge, `Retry-After`, the versions a 426 offers), and a body written
/// by the gateway; never an upgrade. The upstream's own body and other headers stay behind: an
/// endpoint may point at an internal HTTP service, and the gateway must not become a way to
/// read it.
fn declined(status: u16, headers: &[(&str, &[u8])]) -> Rejection {
    let reason = reason_phrase(status);
    let body = format!("The upstream declined the WebSocket upgrade with {status} {reason}.\n");
    let mut response = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
    for (name, value) in
        headers.iter().filter(|(name, _)| RELAYED_ON_DECLINE.iter().any(|r| name.eq_ignore_ascii_case(r)))
    {
        response.extend_from_slice(format!("{name}: ").as_bytes());
        response.extend_from_slice(value);
        response.extend_from_slice(b"\r\n");
    }
    response.extend_from_slice(
        format!(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    Rejection::UpstreamDeclined { status, response }
}

//! Entry points for the fuzz targets in `fuzz/` and for the test that replays their corpora
//! (`tests/fuzz_corpus.rs`), so that both run exactly the same code. Each takes arbitrary
//! bytes, drives the parser the gateway runs on untrusted input, and panics when an invariant
//! breaks; returning normally means the input was handled, accepted or refused.
//!
//! Not an API: hidden from the docs, and it exposes no parsed value.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use wsgate_core::config::{ApiSpec, AuthMode, Endpoint};

use crate::auth::{self, Principal};
use crate::handshake;
use crate::relay::frame::{MAX_CLOSE_FRAME, Scan, Scanner, Sender};
use crate::route::RouteTable;
use crate::upstream::{self, ClientInfo};

/// The frame scanner, fed the same bytes three ways: all at once, in reads of sizes drawn from
/// the input (carrying an unaccepted tail over, as the pump does), and stopping at every frame
/// boundary (as the pump does while a close of its own waits). All three must accept the same
/// bytes, end the same way and count the same messages; a frame left cut at the end is then
/// completed with padding, which must not count as a message.
///
/// Input: byte 0 picks the sender (bit 0) and extensions (bit 1), byte 1 seeds the read sizes,
/// the rest is the stream.
pub fn frames(input: &[u8]) {
    let [flags, seed, stream @ ..] = input else { return };
    let sender = if flags & 1 == 0 { Sender::Client } else { Sender::Upstream };
    let scanner = || Scanner::new(sender, 1 << 16, 1 << 18).with_extensions(flags & 2 != 0);

    let mut whole = scanner();
    let whole_end = end_of(whole.scan(stream, false, None), 0);
    let mut chunked = scanner();
    let chunked_end = scan_in_reads(&mut chunked, stream, *seed, false);
    let mut stepped = scanner();
    let stepped_end = scan_in_reads(&mut stepped, stream, *seed, true);
    assert_eq!(whole_end, chunked_end, "read boundaries changed the outcome");
    assert_eq!(whole_end, stepped_end, "stopping at frame boundaries changed the outcome");
    for s in [&chunked, &stepped] {
        assert_eq!((s.messages, s.bytes, s.at_boundary()), (whole.messages, whole.bytes, whole.at_boundary()));
    }
    assert_eq!(whole.bytes, whole_end.accepted as u64, "bytes counts exactly what may be forwarded");

    let messages = whole.messages;
    let mut padding = [0u8; 4096];
    let mut rounds = 0;
    while !whole.at_boundary() && rounds < 32 {
        let len = whole.fill_padding(&mut padding);
        assert!(len > 0, "a cut frame always takes padding");
        whole.padded(len);
        rounds += 1;
    }
    assert_eq!(whole.messages, messages, "padding completed a message");

    // Control frames over a budget of 2 per second: any outcome, but no panic.
    let _ = scanner().with_control_limit(2).scan(stream, false, None);
}

/// How a scan of a whole stream ended: bytes accepted, and the close or violation met.
#[derive(Debug, PartialEq, Eq)]
struct End {
    accepted: usize,
    stop: Option<String>,
}

/// `scan` was applied to bytes starting at `offset` of the stream.
fn end_of(scan: Scan, offset: usize) -> End {
    match scan {
        Scan::Continue { consumed } => End { accepted: offset + consumed, stop: None },
        Scan::Close { start, consumed, code } => {
            assert!(start < consumed && consumed - start <= MAX_CLOSE_FRAME, "a close frame is whole and short");
            End { accepted: offset + consumed, stop: Some(format!("close {code:?} at {}", offset + start)) }
        }
        Scan::Violation { consumed, violation } => {
            End { accepted: offset + consumed, stop: Some(format!("{violation:?} at {}", offset + consumed)) }
        }
        Scan::Paused { .. } => panic!("a scan without a budget paused"),
        Scan::OwnPong { .. } => panic!("a scan with no keepalive ping outstanding took a pong for the gateway's"),
    }
}

/// Presents `stream` to `scanner` as the pump would over reads of varying sizes.
fn scan_in_reads(scanner: &mut Scanner, stream: &[u8], seed: u8, stop_at_boundary: bool) -> End {
    let mut ready = 0;
    let mut filled = 0;
    let mut size = usize::from(seed) + 1;
    loop {
        if filled < stream.len() {
            filled = (filled + size).min(stream.len());
            size = size * 7 % 257 + 1;
        }
        let scan = scanner.scan(&stream[ready..filled], stop_at_boundary, None);
        assert!(scan_consumed(&scan) <= filled - ready, "accepted more than was read");
        match scan {
            Scan::Continue { consumed } => {
                ready += consumed;
                let stuck = consumed == 0 || !stop_at_boundary || ready == filled;
                if filled == stream.len() && stuck {
                    return End { accepted: ready, stop: None };
                }
            }
            other => return end_of(other, ready),
        }
        // An unaccepted tail is at most a header or a close frame: the pump's buffer holds it.
        assert!(filled - ready <= MAX_CLOSE_FRAME || stop_at_boundary, "unaccepted tail too long");
    }
}

fn scan_consumed(scan: &Scan) -> usize {
    match *scan {
        Scan::Continue { consumed }
        | Scan::Close { consumed, .. }
        | Scan::Violation { consumed, .. }
        | Scan::Paused { consumed }
        | Scan::OwnPong { consumed, .. } => consumed,
    }
}

/// A client's upgrade request, from its first byte to the request the gateway would send
/// upstream: read within the size limit, target and upgrade checked, routed, the token found,
/// the upstream request built (for a keyless and for an authenticated caller). The request
/// built must parse as HTTP/1.1 and carry only the gateway's own identity and WebSocket
/// headers, however the client spelled its own.
pub fn upgrade_request(input: &[u8]) {
    let mut reader = input;
    let head = match now_or_never(handshake::read_head(&mut reader, 4096)) {
        Ok(head) => head,
        Err(rejection) => {
            let _ = rejection.to_response();
            return;
        }
    };
    let _ = auth::find_token(&head);
    let _ = auth::without_access_token(&head.target);
    if handshake::check_target(&head).is_err() {
        return;
    }
    let Ok(routes) = RouteTable::new(&[fuzz_api()]) else { return };
    let Some(mut route) = routes.resolve(&head.target) else { return };
    let Ok(request) = handshake::check_upgrade(head) else { return };
    route.rest = auth::without_access_token(&route.rest);
    let Ok(endpoint) = Endpoint::parse("ws://127.0.0.1:9/base") else { return };
    let client = ClientInfo { addr: ([127, 0, 0, 1], 1).into(), proto: "http" };
    let caller = Principal {
        jti: "j".into(),
        client_id: "c".into(),
        application_id: "a".into(),
        application: "app".into(),
        subscriber: "s".into(),
        plan: "Gold".into(),
        issued_at: 0,
        expires_at: 0,
    };
    for caller in [None, Some(&caller)] {
        let sent = upstream::request_head(&endpoint, &route, &request, "AAAAAAAAAAAAAAAAAAAAAA==", client, caller);
        check_upstream_request(&sent, caller.is_some());
    }
}

fn fuzz_api() -> ApiSpec {
    ApiSpec {
        name: "Fuzz".into(),
        context: "/ctx".into(),
        version: "1.0".into(),
        endpoints: vec!["ws://127.0.0.1:9/base".into()],
        auth: AuthMode::None,
        default_version: true,
        ..ApiSpec::default()
    }
}

/// What the upstream receives is one well-formed request whose gateway headers are the
/// gateway's alone.
fn check_upstream_request(sent: &[u8], authenticated: bool) {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = request.parse(sent);
    assert!(matches!(parsed, Ok(httparse::Status::Complete(n)) if n == sent.len()), "upstream request: {parsed:?}");
    let query = request.path.unwrap_or_default().split_once('?').map(|(_, q)| q).unwrap_or_default();
    let mut names = query.split(['&', ';']).map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name));
    assert!(!names.any(auth::names_access_token), "the token went upstream: {query}");
    let count =
        |wanted: &str| request.headers.iter().filter(|h| h.name.replace('_', "-").eq_ignore_ascii_case(wanted)).count();
    for own in ["host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "x-forwarded-for"] {
        assert_eq!(count(own), 1, "{own} appears once");
    }
    let identity =
        request.headers.iter().filter(|h| h.name.replace('_', "-").to_ascii_lowercase().starts_with("x-wsgate-"));
    assert_eq!(identity.count(), if authenticated { 5 } else { 0 }, "identity headers are the gateway's");
    if authenticated {
        assert_eq!(count("authorization"), 0, "the bearer token went upstream");
    }
}

/// A JWT as the gateway reads it before any key is involved: split, decoded, typed, and its
/// registered claims judged at a few instants. Signatures are not the parser's business (ring
/// checks them); everything before them is.
pub fn jwt(input: &[u8]) {
    let Ok(token) = std::str::from_utf8(input) else { return };
    let Ok(decoded) = auth::decode(token) else { return };
    assert!(token.starts_with(decoded.signed), "the signed part is the token's start");
    for now in [0, 1_800_000_000, i64::MAX, i64::MIN] {
        for external in [false, true] {
            let _ = auth::check_claims(&decoded.claims, auth::AUDIENCE, external, now);
        }
    }
}

/// Polls a future once; the parsers here read from memory and never wait.
fn now_or_never<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a parser over bytes in memory waited"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_entry_point_takes_empty_and_tiny_inputs() {
        for input in [&b""[..], b"\x00", b"\x00\x01", b"\x01\x00\x81\x00"] {
            super::frames(input);
            super::upgrade_request(input);
            super::jwt(input);
        }
    }
}

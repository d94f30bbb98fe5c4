//! The relay driven in memory: `duplex` pipes stand in for both sockets, so every byte each
//! side receives can be compared with what the other side sent.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

use super::frame::{MAX_CLOSE_FRAME, write_close};
use super::*;

const LIMITS: RelayConfig = RelayConfig {
    extensions: false,
    max_frame: 1 << 16,
    max_message: 1 << 17,
    idle_timeout: Duration::from_secs(60),
    close_timeout: Duration::from_secs(2),
};

/// A frame with a short payload, masked with a fixed key when `masked`.
fn frame(opcode: u8, fin: bool, masked: bool, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![(u8::from(fin) << 7) | opcode, (u8::from(masked) << 7) | payload.len() as u8];
    if masked {
        let key = [9, 8, 7, 6];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

fn close(code: u16, masked: bool) -> Vec<u8> {
    let mut out = [0; MAX_CLOSE_FRAME];
    let len = write_close(&mut out, code, "", masked.then_some([1, 2, 3, 4]));
    out[..len].to_vec()
}

struct Sides {
    client: DuplexStream,
    upstream: DuplexStream,
    relay: tokio::task::JoinHandle<RelayReport>,
    live: Arc<Live>,
}

fn start(limits: RelayConfig) -> Sides {
    let (client, gateway_client) = duplex(1 << 16);
    let (upstream, gateway_upstream) = duplex(1 << 16);
    let live = Live::new();
    let sockets =
        Sockets { client: gateway_client, upstream: gateway_upstream, client_early: &[], upstream_early: &[] };
    let metering = Metering { limits: Arc::default(), counters: Arc::new(wsgate_counters::LocalCounters::new()) };
    let relay = tokio::spawn(relay(sockets, limits, live.clone(), metering, None));
    Sides { client, upstream, relay, live }
}

async fn read_exact(stream: &mut DuplexStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf)).await.expect("in time").expect("read");
    buf
}

/// The close code of the next frame, which must be a close frame.
async fn read_close_code(stream: &mut DuplexStream) -> u16 {
    let head = read_exact(stream, 2).await;
    assert_eq!(head[0], 0x88, "expected a close frame");
    let masked = head[1] & 0x80 != 0;
    let len = usize::from(head[1] & 0x7F);
    let rest = read_exact(stream, len + if masked { 4 } else { 0 }).await;
    let (key, payload) = if masked { (&rest[..4], &rest[4..]) } else { (&[0u8; 4][..], &rest[..]) };
    u16::from_be_bytes([payload[0] ^ key[0], payload[1] ^ key[1]])
}

#[tokio::test]
async fn frames_pass_unchanged_both_ways_and_closes_end_the_relay() {
    let mut s = start(LIMITS);
    let mut from_client = frame(0x1, false, true, b"hel");
    from_client.extend(frame(0x9, true, true, b"ping"));
    from_client.extend(frame(0x0, true, true, b"lo"));
    s.client.write_all(&from_client).await.expect("write");
    assert_eq!(read_exact(&mut s.upstream, from_client.len()).await, from_client);

    let from_upstream = frame(0x2, true, false, &[0, 1, 2, 255]);
    s.upstream.write_all(&from_upstream).await.expect("write");
    assert_eq!(read_exact(&mut s.client, from_upstream.len()).await, from_upstream);

    s.client.write_all(&close(4000, true)).await.expect("write");
    assert_eq!(read_close_code(&mut s.upstream).await, 4000);
    s.upstream.write_all(&close(4000, false)).await.expect("write");
    assert_eq!(read_close_code(&mut s.client).await, 4000);

    let report = s.relay.await.expect("relay");
    assert_eq!((report.client_messages, report.upstream_messages), (1, 1));
    assert_eq!((report.client_close, report.upstream_close, report.end), (Some(4000), Some(4000), EndReason::Closed));
}

#[tokio::test]
async fn a_client_violation_closes_both_sides_with_1002_after_the_replies_in_flight() {
    let mut s = start(LIMITS);
    let good = frame(0x1, true, true, b"ok");
    let mut bytes = good.clone();
    bytes.extend(frame(0x1, true, false, b"unmasked"));
    s.client.write_all(&bytes).await.expect("write");
    assert_eq!(read_exact(&mut s.upstream, good.len()).await, good);
    assert_eq!(read_close_code(&mut s.upstream).await, 1002);
    // The upstream's answer to "ok" and its close reply: the answer reaches the client, the
    // close is replaced by the gateway's 1002.
    let reply = frame(0x1, true, false, b"ok");
    let mut answer = reply.clone();
    answer.extend(close(1000, false));
    s.upstream.write_all(&answer).await.expect("write");
    assert_eq!(read_exact(&mut s.client, reply.len()).await, reply);
    assert_eq!(read_close_code(&mut s.client).await, 1002);
    assert_eq!(s.relay.await.expect("relay").end, EndReason::ClientViolation);
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_violation_still_reaches_the_client_after_the_close_timeout() {
    let mut s = start(LIMITS);
    s.client.write_all(&frame(0x3, true, true, b"")).await.expect("write");
    assert_eq!(read_close_code(&mut s.upstream).await, 1002);
    assert_eq!(read_close_code(&mut s.client).await, 1002);
}

#[tokio::test]
async fn an_oversized_frame_closes_both_sides_with_1009() {
    let mut s = start(RelayConfig { max_frame: 10, ..LIMITS });
    s.client.write_all(&frame(0x2, true, true, &[0; 11])).await.expect("write");
    assert_eq!(read_close_code(&mut s.upstream).await, 1009);
    s.upstream.write_all(&close(1009, false)).await.expect("write");
    assert_eq!(read_close_code(&mut s.client).await, 1009);
}

#[tokio::test]
async fn a_vanished_upstream_becomes_close_1014_for_the_client() {
    let mut s = start(LIMITS);
    drop(s.upstream);
    assert_eq!(read_close_code(&mut s.client).await, 1014);
    s.client.write_all(&close(1014, true)).await.expect("write");
    assert_eq!(s.relay.await.expect("relay").end, EndReason::UpstreamGone);
}

#[tokio::test]
async fn a_vanished_client_becomes_close_1001_for_the_upstream() {
    let mut s = start(LIMITS);
    drop(s.client);
    assert_eq!(read_close_code(&mut s.upstream).await, 1001);
    drop(s.upstream);
    assert_eq!(s.relay.await.expect("relay").end, EndReason::ClientGone);
}

#[tokio::test]
async fn the_gateway_close_waits_for_the_end_of_a_frame_in_flight() {
    let mut s = start(LIMITS);
    // Half of a 10-byte frame: the close must not land inside it.
    let whole = frame(0x2, true, false, &[7; 10]);
    s.upstream.write_all(&whole[..6]).await.expect("write");
    assert_eq!(read_exact(&mut s.client, 6).await, whole[..6]);
    s.live.stop(1001, "gateway shutting down");
    assert_eq!(read_close_code(&mut s.upstream).await, 1001);
    s.upstream.write_all(&whole[6..]).await.expect("write");
    assert_eq!(read_exact(&mut s.client, 6).await, whole[6..]);
    assert_eq!(read_close_code(&mut s.client).await, 1001);
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_closed_with_1001() {
    let mut s = start(RelayConfig { idle_timeout: Duration::from_secs(1), ..LIMITS });
    assert_eq!(read_close_code(&mut s.client).await, 1001);
    assert_eq!(read_close_code(&mut s.upstream).await, 1001);
    assert_eq!(s.relay.await.expect("relay").end, EndReason::Idle);
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_close_times_out() {
    let mut s = start(LIMITS);
    s.client.write_all(&close(1000, true)).await.expect("write");
    assert_eq!(read_close_code(&mut s.upstream).await, 1000);
    let report = s.relay.await.expect("relay");
    assert_eq!(report.end, EndReason::CloseTimeout);
}

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
    max_control_frames: 100,
    idle_timeout: Duration::from_secs(60),
    close_timeout: Duration::from_secs(2),
    max_lifetime: None,
    ping_interval: None,
    ping_timeout: Duration::from_secs(10),
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

/// Longer than any timer of the relay under test: tests on a paused clock wait for them (time
/// jumps to the next timer), the others fail after it when a frame never comes.
const WAIT: Duration = Duration::from_secs(60);

async fn read_exact(stream: &mut DuplexStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    tokio::time::timeout(WAIT, stream.read_exact(&mut buf)).await.expect("in time").expect("read");
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

/// Reads the next frame, which must be a close frame, and returns its whole payload (code and
/// reason), unmasked.
async fn read_close_payload(stream: &mut DuplexStream) -> Vec<u8> {
    let head = read_exact(stream, 2).await;
    assert_eq!(head[0], 0x88, "expected a close frame, got {head:?}");
    let masked = head[1] & 0x80 != 0;
    let len = usize::from(head[1] & 0x7F);
    let rest = read_exact(stream, len + if masked { 4 } else { 0 }).await;
    match masked {
        true => rest[4..].iter().enumerate().map(|(i, b)| b ^ rest[i % 4]).collect(),
        false => rest,
    }
}

#[tokio::test]
async fn a_client_close_answered_by_a_vanishing_upstream_gets_an_empty_close_not_1014() {
    let mut s = start(LIMITS);
    s.client.write_all(&close(4000, true)).await.expect("write");
    assert_eq!(read_close_code(&mut s.upstream).await, 4000);
    // Many servers drop TCP after a client's close instead of answering it.
    drop(s.upstream);
    assert_eq!(read_close_payload(&mut s.client).await, b"", "a close without a code answers any close");
    let report = s.relay.await.expect("relay");
    assert_eq!((report.client_close, report.upstream_close, report.end), (Some(4000), None, EndReason::Closed));
}

#[tokio::test]
async fn an_upstream_close_answered_by_a_vanishing_client_gets_an_empty_close_not_1001() {
    let mut s = start(LIMITS);
    s.upstream.write_all(&close(4001, false)).await.expect("write");
    assert_eq!(read_close_code(&mut s.client).await, 4001);
    drop(s.client);
    assert_eq!(read_close_payload(&mut s.upstream).await, b"");
    assert_eq!(s.relay.await.expect("relay").end, EndReason::Closed);
}

#[tokio::test(start_paused = true)]
async fn an_upstream_that_vanishes_mid_frame_is_reported_at_once_after_the_padded_frame() {
    let mut s = start(LIMITS);
    let whole = frame(0x1, true, false, b"0123456789");
    s.upstream.write_all(&whole[..7]).await.expect("write");
    assert_eq!(read_exact(&mut s.client, 7).await, whole[..7]);
    drop(s.upstream);
    // The rest of the announced payload comes as zeros, then the close, with no waiting: the
    // clock is paused, so any timer would show as a timeout here.
    let started = Instant::now();
    assert_eq!(read_exact(&mut s.client, whole.len() - 7).await, [0; 5]);
    assert_eq!(read_close_code(&mut s.client).await, 1014);
    assert_eq!(started.elapsed(), Duration::ZERO);
    s.client.write_all(&close(1014, true)).await.expect("write");
    let report = s.relay.await.expect("relay");
    assert_eq!(report.end, EndReason::UpstreamGone);
    assert_eq!(report.upstream_messages, 0, "the cut message was not relayed");
    assert_eq!(report.upstream_bytes, 7, "padding is not the upstream's");
}

#[tokio::test]
async fn a_client_that_vanishes_mid_frame_leaves_the_upstream_a_frame_of_zeros_and_a_1001() {
    let mut s = start(LIMITS);
    let first = frame(0x2, true, true, b"whole");
    let cut = frame(0x2, true, true, b"cut short here");
    let mut bytes = first.clone();
    bytes.extend_from_slice(&cut[..9]);
    s.client.write_all(&bytes).await.expect("write");
    assert_eq!(read_exact(&mut s.upstream, bytes.len()).await, bytes);
    drop(s.client);
    // Masked with the frame's own key, the padding reads as zeros.
    let padding = read_exact(&mut s.upstream, cut.len() - 9).await;
    let key = &cut[2..6];
    let offset = 9 - 6;
    let unmasked: Vec<u8> = padding.iter().enumerate().map(|(i, b)| b ^ key[(offset + i) % 4]).collect();
    assert_eq!(unmasked, vec![0; cut.len() - 9]);
    assert_eq!(read_close_code(&mut s.upstream).await, 1001);
    drop(s.upstream);
    let report = s.relay.await.expect("relay");
    assert_eq!((report.client_messages, report.end), (1, EndReason::ClientGone));
}

#[tokio::test(start_paused = true)]
async fn a_ping_flood_is_closed_with_1008_and_pings_within_the_budget_pass() {
    let mut s = start(RelayConfig { max_control_frames: 3, ..LIMITS });
    let ping = frame(0x9, true, true, b"p");
    // Three per second (per tick of the relay's timer) pass, second after second.
    for _ in 0..2 {
        let three: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * 3).collect();
        s.client.write_all(&three).await.expect("write");
        assert_eq!(read_exact(&mut s.upstream, three.len()).await, three);
        tokio::time::advance(Duration::from_millis(1001)).await;
        // Let the relay see its tick (which opens a new window) before more frames come.
        tokio::task::yield_now().await;
    }
    // The fourth within one second is refused, and never forwarded.
    let four: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * 4).collect();
    s.client.write_all(&four).await.expect("write");
    assert_eq!(read_exact(&mut s.upstream, ping.len() * 3).await, four[..ping.len() * 3]);
    assert_eq!(read_close_code(&mut s.upstream).await, 1008);
    s.upstream.write_all(&close(1008, false)).await.expect("write");
    assert_eq!(read_close_code(&mut s.client).await, 1008);
    assert_eq!(s.relay.await.expect("relay").end, EndReason::ClientViolation);
}

fn start_expiring(limits: RelayConfig, token_expires: Option<Instant>) -> Sides {
    let (client, gateway_client) = duplex(1 << 16);
    let (upstream, gateway_upstream) = duplex(1 << 16);
    let live = Live::new();
    let sockets =
        Sockets { client: gateway_client, upstream: gateway_upstream, client_early: &[], upstream_early: &[] };
    let metering = Metering { limits: Arc::default(), counters: Arc::new(wsgate_counters::LocalCounters::new()) };
    let relay = tokio::spawn(relay(sockets, limits, live.clone(), metering, token_expires));
    Sides { client, upstream, relay, live }
}

#[tokio::test(start_paused = true)]
async fn the_maximum_lifetime_closes_both_sides_with_1001() {
    let mut s = start(RelayConfig { max_lifetime: Some(Duration::from_secs(30)), ..LIMITS });
    let started = Instant::now();
    // Traffic does not extend a lifetime.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(8)).await;
        let hello = frame(0x1, true, true, b"hi");
        s.client.write_all(&hello).await.expect("write");
        assert_eq!(read_exact(&mut s.upstream, hello.len()).await, hello);
    }
    assert_eq!(read_close_payload(&mut s.client).await, b"\x03\xe9connection lifetime reached");
    assert_eq!(started.elapsed(), Duration::from_secs(30), "at the deadline, not at a tick near it");
    assert_eq!(read_close_code(&mut s.upstream).await, 1001);
    s.upstream.write_all(&close(1001, false)).await.expect("write");
    s.client.write_all(&close(1001, true)).await.expect("write");
    let report = s.relay.await.expect("relay");
    assert_eq!((report.end, report.closed_by), (EndReason::Lifetime, ClosedBy::Gateway));
}

#[tokio::test(start_paused = true)]
async fn the_earliest_deadline_gives_the_close_token_expiry_or_lifetime() {
    let lifetime = RelayConfig { max_lifetime: Some(Duration::from_secs(30)), ..LIMITS };
    let mut s = start_expiring(lifetime, Some(Instant::now() + Duration::from_secs(10)));
    assert_eq!(read_close_code(&mut s.client).await, 4001);
    assert_eq!(read_close_code(&mut s.upstream).await, 4001);
    let mut s = start_expiring(lifetime, Some(Instant::now() + Duration::from_secs(40)));
    assert_eq!(read_close_code(&mut s.client).await, 1001);
    assert_eq!(read_close_code(&mut s.upstream).await, 1001);
    s.upstream.write_all(&close(1001, false)).await.expect("write");
    s.client.write_all(&close(1001, true)).await.expect("write");
    assert_eq!(s.relay.await.expect("relay").end, EndReason::Lifetime);
}

const KEEPALIVE: RelayConfig =
    RelayConfig { ping_interval: Some(Duration::from_secs(10)), ping_timeout: Duration::from_secs(5), ..LIMITS };

/// Reads the next frame, which must be a keepalive ping, and returns its payload unmasked
/// (checking that it is masked exactly when `masked`).
async fn read_ping(stream: &mut DuplexStream, masked: bool) -> Vec<u8> {
    let head = read_exact(stream, 2).await;
    assert_eq!((head[0], head[1] & 0x80 != 0), (0x89, masked), "expected a ping, got {head:?}");
    let len = usize::from(head[1] & 0x7F);
    let rest = read_exact(stream, len + if masked { 4 } else { 0 }).await;
    let payload: Vec<u8> = match masked {
        true => rest[4..].iter().enumerate().map(|(i, b)| b ^ rest[i % 4]).collect(),
        false => rest,
    };
    assert!(payload.starts_with(frame::PING_PREFIX), "{payload:?}");
    payload
}

/// Nothing is waiting to be read on `stream` (checked by a read that must not complete).
async fn nothing_to_read(stream: &mut DuplexStream) {
    let mut byte = [0];
    let read = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut byte)).await;
    assert!(read.is_err(), "unexpected bytes: {read:?} {byte:?}");
}

#[tokio::test(start_paused = true)]
async fn quiet_sides_are_pinged_and_their_pongs_stay_with_the_gateway() {
    let mut s = start(KEEPALIVE);
    let started = Instant::now();
    let to_upstream = read_ping(&mut s.upstream, true).await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(10) && waited <= Duration::from_millis(12_500), "{waited:?}");
    let to_client = read_ping(&mut s.client, false).await;
    // Each side answers, with data around the pong; the other side gets the data only.
    let mut from_upstream = frame(0x1, true, false, b"a");
    from_upstream.extend(frame(0xA, true, false, &to_upstream));
    from_upstream.extend(frame(0x1, true, false, b"b"));
    s.upstream.write_all(&from_upstream).await.expect("write");
    let mut from_client = frame(0xA, true, true, &to_client);
    from_client.extend(frame(0x2, true, true, b"c"));
    s.client.write_all(&from_client).await.expect("write");
    let mut expected = frame(0x1, true, false, b"a");
    expected.extend(frame(0x1, true, false, b"b"));
    assert_eq!(read_exact(&mut s.client, expected.len()).await, expected);
    let data = frame(0x2, true, true, b"c");
    assert_eq!(read_exact(&mut s.upstream, data.len()).await, data);
    // The peers' own pings and pongs pass unchanged both ways, even with the gateway's payload.
    let own = frame(0x9, true, true, &to_client);
    s.client.write_all(&own).await.expect("write");
    assert_eq!(read_exact(&mut s.upstream, own.len()).await, own);
    let answer = frame(0xA, true, false, &to_client);
    s.upstream.write_all(&answer).await.expect("write");
    assert_eq!(read_exact(&mut s.client, answer.len()).await, answer);
    // Quiet again: more pings, with new numbers, each answered; nothing else arrives.
    for _ in 0..3 {
        let ping = read_ping(&mut s.upstream, true).await;
        assert_ne!(ping, to_upstream);
        s.upstream.write_all(&frame(0xA, true, false, &ping)).await.expect("write");
        let ping = read_ping(&mut s.client, false).await;
        s.client.write_all(&frame(0xA, true, true, &ping)).await.expect("write");
    }
    nothing_to_read(&mut s.client).await;
    nothing_to_read(&mut s.upstream).await;
    s.client.write_all(&close(1000, true)).await.expect("write");
    assert_eq!(read_close_code(&mut s.upstream).await, 1000);
    s.upstream.write_all(&close(1000, false)).await.expect("write");
    assert_eq!(read_close_code(&mut s.client).await, 1000);
    let report = s.relay.await.expect("relay");
    assert_eq!(report.end, EndReason::Closed);
    // The gateway's pings and their pongs are not the peers' traffic: each side's bytes are its
    // data, its own ping or pong and its close.
    let closes = (close(1000, true).len() + close(1000, false).len()) as u64;
    let relayed = data.len() + own.len() + answer.len() + expected.len();
    assert_eq!(report.client_bytes + report.upstream_bytes, relayed as u64 + closes);
}

#[tokio::test(start_paused = true)]
async fn an_upstream_that_never_answers_a_ping_is_closed_and_the_client_gets_1001() {
    let mut s = start(KEEPALIVE);
    let started = Instant::now();
    // The client talks; the upstream reads (its kernel would) but never says a word.
    let hello = frame(0x1, true, true, b"anyone?");
    s.client.write_all(&hello).await.expect("write");
    assert_eq!(read_exact(&mut s.upstream, hello.len()).await, hello);
    let _ping = read_ping(&mut s.upstream, true).await;
    // The client is quiet too, but answers its ping.
    let ping = read_ping(&mut s.client, false).await;
    s.client.write_all(&frame(0xA, true, true, &ping)).await.expect("write");
    assert_eq!(
        read_close_payload(&mut s.client).await,
        b"\x03\xe9upstream did not answer keepalive ping",
        "the client hears why"
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(15) && waited <= Duration::from_millis(18_750), "{waited:?}");
    assert_eq!(read_close_code(&mut s.upstream).await, 1001, "the silent side gets a close it may take");
    // The client's answer ends the connection; the upstream's is never waited for.
    s.client.write_all(&close(1001, true)).await.expect("write");
    let report = s.relay.await.expect("relay");
    assert_eq!((report.end, report.closed_by), (EndReason::UpstreamPingTimeout, ClosedBy::Gateway));
    assert_eq!(started.elapsed(), waited, "no close timeout was waited out");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_answers_a_ping_is_closed_and_the_upstream_gets_1001() {
    let mut s = start(KEEPALIVE);
    let _ping = read_ping(&mut s.client, false).await;
    let ping = read_ping(&mut s.upstream, true).await;
    s.upstream.write_all(&frame(0xA, true, false, &ping)).await.expect("write");
    assert_eq!(read_close_payload(&mut s.upstream).await, b"\x03\xe9client did not answer keepalive ping");
    assert_eq!(read_close_code(&mut s.client).await, 1001);
    s.upstream.write_all(&close(1001, false)).await.expect("write");
    assert_eq!(s.relay.await.expect("relay").end, EndReason::ClientPingTimeout);
}

#[tokio::test(start_paused = true)]
async fn a_side_that_talks_is_not_pinged_and_a_client_that_never_reads_is_closed() {
    // The upstream streams every 2 s; the client never reads nor writes. The upstream is never
    // pinged; the client's ping waits behind frames it does not take, and it is found dead.
    let (client, gateway_client) = duplex(256);
    let (mut upstream, gateway_upstream) = duplex(1 << 16);
    let sockets =
        Sockets { client: gateway_client, upstream: gateway_upstream, client_early: &[], upstream_early: &[] };
    let metering = Metering { limits: Arc::default(), counters: Arc::new(wsgate_counters::LocalCounters::new()) };
    let relay = tokio::spawn(relay(sockets, KEEPALIVE, Live::new(), metering, None));
    let started = Instant::now();
    let chunk = frame(0x2, true, false, &[7; 100]);
    let mut received = Vec::new();
    let report = loop {
        if relay.is_finished() {
            break relay.await.expect("relay");
        }
        let _ = tokio::time::timeout(Duration::from_millis(1), upstream.write_all(&chunk)).await;
        // Whatever the gateway sent the upstream, until it ended the connection.
        let mut buf = [0; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), upstream.read(&mut buf)).await {
            received.extend_from_slice(&buf[..n]);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(started.elapsed() < Duration::from_secs(60), "still open");
    };
    assert_eq!(report.end, EndReason::ClientPingTimeout);
    assert!(received.first() == Some(&0x88), "no ping reached the talking upstream, only the close: {received:?}");
    drop(client);
}

#[test]
fn an_apis_endpoint_settings_override_the_gateways_one_by_one() {
    let gateway = RelayConfig { max_lifetime: Some(Duration::from_secs(3600)), ..LIMITS };
    assert_eq!(format!("{:?}", gateway.for_api(&EndpointSettings::default())), format!("{gateway:?}"));
    let api = EndpointSettings {
        idle_timeout: Some(Duration::from_secs(5)),
        close_timeout: Some(Duration::from_secs(1)),
        max_frame_size: Some(100),
        max_message_size: Some(200),
        max_lifetime: Some(Duration::from_secs(60)),
        ping_interval: Some(Duration::from_secs(20)),
        ping_timeout: Some(Duration::from_secs(3)),
        connect_timeout: Some(Duration::from_secs(9)),
        ..EndpointSettings::default()
    };
    let config = gateway.for_api(&api);
    assert_eq!((config.idle_timeout, config.close_timeout), (Duration::from_secs(5), Duration::from_secs(1)));
    assert_eq!((config.max_frame, config.max_message), (100, 200));
    assert_eq!(config.max_lifetime, Some(Duration::from_secs(60)));
    assert_eq!((config.ping_interval, config.ping_timeout), (Some(Duration::from_secs(20)), Duration::from_secs(3)));
    assert_eq!(config.max_control_frames, LIMITS.max_control_frames, "not an endpoint setting");
}

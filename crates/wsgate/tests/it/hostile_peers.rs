//! Peers a naive relay mishandles: an upstream that answers a close by dropping TCP (as many
//! servers in the wild do), peers that vanish in the middle of a frame, a ping flood. Each
//! ends with the close frame the other side needs, at once, and harms no other connection.
//! (A client that never reads its HTTP answer is tested in memory, in wsgate-gateway's
//! `lib.rs`: over loopback, the kernel buffers any answer the gateway writes.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::Message;

use crate::harness::process::{TempDir, python_echo, serve_logging};
use crate::harness::raw::Frame;
use crate::harness::{
    Client, RawClient, Script, api, close_frame, echo_upstream, frame, gateway, opcode, upstream, within,
};

/// What a peer waiting on the gateway may wait, when nothing but the gateway's own work stands
/// between it and its answer: far below the 5 s close timeout a stall would show as.
const AT_ONCE: Duration = Duration::from_secs(1);

fn is_empty_close(frame: &Frame) -> bool {
    frame.opcode == opcode::CLOSE && frame.payload.is_empty()
}

#[tokio::test]
async fn a_client_close_answered_by_a_tcp_drop_gets_an_empty_close_instead_of_1014() {
    let dropper = upstream(Script::DropOnClose).await;
    let gw = gateway().api(api("/ctx", "1.0", &dropper.url())).start().await;
    let mut client = RawClient::upgraded(gw.addr(), "/ctx/1.0").await;
    client.send_frame(frame(opcode::TEXT, "hello")).await;
    assert_eq!(client.read_frame().await.payload, b"hello");

    client.send_frame(close_frame(4000)).await;

    // RFC 6455 5.5.1: the answer to a close echoes its code or carries none; 1014 would say
    // the upstream failed, when it only skipped a courtesy.
    let answer = client.read_frame().await;
    assert!(is_empty_close(&answer), "a close without a code answers the client's: {answer:?}");
    assert!(client.is_hung_up().await, "then the gateway ends the connection");
}

/// The same with a server we did not write (python `websockets` driven to drop TCP on a
/// client's close) and a client library we did not write: the client sees a clean close.
#[tokio::test]
async fn a_library_client_closing_on_a_tcp_dropping_library_server_sees_a_clean_close() {
    let dropper = python_echo("drop-on-close").await;
    let gw = gateway().api(api("/ctx", "1.0", &dropper.url())).start().await;
    let mut client = Client::connect(&gw.url("/ctx/1.0")).await;
    client.echoes(Message::text("hello")).await;

    client.close_with(1000).await;

    assert_eq!(client.expect_close_code().await, None, "the gateway answers with a close without a code");
    client.finish().await;
}

#[tokio::test]
async fn an_upstream_close_whose_client_vanishes_gets_an_empty_close_instead_of_1001() {
    let closer = upstream(Script::CloseAfterFirstMessage(4002)).await;
    let gw = gateway().api(api("/ctx", "1.0", &closer.url())).start().await;
    let mut client = RawClient::upgraded(gw.addr(), "/ctx/1.0").await;
    client.send_frame(frame(opcode::TEXT, "please close")).await;
    assert_eq!(client.expect_close_code().await, Some(4002));

    drop(client);

    assert_eq!(closer.next_close_code().await, None, "the upstream's close is answered without a code");
}

#[tokio::test]
async fn an_upstream_reset_mid_frame_reaches_the_client_as_the_completed_frame_then_1014_at_once() {
    let resetter = upstream(Script::ResetMidFrame).await;
    let gw = gateway().api(api("/ctx", "1.0", &resetter.url())).start().await;
    let mut client = RawClient::upgraded(gw.addr(), "/ctx/1.0").await;
    client.send_frame(frame(opcode::BINARY, "first")).await;
    assert_eq!(client.read_frame().await.payload, b"first");

    // The upstream sent 10 bytes of a 100-byte frame and reset. A close can only follow a whole
    // frame: the gateway completes this one with zeros, then says the upstream went away.
    let started = Instant::now();
    let cut = within(AT_ONCE, "the cut frame is completed", client.read_frame()).await;
    assert_eq!((cut.opcode, cut.payload.len()), (opcode::BINARY, 100));
    assert_eq!(cut.payload[..10], [b'r'; 10]);
    assert!(cut.payload[10..].iter().all(|b| *b == 0), "padding is zeros: {:?}", cut.payload);
    let close = within(AT_ONCE, "the close follows", client.read_frame()).await;
    assert_eq!(close.close_code(), Some(1014));
    assert!(started.elapsed() < AT_ONCE, "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_client_reset_mid_frame_reaches_the_upstream_as_the_completed_frame_then_1001() {
    let recorder = upstream(Script::Echo).await;
    let gw = gateway().api(api("/ctx", "1.0", &recorder.url())).start().await;
    let mut client = RawClient::upgraded(gw.addr(), "/ctx/1.0").await;
    let whole = frame(opcode::TEXT, "a message of twenty-six b").to_bytes();
    client.send(&whole[..whole.len() - 15]).await;
    // Let the gateway relay the head of the frame before the reset.
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.reset();

    let frame = loop {
        if let crate::harness::scripted::Event::Frame(frame) = recorder.next_event().await {
            break frame;
        }
    };
    assert_eq!(frame.payload.len(), 25, "the frame arrives whole: {frame:?}");
    assert_eq!(frame.payload[..10], *b"a message ");
    assert!(frame.payload[10..].iter().all(|b| *b == 0), "the padding unmasks to zeros: {frame:?}");
    assert_eq!(recorder.next_close_code().await, Some(1001));
}

#[tokio::test]
async fn the_access_log_does_not_count_a_message_cut_by_a_reset() {
    let resetter = upstream(Script::ResetMidFrame).await;
    let dir = TempDir::new("cut-message");
    let config = dir.write("wsgate.toml", &gateway().api(api("/ctx", "1.0", &resetter.url())).toml());
    let (served, mut log) = serve_logging(&config, dir.path()).await;
    let addr: SocketAddr = served.ws_addr.parse().expect("an address");
    let mut client = RawClient::upgraded(addr, "/ctx/1.0").await;
    client.send_frame(frame(opcode::BINARY, "first")).await;
    assert_eq!(client.read_frame().await.payload, b"first");
    assert_eq!(client.read_frame().await.payload.len(), 100);
    assert_eq!(client.expect_close_code().await, Some(1014));
    client.send_frame(close_frame(1014)).await;

    let event = log.next_closed_connection().await;
    assert_eq!(event["messages_in"], 1, "{event}");
    assert_eq!(event["messages_out"], 1, "the echo counts, the cut message does not: {event}");
    assert_eq!(event["end"], "UpstreamGone", "{event}");
}

#[tokio::test]
async fn a_ping_flood_is_closed_with_1008_and_other_connections_carry_on() {
    let echo = echo_upstream().await;
    let gw = gateway().max_control_frames_per_second(50).api(api("/echo", "1.0", &echo.url())).start().await;
    let mut calm = Client::connect(&gw.url("/echo/1.0")).await;
    calm.echoes(Message::text("before")).await;

    // Fifty pings in a second are allowed; the flood is a thousand at once.
    let mut flooder = RawClient::upgraded(gw.addr(), "/echo/1.0").await;
    let ping = frame(opcode::PING, "flood").to_bytes();
    let flood: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * 1000).collect();
    let _ = flooder.try_send(&flood).await;
    assert_eq!(flooder.expect_close_code().await, Some(1008));

    calm.echoes(Message::text("after")).await;
    let mut newcomer = Client::connect(&gw.url("/echo/1.0")).await;
    newcomer.echoes(Message::text("unaffected")).await;
}

#[tokio::test]
async fn pings_within_the_limit_pass_both_ways() {
    let recorder = upstream(Script::Echo).await;
    let gw = gateway().max_control_frames_per_second(50).api(api("/ctx", "1.0", &recorder.url())).start().await;
    let mut client = RawClient::upgraded(gw.addr(), "/ctx/1.0").await;
    for i in 0..40u8 {
        client.send_frame(frame(opcode::PING, [i])).await;
    }
    for i in 0..40u8 {
        let pong = client.read_frame().await;
        assert_eq!((pong.opcode, pong.payload.as_slice()), (opcode::PONG, &[i][..]));
    }
}

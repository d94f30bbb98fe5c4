//! Messages go through the gateway and come back unchanged: every payload-length
//! encoding, large messages, fragments with pings between them, subprotocols.

use std::time::Duration;

use tokio_tungstenite::tungstenite::Message;

use crate::harness::client::{binary_of_len, text_of_len};
use crate::harness::{Client, RawClient, Script, api, echo_upstream, frame, gateway, opcode, upstream};

#[tokio::test]
async fn text_binary_and_empty_messages_echo_unchanged() {
    let echo = echo_upstream().await;
    let gw = gateway().api(api("/echowebsocket", "1.0", &echo.url())).start().await;
    let mut client = Client::connect(&gw.url("/echowebsocket/1.0")).await;

    client.echoes(Message::text("hello")).await;
    client.echoes(Message::text("héllo, wörld ✓")).await;
    client.echoes(Message::binary(vec![0u8, 1, 2, 255])).await;
    client.echoes(Message::text("")).await;
    client.echoes(Message::binary(Vec::new())).await;
}

#[tokio::test]
async fn every_payload_length_encoding_echoes_unchanged() {
    let echo = echo_upstream().await;
    let gw = gateway().api(api("/echowebsocket", "1.0", &echo.url())).start().await;
    let mut client = Client::connect(&gw.url("/echowebsocket/1.0")).await;

    // 125 is the largest 7-bit length, 126 the smallest 16-bit one,
    // 65535 the largest 16-bit one and 65536 the smallest 64-bit one.
    for len in [0, 1, 125, 126, 127, 65535, 65536] {
        client.echoes(binary_of_len(len)).await;
        client.echoes(text_of_len(len)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_mib_message_echoes_unchanged() {
    let echo = echo_upstream().await;
    let gw = gateway().api(api("/echowebsocket", "1.0", &echo.url())).start().await;
    let mut client = Client::connect(&gw.url("/echowebsocket/1.0")).await;

    // Exactly the default max_frame_size: the largest frame the gateway must accept.
    client.echoes_within(binary_of_len(16 << 20), Duration::from_secs(60)).await;
}

#[tokio::test]
async fn fragments_with_pings_between_them_are_reassembled_and_pings_answered() {
    let echo = echo_upstream().await;
    let gw = gateway().api(api("/echowebsocket", "1.0", &echo.url())).start().await;
    let mut client = RawClient::upgraded(gw.addr(), "/echowebsocket/1.0").await;

    client.send_frame(frame(opcode::TEXT, "Hel").not_final()).await;
    client.send_frame(frame(opcode::PING, "p1")).await;
    client.send_frame(frame(opcode::CONTINUATION, "lo, ").not_final()).await;
    client.send_frame(frame(opcode::PING, "p2")).await;
    client.send_frame(frame(opcode::CONTINUATION, "world")).await;

    let mut pongs = Vec::new();
    let mut text = Vec::new();
    let mut message_done = false;
    while pongs.len() < 2 || !message_done {
        let reply = client.read_frame().await;
        match reply.opcode {
            opcode::PONG => pongs.push(String::from_utf8_lossy(&reply.payload).into_owned()),
            opcode::TEXT | opcode::CONTINUATION => {
                text.extend_from_slice(&reply.payload);
                message_done = reply.fin;
            }
            other => panic!("unexpected frame with opcode {other:#x}: {reply:?}"),
        }
    }
    assert_eq!(pongs, ["p1", "p2"], "each ping gets its own pong, in order");
    assert_eq!(String::from_utf8_lossy(&text), "Hello, world");
}

#[tokio::test]
async fn the_subprotocol_the_upstream_selects_reaches_the_client() {
    let chat = upstream(Script::EchoWithProtocol("chat")).await;
    let gw = gateway().api(api("/chat", "1.0", &chat.url())).start().await;

    let mut client = Client::connect_with(&gw.url("/chat/1.0"), &[("Sec-WebSocket-Protocol", "chat, superchat")]).await;

    assert_eq!(client.protocol(), Some("chat"));
    let request = chat.next_request().await;
    assert_eq!(
        request.header("Sec-WebSocket-Protocol"),
        Some("chat, superchat"),
        "the upstream chooses from the client's own offer"
    );
    client.echoes(Message::text("in chat")).await;
}

#[tokio::test]
async fn the_echo_servers_choice_of_subprotocol_reaches_the_client() {
    let echo = echo_upstream().await;
    let gw = gateway().api(api("/echowebsocket", "1.0", &echo.url())).start().await;

    let mut client =
        Client::connect_with(&gw.url("/echowebsocket/1.0"), &[("Sec-WebSocket-Protocol", "chat, superchat")]).await;

    assert_eq!(client.protocol(), Some("chat"), "the echo server picks the first offer");
    client.echoes(Message::text("in chat")).await;
}

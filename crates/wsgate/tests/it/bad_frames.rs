//! Frames that break RFC 6455 after a successful upgrade: the client gets a
//! close frame with the right code, the upstream is told too, and no other
//! connection notices.

use tokio_tungstenite::tungstenite::Message;

use crate::harness::{
    Client, FrameSpec, RawClient, Script, api, check_rows, echo_upstream, frame, gateway, opcode, upstream,
};

/// Small limits, so the size rows need only small frames.
const MAX_FRAME: u64 = 1024;
const MAX_MESSAGE: u64 = 4096;

struct BadFrames {
    name: &'static str,
    frames: Vec<FrameSpec>,
    /// The close code the client must receive; the upstream must receive the same.
    close_code: u16,
}

fn bad_frames() -> Vec<BadFrames> {
    let row = |name, frames, close_code| BadFrames { name, frames, close_code };
    let kib = vec![b'k'; 1000];
    vec![
        row("an unmasked client frame", vec![frame(opcode::TEXT, "clear").unmasked()], 1002),
        row("a ping with a 126-byte payload", vec![frame(opcode::PING, [b'p'; 126])], 1002),
        row("a close with a 126-byte payload", vec![frame(opcode::CLOSE, [b'c'; 126])], 1002),
        row("a fragmented ping", vec![frame(opcode::PING, "half").not_final()], 1002),
        row("a continuation with no message open", vec![frame(opcode::CONTINUATION, "orphan")], 1002),
        row(
            "a new text frame while a fragmented message is open",
            vec![frame(opcode::TEXT, "first").not_final(), frame(opcode::TEXT, "second")],
            1002,
        ),
        row(
            "a new binary frame while a fragmented message is open",
            vec![frame(opcode::BINARY, "first").not_final(), frame(opcode::BINARY, "second")],
            1002,
        ),
        row("reserved data opcode 0x3", vec![frame(0x3, "reserved")], 1002),
        row("reserved control opcode 0xB", vec![frame(0xB, "reserved")], 1002),
        row(
            "a frame larger than max_frame_size",
            vec![frame(opcode::BINARY, vec![b'f'; MAX_FRAME as usize + 1])],
            1009,
        ),
        row(
            "a message larger than max_message_size across fragments",
            vec![
                frame(opcode::BINARY, &kib).not_final(),
                frame(opcode::CONTINUATION, &kib).not_final(),
                frame(opcode::CONTINUATION, &kib).not_final(),
                frame(opcode::CONTINUATION, &kib).not_final(),
                frame(opcode::CONTINUATION, &kib),
            ],
            1009,
        ),
    ]
}

#[tokio::test]
async fn bad_frames_close_both_sides_with_the_right_code() {
    check_rows(
        bad_frames(),
        |row| row.name.to_string(),
        |row| async move { both_sides_are_closed_with(&row.frames, row.close_code).await },
    )
    .await;
}

/// RFC 6455 section 5.2: a reserved bit that no negotiated extension defines
/// fails the connection. No extension is negotiated here, so the gateway,
/// which sees every frame header, can tell without reading a payload.
#[tokio::test]
async fn reserved_bits_without_a_negotiated_extension_close_both_sides_with_1002() {
    both_sides_are_closed_with(&[frame(opcode::TEXT, "rsv2").rsv(0b010)], 1002).await;
}

/// Sends `frames` on a fresh upgraded connection and asserts that the client
/// and the upstream both receive a close frame with `code`.
async fn both_sides_are_closed_with(frames: &[FrameSpec], code: u16) {
    let recorder = upstream(Script::Echo).await;
    let gw = gateway()
        .max_frame_size(MAX_FRAME)
        .max_message_size(MAX_MESSAGE)
        .api(api("/ctx", "1.0", &recorder.url()))
        .start()
        .await;
    let mut client = RawClient::upgraded(gw.addr(), "/ctx/1.0").await;

    let bytes: Vec<u8> = frames.iter().flat_map(FrameSpec::to_bytes).collect();
    // The gateway may hang up before reading everything; the close frame is what counts.
    let _ = client.try_send(&bytes).await;

    assert_eq!(client.expect_close_code().await, Some(code), "client side");
    assert_eq!(recorder.next_close_code().await, Some(code), "upstream side");
}

#[tokio::test]
async fn frames_within_the_limits_pass() {
    let recorder = upstream(Script::Echo).await;
    let gw = gateway()
        .max_frame_size(MAX_FRAME)
        .max_message_size(MAX_MESSAGE)
        .api(api("/ctx", "1.0", &recorder.url()))
        .start()
        .await;
    let mut client = RawClient::upgraded(gw.addr(), "/ctx/1.0").await;

    // One frame of exactly max_frame_size, then a message of exactly max_message_size.
    client.send_frame(frame(opcode::BINARY, vec![b'f'; MAX_FRAME as usize])).await;
    let quarter = vec![b'q'; MAX_MESSAGE as usize / 4];
    client.send_frame(frame(opcode::BINARY, &quarter).not_final()).await;
    client.send_frame(frame(opcode::CONTINUATION, &quarter).not_final()).await;
    client.send_frame(frame(opcode::CONTINUATION, &quarter).not_final()).await;
    client.send_frame(frame(opcode::CONTINUATION, &quarter)).await;

    let mut echoed = 0;
    while echoed < MAX_FRAME as usize + MAX_MESSAGE as usize {
        let reply = client.read_frame().await;
        assert!(reply.is_data(), "only echoes come back, got {reply:?}");
        echoed += reply.payload.len();
    }
    client.send_frame(crate::harness::close_frame(1000)).await;
    assert_eq!(client.expect_close_code().await, Some(1000));
}

#[tokio::test]
async fn a_misbehaving_connection_does_not_disturb_another() {
    let echo = echo_upstream().await;
    let gw = gateway()
        .max_frame_size(MAX_FRAME)
        .max_message_size(MAX_MESSAGE)
        .api(api("/echowebsocket", "1.0", &echo.url()))
        .start()
        .await;
    let mut good = Client::connect(&gw.url("/echowebsocket/1.0")).await;
    good.echoes(Message::text("before")).await;

    for row in bad_frames() {
        let mut bad = RawClient::upgraded(gw.addr(), "/echowebsocket/1.0").await;
        let bytes: Vec<u8> = row.frames.iter().flat_map(FrameSpec::to_bytes).collect();
        let _ = bad.try_send(&bytes).await;
        let _ = bad.expect_close_code().await;
        good.echoes(Message::text(format!("after {}", row.name))).await;
    }
}

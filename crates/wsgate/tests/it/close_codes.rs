//! Close codes travel end to end, including the private range 4000-4999, and
//! an upstream that vanishes is reported to the client as 1014.

use tokio_tungstenite::tungstenite::Message;

use crate::harness::{Client, RawClient, Script, api, close_frame, frame, gateway, opcode, upstream};

#[tokio::test]
async fn a_client_close_4000_reaches_the_upstream_and_its_reply_reaches_the_client() {
    let recorder = upstream(Script::Echo).await;
    let gw = gateway().api(api("/ctx", "1.0", &recorder.url())).start().await;
    let mut client = Client::connect(&gw.url("/ctx/1.0")).await;
    client.echoes(Message::text("hello")).await;

    client.close_with(4000).await;

    assert_eq!(recorder.next_close_code().await, Some(4000), "the upstream sees the client's code");
    assert_eq!(client.expect_close_code().await, Some(4000), "the client gets the upstream's reply");
}

#[tokio::test]
async fn an_upstream_close_4999_reaches_the_client() {
    let closer = upstream(Script::CloseAfterFirstMessage(4999)).await;
    let gw = gateway().api(api("/ctx", "1.0", &closer.url())).start().await;
    let mut client = Client::connect(&gw.url("/ctx/1.0")).await;

    client.send(Message::text("please close")).await;

    assert_eq!(client.expect_close_code().await, Some(4999));
    // tungstenite sends its reply to the close on the next read.
    client.finish().await;
    assert_eq!(closer.next_close_code().await, Some(4999), "the client's reply reaches the upstream");
}

#[tokio::test]
async fn standard_close_codes_travel_both_ways() {
    for code in [1000u16, 1001, 1003, 1007, 1008, 1011, 3000, 4000, 4999] {
        let recorder = upstream(Script::Echo).await;
        let gw = gateway().api(api("/ctx", "1.0", &recorder.url())).start().await;
        let mut client = RawClient::upgraded(gw.addr(), "/ctx/1.0").await;

        client.send_frame(close_frame(code)).await;

        assert_eq!(recorder.next_close_code().await, Some(code), "upstream sees {code}");
        assert_eq!(client.expect_close_code().await, Some(code), "client gets the reply to {code}");
    }
}

#[tokio::test]
async fn an_upstream_that_dies_mid_stream_closes_the_client_with_1014() {
    let doomed = upstream(Script::DieAfterFirstMessage).await;
    let gw = gateway().api(api("/ctx", "1.0", &doomed.url())).start().await;
    // A raw client: tungstenite reports 1014 as a protocol error, not as the code.
    let mut client = RawClient::upgraded(gw.addr(), "/ctx/1.0").await;

    client.send_frame(frame(opcode::TEXT, "last words")).await;

    assert_eq!(client.expect_close_code().await, Some(1014));
}

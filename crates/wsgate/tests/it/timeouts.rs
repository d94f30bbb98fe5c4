//! Time limits: a client that is slow to send its upgrade request, and a
//! connection on which nothing happens.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::raw::upgrade_request;
use crate::harness::{Client, STEP, Script, api, echo_upstream, gateway, upstream, within};

#[tokio::test]
async fn a_slow_loris_gets_408_while_other_clients_connect() {
    let echo = echo_upstream().await;
    let gw = gateway().handshake_timeout("1s").api(api("/echowebsocket", "1.0", &echo.url())).start().await;

    // One byte every 200 ms: the whole request would take about a minute.
    let request = upgrade_request(gw.addr(), "/echowebsocket/1.0", &[]);
    let stream = within(STEP, "the slow client connects", TcpStream::connect(gw.addr()))
        .await
        .expect("the slow client connects");
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    let dribble = tokio::spawn(async move {
        for byte in request {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    // Meanwhile a normal client is served at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut client = Client::connect(&gw.url("/echowebsocket/1.0")).await;
    client.echoes(Message::text("not held up")).await;

    let mut answer = Vec::new();
    let read = within(STEP, "the gateway gives up on the slow client", async {
        use tokio::io::AsyncReadExt;
        reader.read_to_end(&mut answer).await
    })
    .await;
    let waited = started.elapsed();
    dribble.abort();

    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "a 408 or a closed connection, got {answer:?} ({read:?})"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "the gateway hangs up when the 1s handshake_timeout expires, not after {waited:?}"
    );
}

#[tokio::test]
async fn an_idle_connection_is_closed_with_1001_on_both_sides() {
    let recorder = upstream(Script::Echo).await;
    let gw = gateway().idle_timeout("1s").api(api("/ctx", "1.0", &recorder.url())).start().await;
    let mut client = Client::connect(&gw.url("/ctx/1.0")).await;
    client.echoes(Message::text("then silence")).await;
    let started = Instant::now();

    let code = client.expect_close_code_within(Duration::from_secs(3)).await;
    let waited = started.elapsed();

    assert_eq!(code, Some(1001));
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(2500),
        "closed when the 1s idle_timeout expires, not after {waited:?}"
    );
    assert_eq!(recorder.next_close_code().await, Some(1001), "the upstream is told too");
}

#[tokio::test]
async fn traffic_keeps_a_connection_from_idling_out() {
    let echo = echo_upstream().await;
    let gw = gateway().idle_timeout("1s").api(api("/echowebsocket", "1.0", &echo.url())).start().await;
    let mut client = Client::connect(&gw.url("/echowebsocket/1.0")).await;

    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        client.echoes(Message::text(format!("still here {i}"))).await;
    }
}

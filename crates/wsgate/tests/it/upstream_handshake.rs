//! The gateway's upgrade request to the upstream, and what the client sees
//! when the upstream does not upgrade.

use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::harness::raw::upgrade_request;
use crate::harness::{RawClient, STEP, Script, api, check_rows, gateway, upstream};

#[tokio::test]
async fn end_to_end_headers_reach_the_upstream_with_forwarding_headers_added() {
    let recorder = upstream(Script::EchoWithProtocol("chat")).await;
    let gw = gateway().api(api("/ctx", "1.0", &recorder.url())).start().await;

    let mut client = RawClient::connect(gw.addr()).await;
    let request = upgrade_request(
        gw.addr(),
        "/ctx/1.0",
        &[
            ("Sec-WebSocket-Protocol", "chat, superchat"),
            ("Sec-WebSocket-Extensions", "x-test-extension; level=1"),
            ("Origin", "http://app.example"),
            ("X-Custom", "kept as is"),
        ],
    );
    client.send(&request).await;
    let response = client.read_response_head().await;
    assert_eq!(response.status(), 101, "{response:?}");
    assert_eq!(response.header("Sec-WebSocket-Protocol"), Some("chat"));

    let seen = recorder.next_request().await;
    assert_eq!(seen.header("Sec-WebSocket-Protocol"), Some("chat, superchat"));
    assert_eq!(seen.header("Sec-WebSocket-Extensions"), Some("x-test-extension; level=1"));
    assert_eq!(seen.header("Origin"), Some("http://app.example"));
    assert_eq!(seen.header("X-Custom"), Some("kept as is"));
    assert_eq!(seen.header("X-Forwarded-For"), Some("127.0.0.1"), "{seen:?}");
    let proto = seen.header("X-Forwarded-Proto").unwrap_or("");
    assert!(proto == "ws" || proto == "http", "X-Forwarded-Proto names the client's scheme: {seen:?}");
    assert_eq!(
        seen.header("X-Forwarded-Host"),
        Some(gw.addr().to_string().as_str()),
        "X-Forwarded-Host is the Host the client asked for"
    );
    assert_eq!(seen.header("Host"), Some(recorder.addr().to_string().as_str()));
}

#[tokio::test]
async fn hop_by_hop_headers_do_not_reach_the_upstream() {
    let recorder = upstream(Script::Echo).await;
    let gw = gateway().api(api("/ctx", "1.0", &recorder.url())).start().await;

    let mut client = RawClient::connect(gw.addr()).await;
    let request = format!(
        "GET /ctx/1.0 HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade, X-Hop-Secret\r\nX-Hop-Secret: for the gateway only\r\n\
         Keep-Alive: timeout=5\r\nProxy-Authorization: Basic Z2F0ZXdheTpvbmx5\r\n\
         TE: trailers\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        gw.addr(),
        crate::harness::raw::KEY
    );
    client.send(request.as_bytes()).await;
    let response = client.read_response_head().await;
    assert_eq!(response.status(), 101, "{response:?}");

    let seen = recorder.next_request().await;
    for hop_by_hop in ["X-Hop-Secret", "Keep-Alive", "Proxy-Authorization", "TE"] {
        assert_eq!(seen.header(hop_by_hop), None, "{hop_by_hop} must not be forwarded: {seen:?}");
    }
    let connection = seen.header("Connection").unwrap_or("");
    assert!(
        connection.eq_ignore_ascii_case("upgrade"),
        "the upstream's Connection header is rebuilt to name only Upgrade: {seen:?}"
    );
    let upgrade = seen.header("Upgrade").unwrap_or("");
    assert!(upgrade.eq_ignore_ascii_case("websocket"), "{seen:?}");
    assert_eq!(seen.header("Sec-WebSocket-Version"), Some("13"));
}

#[tokio::test]
async fn a_non_101_upstream_answer_reaches_the_client_and_is_never_an_upgrade() {
    check_rows(
        vec![403u16, 200, 401, 404],
        |status| format!("upstream answers {status}"),
        |status| async move {
            let refuser = upstream(Script::Answer(status)).await;
            let gw = gateway().api(api("/ctx", "1.0", &refuser.url())).start().await;

            let mut client = RawClient::connect(gw.addr()).await;
            client.send(&upgrade_request(gw.addr(), "/ctx/1.0", &[])).await;
            let response = client.read_response().await;
            assert_eq!(response.status(), status, "{response:?}");
            assert!(client.is_hung_up().await, "after a non-101 answer the connection carries no frames and ends");
        },
    )
    .await;
}

#[tokio::test]
async fn an_upstream_101_with_a_wrong_accept_value_gets_502() {
    let liar = upstream(Script::WrongAccept).await;
    let gw = gateway().api(api("/ctx", "1.0", &liar.url())).start().await;

    let mut client = RawClient::connect(gw.addr()).await;
    client.send(&upgrade_request(gw.addr(), "/ctx/1.0", &[])).await;
    let response = client.read_response().await;
    assert_eq!(response.status(), 502, "{response:?}");
    assert!(!response.body.is_empty(), "the 502 says why in its body");
}

#[tokio::test]
async fn a_refused_upstream_connection_gets_502() {
    // Bind a port, then free it: nothing listens there any more.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let closed = listener.local_addr().expect("a bound address");
    drop(listener);
    let gw = gateway().api(api("/ctx", "1.0", &format!("ws://{closed}"))).start().await;

    let mut client = RawClient::connect(gw.addr()).await;
    client.send(&upgrade_request(gw.addr(), "/ctx/1.0", &[])).await;
    let response = client.read_response().await;
    assert_eq!(response.status(), 502, "{response:?}");
    assert!(!response.body.is_empty(), "the 502 says why in its body");
}

#[tokio::test]
async fn an_upstream_that_never_answers_gets_504_after_the_upstream_handshake_timeout() {
    let silent = upstream(Script::NeverAnswer).await;
    let gw = gateway().upstream_handshake_timeout("500ms").api(api("/ctx", "1.0", &silent.url())).start().await;

    let mut client = RawClient::connect(gw.addr()).await;
    let started = Instant::now();
    client.send(&upgrade_request(gw.addr(), "/ctx/1.0", &[])).await;
    let response = client.read_response().await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 504, "{response:?}");
    assert!(
        waited >= Duration::from_millis(450) && waited < STEP / 2,
        "504 comes when the 500ms timeout expires, not {waited:?}"
    );
    assert!(!response.body.is_empty(), "the 504 says why in its body");
}

/// Issue 9, finding 8: an endpoint may point at an internal HTTP service, and relaying its
/// answer would let whoever set the endpoint read that service through the gateway. The client
/// gets the status and the few headers it needs to react, never the upstream's body or other
/// headers.
#[tokio::test]
async fn a_non_101_answer_is_relayed_without_the_upstreams_body() {
    let internal = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = internal.local_addr().expect("a bound address");
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = internal.accept().await {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let body = "internal secret payload";
            let answer = format!(
                "HTTP/1.1 200 OK\r\nX-Internal-Token: s3cr3t\r\nWWW-Authenticate: Bearer realm=\"inside\"\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    let gw = gateway().api(api("/ctx", "1.0", &format!("ws://{addr}"))).start().await;
    let mut client = RawClient::connect(gw.addr()).await;
    client.send(&upgrade_request(gw.addr(), "/ctx/1.0", &[])).await;
    let response = client.read_response().await;
    assert_eq!(response.status(), 200, "{response:?}");
    let body = String::from_utf8_lossy(&response.body);
    assert!(!body.contains("secret"), "the upstream's body stays behind: {body}");
    assert!(body.contains("declined"), "the gateway says what happened: {body}");
    assert_eq!(response.header("X-Internal-Token"), None, "{response:?}");
    assert_eq!(response.header("WWW-Authenticate"), Some("Bearer realm=\"inside\""));
}

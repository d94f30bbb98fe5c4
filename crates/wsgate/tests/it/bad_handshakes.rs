//! Upgrade requests the gateway refuses, each with its status and a short
//! reason in the body, and never a 101.

use crate::harness::raw::{KEY, upgrade_request};
use crate::harness::{RawClient, api, check_rows, echo_upstream, gateway};

struct BadHandshake {
    name: &'static str,
    request: Vec<u8>,
    /// Acceptable statuses; the first is the preferred one.
    statuses: &'static [u16],
    /// A header the answer must carry.
    header: Option<(&'static str, &'static str)>,
}

/// A request to the echo route with `lines` as its start line and headers.
fn request(lines: &[&str]) -> Vec<u8> {
    let mut text = lines.join("\r\n");
    text.push_str("\r\n\r\n");
    text.into_bytes()
}

fn bad_handshakes(host: &str) -> Vec<BadHandshake> {
    let host = format!("Host: {host}");
    let key = format!("Sec-WebSocket-Key: {KEY}");
    let row = |name, request, statuses| BadHandshake { name, request, statuses, header: None };
    vec![
        row(
            "POST instead of GET",
            request(&[
                "POST /echowebsocket/1.0 HTTP/1.1",
                &host,
                "Upgrade: websocket",
                "Connection: Upgrade",
                &key,
                "Sec-WebSocket-Version: 13",
                "Content-Length: 0",
            ]),
            &[405],
        ),
        row(
            "HTTP/1.0",
            request(&[
                "GET /echowebsocket/1.0 HTTP/1.0",
                &host,
                "Upgrade: websocket",
                "Connection: Upgrade",
                &key,
                "Sec-WebSocket-Version: 13",
            ]),
            &[400, 505],
        ),
        row(
            "no Upgrade header",
            request(&[
                "GET /echowebsocket/1.0 HTTP/1.1",
                &host,
                "Connection: Upgrade",
                &key,
                "Sec-WebSocket-Version: 13",
            ]),
            &[426],
        ),
        row(
            "Upgrade names another protocol",
            request(&[
                "GET /echowebsocket/1.0 HTTP/1.1",
                &host,
                "Upgrade: h2c",
                "Connection: Upgrade",
                &key,
                "Sec-WebSocket-Version: 13",
            ]),
            &[426, 400],
        ),
        row(
            "Connection does not name upgrade",
            request(&[
                "GET /echowebsocket/1.0 HTTP/1.1",
                &host,
                "Upgrade: websocket",
                "Connection: keep-alive",
                &key,
                "Sec-WebSocket-Version: 13",
            ]),
            &[400, 426],
        ),
        row(
            "Sec-WebSocket-Key is not 16 bytes of base64",
            request(&[
                "GET /echowebsocket/1.0 HTTP/1.1",
                &host,
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Key: c2hvcnQ=",
                "Sec-WebSocket-Version: 13",
            ]),
            &[400],
        ),
        row(
            "Sec-WebSocket-Key is not base64 at all",
            request(&[
                "GET /echowebsocket/1.0 HTTP/1.1",
                &host,
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Key: !!!!not-base64!!!!!!!!",
                "Sec-WebSocket-Version: 13",
            ]),
            &[400],
        ),
        row(
            "no Sec-WebSocket-Key",
            request(&[
                "GET /echowebsocket/1.0 HTTP/1.1",
                &host,
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Version: 13",
            ]),
            &[400],
        ),
        BadHandshake {
            name: "Sec-WebSocket-Version 8",
            request: request(&[
                "GET /echowebsocket/1.0 HTTP/1.1",
                &host,
                "Upgrade: websocket",
                "Connection: Upgrade",
                &key,
                "Sec-WebSocket-Version: 8",
            ]),
            statuses: &[426],
            header: Some(("Sec-WebSocket-Version", "13")),
        },
        BadHandshake {
            name: "no Sec-WebSocket-Version",
            request: request(&[
                "GET /echowebsocket/1.0 HTTP/1.1",
                &host,
                "Upgrade: websocket",
                "Connection: Upgrade",
                &key,
            ]),
            statuses: &[426, 400],
            header: None,
        },
        row(
            "header block larger than max_header_size",
            {
                let padding = format!("X-Padding: {}", "p".repeat(20_000));
                request(&[
                    "GET /echowebsocket/1.0 HTTP/1.1",
                    &host,
                    &padding,
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    &key,
                    "Sec-WebSocket-Version: 13",
                ])
            },
            &[431],
        ),
        row(
            "many headers that add up past max_header_size",
            {
                let mut lines = vec!["GET /echowebsocket/1.0 HTTP/1.1".to_string(), host.clone()];
                lines.extend((0..400).map(|i| format!("X-Header-{i:03}: {}", "v".repeat(40))));
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                request(&lines)
            },
            &[431],
        ),
        row("garbage bytes", b"\x00\x01\x02\x03 this is not HTTP \xff\xfe\r\n\r\n".to_vec(), &[400]),
        row("a request line without a version", request(&["GET /echowebsocket/1.0", &host]), &[400]),
    ]
}

#[tokio::test]
async fn bad_upgrade_requests_get_a_clear_http_error() {
    let echo = echo_upstream().await;
    let gw = gateway().api(api("/echowebsocket", "1.0", &echo.url())).start().await;
    let addr = gw.addr();

    check_rows(
        bad_handshakes(&addr.to_string()),
        |row| row.name.to_string(),
        move |row| async move {
            let mut client = RawClient::connect(addr).await;
            // The gateway may stop reading (and even hang up) as soon as it has
            // seen enough; what counts is the answer it sends.
            let _ = client.try_send(&row.request).await;
            let response = client.try_read_response().await.expect("the gateway answers before hanging up");
            assert!(row.statuses.contains(&response.status()), "expected one of {:?}, got {response:?}", row.statuses);
            assert!(!response.body.is_empty(), "the answer says why in its body: {response:?}");
            if let Some((name, value)) = row.header {
                assert_eq!(response.header(name), Some(value), "{response:?}");
            }
        },
    )
    .await;
    drop(gw);
}

#[tokio::test]
async fn a_good_upgrade_request_after_the_bad_ones_still_succeeds() {
    let echo = echo_upstream().await;
    let gw = gateway().api(api("/echowebsocket", "1.0", &echo.url())).start().await;

    for bad in bad_handshakes(&gw.addr().to_string()) {
        let mut client = RawClient::connect(gw.addr()).await;
        let _ = client.try_send(&bad.request).await;
    }
    let mut client = RawClient::connect(gw.addr()).await;
    client.send(&upgrade_request(gw.addr(), "/echowebsocket/1.0", &[])).await;
    assert_eq!(client.read_response_head().await.status(), 101);
}

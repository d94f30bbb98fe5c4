//! Requests that try to make the upstream read something the gateway did not check: dot
//! segments in disguise, identity headers spelled with underscores, header bytes a careless
//! proxy would rewrite, a borrowed `Sec-WebSocket-Key`, an extension nobody offered.
//! (Two credentials in one request are in `security::hostile`, which has tokens to send.)

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::harness::raw::{KEY, upgrade_request};
use crate::harness::{RawClient, Script, api, check_rows, gateway, upstream};

#[tokio::test]
async fn percent_encoded_dot_segments_are_refused_like_plain_ones() {
    let recorder = upstream(Script::Echo).await;
    let gw = gateway().api(api("/ctx", "1.0", &recorder.url())).start().await;
    let addr = gw.addr();
    let targets = vec![
        "/ctx/1.0/../admin",
        "/ctx/1.0/.%2e/admin",
        "/ctx/1.0/%2e./admin",
        "/ctx/1.0/%2E%2E/admin",
        "/ctx/1.0/%2e/admin",
        "/ctx/1.0/..%2fadmin",
        "/ctx/1.0/..%2Fadmin",
        "/ctx/1.0/..%5cadmin",
        "/ctx/1.0/..;jsessionid=x/admin",
    ];
    check_rows(
        targets,
        |target| target.to_string(),
        move |target| async move {
            let mut client = RawClient::connect(addr).await;
            client.send(&upgrade_request(addr, target, &[])).await;
            assert_eq!(client.read_response().await.status(), 400);
        },
    )
    .await;
    assert!(recorder.saw_no_request().await, "none of them reached the upstream");
}

#[tokio::test]
async fn dots_and_escapes_that_are_not_dot_segments_pass_unchanged() {
    let recorder = upstream(Script::Echo).await;
    let gw = gateway().api(api("/ctx", "1.0", &recorder.url())).start().await;
    let target = "/ctx/1.0/a..b/.well-known/%2ex/%252e%252e";
    let _client = RawClient::upgraded(gw.addr(), target).await;
    assert_eq!(recorder.next_request().await.target(), "/a..b/.well-known/%2ex/%252e%252e");
}

/// Upstream frameworks decode parameter names (and some split on `;`): an `access_token` spelled
/// `%61ccess_token` is still one, and is cut like the plain one.
#[tokio::test]
async fn access_token_parameters_with_encoded_names_never_reach_the_upstream() {
    let recorder = upstream(Script::Echo).await;
    let gw = gateway().api(api("/ctx", "1.0", &recorder.url())).start().await;
    let target = "/ctx/1.0/x?a=1&%61ccess_token=secret;access%5Ftoken=other&b=2";
    let _client = RawClient::upgraded(gw.addr(), target).await;
    assert_eq!(recorder.next_request().await.target(), "/x?a=1&b=2");
}

#[tokio::test]
async fn identity_headers_spelled_with_underscores_never_reach_the_upstream() {
    let recorder = upstream(Script::Echo).await;
    let gw = gateway().api(api("/ctx", "1.0", &recorder.url())).start().await;
    let mut client = RawClient::connect(gw.addr()).await;
    let request = upgrade_request(
        gw.addr(),
        "/ctx/1.0",
        &[
            ("X_Wsgate_Plan", "Unlimited"),
            ("x_wsgate_application", "admin"),
            ("X-Wsgate-Subscriber", "admin"),
            ("x_forwarded_for", "6.6.6.6"),
            ("X_Forwarded_Host", "evil.example"),
            ("Sec_WebSocket_Key", "c21vdWdnbGVkIGtleSEhIQ=="),
            ("X_Custom_Header", "kept"),
        ],
    );
    client.send(&request).await;
    assert_eq!(client.read_response_head().await.status(), 101);

    let seen = recorder.next_request().await;
    let normalised = |name: &str| name.replace('_', "-").to_ascii_lowercase();
    for (name, value) in &seen.headers {
        let name = normalised(name);
        assert!(!name.starts_with("x-wsgate-"), "{name}: {value} reached the upstream: {seen:?}");
    }
    let values = |wanted: &str| -> Vec<&str> {
        seen.headers.iter().filter(|(n, _)| normalised(n) == wanted).map(|(_, v)| v.as_str()).collect()
    };
    assert_eq!(values("x-forwarded-for"), ["127.0.0.1"], "{seen:?}");
    assert_eq!(values("x-forwarded-host"), [gw.addr().to_string()], "{seen:?}");
    assert_eq!(values("sec-websocket-key").len(), 1, "{seen:?}");
    assert_eq!(seen.header("X_Custom_Header"), Some("kept"), "other underscores are the upstream's business");
}

#[tokio::test]
async fn header_bytes_that_are_not_utf8_reach_the_upstream_unchanged() {
    let recorder = upstream(Script::Echo).await;
    let gw = gateway().api(api("/ctx", "1.0", &recorder.url())).start().await;
    let mut client = RawClient::connect(gw.addr()).await;
    let mut request = upgrade_request(gw.addr(), "/ctx/1.0", &[]);
    // Latin-1 "café" and a lone 0xFF: valid obs-text in an HTTP/1.1 field value.
    let line: &[u8] = b"X-Name: caf\xe9 \xff\r\n";
    let end = request.len() - 2;
    request.splice(end..end, line.iter().copied());
    client.send(&request).await;
    assert_eq!(client.read_response_head().await.status(), 101);

    let seen = recorder.next_request().await;
    assert!(
        seen.raw.windows(line.len()).any(|w| w == line),
        "the value arrives byte for byte: {:?}",
        String::from_utf8_lossy(&seen.raw)
    );
}

#[tokio::test]
async fn the_upstream_gets_a_key_of_the_gateway_and_the_client_the_accept_of_its_own() {
    let recorder = upstream(Script::Echo).await;
    let gw = gateway().api(api("/ctx", "1.0", &recorder.url())).start().await;
    // `upgraded` checks that the 101 carries the accept value of the client's key.
    let _first = RawClient::upgraded(gw.addr(), "/ctx/1.0").await;
    let _second = RawClient::upgraded(gw.addr(), "/ctx/1.0").await;

    let keys = [recorder.next_request().await, recorder.next_request().await]
        .map(|head| head.header("Sec-WebSocket-Key").unwrap_or_default().to_string());
    for key in &keys {
        assert_ne!(key, KEY, "the client's key is the client's");
        assert_eq!(BASE64.decode(key).map(|k| k.len()).ok(), Some(16), "a valid key: {key}");
    }
    assert_ne!(keys[0], keys[1], "a fresh key per connection");
}

#[tokio::test]
async fn an_upstream_that_answers_the_clients_key_instead_of_the_gateways_gets_502() {
    let replayer = upstream(Script::AcceptOfClientKey).await;
    let gw = gateway().api(api("/ctx", "1.0", &replayer.url())).start().await;
    let mut client = RawClient::connect(gw.addr()).await;
    client.send(&upgrade_request(gw.addr(), "/ctx/1.0", &[])).await;
    let response = client.read_response().await;
    assert_eq!(response.status(), 502, "{response:?}");
}

#[tokio::test]
async fn an_extension_the_client_did_not_offer_gets_502() {
    let pushy = upstream(Script::EchoWithExtension("permessage-deflate")).await;
    let gw = gateway().api(api("/ctx", "1.0", &pushy.url())).start().await;
    let mut client = RawClient::connect(gw.addr()).await;
    client
        .send(&upgrade_request(gw.addr(), "/ctx/1.0", &[("Sec-WebSocket-Extensions", "x-webkit-deflate-frame")]))
        .await;
    let response = client.read_response().await;
    assert_eq!(response.status(), 502, "{response:?}");
    assert!(String::from_utf8_lossy(&response.body).contains("extension"), "{response:?}");

    // Offered, the same answer is an upgrade, with the extension relayed to the client.
    let mut client = RawClient::connect(gw.addr()).await;
    let offer = ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits");
    client.send(&upgrade_request(gw.addr(), "/ctx/1.0", &[offer])).await;
    let response = client.read_response_head().await;
    assert_eq!(response.status(), 101, "{response:?}");
    assert_eq!(response.header("Sec-WebSocket-Extensions"), Some("permessage-deflate"));
}

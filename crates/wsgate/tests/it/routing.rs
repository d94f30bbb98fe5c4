//! Which API a request path reaches, and which path the upstream then sees.

use tokio_tungstenite::tungstenite::Message;

use crate::harness::raw::upgrade_request;
use crate::harness::{Client, RawClient, Script, api, check_rows, echo_upstream, gateway, upstream};

#[tokio::test]
async fn version_1_0_and_1_0_0_name_the_same_api() {
    let echo = echo_upstream().await;
    let gw = gateway().api(api("/echowebsocket", "1.0", &echo.url())).start().await;

    for path in ["/echowebsocket/1.0", "/echowebsocket/1.0.0"] {
        let mut client = Client::connect(&gw.url(path)).await;
        client.echoes(Message::text(format!("via {path}"))).await;
    }
}

#[tokio::test]
async fn the_default_version_serves_paths_without_a_version() {
    let echo = echo_upstream().await;
    let gw = gateway().api(api("/echowebsocket", "1.0", &echo.url()).default_version()).start().await;

    let mut client = Client::connect(&gw.url("/echowebsocket")).await;
    client.echoes(Message::text("no version named")).await;
}

#[tokio::test]
async fn the_longest_context_prefix_wins() {
    let short = upstream(Script::Echo).await;
    let long = upstream(Script::Echo).await;
    let gw = gateway().api(api("/a", "1.0", &short.url())).api(api("/a/b", "1.0", &long.url())).start().await;

    let mut client = Client::connect(&gw.url("/a/b/1.0/x")).await;
    client.echoes(Message::text("to /a/b")).await;
    assert_eq!(long.next_request().await.target(), "/x");
    assert!(short.saw_no_request().await, "/a/b/1.0/x must not reach /a");

    let mut client = Client::connect(&gw.url("/a/1.0/b")).await;
    client.echoes(Message::text("to /a")).await;
    assert_eq!(short.next_request().await.target(), "/b");
    assert!(long.saw_no_request().await, "/a/1.0/b must not reach /a/b");
}

#[tokio::test]
async fn the_rest_of_the_path_and_the_query_are_appended_to_the_endpoint_path() {
    struct Row {
        endpoint_path: &'static str,
        request: &'static str,
        upstream_target: &'static str,
    }
    let rows = vec![
        Row { endpoint_path: "/base", request: "/ctx/1.0/x/y?q=1", upstream_target: "/base/x/y?q=1" },
        Row { endpoint_path: "/base", request: "/ctx/1.0.0/x?q=1&r=2", upstream_target: "/base/x?q=1&r=2" },
        Row { endpoint_path: "/base/", request: "/ctx/1.0/x", upstream_target: "/base/x" },
        Row { endpoint_path: "", request: "/ctx/1.0/x/y?q=1", upstream_target: "/x/y?q=1" },
        Row { endpoint_path: "", request: "/ctx/1.0?q=1", upstream_target: "/?q=1" },
        Row { endpoint_path: "", request: "/ctx/1.0", upstream_target: "/" },
    ];
    check_rows(
        rows,
        |row| format!("endpoint path {:?} + {}", row.endpoint_path, row.request),
        |row| async move {
            let recorder = upstream(Script::Echo).await;
            let endpoint = format!("{}{}", recorder.url(), row.endpoint_path);
            let gw = gateway().api(api("/ctx", "1.0", &endpoint)).start().await;

            let _client = Client::connect(&gw.url(row.request)).await;
            let request = recorder.next_request().await;
            assert_eq!(request.target(), row.upstream_target, "{}", request.start_line);
        },
    )
    .await;
}

#[tokio::test]
async fn an_unknown_path_gets_404() {
    let echo = echo_upstream().await;
    let gw = gateway().api(api("/echowebsocket", "1.0", &echo.url())).start().await;

    for path in ["/nope/1.0", "/echowebsocket/2.0", "/echowebsocket", "/", "/echowebsocketx/1.0"] {
        let mut client = RawClient::connect(gw.addr()).await;
        client.send(&upgrade_request(gw.addr(), path, &[])).await;
        let response = client.read_response().await;
        assert_eq!(response.status(), 404, "{path}: {response:?}");
        assert!(!response.body.is_empty(), "{path}: the 404 says why in its body");
    }
}

/// What wscat shows as `Unexpected server response: 404` is explained in the body: a context
/// that exists with a version it lacks lists the versions it has.
#[tokio::test]
async fn a_known_context_with_an_unknown_version_lists_its_versions() {
    let echo = echo_upstream().await;
    let gw = gateway()
        .api(api("/echowebsocket", "1.0", &echo.url()))
        .api(api("/echowebsocket", "2.1", &echo.url()))
        .api(api("/other", "1", &echo.url()))
        .start()
        .await;
    let cases = [
        ("/echowebsocket/3.0", "/echowebsocket has no version 3.0; its versions: 1.0, 2.1 (e.g. /echowebsocket/1.0)"),
        ("/echowebsocket", "/echowebsocket needs a version in the path; its versions: 1.0, 2.1"),
        ("/echowebsocket/1.0x/room?access_token=secret", "/echowebsocket has no version 1.0x; its versions: 1.0, 2.1"),
        ("/nope/1.0", "no API at this path"),
    ];
    for (path, says) in cases {
        let mut client = RawClient::connect(gw.addr()).await;
        client.send(&upgrade_request(gw.addr(), path, &[])).await;
        let response = client.read_response().await;
        assert_eq!(response.status(), 404, "{path}: {response:?}");
        let body = String::from_utf8_lossy(&response.body);
        assert!(body.contains(says), "{path}: the 404 says {says:?}, says {body:?}");
        assert!(!body.contains("secret"), "{path}: the query never comes back");
    }
}

#[tokio::test]
async fn a_plain_http_get_to_a_websocket_route_gets_426() {
    let echo = echo_upstream().await;
    let gw = gateway().api(api("/echowebsocket", "1.0", &echo.url())).start().await;

    let mut client = RawClient::connect(gw.addr()).await;
    let request = format!("GET /echowebsocket/1.0 HTTP/1.1\r\nHost: {}\r\n\r\n", gw.addr());
    client.send(request.as_bytes()).await;
    let response = client.read_response().await;
    assert_eq!(response.status(), 426, "{response:?}");
    assert!(!response.body.is_empty(), "the 426 says why in its body");
    let upgrade = response.header("Upgrade").unwrap_or("");
    assert!(upgrade.eq_ignore_ascii_case("websocket"), "426 names the protocol to upgrade to: {response:?}");
}

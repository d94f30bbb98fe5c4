//! What the gateway tells operators: `/metrics` (parsed by prometheus_client's own parser,
//! `fixtures/parse_metrics.py`) counts exactly a known traffic pattern, including a connection
//! still open; `/readyz` turns 503 as soon as SIGTERM starts the drain, and stays 200 (saying
//! so) when PostgreSQL goes away after the first snapshot; the access log has no
//! escape codes in a file, parses as JSON when asked, and never carries a token; session
//! records add up to the traffic, with interim ones while a connection lives.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use wsgate_core::config::Config;
use wsgate_core::session::{ClosedBy, SessionRecord, SessionSink};
use wsgate_gateway::Gateway;

use crate::harness::process::{TempDir, http_get, serve_node, terminate, tool};
use crate::harness::services::pg_server;
use crate::harness::tcp_proxy::TcpProxy;
use crate::harness::{Client, STEP, Script, api, echo_upstream, gateway, raw, upstream, within};

/// Every sample of a scrape, as prometheus_client parsed it.
struct Scrape(Vec<(String, serde_json::Map<String, serde_json::Value>, f64)>);

impl Scrape {
    async fn of(addr: &str) -> Scrape {
        let (status, text) = http_get(addr, "/metrics").await;
        assert_eq!(status, 200, "/metrics answers: {text}");
        let python = tool("WSGATE_PYTHON", "python3");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/parse_metrics.py");
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python starts");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).await.expect("the scrape is piped");
        drop(stdin);
        let output = within(STEP * 2, "the parser finishes", child.wait_with_output()).await.expect("output");
        assert!(
            output.status.success(),
            "prometheus_client parses the scrape: {}\n{text}",
            String::from_utf8_lossy(&output.stderr)
        );
        let samples: Vec<(String, serde_json::Map<String, serde_json::Value>, f64)> =
            serde_json::from_slice(&output.stdout).expect("the parser's JSON");
        assert!(!text.contains("SECRET"), "no token in the metrics:\n{text}");
        Scrape(samples)
    }

    /// The sum of the samples named `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).and_then(|x| x.as_str()) == Some(*v)))
            .map(|(_, _, v)| v)
            .sum()
    }
}

fn text(i: usize) -> Message {
    Message::text(format!("message-{i:02}"))
}

#[tokio::test]
async fn metrics_count_a_known_traffic_pattern_and_a_live_connection() {
    let echo = echo_upstream().await;
    let closer = upstream(Script::CloseAfterFirstMessage(4000)).await;
    // An endpoint where nothing listens, whose breaker opens at the first failure.
    let nothing = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr");
    let down = api("/down", "1.0", &format!("ws://{nothing}"))
        .with_toml("endpoint_settings = { breaker = { consecutive_failures = 1, cool_down = \"1m\" } }");
    let dir = TempDir::new("metrics");
    let toml =
        gateway().api(api("/echo", "1.0", &echo.url())).api(api("/closer", "1.0", &closer.url())).api(down).toml()
            + "\n[observability]\nmetrics_listen = \"127.0.0.1:0\"\n";
    let config = dir.write("wsgate.toml", &toml);
    let log = dir.path().join("stderr.log");
    let node = serve_node(&config, dir.path(), &log, &[]).await;
    let url = |path: &str| format!("ws://{}{path}", node.ws);

    // 3 connections × 4 messages each way, closed by the client; with credentials that must
    // never reach the log or the metrics.
    for _ in 0..3 {
        let headers = [("Authorization", "Bearer SECRET-HEADER-TOKEN")];
        let mut client = Client::connect_with(&url("/echo/1.0?access_token=SECRET-QUERY-TOKEN"), &headers).await;
        for i in 0..4 {
            client.echoes(text(i)).await;
        }
        client.close_with(1000).await;
        client.finish().await;
    }
    // 2 connections closed by the upstream after one message.
    for _ in 0..2 {
        let mut client = Client::connect(&url("/closer/1.0")).await;
        client.send(text(0)).await;
        assert_eq!(client.expect_close_code().await, Some(4000));
        client.finish().await;
    }
    // 2 refusals.
    for _ in 0..2 {
        assert!(Client::try_connect_with(&url("/nowhere/1.0"), &[]).await.is_err(), "no API there");
    }
    // 2 more: the endpoint that is down refuses (502), then its breaker answers (503).
    for _ in 0..2 {
        assert!(Client::try_connect_with(&url("/down/1.0"), &[]).await.is_err(), "nothing listens there");
    }
    // One connection stays open.
    let mut open = Client::connect(&url("/echo/1.0")).await;
    open.echoes(text(0)).await;
    open.echoes(text(1)).await;
    // Counts of live connections are published at the relay's one-second tick.
    tokio::time::sleep(Duration::from_millis(1600)).await;

    let first = Scrape::of(&node.metrics).await;
    let (echo_api, closer_api) = (("api", "TestApi0"), ("api", "TestApi1"));
    for (labels, expected) in [
        (vec![echo_api, ("status", "101")], 4.0),
        (vec![closer_api, ("status", "101")], 2.0),
        (vec![("api", "-"), ("status", "404")], 2.0),
    ] {
        assert_eq!(first.value("wsgate_handshakes_total", &labels), expected, "handshakes {labels:?}");
    }
    assert_eq!(first.value("wsgate_refusals_total", &[("reason", "no_route")]), 2.0);
    assert_eq!(first.value("wsgate_connections_open", &[echo_api]), 1.0);
    assert_eq!(first.value("wsgate_connections_open", &[closer_api]), 0.0);
    assert_eq!(first.value("wsgate_messages_total", &[echo_api, ("direction", "in")]), 14.0);
    assert_eq!(first.value("wsgate_messages_total", &[echo_api, ("direction", "out")]), 14.0);
    assert_eq!(first.value("wsgate_messages_total", &[closer_api, ("direction", "in")]), 2.0);
    assert_eq!(first.value("wsgate_messages_total", &[closer_api, ("direction", "out")]), 0.0);
    assert_eq!(first.value("wsgate_closes_total", &[echo_api, ("closed_by", "client"), ("end", "closed")]), 3.0);
    assert_eq!(first.value("wsgate_closes_total", &[closer_api, ("closed_by", "upstream")]), 2.0);
    assert_eq!(first.value("wsgate_close_codes_total", &[("sender", "upstream"), ("code", "4000")]), 2.0);
    assert_eq!(first.value("wsgate_close_codes_total", &[("sender", "client"), ("code", "1000")]), 3.0);
    assert_eq!(first.value("wsgate_upgrade_duration_seconds_count", &[]), 6.0);
    assert_eq!(first.value("wsgate_build_info", &[]), 1.0);
    assert_eq!(first.value("wsgate_store_up", &[]), 1.0);
    let (echo_url, down_url) = (echo.url(), format!("ws://{nothing}"));
    let echo_endpoint = [echo_api, ("endpoint", echo_url.as_str())];
    assert_eq!(first.value("wsgate_endpoint_available", &echo_endpoint), 1.0);
    assert_eq!(first.value("wsgate_endpoint_connections", &echo_endpoint), 1.0, "the open connection");
    let down_endpoint = [("api", "TestApi2"), ("endpoint", down_url.as_str())];
    assert_eq!(first.value("wsgate_endpoint_available", &down_endpoint), 0.0, "its breaker is open");
    assert_eq!(first.value("wsgate_endpoint_failures_total", &down_endpoint), 1.0, "one attempt reached it");
    assert_eq!(first.value("wsgate_endpoint_suspensions_total", &down_endpoint), 1.0);
    assert_eq!(first.value("wsgate_refusals_total", &[("reason", "upstream_unavailable")]), 1.0);

    // The open connection's next messages show in the next scrape, while it lives.
    for i in 2..5 {
        open.echoes(text(i)).await;
    }
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let second = Scrape::of(&node.metrics).await;
    assert_eq!(second.value("wsgate_messages_total", &[echo_api, ("direction", "in")]), 17.0);
    assert_eq!(second.value("wsgate_messages_total", &[echo_api, ("direction", "out")]), 17.0);
    // Three 10-byte text frames: masked from the client (16 bytes each), plain back (12).
    let bytes = |s: &Scrape, d| s.value("wsgate_bytes_total", &[echo_api, ("direction", d)]);
    assert_eq!(bytes(&second, "in") - bytes(&first, "in"), 48.0);
    assert_eq!(bytes(&second, "out") - bytes(&first, "out"), 36.0);
    open.close_with(1000).await;
    open.finish().await;

    // The access log: one line per connection with its id, plain text in a file, no token.
    let mut child = node.child;
    terminate(&child);
    within(STEP * 2, "wsgate exits", child.wait()).await.expect("exit status");
    let log = std::fs::read_to_string(&log).expect("the log is readable");
    assert!(!log.contains('\u{1b}'), "no escape codes in a log file:\n{log}");
    assert!(!log.contains("SECRET"), "no token in the log:\n{log}");
    let access: Vec<&str> = log.lines().filter(|l| l.contains("wsgate::access")).collect();
    assert_eq!(access.len(), 3 + 2 + 2 + 2 + 1, "one line per connection:\n{log}");
    assert!(access.iter().all(|l| l.contains(" conn=")), "every line carries its connection id:\n{log}");
    assert!(!log.contains("=-1"), "no -1 sentinels:\n{log}");
}

#[tokio::test]
async fn readyz_turns_503_as_soon_as_sigterm_starts_the_drain_and_json_logs_parse() {
    let silent = upstream(Script::NeverAnswer).await;
    let dir = TempDir::new("readyz");
    let toml = gateway().shutdown_timeout("4s").api(api("/silent", "1.0", &silent.url())).toml()
        + "\n[observability]\nmetrics_listen = \"127.0.0.1:0\"\nlog_format = \"json\"\n";
    let config = dir.write("wsgate.toml", &toml);
    let log = dir.path().join("stderr.log");
    let node = serve_node(&config, dir.path(), &log, &[]).await;
    assert_eq!(http_get(&node.metrics, "/healthz").await.0, 200);
    let (status, body) = http_get(&node.metrics, "/readyz").await;
    assert_eq!(status, 200, "ready once started: {body}");

    // A handshake in progress keeps the drain going for a while.
    let mut pending = raw::RawClient::connect(node.ws.parse().expect("addr")).await;
    pending.send(&raw::upgrade_request(node.ws.parse().expect("addr"), "/silent/1.0", &[])).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    terminate(&node.child);
    let (status, body) = within(STEP, "readyz says 503", async {
        loop {
            let (status, body) = http_get(&node.metrics, "/readyz").await;
            if status != 200 {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("draining"), "{body}");
    assert_eq!(http_get(&node.metrics, "/healthz").await.0, 200, "still alive while draining");
    drop(pending);
    let mut child = node.child;
    within(STEP * 2, "wsgate exits", child.wait()).await.expect("exit status");
    let log = std::fs::read_to_string(&log).expect("the log is readable");
    for line in log.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|err| panic!("a JSON line ({err}): {line}"));
        assert!(event["fields"].is_object(), "{line}");
    }
}

#[tokio::test]
async fn readyz_stays_200_and_says_so_when_the_store_goes_away_after_the_first_snapshot() {
    let echo = echo_upstream().await;
    let schema = crate::harness::services::PgSchema::create().await;
    let mut proxy = TcpProxy::start(pg_server()).await;
    let store_url = schema.url_via(proxy.addr);
    let dir = TempDir::new("readyz-store");
    let toml = gateway().api(api("/echo", "1.0", &echo.url())).toml()
        + &format!("\n[store]\nurl = {store_url:?}\n[observability]\nmetrics_listen = \"127.0.0.1:0\"\n");
    let config = dir.write("wsgate.toml", &toml);
    let node = serve_node(&config, dir.path(), &dir.path().join("stderr.log"), &[]).await;
    assert_eq!(http_get(&node.metrics, "/readyz").await, (200, "ready\n".to_string()));

    proxy.cut().await;
    // The store is checked every 5 s.
    let (status, body) = within(STEP * 3, "readyz reports the store unreachable", async {
        loop {
            let (status, body) = http_get(&node.metrics, "/readyz").await;
            if body.contains("store unreachable") || status != 200 {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!((status, body.as_str()), (200, "ready (store unreachable: serving the last snapshot)\n"));
    // And it is true: a new client is admitted from the last snapshot.
    let mut client = Client::connect(&format!("ws://{}/echo/1.0", node.ws)).await;
    client.echoes(Message::text("no store needed")).await;
    client.close_with(1000).await;
    client.finish().await;
    let mut child = node.child;
    terminate(&child);
    within(STEP * 2, "wsgate exits", child.wait()).await.expect("exit status");
}

/// Collects records, as the analytics writer would queue them.
#[derive(Debug, Default)]
struct Collected(Mutex<Vec<SessionRecord>>);

impl SessionSink for Collected {
    fn record(&self, record: SessionRecord) {
        self.0.lock().unwrap().push(record);
    }
}

#[tokio::test]
async fn session_records_add_up_to_the_traffic_with_interim_ones_while_it_lives() {
    let echo = echo_upstream().await;
    let toml = gateway().api(api("/echo", "1.0", &echo.url())).toml() + "\n[analytics]\ninterim_interval = \"1s\"\n";
    let config = Config::from_toml(&toml).expect("config");
    let mut gateway = Gateway::bind(&config).await.expect("bind");
    let sink = Arc::new(Collected::default());
    gateway.set_sessions(sink.clone());
    let addr = gateway.ws_addr().expect("ws");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(gateway.run(shutdown.clone()));

    assert!(Client::try_connect_with(&format!("ws://{addr}/nowhere/1.0"), &[]).await.is_err());
    let mut client = Client::connect(&format!("ws://{addr}/echo/1.0")).await;
    client.echoes(text(0)).await;
    client.echoes(text(1)).await;
    // Counts publish at the relay's 1 s tick; interim records follow every second.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    client.echoes(text(2)).await;
    client.close_with(1000).await;
    client.finish().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    shutdown.cancel();
    let _ = within(STEP, "the gateway stops", running).await;

    let records = sink.0.lock().unwrap().clone();
    let refusal: Vec<_> = records.iter().filter(|r| r.status == 404).collect();
    assert_eq!(refusal.len(), 1, "{records:#?}");
    assert_eq!(refusal[0].refusal.as_deref(), Some("no_route"));
    assert!(refusal[0].last);
    let session: Vec<_> = records.iter().filter(|r| r.status == 101).collect();
    assert!(session.iter().all(|r| r.connection == session[0].connection && r.api_name == "TestApi0"));
    let interim: Vec<_> = session.iter().filter(|r| !r.last).collect();
    assert!(!interim.is_empty(), "a connection older than the interval has interim records: {records:#?}");
    assert!(interim.iter().any(|r| r.messages_in == 2), "the first two messages show while it lives: {records:#?}");
    let last: Vec<_> = session.iter().filter(|r| r.last).collect();
    assert_eq!(last.len(), 1, "{records:#?}");
    assert_eq!(last[0].closed_by, Some(ClosedBy::Client));
    assert_eq!(last[0].client_close, Some(1000));
    assert_eq!(last[0].client_ip.as_deref(), Some("127.0.0.0"), "truncated by default");
    assert_eq!(session.iter().map(|r| r.messages_in).sum::<u64>(), 3, "{records:#?}");
    assert_eq!(session.iter().map(|r| r.messages_out).sum::<u64>(), 3, "{records:#?}");
    assert!(session.iter().map(|r| r.bytes_in).sum::<u64>() >= 3 * 16);
}

#[tokio::test]
async fn a_limit_that_closes_counts_as_a_throttle_event_of_its_limit() {
    let echo = echo_upstream().await;
    let limits = "limits = { messages = \"3/s\", count = \"in\", on_exceed = \"close\" }";
    let toml = gateway().api(api("/tight", "1.0", &echo.url()).with_toml(limits)).toml();
    let mut gateway = Gateway::bind(&Config::from_toml(&toml).expect("config")).await.expect("bind");
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    gateway.set_metrics(Arc::new(recorder), false);
    let addr = gateway.ws_addr().expect("ws");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(gateway.run(shutdown.clone()));

    let mut client = Client::connect(&format!("ws://{addr}/tight/1.0")).await;
    for i in 0..10 {
        client.send(text(i)).await;
    }
    assert_eq!(client.expect_close_code().await, Some(1008), "the limit closes the connection");
    client.finish().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = metrics.render();
    shutdown.cancel();
    let _ = within(STEP, "the gateway stops", running).await;
    let closes: Vec<&str> = text.lines().filter(|l| l.starts_with("wsgate_throttle_events_total")).collect();
    assert!(
        closes
            .iter()
            .any(|l| l.contains("limit=\"api_messages\"") && l.contains("action=\"close\"") && l.ends_with(" 1")),
        "{text}"
    );
    assert!(text.contains("end=\"limit_exceeded\""), "{text}");
}

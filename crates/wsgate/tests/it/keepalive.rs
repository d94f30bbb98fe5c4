//! After the 101: a connection's maximum lifetime, keepalive pings that find dead peers on
//! quiet connections (their pongs stay with the gateway), and the relay settings an API
//! overrides (`endpoint_settings`). Peers speak raw frames, so the tests see every byte the
//! gateway sends them, pings included.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::harness::raw::{Frame, read_frame, read_head, upgrade_request};
use crate::harness::scripted::Event;
use crate::harness::{Client, RawClient, STEP, Script, api, close_frame, frame, gateway, opcode, upstream, within};

/// What the payload of every keepalive ping of the gateway's starts with.
const GATEWAY_PING: &[u8] = b"wsgate-keepalive-";
/// The payload of the client's own ping: made to look like the gateway's.
const OWN_PING: &str = "wsgate-keepalive-client's";

#[tokio::test]
async fn the_maximum_lifetime_closes_both_sides_with_1001_and_an_api_can_shorten_it() {
    let (long, short) = (upstream(Script::Echo).await, upstream(Script::Echo).await);
    let gw = gateway()
        .max_lifetime("1500ms")
        .api(api("/long", "1.0", &long.url()))
        .api(api("/short", "1.0", &short.url()).with_toml("endpoint_settings = { max_lifetime = \"300ms\" }"))
        .start()
        .await;
    let mut long_client = RawClient::upgraded(gw.addr(), "/long/1.0").await;
    let mut short_client = RawClient::upgraded(gw.addr(), "/short/1.0").await;
    let started = Instant::now();

    // Traffic does not extend a lifetime.
    long_client.send_frame(frame(opcode::TEXT, "still here")).await;
    assert_eq!(long_client.read_frame().await.payload, b"still here");

    assert_eq!(short_client.expect_close_code().await, Some(1001));
    let short_lived = started.elapsed();
    assert_eq!(short.next_close_code().await, Some(1001), "the upstream gets a (masked) 1001 too");
    assert_eq!(long_client.expect_close_code().await, Some(1001));
    let long_lived = started.elapsed();
    assert_eq!(long.next_close_code().await, Some(1001));
    assert!(
        short_lived >= Duration::from_millis(250) && short_lived < Duration::from_millis(1200),
        "the API's 300ms lifetime, not the gateway's 1500ms: {short_lived:?}"
    );
    assert!(
        long_lived >= Duration::from_millis(1400) && long_lived < Duration::from_secs(3),
        "the gateway's 1500ms lifetime: {long_lived:?}"
    );
}

#[tokio::test]
async fn an_upstream_that_stops_answering_pings_is_closed_and_the_client_gets_1001() {
    let (endpoint, silent) = raw_upstream().await;
    let gw = gateway().ping_interval("300ms").ping_timeout("300ms").api(api("/ctx", "1.0", &endpoint)).start().await;
    let client = Peer::client(gw.addr(), "/ctx/1.0").await;
    let started = Instant::now();
    // The upstream upgrades, then never reads nor writes again.
    let (mut upstream_reader, _upstream_writer) = within(STEP, "the upstream upgrades", silent).await.expect("upgrade");

    let client_saw = client.answer_pings_until_close().await;
    let waited = started.elapsed();

    let close = client_saw.last().expect("a close");
    assert_eq!(close.close_code(), Some(1001));
    assert_eq!(&close.payload[2..], b"upstream did not answer keepalive ping");
    assert!(
        waited >= Duration::from_millis(550) && waited < Duration::from_millis(2500),
        "closed after ping_interval + ping_timeout (600ms, checked in quarter steps), not {waited:?}"
    );
    // What the silent upstream was sent, read now: a ping, a close it never answered, and the
    // end of the connection once the client had answered its close.
    let ping = within(STEP, "the upstream's ping", read_frame(&mut upstream_reader)).await.expect("a ping");
    assert!(ping.opcode == opcode::PING && ping.masked && ping.payload.starts_with(GATEWAY_PING), "{ping:?}");
    let close = within(STEP, "the upstream's close", read_frame(&mut upstream_reader)).await.expect("a close");
    assert_eq!((close.close_code(), close.masked), (Some(1001), true));
    let end = within(STEP, "the upstream's connection ends", read_frame(&mut upstream_reader)).await;
    assert!(end.is_err(), "nothing after the close, then the end of TCP: {end:?}");
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed_and_the_upstream_gets_1001() {
    let recorder = upstream(Script::Echo).await;
    let gw =
        gateway().ping_interval("300ms").ping_timeout("300ms").api(api("/ctx", "1.0", &recorder.url())).start().await;
    // The client upgrades, then never reads nor writes.
    let mut client = RawClient::upgraded(gw.addr(), "/ctx/1.0").await;
    let started = Instant::now();

    // The scripted upstream answers the gateway's pings; then it gets a close.
    // Bounded as a whole: pings keep coming while the client is not found dead.
    let mut upstream_saw = Vec::new();
    let close = within(STEP, "the upstream gets a close", async {
        loop {
            match recorder.next_event().await {
                Event::Frame(frame) if frame.opcode == opcode::CLOSE => return frame,
                Event::Frame(frame) => upstream_saw.push(frame),
                Event::Request(_) => {}
                other => panic!("the upstream's connection ended before a close: {other:?}"),
            }
        }
    })
    .await;
    let waited = started.elapsed();

    assert_eq!(close.close_code(), Some(1001));
    assert_eq!(&close.payload[2..], b"client did not answer keepalive ping");
    assert!(waited >= Duration::from_millis(550) && waited < Duration::from_millis(2500), "{waited:?}");
    assert!(
        upstream_saw.iter().all(|f| f.opcode == opcode::PING && f.payload.starts_with(GATEWAY_PING)),
        "the quiet upstream got only the gateway's pings: {upstream_saw:?}"
    );
    let ping = client.read_frame().await;
    assert!(ping.opcode == opcode::PING && !ping.masked && ping.payload.starts_with(GATEWAY_PING), "{ping:?}");
    assert_eq!(client.expect_close_code().await, Some(1001), "the silent client is sent a close too");
    assert!(client.is_hung_up().await, "and its TCP connection ends without waiting for its answer");
}

#[tokio::test]
async fn peers_that_answer_stay_connected_and_only_their_own_pings_and_pongs_cross() {
    let (endpoint, upgraded) = raw_upstream().await;
    let gw = gateway().ping_interval("200ms").ping_timeout("500ms").api(api("/ctx", "1.0", &endpoint)).start().await;
    let client = Peer::client(gw.addr(), "/ctx/1.0").await;
    let (reader, writer) = within(STEP, "the upstream upgrades", upgraded).await.expect("upgrade");
    let upstream = Peer { reader, writer: Arc::new(Mutex::new(writer)), masks: false };
    let client_writer = client.writer.clone();
    let upstream_writer = upstream.writer.clone();
    let client_task = tokio::spawn(client.answer_pings_until_close());
    let upstream_task = tokio::spawn(upstream.answer_pings_until_close());

    // Several quiet intervals, then the client's own ping (its payload looks like the
    // gateway's): the upstream gets it and its pong comes back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let own = frame(opcode::PING, OWN_PING);
    client_writer.lock().await.write_all(&own.to_bytes()).await.expect("the client's ping");
    tokio::time::sleep(Duration::from_millis(300)).await;
    client_writer.lock().await.write_all(&close_frame(1000).to_bytes()).await.expect("the client's close");

    let client_saw = within(STEP, "the client's peer ends", client_task).await.expect("client task");
    let upstream_saw = within(STEP, "the upstream's peer ends", upstream_task).await.expect("upstream task");
    drop(upstream_writer);

    // The connection lived through every interval and closed normally.
    assert_eq!(client_saw.last().and_then(Frame::close_code), Some(1000), "{client_saw:?}");
    assert_eq!(upstream_saw.last().and_then(Frame::close_code), Some(1000), "{upstream_saw:?}");
    for (side, saw) in [("client", &client_saw), ("upstream", &upstream_saw)] {
        let pings = saw.iter().filter(|f| f.opcode == opcode::PING && f.payload.starts_with(GATEWAY_PING));
        let pings: Vec<&Frame> = pings.filter(|f| f.payload != OWN_PING.as_bytes()).collect();
        assert!(pings.len() >= 3, "the {side} was pinged every quiet interval: {saw:?}");
    }
    let pongs: Vec<&Frame> = client_saw.iter().filter(|f| f.opcode == opcode::PONG).collect();
    assert_eq!(pongs.len(), 1, "the client got the answer to its own ping only: {client_saw:?}");
    assert_eq!(pongs[0].payload, OWN_PING.as_bytes());
    let upstream_pongs = upstream_saw.iter().filter(|f| f.opcode == opcode::PONG).count();
    assert_eq!(upstream_pongs, 0, "no pong reached the upstream: {upstream_saw:?}");
    let own_pings = upstream_saw.iter().filter(|f| f.opcode == opcode::PING && f.payload == OWN_PING.as_bytes());
    assert_eq!(own_pings.count(), 1, "the client's ping reached the upstream: {upstream_saw:?}");
    drop(client_writer);
}

#[tokio::test]
async fn an_api_idle_timeout_overrides_the_gateways() {
    let recorder = upstream(Script::Echo).await;
    // The gateway's idle_timeout stays at the harness's 300s.
    let api = api("/ctx", "1.0", &recorder.url()).with_toml("endpoint_settings = { idle_timeout = \"500ms\" }");
    let gw = gateway().api(api).start().await;
    let mut client = Client::connect(&gw.url("/ctx/1.0")).await;
    client.echoes(Message::text("then silence")).await;
    let started = Instant::now();

    assert_eq!(client.expect_close_code_within(Duration::from_secs(3)).await, Some(1001));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(450) && waited < Duration::from_millis(1500), "{waited:?}");
    assert_eq!(recorder.next_close_code().await, Some(1001), "the upstream is told too");
}

#[tokio::test]
async fn an_api_max_frame_size_overrides_the_gateways() {
    let (small, big) = (upstream(Script::Echo).await, upstream(Script::Echo).await);
    let gw = gateway()
        .api(api("/small", "1.0", &small.url()).with_toml("endpoint_settings = { max_frame_size = 100 }"))
        .api(api("/big", "1.0", &big.url()))
        .start()
        .await;
    let fits = "x".repeat(100);
    let too_big = "x".repeat(101);

    // The gateway's 16 MiB limit lets 101 bytes through on the API without an override.
    let mut client = RawClient::upgraded(gw.addr(), "/big/1.0").await;
    client.send_frame(frame(opcode::TEXT, &too_big)).await;
    assert_eq!(client.read_frame().await.payload, too_big.as_bytes());

    let mut client = RawClient::upgraded(gw.addr(), "/small/1.0").await;
    client.send_frame(frame(opcode::TEXT, &fits)).await;
    assert_eq!(client.read_frame().await.payload, fits.as_bytes());
    client.send_frame(frame(opcode::TEXT, &too_big)).await;
    assert_eq!(small.next_close_code().await, Some(1009), "the frame never reached the upstream, a 1009 did");
    assert_eq!(client.expect_close_code().await, Some(1009));
}

/// One side of a connection on a raw socket, split so that a task can answer pings while the
/// test writes through the shared writer.
struct Peer {
    reader: BufReader<OwnedReadHalf>,
    writer: Arc<Mutex<OwnedWriteHalf>>,
    /// Whether its frames are masked (a client's).
    masks: bool,
}

impl Peer {
    /// A client upgraded to `path`.
    async fn client(addr: SocketAddr, path: &str) -> Peer {
        let stream = within(STEP, "the client connects", TcpStream::connect(addr)).await.expect("connect");
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        writer.write_all(&upgrade_request(addr, path, &[])).await.expect("the upgrade request");
        let head = within(STEP, "the 101", read_head(&mut reader)).await.expect("a head").expect("an answer");
        assert_eq!(head.status(), 101, "{head:?}");
        Peer { reader, writer: Arc::new(Mutex::new(writer)), masks: true }
    }

    /// Reads frames, answering every ping with a pong of the same payload and a close with the
    /// same code, until a close arrives or the connection ends; returns what it read.
    async fn answer_pings_until_close(mut self) -> Vec<Frame> {
        let mut saw = Vec::new();
        let deadline = Duration::from_secs(10);
        let result = tokio::time::timeout(deadline, async {
            while let Ok(frame) = read_frame(&mut self.reader).await {
                let answer = match frame.opcode {
                    opcode::PING => Some(opcode::PONG),
                    opcode::CLOSE => Some(opcode::CLOSE),
                    _ => None,
                };
                if let Some(answer) = answer {
                    let spec = crate::harness::frame(answer, &frame.payload);
                    let spec = if self.masks { spec } else { spec.unmasked() };
                    let _ = self.writer.lock().await.write_all(&spec.to_bytes()).await;
                }
                let closed = frame.opcode == opcode::CLOSE;
                saw.push(frame);
                if closed {
                    return;
                }
            }
        })
        .await;
        assert!(result.is_ok(), "no close within {deadline:?}; saw {saw:?}");
        saw
    }
}

/// An upstream on a raw socket: it answers one upgrade with a correct 101 and hands both
/// halves of the connection to the test.
async fn raw_upstream() -> (String, JoinHandle<(BufReader<OwnedReadHalf>, OwnedWriteHalf)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("the raw upstream binds");
    let endpoint = format!("ws://{}", listener.local_addr().expect("an address"));
    let upgraded = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("the gateway connects");
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        let head = read_head(&mut reader).await.expect("a request").expect("a head");
        let key = head.header("Sec-WebSocket-Key").expect("a key");
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        );
        writer.write_all(answer.as_bytes()).await.expect("the 101");
        (reader, writer)
    });
    (endpoint, upgraded)
}

//! Clients that send as fast as they can and count what comes back, for the plans' tests.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{WebSocketStream, client_async};

use crate::harness::{STEP, within};
use crate::security::socket::attempt;
use crate::security::world::bearer;

pub type Ws = WebSocketStream<tokio::net::TcpStream>;

/// Opens `ws://addr/path` with the token (if any), from the local address `from`.
pub async fn open_from(addr: SocketAddr, path: &str, token: Option<&str>, from: IpAddr) -> Ws {
    let mut request = format!("ws://{addr}{path}").into_client_request().expect("a request");
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value");
        request.headers_mut().insert("authorization", value);
    }
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind the client address");
    let tcp = within(STEP, "the client connects", socket.connect(addr)).await.expect("connect");
    let (ws, _) = within(STEP, "the upgrade completes", client_async(request, tcp))
        .await
        .unwrap_or_else(|err| panic!("upgrade to {path} fails: {err}"));
    ws
}

/// Opens with a token from 127.0.0.1.
pub async fn open(addr: SocketAddr, path: &str, token: &str) -> Ws {
    open_from(addr, path, Some(token), [127, 0, 0, 1].into()).await
}

/// The status and `Retry-After` of one upgrade attempt that is expected to be refused.
pub async fn refused(addr: SocketAddr, path: &str, token: &str) -> (u16, Option<String>, String) {
    let (head, socket) = attempt(addr, path, &bearer(token)).await;
    assert!(socket.is_none(), "{path} upgraded, expected a refusal");
    (head.status(), head.header("retry-after").map(str::to_string), head.start_line.clone())
}

/// What a flood saw: the echoes in order, how long they took, and the close if one came.
#[derive(Debug)]
pub struct Flood {
    pub echoes: Vec<String>,
    pub took: Duration,
    pub close: Option<(u16, String)>,
}

/// Sends `count` numbered text messages of `size` bytes as fast as the socket takes them, while
/// reading echoes until all came back or the connection closed; bounded by `limit`.
pub async fn flood(ws: Ws, count: usize, size: usize, limit: Duration) -> Flood {
    let (mut sink, mut stream) = ws.split();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for n in 0..count {
            let text = format!("{n:0>width$}", width = size.max(1));
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
        }
        sink
    });
    let mut echoes = Vec::new();
    let mut close = None;
    let reading = async {
        while echoes.len() < count {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => echoes.push(text.to_string()),
                Some(Ok(Message::Close(frame))) => {
                    close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
    };
    within(limit, "the flood's echoes come back", reading).await;
    let took = started.elapsed();
    // Finish politely so the gateway's log and counters see a normal end.
    if let Ok(mut sink) = writer.await {
        let _ = sink.close().await;
    }
    Flood { echoes, took, close }
}

/// `n` formatted as [`flood`] numbers message `n` of `size` bytes.
pub fn numbered(n: usize, size: usize) -> String {
    format!("{n:0>width$}", width = size.max(1))
}

/// A TCP relay in front of an upstream that counts the connections it accepted, to see whether
/// the gateway contacted the upstream at all.
pub struct CountingProxy {
    pub addr: SocketAddr,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    pub async fn to(upstream: String) -> CountingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = accepted.clone();
        let target = upstream.trim_start_matches("ws://").to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        CountingProxy { addr, accepted, task }
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The body of a refused upgrade (the gateway's short reason).
pub async fn refusal_body(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let headers: Vec<(String, String)> = token.map(bearer).unwrap_or_default();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let mut raw = crate::harness::RawClient::connect(addr).await;
    raw.send(&crate::harness::raw::upgrade_request(addr, path, &headers)).await;
    let response = raw.read_response().await;
    (response.status(), String::from_utf8_lossy(&response.body).into_owned())
}

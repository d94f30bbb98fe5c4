//! A plain WebSocket echo server (`wsgate echo`): text comes back as text, binary as binary,
//! pings are answered and closes are echoed. It picks the first subprotocol a client offers, so
//! subprotocol negotiation through the gateway can be seen end to end. With a TLS acceptor it
//! serves `wss://`, the upstream for tests and benchmarks of TLS re-encryption.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A bound echo server.
pub struct EchoServer {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for EchoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoServer").field("addr", &self.local_addr()).field("tls", &self.tls.is_some()).finish()
    }
}

impl EchoServer {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<EchoServer> {
        Ok(EchoServer { listener: TcpListener::bind(addr).await?, tls: None })
    }

    /// Serves `wss://` with `acceptor`'s certificate instead of plain `ws://`.
    pub fn with_tls(self, acceptor: TlsAcceptor) -> EchoServer {
        EchoServer { tls: Some(acceptor), ..self }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` is cancelled; open connections are dropped then.
    pub async fn run(self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let stop = shutdown.clone();
            let tls = self.tls.clone();
            tracker.spawn(async move {
                let serve = async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                echo_connection(stream).await;
                            }
                        }
                        None => echo_connection(stream).await,
                    }
                };
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = serve => {}
                }
            });
        }
        tracker.close();
        tracker.wait().await;
    }
}

/// Picks the first subprotocol the client offers.
// The callback's signature is tungstenite's; its error type is an HTTP response.
#[allow(clippy::result_large_err)]
fn first_offered_protocol(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let first = request
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .and_then(|offers| offers.split(',').map(str::trim).find(|p| !p.is_empty()))
        .and_then(|p| HeaderValue::from_str(p).ok());
    if let Some(protocol) = first {
        response.headers_mut().insert("sec-websocket-protocol", protocol);
    }
    Ok(response)
}

async fn echo_connection<S: AsyncRead + AsyncWrite + Unpin>(stream: S) {
    // Small read buffer: tungstenite's 128 KiB default would cost the benchmark's 9 000 idle
    // connections over a gigabyte in the echo alone.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 << 10)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(16 << 20));
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, first_offered_protocol, Some(config)).await
    else {
        return;
    };
    while let Some(result) = ws.next().await {
        match result {
            Ok(message) => {
                let echo = matches!(message, Message::Text(_) | Message::Binary(_));
                if echo && ws.send(message).await.is_err() {
                    break;
                }
            }
            Err(err) => {
                // Fail the connection the way RFC 6455 §7.1.7 prefers: with a close frame
                // that says why, rather than a silent TCP drop.
                let code = match err {
                    WsError::Utf8(_) => CloseCode::Invalid,
                    WsError::Capacity(_) => CloseCode::Size,
                    WsError::Protocol(_) => CloseCode::Protocol,
                    _ => break,
                };
                let _ = ws.close(Some(CloseFrame { code, reason: "".into() })).await;
                let drain = async { while let Some(Ok(_)) = ws.next().await {} };
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
                break;
            }
        }
    }
}

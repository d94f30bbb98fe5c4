//! A well-behaved WebSocket client (tokio-tungstenite) with waits bounded by
//! [`STEP`], for the tests where the client is not the thing under test.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{WebSocketStream, client_async};

use super::{STEP, within};

pub struct Client {
    ws: WebSocketStream<TcpStream>,
    response: Response,
}

impl Client {
    /// Opens `url` (`ws://ADDR/path`), failing the test if the upgrade fails.
    pub async fn connect(url: &str) -> Client {
        Client::connect_with(url, &[]).await
    }

    /// Opens `url` with extra request headers, failing the test if the upgrade fails.
    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Client {
        Client::try_connect_with(url, headers).await.unwrap_or_else(|err| panic!("upgrade to {url} fails: {err}"))
    }

    /// Opens `url`, returning the handshake error (e.g. `Http(response)`) instead of failing.
    pub async fn try_connect_with(url: &str, headers: &[(&str, &str)]) -> Result<Client, WsError> {
        let mut request = url.into_client_request()?;
        for (name, value) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName = name.parse().expect("a valid header name");
            request.headers_mut().insert(name, HeaderValue::from_str(value).expect("a valid header value"));
        }
        let authority = request.uri().authority().expect("the url names a host").to_string();
        let tcp = within(STEP, "the client connects", TcpStream::connect(&authority)).await.map_err(WsError::Io)?;
        let (ws, response) = within(STEP, "the upgrade completes", client_async(request, tcp)).await?;
        Ok(Client { ws, response })
    }

    /// The subprotocol the 101 selected, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok())
    }

    pub async fn send(&mut self, message: Message) {
        within(STEP, "the client sends", self.ws.send(message)).await.expect("the client sends");
    }

    /// The next data or close message; pings and pongs are skipped (tungstenite answers pings itself).
    pub async fn recv_within(&mut self, limit: Duration) -> Message {
        within(limit, "a message arrives", async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(message)) => return message,
                    Some(Err(err)) => panic!("the connection failed instead: {err}"),
                    None => panic!("the connection ended without a message"),
                }
            }
        })
        .await
    }

    /// Sends `message` and asserts the same message comes back.
    pub async fn echoes(&mut self, message: Message) {
        self.echoes_within(message, STEP).await;
    }

    pub async fn echoes_within(&mut self, message: Message, limit: Duration) {
        within(limit, "the client sends", self.ws.send(message.clone())).await.expect("the client sends");
        let reply = self.recv_within(limit).await;
        assert!(reply == message, "expected the echo of {message:?}, got {reply:?}");
    }

    /// Starts the close handshake with `code`.
    pub async fn close_with(&mut self, code: u16) {
        let frame = CloseFrame { code: CloseCode::from(code), reason: "test".into() };
        within(STEP, "the client sends its close", self.ws.close(Some(frame)))
            .await
            .expect("the client sends its close");
    }

    /// Waits for a close frame and returns its code (`None` for a close without one).
    /// Data messages that arrive first are skipped.
    pub async fn expect_close_code(&mut self) -> Option<u16> {
        self.expect_close_code_within(STEP).await
    }

    /// Keeps reading until the connection ends, which also flushes tungstenite's
    /// automatic reply to a close frame. Errors count as an end.
    pub async fn finish(&mut self) {
        within(STEP, "the connection ends", async { while let Some(Ok(_)) = self.ws.next().await {} }).await;
    }

    pub async fn expect_close_code_within(&mut self, limit: Duration) -> Option<u16> {
        within(limit, "a close frame arrives", async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => {}
                    Some(Err(err)) => panic!("the connection failed before a close frame: {err}"),
                    None => panic!("the connection ended without a close frame"),
                }
            }
        })
        .await
    }
}

/// A text message of `len` bytes that compresses well and is easy to eyeball.
pub fn text_of_len(len: usize) -> Message {
    let text: String = "wsgate ".chars().cycle().take(len).collect();
    Message::text(text)
}

/// A binary message of `len` bytes whose every position is distinct modulo 251.
pub fn binary_of_len(len: usize) -> Message {
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    Message::binary(data)
}

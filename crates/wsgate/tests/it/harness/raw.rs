//! Bytes on a plain TCP socket: hand-built frames, hand-written handshakes and a
//! minimal reader for HTTP heads and frames.
//!
//! Client libraries refuse to produce malformed input, so the tests that probe
//! the gateway's defences speak the wire format themselves through this module.
//! The same reader serves the scripted upstreams, which see the gateway as their
//! client.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::{STEP, within};

/// Frame opcodes (RFC 6455 section 5.2).
pub mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// The key every raw handshake offers; its accept value is RFC 6455's example.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Largest head the reader accepts, so a peer that never ends its head fails the test.
const MAX_HEAD: usize = 256 * 1024;

/// A frame to put on the wire, built field by field so any of them can be wrong.
#[derive(Debug, Clone)]
pub struct FrameSpec {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: Vec<u8>,
}

/// A final frame, masked as a client must send it.
pub fn frame(opcode: u8, payload: impl AsRef<[u8]>) -> FrameSpec {
    FrameSpec { fin: true, rsv: 0, opcode, mask: Some([0x37, 0xfa, 0x21, 0x3d]), payload: payload.as_ref().to_vec() }
}

/// A masked close frame carrying `code` and no reason.
pub fn close_frame(code: u16) -> FrameSpec {
    frame(opcode::CLOSE, code.to_be_bytes())
}

impl FrameSpec {
    /// Clears FIN: more fragments of this message follow.
    pub fn not_final(mut self) -> Self {
        self.fin = false;
        self
    }

    /// Sends the payload in clear, as only a server may.
    pub fn unmasked(mut self) -> Self {
        self.mask = None;
        self
    }

    /// Sets the three reserved bits (RSV1 = 4, RSV2 = 2, RSV3 = 1).
    pub fn rsv(mut self, bits: u8) -> Self {
        self.rsv = bits & 0b111;
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 14);
        out.push((u8::from(self.fin) << 7) | (self.rsv << 4) | (self.opcode & 0x0f));
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let len = self.payload.len();
        if len < 126 {
            out.push(mask_bit | len as u8);
        } else if let Ok(short) = u16::try_from(len) {
            out.push(mask_bit | 126);
            out.extend_from_slice(&short.to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        match self.mask {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend(self.payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
            }
            None => out.extend_from_slice(&self.payload),
        }
        out
    }
}

/// A frame as read from the wire, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    /// Whether the sender masked it, as every client-to-server frame must be.
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The status code of a close frame; `None` for an empty close or another opcode.
    pub fn close_code(&self) -> Option<u16> {
        match (self.opcode, self.payload.as_slice()) {
            (opcode::CLOSE, [hi, lo, ..]) => Some(u16::from_be_bytes([*hi, *lo])),
            _ => None,
        }
    }

    pub fn is_data(&self) -> bool {
        matches!(self.opcode, opcode::CONTINUATION | opcode::TEXT | opcode::BINARY)
    }
}

/// Reads one frame, masked or not; payloads are returned unmasked.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Frame> {
    let mut head = [0u8; 2];
    r.read_exact(&mut head).await?;
    let len = match head[1] & 0x7f {
        126 => u64::from(r.read_u16().await?),
        127 => r.read_u64().await?,
        short => u64::from(short),
    };
    let mask = if head[1] & 0x80 != 0 {
        let mut key = [0u8; 4];
        r.read_exact(&mut key).await?;
        Some(key)
    } else {
        None
    };
    let len = usize::try_from(len).map_err(std::io::Error::other)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    if let Some(key) = mask {
        payload.iter_mut().zip(key.iter().cycle()).for_each(|(b, k)| *b ^= k);
    }
    Ok(Frame { fin: head[0] & 0x80 != 0, opcode: head[0] & 0x0f, masked: mask.is_some(), payload })
}

/// A request or response head: the start line and the header fields in order.
#[derive(Debug, Clone, Default)]
pub struct Head {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    /// The head as it came, byte for byte (`headers` shows non-UTF-8 bytes as U+FFFD).
    pub raw: Vec<u8>,
}

impl Head {
    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The status of a response head (`HTTP/1.1 404 Not Found` → 404).
    pub fn status(&self) -> u16 {
        self.start_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {:?}", self.start_line))
    }

    /// The request target of a request head (`GET /x?q=1 HTTP/1.1` → `/x?q=1`).
    pub fn target(&self) -> &str {
        self.start_line.split_whitespace().nth(1).unwrap_or("")
    }
}

/// Reads a head up to its blank line. `Ok(None)` when the peer closed before a byte came.
pub async fn read_head<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Option<Head>> {
    let mut head = Head::default();
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line).await?;
        if n == 0 {
            return if total == 0 { Ok(None) } else { Err(std::io::ErrorKind::UnexpectedEof.into()) };
        }
        total += n;
        if total > MAX_HEAD {
            return Err(std::io::Error::other("head too large"));
        }
        head.raw.extend_from_slice(&line);
        let line = String::from_utf8_lossy(&line).trim_end().to_string();
        if line.is_empty() {
            return Ok(Some(head));
        }
        if head.start_line.is_empty() {
            head.start_line = line;
        } else if let Some((name, value)) = line.split_once(':') {
            head.headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
}

/// An HTTP answer: the head and whatever body came with it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub head: Head,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn status(&self) -> u16 {
        self.head.status()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }
}

/// A valid upgrade request for `path`, plus `extra` header lines.
pub fn upgrade_request(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in extra {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// A client that writes whatever bytes a test gives it and reads answers raw.
pub struct RawClient {
    io: BufReader<TcpStream>,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        let stream = within(STEP, "raw client connects", TcpStream::connect(addr)).await.expect("raw client connects");
        RawClient { io: BufReader::new(stream) }
    }

    /// Connects from the loopback address `local` (127.0.0.x), for tests of per-address rules.
    pub async fn connect_from(local: std::net::IpAddr, addr: SocketAddr) -> RawClient {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.bind(SocketAddr::new(local, 0)).expect("bind to a loopback address");
        let stream = within(STEP, "raw client connects", socket.connect(addr)).await.expect("raw client connects");
        RawClient { io: BufReader::new(stream) }
    }

    /// Connects and completes a valid upgrade to `path`, asserting the 101.
    pub async fn upgraded(addr: SocketAddr, path: &str) -> RawClient {
        let mut client = RawClient::connect(addr).await;
        client.send(&upgrade_request(addr, path, &[])).await;
        let response = client.read_response_head().await;
        assert_eq!(response.status(), 101, "upgrade to {path}: {response:?}");
        assert_eq!(
            response.header("Sec-WebSocket-Accept"),
            Some(derive_accept_key(KEY.as_bytes()).as_str()),
            "the accept value proves the gateway read our key"
        );
        client
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes).await.expect("raw client writes");
    }

    /// Writes, reporting an error instead of failing: a server may rightly hang up mid-request.
    pub async fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        within(STEP, "raw client writes", async {
            self.io.get_mut().write_all(bytes).await?;
            self.io.get_mut().flush().await
        })
        .await
    }

    pub async fn send_frame(&mut self, frame: FrameSpec) {
        self.send(&frame.to_bytes()).await;
    }

    /// Reads a response head only; what follows (frames after a 101) stays unread.
    pub async fn read_response_head(&mut self) -> Head {
        within(STEP, "the server answers the request", read_head(&mut self.io))
            .await
            .expect("the answer is readable")
            .expect("the server answered before hanging up")
    }

    /// Reads a whole non-101 response: its head and a body sized by Content-Length,
    /// or running to the end of the connection.
    pub async fn read_response(&mut self) -> HttpResponse {
        let head = self.read_response_head().await;
        let body = self.read_body(&head).await;
        HttpResponse { head, body }
    }

    /// The response, or `None` when the server hung up (or reset) without answering.
    pub async fn try_read_response(&mut self) -> Option<HttpResponse> {
        let head = within(STEP, "the server answers or hangs up", read_head(&mut self.io)).await.ok()??;
        let body = self.read_body(&head).await;
        Some(HttpResponse { head, body })
    }

    async fn read_body(&mut self, head: &Head) -> Vec<u8> {
        let mut body = Vec::new();
        match head.header("Content-Length").and_then(|v| v.parse::<usize>().ok()) {
            Some(len) => {
                body.resize(len, 0);
                within(STEP, "the body arrives", self.io.read_exact(&mut body))
                    .await
                    .expect("the body is as long as Content-Length says");
            }
            None => {
                // Without a length the body runs to the end of the connection.
                let _ = within(STEP, "the body ends", self.io.read_to_end(&mut body)).await;
            }
        }
        body
    }

    pub async fn read_frame(&mut self) -> Frame {
        within(STEP, "a frame arrives", read_frame(&mut self.io)).await.expect("a whole frame arrives")
    }

    /// Reads frames until a close frame and returns its code; data, pings and pongs are skipped.
    pub async fn expect_close_code(&mut self) -> Option<u16> {
        let mut skipped = Vec::new();
        loop {
            let frame = match tokio::time::timeout(STEP, read_frame(&mut self.io)).await {
                Ok(Ok(frame)) => frame,
                Ok(Err(err)) => panic!("the connection ended ({err}) without a close frame; before it: {skipped:?}"),
                Err(_) => panic!("no close frame within {STEP:?}; instead: {skipped:?}"),
            };
            if frame.opcode == opcode::CLOSE {
                return frame.close_code();
            }
            skipped.push(format!("opcode {:#x} fin {} {} bytes", frame.opcode, frame.fin, frame.payload.len()));
        }
    }

    /// Ends the connection with a TCP reset, as a crashed peer or a middlebox would.
    pub fn reset(self) {
        let _ = self.io.get_ref().set_zero_linger();
    }

    /// True when the peer has closed the connection (EOF or reset) within `STEP`.
    pub async fn is_hung_up(&mut self) -> bool {
        let mut rest = Vec::new();
        tokio::time::timeout(STEP, self.io.read_to_end(&mut rest)).await.is_ok()
    }
}

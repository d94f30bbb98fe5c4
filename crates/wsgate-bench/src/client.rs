//! A minimal WebSocket client, written by hand so that the load generator costs as little CPU
//! per message as possible: no message objects, no per-message allocation, no re-masking.
//!
//! - [`Target`] is a parsed `ws://` or `wss://` URL with its upgrade request (and any extra
//!   headers, e.g. `Authorization`) rendered once.
//! - [`connect`] opens a TCP connection (TLS for `wss://`), sends the upgrade request and checks
//!   the 101.
//! - [`FrameReader`] parses server frames out of a fixed buffer. Payloads are skipped, never
//!   copied, so a frame may be larger than the buffer and reading costs one `read` per batch.
//! - [`masked_frame`] builds a client frame once; every connection masks with a key fixed for its
//!   lifetime, so the same bytes can be written again and again.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

/// A plain or TLS connection.
pub type Stream = Either<TcpStream, TlsStream<TcpStream>>;

/// The `Sec-WebSocket-Key` sent on every handshake and the accept value derived from it.
/// This is the example pair of RFC 6455 §1.3, so the 101 can be checked without SHA-1; servers
/// must not care that the key repeats.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// How long connecting plus the upgrade may take before a connection counts as failed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;

/// Where to connect and what to send to upgrade.
pub struct Target {
    pub addr: SocketAddr,
    request: Vec<u8>,
    /// Set for `wss://`: certificates are not verified (benchmarks run against self-signed ones).
    tls: Option<(TlsConnector, rustls::pki_types::ServerName<'static>)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("addr", &self.addr).field("tls", &self.tls.is_some()).finish()
    }
}

impl Target {
    /// Parses `ws[s]://HOST[:PORT][/PATH]` and resolves HOST once, so that connection setup in
    /// the measured loops never touches DNS. `headers` (`Name: value`) go into every upgrade.
    pub async fn resolve(url: &str, headers: &[String]) -> anyhow::Result<Target> {
        let (rest, secure) = match (url.strip_prefix("ws://"), url.strip_prefix("wss://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => bail!("{url}: only ws:// and wss:// URLs are supported"),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let has_port = authority.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok());
        let default_port = if secure { 443 } else { 80 };
        let host_port = if has_port { authority.to_owned() } else { format!("{authority}:{default_port}") };
        let addr = tokio::net::lookup_host(&host_port)
            .await
            .with_context(|| format!("resolving {host_port}"))?
            .next()
            .with_context(|| format!("{host_port} resolves to no address"))?;
        let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
        .into_bytes();
        let tls = if secure {
            let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host).trim_matches(['[', ']']);
            let name = rustls::pki_types::ServerName::try_from(host.to_owned()).context("TLS server name")?;
            let options = wsgate_tls::client::UpstreamTlsOptions { insecure_skip_verify: true, ..Default::default() };
            Some((TlsConnector::from(wsgate_tls::client::client_config(options)?), name))
        } else {
            None
        };
        Ok(Target { addr, request, tls })
    }
}

/// An upgraded connection: the socket and the frames already read from it.
#[derive(Debug)]
pub struct Conn {
    pub stream: Stream,
    pub frames: FrameReader,
}

/// Connects, upgrades and returns the connection ready for frames. `buf_size` sizes the frame
/// reader; it only bounds how many frames one `read` can return, not the frame size.
pub async fn connect(target: &Target, buf_size: usize) -> anyhow::Result<Conn> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, upgrade(target, buf_size)).await.context("connect and upgrade timed out")?
}

async fn upgrade(target: &Target, buf_size: usize) -> anyhow::Result<Conn> {
    let tcp = TcpStream::connect(target.addr).await.with_context(|| format!("connecting to {}", target.addr))?;
    // Echo benchmarks write small frames and wait for answers: Nagle would add delay, not save work.
    tcp.set_nodelay(true)?;
    let mut stream = match &target.tls {
        Some((connector, name)) => Either::Right(connector.connect(name.clone(), tcp).await.context("TLS handshake")?),
        None => Either::Left(tcp),
    };
    stream.write_all(&target.request).await?;
    let mut frames = FrameReader::new(buf_size.max(4096));
    let head_len = loop {
        if let Some(i) = find(frames.unparsed(), b"\r\n\r\n") {
            break i + 4;
        }
        if frames.is_full() {
            bail!("upgrade response head does not fit {} bytes", frames.buf.len());
        }
        if frames.fill(&mut stream).await? == 0 {
            bail!("server closed the connection during the upgrade");
        }
    };
    check_switching_protocols(&frames.unparsed()[..head_len])?;
    // Bytes after the head are already frames; the reader keeps them.
    frames.start += head_len;
    Ok(Conn { stream, frames })
}

/// Accepts only a 101 that carries the accept value for [`KEY`].
fn check_switching_protocols(head: &[u8]) -> anyhow::Result<()> {
    let head = std::str::from_utf8(head).context("upgrade response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        bail!("upgrade refused: {status}");
    }
    let accepted = lines.any(|line| {
        line.split_once(':')
            .is_some_and(|(name, value)| name.eq_ignore_ascii_case("sec-websocket-accept") && value.trim() == ACCEPT)
    });
    if !accepted {
        bail!("101 without the expected Sec-WebSocket-Accept");
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Opens `count` connections with at most `parallel` handshakes in flight, because a burst of
/// thousands of SYNs overflows a proxy's accept backlog and turns into 1 s SYN retries.
pub async fn connect_many(
    target: &Arc<Target>,
    count: usize,
    parallel: usize,
    buf_size: usize,
) -> anyhow::Result<Vec<Conn>> {
    let mut pending = JoinSet::new();
    let mut conns = Vec::with_capacity(count);
    let mut started = 0;
    while conns.len() < count {
        while started < count && pending.len() < parallel.max(1) {
            let target = Arc::clone(target);
            pending.spawn(async move { connect(&target, buf_size).await });
            started += 1;
        }
        let joined = pending.join_next().await.context("no connection attempt left")?;
        let conn = joined
            .context("connect task panicked")?
            .with_context(|| format!("connection {} of {count}", conns.len() + 1))?;
        conns.push(conn);
    }
    Ok(conns)
}

/// What the benchmark needs to know about a server frame once its payload has gone by.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
}

impl Frame {
    /// True for the last frame of a data message (text, binary or the final continuation).
    pub fn ends_message(self) -> bool {
        self.fin && self.opcode < OP_CLOSE
    }

    pub fn is_close(self) -> bool {
        self.opcode == OP_CLOSE
    }
}

/// Parses server frames from a fixed buffer without storing payloads.
#[derive(Debug)]
pub struct FrameReader {
    buf: Box<[u8]>,
    /// Unparsed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Payload bytes of `current` not read yet; they are skipped as they arrive.
    skip: u64,
    /// The frame whose header has been parsed and whose payload is still being skipped.
    current: Option<Frame>,
}

impl FrameReader {
    pub fn new(size: usize) -> FrameReader {
        FrameReader { buf: vec![0; size].into_boxed_slice(), start: 0, end: 0, skip: 0, current: None }
    }

    fn unparsed(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn is_full(&self) -> bool {
        self.start == 0 && self.end == self.buf.len()
    }

    /// Reads once from `r`; returns the byte count, 0 at end of stream.
    ///
    /// Cancel-safe: the only await is the read itself, and state changes only after it returns,
    /// so it can sit in a `select!` beside a timer.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> io::Result<usize> {
        // After `next_frame` returns None at most a partial header (< 14 bytes) is left, so this
        // copy is tiny and the whole buffer is free for the read.
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = r.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// Returns the next frame whose payload has been fully read, or None when more bytes are
    /// needed.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.current {
                let available = (self.end - self.start) as u64;
                let n = available.min(self.skip);
                // `n` is at most the buffered byte count, so it fits usize.
                self.start += n as usize;
                self.skip -= n;
                if self.skip > 0 {
                    return None;
                }
                self.current = None;
                return Some(frame);
            }
            let b = self.unparsed();
            if b.len() < 2 {
                return None;
            }
            let frame = Frame { fin: b[0] & 0x80 != 0, opcode: b[0] & 0x0f };
            // Servers must not mask, but a mask key only lengthens the header; skip it if present.
            let mask_len = if b[1] & 0x80 != 0 { 4 } else { 0 };
            let (len, header_len) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
                127 if b.len() >= 10 => {
                    let mut n = [0; 8];
                    n.copy_from_slice(&b[2..10]);
                    (u64::from_be_bytes(n), 10)
                }
                126 | 127 => return None,
                n => (u64::from(n), 2),
            };
            if b.len() < header_len + mask_len {
                return None;
            }
            self.start += header_len + mask_len;
            self.skip = len;
            self.current = Some(frame);
        }
    }
}

/// Builds one complete, masked client frame (FIN set).
pub fn masked_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// A close frame with status 1000 (normal closure).
pub fn close_frame(mask: [u8; 4]) -> Vec<u8> {
    masked_frame(OP_CLOSE, &1000u16.to_be_bytes(), mask)
}

/// A mask key per connection index. It only has to differ between connections and not be zero
/// (a zero key would leave payloads readable as sent, hiding unmasking bugs in the server).
pub fn mask_for(index: usize) -> [u8; 4] {
    ((index as u32).wrapping_mul(0x9E37_79B9) | 0x0101_0101).to_be_bytes()
}

/// A binary payload of `size` bytes; its content is irrelevant to an echo.
pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(opcode: u8, len: usize) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        if len < 126 {
            f.push(len as u8);
        } else if len <= 0xffff {
            f.push(126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            f.push(127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
        f.extend(std::iter::repeat_n(7u8, len));
        f
    }

    #[tokio::test]
    async fn reads_frames_larger_than_the_buffer_split_anywhere() {
        let mut wire = Vec::new();
        for len in [0, 5, 125, 126, 4096, 70_000] {
            wire.extend(server_frame(OP_BINARY, len));
        }
        wire.extend(server_frame(OP_CLOSE, 2));
        // Feed the bytes in awkward 7-byte reads into a small buffer.
        let mut input = tokio_test_reader(wire, 7);
        let mut reader = FrameReader::new(64);
        let mut messages = 0;
        let mut closed = false;
        while !closed {
            assert!(reader.fill(&mut input).await.expect("read") > 0, "ran dry");
            while let Some(f) = reader.next_frame() {
                if f.ends_message() {
                    messages += 1;
                }
                closed |= f.is_close();
            }
        }
        assert_eq!(messages, 6);
    }

    #[test]
    fn masked_frame_unmasks_to_the_payload() {
        let mask = mask_for(3);
        let data = payload(300);
        let frame = masked_frame(OP_BINARY, &data, mask);
        assert_eq!(frame[1], 0x80 | 126);
        assert_eq!(&frame[4..8], &mask);
        let unmasked: Vec<u8> = frame[8..].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        assert_eq!(unmasked, data);
    }

    #[test]
    fn checks_the_accept_value() {
        let ok = format!("HTTP/1.1 101 Switching Protocols\r\nsec-websocket-accept: {ACCEPT}\r\n\r\n");
        assert!(check_switching_protocols(ok.as_bytes()).is_ok());
        let wrong = "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x\r\n\r\n";
        assert!(check_switching_protocols(wrong.as_bytes()).is_err());
        let refused = "HTTP/1.1 502 Bad Gateway\r\n\r\n";
        assert!(check_switching_protocols(refused.as_bytes()).is_err());
    }

    /// An AsyncRead that hands out `wire` at most `chunk` bytes per read.
    fn tokio_test_reader(wire: Vec<u8>, chunk: usize) -> impl AsyncRead + Unpin {
        let (client, mut server) = tokio::io::duplex(chunk);
        tokio::spawn(async move {
            server.write_all(&wire).await.expect("write");
        });
        client
    }
}

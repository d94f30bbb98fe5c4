//! Upstreams that follow a script: answer the upgrade with a given status,
//! never answer, answer with a wrong accept value, or upgrade and then echo,
//! close with a chosen code, die mid-stream or mid-frame, or drop TCP when the
//! client closes.
//!
//! Each one records what the gateway sent it (the request head, every frame)
//! so tests can assert on what reached the upstream, not only on what came
//! back. They speak the wire format by hand (see `raw`) so that nothing the
//! gateway sends is tidied up by a library before the test sees it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::raw::{self, Frame, Head, opcode, read_frame, read_head};
use super::{STEP, within};

/// What the upstream does with each connection the gateway opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Answers the upgrade request with this plain HTTP status and a short body.
    Answer(u16),
    /// Reads the request and never answers.
    NeverAnswer,
    /// Answers 101 with a Sec-WebSocket-Accept that does not match the key.
    WrongAccept,
    /// Answers 101 with the accept value of the raw clients' key ([`raw::KEY`]) whatever key
    /// the gateway sent: an upstream that never read the gateway's handshake.
    AcceptOfClientKey,
    /// Upgrades selecting this extension whether it was offered or not, then echoes.
    EchoWithExtension(&'static str),
    /// Upgrades, then echoes every data frame as it came, answers pings and
    /// replies to a close with the same code.
    Echo,
    /// Like `Echo`, selecting this subprotocol in its 101.
    EchoWithProtocol(&'static str),
    /// Upgrades, then answers the first complete message with a close frame of this code.
    CloseAfterFirstMessage(u16),
    /// Upgrades, then drops the TCP connection, without a close frame, after the first message.
    DieAfterFirstMessage,
    /// Like `Echo`, but answers a client's close by dropping TCP, as many servers do.
    DropOnClose,
    /// Upgrades, echoes the first message whole, then sends the head of a second one (a frame
    /// announcing 100 payload bytes, with 10 of them) and resets the TCP connection.
    ResetMidFrame,
}

/// What a scripted upstream observed.
#[derive(Debug, Clone)]
pub enum Event {
    Request(Head),
    Frame(Frame),
    /// The gateway's connection ended (EOF or error).
    Ended,
}

/// A scripted upstream listening on `127.0.0.1:0`; dropping it stops it and
/// every connection it holds.
pub struct ScriptedUpstream {
    addr: SocketAddr,
    events: Mutex<mpsc::UnboundedReceiver<Event>>,
    task: JoinHandle<()>,
}

pub async fn upstream(script: Script) -> ScriptedUpstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("the scripted upstream binds");
    let addr = listener.local_addr().expect("a bound address");
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        // The set owns every connection task: when this accept loop is aborted,
        // the set is dropped and aborts them all.
        let mut connections = JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            connections.spawn(serve(stream, script, tx.clone()));
            while connections.try_join_next().is_some() {}
        }
    });
    ScriptedUpstream { addr, events: Mutex::new(rx), task }
}

impl ScriptedUpstream {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint to declare in an API: `ws://ADDR`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The next thing the upstream observed. Fails on an unmasked frame: towards
    /// the upstream the gateway is a client, and a client masks every frame.
    pub async fn next_event(&self) -> Event {
        let mut events = self.events.lock().await;
        let event = within(STEP, "the scripted upstream observes something", events.recv())
            .await
            .expect("the scripted upstream is running");
        if let Event::Frame(frame) = &event {
            assert!(frame.masked, "the gateway sent the upstream an unmasked frame: {frame:?}");
        }
        event
    }

    /// The head of the next upgrade request the gateway sent.
    pub async fn next_request(&self) -> Head {
        loop {
            if let Event::Request(head) = self.next_event().await {
                return head;
            }
        }
    }

    /// The code of the next close frame the gateway sent; `None` for a close
    /// frame without a code. Fails if the connection ends without one.
    pub async fn next_close_code(&self) -> Option<u16> {
        loop {
            match self.next_event().await {
                Event::Frame(frame) if frame.opcode == opcode::CLOSE => {
                    return frame.close_code();
                }
                Event::Ended => panic!("the gateway hung up on the upstream without a close frame"),
                _ => {}
            }
        }
    }

    /// True when no upgrade request has arrived so far.
    pub async fn saw_no_request(&self) -> bool {
        let mut events = self.events.lock().await;
        while let Ok(event) = events.try_recv() {
            if matches!(event, Event::Request(_)) {
                return false;
            }
        }
        true
    }
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(stream: TcpStream, script: Script, events: mpsc::UnboundedSender<Event>) {
    let mut io = BufReader::new(stream);
    let Ok(Some(head)) = read_head(&mut io).await else {
        let _ = events.send(Event::Ended);
        return;
    };
    let key = head.header("Sec-WebSocket-Key").unwrap_or("").to_string();
    let _ = events.send(Event::Request(head));
    let answer = match script {
        Script::Answer(status) => {
            let body = format!("scripted upstream says {status}\n");
            format!(
                "HTTP/1.1 {status} Scripted\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            )
        }
        Script::NeverAnswer => {
            // Hold the connection open until the test drops the upstream.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        Script::WrongAccept => switching_protocols("bm90IHRoZSByaWdodCBhY2NlcHQ=", None),
        Script::AcceptOfClientKey => switching_protocols(&derive_accept_key(raw::KEY.as_bytes()), None),
        Script::EchoWithProtocol(protocol) => {
            switching_protocols(&derive_accept_key(key.as_bytes()), Some(("Sec-WebSocket-Protocol", protocol)))
        }
        Script::EchoWithExtension(extension) => {
            switching_protocols(&derive_accept_key(key.as_bytes()), Some(("Sec-WebSocket-Extensions", extension)))
        }
        _ => switching_protocols(&derive_accept_key(key.as_bytes()), None),
    };
    if io.get_mut().write_all(answer.as_bytes()).await.is_err() {
        let _ = events.send(Event::Ended);
        return;
    }
    if matches!(script, Script::Answer(_) | Script::WrongAccept | Script::AcceptOfClientKey) {
        // Wait for the gateway to hang up, so it decides when the connection ends.
        let _ = tokio::time::timeout(STEP, read_head(&mut io)).await;
        let _ = events.send(Event::Ended);
        return;
    }
    relay_frames(io, script, events).await;
}

fn switching_protocols(accept: &str, extra: Option<(&str, &str)>) -> String {
    let mut answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some((name, value)) = extra {
        answer.push_str(&format!("{name}: {value}\r\n"));
    }
    answer.push_str("\r\n");
    answer
}

/// The frame loop after a 101: records every frame and acts out the script.
async fn relay_frames(mut io: BufReader<TcpStream>, script: Script, events: mpsc::UnboundedSender<Event>) {
    // Set once this side has sent its close frame: a close that arrives after it
    // is the reply, and gets none.
    let mut sent_close = false;
    loop {
        let Ok(frame) = read_frame(&mut io).await else {
            let _ = events.send(Event::Ended);
            return;
        };
        let _ = events.send(Event::Frame(frame.clone()));
        let reply = match (frame.opcode, script) {
            (opcode::CLOSE, _) if sent_close => None,
            (opcode::CLOSE, Script::DropOnClose) => {
                // No close frame back: the TCP connection ends here.
                let _ = events.send(Event::Ended);
                return;
            }
            (opcode::CLOSE, _) => Some(server_frame(true, opcode::CLOSE, &frame.payload)),
            (opcode::PING, _) => Some(server_frame(true, opcode::PONG, &frame.payload)),
            (_, Script::CloseAfterFirstMessage(code)) if frame.is_data() && frame.fin => {
                sent_close = true;
                Some(server_frame(true, opcode::CLOSE, &code.to_be_bytes()))
            }
            (_, Script::DieAfterFirstMessage) if frame.is_data() && frame.fin => {
                // Dropping the socket without a close frame is the failure under test.
                return;
            }
            (_, Script::ResetMidFrame) if frame.is_data() && frame.fin => {
                let mut bytes = server_frame(true, frame.opcode, &frame.payload);
                bytes.extend_from_slice(&[0x82, 100]);
                bytes.extend_from_slice(&[b'r'; 10]);
                let _ = io.get_mut().write_all(&bytes).await;
                let _ = io.get_mut().flush().await;
                // A reset, not an orderly end: nothing more of the frame will ever come.
                let _ = io.get_ref().set_zero_linger();
                let _ = events.send(Event::Ended);
                return;
            }
            (_, Script::Echo | Script::EchoWithProtocol(_) | Script::EchoWithExtension(_) | Script::DropOnClose)
                if frame.is_data() =>
            {
                Some(server_frame(frame.fin, frame.opcode, &frame.payload))
            }
            _ => None,
        };
        if let Some(bytes) = reply
            && io.get_mut().write_all(&bytes).await.is_err()
        {
            let _ = events.send(Event::Ended);
            return;
        }
        if frame.opcode == opcode::CLOSE {
            // Both close frames have now crossed; the server ends the TCP
            // connection first (RFC 6455 section 7.1.1).
            let _ = events.send(Event::Ended);
            return;
        }
    }
}

/// An unmasked frame, as a server sends it.
fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let spec = raw::frame(opcode, payload).unmasked();
    if fin { spec } else { spec.not_final() }.to_bytes()
}

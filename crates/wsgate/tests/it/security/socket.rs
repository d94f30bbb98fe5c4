//! Client connections to the gateway, spoken raw so that answers, close codes and close reasons
//! are seen exactly as the gateway sent them: one upgrade attempt, an upgraded socket, and the
//! patience a test needs while the gateway catches up with its store.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::harness::raw::{Head, RawClient, close_frame, frame, opcode, upgrade_request};
use crate::harness::{STEP, within};

/// One upgrade request on a new connection: the answer's head, and the socket if it was a 101.
pub async fn attempt(addr: SocketAddr, target: &str, headers: &[(String, String)]) -> (Head, Option<Socket>) {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let mut raw = RawClient::connect(addr).await;
    // The gateway may stop reading (and hang up) once it has seen enough: its answer counts.
    let _ = raw.try_send(&upgrade_request(addr, target, &headers)).await;
    let head = raw.read_response_head().await;
    let socket = (head.status() == 101).then_some(Socket { raw });
    (head, socket)
}

/// Calls `probe` until it succeeds, for at most [`STEP`]; fails with its last complaint.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + STEP;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => panic!("{what}: still `{last}` after {STEP:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// An upgraded client connection, spoken raw so that close codes and reasons are seen as sent.
pub struct Socket {
    raw: RawClient,
}

impl Socket {
    /// True when the gateway's side of the connection is gone (EOF or reset) within `STEP`.
    pub async fn is_hung_up(&mut self) -> bool {
        self.raw.is_hung_up().await
    }

    /// Sends `text` and asserts the echo comes back.
    pub async fn echoes(&mut self, text: &str) {
        self.raw.send_frame(frame(opcode::TEXT, text)).await;
        loop {
            let reply = self.raw.read_frame().await;
            match reply.opcode {
                opcode::PING | opcode::PONG => continue,
                opcode::TEXT => {
                    assert_eq!(reply.payload, text.as_bytes(), "the echo of {text:?}");
                    return;
                }
                _ => panic!("expected the echo of {text:?}, got {reply:?}"),
            }
        }
    }

    /// Waits until `deadline` for the gateway's close frame and answers it; returns its code and
    /// reason. Data frames that arrive first are skipped.
    pub async fn closed_by(&mut self, deadline: Instant) -> (Option<u16>, String) {
        let limit = deadline.saturating_duration_since(Instant::now());
        let close = within(limit, "the gateway's close frame arrives", async {
            loop {
                let frame = self.raw.read_frame().await;
                if frame.opcode == opcode::CLOSE {
                    return frame;
                }
            }
        })
        .await;
        let code = close.close_code();
        let _ = self.raw.try_send(&close_frame(code.unwrap_or(1000)).to_bytes()).await;
        (code, String::from_utf8_lossy(close.payload.get(2..).unwrap_or_default()).into_owned())
    }
}

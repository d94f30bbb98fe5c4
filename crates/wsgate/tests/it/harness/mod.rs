//! The test harness: a gateway started in-process from a TOML string, the
//! upstreams it relays to, and the clients that talk to it, all on
//! `127.0.0.1:0` and all stopped when the test drops them.
//!
//! Reading order: `gateway` (config and the in-process gateway, the echo
//! upstream), `scripted` (upstreams that misbehave on cue), `client` (a
//! well-behaved tokio-tungstenite client), `raw` (bytes a well-behaved client
//! would never send), `process` (the real binary and the external tools),
//! `services` (a PostgreSQL schema and a Redis of the test's own), `cluster`
//! (several `wsgate serve` nodes sharing them), `haproxy` (the shipped balancer
//! configuration in front of them), `tcp_proxy` (a cable to PostgreSQL a test can cut) and
//! `ports` (ports to tell the processes they start).
//!
//! Every network wait goes through [`within`], so a hang fails the test with
//! the name of the step that hung instead of blocking the run.

pub mod client;
pub mod cluster;
pub mod gateway;
pub mod haproxy;
pub mod ports;
pub mod process;
pub mod raw;
pub mod scripted;
pub mod services;
pub mod tcp_proxy;

use std::future::Future;
use std::time::Duration;

pub use client::Client;
pub use gateway::{api, echo_upstream, gateway};
pub use raw::{FrameSpec, RawClient, close_frame, frame, opcode};
pub use scripted::{Script, upstream};

/// How long one step (connect, one answer, one frame) may take before the test fails.
pub const STEP: Duration = Duration::from_secs(5);

/// Awaits `fut`, failing the test with `what` if it takes longer than `limit`.
pub async fn within<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Runs each row of a table test in its own task and fails once at the end,
/// listing every row that failed, so one bad row does not hide the others.
pub async fn check_rows<R, F, Fut>(rows: Vec<R>, name: impl Fn(&R) -> String, check: F)
where
    F: Fn(R) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut failures = Vec::new();
    for row in rows {
        let row_name = name(&row);
        if let Err(err) = tokio::spawn(check(row)).await {
            let why = err
                .try_into_panic()
                .ok()
                .and_then(|p| {
                    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                })
                .unwrap_or_else(|| "task failed".to_string());
            failures.push(format!("  {row_name}: {why}"));
        }
    }
    assert!(failures.is_empty(), "{} row(s) failed:\n{}", failures.len(), failures.join("\n"));
}

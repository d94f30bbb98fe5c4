//! `cycles`: whole connection lifetimes per second.
//!
//! One cycle is: new TCP connection, upgrade, one small message and its echo, a close frame and
//! the close reply, then the socket is dropped. `concurrency` workers repeat cycles back to back;
//! cycles completed in the measured window are counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use crate::client::{self, OP_BINARY, Target};
use crate::{Report, parse_duration, usage};

/// A cycle that takes longer than this is abandoned and counted as failed.
const CYCLE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// ws://HOST:PORT/PATH or wss://… of an echo service (directly or through a proxy).
    #[arg(long)]
    url: String,
    /// Extra upgrade request header, `Name: value` (e.g. an Authorization bearer token);
    /// repeatable.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Cycles running at the same time.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Payload bytes of the one message per cycle.
    #[arg(long, default_value_t = 16)]
    size: usize,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
}

/// Counters shared by the workers.
#[derive(Debug, Default)]
struct Tally {
    done: AtomicU64,
    failed: AtomicU64,
    /// The first failure, to explain a poor figure.
    first_error: Mutex<Option<String>>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let target = Arc::new(Target::resolve(&args.url, &args.headers).await?);
    let tally = Arc::new(Tally::default());
    let payload = client::payload(args.size);
    let mut workers = JoinSet::new();
    for w in 0..args.concurrency {
        let mask = client::mask_for(w);
        let message = client::masked_frame(OP_BINARY, &payload, mask);
        let close = client::close_frame(mask);
        let (target, tally) = (Arc::clone(&target), Arc::clone(&tally));
        // Runs until aborted at the end of the window: bounded by time; each cycle is bounded
        // by CYCLE_TIMEOUT.
        workers.spawn(async move {
            loop {
                match tokio::time::timeout(CYCLE_TIMEOUT, cycle(&target, &message, &close)).await {
                    Ok(Ok(())) => {
                        tally.done.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Ok(Err(e)) => tally.record_failure(format!("{e:#}")),
                    Err(_) => tally.record_failure("cycle timed out".to_owned()),
                }
                // Don't spin on a refusing server.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
    }

    tokio::time::sleep(args.warmup).await;
    let (done0, failed0, t0) = tally.snapshot();
    let wait0 = usage::own_run_queue_wait();
    tokio::time::sleep(args.duration).await;
    let (done1, failed1, t1) = tally.snapshot();
    let waited = usage::own_run_queue_wait().saturating_sub(wait0);
    workers.abort_all();

    let seconds = (t1 - t0).as_secs_f64();
    let cycles = done1 - done0;
    let failed = failed1 - failed0;
    let rate = cycles as f64 / seconds;
    let first_error = tally.first_error.lock().map(|e| e.clone()).unwrap_or_default();
    if cycles == 0 {
        bail!("no cycle completed: {}", first_error.as_deref().unwrap_or("no error either"));
    }
    let mut report = Report::new("cycles");
    report
        .field("concurrency", args.concurrency)
        .field("seconds", format!("{seconds:.3}"))
        .field("cycles", cycles)
        .field("failed", failed)
        .field("cycles_per_s", format!("{rate:.0}"))
        .field("wait_ms", format!("{:.1}", waited.as_secs_f64() * 1e3));
    let mut human = format!("cycles {}: {rate:.0}/s ({} concurrent), {failed} failed", args.url, args.concurrency);
    if let Some(e) = first_error.filter(|_| failed > 0) {
        human += &format!(" (first: {e})");
    }
    report.print(&human);
    Ok(())
}

impl Tally {
    fn snapshot(&self) -> (u64, u64, Instant) {
        (self.done.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed), Instant::now())
    }

    fn record_failure(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(error);
        }
    }
}

/// One connection lifetime; dropping the socket at the end closes it.
async fn cycle(target: &Target, message: &[u8], close: &[u8]) -> anyhow::Result<()> {
    let mut conn = client::connect(target, 4096).await?;
    conn.stream.write_all(message).await?;
    loop {
        let Some(frame) = conn.frames.next_frame() else {
            if conn.frames.fill(&mut conn.stream).await? == 0 {
                bail!("server closed before the echo");
            }
            continue;
        };
        if frame.is_close() {
            bail!("server sent close instead of the echo");
        }
        if frame.ends_message() {
            break;
        }
    }
    conn.stream.write_all(close).await?;
    loop {
        let Some(frame) = conn.frames.next_frame() else {
            if conn.frames.fill(&mut conn.stream).await? == 0 {
                bail!("server closed without a close reply");
            }
            continue;
        };
        if frame.is_close() {
            return Ok(());
        }
    }
}

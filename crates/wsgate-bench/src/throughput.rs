//! `throughput`: closed-loop echo rate.
//!
//! Every connection keeps `inflight` messages outstanding: it writes that many at once, and each
//! time echoes come back it writes exactly as many again. Messages per second counts echoes
//! received during the measured window (after the warm-up).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use crate::client::{self, Conn, OP_BINARY, Target};
use crate::{Report, parse_duration, usage};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// ws://HOST:PORT/PATH or wss://… of an echo service (directly or through a proxy).
    #[arg(long)]
    url: String,
    /// Extra upgrade request header, `Name: value` (e.g. an Authorization bearer token);
    /// repeatable.
    #[arg(long = "header")]
    headers: Vec<String>,
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Messages outstanding per connection. inflight × size must fit the socket buffers.
    #[arg(long, default_value_t = 16)]
    inflight: usize,
    /// Payload bytes per message (binary frames).
    #[arg(long, default_value_t = 64)]
    size: usize,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Load runs this long before the measured window starts.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// A process whose CPU time per echoed message is reported; repeat to sum several.
    #[arg(long = "pid")]
    pids: Vec<u32>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.inflight == 0 || args.connections == 0 {
        bail!("--connections and --inflight must be at least 1");
    }
    let target = Arc::new(Target::resolve(&args.url, &args.headers).await?);
    // Big enough that one read drains everything in flight on the connection.
    let buf_size = (args.inflight * (args.size + 14)).clamp(16 << 10, 256 << 10);
    let conns = client::connect_many(&target, args.connections, 64, buf_size).await?;

    let echoed = Arc::new(AtomicU64::new(0));
    let payload = client::payload(args.size);
    let mut pumps = JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let frame = client::masked_frame(OP_BINARY, &payload, client::mask_for(i));
        let burst = frame.repeat(args.inflight);
        pumps.spawn(pump(conn, burst, frame.len(), Arc::clone(&echoed)));
    }

    // The pumps run until they are aborted below, so the measured window is bounded by time
    // alone; a slow server lowers the count, it cannot stall the tool.
    tokio::time::sleep(args.warmup).await;
    let (count0, cpu0, t0) = (echoed.load(Ordering::Relaxed), cpu(&args.pids)?, Instant::now());
    let wait0 = usage::own_run_queue_wait();
    tokio::time::sleep(args.duration).await;
    let (count1, cpu1, t1) = (echoed.load(Ordering::Relaxed), cpu(&args.pids)?, Instant::now());
    let waited = usage::own_run_queue_wait().saturating_sub(wait0);

    // A pump that already ended failed; its error explains a low figure better than the figure.
    if let Some(ended) = pumps.try_join_next() {
        ended??;
        bail!("a connection ended early");
    }
    pumps.abort_all();

    let seconds = (t1 - t0).as_secs_f64();
    let messages = count1 - count0;
    let rate = messages as f64 / seconds;
    let mut report = Report::new("throughput");
    report
        .field("connections", args.connections)
        .field("inflight", args.inflight)
        .field("size", args.size)
        .field("seconds", format!("{seconds:.3}"))
        .field("messages", messages)
        .field("msgs_per_s", format!("{rate:.0}"))
        .field("mib_per_s", format!("{:.1}", rate * args.size as f64 / f64::from(1 << 20)))
        .field("wait_ms", format!("{:.1}", waited.as_secs_f64() * 1e3));
    let mut human = format!(
        "throughput {}: {rate:.0} msg/s ({} B, {}×{} in flight)",
        args.url, args.size, args.connections, args.inflight
    );
    if !args.pids.is_empty() && messages > 0 {
        let us = (cpu1 - cpu0) * 1e6 / messages as f64;
        report.field("cpu_s", format!("{:.2}", cpu1 - cpu0)).field("cpu_us_per_msg", format!("{us:.3}"));
        human += &format!(", server CPU {us:.3} µs/msg");
    }
    report.print(&human);
    Ok(())
}

fn cpu(pids: &[u32]) -> anyhow::Result<f64> {
    if pids.is_empty() {
        return Ok(0.0);
    }
    usage::cpu_seconds(pids)
}

/// Keeps one connection's window full: `burst` holds `inflight` copies of the same masked frame
/// of `frame_len` bytes, so refilling k messages is one write of its first k frames.
async fn pump(mut conn: Conn, burst: Vec<u8>, frame_len: usize, echoed: Arc<AtomicU64>) -> anyhow::Result<()> {
    let inflight = burst.len() / frame_len;
    conn.stream.write_all(&burst).await?;
    loop {
        if conn.frames.fill(&mut conn.stream).await? == 0 {
            bail!("server closed the connection");
        }
        let mut done = 0;
        while let Some(frame) = conn.frames.next_frame() {
            if frame.is_close() {
                bail!("server sent a close frame");
            }
            if frame.ends_message() {
                done += 1;
            }
        }
        if done == 0 {
            continue;
        }
        echoed.fetch_add(done as u64, Ordering::Relaxed);
        // Replace exactly what came back. An echo server never returns more than was sent, so
        // this is one write; the loop only guards against a misbehaving server.
        while done > 0 {
            let k = done.min(inflight);
            conn.stream.write_all(&burst[..k * frame_len]).await?;
            done -= k;
        }
    }
}

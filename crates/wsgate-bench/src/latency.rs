//! `latency`: round-trip time at a fixed offered rate (open loop).
//!
//! Message k is due at `start + k / rate` on connection `k mod N`, whatever happened to earlier
//! messages. Its round trip is measured from that due time, not from when it was actually
//! written, so a server that stalls is charged for every message it delayed (no coordinated
//! omission). Echoes on one connection come back in order, so the reader of connection c knows
//! that its j-th echo answers message `c + j·N` and recomputes the due time; no timestamps travel
//! in the payload and every message is the same pre-masked frame.
//!
//! Tokio's timers have 1 ms granularity, far coarser than a loopback round trip, so the pacer
//! sleeps on a [`Timer`] (a timerfd) instead. How late the pacer woke is reported
//! (`mean_send_lag_us`, `max_send_lag_us`): it is part of every round trip measured, the same
//! for every server, and large only when something else shared the load generator's core.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::io::AsyncWriteExt;
use tokio::io::ReadHalf;
use tokio::task::JoinSet;

use crate::client::{self, FrameReader, OP_BINARY, Target};
use crate::timer::Timer;
use crate::{Report, parse_duration, usage};

/// How long after the last due time to wait for outstanding echoes; later ones count as lost.
const GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// ws://HOST:PORT/PATH or wss://… of an echo service (directly or through a proxy).
    #[arg(long)]
    url: String,
    /// Extra upgrade request header, `Name: value` (e.g. an Authorization bearer token);
    /// repeatable.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Offered messages per second, across all connections.
    #[arg(long, default_value_t = 10_000.0)]
    rate: f64,
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Payload bytes per message (binary frames).
    #[arg(long, default_value_t = 64)]
    size: usize,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Messages due in this first stretch are sent but not measured.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
}

/// The schedule shared by the pacer and the readers.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    start: Instant,
    rate: f64,
    connections: u64,
    total: u64,
}

impl Schedule {
    fn due(&self, k: u64) -> Instant {
        self.start + Duration::from_secs_f64(k as f64 / self.rate)
    }

    /// How many of the `total` messages go to connection `c`.
    fn sent_on(&self, c: u64) -> u64 {
        self.total / self.connections + u64::from(c < self.total % self.connections)
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.rate.is_nan() || args.rate <= 0.0 || args.connections == 0 {
        bail!("--rate must be positive and --connections at least 1");
    }
    let target = Arc::new(Target::resolve(&args.url, &args.headers).await?);
    let conns = client::connect_many(&target, args.connections, 64, 16 << 10).await?;
    let payload = client::payload(args.size);

    let schedule = Schedule {
        // A little ahead, so that the first messages are not late because of setup work.
        start: Instant::now() + Duration::from_millis(50),
        rate: args.rate,
        connections: args.connections as u64,
        total: (args.rate * (args.warmup + args.duration).as_secs_f64()) as u64,
    };
    let measure_from = schedule.start + args.warmup;
    let give_up_at = schedule.due(schedule.total) + GRACE;

    let mut writers = Vec::with_capacity(conns.len());
    let mut frames = Vec::with_capacity(conns.len());
    let mut readers = JoinSet::new();
    for (c, conn) in conns.into_iter().enumerate() {
        let (read_half, write_half) = tokio::io::split(conn.stream);
        writers.push(write_half);
        frames.push(client::masked_frame(OP_BINARY, &payload, client::mask_for(c)));
        let mut echoes = Echoes { samples: Vec::with_capacity(schedule.sent_on(c as u64) as usize), received: 0 };
        let reader = conn.frames;
        readers.spawn(async move {
            let read = collect(read_half, reader, c as u64, schedule, measure_from, &mut echoes);
            // Running out of time only means some echoes are lost; they are counted below.
            let outcome = tokio::time::timeout_at(give_up_at.into(), read).await;
            outcome.unwrap_or(Ok(())).map(|()| echoes)
        });
    }

    let wait0 = usage::own_run_queue_wait();
    // The pacer: bounded by the message count; each write is one small frame.
    let mut timer = Timer::new()?;
    let (mut max_lag, mut total_lag) = (Duration::ZERO, Duration::ZERO);
    for k in 0..schedule.total {
        let due = schedule.due(k);
        timer.sleep_until(due).await?;
        let lag = Instant::now().saturating_duration_since(due);
        max_lag = max_lag.max(lag);
        total_lag += lag;
        let c = (k % schedule.connections) as usize;
        writers[c].write_all(&frames[c]).await?;
    }

    let mut samples = Vec::with_capacity(schedule.total as usize);
    let mut received = 0;
    while let Some(joined) = readers.join_next().await {
        let echoes = joined??;
        received += echoes.received;
        samples.extend_from_slice(&echoes.samples);
    }
    drop(writers);
    let waited = usage::own_run_queue_wait().saturating_sub(wait0);
    samples.sort_unstable();

    let lost = schedule.total - received;
    let us = |q: f64| format!("{:.1}", percentile(&samples, q) as f64 / 1e3);
    let mean = samples.iter().sum::<u64>() as f64 / samples.len().max(1) as f64 / 1e3;
    let mut report = Report::new("latency");
    report
        .field("rate", format!("{:.0}", args.rate))
        .field("connections", args.connections)
        .field("size", args.size)
        .field("seconds", format!("{:.3}", args.duration.as_secs_f64()))
        .field("sent", schedule.total)
        .field("received", received)
        .field("lost", lost)
        .field("samples", samples.len())
        .field("p50_us", us(0.50))
        .field("p90_us", us(0.90))
        .field("p99_us", us(0.99))
        .field("p999_us", us(0.999))
        .field("max_us", us(1.0))
        .field("mean_us", format!("{mean:.1}"))
        .field("mean_send_lag_us", format!("{:.1}", total_lag.as_secs_f64() * 1e6 / schedule.total.max(1) as f64))
        .field("max_send_lag_us", max_lag.as_micros())
        .field("wait_ms", format!("{:.1}", waited.as_secs_f64() * 1e3));
    let human = format!(
        "latency {} at {:.0} msg/s: p50 {} µs, p99 {} µs, p99.9 {} µs, lost {lost}",
        args.url,
        args.rate,
        us(0.50),
        us(0.99),
        us(0.999)
    );
    report.print(&human);
    Ok(())
}

/// What one connection's reader saw: round trips in nanoseconds (measured window only) and how
/// many echoes arrived in all.
#[derive(Debug)]
struct Echoes {
    samples: Vec<u64>,
    received: u64,
}

/// Reads echoes on connection `c` until all its messages are back (bounded by count; the caller
/// bounds it by time).
async fn collect(
    mut read_half: ReadHalf<crate::client::Stream>,
    mut reader: FrameReader,
    c: u64,
    schedule: Schedule,
    measure_from: Instant,
    echoes: &mut Echoes,
) -> anyhow::Result<()> {
    let expected = schedule.sent_on(c);
    while echoes.received < expected {
        if reader.fill(&mut read_half).await? == 0 {
            bail!("server closed the connection");
        }
        // One clock reading per read: echoes that arrived together are charged the same time.
        let now = Instant::now();
        while let Some(frame) = reader.next_frame() {
            if frame.is_close() {
                bail!("server sent a close frame");
            }
            if !frame.ends_message() {
                continue;
            }
            let due = schedule.due(c + echoes.received * schedule.connections);
            echoes.received += 1;
            if due >= measure_from {
                echoes.samples.push(now.saturating_duration_since(due).as_nanos() as u64);
            }
        }
    }
    Ok(())
}

/// The value at quantile `q` of sorted `samples` (nearest rank); 0 when empty.
fn percentile(samples: &[u64], q: f64) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    let rank = (q * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&s, 0.5), 500);
        assert_eq!(percentile(&s, 0.99), 990);
        assert_eq!(percentile(&s, 0.999), 999);
        assert_eq!(percentile(&s, 1.0), 1000);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn messages_are_spread_over_connections() {
        let s = Schedule { start: Instant::now(), rate: 10.0, connections: 3, total: 10 };
        assert_eq!((0..3).map(|c| s.sent_on(c)).collect::<Vec<_>>(), [4, 3, 3]);
        assert_eq!(s.due(10) - s.due(0), Duration::from_secs(1));
    }
}

//! `idle`: resident memory a server spends per open, idle connection.
//!
//! Reads the servers' `VmRSS`, opens N upgraded connections, sends one message on each and waits
//! for its echo (so buffers a proxy allocates lazily on first data are counted), holds them idle,
//! reads `VmRSS` again, and reports the difference divided by N.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::AsyncWriteExt;

use crate::client::{self, OP_BINARY, Target};
use crate::{Report, parse_duration, usage};

/// Upgrades in flight while opening connections.
const PARALLEL: usize = 128;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// ws://HOST:PORT/PATH or wss://… of an echo service (directly or through a proxy).
    #[arg(long)]
    url: String,
    /// Extra upgrade request header, `Name: value` (e.g. an Authorization bearer token);
    /// repeatable.
    #[arg(long = "header")]
    headers: Vec<String>,
    #[arg(long, default_value_t = 9000)]
    connections: usize,
    /// How long the connections stay open and idle before the second reading.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    hold: Duration,
    /// A process whose resident memory is measured; repeat to sum several (master and workers).
    #[arg(long = "pid", required = true)]
    pids: Vec<u32>,
    /// Open the connections without exchanging a message on them.
    #[arg(long)]
    no_echo: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let target = Arc::new(Target::resolve(&args.url, &args.headers).await?);
    let before = usage::rss_kib(&args.pids)?;
    let mut conns = client::connect_many(&target, args.connections, PARALLEL, 4096).await?;

    if !args.no_echo {
        // One round trip per connection, in turn, so that buffers allocated on first data
        // count. (Writing on every connection before reading any stalled TLS connections here,
        // against every TLS proxy alike.)
        for (i, conn) in conns.iter_mut().enumerate() {
            let frame = client::masked_frame(OP_BINARY, b"hello", client::mask_for(i));
            conn.stream.write_all(&frame).await?;
            conn.stream.flush().await?;
            // Bounded in time, so a server that swallows the message fails the run.
            tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    match conn.frames.next_frame() {
                        Some(f) if f.ends_message() => return Ok(()),
                        Some(f) if f.is_close() => bail!("server sent a close frame"),
                        Some(_) => continue,
                        None if conn.frames.fill(&mut conn.stream).await? == 0 => {
                            bail!("server closed the connection")
                        }
                        None => continue,
                    }
                }
            })
            .await
            .with_context(|| format!("no echo on connection {i}"))??;
        }
    }

    tokio::time::sleep(args.hold).await;
    let after = usage::rss_kib(&args.pids)?;
    let grown = after.saturating_sub(before) * 1024;
    let per_conn = grown / args.connections as u64;
    let mut report = Report::new("idle");
    report
        .field("connections", args.connections)
        .field("rss_before_kib", before)
        .field("rss_after_kib", after)
        .field("bytes_per_conn", per_conn);
    let human = format!(
        "idle {}: {} connections, RSS {before} KiB -> {after} KiB, {per_conn} B/connection",
        args.url, args.connections
    );
    report.print(&human);
    drop(conns);
    Ok(())
}

//! `wsgate-bench`: a load generator for WebSocket echo services and the proxies in front of them.
//!
//! It runs on one thread (a `current_thread` tokio runtime) so that it can be pinned to one core
//! beside the system under test, and it speaks WebSocket through a small hand-written client so
//! that it stays cheaper per message than any proxy it measures. Each subcommand prints one line
//! of `key=value` pairs on stdout for scripts and one line for people on stderr; every loop is
//! bounded by a count or a deadline, so the tool always exits by itself.
//!
//! Modules, in reading order:
//! - [`client`]: the WebSocket client (upgrade, masked frames, a zero-copy frame reader).
//! - [`throughput`]: closed-loop echo rate with a fixed number of messages in flight.
//! - [`latency`]: round trips at a fixed offered rate, measured from each message's due time.
//! - [`timer`]: a microsecond-precise sleep (timerfd) for the latency pacer.
//! - [`cycles`]: connect, upgrade, echo, close, again.
//! - [`idle`]: resident memory per idle connection of the processes under test.
//! - [`usage`]: CPU time and resident memory read from `/proc`.
//!
//! `scripts/bench` drives these against direct echo, wsgate, nginx, haproxy and Caddy.

mod client;
mod cycles;
mod idle;
mod latency;
mod throughput;
mod timer;
mod usage;

use std::fmt::Display;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(version, about = "Load generator for WebSocket echo services and proxies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Echoed messages per second with a fixed number of messages in flight per connection.
    Throughput(throughput::Args),
    /// Round-trip percentiles at a fixed offered rate.
    Latency(latency::Args),
    /// Connect-upgrade-echo-close cycles per second.
    Cycles(cycles::Args),
    /// Resident memory per idle connection of the given processes.
    Idle(idle::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One thread on purpose: the benchmark pins it to one core and the proxies to another.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Throughput(args) => throughput::run(args).await,
            Command::Latency(args) => latency::run(args).await,
            Command::Cycles(args) => cycles::run(args).await,
            Command::Idle(args) => idle::run(args).await,
        }
    })
}

/// One result line: `mode=NAME key=value ...` on stdout, a sentence on stderr.
#[derive(Debug)]
struct Report {
    line: String,
}

impl Report {
    fn new(mode: &str) -> Report {
        Report { line: format!("mode={mode}") }
    }

    fn field(&mut self, key: &str, value: impl Display) -> &mut Report {
        self.line += &format!(" {key}={value}");
        self
    }

    /// Prints the line, ending with the tool's own CPU time so far (`self_cpu_ms`), which lets
    /// the script tell the CPU used by other processes during the run from ours.
    fn print(&self, human: &str) {
        let own = usage::cpu_seconds(&[std::process::id()]).unwrap_or_default();
        println!("{} self_cpu_ms={:.0}", self.line, own * 1e3);
        eprintln!("{human}");
    }
}

/// Parses `250ms`, `10s`, `2m` or a bare number of seconds (`1.5`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = number.parse().map_err(|_| format!("{s:?} is not a duration like 10s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("fast").is_err());
    }
}

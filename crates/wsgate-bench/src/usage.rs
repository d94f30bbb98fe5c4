//! Resource usage of the processes under test, read from `/proc`.
//!
//! A proxy may be several processes (nginx's master and worker), so every reading sums over the
//! PIDs given. CPU time comes from `/proc/PID/stat`, which already includes all threads. The
//! tool's own scheduler wait tells whether something else ran on its core during a measurement.

use std::fs;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

/// Resident memory in KiB (`VmRSS`), summed over `pids`.
pub fn rss_kib(pids: &[u32]) -> anyhow::Result<u64> {
    let mut total = 0;
    for pid in pids {
        let path = format!("/proc/{pid}/status");
        let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .with_context(|| format!("no VmRSS in {path}"))?;
        total += kib;
    }
    Ok(total)
}

/// User plus system CPU time in seconds, summed over `pids`.
pub fn cpu_seconds(pids: &[u32]) -> anyhow::Result<f64> {
    let mut ticks = 0;
    for pid in pids {
        let path = format!("/proc/{pid}/stat");
        let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        // The command name (field 2) may contain spaces; fields after its closing parenthesis
        // start at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).with_context(|| format!("malformed {path}"))?;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        for i in [11, 12] {
            let value =
                fields.get(i).and_then(|f| f.parse::<u64>().ok()).with_context(|| format!("malformed {path}"))?;
            ticks += value;
        }
    }
    Ok(ticks as f64 / clock_ticks_per_second())
}

/// Time this thread has spent runnable but not running, from `/proc/thread-self/schedstat`
/// (its second field, in nanoseconds); zero where the kernel does not keep scheduler statistics.
///
/// The load generator owns a core, so this should stay near zero. When another process shares
/// the core the tool loses whole time slices, which shows up as latency that belongs to neither
/// proxy; reporting the wait lets the script spot and repeat a contaminated run.
pub fn own_run_queue_wait() -> Duration {
    fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// `sysconf(_SC_CLK_TCK)` without unsafe code: ask `getconf`; Linux uses 100 everywhere else.
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|hz| *hz > 0.0)
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        assert!(rss_kib(&[me]).expect("rss") > 0);
        assert!(cpu_seconds(&[me]).expect("cpu") >= 0.0);
    }
}

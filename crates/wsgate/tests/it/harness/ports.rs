//! Ports for the processes the tests start (nodes, HAProxy, Redis), which must be told a port
//! before they bind it.
//!
//! A port found by binding 0 and letting go comes from the kernel's ephemeral range, which it
//! also draws from for every outgoing connection; a loaded test run makes thousands, and one
//! may take the port between the pick and the process's bind ("address already in use", seen
//! in the cluster tests). These ports come from below that range instead, where only an
//! explicit bind can take them, and this process hands out each one once.

use std::net::TcpListener;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port handed out; the highest is just below the ephemeral range.
const FIRST: u16 = 20_000;

/// Linux's default start of the ephemeral range, when the kernel does not say.
const EPHEMERAL_DEFAULT: u16 = 32_768;

/// A port no socket is bound to now, outside the ephemeral range, not handed out before by
/// this process.
pub fn unused_port() -> u16 {
    // The span is read from the kernel once; test processes of different runs start at
    // different points in it, so they rarely meet.
    static NEXT: OnceLock<(u32, AtomicU32)> = OnceLock::new();
    let (span, next) = NEXT.get_or_init(|| {
        let span = u32::from(ephemeral_start() - FIRST);
        (span, AtomicU32::new(std::process::id().wrapping_mul(7_919) % span))
    });
    let span = *span;
    for _ in 0..span {
        let offset = u16::try_from(next.fetch_add(1, Ordering::Relaxed) % span).expect("below the span");
        let port = FIRST + offset;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no unused port between {FIRST} and the ephemeral range");
}

/// The first port of `net.ipv4.ip_local_port_range`, if it leaves room below for ours.
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .filter(|start| *start > FIRST + 1_000)
        .unwrap_or(EPHEMERAL_DEFAULT)
}

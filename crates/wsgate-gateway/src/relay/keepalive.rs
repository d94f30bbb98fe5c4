//! Keepalive: finds dead peers on quiet connections. A side that has sent nothing for the ping
//! interval gets a ping of the gateway's (through the pump that writes to it, at a frame
//! boundary); its answer is picked out by the scanner of the pump that reads it and never
//! reaches the other side. A side still silent a ping timeout after the ping is taken for dead.
//!
//! Checked at the ticks of the connection's timer, never per frame: a pump only notes that a
//! read brought bytes (any byte counts as a sign of life), and the check reads that note.
//! At most one ping per side waits for its answer, so the scanner knows exactly which pong is
//! the gateway's.

use std::time::Duration;

use tokio::time::Instant;

use super::pump::Pump;

/// One side of a relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Upstream,
}

/// Keepalive state of one connection (boxed with the rest of its timer's state).
#[derive(Debug)]
pub struct Keepalive {
    pub interval: Duration,
    pub timeout: Duration,
    /// The number of the last ping sent, either way (its payload's counter).
    counter: u32,
    client: Watch,
    upstream: Watch,
}

/// What keepalive knows of one side.
#[derive(Debug, Clone, Copy)]
struct Watch {
    /// The tick at which this side was last seen sending (or held back by the gateway).
    heard_at: Instant,
    /// When the ping it owes an answer to went out (meaningful while one is owed).
    pinged_at: Instant,
}

impl Keepalive {
    pub fn new(interval: Duration, timeout: Duration, now: Instant) -> Keepalive {
        let watch = Watch { heard_at: now, pinged_at: now };
        Keepalive { interval, timeout, counter: 0, client: watch, upstream: watch }
    }

    /// Checks both sides at a tick: pings those that went quiet, and returns a side that stayed
    /// silent past the ping timeout, if one did. `to_upstream` reads the client and writes to
    /// the upstream; `to_client` the other way round.
    pub fn check(&mut self, now: Instant, to_upstream: &mut Pump, to_client: &mut Pump) -> Option<Side> {
        let (interval, timeout) = (self.interval, self.timeout);
        if self.client.check(now, to_upstream, to_client, interval, timeout, &mut self.counter) {
            return Some(Side::Client);
        }
        if self.upstream.check(now, to_client, to_upstream, interval, timeout, &mut self.counter) {
            return Some(Side::Upstream);
        }
        None
    }
}

impl Watch {
    /// Checks the side `from` reads and `to` writes to. Returns true when it is dead.
    fn check(
        &mut self,
        now: Instant,
        from: &mut Pump,
        to: &mut Pump,
        interval: Duration,
        timeout: Duration,
        counter: &mut u32,
    ) -> bool {
        if from.take_heard() {
            self.heard_at = now;
        }
        if from.scanner.pong_owed() {
            if to.ping_waits_for_src() {
                // The ping is not out: the other side is in the middle of a frame towards this
                // one. Its time starts when it can be sent.
                self.pinged_at = now;
                return false;
            }
            // Silent since the ping and since its last sign of life: a peer that talks but
            // never answers pings lives as long as it talks.
            let quiet_since = self.heard_at.max(self.pinged_at);
            return now.duration_since(quiet_since) >= timeout;
        }
        if now.duration_since(self.heard_at) >= interval {
            let next = counter.wrapping_add(1);
            if to.queue_ping(next) {
                *counter = next;
                from.scanner.expect_pong(next);
                self.pinged_at = now;
            }
        }
        false
    }
}

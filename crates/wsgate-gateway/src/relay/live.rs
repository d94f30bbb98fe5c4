//! What the rest of the gateway shares with one relayed connection, both ways: signals in (stop
//! with a close code, follow new limits) and counts out (published at the relay's timer tick,
//! for metrics and usage while the connection lives).
//!
//! Signals wake the connection's task through an `AtomicWaker` the relay registers on every
//! poll (two atomic operations, no lock), then set bits the relay reads; nothing here is
//! touched per frame.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::Waker;

use futures_util::task::AtomicWaker;

use super::Metering;
use crate::observe::metrics::Meter;

const STOP: u8 = 1;
const LIMITS: u8 = 2;

#[derive(Debug, Default)]
pub struct Live {
    waker: AtomicWaker,
    /// `STOP` and `LIMITS` bits, set by signals and cleared by the relay that reads them.
    pending: AtomicU8,
    /// The first stop wins.
    stop: OnceLock<(u16, &'static str)>,
    /// Limits to follow from now on, if they changed since the relay last looked.
    limits: Mutex<Option<Metering>>,
    /// Totals at the last tick, readable while the connection lives.
    pub counts: Counts,
    /// The part of the totals already in session records (interim ones, then the last).
    pub recorded: Counts,
    /// Times a direction paused for its budget (a pause, not a frame).
    pub pauses: AtomicU64,
    /// Pauses already counted by `meter`.
    metered_pauses: AtomicU64,
    /// The traffic counters published counts also advance (its API's and plan's).
    meter: Option<Arc<Meter>>,
    /// The limit whose plan closed the connection, if one did (for the throttle metric).
    exceeded: OnceLock<crate::policy::budget::Exceeded>,
}

/// Messages and bytes relayed so far, published at each tick.
#[derive(Debug, Default)]
pub struct Counts {
    pub client_messages: AtomicU64,
    pub client_bytes: AtomicU64,
    pub upstream_messages: AtomicU64,
    pub upstream_bytes: AtomicU64,
}

/// What a relay must act on, from [`Live::take_pending`].
#[derive(Debug, Default)]
pub struct Pending {
    pub stop: Option<(u16, &'static str)>,
    pub limits: Option<Metering>,
}

impl Live {
    pub fn new() -> Arc<Live> {
        Arc::new(Live::default())
    }

    /// A connection whose published counts also advance `meter`'s counters.
    pub fn metered(meter: Option<Arc<Meter>>) -> Arc<Live> {
        Arc::new(Live { meter, ..Live::default() })
    }

    pub(crate) fn note_exceeded(&self, exceeded: crate::policy::budget::Exceeded) {
        let _ = self.exceeded.set(exceeded);
    }

    /// The limit that closed the connection, if one did.
    pub fn exceeded(&self) -> Option<crate::policy::budget::Exceeded> {
        self.exceeded.get().copied()
    }

    pub(crate) fn note_pause(&self) {
        self.pauses.fetch_add(1, Ordering::Relaxed);
    }

    /// Ends the connection with close `code` and `reason` on both sides. The first call wins.
    pub fn stop(&self, code: u16, reason: &'static str) {
        let _ = self.stop.set((code, reason));
        self.raise(STOP);
    }

    /// The close code and reason a stop asked for, if one did.
    pub fn stopped(&self) -> Option<(u16, &'static str)> {
        self.stop.get().copied()
    }

    /// Tells the connection to follow new limits from now on (its plan or its API's changed).
    pub fn follow(&self, limits: Metering) {
        *self.limits.lock().unwrap_or_else(PoisonError::into_inner) = Some(limits);
        self.raise(LIMITS);
    }

    fn raise(&self, bit: u8) {
        self.pending.fetch_or(bit, Ordering::Release);
        self.waker.wake();
    }

    /// Registers the relay's task to be woken by the next signal, then takes what is pending.
    /// Registering first means a signal raised in between is never missed.
    pub(crate) fn poll_pending(&self, waker: &Waker) -> Option<Pending> {
        self.waker.register(waker);
        let bits = self.pending.swap(0, Ordering::Acquire);
        if bits == 0 {
            return None;
        }
        let limits =
            if bits & LIMITS != 0 { self.limits.lock().unwrap_or_else(PoisonError::into_inner).take() } else { None };
        Some(Pending { stop: (bits & STOP != 0).then(|| self.stopped()).flatten(), limits })
    }

    /// Publishes the totals so far (at the relay's tick, and once more at its end), advancing
    /// the meter's counters by what is new: a few atomic adds on handles resolved at the
    /// upgrade, no label lookup.
    pub(crate) fn publish(&self, client_messages: u64, client_bytes: u64, upstream_messages: u64, upstream_bytes: u64) {
        let c = &self.counts;
        let deltas = [
            client_messages.saturating_sub(c.client_messages.swap(client_messages, Ordering::Relaxed)),
            client_bytes.saturating_sub(c.client_bytes.swap(client_bytes, Ordering::Relaxed)),
            upstream_messages.saturating_sub(c.upstream_messages.swap(upstream_messages, Ordering::Relaxed)),
            upstream_bytes.saturating_sub(c.upstream_bytes.swap(upstream_bytes, Ordering::Relaxed)),
        ];
        if let Some(meter) = &self.meter {
            let pauses = self.pauses.load(Ordering::Relaxed);
            let new_pauses = pauses.saturating_sub(self.metered_pauses.swap(pauses, Ordering::Relaxed));
            meter.advance(deltas, new_pauses);
        }
    }
}

//! The gateway's own protection, applied at accept before a byte is read: at most
//! `gateway.max_connections` connections in all, and at most `gateway.max_connections_per_address`
//! from one client address (unauthenticated handshakes count, so one host cannot hold every slot
//! with requests it never finishes). Each accepted connection holds a [`Slot`] until it ends.
//!
//! A refused connection costs almost nothing: on the ws listener the answer (503 or 429 with
//! `Retry-After`) is written without waiting, if the socket takes it at once; on the wss
//! listener the socket is closed without an answer, because answering would cost a TLS
//! handshake for every connection the gateway has no room for.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::rejection::Rejection;

/// Shards of the per-address table: accepts from different addresses rarely share a lock.
const SHARDS: usize = 16;
/// What a refused client is told to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct ConnectionCaps {
    max_total: usize,
    max_per_address: usize,
    total: AtomicUsize,
    by_address: [Mutex<HashMap<IpAddr, usize>>; SHARDS],
    hasher: std::collections::hash_map::RandomState,
}

/// One accepted connection's place under the caps, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    caps: Arc<ConnectionCaps>,
    addr: IpAddr,
}

impl ConnectionCaps {
    /// Caps of 0 are off.
    pub fn new(max_total: usize, max_per_address: usize) -> ConnectionCaps {
        ConnectionCaps {
            max_total,
            max_per_address,
            total: AtomicUsize::new(0),
            by_address: std::array::from_fn(|_| Mutex::default()),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Connections held now.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// A place for a connection from `addr`, or the refusal to answer it with.
    pub fn admit(self: &Arc<Self>, addr: IpAddr) -> Result<Slot, Rejection> {
        let total = self.total.fetch_add(1, Ordering::Relaxed);
        if self.max_total > 0 && total >= self.max_total {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Rejection::GatewayFull { retry_after: RETRY_AFTER });
        }
        if self.max_per_address > 0 {
            let mut shard = self.shard(addr);
            let held = shard.entry(addr).or_insert(0);
            if *held >= self.max_per_address {
                drop(shard);
                self.total.fetch_sub(1, Ordering::Relaxed);
                return Err(Rejection::TooManyFromAddress { retry_after: RETRY_AFTER });
            }
            *held += 1;
        }
        Ok(Slot { caps: self.clone(), addr })
    }

    fn shard(&self, addr: IpAddr) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        let index = self.hasher.hash_one(addr) as usize % SHARDS;
        self.by_address[index].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let caps = &self.caps;
        if caps.max_per_address > 0 {
            let mut shard = caps.shard(self.addr);
            if let Some(held) = shard.get_mut(&self.addr) {
                *held -= 1;
                if *held == 0 {
                    shard.remove(&self.addr);
                }
            }
        }
        caps.total.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_slots_come_back() {
        let caps = Arc::new(ConnectionCaps::new(3, 2));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = caps.admit(a).expect("room");
        let _second = caps.admit(a).expect("room");
        assert!(matches!(caps.admit(a), Err(Rejection::TooManyFromAddress { .. })));
        let _third = caps.admit(b).expect("another address has room");
        assert!(matches!(caps.admit(b), Err(Rejection::GatewayFull { .. })));
        assert_eq!(caps.total(), 3, "refusals hold nothing");
        drop(first);
        assert_eq!(caps.total(), 2);
        let _again = caps.admit(a).expect("a slot came back");
        let unlimited = Arc::new(ConnectionCaps::new(0, 0));
        let slots: Vec<Slot> = (0..100).map(|_| unlimited.admit(a).expect("no caps")).collect();
        assert_eq!(unlimited.total(), slots.len());
    }
}

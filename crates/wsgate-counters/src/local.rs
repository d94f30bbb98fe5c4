//! The in-process counters: tables of connection slots, pools and new-connection buckets behind
//! short mutexes (taken at handshakes and when a connection's chunk runs out, never per frame).
//! The Redis backend keeps the same tables as its fallback and for this node's own counts.
//!
//! Entries are forgotten when forgetting them changes nothing: a slot count at zero, a bucket
//! that is full again and that no connection holds. So a client that closes and reconnects
//! finds its bucket as it left it, and a flood of one-off client addresses does not pile up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use wsgate_core::limits::Rate;

use crate::bucket::TokenBucket;
use crate::pool::{Lender, Pool};
use crate::{Counters, Health, Refusal, Slot, SlotOwner};

/// How often forgettable entries are swept away.
const PRUNE_EVERY: Duration = Duration::from_secs(10);
/// A client refused by a concurrent-connection cap cannot know when a place frees up; this is
/// the hint it gets.
pub(crate) const FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The counters of one node.
#[derive(Debug, Clone)]
pub struct LocalCounters {
    tables: Arc<Tables>,
}

impl LocalCounters {
    pub fn new() -> LocalCounters {
        LocalCounters { tables: Tables::new(None) }
    }
}

impl Default for LocalCounters {
    fn default() -> Self {
        LocalCounters::new()
    }
}

#[derive(Debug)]
pub(crate) struct Tables {
    lender: Option<Arc<dyn Lender>>,
    slots: Mutex<HashMap<String, u32>>,
    pools: Mutex<HashMap<String, Arc<Pool>>>,
    rates: Mutex<HashMap<String, TokenBucket>>,
    next_member: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tables {
    /// New tables whose pools lease from `lender` when it is given (the Redis backend), with a
    /// sweeper that lives as long as the tables do.
    pub(crate) fn new(lender: Option<Arc<dyn Lender>>) -> Arc<Tables> {
        let tables = Arc::new(Tables {
            lender,
            slots: Mutex::default(),
            pools: Mutex::default(),
            rates: Mutex::default(),
            next_member: AtomicU64::new(1),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&tables);
            runtime.spawn(prune_while_alive(weak));
        }
        tables
    }

    pub(crate) fn next_member(&self) -> u64 {
        self.next_member.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes a slot if fewer than `cap` are held on this node.
    pub(crate) fn try_slot(&self, key: &str, cap: u32) -> bool {
        let mut slots = lock(&self.slots);
        let held = slots.entry(key.to_string()).or_insert(0);
        if *held >= cap {
            return false;
        }
        *held += 1;
        true
    }

    /// Counts a slot another authority (Redis) granted, so this node's own count stays whole
    /// for the day it has to decide alone.
    pub(crate) fn add_slot(&self, key: &str) {
        *lock(&self.slots).entry(key.to_string()).or_insert(0) += 1;
    }

    pub(crate) fn release_slot(&self, key: &str) {
        let mut slots = lock(&self.slots);
        if let Some(held) = slots.get_mut(key) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                slots.remove(key);
            }
        }
    }

    pub(crate) fn slots(&self, key: &str) -> u64 {
        lock(&self.slots).get(key).copied().map_or(0, u64::from)
    }

    pub(crate) fn pool(&self, key: &str, rate: Rate) -> Arc<Pool> {
        let mut pools = lock(&self.pools);
        match pools.get(key) {
            Some(pool) if pool.rate() == rate => pool.clone(),
            Some(pool) => {
                let replaced = Arc::new(pool.with_rate(rate));
                pools.insert(key.to_string(), replaced.clone());
                replaced
            }
            None => {
                let pool = Arc::new(Pool::new(key.to_string(), rate, self.lender.clone()));
                pools.insert(key.to_string(), pool.clone());
                pool
            }
        }
    }

    /// Every pool, for the Redis backend's reclaiming of idle leases.
    pub(crate) fn pools(&self) -> Vec<Arc<Pool>> {
        lock(&self.pools).values().cloned().collect()
    }

    /// Counts one new connection; `Err(wait)` when the rate is used up.
    pub(crate) fn take_rate(&self, key: &str, rate: Rate) -> Result<(), Duration> {
        let now = Instant::now();
        let mut rates = lock(&self.rates);
        let bucket = rates.entry(key.to_string()).or_insert_with(|| TokenBucket::full(rate, now));
        if bucket.capacity() != rate.amount {
            *bucket = bucket.with_rate(rate, now);
        }
        match bucket.take(1, now) {
            1 => Ok(()),
            _ => Err(bucket.wait_for(1, now)),
        }
    }

    /// Tokens left now for `key` under `rate`, whether it is a pool (messages, bytes) or a
    /// new-connection bucket; a full bucket when nothing was counted yet.
    pub(crate) fn tokens_left(&self, key: &str, rate: Rate) -> u64 {
        if let Some(pool) = lock(&self.pools).get(key).filter(|pool| pool.rate() == rate) {
            return pool.local_tokens();
        }
        let now = Instant::now();
        match lock(&self.rates).get(key) {
            Some(bucket) => bucket.available(now).floor().max(0.0) as u64,
            None => rate.amount,
        }
    }

    fn prune(&self) {
        let now = Instant::now();
        lock(&self.pools).retain(|_, pool| !pool.is_forgettable());
        lock(&self.rates).retain(|_, bucket| !bucket.is_full(now));
    }
}

impl SlotOwner for Tables {
    fn release(&self, key: &str, _member: u64) {
        self.release_slot(key);
    }
}

async fn prune_while_alive(tables: Weak<Tables>) {
    loop {
        tokio::time::sleep(PRUNE_EVERY).await;
        match tables.upgrade() {
            Some(tables) => tables.prune(),
            None => return,
        }
    }
}

#[async_trait]
impl Counters for LocalCounters {
    async fn acquire_slot(&self, key: &str, cap: u32) -> Result<Slot, Refusal> {
        if !self.tables.try_slot(key, cap) {
            return Err(Refusal::Full { retry_after: FULL_RETRY_AFTER });
        }
        Ok(Slot {
            key: key.to_string(),
            member: self.tables.next_member(),
            owner: Arc::downgrade(&self.tables) as Weak<dyn SlotOwner>,
        })
    }

    async fn take_connection(&self, key: &str, rate: Rate) -> Result<(), Refusal> {
        self.tables.take_rate(key, rate).map_err(|retry_after| Refusal::TooFast { retry_after })
    }

    fn pool(&self, key: &str, rate: Rate) -> Arc<Pool> {
        self.tables.pool(key, rate)
    }

    async fn open_slots(&self, key: &str) -> u64 {
        self.tables.slots(key)
    }

    async fn tokens_left(&self, key: &str, rate: Rate) -> u64 {
        self.tables.tokens_left(key, rate)
    }

    fn health(&self) -> Health {
        Health::InProcess
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsgate_core::limits::Period;

    #[tokio::test]
    async fn slots_are_capped_and_freed_by_dropping_them() {
        let counters = LocalCounters::new();
        let first = counters.acquire_slot("sub:1", 2).await.expect("first");
        let _second = counters.acquire_slot("sub:1", 2).await.expect("second");
        assert!(matches!(counters.acquire_slot("sub:1", 2).await, Err(Refusal::Full { .. })));
        assert!(counters.acquire_slot("sub:2", 2).await.is_ok(), "other keys are apart");
        assert_eq!(counters.open_slots("sub:1").await, 2);
        drop(first);
        assert_eq!(counters.open_slots("sub:1").await, 1);
        assert!(counters.acquire_slot("sub:1", 2).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn new_connections_follow_their_rate_and_buckets_outlive_connections() {
        let counters = LocalCounters::new();
        let rate = Rate::new(2, Period::Second);
        assert!(counters.take_connection("k", rate).await.is_ok());
        assert_eq!(counters.tokens_left("k", rate).await, 1, "usage reads new-connection buckets too");
        assert!(counters.take_connection("k", rate).await.is_ok());
        match counters.take_connection("k", rate).await {
            Err(Refusal::TooFast { retry_after }) => assert_eq!(retry_after, Duration::from_millis(500)),
            other => panic!("{other:?}"),
        }
        let pool = counters.pool("m", Rate::new(10, Period::Minute));
        assert_eq!(pool.take(1, 10).granted, 10);
        drop(pool);
        counters.tables.prune();
        let again = counters.pool("m", Rate::new(10, Period::Minute));
        assert_eq!(again.take(1, 10).granted, 0, "reconnecting does not refill a spent bucket");
        let looser = counters.pool("m", Rate::new(20, Period::Minute));
        assert!(!Arc::ptr_eq(&again, &looser), "a new rate makes a new pool");
        assert_eq!(looser.take(1, 20).granted, 0, "what was spent stays spent");
    }
}

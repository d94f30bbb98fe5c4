//! A node's pool of tokens for one message or byte rate (one subscription's messages, one API's
//! bytes…), shared by every connection on this node that counts against it.
//!
//! Connections take tokens in chunks (see [`Pool::chunk`]), never one per frame, and give back
//! what they did not use when they close. Where the tokens come from depends on the counters:
//! - in-process: the pool is the token bucket itself, refilled by the clock;
//! - Redis: the pool holds tokens leased from the shared bucket in batches; when it runs low it
//!   asks for the next batch in the background, so no connection ever waits on Redis. While
//!   Redis is down the pool falls back to a bucket of its own (fail-open).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use wsgate_core::limits::Rate;

use crate::bucket::TokenBucket;

/// Where a pool's tokens come from when they are not its own bucket's: the Redis counters.
pub(crate) trait Lender: Send + Sync + std::fmt::Debug {
    /// Whether the shared counters answer now.
    fn is_up(&self) -> bool;
    /// Asks, in the background, for `want` tokens for `pool`; the answer arrives through
    /// [`Pool::credit`].
    fn lend(&self, pool: Arc<Pool>, want: u64);
}

/// How long a connection waits before asking again when the shared counters have not answered
/// yet: a poll, not a promise.
const LEASE_POLL: Duration = Duration::from_millis(20);

/// What a [`Pool::take`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    pub granted: u64,
    /// When fewer than the needed tokens were granted: how long until asking again makes sense.
    pub retry_in: Option<Duration>,
}

#[derive(Debug)]
pub struct Pool {
    key: String,
    rate: Rate,
    lender: Option<Arc<dyn Lender>>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The truth in-process; the fallback while Redis is down.
    bucket: TokenBucket,
    /// Tokens leased from Redis not handed out yet.
    leased: u64,
    /// A lease request is on its way.
    fetching: bool,
    /// Redis said the shared bucket is empty: do not ask again before this.
    dry_until: Option<Instant>,
    last_take: Instant,
}

impl Pool {
    pub(crate) fn new(key: String, rate: Rate, lender: Option<Arc<dyn Lender>>) -> Pool {
        let now = Instant::now();
        let state =
            State { bucket: TokenBucket::full(rate, now), leased: 0, fetching: false, dry_until: None, last_take: now };
        Pool { key, rate, lender, state: Mutex::new(state) }
    }

    /// The same pool under a new rate, keeping what was spent.
    pub(crate) fn with_rate(&self, rate: Rate) -> Pool {
        let now = Instant::now();
        let state = self.lock();
        let next = State {
            bucket: state.bucket.with_rate(rate, now),
            leased: state.leased,
            fetching: false,
            dry_until: None,
            last_take: state.last_take,
        };
        Pool { key: self.key.clone(), rate, lender: self.lender.clone(), state: Mutex::new(next) }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// How many tokens a connection takes at once: about 1/20 of a second's worth, at least one.
    /// Small enough that a connection holds little of a tight limit, large enough that a busy
    /// connection comes back to the pool at most a few dozen times a second.
    pub fn chunk(&self) -> u64 {
        ((self.rate.per_second() / 20.0) as u64).clamp(1, self.rate.amount)
    }

    /// How many tokens one lease from Redis asks for: four chunks.
    fn batch(&self) -> u64 {
        (self.chunk() * 4).min(self.rate.amount)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes up to `want` tokens; `need` (≤ `want`) is how many the caller cannot go on without,
    /// and decides `retry_in`.
    pub fn take(self: &Arc<Self>, need: u64, want: u64) -> Take {
        let now = Instant::now();
        let mut state = self.lock();
        state.last_take = now;
        let lender = self.lender.as_ref().filter(|lender| lender.is_up());
        let Some(lender) = lender else {
            let granted = state.bucket.take(want, now);
            let retry_in = (granted < need).then(|| state.bucket.wait_for(need - granted, now));
            return Take { granted, retry_in };
        };
        // One connection takes at most 1/32 of what is leased (or what it needs): a hundred
        // connections starting together share one lease, instead of the first four draining it
        // in chunks sized for the whole rate while the rest wait for Redis, lease after lease.
        let share = (state.leased / 32).max(need);
        let granted = want.min(share).min(state.leased);
        state.leased -= granted;
        let dry = state.dry_until.is_some_and(|until| until > now);
        let fetch = !state.fetching && !dry && state.leased < self.batch() / 2 + 1;
        if fetch {
            state.fetching = true;
        }
        let retry_in = (granted < need).then(|| match state.dry_until {
            Some(until) if until > now => until - now,
            _ => LEASE_POLL,
        });
        drop(state);
        if fetch {
            lender.lend(self.clone(), self.batch());
        }
        Take { granted, retry_in }
    }

    /// Puts back tokens a connection took and did not use (it closed, or its limits changed).
    pub fn give_back(&self, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let now = Instant::now();
        let mut state = self.lock();
        match self.lender.as_ref().filter(|lender| lender.is_up()) {
            Some(_) => state.leased += tokens,
            None => state.bucket.give_back(tokens, now),
        }
    }

    /// The answer to a lease request: `granted` tokens, and when the shared bucket will have
    /// more if it had none.
    pub(crate) fn credit(&self, granted: u64, dry_for: Option<Duration>) {
        let mut state = self.lock();
        state.leased += granted;
        state.fetching = false;
        state.dry_until = dry_for.map(|wait| Instant::now() + wait);
    }

    /// A lease request failed (Redis went away): the next take falls back or asks again.
    pub(crate) fn lease_failed(&self) {
        self.lock().fetching = false;
    }

    /// Leased tokens nobody took for `idle`, taken out to be returned to Redis.
    pub(crate) fn reclaim(&self, idle: Duration) -> u64 {
        let mut state = self.lock();
        if state.fetching || state.last_take.elapsed() < idle {
            return 0;
        }
        std::mem::take(&mut state.leased)
    }

    /// Whether the pool can be forgotten: nobody uses it and forgetting it gives nobody tokens
    /// back (its bucket is full and it holds no lease).
    pub(crate) fn is_forgettable(self: &Arc<Self>) -> bool {
        let state = self.lock();
        Arc::strong_count(self) == 1 && state.leased == 0 && !state.fetching && state.bucket.is_full(Instant::now())
    }

    /// Tokens this node could hand out now without asking anyone (its own bucket in-process).
    pub(crate) fn local_tokens(&self) -> u64 {
        self.lock().bucket.available(Instant::now()).floor().max(0.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsgate_core::limits::Period;

    #[tokio::test(start_paused = true)]
    async fn an_in_process_pool_is_its_bucket() {
        let pool = Arc::new(Pool::new("k".into(), Rate::new(50, Period::Second), None));
        assert_eq!(pool.chunk(), 2);
        assert_eq!(pool.take(1, 40), Take { granted: 40, retry_in: None });
        assert_eq!(pool.take(20, 20), Take { granted: 10, retry_in: Some(Duration::from_millis(200)) });
        pool.give_back(5);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(pool.take(1, 100).granted, 10);
    }
}

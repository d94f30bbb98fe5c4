//! The counters behind wsgate's limits: how many connections a subscription holds open, how
//! many it opened lately, and the tokens its messages and bytes spend. One node keeps them in
//! process; several nodes share them through Redis, so a limit holds across all of them.
//!
//! Modules, in reading order:
//! - this file: the [`Counters`] trait (the one seam between the gateway and either backend),
//!   [`Slot`], [`Refusal`], and [`open`], which picks the backend from the `[cluster]` section.
//! - [`keys`]: the names of counters, one rule for the gateway (which counts) and the control
//!   plane (which shows usage).
//! - [`bucket`]: the token bucket every rate is counted with.
//! - [`pool`]: a node's pool of tokens for one rate, which connections take from in chunks.
//! - `local`: the in-process backend.
//! - `redis`: the Redis backend (leases in batches, connection slots with a heartbeat, and the
//!   in-process backend as the fallback while Redis is down).
//!
//! Backends treat keys as opaque (see [`keys`] for how they are named); the Redis backend
//! prefixes them with `[cluster] redis_prefix`.
//! Nothing here is called per frame: connections take tokens in chunks (see [`Pool::chunk`]).

pub mod bucket;
pub mod keys;
pub mod pool;
mod local;
mod redis;

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use wsgate_core::config::ClusterSettings;
use wsgate_core::limits::Rate;

pub use local::LocalCounters;
pub use pool::{Pool, Take};
pub use redis::RedisCounters;

/// Why a connection may not open now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The concurrent-connection cap is reached.
    #[error("too many connections at once")]
    Full { retry_after: Duration },
    /// The new-connection rate is used up.
    #[error("too many new connections")]
    TooFast { retry_after: Duration },
    /// The shared counters cannot be reached and the configured mode is fail-closed.
    #[error("the shared counters are unavailable")]
    Unavailable { retry_after: Duration },
}

/// What the counters can say about their own health (for logs, metrics and readiness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// In-process counters: nothing to reach.
    InProcess,
    /// Redis answers.
    Shared,
    /// Redis does not answer; limits are this node's own until it does.
    SharedUnreachable,
}

/// The counters of limits. Implemented in process ([`LocalCounters`]) and over Redis
/// ([`RedisCounters`]); the gateway holds an `Arc<dyn Counters>` from [`open`].
#[async_trait]
pub trait Counters: Send + Sync + std::fmt::Debug {
    /// Called at the handshake of a connection whose limits cap concurrent connections: takes
    /// one of the `cap` slots of `key`, held until the returned [`Slot`] is dropped.
    async fn acquire_slot(&self, key: &str, cap: u32) -> Result<Slot, Refusal>;

    /// Called at the handshake of a connection whose limits cap new connections per period:
    /// counts one against `rate`.
    async fn take_connection(&self, key: &str, rate: Rate) -> Result<(), Refusal>;

    /// Called when a connection's limits are resolved (at its upgrade, and again when they
    /// change): the pool of tokens this node spends for `key` under `rate`. A pool whose rate
    /// changed is replaced; connections holding the old one keep it until they are told.
    fn pool(&self, key: &str, rate: Rate) -> Arc<Pool>;

    /// Called by the control plane to show usage: connections holding a slot of `key`.
    async fn open_slots(&self, key: &str) -> u64;

    /// Called by the control plane to show usage: tokens left for `key` under `rate` now.
    async fn tokens_left(&self, key: &str, rate: Rate) -> u64;

    fn health(&self) -> Health;
}

/// One connection's place under a concurrent-connection cap; dropping it frees the place.
pub struct Slot {
    key: String,
    member: u64,
    /// Weak: counters that are gone have nothing to free.
    owner: Weak<dyn SlotOwner>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("key", &self.key).field("member", &self.member).finish()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.upgrade() {
            owner.release(&self.key, self.member);
        }
    }
}

/// What gives slots out takes them back.
trait SlotOwner: Send + Sync {
    fn release(&self, key: &str, member: u64);
}

/// Why the counters could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CountersError {
    #[error("cluster.redis_url: {0}")]
    InvalidRedisUrl(String),
}

/// The counters `[cluster]` asks for: in process without `redis_url`, Redis with it. Redis need
/// not answer yet: until it does, the configured failure mode applies.
pub fn open(settings: &ClusterSettings) -> Result<Arc<dyn Counters>, CountersError> {
    match &settings.redis_url {
        None => Ok(Arc::new(LocalCounters::new())),
        Some(url) => Ok(Arc::new(RedisCounters::connect(url, settings)?)),
    }
}

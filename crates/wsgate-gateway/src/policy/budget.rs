//! One direction's budget of messages and bytes, consulted by the frame scanner at every data
//! frame header. This is the metering seam on the hot path, so it is two comparisons and two
//! additions per frame: the budget spends a local allowance, and only when that runs out does
//! it settle with the node's pools (a short lock per chunk of tokens, never per frame).
//!
//! A message is counted at its first frame (a fragmented message counts once); bytes are the
//! payload of every data frame. A frame passes when there is at least one token left, so a big
//! frame can leave a debt that later frames wait out: over time the rate holds exactly.
//! What happens when a budget is spent is the limit's: wait (throttle) or close.

use std::sync::Arc;

use tokio::time::Instant;
use wsgate_core::limits::{OnExceed, Rate};
use wsgate_counters::Counters;
use wsgate_counters::keys::Counted;
use wsgate_counters::pool::Pool;

use super::limits::ConnLimits;

/// What the scanner does with a data frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it (it has been counted).
    Go,
    /// Stop before it until [`Budget::resume_at`]; it has not been counted.
    Wait,
    /// Close the connection: a limit whose plan says `close` is spent.
    Exceeded(Exceeded),
}

/// Which limit a connection exceeded, for the close reason (`subscription message limit
/// exceeded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    pub party: &'static str,
    pub bytes: bool,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.bytes { "byte" } else { "message" };
        write!(f, "{} {what} limit exceeded", self.party)
    }
}

/// Tokens held from one pool.
#[derive(Debug)]
struct Credit {
    pool: Arc<Pool>,
    /// Tokens taken from the pool and not spent yet; negative is a debt (bytes only).
    left: i64,
    on_exceed: OnExceed,
    party: &'static str,
}

/// The credits of one kind (messages or bytes) and the local allowance spent against them.
#[derive(Debug, Default)]
struct Meter {
    credits: Vec<Credit>,
    /// What may be spent before settling: the least any credit holds.
    allowance: u64,
    spent: u64,
}

impl Meter {
    /// Applies what was spent to every credit.
    fn settle(&mut self) {
        let spent = std::mem::take(&mut self.spent) as i64;
        for credit in &mut self.credits {
            credit.left -= spent;
        }
        self.allowance = 0;
    }

    /// Settles, then refills every credit that is out of tokens from its pool. `Go` when every
    /// credit has at least one token again.
    fn refill(&mut self, bytes: bool, resume_at: &mut Option<Instant>) -> Verdict {
        self.settle();
        let mut wait = None;
        for credit in &mut self.credits {
            if credit.left > 0 {
                continue;
            }
            let need = (1 - credit.left) as u64;
            let take = credit.pool.take(need, need + credit.pool.chunk());
            credit.left += take.granted as i64;
            if credit.left <= 0 {
                if credit.on_exceed == OnExceed::Close {
                    return Verdict::Exceeded(Exceeded { party: credit.party, bytes });
                }
                let retry = take.retry_in.unwrap_or_default();
                wait = Some(wait.map_or(retry, |w: std::time::Duration| w.max(retry)));
            }
        }
        if let Some(wait) = wait {
            *resume_at = Some(Instant::now() + wait);
            return Verdict::Wait;
        }
        self.allowance = self.credits.iter().map(|c| c.left.max(0) as u64).min().unwrap_or(u64::MAX);
        Verdict::Go
    }

    /// Gives back unspent tokens (the connection closes or its limits changed).
    fn give_back(&mut self) {
        self.settle();
        for credit in &mut self.credits {
            if credit.left > 0 {
                credit.pool.give_back(credit.left as u64);
                credit.left = 0;
            }
        }
    }
}

/// What one direction of a connection may still send.
#[derive(Debug)]
pub struct Budget {
    messages: Meter,
    bytes: Meter,
    /// When a waiting direction should try again.
    pub resume_at: Option<Instant>,
}

impl Budget {
    /// The budget of one direction (`from_client`) under `limits`, or `None` when nothing
    /// limits that direction's traffic.
    pub fn new(limits: &ConnLimits, from_client: bool, counters: &dyn Counters) -> Option<Box<Budget>> {
        let mut budget = Budget { messages: Meter::default(), bytes: Meter::default(), resume_at: None };
        for applied in limits.applied.iter().filter(|a| a.limits.count.counts(from_client)) {
            let credit = |counted: Counted, rate: Rate| Credit {
                pool: counters.pool(&applied.party.key(counted), rate),
                left: 0,
                on_exceed: applied.limits.on_exceed,
                party: applied.party.scope().noun(),
            };
            if let Some(rate) = applied.limits.messages {
                budget.messages.credits.push(credit(Counted::Messages, rate));
            }
            if let Some(rate) = applied.limits.bytes {
                budget.bytes.credits.push(credit(Counted::Bytes, rate));
            }
        }
        if budget.messages.credits.is_empty() && budget.bytes.credits.is_empty() {
            return None;
        }
        // Meters without credits never run out.
        for meter in [&mut budget.messages, &mut budget.bytes] {
            if meter.credits.is_empty() {
                meter.allowance = u64::MAX;
            }
        }
        Some(Box::new(budget))
    }

    /// Called by the scanner at each data frame header: `starts_message` for the first frame of
    /// a message, `payload` its payload length.
    #[inline]
    pub fn admit(&mut self, starts_message: bool, payload: u64) -> Verdict {
        if starts_message && self.messages.spent >= self.messages.allowance {
            let verdict = self.messages.refill(false, &mut self.resume_at);
            if verdict != Verdict::Go {
                return verdict;
            }
        }
        if payload > 0 && self.bytes.spent >= self.bytes.allowance {
            let verdict = self.bytes.refill(true, &mut self.resume_at);
            if verdict != Verdict::Go {
                return verdict;
            }
        }
        self.messages.spent += u64::from(starts_message);
        self.bytes.spent = self.bytes.spent.saturating_add(payload);
        Verdict::Go
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        self.messages.give_back();
        self.bytes.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::limits::{Applied, Party};
    use wsgate_core::limits::{Direction, Limits, Period};
    use wsgate_counters::LocalCounters;

    fn limits(limits: Limits) -> ConnLimits {
        let applied =
            Applied { party: Party::Subscription("s".into()), plan: Some("P".into()), limits: Arc::new(limits) };
        ConnLimits { applied: vec![applied] }
    }

    #[tokio::test(start_paused = true)]
    async fn messages_pass_until_the_rate_is_spent_then_wait() {
        let counters = LocalCounters::new();
        let limits = limits(Limits { messages: Some(Rate::new(10, Period::Second)), ..Limits::default() });
        let mut budget = Budget::new(&limits, true, &counters).expect("metered");
        for _ in 0..10 {
            assert_eq!(budget.admit(true, 5), Verdict::Go);
            // Continuation frames are not new messages.
            assert_eq!(budget.admit(false, 5), Verdict::Go);
        }
        assert_eq!(budget.admit(true, 5), Verdict::Wait);
        let wait = budget.resume_at.expect("when to resume") - Instant::now();
        assert_eq!(wait, std::time::Duration::from_millis(100));
        tokio::time::advance(wait).await;
        assert_eq!(budget.admit(true, 5), Verdict::Go);
    }

    #[tokio::test(start_paused = true)]
    async fn a_close_plan_closes_and_directions_count_as_told() {
        let counters = LocalCounters::new();
        let close = Limits {
            bytes: Some(Rate::new(100, Period::Minute)),
            count: Direction::In,
            on_exceed: OnExceed::Close,
            ..Limits::default()
        };
        let limits = limits(close);
        assert!(Budget::new(&limits, false, &counters).is_none(), "only traffic from the client counts");
        let mut budget = Budget::new(&limits, true, &counters).expect("metered");
        // A frame passes while a token is left, leaving a debt.
        assert_eq!(budget.admit(true, 150), Verdict::Go);
        assert_eq!(budget.admit(true, 1), Verdict::Exceeded(Exceeded { party: "subscription", bytes: true }));
    }

    #[tokio::test(start_paused = true)]
    async fn unspent_tokens_go_back_when_the_budget_is_dropped() {
        let counters = LocalCounters::new();
        let limits = limits(Limits { messages: Some(Rate::new(100, Period::Minute)), ..Limits::default() });
        let mut budget = Budget::new(&limits, true, &counters).expect("metered");
        assert_eq!(budget.admit(true, 0), Verdict::Go);
        drop(budget);
        let pool = counters.pool("sub:s:msg", Rate::new(100, Period::Minute));
        assert_eq!(pool.take(1, 1000).granted, 99, "one spent, the rest returned");
    }
}

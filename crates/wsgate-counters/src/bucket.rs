//! The token bucket every rate is counted with: it holds at most `amount` tokens and refills
//! evenly over the rate's period, so a burst of `amount` passes at once and then the rate holds.
//! Pure arithmetic on a clock reading the caller passes in, so tests need no waiting.

use std::time::Duration;

use tokio::time::Instant;
use wsgate_core::limits::Rate;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket for `rate`.
    pub fn full(rate: Rate, now: Instant) -> TokenBucket {
        let capacity = rate.amount as f64;
        TokenBucket { capacity, per_second: rate.per_second(), tokens: capacity, at: now }
    }

    /// The same bucket under a new rate: what was spent stays spent, capped at the new size.
    pub fn with_rate(&self, rate: Rate, now: Instant) -> TokenBucket {
        let mut next = TokenBucket::full(rate, now);
        next.tokens = self.available(now).min(next.capacity);
        next
    }

    /// Tokens available at `now` (fractions included).
    pub fn available(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * self.per_second).min(self.capacity)
    }

    fn refill(&mut self, now: Instant) {
        self.tokens = self.available(now);
        self.at = self.at.max(now);
    }

    /// Takes up to `want` whole tokens and returns how many it took.
    pub fn take(&mut self, want: u64, now: Instant) -> u64 {
        self.refill(now);
        let granted = (self.tokens.floor().max(0.0) as u64).min(want);
        self.tokens -= granted as f64;
        granted
    }

    /// Puts back tokens taken but not used.
    pub fn give_back(&mut self, tokens: u64, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens + tokens as f64).min(self.capacity);
    }

    /// How long until `want` whole tokens are available (capped at a full bucket).
    pub fn wait_for(&self, want: u64, now: Instant) -> Duration {
        let missing = (want as f64).min(self.capacity) - self.available(now);
        if missing <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(missing / self.per_second)
    }

    /// Whether the bucket is full at `now`: it can be forgotten without anyone gaining from it.
    pub fn is_full(&self, now: Instant) -> bool {
        self.available(now) >= self.capacity
    }

    pub fn capacity(&self) -> u64 {
        self.capacity as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsgate_core::limits::Period;

    #[test]
    fn a_burst_of_the_amount_passes_then_the_rate_holds() {
        let start = Instant::now();
        let mut bucket = TokenBucket::full(Rate::new(50, Period::Second), start);
        assert_eq!(bucket.take(80, start), 50);
        assert_eq!(bucket.take(1, start), 0);
        assert_eq!(bucket.wait_for(5, start), Duration::from_millis(100));
        assert_eq!(bucket.take(10, start + Duration::from_millis(100)), 5);
        // A long pause never fills the bucket beyond its size.
        assert_eq!(bucket.take(1000, start + Duration::from_secs(60)), 50);
    }

    #[test]
    fn returned_tokens_are_capped_and_a_new_rate_keeps_what_was_spent() {
        let start = Instant::now();
        let mut bucket = TokenBucket::full(Rate::new(10, Period::Minute), start);
        assert_eq!(bucket.take(8, start), 8);
        bucket.give_back(100, start);
        assert!(bucket.is_full(start));
        assert_eq!(bucket.take(8, start), 8);
        let tighter = bucket.with_rate(Rate::new(5, Period::Minute), start);
        assert_eq!(tighter.available(start).floor() as u64, 2);
        let looser = bucket.with_rate(Rate::new(100, Period::Minute), start);
        assert_eq!(looser.available(start).floor() as u64, 2);
        assert_eq!(looser.capacity(), 100);
    }
}

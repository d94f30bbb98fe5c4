//! One endpoint's circuit breaker, as a state machine over the outcomes of connection attempts.
//! Time is an argument, so the rules are tested without sleeping; the caller holds it behind a
//! mutex that is taken once per attempt, never per frame.
//!
//! Closed, it counts failures: `consecutive_failures` in a row, or `failure_percent` of at least
//! `min_attempts` attempts within one `window`, open it. Open, it refuses attempts until its
//! cool-down ends; then one attempt is let through as a trial (half-open) while the others are
//! still refused. A trial that succeeds closes the breaker and resets the cool-down; one that
//! fails opens it again for the cool-down times `progression_factor`, up to `max_cool_down`.
//! A trial whose caller gave up without an outcome (the client went away) frees the trial slot.

use std::time::{Duration, Instant};

use wsgate_core::upstream::BreakerSettings;

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Closed,
    /// Refusing attempts until `until`.
    Open {
        until: Instant,
    },
    /// Letting one trial through; `trial` says whether it is under way.
    HalfOpen {
        trial: bool,
    },
}

/// What the breaker says to an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Pass,
    /// Go ahead as the one trial: report its outcome (or [`Breaker::abandon`] it).
    Trial,
    /// Not now: the endpoint may be tried again after this long.
    Refuse(Duration),
}

/// A change of phase, for the log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened { cool_down: Duration },
    HalfOpened,
    Closed,
}

#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    phase: Phase,
    /// The cool-down the next opening gets (grows while trials fail).
    cool_down: Duration,
    consecutive: u32,
    window_start: Instant,
    window_attempts: u32,
    window_failures: u32,
}

/// How long a refused attempt is told to wait while another caller's trial is under way.
const TRIAL_UNDER_WAY: Duration = Duration::from_secs(1);

impl Breaker {
    pub fn new(settings: BreakerSettings, now: Instant) -> Breaker {
        Breaker {
            cool_down: settings.cool_down,
            settings,
            phase: Phase::Closed,
            consecutive: 0,
            window_start: now,
            window_attempts: 0,
            window_failures: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }

    /// New settings (an edited API) keep the phase and counts; an off breaker closes.
    pub fn reconfigure(&mut self, settings: &BreakerSettings) {
        if self.settings != *settings {
            self.settings = settings.clone();
            self.cool_down = self.cool_down.clamp(settings.cool_down, settings.max_cool_down.max(settings.cool_down));
            if !settings.enabled {
                self.phase = Phase::Closed;
            }
        }
    }

    /// Whether an attempt may go now, without taking the trial: for choosing among endpoints.
    pub fn peek(&self, now: Instant) -> Verdict {
        match self.phase {
            Phase::Closed => Verdict::Pass,
            Phase::Open { until } if now >= until => Verdict::Trial,
            Phase::Open { until } => Verdict::Refuse(until - now),
            Phase::HalfOpen { trial: false } => Verdict::Trial,
            Phase::HalfOpen { trial: true } => Verdict::Refuse(TRIAL_UNDER_WAY),
        }
    }

    /// Asks to make an attempt now; a `Trial` verdict takes the one trial slot.
    pub fn attempt(&mut self, now: Instant) -> (Verdict, Option<Transition>) {
        let verdict = self.peek(now);
        if verdict != Verdict::Trial {
            return (verdict, None);
        }
        let transition = matches!(self.phase, Phase::Open { .. }).then_some(Transition::HalfOpened);
        self.phase = Phase::HalfOpen { trial: true };
        (verdict, transition)
    }

    /// The attempt reached the endpoint and it answered.
    pub fn succeeded(&mut self, now: Instant) -> Option<Transition> {
        self.count(now, false);
        self.consecutive = 0;
        match self.phase {
            Phase::HalfOpen { .. } => {
                self.phase = Phase::Closed;
                self.cool_down = self.settings.cool_down;
                Some(Transition::Closed)
            }
            _ => None,
        }
    }

    /// The attempt failed at this endpoint (connect, TLS, upgrade).
    pub fn failed(&mut self, now: Instant) -> Option<Transition> {
        self.count(now, true);
        self.consecutive = self.consecutive.saturating_add(1);
        if !self.settings.enabled {
            return None;
        }
        match self.phase {
            Phase::HalfOpen { .. } => {
                // The endpoint is still failing: wait longer before the next trial.
                let factor = self.settings.progression_factor.max(1);
                self.cool_down = self.cool_down.saturating_mul(factor).min(self.settings.max_cool_down);
                Some(self.open(now))
            }
            Phase::Closed if self.tripped() => {
                self.cool_down = self.settings.cool_down;
                Some(self.open(now))
            }
            // Attempts that began before the breaker opened may still report.
            _ => None,
        }
    }

    /// A trial's caller went away before an outcome: the next caller may try.
    pub fn abandon(&mut self) {
        if self.phase == (Phase::HalfOpen { trial: true }) {
            self.phase = Phase::HalfOpen { trial: false };
        }
    }

    fn open(&mut self, now: Instant) -> Transition {
        self.phase = Phase::Open { until: now + self.cool_down };
        self.window_start = now;
        self.window_attempts = 0;
        self.window_failures = 0;
        Transition::Opened { cool_down: self.cool_down }
    }

    fn tripped(&self) -> bool {
        let s = &self.settings;
        let in_a_row = s.consecutive_failures > 0 && self.consecutive >= s.consecutive_failures;
        let ratio = s.failure_percent > 0
            && self.window_attempts >= s.min_attempts
            && u64::from(self.window_failures) * 100 >= u64::from(s.failure_percent) * u64::from(self.window_attempts);
        in_a_row || ratio
    }

    /// Counts an outcome in the current window (a tumbling window: simple and bounded).
    fn count(&mut self, now: Instant, failure: bool) {
        if now.duration_since(self.window_start) >= self.settings.window {
            self.window_start = now;
            self.window_attempts = 0;
            self.window_failures = 0;
        }
        self.window_attempts = self.window_attempts.saturating_add(1);
        self.window_failures = self.window_failures.saturating_add(u32::from(failure));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: 3,
            failure_percent: 0,
            cool_down: Duration::from_secs(10),
            progression_factor: 2,
            max_cool_down: Duration::from_secs(25),
            ..BreakerSettings::default()
        }
    }

    #[test]
    fn failures_in_a_row_open_it_and_a_successful_trial_closes_it() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(settings(), t0);
        assert_eq!(breaker.failed(t0), None);
        assert_eq!(breaker.succeeded(t0), None, "a success resets the count");
        assert_eq!(breaker.failed(t0), None);
        assert_eq!(breaker.failed(t0), None);
        assert_eq!(breaker.failed(t0), Some(Transition::Opened { cool_down: Duration::from_secs(10) }));
        assert_eq!(breaker.attempt(t0 + Duration::from_secs(4)).0, Verdict::Refuse(Duration::from_secs(6)));
        let later = t0 + Duration::from_secs(10);
        assert_eq!(breaker.attempt(later), (Verdict::Trial, Some(Transition::HalfOpened)));
        assert_eq!(breaker.attempt(later).0, Verdict::Refuse(TRIAL_UNDER_WAY), "one trial at a time");
        assert_eq!(breaker.succeeded(later), Some(Transition::Closed));
        assert_eq!(breaker.attempt(later).0, Verdict::Pass);
    }

    #[test]
    fn failed_trials_wait_longer_up_to_the_maximum() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(settings(), t0);
        for _ in 0..3 {
            breaker.failed(t0);
        }
        let mut now = t0;
        for expected in [20, 25, 25] {
            now += breaker.cool_down;
            assert_eq!(breaker.attempt(now).0, Verdict::Trial);
            assert_eq!(breaker.failed(now), Some(Transition::Opened { cool_down: Duration::from_secs(expected) }));
        }
        now += Duration::from_secs(25);
        breaker.attempt(now);
        breaker.succeeded(now);
        for _ in 0..3 {
            breaker.failed(now);
        }
        assert_eq!(breaker.peek(now), Verdict::Refuse(Duration::from_secs(10)), "a closed breaker starts over");
    }

    #[test]
    fn an_abandoned_trial_frees_the_slot() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(settings(), t0);
        for _ in 0..3 {
            breaker.failed(t0);
        }
        let later = t0 + Duration::from_secs(10);
        assert_eq!(breaker.attempt(later).0, Verdict::Trial);
        breaker.abandon();
        assert_eq!(breaker.attempt(later).0, Verdict::Trial);
    }

    #[test]
    fn a_failure_ratio_in_the_window_opens_it() {
        let ratio = BreakerSettings {
            consecutive_failures: 0,
            failure_percent: 50,
            min_attempts: 4,
            window: Duration::from_secs(30),
            ..settings()
        };
        let t0 = Instant::now();
        let mut breaker = Breaker::new(ratio, t0);
        breaker.failed(t0);
        breaker.succeeded(t0);
        breaker.failed(t0);
        assert_eq!(breaker.phase(), Phase::Closed, "3 attempts are under min_attempts");
        assert!(matches!(breaker.failed(t0), Some(Transition::Opened { .. })), "3 of 4 failed");
        // Outcomes spread over windows do not add up.
        let mut fresh = Breaker::new(BreakerSettings { min_attempts: 2, ..ratio_settings() }, t0);
        fresh.failed(t0);
        assert_eq!(fresh.failed(t0 + Duration::from_secs(31)), None, "the window started over");
    }

    fn ratio_settings() -> BreakerSettings {
        BreakerSettings { consecutive_failures: 0, failure_percent: 50, ..settings() }
    }

    #[test]
    fn a_disabled_breaker_counts_but_never_opens() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(BreakerSettings { enabled: false, ..settings() }, t0);
        for _ in 0..10 {
            assert_eq!(breaker.failed(t0), None);
        }
        assert_eq!(breaker.consecutive_failures(), 10);
        assert_eq!(breaker.attempt(t0).0, Verdict::Pass);
    }
}

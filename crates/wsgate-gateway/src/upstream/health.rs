//! The endpoint table: what the gateway remembers about each API's endpoints across snapshot
//! swaps — breaker, probe verdict, live connections, the round-robin cursor. Snapshots are
//! rebuilt on every store change; this table is long-lived and keyed by stable names (the API's
//! counter key and the endpoint's URL), so editing an API's plans does not forget that one of its
//! endpoints is failing, and an endpoint kept through an edit keeps its state.
//!
//! A routed API finds its entry once (`route::Api::upstream`) and keeps the `Arc`; the table is
//! locked only then and when the health task reconciles it after a swap, never per frame.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wsgate_core::upstream::{EndpointCondition, EndpointHealth, EndpointSettings, EndpointStatus};

use super::breaker::{Breaker, Phase, Transition, Verdict};
use crate::observe::metrics::Metrics;
use crate::rejection::Rejection;

/// Every routed API's endpoints, by the API's counter key.
#[derive(Debug, Default)]
pub struct EndpointTable {
    apis: Mutex<HashMap<String, Arc<ApiEndpoints>>>,
}

/// One API's endpoints, in its configured order, and its round-robin cursor.
#[derive(Debug)]
pub struct ApiEndpoints {
    pub states: Vec<Arc<EndpointState>>,
    pub cursor: Arc<AtomicUsize>,
}

/// One endpoint of one API.
pub struct EndpointState {
    /// `ws://host:port/path`, as logs and metrics name it.
    pub url: String,
    /// The API's name, for logs and metrics.
    api: String,
    active: AtomicU64,
    /// Set by the active probe: skipped while true.
    probe_down: AtomicBool,
    /// Probe results in a row, for its thresholds (only the probe task writes them).
    pub(super) probe_streak: Mutex<(u32, u32)>,
    health: Mutex<Health>,
    gauges: Option<Gauges>,
}

struct Health {
    breaker: Breaker,
    last_failure: Option<String>,
}

/// Metric handles resolved once per endpoint.
struct Gauges {
    available: metrics::Gauge,
    connections: metrics::Gauge,
    opened: metrics::Counter,
    failures: metrics::Counter,
}

impl std::fmt::Debug for EndpointState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointState").field("url", &self.url).field("api", &self.api).finish_non_exhaustive()
    }
}

impl EndpointTable {
    /// The entry of an API with these endpoints and settings: existing endpoints keep their
    /// state (their breaker takes the new settings), new ones start closed.
    pub fn resolve(
        &self,
        key: &str,
        api: &str,
        urls: &[String],
        settings: &EndpointSettings,
        metrics: Option<&Metrics>,
    ) -> Arc<ApiEndpoints> {
        let mut apis = self.apis.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = apis.get(key)
            && existing.states.len() == urls.len()
            && existing.states.iter().zip(urls).all(|(state, url)| state.url == *url && state.api == api)
        {
            existing.reconfigure(settings);
            return existing.clone();
        }
        let previous = apis.get(key).cloned();
        let states = urls
            .iter()
            .map(|url| {
                let kept = previous.as_ref().and_then(|p| p.states.iter().find(|s| s.url == *url && s.api == api));
                match kept {
                    Some(state) => {
                        state.reconfigure(settings);
                        state.clone()
                    }
                    None => Arc::new(EndpointState::new(api, url, settings, metrics)),
                }
            })
            .collect();
        let cursor = previous.map(|p| p.cursor.clone()).unwrap_or_default();
        let entry = Arc::new(ApiEndpoints { states, cursor });
        apis.insert(key.to_string(), entry.clone());
        entry
    }

    /// Forgets the APIs not in `keep` (no longer routed); their live connections keep their
    /// own `Arc`s.
    pub fn retain(&self, keep: &std::collections::HashSet<String>) {
        self.apis.lock().unwrap_or_else(PoisonError::into_inner).retain(|key, _| keep.contains(key));
    }

    fn get(&self, key: &str) -> Option<Arc<ApiEndpoints>> {
        self.apis.lock().unwrap_or_else(PoisonError::into_inner).get(key).cloned()
    }
}

impl EndpointHealth for EndpointTable {
    fn endpoints(&self, api_id: &str) -> Vec<EndpointStatus> {
        self.get(api_id).map(|api| api.states.iter().map(|s| s.status(Instant::now())).collect()).unwrap_or_default()
    }
}

impl ApiEndpoints {
    fn reconfigure(&self, settings: &EndpointSettings) {
        for state in &self.states {
            state.reconfigure(settings);
        }
    }
}

impl EndpointState {
    fn new(api: &str, url: &str, settings: &EndpointSettings, metrics: Option<&Metrics>) -> EndpointState {
        let gauges = metrics.map(|m| {
            let labels = [("api", api), ("endpoint", url)];
            let gauges = Gauges {
                available: m.gauge("wsgate_endpoint_available", &labels),
                connections: m.gauge("wsgate_endpoint_connections", &labels),
                opened: m.counter("wsgate_endpoint_suspensions_total", &labels),
                failures: m.counter("wsgate_endpoint_failures_total", &labels),
            };
            gauges.available.set(1.0);
            gauges
        });
        EndpointState {
            url: url.to_string(),
            api: api.to_string(),
            active: AtomicU64::new(0),
            probe_down: AtomicBool::new(false),
            probe_streak: Mutex::new((0, 0)),
            health: Mutex::new(Health {
                breaker: Breaker::new(settings.breaker.clone(), Instant::now()),
                last_failure: None,
            }),
            gauges,
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reconfigure(&self, settings: &EndpointSettings) {
        self.health().breaker.reconfigure(&settings.breaker);
    }

    /// Connections relayed to this endpoint now.
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    /// Whether a connection may be sent here now, without taking a trial; `Err` is how long
    /// until it may.
    pub fn available(&self, now: Instant, probe_interval: Option<Duration>) -> Result<(), Duration> {
        if self.probe_down.load(Ordering::Relaxed) {
            return Err(probe_interval.unwrap_or(Duration::from_secs(1)));
        }
        match self.health().breaker.peek(now) {
            Verdict::Refuse(wait) => Err(wait),
            Verdict::Pass | Verdict::Trial => Ok(()),
        }
    }

    /// Starts an attempt, taking the trial if the breaker is half-open; `None` if another
    /// caller took it first.
    pub fn begin(self: &Arc<Self>, now: Instant) -> Option<Attempt> {
        let (verdict, transition) = self.health().breaker.attempt(now);
        if let Some(transition) = transition {
            self.announce(transition, None);
        }
        match verdict {
            Verdict::Pass => Some(Attempt { state: self.clone(), trial: false, reported: false }),
            Verdict::Trial => Some(Attempt { state: self.clone(), trial: true, reported: false }),
            Verdict::Refuse(_) => None,
        }
    }

    /// Sets the active probe's verdict; logged when it changes.
    pub fn set_probe_down(&self, down: bool, why: &str) {
        if self.probe_down.swap(down, Ordering::Relaxed) != down {
            if down {
                tracing::warn!(api = %self.api, endpoint = %self.url, reason = why, "endpoint down: its health probe fails; skipped until it passes");
            } else {
                tracing::info!(api = %self.api, endpoint = %self.url, "endpoint up: its health probe passes again");
            }
            self.refresh_gauge();
        }
    }

    fn refresh_gauge(&self) {
        if let Some(gauges) = &self.gauges {
            let up = !self.probe_down.load(Ordering::Relaxed) && self.health().breaker.phase() == Phase::Closed;
            gauges.available.set(if up { 1.0 } else { 0.0 });
        }
    }

    fn announce(&self, transition: Transition, failures: Option<(u32, &str)>) {
        match transition {
            Transition::Opened { cool_down } => {
                let (in_a_row, last) = failures.unwrap_or((0, ""));
                tracing::warn!(api = %self.api, endpoint = %self.url, failures_in_a_row = in_a_row, last_failure = last,
                    "endpoint suspended for {} by its circuit breaker; connections go to other endpoints",
                    wsgate_core::duration::format(cool_down));
                if let Some(gauges) = &self.gauges {
                    gauges.opened.increment(1);
                }
            }
            Transition::HalfOpened => {
                tracing::info!(api = %self.api, endpoint = %self.url, "endpoint half-open: one trial connection goes through")
            }
            Transition::Closed => {
                tracing::info!(api = %self.api, endpoint = %self.url, "endpoint recovered: the trial connection succeeded")
            }
        }
        self.refresh_gauge();
    }

    /// What the control plane shows.
    pub fn status(&self, now: Instant) -> EndpointStatus {
        let health = self.health();
        let (state, retry_in) = match health.breaker.phase() {
            _ if self.probe_down.load(Ordering::Relaxed) => (EndpointCondition::Down, None),
            Phase::Closed => (EndpointCondition::Up, None),
            Phase::Open { until } if until > now => (EndpointCondition::Suspended, Some(until - now)),
            Phase::Open { .. } | Phase::HalfOpen { .. } => (EndpointCondition::HalfOpen, None),
        };
        EndpointStatus {
            url: self.url.clone(),
            state,
            active_connections: self.active(),
            consecutive_failures: health.breaker.consecutive_failures(),
            retry_in_ms: retry_in.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            last_failure: health.last_failure.clone(),
        }
    }
}

/// One attempt at an endpoint: report how it went. Dropped without a report (the client left
/// during the attempt), a trial frees its slot for the next caller.
#[derive(Debug)]
pub struct Attempt {
    state: Arc<EndpointState>,
    trial: bool,
    reported: bool,
}

impl Attempt {
    /// The endpoint answered (a 101, or a status that is the client's business, like 401).
    pub fn succeeded(mut self) -> EndpointLease {
        self.reported = true;
        let transition = self.state.health().breaker.succeeded(Instant::now());
        if let Some(transition) = transition {
            self.state.announce(transition, None);
        }
        EndpointLease::new(self.state.clone())
    }

    /// The endpoint failed this attempt.
    pub fn failed(mut self, rejection: &Rejection) {
        self.reported = true;
        let state = &self.state;
        if let Some(gauges) = &state.gauges {
            gauges.failures.increment(1);
        }
        let why = rejection.to_string();
        let (transition, in_a_row) = {
            let mut health = state.health();
            let transition = health.breaker.failed(Instant::now());
            health.last_failure = Some(why.clone());
            (transition, health.breaker.consecutive_failures())
        };
        if let Some(transition) = transition {
            state.announce(transition, Some((in_a_row, &why)));
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.trial && !self.reported {
            self.state.health().breaker.abandon();
        }
    }
}

/// A connection relayed to an endpoint: counted in its live connections (least-connections
/// balancing, the endpoint page, the gauge) until dropped with the connection.
#[derive(Debug)]
pub struct EndpointLease {
    state: Arc<EndpointState>,
}

impl EndpointLease {
    fn new(state: Arc<EndpointState>) -> EndpointLease {
        state.active.fetch_add(1, Ordering::Relaxed);
        if let Some(gauges) = &state.gauges {
            gauges.connections.increment(1.0);
        }
        EndpointLease { state }
    }
}

impl Drop for EndpointLease {
    fn drop(&mut self) {
        self.state.active.fetch_sub(1, Ordering::Relaxed);
        if let Some(gauges) = &self.state.gauges {
            gauges.connections.decrement(1.0);
        }
    }
}

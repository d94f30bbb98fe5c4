//! The gateway's Prometheus series, recorded through the `metrics` facade into a recorder the
//! binary gives ([`crate::Gateway::set_metrics`]); without one every handle is a no-op.
//!
//! Labels stay bounded: `api` and `plan` (and `application` only when turned on), refusal
//! kinds, close codes, configured endpoints. Traffic counters are resolved once per upgrade
//! into a [`Meter`] that the relay's tick advances by atomic adds, so no label is hashed while
//! a connection lives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use wsgate_core::session::ClosedBy;

use crate::policy::budget::Exceeded;
use crate::rejection::Rejection;
use crate::relay::RelayReport;
use crate::route::Route;

/// Every series, with its type, unit and help text (also the list README.md documents).
const SERIES: &[(&str, Kind, Unit, &str)] = &[
    ("wsgate_connections_open", Kind::Gauge, Unit::Count, "Upgraded connections open now, by API and plan."),
    (
        "wsgate_handshakes_total",
        Kind::Counter,
        Unit::Count,
        "Finished handshakes by API and HTTP status (101: upgraded).",
    ),
    ("wsgate_refusals_total", Kind::Counter, Unit::Count, "Refused handshakes by reason."),
    (
        "wsgate_upgrade_duration_seconds",
        Kind::Histogram,
        Unit::Seconds,
        "From accepting the connection to writing the client's 101.",
    ),
    (
        "wsgate_upstream_failures_total",
        Kind::Counter,
        Unit::Count,
        "Failed upstream connects and handshakes by endpoint and reason.",
    ),
    (
        "wsgate_messages_total",
        Kind::Counter,
        Unit::Count,
        "Messages relayed by API, plan and direction (in: from clients), counted while connections live.",
    ),
    (
        "wsgate_bytes_total",
        Kind::Counter,
        Unit::Bytes,
        "Bytes relayed by API, plan and direction (in: from clients), counted while connections live.",
    ),
    (
        "wsgate_endpoint_available",
        Kind::Gauge,
        Unit::Count,
        "1 while an upstream endpoint takes connections (breaker closed, probe passing), else 0.",
    ),
    ("wsgate_endpoint_connections", Kind::Gauge, Unit::Count, "Connections relayed to an upstream endpoint now."),
    (
        "wsgate_endpoint_failures_total",
        Kind::Counter,
        Unit::Count,
        "Failed attempts at an upstream endpoint (connect, TLS, upgrade, 5xx), retried ones included.",
    ),
    (
        "wsgate_endpoint_suspensions_total",
        Kind::Counter,
        Unit::Count,
        "Times an upstream endpoint's circuit breaker opened.",
    ),
    ("wsgate_closes_total", Kind::Counter, Unit::Count, "Ended connections by API, who closed them and why."),
    ("wsgate_close_codes_total", Kind::Counter, Unit::Count, "Close frames by sender and code."),
    (
        "wsgate_throttle_events_total",
        Kind::Counter,
        Unit::Count,
        "Budgets spent, by plan, limit and action: pause (a direction waits) or close.",
    ),
    (
        "wsgate_config_reloads_total",
        Kind::Counter,
        Unit::Count,
        "Config file reloads by result: applied, or refused (the file did not parse or validate).",
    ),
];

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

const METADATA: Metadata<'static> = Metadata::new("wsgate", metrics::Level::INFO, Some(module_path!()));

/// The gateway's metrics over one recorder.
pub struct Metrics {
    recorder: Arc<dyn Recorder + Send + Sync>,
    per_application: bool,
    /// Traffic handles by API, plan (and application): locked once per upgrade, never per frame.
    meters: Mutex<HashMap<String, Arc<Meter>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("per_application", &self.per_application).finish_non_exhaustive()
    }
}

/// One API's (and plan's) traffic handles, shared by its live connections.
pub struct Meter {
    labels: Vec<Label>,
    open: Gauge,
    upgraded: Counter,
    upgrade_duration: Histogram,
    messages_in: Counter,
    messages_out: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    pauses: Counter,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter").field("labels", &self.labels).finish_non_exhaustive()
    }
}

impl Meter {
    /// Advances the traffic counters by what a connection relayed since it last published
    /// (`[messages in, bytes in, messages out, bytes out]`) and the pauses since then.
    pub fn advance(&self, deltas: [u64; 4], pauses: u64) {
        let [messages_in, bytes_in, messages_out, bytes_out] = deltas;
        self.messages_in.increment(messages_in);
        self.bytes_in.increment(bytes_in);
        self.messages_out.increment(messages_out);
        self.bytes_out.increment(bytes_out);
        if pauses > 0 {
            self.pauses.increment(pauses);
        }
    }
}

/// `(name, value)` label pairs.
type Labels<'a> = &'a [(&'static str, &'a str)];

impl Metrics {
    pub fn new(recorder: Arc<dyn Recorder + Send + Sync>, per_application: bool) -> Metrics {
        for &(name, kind, unit, help) in SERIES {
            let (name, help) = (KeyName::from_const_str(name), SharedString::const_str(help));
            match kind {
                Kind::Counter => recorder.describe_counter(name, Some(unit), help),
                Kind::Gauge => recorder.describe_gauge(name, Some(unit), help),
                Kind::Histogram => recorder.describe_histogram(name, Some(unit), help),
            }
        }
        Metrics { recorder, per_application, meters: Mutex::default() }
    }

    fn key(name: &'static str, labels: Labels<'_>) -> Key {
        Key::from_parts(name, labels.iter().map(|(k, v)| Label::new(*k, v.to_string())).collect::<Vec<_>>())
    }

    pub(crate) fn counter(&self, name: &'static str, labels: Labels<'_>) -> Counter {
        self.recorder.register_counter(&Self::key(name, labels), &METADATA)
    }

    /// A gauge set by the binary (store and Redis health, build info).
    pub fn gauge(&self, name: &'static str, labels: Labels<'_>) -> Gauge {
        self.recorder.register_gauge(&Self::key(name, labels), &METADATA)
    }

    /// The traffic handles of a connection to `api` under `plan` by `application`.
    pub fn meter(&self, api: &str, plan: &str, application: &str) -> Arc<Meter> {
        let application = if self.per_application { application } else { "" };
        let id = format!("{api}\u{0}{plan}\u{0}{application}");
        let mut meters = self.meters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(meter) = meters.get(&id) {
            return meter.clone();
        }
        let mut base: Vec<(&'static str, &str)> = vec![("api", api), ("plan", plan)];
        if self.per_application {
            base.push(("application", application));
        }
        let with = |extra: (&'static str, &'static str)| {
            let mut labels = base.clone();
            labels.push(extra);
            labels
        };
        let meter = Arc::new(Meter {
            labels: base.iter().map(|(k, v)| Label::new(*k, v.to_string())).collect(),
            open: self.recorder.register_gauge(&Self::key("wsgate_connections_open", &base), &METADATA),
            upgraded: self.counter("wsgate_handshakes_total", &with(("status", "101"))),
            upgrade_duration: self
                .recorder
                .register_histogram(&Self::key("wsgate_upgrade_duration_seconds", &base), &METADATA),
            messages_in: self.counter("wsgate_messages_total", &with(("direction", "in"))),
            messages_out: self.counter("wsgate_messages_total", &with(("direction", "out"))),
            bytes_in: self.counter("wsgate_bytes_total", &with(("direction", "in"))),
            bytes_out: self.counter("wsgate_bytes_total", &with(("direction", "out"))),
            // Which of a connection's limits made it wait is not known at the tick: `any`.
            pauses: self
                .counter("wsgate_throttle_events_total", &[("plan", plan), ("limit", "any"), ("action", "pause")]),
        });
        meters.insert(id, meter.clone());
        meter
    }

    /// A connection was upgraded after `seconds`.
    pub fn opened(&self, meter: &Meter, seconds: f64) {
        meter.upgraded.increment(1);
        meter.open.increment(1.0);
        meter.upgrade_duration.record(seconds);
    }

    /// An upgraded connection ended (its last counts were published already); `exceeded` is
    /// the limit that closed it, if one did.
    pub fn closed(&self, meter: &Meter, report: &RelayReport, exceeded: Option<Exceeded>) {
        meter.open.decrement(1.0);
        let api = label_value(&meter.labels, "api");
        let plan = label_value(&meter.labels, "plan");
        let closed_by = match report.closed_by {
            ClosedBy::Client => "client",
            ClosedBy::Upstream => "upstream",
            ClosedBy::Gateway => "gateway",
        };
        self.counter("wsgate_closes_total", &[("api", api), ("closed_by", closed_by), ("end", report.end.label())])
            .increment(1);
        for (sender, code) in [("client", report.client_close), ("upstream", report.upstream_close)] {
            if let Some(code) = code {
                self.counter("wsgate_close_codes_total", &[("sender", sender), ("code", &code.to_string())])
                    .increment(1);
            }
        }
        if let Some(exceeded) = exceeded {
            let party = exceeded.party.replace(' ', "_").to_lowercase();
            let limit = format!("{party}_{}", if exceeded.bytes { "bytes" } else { "messages" });
            self.counter("wsgate_throttle_events_total", &[("plan", plan), ("limit", &limit), ("action", "close")])
                .increment(1);
        }
    }

    /// A handshake was refused.
    pub fn refused(&self, route: Option<&Route>, rejection: &Rejection) {
        let api = route.map_or("-", |r| r.api.name.as_str());
        let status = rejection.status().to_string();
        self.counter("wsgate_handshakes_total", &[("api", api), ("status", &status)]).increment(1);
        self.counter("wsgate_refusals_total", &[("reason", rejection.kind())]).increment(1);
        if let Some(endpoint) = rejection.endpoint() {
            self.counter("wsgate_upstream_failures_total", &[("endpoint", endpoint), ("reason", rejection.kind())])
                .increment(1);
        }
    }
}

fn label_value<'a>(labels: &'a [Label], key: &str) -> &'a str {
    labels.iter().find(|l| l.key() == key).map_or("", Label::value)
}

//! One connection outcome, several sinks. Every connection ends in one value — refused with its
//! [`Rejection`], or relayed with its [`RelayReport`] — and [`Observe`] hands it to each sink:
//! the access log (`access_log`), the metrics (`metrics`) and the session records
//! (`sessions`). The pipeline calls it once per path, including the paths that end without an
//! answer (a TLS handshake that failed, a 101 the client never took).

pub mod access_log;
pub mod metrics;
pub mod sessions;

use std::sync::{Arc, OnceLock};

use wsgate_core::config::ClientIpMode;
use wsgate_core::session::{SessionRecord, SessionSink};

use crate::conn::ConnCtx;
use crate::policy::Admission;
use crate::rejection::Rejection;
use crate::relay::RelayReport;
use crate::relay::live::Live;
use crate::route::Route;
use metrics::{Meter, Metrics};

/// The sinks of connection outcomes. Metrics and sessions are set once, before the gateway
/// runs; unset, they cost nothing.
#[derive(Debug, Default)]
pub struct Observe {
    pub metrics: OnceLock<Metrics>,
    pub sessions: OnceLock<Arc<dyn SessionSink>>,
    pub client_ip: ClientIpMode,
}

/// What an upgraded connection carries for its end: boxed with the rest of its context, read
/// once when it ends.
#[derive(Debug)]
pub struct Watch {
    pub live: Arc<Live>,
    meter: Option<Arc<Meter>>,
    session: Option<Arc<SessionRecord>>,
}

impl Watch {
    /// The template of interim session records, for the registry.
    pub fn session(&self) -> Option<Arc<SessionRecord>> {
        self.session.clone()
    }
}

/// The plan a connection counts under: its token's, else its API's.
fn plan_of(admission: &Admission) -> &str {
    match (&admission.caller, &admission.route.api.limits.plan) {
        (Some(caller), _) => &caller.plan,
        (None, Some(plan)) => plan,
        (None, None) => "-",
    }
}

impl Observe {
    /// A handshake that did not end in an upgrade.
    pub fn refused(&self, ctx: &ConnCtx, route: Option<&Route>, rejection: &Rejection) {
        access_log::refused(ctx, route, rejection);
        if let Some(metrics) = self.metrics.get() {
            metrics.refused(route, rejection);
        }
        if let Some(sink) = self.sessions.get() {
            let mut record = sessions::base(ctx, route, None, self.client_ip);
            record.last = true;
            record.status = rejection.status();
            record.refusal = Some(rejection.kind().to_string());
            sink.record(record);
        }
    }

    /// The client's 101 is written: the connection is open. Returns what it needs at its end.
    pub fn upgraded(&self, ctx: &ConnCtx, admission: &Admission) -> Watch {
        let meter = self.metrics.get().map(|metrics| {
            let application = admission.caller.as_ref().map_or("-", |c| c.application.as_str());
            let meter = metrics.meter(&admission.route.api.name, plan_of(admission), application);
            metrics.opened(&meter, ctx.started.elapsed().as_secs_f64());
            meter
        });
        let session = self.sessions.get().map(|_| {
            Arc::new(sessions::base(ctx, Some(&admission.route), admission.caller.as_deref(), self.client_ip))
        });
        Watch { live: Live::metered(meter.clone()), meter, session }
    }

    /// An upgraded connection ended.
    pub fn relayed(&self, ctx: &ConnCtx, admission: &Admission, watch: &Watch, report: &RelayReport) {
        access_log::upgraded(ctx, &admission.route, admission.caller.as_deref(), report);
        let totals = [report.client_messages, report.client_bytes, report.upstream_messages, report.upstream_bytes];
        // What the relay counted after its last tick reaches the metrics now.
        watch.live.publish(totals[0], totals[1], totals[2], totals[3]);
        if let (Some(metrics), Some(meter)) = (self.metrics.get(), &watch.meter) {
            metrics.closed(meter, report, watch.live.exceeded());
        }
        if let (Some(sink), Some(template)) = (self.sessions.get(), &watch.session) {
            let new = sessions::take_new(&watch.live.recorded, totals);
            let record = SessionRecord {
                at: sessions::unix_millis(),
                last: true,
                client_close: report.client_close,
                upstream_close: report.upstream_close,
                closed_by: Some(report.closed_by),
                ..(**template).clone()
            };
            sink.record(sessions::with_counts(record, new));
        }
    }
}

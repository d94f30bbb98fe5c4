//! Session records (see `wsgate_core::session`): one per refusal, one at the end of each
//! upgraded connection, and interim ones for connections that live longer than
//! `analytics.interim_interval`, taken by one periodic task from the counts the relays publish
//! at their tick, so nothing here touches a connection's frames.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;
use wsgate_core::config::ClientIpMode;
use wsgate_core::session::{SessionRecord, SessionSink};

use crate::auth::Principal;
use crate::conn::ConnCtx;
use crate::registry::Registry;
use crate::relay::live::{Counts, Live};
use crate::route::Route;

/// Unix milliseconds now.
pub fn unix_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The part of a record that stays the same for a connection's whole life.
pub fn base(ctx: &ConnCtx, route: Option<&Route>, caller: Option<&Principal>, ip: ClientIpMode) -> SessionRecord {
    let now = unix_millis();
    let age = i64::try_from(ctx.started.elapsed().as_millis()).unwrap_or(0);
    SessionRecord {
        connection: ctx.id,
        api_id: route.and_then(|r| r.api.managed.as_ref()).map(|m| m.id.clone()),
        api_name: route.map_or_else(String::new, |r| r.api.name.clone()),
        api_version: route.map_or_else(String::new, |r| r.api.version.clone()),
        application_id: caller.map(|c| c.application_id.clone()),
        plan: caller.map(|c| c.plan.clone()),
        client_ip: ip.apply(ctx.client.addr.ip()),
        started_at: now - age,
        at: now,
        last: false,
        status: 101,
        refusal: None,
        messages_in: 0,
        bytes_in: 0,
        messages_out: 0,
        bytes_out: 0,
        client_close: None,
        upstream_close: None,
        closed_by: None,
    }
}

/// Moves `counts` (totals) into `recorded` and returns what they add since the last record:
/// `[messages in, bytes in, messages out, bytes out]`. Each field is swapped on its own, so a
/// concurrent interim and last record never count a message twice.
pub fn take_new(recorded: &Counts, totals: [u64; 4]) -> [u64; 4] {
    let fields =
        [&recorded.client_messages, &recorded.client_bytes, &recorded.upstream_messages, &recorded.upstream_bytes];
    let mut new = [0; 4];
    for ((slot, total), out) in fields.into_iter().zip(totals).zip(&mut new) {
        *out = total.saturating_sub(slot.swap(total, Ordering::Relaxed));
    }
    new
}

/// Fills a record's counts.
pub fn with_counts(
    mut record: SessionRecord,
    [messages_in, bytes_in, messages_out, bytes_out]: [u64; 4],
) -> SessionRecord {
    record.messages_in = messages_in;
    record.bytes_in = bytes_in;
    record.messages_out = messages_out;
    record.bytes_out = bytes_out;
    record
}

/// The published totals of a live connection.
pub fn published(live: &Live) -> [u64; 4] {
    let c = &live.counts;
    [&c.client_messages, &c.client_bytes, &c.upstream_messages, &c.upstream_bytes].map(|a| a.load(Ordering::Relaxed))
}

/// Every `interval` until `shutdown`: an interim record for each registered connection older
/// than `interval`, with what it relayed since its previous record.
pub async fn interim(
    registry: Arc<Registry>,
    sink: Arc<dyn SessionSink>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = unix_millis();
        for (template, live) in registry.sessions() {
            if now - template.started_at < interval_ms {
                continue;
            }
            let new = take_new(&live.recorded, published(&live));
            sink.record(with_counts(SessionRecord { at: now, ..(*template).clone() }, new));
        }
    }
}

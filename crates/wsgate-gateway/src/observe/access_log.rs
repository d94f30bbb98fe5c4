//! One structured log event per connection, written when it ends (target `wsgate::access`).
//! Only the request path is logged, never the query: it may carry credentials.
//!
//! Every line carries `conn`, the id session records carry as `connection`. Text values are
//! passed as `&str`, so the text format quotes every one of them the same way and the JSON
//! format writes them as strings; numbers and fixed words (`end`, `side`, `closed_by`) are bare.
//! A close code a side never sent is left out rather than written as a sentinel.

use crate::auth::Principal;
use crate::conn::ConnCtx;
use crate::rejection::Rejection;
use crate::relay::RelayReport;
use crate::route::Route;

pub fn upgraded(ctx: &ConnCtx, route: &Route, caller: Option<&Principal>, report: &RelayReport) {
    let (client, started) = (&ctx.client, ctx.started);
    tracing::info!(
        target: "wsgate::access",
        conn = ctx.id,
        client = %client.addr,
        api = route.api.name.as_str(),
        version = route.api.version.as_str(),
        application = caller.map_or("-", |c| c.application.as_str()),
        subscriber = caller.map_or("-", |c| c.subscriber.as_str()),
        plan = caller.map_or("-", |c| c.plan.as_str()),
        status = 101,
        duration_ms = started.elapsed().as_millis() as u64,
        messages_in = report.client_messages,
        bytes_in = report.client_bytes,
        messages_out = report.upstream_messages,
        bytes_out = report.upstream_bytes,
        client_close = report.client_close,
        upstream_close = report.upstream_close,
        end = ?report.end,
        closed_by = ?report.closed_by,
        "connection closed"
    );
}

pub fn refused(ctx: &ConnCtx, route: Option<&Route>, rejection: &Rejection) {
    let (client, started) = (&ctx.client, ctx.started);
    tracing::info!(
        target: "wsgate::access",
        conn = ctx.id,
        client = %client.addr,
        api = route.map_or("-", |r| r.api.name.as_str()),
        endpoint = rejection.endpoint().unwrap_or("-"),
        status = rejection.status(),
        side = ?rejection.side(),
        duration_ms = started.elapsed().as_millis() as u64,
        kind = rejection.kind(),
        reason = rejection.to_string().as_str(),
        "connection refused"
    );
}

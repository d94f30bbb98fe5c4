//! One structured log event per connection, written when it ends (target `wsgate::access`).
//! Only the request path is logged, never the query: it may carry credentials.

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
        api = %route.api.name,
        version = %route.api.version,
        application = caller.map(|c| c.application.as_str()).unwrap_or("-"),
        subscriber = caller.map(|c| c.subscriber.as_str()).unwrap_or("-"),
        plan = caller.map(|c| c.plan.as_str()).unwrap_or("-"),
        status = 101,
        duration_ms = started.elapsed().as_millis() as u64,
        messages_in = report.client_messages,
        bytes_in = report.client_bytes,
        messages_out = report.upstream_messages,
        bytes_out = report.upstream_bytes,
        client_close = report.client_close.map(i64::from).unwrap_or(-1),
        upstream_close = report.upstream_close.map(i64::from).unwrap_or(-1),
        end = ?report.end,
        "connection closed"
    );
}

pub fn refused(ctx: &ConnCtx, route: Option<&Route>, rejection: &Rejection) {
    let (client, started) = (&ctx.client, ctx.started);
    tracing::info!(
        target: "wsgate::access",
        conn = ctx.id,
        client = %client.addr,
        api = route.map(|r| r.api.name.as_str()).unwrap_or("-"),
        endpoint = rejection.endpoint().unwrap_or("-"),
        status = rejection.status(),
        side = ?rejection.side(),
        duration_ms = started.elapsed().as_millis() as u64,
        reason = %rejection,
        "connection refused"
    );
}

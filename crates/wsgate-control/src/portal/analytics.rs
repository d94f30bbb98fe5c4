//! Session analytics pages: the publisher's per-API charts (a tab of the API) and the
//! developer portal's per-application usage. Both call the functions behind the REST handlers
//! (`GET /api/v1/apis/{id}/analytics`, `GET /api/v1/applications/{id}/analytics`), so who may
//! see what is decided in one place, and draw the answer with `charts`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use wsgate_core::model::Role;

use super::charts::{self, Series};
use super::html::{Area, Page, esc};
use super::publisher::{Tab, tabs};
use super::visit;
use crate::rest::analytics::{Analytics, Point, Range, RangeQuery, api_analytics, application_analytics};
use crate::state::AppState;

/// `/publisher/apis/{id}/analytics?range=hour|day|week`, publishers only.
pub async fn api_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(range): Query<RangeQuery>,
) -> Response {
    const AREA: Area = Area::Publisher;
    let base = format!("/publisher/apis/{id}/analytics");
    let caller = match visit::page(&state, &headers, AREA, &base).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    if let Some(refusal) = visit::lacking(&caller, AREA, Role::Publisher) {
        return refusal;
    }
    let api = match super::backend::api(&state, &caller, &id).await {
        Ok(api) => api,
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    let analytics = match api_analytics(&state, &caller, &api.id, &range).await {
        Ok(analytics) => analytics,
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    let top: Vec<(String, u64)> = analytics
        .top_applications
        .iter()
        .flatten()
        .map(|app| (if app.name.is_empty() { app.application_id.clone() } else { app.name.clone() }, app.messages))
        .collect();
    let body = format!(
        "{tabs}{ranges}{charts}{top}",
        tabs = tabs(&api, &caller, Tab::Analytics),
        ranges = range_links(&base, analytics.range),
        charts = charts(&analytics),
        top = charts::ranking(
            "top-applications",
            "Top applications (messages)",
            &top,
            "No application connected in this range."
        ),
    );
    let title = format!("{} {}: analytics", api.name, api.version);
    Page { area: AREA, title: &title, viewer: Some(visit::viewer(&caller)), notice: None, body }.render(StatusCode::OK)
}

/// `/devportal/applications/{id}/analytics?range=hour|day|week`, the application's owner.
pub async fn application_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(range): Query<RangeQuery>,
) -> Response {
    const AREA: Area = Area::Devportal;
    let base = format!("/devportal/applications/{id}/analytics");
    let caller = match visit::page(&state, &headers, AREA, &base).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let app = match crate::rest::applications::owned(&state, &caller, &id).await {
        Ok(app) => app,
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    let analytics = match application_analytics(&state, &caller, &app.id, &range).await {
        Ok(analytics) => analytics,
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    let apis: Vec<(String, u64)> =
        analytics.apis.iter().flatten().map(|api| (api.name.clone(), api.messages)).collect();
    let body = format!(
        r#"<p><a href="/devportal/applications">Back to applications</a></p>{ranges}{charts}{apis}"#,
        ranges = range_links(&base, analytics.range),
        charts = charts(&analytics),
        apis = charts::ranking("apis", "APIs used (messages)", &apis, "No connection in this range."),
    );
    let title = format!("{}: usage", app.name);
    Page { area: AREA, title: &title, viewer: Some(visit::viewer(&caller)), notice: None, body }.render(StatusCode::OK)
}

fn range_links(base: &str, current: Range) -> String {
    let links: String = Range::ALL
        .into_iter()
        .map(|range| {
            let label = match range {
                Range::Hour => "Last hour",
                Range::Day => "Last day",
                Range::Week => "Last week",
            };
            let current = if range == current { r#" aria-current="page""# } else { "" };
            format!(r#"<a href="{}?range={}"{current}>{label}</a>"#, esc(base), range.as_str())
        })
        .collect();
    format!(r#"<nav class="tabs ranges" aria-label="Time range">{links}</nav>"#)
}

/// The charts both pages share: open connections, messages/s and bytes each way, refusals
/// over time, and refusals and closes by code.
fn charts(analytics: &Analytics) -> String {
    let starts: Vec<i64> = analytics.series.iter().map(|point| point.at).collect();
    let values = |pick: fn(&Point) -> f64| analytics.series.iter().map(pick).collect::<Vec<f64>>();
    let open = charts::bars(
        "open-connections",
        "Open connections",
        &starts,
        &[Series { name: "open", label: "open", values: values(|p| p.counts.open_connections as f64) }],
    );
    let messages = charts::bars(
        "messages-per-second",
        "Messages per second",
        &starts,
        &[
            Series { name: "in", label: "from clients", values: values(|p| p.messages_in_per_second) },
            Series { name: "out", label: "to clients", values: values(|p| p.messages_out_per_second) },
        ],
    );
    let bytes = charts::bars(
        "bytes",
        "Bytes",
        &starts,
        &[
            Series { name: "in", label: "from clients", values: values(|p| p.counts.bytes_in as f64) },
            Series { name: "out", label: "to clients", values: values(|p| p.counts.bytes_out as f64) },
        ],
    );
    let refused = charts::bars(
        "refusals",
        "Refused handshakes",
        &starts,
        &[Series { name: "refused", label: "refused", values: values(|p| p.counts.refused as f64) }],
    );
    let statuses: Vec<(String, u64)> =
        analytics.refusals.iter().map(|r| (format!("HTTP {}", r.status), r.count)).collect();
    let closes: Vec<(String, u64)> =
        analytics.closes.iter().map(|c| (format!("{} by {}", c.code, c.closed_by), c.count)).collect();
    let t = &analytics.totals;
    format!(
        r#"<p class="totals" data-opened="{opened}" data-refused="{refused_total}" data-messages-in="{mi}" data-messages-out="{mo}">{opened} connections opened, {refused_total} refused; {mi} messages from clients, {mo} to clients; {bi} bytes in, {bo} bytes out. Slots of {step}. Times in UTC.</p>
<div class="charts">{open}{messages}{bytes}{refused}</div>
<div class="rankings">{statuses}{closes}</div>"#,
        opened = t.opened,
        refused_total = t.refused,
        mi = t.messages_in,
        mo = t.messages_out,
        bi = t.bytes_in,
        bo = t.bytes_out,
        step = match analytics.step_seconds {
            60 => "one minute".to_string(),
            seconds if seconds % 3600 == 0 => format!("{} hours", seconds / 3600),
            seconds => format!("{} minutes", seconds / 60),
        },
        statuses = charts::ranking("refusals-by-status", "Refusals by status", &statuses, "No handshake refused."),
        closes = charts::ranking("closes-by-code", "Closes by code", &closes, "No connection closed."),
    )
}

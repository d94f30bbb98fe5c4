//! Session analytics: `GET /api/v1/apis/{id}/analytics` (publishers and admins: the API's
//! series, refusals, closes and top applications) and `GET /api/v1/applications/{id}/analytics`
//! (the application's owner and admins: its own series and the APIs it used), each over
//! `?range=hour|day|week`. The numbers are the analytics writer's per-minute buckets, summed in
//! the store; the series is dense (every slot of the range, zeros included) so a chart needs no
//! gap logic.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use wsgate_core::model::Role;
use wsgate_store::analytics::{AnalyticsFilter, CodeKind, Counts, MINUTE, SeriesPoint, Span, TopBy};

use super::applications::owned;
use super::extract::Query;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// How far back a chart looks, and the slot it sums into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Range {
    Hour,
    Day,
    Week,
}

impl Range {
    pub const ALL: [Range; 3] = [Range::Hour, Range::Day, Range::Week];

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "hour",
            Range::Day => "day",
            Range::Week => "week",
        }
    }

    /// `hour` by default; anything else is a 400 that lists the choices.
    pub fn parse(text: Option<&str>) -> Result<Range, ApiError> {
        match text {
            None | Some("") => Ok(Range::Hour),
            Some(text) => {
                Range::ALL.into_iter().find(|range| range.as_str() == text).ok_or_else(|| ApiError::MalformedBody {
                    message: format!("range: \"{text}\" is not a range; use hour, day or week"),
                    field: Some("range".into()),
                })
            }
        }
    }

    /// Seconds covered and seconds per slot: 60 minutes, 96 quarters of an hour, 84 two-hour
    /// slots.
    fn length_and_step(self) -> (i64, i64) {
        match self {
            Range::Hour => (3600, MINUTE),
            Range::Day => (86_400, 15 * MINUTE),
            Range::Week => (7 * 86_400, 2 * 3600),
        }
    }

    /// The span ending with the current minute (included) at `now` (Unix seconds).
    pub fn span(self, now: i64) -> Span {
        let (length, step) = self.length_and_step();
        let to = now - now.rem_euclid(MINUTE) + MINUTE;
        Span { from: to - length, to, step }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RangeQuery {
    pub range: Option<String>,
}

/// One slot of the chart, rates per second over the slot.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Unix seconds at the slot's start.
    pub at: i64,
    #[serde(flatten)]
    pub counts: Counts,
    pub messages_in_per_second: f64,
    pub messages_out_per_second: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusCount {
    pub status: u16,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CloseCount {
    pub code: u16,
    /// `client`, `upstream` or `gateway`.
    pub closed_by: &'static str,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopApplication {
    pub application_id: String,
    /// Empty when the application was deleted since.
    pub name: String,
    pub connections: u64,
    pub messages: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiUsed {
    /// The store id, or `config:<name>:<version>` for an API of the config file.
    pub api_id: String,
    pub name: String,
    pub connections: u64,
    pub messages: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analytics {
    pub range: Range,
    pub from: i64,
    pub to: i64,
    pub step_seconds: i64,
    pub series: Vec<Point>,
    /// Sums over the range; `open_connections` is the busiest slot's.
    pub totals: Counts,
    pub refusals: Vec<StatusCount>,
    pub closes: Vec<CloseCount>,
    /// API analytics only: the ten applications with the most messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_applications: Option<Vec<TopApplication>>,
    /// Application analytics only: the APIs it used, most messages first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apis: Option<Vec<ApiUsed>>,
}

/// How many lines a top list has.
const TOP: usize = 10;

/// Every slot of `span`, with the store's points where there are some.
fn dense(span: Span, points: &[SeriesPoint]) -> Vec<Point> {
    let mut stored = points.iter().peekable();
    let mut series = Vec::new();
    let mut at = span.from;
    while at < span.to {
        let counts = match stored.peek() {
            Some(point) if point.at == at => stored.next().map(|point| point.counts).unwrap_or_default(),
            _ => Counts::default(),
        };
        let per_second = |count: u64| count as f64 / span.step as f64;
        series.push(Point {
            at,
            messages_in_per_second: per_second(counts.messages_in),
            messages_out_per_second: per_second(counts.messages_out),
            counts,
        });
        at += span.step;
    }
    series
}

/// The series, totals and codes of `filter` over `range`; the caller adds its top list.
async fn common(state: &AppState, filter: AnalyticsFilter<'_>, range: Range) -> Result<(Analytics, Span), ApiError> {
    let span = range.span(crate::now());
    let points = state.store().analytics_series(filter, span).await?;
    let mut totals = Counts::default();
    for point in &points {
        let busiest = totals.open_connections.max(point.counts.open_connections);
        totals.add(&point.counts);
        totals.open_connections = busiest;
    }
    let mut refusals = Vec::new();
    let mut closes = Vec::new();
    for code in state.store().analytics_codes(filter, span.from, span.to).await? {
        let closed_by = match code.kind {
            CodeKind::Refused => {
                refusals.push(StatusCount { status: code.code, count: code.total });
                continue;
            }
            CodeKind::CloseClient => "client",
            CodeKind::CloseUpstream => "upstream",
            CodeKind::CloseGateway => "gateway",
        };
        closes.push(CloseCount { code: code.code, closed_by, count: code.total });
    }
    let analytics = Analytics {
        range,
        from: span.from,
        to: span.to,
        step_seconds: span.step,
        series: dense(span, &points),
        totals,
        refusals,
        closes,
        top_applications: None,
        apis: None,
    };
    Ok((analytics, span))
}

/// For publishers and admins, as the API's usage.
pub async fn of_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<RangeQuery>,
) -> Result<Json<Analytics>, ApiError> {
    api_analytics(&state, &caller, &id, &query).await.map(Json)
}

/// The API's series, for the REST handler and the publisher's page alike.
pub(crate) async fn api_analytics(
    state: &AppState,
    caller: &Caller,
    id: &str,
    query: &RangeQuery,
) -> Result<Analytics, ApiError> {
    caller.require(Role::Publisher)?;
    let range = Range::parse(query.range.as_deref())?;
    let api = state.store().api(id).await?.ok_or_else(|| ApiError::not_found("API"))?;
    let filter = AnalyticsFilter { api: Some(&api.id), application: None };
    let (mut analytics, span) = common(state, filter, range).await?;
    let mut top = Vec::new();
    for entry in state.store().analytics_top(filter, span.from, span.to, TopBy::Application, TOP).await? {
        let name = state.store().application(&entry.key).await?.map(|app| app.name).unwrap_or_default();
        top.push(TopApplication {
            application_id: entry.key,
            name,
            connections: entry.connections,
            messages: entry.messages,
            bytes: entry.bytes,
        });
    }
    analytics.top_applications = Some(top);
    Ok(analytics)
}

/// For the application's owner and admins; another user's application is "not found".
pub async fn of_application(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<RangeQuery>,
) -> Result<Json<Analytics>, ApiError> {
    application_analytics(&state, &caller, &id, &query).await.map(Json)
}

/// The application's series, for the REST handler and the developer portal's page alike.
pub(crate) async fn application_analytics(
    state: &AppState,
    caller: &Caller,
    id: &str,
    query: &RangeQuery,
) -> Result<Analytics, ApiError> {
    let app = owned(state, caller, id).await?;
    let range = Range::parse(query.range.as_deref())?;
    let filter = AnalyticsFilter { api: None, application: Some(&app.id) };
    let (mut analytics, span) = common(state, filter, range).await?;
    let mut apis = Vec::new();
    for entry in state.store().analytics_top(filter, span.from, span.to, TopBy::Api, TOP).await? {
        let name = match entry.key.strip_prefix("config:") {
            Some(config) => config.replacen(':', " ", 1),
            None => state
                .store()
                .api(&entry.key)
                .await?
                .map(|api| format!("{} {}", api.name, api.version))
                .unwrap_or_default(),
        };
        apis.push(ApiUsed {
            api_id: entry.key,
            name,
            connections: entry.connections,
            messages: entry.messages,
            bytes: entry.bytes,
        });
    }
    analytics.apis = Some(apis);
    Ok(analytics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_end_with_the_current_minute() {
        let span = Range::Hour.span(1_000_030);
        assert_eq!(span.to, 1_000_020 + 60);
        assert_eq!((span.to - span.from) / span.step, 60);
        let week = Range::Week.span(1_000_030);
        assert_eq!((week.to - week.from) / week.step, 84);
        assert_eq!(dense(Range::Day.span(1_000_030), &[]).len(), 96);
        assert!(Range::parse(Some("year")).is_err_and(|e| e.to_string().contains("hour, day or week")));
        assert_eq!(Range::parse(None).ok(), Some(Range::Hour));
    }
}

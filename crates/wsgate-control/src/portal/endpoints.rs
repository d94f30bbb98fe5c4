//! An API's "Endpoints" tab: each endpoint's state as this node's gateway sees it (up,
//! suspended with the seconds left, half-open, down; connections, failures, the last failure)
//! and the endpoint settings (timeouts, sizes, keepalive, retries, load balancing and weights,
//! circuit breaker, active probe) and `Origin` allow-list, edited by creators.
//!
//! The state comes from `rest::apis::endpoint_state` and the save goes through the REST PUT
//! (`backend::update_api`), so the page shows and refuses exactly what `GET
//! /api/v1/apis/{id}/endpoints` and `PUT /api/v1/apis/{id}` do. What the page can tell on its
//! own (a number that is not a number, a missing weight) it tells for every field at once.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};
use wsgate_core::duration;
use wsgate_core::model::{ApiRecord, Role};
use wsgate_core::upstream::{Balancing, ProbeKind};

use super::configure::put_body;
use super::forms::{Form, Problems};
use super::html::{Area, Notice, Page, csrf_input, esc, see_other, text_field};
use super::publisher::{NoticeQuery, Tab, tabs};
use super::{backend, visit};
use crate::auth::Caller;
use crate::rest::apis::{EndpointsView, endpoint_state};
use crate::state::AppState;

const AREA: Area = Area::Publisher;

/// Whether a field holds text (a duration, a path) or a whole number (what the form checks on its own).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
}

/// A text field of the form: its key (the REST path below `endpoint_settings`), label, hint.
struct Field {
    key: &'static str,
    label: &'static str,
    hint: &'static str,
    kind: Kind,
}

const fn field(key: &'static str, label: &'static str, hint: &'static str, kind: Kind) -> Field {
    Field { key, label, hint, kind }
}

const TIMEOUTS: &[Field] = &[
    field(
        "connect_timeout",
        "Connect timeout",
        "TCP connect to one endpoint, e.g. 2s. Empty: the gateway's default.",
        Kind::Text,
    ),
    field(
        "upstream_handshake_timeout",
        "Upstream handshake timeout",
        "TLS and the endpoint's answer to the upgrade, e.g. 5s. Empty: the gateway's default.",
        Kind::Text,
    ),
    field(
        "idle_timeout",
        "Idle timeout",
        "No frame either way for this long closes the connection (1001). Empty: the gateway's default.",
        Kind::Text,
    ),
    field(
        "close_timeout",
        "Close timeout",
        "How long a side may take to answer a close frame. Empty: the gateway's default.",
        Kind::Text,
    ),
    field(
        "max_lifetime",
        "Maximum lifetime",
        "The longest a connection may live, then both sides get 1001, e.g. 1h. Empty: the gateway's default.",
        Kind::Text,
    ),
];

const SIZES: &[Field] = &[
    field(
        "max_frame_size",
        "Largest frame (bytes)",
        "Larger frames are closed with 1009. Empty: the gateway's default.",
        Kind::Number,
    ),
    field(
        "max_message_size",
        "Largest message (bytes)",
        "All fragments together; larger is closed with 1009. Empty: the gateway's default.",
        Kind::Number,
    ),
];

const KEEPALIVE: &[Field] = &[
    field(
        "ping_interval",
        "Ping interval",
        "A ping to each quiet side this often detects dead peers, e.g. 30s. Empty: the gateway's default.",
        Kind::Text,
    ),
    field(
        "ping_timeout",
        "Ping timeout",
        "A pinged side silent this long is closed. Empty: the gateway's default.",
        Kind::Text,
    ),
];

const RETRIES: Field = field(
    "retries",
    "Retries",
    "Further endpoints tried when connecting to one fails (at most 16). Empty: 2.",
    Kind::Number,
);

const BREAKER: &[Field] = &[
    field(
        "breaker.consecutive_failures",
        "Failures in a row",
        "That many failed connects in a row suspend the endpoint (0: only the ratio counts).",
        Kind::Number,
    ),
    field("breaker.failure_percent", "Failure percentage", "Or this share of failures (0-100) ...", Kind::Number),
    field("breaker.min_attempts", "Over at least (attempts)", "... over at least this many attempts ...", Kind::Number),
    field("breaker.window", "Within (window)", "... within this window, e.g. 30s.", Kind::Text),
    field(
        "breaker.cool_down",
        "Suspended for (cool-down)",
        "Then the endpoint is skipped this long, e.g. 10s; one trial connection follows.",
        Kind::Text,
    ),
    field(
        "breaker.progression_factor",
        "Progression factor",
        "Each failed trial multiplies the cool-down by this (1-10).",
        Kind::Number,
    ),
    field("breaker.max_cool_down", "Longest cool-down", "The cool-down grows up to this, e.g. 5m.", Kind::Text),
];

const PROBE: &[Field] = &[
    field(
        "probe.path",
        "Probe path",
        "The path a WebSocket probe upgrades (below the endpoint's own path), e.g. /health.",
        Kind::Text,
    ),
    field("probe.interval", "Probe every", "e.g. 10s (at least 100ms).", Kind::Text),
    field("probe.timeout", "Probe timeout", "A probe that takes longer fails, e.g. 2s.", Kind::Text),
    field(
        "probe.unhealthy_after",
        "Down after (failed probes)",
        "Failed probes in a row that mark an endpoint down.",
        Kind::Number,
    ),
    field(
        "probe.healthy_after",
        "Up after (passed probes)",
        "Passed probes in a row that mark it up again.",
        Kind::Number,
    ),
];

/// What the form shows: the stored settings, or what was typed when something was refused.
#[derive(Default)]
struct Draft {
    /// Text and select fields by key.
    values: BTreeMap<&'static str, String>,
    /// One per endpoint, in order; all empty: equal weights.
    weights: Vec<String>,
    breaker: bool,
    /// One origin per line.
    origins: String,
}

impl Draft {
    fn get(&self, key: &str) -> &str {
        self.values.get(key).map_or("", String::as_str)
    }

    fn of(api: &ApiRecord) -> Draft {
        let settings = &api.endpoint_settings;
        let text = |d: Option<std::time::Duration>| d.map(duration::format).unwrap_or_default();
        let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        let breaker = &settings.breaker;
        let probe = settings.probe.clone();
        let shown_probe = probe.clone().unwrap_or_default();
        let values: BTreeMap<&'static str, String> = [
            ("connect_timeout", text(settings.connect_timeout)),
            ("upstream_handshake_timeout", text(settings.upstream_handshake_timeout)),
            ("idle_timeout", text(settings.idle_timeout)),
            ("close_timeout", text(settings.close_timeout)),
            ("max_lifetime", text(settings.max_lifetime)),
            ("max_frame_size", number(settings.max_frame_size)),
            ("max_message_size", number(settings.max_message_size)),
            ("ping_interval", text(settings.ping_interval)),
            ("ping_timeout", text(settings.ping_timeout)),
            ("retries", number(settings.retries.map(u64::from))),
            ("load_balancing", settings.load_balancing.as_str().to_string()),
            ("breaker.consecutive_failures", breaker.consecutive_failures.to_string()),
            ("breaker.failure_percent", breaker.failure_percent.to_string()),
            ("breaker.min_attempts", breaker.min_attempts.to_string()),
            ("breaker.window", duration::format(breaker.window)),
            ("breaker.cool_down", duration::format(breaker.cool_down)),
            ("breaker.progression_factor", breaker.progression_factor.to_string()),
            ("breaker.max_cool_down", duration::format(breaker.max_cool_down)),
            ("probe.kind", probe.map_or("off", |p| probe_kind(p.kind)).to_string()),
            ("probe.path", shown_probe.path.clone()),
            ("probe.interval", duration::format(shown_probe.interval)),
            ("probe.timeout", duration::format(shown_probe.timeout)),
            ("probe.unhealthy_after", shown_probe.unhealthy_after.to_string()),
            ("probe.healthy_after", shown_probe.healthy_after.to_string()),
        ]
        .into_iter()
        .collect();
        let weights =
            (0..api.endpoints.len()).map(|i| settings.weights.get(i).map(u32::to_string).unwrap_or_default()).collect();
        Draft { values, weights, breaker: breaker.enabled, origins: api.allowed_origins.join("\n") }
    }

    fn from_form(form: &Form, endpoints: usize) -> Draft {
        let mut values = BTreeMap::new();
        let keys = TIMEOUTS.iter().chain(SIZES).chain(KEEPALIVE).chain([&RETRIES]).chain(BREAKER).chain(PROBE);
        for field in keys {
            values.insert(field.key, form.get(field.key).to_string());
        }
        values.insert("load_balancing", form.get("load_balancing").to_string());
        values.insert("probe.kind", form.get("probe.kind").to_string());
        let mut weights = form.every("weight");
        weights.resize(endpoints, String::new());
        Draft {
            values,
            weights,
            breaker: form.checked("breaker.enabled"),
            origins: form.raw("allowed_origins").to_string(),
        }
    }

    /// The `endpoint_settings` and `allowed_origins` of the PUT body, or what is wrong.
    fn to_json(&self, problems: &mut Problems) -> (Value, Vec<String>) {
        let mut top = Map::new();
        let mut breaker = Map::new();
        let mut probe = Map::new();
        let all = TIMEOUTS.iter().chain(SIZES).chain(KEEPALIVE).chain([&RETRIES]).chain(BREAKER).chain(PROBE);
        for field in all {
            let text = self.get(field.key);
            if text.is_empty() {
                continue;
            }
            let value = match field.kind {
                Kind::Text => Value::String(text.to_string()),
                Kind::Number => match text.parse::<u64>() {
                    Ok(n) => json!(n),
                    Err(_) => {
                        problems.field(
                            format!("endpoint_settings.{}", field.key),
                            format!("\"{text}\" is not a whole number"),
                        );
                        continue;
                    }
                },
            };
            match field.key.split_once('.') {
                Some(("breaker", key)) => breaker.insert(key.into(), value),
                Some(("probe", key)) => probe.insert(key.into(), value),
                _ => top.insert(field.key.into(), value),
            };
        }
        top.insert("load_balancing".into(), json!(self.get("load_balancing")));
        breaker.insert("enabled".into(), json!(self.breaker));
        top.insert("breaker".into(), Value::Object(breaker));
        match self.get("probe.kind") {
            "" | "off" => {}
            kind => {
                probe.insert("kind".into(), json!(kind));
                top.insert("probe".into(), Value::Object(probe));
            }
        }
        if self.weights.iter().any(|w| !w.is_empty()) {
            let mut weights = Vec::new();
            for (i, weight) in self.weights.iter().enumerate() {
                match weight.parse::<u32>() {
                    Ok(n) => weights.push(n),
                    Err(_) => problems.field(
                        "endpoint_settings.weights",
                        format!(
                            "endpoint {}'s weight \"{weight}\" is not a whole number: give every endpoint a weight, or leave them all empty",
                            i + 1
                        ),
                    ),
                }
            }
            top.insert("weights".into(), json!(weights));
        }
        let origins = self.origins.split_whitespace().map(str::to_string).collect();
        (Value::Object(top), origins)
    }
}

fn probe_kind(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Tcp => "tcp",
        ProbeKind::Websocket => "websocket",
    }
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let back = format!("/publisher/apis/{id}/endpoints");
    let caller = match visit::page(&state, &headers, AREA, &back).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    if let Some(refusal) = visit::outside_publisher_area(&caller) {
        return refusal;
    }
    let api = match backend::api(&state, &caller, &id).await {
        Ok(api) => api,
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    render(&state, &caller, &api, &Draft::of(&api), &Problems::default(), query.notice(), StatusCode::OK).await
}

async fn render(
    state: &AppState,
    caller: &Caller,
    api: &ApiRecord,
    draft: &Draft,
    problems: &Problems,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let view = match endpoint_state(state, caller, &api.id).await {
        Ok(view) => view,
        Err(err) => return visit::failure(AREA, caller, err),
    };
    let save = if caller.has(Role::Creator) {
        r#"<div class="actions"><button type="submit" class="primary">Save endpoint settings</button></div>"#
    } else {
        r#"<p class="hint">Changing the endpoint settings needs the creator role.</p>"#
    };
    let fields = |list: &[Field]| -> String {
        let html: String = list
            .iter()
            .map(|f| {
                let problem = on(problems, &format!("endpoint_settings.{}", f.key));
                let placeholder = if f.hint.contains("Empty:") { r#"placeholder="gateway default""# } else { "" };
                text_field(f.key, f.label, draft.get(f.key), f.hint, problem.as_deref(), placeholder)
            })
            .collect();
        format!(r#"<div class="field-grid">{html}</div>"#)
    };
    let breaker_problem = on(problems, "endpoint_settings.breaker");
    let body = format!(
        r#"{tabs}
{summary}<section class="endpoint-state" aria-labelledby="state-heading">
<h2 id="state-heading">Endpoint state</h2>
{state_table}
</section>
<form method="post" action="/publisher/apis/{id}/endpoints" class="card" novalidate>
<h2>Endpoint settings</h2>
<p class="hint">Each setting overrides the gateway's default for this API only. Durations are a whole number and a unit: 250ms, 10s, 5m, 1h, 7d.</p>
{csrf}
<fieldset><legend>Timeouts</legend>{timeouts}</fieldset>
<fieldset><legend>Message sizes</legend>{sizes}</fieldset>
<fieldset><legend>Keepalive pings</legend>{keepalive}</fieldset>
<fieldset><legend>Retries and load balancing</legend>
{retries}
{balancing}
{weights}
</fieldset>
<fieldset class="{breaker_cls}"{breaker_described}><legend>Circuit breaker (passive health check)</legend>
<label class="check"><input type="checkbox" name="breaker.enabled"{breaker_on}> Suspend an endpoint that keeps failing
<span class="hint">On by default: clients then get 503 at once instead of waiting for a dead endpoint's timeout.</span></label>
{breaker_error}
{breaker}
</fieldset>
<fieldset><legend>Active probe</legend>
{probe_kind}
{probe}
</fieldset>
{origins}
{save}
</form>"#,
        tabs = tabs(api, caller, Tab::Endpoints),
        summary = problems.summary(),
        state_table = state_table(&view),
        id = esc(&api.id),
        csrf = csrf_input(&caller.csrf_token),
        timeouts = fields(TIMEOUTS),
        sizes = fields(SIZES),
        keepalive = fields(KEEPALIVE),
        retries = fields(std::slice::from_ref(&RETRIES)),
        balancing =
            balancing_select(draft.get("load_balancing"), on(problems, "endpoint_settings.load_balancing").as_deref()),
        weights = weight_fields(api, draft, on(problems, "endpoint_settings.weights").as_deref()),
        breaker_error = breaker_problem
            .as_deref()
            .map(|m| format!(r#"<p class="field-error" id="breaker-error">{}</p>"#, esc(m)))
            .unwrap_or_default(),
        breaker_cls = if breaker_problem.is_some() { "has-error" } else { "" },
        breaker_described = if breaker_problem.is_some() { r#" aria-describedby="breaker-error""# } else { "" },
        breaker_on = if draft.breaker { " checked" } else { "" },
        breaker = fields(BREAKER),
        probe_kind = probe_select(draft.get("probe.kind"), on(problems, "endpoint_settings.probe").as_deref()),
        probe = fields(PROBE),
        origins = origins_field(&draft.origins, on(problems, "allowed_origins").as_deref()),
    );
    let title = format!("{} {}: endpoints", api.name, api.version);
    Page { area: AREA, title: &title, viewer: Some(visit::viewer(caller)), notice, body }.render(status)
}

/// The message for `field`, without the REST API's `endpoint_settings.x: ` prefix (the message
/// stands next to its field here); an origin's index becomes the textarea's line.
fn on(problems: &Problems, field: &str) -> Option<String> {
    let message = problems.on(field)?;
    if let Some(rest) = message.strip_prefix("allowed_origins[")
        && let Some((index, problem)) = rest.split_once("]: ")
        && let Ok(index) = index.parse::<usize>()
    {
        return Some(format!("Line {}: {problem}", index + 1));
    }
    Some(message.strip_prefix(&format!("{field}: ")).unwrap_or(message).to_string())
}

/// Each endpoint's state, in words a publisher reads at a glance.
fn state_table(view: &EndpointsView) -> String {
    if view.endpoints.is_empty() {
        return r#"<p class="empty">No endpoints yet: add one on the Configuration tab.</p>"#.into();
    }
    let rows: String = view
        .endpoints
        .iter()
        .map(|view| {
            let e = &view.status;
            let raw = e.state.as_str();
            let state = match (raw, e.retry_in_ms) {
                ("suspended", Some(ms)) => format!("suspended, retry in {} s", ms.div_ceil(1000)),
                ("half_open", _) => "half-open (next connection is a trial)".into(),
                (state, _) => state.to_string(),
            };
            format!(
                r#"<tr data-endpoint="{url}" data-state="{raw}"><th scope="row"><code>{url}</code></th><td><span class="badge badge-{raw}">{state}</span></td><td>{weight}</td><td>{active}</td><td>{failures}</td><td>{last}</td></tr>"#,
                url = esc(&e.url),
                raw = esc(raw),
                state = esc(&state),
                weight = view.weight.map(|w| w.to_string()).unwrap_or_else(|| "–".into()),
                active = e.active_connections,
                failures = e.consecutive_failures,
                last = e.last_failure.as_deref().map(esc).unwrap_or_else(|| r#"<span class="hint">none</span>"#.into()),
            )
        })
        .collect();
    let note = if view.reported {
        r#"<p class="hint">As this node's gateway sees them now; reload the page to refresh.</p>"#
    } else {
        r#"<p class="hint" data-unreported>This node's gateway reports no state for this API: it is not published, the gateway has not loaded it yet, or this control plane runs without a gateway.</p>"#
    };
    format!(
        r#"<div class="table-wrap"><table><caption class="visually-hidden">Endpoint state</caption>
<thead><tr><th scope="col">Endpoint</th><th scope="col">State</th><th scope="col">Weight</th><th scope="col">Active connections</th><th scope="col">Failures in a row</th><th scope="col">Last failure</th></tr></thead>
<tbody>{rows}</tbody></table></div>
{note}"#
    )
}

fn select(
    name: &str,
    label: &str,
    hint: &str,
    options: &[(&str, &str)],
    chosen: &str,
    problem: Option<&str>,
) -> String {
    let id = format!("f-{name}");
    let options: String = options
        .iter()
        .map(|(value, text)| {
            let selected = if *value == chosen { " selected" } else { "" };
            format!(r#"<option value="{value}"{selected}>{text}</option>"#, value = esc(value), text = esc(text))
        })
        .collect();
    let error =
        problem.map(|m| format!(r#"<p class="field-error" id="{id}-error">{}</p>"#, esc(m))).unwrap_or_default();
    let described = if problem.is_some() { format!("{id}-hint {id}-error") } else { format!("{id}-hint") };
    format!(
        r#"<div class="field{cls}"><label for="{id}">{label}</label><select id="{id}" name="{name}" aria-describedby="{described}">{options}</select><p class="hint" id="{id}-hint">{hint}</p>{error}</div>"#,
        cls = if problem.is_some() { " has-error" } else { "" },
        label = esc(label),
        hint = esc(hint),
    )
}

fn balancing_select(chosen: &str, problem: Option<&str>) -> String {
    let options: Vec<(&str, &str)> = Balancing::ALL
        .iter()
        .map(|b| {
            let text = match b {
                Balancing::RoundRobin => "Round robin (in turn, by weight)",
                Balancing::LeastConnections => "Least connections (for its weight)",
                Balancing::HashApplication => "Sticky by application",
                Balancing::HashClientAddress => "Sticky by client address",
            };
            (b.as_str(), text)
        })
        .collect();
    select(
        "load_balancing",
        "Load balancing",
        "How a new connection picks among the endpoints that are up.",
        &options,
        chosen,
        problem,
    )
}

fn probe_select(chosen: &str, problem: Option<&str>) -> String {
    let options = [("off", "Off"), ("tcp", "TCP connect"), ("websocket", "WebSocket upgrade to the probe path")];
    select(
        "probe.kind",
        "Probe",
        "Checks every endpoint at an interval, so a dead one is skipped before any client tries it.",
        &options,
        chosen,
        problem,
    )
}

/// One weight input per endpoint, labelled with the endpoint.
fn weight_fields(api: &ApiRecord, draft: &Draft, problem: Option<&str>) -> String {
    if api.endpoints.is_empty() {
        return String::new();
    }
    let inputs: String = api
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, url)| {
            format!(
                r#"<div class="field"><label for="f-weight-{i}">Weight of <code>{url}</code></label><input id="f-weight-{i}" name="weight" value="{value}" inputmode="numeric" placeholder="1" aria-describedby="weights-hint{err}"{invalid}></div>"#,
                url = esc(url),
                value = esc(draft.weights.get(i).map_or("", String::as_str)),
                err = if problem.is_some() { " weights-error" } else { "" },
                invalid = if problem.is_some() { r#" aria-invalid="true""# } else { "" },
            )
        })
        .collect();
    let error =
        problem.map(|m| format!(r#"<p class="field-error" id="weights-error">{}</p>"#, esc(m))).unwrap_or_default();
    format!(
        r#"<div class="weights{cls}"><p class="hint" id="weights-hint">Weights share the load in proportion (0 to 1000; 0 drains an endpoint). All empty: equal weights.</p><div class="field-grid">{inputs}</div>{error}</div>"#,
        cls = if problem.is_some() { " has-error" } else { "" },
    )
}

fn origins_field(origins: &str, problem: Option<&str>) -> String {
    let error =
        problem.map(|m| format!(r#"<p class="field-error" id="f-origins-error">{}</p>"#, esc(m))).unwrap_or_default();
    let described = if problem.is_some() { "f-origins-hint f-origins-error" } else { "f-origins-hint" };
    format!(
        r#"<fieldset class="{cls}"><legend>Allowed origins</legend><div class="field"><label for="f-origins">Web pages that may connect</label>
<textarea id="f-origins" name="allowed_origins" rows="3" spellcheck="false" placeholder="https://app.example.com" aria-describedby="{described}"{invalid}>{value}</textarea>
<p class="hint" id="f-origins-hint">One origin per line, as browsers send it: scheme://host[:port]. A browser page from any other origin gets 403 before authentication (the cross-site WebSocket hijacking defence). Empty: any origin. Clients that are not browsers send no Origin and are not affected.</p>{error}</div></fieldset>"#,
        cls = if problem.is_some() { "has-error" } else { "" },
        value = esc(origins),
        invalid = if problem.is_some() { r#" aria-invalid="true""# } else { "" },
    )
}

pub async fn save(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>, form: Form) -> Response {
    let back = format!("/publisher/apis/{id}/endpoints");
    let caller = match visit::form(&state, &headers, &form, AREA, &back).await {
        Ok(caller) => caller,
        Err(page) => return page,
    };
    let api = match backend::api(&state, &caller, &id).await {
        Ok(api) => api,
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    let draft = Draft::from_form(&form, api.endpoints.len());
    let mut problems = Problems::default();
    let (settings, origins) = draft.to_json(&mut problems);
    if !problems.is_empty() {
        return render(&state, &caller, &api, &draft, &problems, None, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let mut fields = put_body(&api);
    fields["endpoint_settings"] = settings;
    fields["allowed_origins"] = json!(origins);
    match backend::update_api(&state, &caller, &id, &fields).await {
        Ok(_) => see_other(&format!("/publisher/apis/{id}/endpoints?notice={}", Notice::EndpointsSaved.code())),
        Err(err) => {
            let status = err.status();
            render(&state, &caller, &api, &draft, &Problems::from_api(err), None, status).await
        }
    }
}

#[cfg(test)]
mod tests {
    use wsgate_core::upstream::{EndpointSettings, ProbeSettings};

    use super::*;

    /// A field added to `EndpointSettings` fails to compile here until the page knows it.
    #[test]
    fn the_page_knows_every_setting() {
        let EndpointSettings {
            connect_timeout: _,
            upstream_handshake_timeout: _,
            idle_timeout: _,
            close_timeout: _,
            max_frame_size: _,
            max_message_size: _,
            max_lifetime: _,
            ping_interval: _,
            ping_timeout: _,
            retries: _,
            load_balancing: _,
            weights: _,
            breaker: _,
            probe: _,
        } = EndpointSettings::default();
        let ProbeSettings { kind: _, path: _, interval: _, timeout: _, unhealthy_after: _, healthy_after: _ } =
            ProbeSettings::default();
    }

    #[test]
    fn a_draft_of_the_defaults_sends_the_defaults_back() {
        let api_settings = EndpointSettings {
            probe: Some(ProbeSettings {
                kind: ProbeKind::Websocket,
                path: "/health".into(),
                ..ProbeSettings::default()
            }),
            weights: vec![3, 1],
            connect_timeout: Some(std::time::Duration::from_millis(1500)),
            ..EndpointSettings::default()
        };
        let api = ApiRecord {
            endpoints: vec!["ws://a:1".into(), "ws://b:2".into()],
            endpoint_settings: api_settings.clone(),
            allowed_origins: vec!["https://app.example".into()],
            ..serde_json::from_value(json!({
                "id": "x", "name": "n", "context": "/c", "version": "1", "endpoints": [], "plans": [],
                "auth": "oauth2", "state": "CREATED", "default_version": false, "insecure_skip_verify": false,
                "owner": "o", "created_at": 0, "updated_at": 0
            }))
            .expect("a record")
        };
        let mut problems = Problems::default();
        let (settings, origins) = Draft::of(&api).to_json(&mut problems);
        assert!(problems.is_empty());
        let back: EndpointSettings = serde_json::from_value(settings).expect("settings");
        assert_eq!(back, api_settings);
        assert_eq!(origins, ["https://app.example"]);
    }
}

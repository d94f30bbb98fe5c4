//! An API's configuration (its endpoints, upstream TLS, scopes, what happens when a token
//! expires, plans; the endpoints' settings have their own tab, `endpoints`) and its lifecycle page, which offers exactly the moves
//! `Lifecycle::can_move_to` allows, to publishers only.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use wsgate_core::config::{AuthMode, Endpoint};
use wsgate_core::model::{ApiRecord, Lifecycle, Plan, Role};

use super::forms::{Form, Problems};
use super::html::{Area, Notice, Page, badge, csrf_input, esc, see_other, text_field};
use super::publisher::{Tab, endpoint_fields, plan_boxes, tabs};
use super::{backend, visit};
use crate::auth::Caller;
use crate::state::AppState;

const AREA: Area = Area::Publisher;

/// The signed-in publisher-area caller and the API, or the page that replaces them.
async fn open(state: &AppState, headers: &HeaderMap, id: &str, back: &str) -> Result<(Caller, ApiRecord), Response> {
    let caller = visit::page(state, headers, AREA, back).await?;
    if let Some(refusal) = visit::outside_publisher_area(&caller) {
        return Err(refusal);
    }
    let api = backend::api(state, &caller, id).await.map_err(|err| visit::failure(AREA, &caller, err))?;
    Ok((caller, api))
}

pub async fn form(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    match open(&state, &headers, &id, &format!("/publisher/apis/{id}/configure")).await {
        Ok((caller, api)) => render(&state, &caller, &api, &Problems::default(), StatusCode::OK).await,
        Err(page) => page,
    }
}

async fn render(
    state: &AppState,
    caller: &Caller,
    api: &ApiRecord,
    problems: &Problems,
    status: StatusCode,
) -> Response {
    let plans = match backend::list_plans(state, caller).await {
        Ok(plans) => plans,
        Err(err) => return visit::failure(AREA, caller, err),
    };
    let checked = |on: bool| if on { " checked" } else { "" };
    let save = if caller.has(Role::Creator) {
        r#"<button type="submit" class="primary">Save</button>"#
    } else {
        r#"<p class="hint">Changing the configuration needs the creator role.</p>"#
    };
    let body = format!(
        r#"{tabs}
{summary}<form method="post" action="/publisher/apis/{id}/configure" class="card" novalidate>
{csrf}
{endpoints}
<fieldset><legend>Upstream TLS (wss:// endpoints)</legend>
{ca_file}
<label class="check"><input type="checkbox" name="insecure_skip_verify"{insecure}> Skip certificate verification
<span class="hint">Admins only. Accepts any upstream certificate. Only for tests: the connection is then open to interception.</span></label>
</fieldset>
<fieldset><legend>Security</legend>
<label class="check"><input type="radio" name="auth" value="oauth2"{oauth2}> OAuth2 access token <span class="hint">(Authorization: Bearer, or ?access_token= for browsers)</span></label>
<label class="check"><input type="radio" name="auth" value="none"{open}> None <span class="hint">(anyone may connect)</span></label>
{scopes}
<label class="check"><input type="checkbox" name="close_on_token_expiry"{expiry}> Close connections when their token expires
<span class="hint">(close code 4001). Untick to let a connection outlive its token.</span></label>
</fieldset>
{plans}
<fieldset><legend>Limits beyond the subscription</legend>
{api_plan}
{client_plan}
</fieldset>
<label class="check"><input type="checkbox" name="default_version"{default}> Default version <span class="hint">(clients may leave the version out of the URL)</span></label>
<div class="actions">{save}</div>
</form>"#,
        tabs = tabs(api, caller, Tab::Configure),
        summary = problems.summary(),
        id = esc(&api.id),
        csrf = csrf_input(&caller.csrf_token),
        endpoints = endpoint_fields(&api.endpoints, problems),
        ca_file = text_field(
            "ca_file",
            "CA file",
            api.ca_file.as_deref().unwrap_or(""),
            "Admins only. Path on the gateway host of a PEM bundle to trust instead of the system roots; empty for the system roots.",
            problems.on("ca_file"),
            ""
        ),
        insecure = checked(api.insecure_skip_verify),
        oauth2 = checked(api.auth == AuthMode::Oauth2),
        open = checked(api.auth == AuthMode::None),
        scopes = text_field(
            "scopes",
            "Scopes",
            &api.scopes.join(" "),
            "Space-separated; a token must carry all of them, and a publisher grants them per subscription (Subscriptions tab). Empty: none required.",
            problems.on("scopes"),
            ""
        ),
        expiry = checked(api.close_on_token_expiry),
        plans = plan_boxes(&plans, &api.plans, problems.on("plans")),
        api_plan = plan_select(
            "api_plan",
            "API-wide plan",
            "All connections to this API share its limits, whoever they are: it protects the backend.",
            &plans,
            api.api_plan.as_deref(),
            problems.on("api_plan"),
        ),
        client_plan = plan_select(
            "client_plan",
            "Per client address plan",
            "Each client address gets its limits on its own: the limits of keyless APIs.",
            &plans,
            api.client_plan.as_deref(),
            problems.on("client_plan"),
        ),
        default = checked(api.default_version),
    );
    let title = format!("{} {}: configuration", api.name, api.version);
    Page { area: AREA, title: &title, viewer: Some(visit::viewer(caller)), notice: None, body }.render(status)
}

/// A choice of one plan or none, with each plan's limits in words.
fn plan_select(
    name: &str,
    label: &str,
    hint: &str,
    plans: &[Plan],
    chosen: Option<&str>,
    problem: Option<&str>,
) -> String {
    let none = if chosen.is_none() { " selected" } else { "" };
    let options: String = plans
        .iter()
        .map(|plan| {
            let selected = if chosen == Some(plan.name.as_str()) { " selected" } else { "" };
            format!(
                r#"<option value="{name}"{selected}>{name}: {limits}</option>"#,
                name = esc(&plan.name),
                limits = esc(&plan.limits.describe()),
            )
        })
        .collect();
    let error = problem.map(|m| format!(r#"<p class="field-error">{}</p>"#, esc(m))).unwrap_or_default();
    format!(
        r#"<div class="field{cls}"><label for="f-{name}">{label}</label><select id="f-{name}" name="{name}"><option value=""{none}>None</option>{options}</select><p class="hint">{hint}</p>{error}</div>"#,
        cls = if problem.is_some() { " has-error" } else { "" },
        label = esc(label),
        hint = esc(hint),
    )
}

pub async fn save(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>, form: Form) -> Response {
    let back = format!("/publisher/apis/{id}/configure");
    let caller = match visit::form(&state, &headers, &form, AREA, &back).await {
        Ok(caller) => caller,
        Err(page) => return page,
    };
    let mut api = match backend::api(&state, &caller, &id).await {
        Ok(api) => api,
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    // What was typed, shown again if something is refused.
    api.endpoints = form.all("endpoints");
    api.plans = form.all("plans");
    api.ca_file = Some(form.get("ca_file").to_string()).filter(|p| !p.is_empty());
    api.insecure_skip_verify = form.checked("insecure_skip_verify");
    api.auth = if form.get("auth") == "none" { AuthMode::None } else { AuthMode::Oauth2 };
    api.scopes = form.get("scopes").split_whitespace().map(str::to_string).collect();
    api.close_on_token_expiry = form.checked("close_on_token_expiry");
    api.default_version = form.checked("default_version");
    api.api_plan = Some(form.get("api_plan").to_string()).filter(|p| !p.is_empty());
    api.client_plan = Some(form.get("client_plan").to_string()).filter(|p| !p.is_empty());
    let mut problems = Problems::default();
    for (i, url) in api.endpoints.iter().enumerate() {
        if let Err(problem) = Endpoint::parse(url) {
            problems.field(format!("endpoints[{i}]"), problem);
        }
    }
    if !problems.is_empty() {
        return render(&state, &caller, &api, &problems, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    match backend::update_api(&state, &caller, &id, &put_body(&api)).await {
        Ok(_) => see_other(&format!("/publisher/apis/{id}?notice={}", Notice::ApiSaved.code())),
        Err(err) => {
            let status = err.status();
            // This page has no field for the endpoint settings: a refusal about them (weights
            // that no longer fit the endpoints) is said at the top.
            let mut problems = Problems::default();
            match &err {
                crate::error::ApiError::InvalidValue { field, .. } if field.starts_with("endpoint_settings") => {
                    problems.general(format!("{err} (see the Endpoints tab)"))
                }
                _ => problems.add_api(err),
            }
            render(&state, &caller, &api, &problems, status).await
        }
    }
}

/// The body of `PUT /api/v1/apis/{id}` that keeps `api` as it is, without `endpoint_settings`
/// and `allowed_origins` (absent keys keep the stored values); each form changes its fields.
pub fn put_body(api: &ApiRecord) -> serde_json::Value {
    json!({
        "name": api.name, "context": api.context, "version": api.version,
        "endpoints": api.endpoints, "plans": api.plans,
        "auth": if api.auth == AuthMode::None { "none" } else { "oauth2" },
        "default_version": api.default_version, "ca_file": api.ca_file,
        "insecure_skip_verify": api.insecure_skip_verify, "scopes": api.scopes,
        "close_on_token_expiry": api.close_on_token_expiry,
        "api_plan": api.api_plan, "client_plan": api.client_plan,
    })
}

/// The button for a move, and what it does for subscribers.
fn describe(from: Lifecycle, to: Lifecycle) -> (&'static str, &'static str) {
    match to {
        Lifecycle::Published if from == Lifecycle::Created => {
            ("Publish", "Shows the API in the Developer Portal and lets subscribed applications connect.")
        }
        Lifecycle::Published => ("Re-publish", "Makes the API available for new subscriptions and connections again."),
        Lifecycle::Deprecated => ("Deprecate", "Existing subscriptions keep working; no new subscriptions."),
        Lifecycle::Retired => ("Retire", "Final: the API takes no more connections and leaves the Developer Portal."),
        Lifecycle::Blocked => ("Block", "Refuses all connections until the API is published again."),
        Lifecycle::Created => ("Back to created", ""),
    }
}

pub async fn lifecycle(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (caller, api) = match open(&state, &headers, &id, &format!("/publisher/apis/{id}/lifecycle")).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    if let Some(refusal) = visit::lacking(&caller, AREA, Role::Publisher) {
        return refusal;
    }
    render_lifecycle(&caller, &api, &Problems::default(), StatusCode::OK)
}

fn render_lifecycle(caller: &Caller, api: &ApiRecord, problems: &Problems, status: StatusCode) -> Response {
    let states: String = Lifecycle::ALL
        .iter()
        .map(|s| {
            let current = if *s == api.state { r#" class="current" aria-current="step""# } else { "" };
            format!("<li{current}>{}</li>", s.as_str())
        })
        .collect();
    let moves: String = Lifecycle::ALL
        .into_iter()
        .filter(|to| api.state.can_move_to(*to))
        .map(|to| {
            let (label, effect) = describe(api.state, to);
            format!(
                r#"<form method="post" action="/publisher/apis/{id}/lifecycle" class="move">{csrf}<input type="hidden" name="state" value="{to}">
<button type="submit" class="{cls}">{label}</button> <span class="hint">{effect}</span></form>"#,
                id = esc(&api.id),
                csrf = csrf_input(&caller.csrf_token),
                to = to.as_str(),
                cls = if to == Lifecycle::Published { "primary" } else { "secondary" },
            )
        })
        .collect();
    let moves = if moves.is_empty() { r#"<p class="hint">A retired API stays retired.</p>"#.into() } else { moves };
    let body = format!(
        r#"{tabs}
{summary}<p>Current state: {badge}</p>
<ol class="lifecycle" aria-label="Lifecycle states">{states}</ol>
<h2>Change the state</h2>
{moves}"#,
        tabs = tabs(api, caller, Tab::Lifecycle),
        summary = problems.summary(),
        badge = badge(api.state.as_str()),
    );
    let title = format!("{} {}: lifecycle", api.name, api.version);
    Page { area: AREA, title: &title, viewer: Some(visit::viewer(caller)), notice: None, body }.render(status)
}

pub async fn move_to(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let back = format!("/publisher/apis/{id}/lifecycle");
    let caller = match visit::form(&state, &headers, &form, AREA, &back).await {
        Ok(caller) => caller,
        Err(page) => return page,
    };
    if let Some(refusal) = visit::lacking(&caller, AREA, Role::Publisher) {
        return refusal;
    }
    let Some(to) = Lifecycle::parse(form.get("state")) else {
        return visit::failure(AREA, &caller, crate::error::ApiError::invalid("state", "not a lifecycle state"));
    };
    match backend::move_api(&state, &caller, &id, to).await {
        Ok(_) => see_other(&format!("/publisher/apis/{id}?notice={}", Notice::ApiMoved.code())),
        // A refused move (say, publishing without an endpoint) is explained on the same page.
        Err(err) => match backend::api(&state, &caller, &id).await {
            Ok(api) => {
                // The page has no fields to attach a message to: say it at the top.
                let status = err.status();
                let mut problems = Problems::default();
                problems.general(err.to_string());
                render_lifecycle(&caller, &api, &problems, status)
            }
            Err(_) => visit::failure(AREA, &caller, err),
        },
    }
}

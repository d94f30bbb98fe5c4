//! The publisher's pages: the API list, "Create API" (CREATE, or CREATE & PUBLISH in one
//! step, each button shown only to a user whose roles allow it) and an API's overview.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use wsgate_core::config::{AuthMode, Endpoint};
use wsgate_core::model::{ApiRecord, Plan, Role};

use super::forms::{Form, Problems};
use super::html::{Area, Notice, Page, badge, csrf_input, esc, see_other, text_field};
use super::{backend, gateway, invoke_url, visit};
use crate::auth::Caller;
use crate::rest::validate;
use crate::state::AppState;

const AREA: Area = Area::Publisher;

#[derive(serde::Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

impl NoticeQuery {
    pub fn notice(&self) -> Option<Notice> {
        self.notice.as_deref().and_then(Notice::parse)
    }
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<NoticeQuery>,
) -> Response {
    let caller = match visit::page(&state, &headers, AREA, "/publisher").await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    if let Some(refusal) = visit::outside_publisher_area(&caller) {
        return refusal;
    }
    let apis = match backend::list_apis(&state, &caller).await {
        Ok(apis) => apis,
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    let create = if caller.has(Role::Creator) {
        r#"<p><a class="button primary" href="/publisher/apis/new">Create API</a></p>"#
    } else {
        r#"<p class="hint">Creating APIs needs the creator role; you can move APIs through their lifecycle.</p>"#
    };
    let rows: String = apis
        .iter()
        .map(|api| {
            format!(
                r#"<tr><td><a href="/publisher/apis/{id}">{name}</a></td><td><code>{context}</code></td><td>{version}</td><td>{state}</td><td>{endpoints}</td></tr>"#,
                id = esc(&api.id),
                name = esc(&api.name),
                context = esc(&api.context),
                version = esc(&api.version),
                state = badge(api.state.as_str()),
                endpoints = api.endpoints.len(),
            )
        })
        .collect();
    let table = if apis.is_empty() {
        r#"<p class="empty">No APIs yet. Create your first WebSocket API: a name, a context, a version and a ws:// or wss:// endpoint are all it takes.</p>"#.to_string()
    } else {
        format!(
            r#"<div class="table-wrap"><table><caption class="visually-hidden">APIs</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Context</th><th scope="col">Version</th><th scope="col">State</th><th scope="col">Endpoints</th></tr></thead>
<tbody>{rows}</tbody></table></div>"#
        )
    };
    let body = format!("{create}\n{table}");
    Page { area: AREA, title: "APIs", viewer: Some(visit::viewer(&caller)), notice: query.notice(), body }
        .render(StatusCode::OK)
}

/// What the "Create API" form holds, as typed.
#[derive(Default)]
struct Draft {
    name: String,
    context: String,
    version: String,
    endpoints: Vec<String>,
    plans: Vec<String>,
}

pub async fn new_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let caller = match visit::page(&state, &headers, AREA, "/publisher/apis/new").await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    if let Some(refusal) =
        visit::outside_publisher_area(&caller).or_else(|| visit::lacking(&caller, AREA, Role::Creator))
    {
        return refusal;
    }
    render_form(&state, &caller, &Draft::default(), &Problems::default(), StatusCode::OK).await
}

async fn render_form(
    state: &AppState,
    caller: &Caller,
    draft: &Draft,
    problems: &Problems,
    status: StatusCode,
) -> Response {
    let plans = match backend::list_plans(state, caller).await {
        Ok(plans) => plans,
        Err(err) => return visit::failure(AREA, caller, err),
    };
    // CREATE & PUBLISH publishes too, so it is offered only to a user who may publish.
    let publish_button = if caller.has(Role::Publisher) {
        r#"<button type="submit" name="action" value="publish" class="primary">Create &amp; publish</button>"#
    } else {
        ""
    };
    let body = format!(
        r#"<p class="lead">A WebSocket API: clients connect to the gateway at its context and version, and the gateway relays them to its endpoint.</p>
{summary}<form method="post" action="/publisher/apis" class="card" novalidate>
{csrf}
{name}
{context}
{version}
{endpoints}
{plans}
<div class="actions">
<button type="submit" name="action" value="create">Create</button>
{publish_button}
</div>
<p class="hint">Create &amp; publish needs an endpoint and at least one business plan.</p>
</form>"#,
        summary = problems.summary(),
        csrf = csrf_input(&caller.csrf_token),
        name = text_field(
            "name",
            "Name",
            &draft.name,
            "For example EchoWebSocket.",
            problems.on("name"),
            "required autofocus"
        ),
        context = text_field(
            "context",
            "Context",
            &draft.context,
            "The path clients connect to, starting with '/': for example /echowebsocket.",
            problems.on("context"),
            "required"
        ),
        version = text_field(
            "version",
            "Version",
            &draft.version,
            "For example 1.0 (1.0 and 1.0.0 name the same version).",
            problems.on("version"),
            "required"
        ),
        endpoints = endpoint_fields(&draft.endpoints, problems),
        plans = plan_boxes(&plans, &draft.plans, problems.on("plans")),
    );
    Page { area: AREA, title: "Create API", viewer: Some(visit::viewer(caller)), notice: None, body }.render(status)
}

/// One input per endpoint and an empty one to add another (a script adds more on request).
pub fn endpoint_fields(endpoints: &[String], problems: &Problems) -> String {
    let mut html = String::from(
        r#"<fieldset class="endpoints"><legend>Endpoints</legend>
<p class="hint" id="endpoints-hint">ws:// for plain or wss:// for TLS upstreams, for example ws://echo.example:80. Several endpoints share the load.</p>"#,
    );
    let count = endpoints.len() + 1;
    for i in 0..count {
        let field = format!("endpoints[{i}]");
        let value = endpoints.get(i).map_or("", String::as_str);
        let problem = problems.on(&field).or(if i == 0 { problems.on("endpoints") } else { None });
        let error = problem
            .map(|m| format!(r#"<p class="field-error" id="f-endpoint-{i}-error">{}</p>"#, esc(m)))
            .unwrap_or_default();
        let described =
            if problem.is_some() { format!("endpoints-hint f-endpoint-{i}-error") } else { "endpoints-hint".into() };
        html.push_str(&format!(
            r#"<div class="field{cls}"><label for="f-endpoint-{i}">Endpoint {n}</label>
<input id="f-endpoint-{i}" name="endpoints" value="{value}" inputmode="url" placeholder="ws://host:port/path" aria-describedby="{described}"{invalid}>{error}</div>"#,
            cls = if problem.is_some() { " has-error" } else { "" },
            n = i + 1,
            value = esc(value),
            invalid = if problem.is_some() { r#" aria-invalid="true""# } else { "" },
        ));
    }
    html.push_str(
        r#"<button type="button" class="secondary" data-add-endpoint>Add another endpoint</button></fieldset>"#,
    );
    html
}

/// The business plans as checkboxes, with their limits.
pub fn plan_boxes(plans: &[Plan], chosen: &[String], problem: Option<&str>) -> String {
    let boxes: String = plans
        .iter()
        .map(|plan| {
            format!(
                r#"<label class="check"><input type="checkbox" name="plans" value="{name}"{checked}> {name} <span class="hint">{limits}</span></label>"#,
                name = esc(&plan.name),
                limits = esc(&plan.limits.describe()),
                checked = if chosen.contains(&plan.name) { " checked" } else { "" },
            )
        })
        .collect();
    let error =
        problem.map(|m| format!(r#"<p class="field-error" id="plans-error">{}</p>"#, esc(m))).unwrap_or_default();
    format!(
        r#"<fieldset class="plans{cls}"{described}><legend>Business plans</legend>{boxes}{error}</fieldset>"#,
        cls = if problem.is_some() { " has-error" } else { "" },
        described = if problem.is_some() { r#" aria-describedby="plans-error""# } else { "" },
    )
}

pub async fn create(State(state): State<AppState>, headers: HeaderMap, form: Form) -> Response {
    let caller = match visit::form(&state, &headers, &form, AREA, "/publisher/apis/new").await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    if let Some(refusal) = visit::outside_publisher_area(&caller) {
        return refusal;
    }
    let publish = form.get("action") == "publish";
    let draft = Draft {
        name: form.get("name").to_string(),
        context: form.get("context").to_string(),
        version: form.get("version").to_string(),
        endpoints: form.all("endpoints"),
        plans: form.all("plans"),
    };
    let problems = check(&draft, publish);
    if !problems.is_empty() {
        return render_form(&state, &caller, &draft, &problems, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let fields = json!({
        "name": draft.name, "context": draft.context, "version": draft.version,
        "endpoints": draft.endpoints, "plans": draft.plans, "publish": publish,
    });
    match backend::create_api(&state, &caller, &fields).await {
        Ok(api) => {
            let notice = if publish { Notice::ApiPublished } else { Notice::ApiCreated };
            see_other(&format!("/publisher/apis/{}?notice={}", api.id, notice.code()))
        }
        Err(err) => {
            let status = err.status();
            render_form(&state, &caller, &draft, &Problems::from_api(err), status).await
        }
    }
}

/// Every field's problem at once (the REST API stops at the first), by the REST API's rules.
fn check(draft: &Draft, publish: bool) -> Problems {
    let mut problems = Problems::default();
    let checks = [
        validate::display_name("name", &draft.name, 100).err(),
        validate::context(&draft.context).err(),
        validate::version(&draft.version).err(),
    ];
    for err in checks.into_iter().flatten() {
        problems.add_api(err);
    }
    for (i, url) in draft.endpoints.iter().enumerate() {
        if let Err(problem) = Endpoint::parse(url) {
            problems.field(format!("endpoints[{i}]"), problem.to_string());
        }
    }
    if publish && draft.endpoints.is_empty() {
        problems.field("endpoints[0]", "Publishing needs at least one ws:// or wss:// endpoint.");
    }
    if publish && draft.plans.is_empty() {
        problems.field("plans", "Publishing needs at least one business plan.");
    }
    problems
}

pub async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<NoticeQuery>,
) -> Response {
    let back = format!("/publisher/apis/{id}");
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
    let urls = gateway(&state);
    let invoke: String = [urls.ws.as_deref(), urls.wss.as_deref()]
        .into_iter()
        .flatten()
        .map(|base| format!("<li><code>{}</code></li>", esc(&invoke_url(base, &api))))
        .collect();
    let list = |items: &[String]| -> String {
        if items.is_empty() {
            return r#"<span class="hint">none yet</span>"#.into();
        }
        format!(
            "<ul class=\"plain\">{}</ul>",
            items.iter().map(|i| format!("<li><code>{}</code></li>", esc(i))).collect::<String>()
        )
    };
    let security = match api.auth {
        AuthMode::Oauth2 => "OAuth2 access token (header or access_token query parameter)",
        AuthMode::None => "None: open to anyone",
    };
    let devportal = if api.state.invokable() {
        format!(r#"<p><a href="/devportal/apis/{}">View in the Developer Portal</a></p>"#, esc(&api.id))
    } else {
        r#"<p class="hint">Subscribers see the API in the Developer Portal once it is PUBLISHED.</p>"#.into()
    };
    let usage = if caller.has(Role::Publisher) {
        match backend::api_usage(&state, &caller, &api.id).await {
            Ok(usage) => usage_table(&usage),
            Err(err) => return visit::failure(AREA, &caller, err),
        }
    } else {
        String::new()
    };
    let delete = if caller.has(Role::Creator) {
        format!(
            r#"<form method="post" action="/publisher/apis/{id}/delete" data-confirm="Delete this API? Its subscriptions stop working.">{csrf}<button type="submit" class="danger">Delete API</button></form>"#,
            id = esc(&api.id),
            csrf = csrf_input(&caller.csrf_token),
        )
    } else {
        String::new()
    };
    let body = format!(
        r#"{tabs}
<dl class="facts">
<dt>State</dt><dd>{state}</dd>
<dt>Context</dt><dd><code>{context}</code></dd>
<dt>Version</dt><dd>{version}</dd>
<dt>Endpoints</dt><dd>{endpoints}</dd>
<dt>Business plans</dt><dd>{plans}</dd>
<dt>API-wide plan</dt><dd>{api_plan}</dd>
<dt>Per client address plan</dt><dd>{client_plan}</dd>
<dt>Security</dt><dd>{security}</dd>
<dt>Invoke URLs</dt><dd><ul class="plain">{invoke}</ul></dd>
<dt>Created by</dt><dd>{owner}</dd>
</dl>
{usage}
{devportal}
{delete}"#,
        tabs = tabs(&api, &caller, Tab::Overview),
        api_plan = esc(api.api_plan.as_deref().unwrap_or("none")),
        client_plan = esc(api.client_plan.as_deref().unwrap_or("none")),
        usage = usage,
        state = badge(api.state.as_str()),
        context = esc(&api.context),
        version = esc(&api.version),
        endpoints = list(&api.endpoints),
        plans = if api.plans.is_empty() {
            r#"<span class="hint">none yet</span>"#.into()
        } else {
            esc(&api.plans.join(", "))
        },
        owner = esc(&api.owner),
    );
    let title = format!("{} {}", api.name, api.version);
    Page { area: AREA, title: &title, viewer: Some(visit::viewer(&caller)), notice: query.notice(), body }
        .render(StatusCode::OK)
}

pub async fn delete(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>, form: Form) -> Response {
    let caller = match visit::form(&state, &headers, &form, AREA, &format!("/publisher/apis/{id}")).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    match backend::delete_api(&state, &caller, &id).await {
        Ok(()) => see_other(&format!("/publisher?notice={}", Notice::ApiDeleted.code())),
        Err(err) => visit::failure(AREA, &caller, err),
    }
}

/// The API's usage of its API-wide limit and each subscription's usage of its plan.
fn usage_table(usage: &crate::rest::usage::ApiUsage) -> String {
    let words = |usage: &crate::rest::usage::Usage| -> String {
        let parts = usage.describe();
        if parts.is_empty() { "unlimited".into() } else { parts.join("; ") }
    };
    let api_wide = match &usage.api_plan {
        Some(api) => format!("<p>API-wide: {}</p>", esc(&words(api))),
        None => String::new(),
    };
    let rows: String = usage
        .subscriptions
        .iter()
        .map(|sub| {
            format!(
                "<tr><td><code>{id}</code></td><td><code>{app}</code></td><td>{plan}</td><td>{state}</td><td>{usage}</td></tr>",
                id = esc(&sub.subscription_id),
                app = esc(&sub.application_id),
                plan = esc(&sub.plan),
                state = badge(sub.state.as_str()),
                usage = esc(&words(&sub.usage)),
            )
        })
        .collect();
    let table = if rows.is_empty() {
        r#"<p class="hint">No subscriptions yet.</p>"#.to_string()
    } else {
        format!(
            r#"<div class="table-wrap"><table><thead><tr><th scope="col">Subscription</th><th scope="col">Application</th><th scope="col">Plan</th><th scope="col">State</th><th scope="col">Usage now</th></tr></thead><tbody>{rows}</tbody></table></div>"#
        )
    };
    format!(r#"<section class="usage"><h2>Usage</h2>{api_wide}{table}</section>"#)
}

/// The pages of one API.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Configure,
    Endpoints,
    Lifecycle,
    Subscriptions,
    Analytics,
}

/// The API's sub-navigation; the lifecycle and subscriptions tabs only for publishers.
pub fn tabs(api: &ApiRecord, caller: &Caller, current: Tab) -> String {
    let id = esc(&api.id);
    let mut tabs = vec![(Tab::Overview, format!("/publisher/apis/{id}"), "Overview")];
    tabs.push((Tab::Configure, format!("/publisher/apis/{id}/configure"), "Configuration"));
    tabs.push((Tab::Endpoints, format!("/publisher/apis/{id}/endpoints"), "Endpoints"));
    if caller.has(Role::Publisher) {
        tabs.push((Tab::Lifecycle, format!("/publisher/apis/{id}/lifecycle"), "Lifecycle"));
        tabs.push((Tab::Subscriptions, format!("/publisher/apis/{id}/subscriptions"), "Subscriptions"));
        tabs.push((Tab::Analytics, format!("/publisher/apis/{id}/analytics"), "Analytics"));
    }
    let links: String = tabs
        .into_iter()
        .map(|(tab, href, label)| {
            let current = if tab == current { r#" aria-current="page""# } else { "" };
            format!(r#"<a href="{href}"{current}>{label}</a>"#)
        })
        .collect();
    format!(r#"<nav class="tabs" aria-label="API pages">{links}</nav>"#)
}

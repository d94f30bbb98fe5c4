//! The publisher's "Business plans" page: every plan with its limits in words, and for admins
//! the forms that create, change and delete them (the REST API's rules, called in-process).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use wsgate_core::limits::Rate;
use wsgate_core::model::{Plan, Role};

use super::forms::{Form, Problems};
use super::html::{Area, Notice, Page, csrf_input, esc, see_other, text_field};
use super::{backend, visit};
use crate::auth::Caller;
use crate::state::AppState;

const AREA: Area = Area::Publisher;
const BACK: &str = "/publisher/plans";

#[derive(serde::Deserialize)]
pub struct ListQuery {
    notice: Option<String>,
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<ListQuery>) -> Response {
    let caller = match visit::page(&state, &headers, AREA, BACK).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    if let Some(refusal) = visit::outside_publisher_area(&caller) {
        return refusal;
    }
    let notice = query.notice.as_deref().and_then(Notice::parse);
    render_list(&state, &caller, notice, &Draft::default(), &Problems::default(), StatusCode::OK).await
}

/// The plan form as typed.
#[derive(Default)]
struct Draft {
    name: String,
    description: String,
    messages: String,
    bytes: String,
    count: String,
    connections: String,
    connection_rate: String,
    on_exceed: String,
}

impl Draft {
    fn of(plan: &Plan) -> Draft {
        let rate = |rate: Option<Rate>| rate.map(|r| r.to_string()).unwrap_or_default();
        Draft {
            name: plan.name.clone(),
            description: plan.description.clone(),
            messages: rate(plan.limits.messages),
            bytes: rate(plan.limits.bytes),
            count: plan.limits.count.as_str().into(),
            connections: plan.limits.connections.map(|n| n.to_string()).unwrap_or_default(),
            connection_rate: rate(plan.limits.connection_rate),
            on_exceed: plan.limits.on_exceed.as_str().into(),
        }
    }

    fn read(form: &Form) -> Draft {
        Draft {
            name: form.get("name").into(),
            description: form.get("description").into(),
            messages: form.get("messages").into(),
            bytes: form.get("bytes").into(),
            count: form.get("count").into(),
            connections: form.get("connections").into(),
            connection_rate: form.get("connection_rate").into(),
            on_exceed: form.get("on_exceed").into(),
        }
    }

    /// The REST body; an empty field is an absent limit. A connection count that is not a
    /// number is sent as text, so the REST parser names the field.
    fn fields(&self) -> Value {
        let mut body = json!({ "description": self.description, "count": self.count, "on_exceed": self.on_exceed });
        for (field, value) in
            [("messages", &self.messages), ("bytes", &self.bytes), ("connection_rate", &self.connection_rate)]
        {
            if !value.is_empty() {
                body[field] = json!(value);
            }
        }
        if !self.connections.is_empty() {
            body["connections"] =
                self.connections.parse::<u64>().map_or_else(|_| json!(self.connections), |n| json!(n));
        }
        body
    }
}

fn select(name: &str, label: &str, options: &[(&str, &str)], chosen: &str, problem: Option<&str>) -> String {
    let options: String = options
        .iter()
        .map(|(value, text)| {
            let selected = if *value == chosen { " selected" } else { "" };
            format!(r#"<option value="{value}"{selected}>{text}</option>"#)
        })
        .collect();
    let error = problem.map(|m| format!(r#"<p class="field-error">{}</p>"#, esc(m))).unwrap_or_default();
    format!(
        r#"<div class="field{cls}"><label for="f-{name}">{label}</label><select id="f-{name}" name="{name}">{options}</select>{error}</div>"#,
        cls = if problem.is_some() { " has-error" } else { "" },
    )
}

/// The fields of a plan form (the name only when creating: plans are not renamed).
fn plan_fields(draft: &Draft, problems: &Problems, with_name: bool) -> String {
    let name = if with_name {
        text_field(
            "name",
            "Name",
            &draft.name,
            "Letters, digits, '-', '.', '_' or '@'.",
            problems.on("name"),
            "required",
        )
    } else {
        String::new()
    };
    let rate_hint = "N/PERIOD, PERIOD one of s, min, h, day (e.g. 50/s). Empty: unlimited.";
    format!(
        "{name}{description}{messages}{bytes}{count}{connections}{connection_rate}{on_exceed}",
        description = text_field(
            "description",
            "Description",
            &draft.description,
            "Shown to subscribers.",
            problems.on("description"),
            ""
        ),
        messages =
            text_field("messages", "Messages per period", &draft.messages, rate_hint, problems.on("messages"), ""),
        bytes = text_field("bytes", "Payload bytes per period", &draft.bytes, rate_hint, problems.on("bytes"), ""),
        count = select(
            "count",
            "Messages and bytes counted",
            &[("both", "Both ways"), ("in", "From the client"), ("out", "To the client")],
            &draft.count,
            problems.on("count"),
        ),
        connections = text_field(
            "connections",
            "Connections at once",
            &draft.connections,
            "Per subscription. Empty: unlimited.",
            problems.on("connections"),
            r#"inputmode="numeric""#
        ),
        connection_rate = text_field(
            "connection_rate",
            "New connections per period",
            &draft.connection_rate,
            rate_hint,
            problems.on("connection_rate"),
            ""
        ),
        on_exceed = select(
            "on_exceed",
            "When a message or byte limit is reached",
            &[("throttle", "Throttle: wait, lose nothing"), ("close", "Close the connection (1008)")],
            &draft.on_exceed,
            problems.on("on_exceed"),
        ),
    )
}

async fn render_list(
    state: &AppState,
    caller: &Caller,
    notice: Option<Notice>,
    draft: &Draft,
    problems: &Problems,
    status: StatusCode,
) -> Response {
    let plans = match backend::list_plans(state, caller).await {
        Ok(plans) => plans,
        Err(err) => return visit::failure(AREA, caller, err),
    };
    let admin = caller.has(Role::Admin);
    let csrf = csrf_input(&caller.csrf_token);
    let rows: String = plans
        .iter()
        .map(|plan| {
            let name = esc(&plan.name);
            let actions = if admin {
                format!(
                    r#"<a class="button small" href="{BACK}/{name}">Edit</a> <form method="post" action="{BACK}/{name}/delete" class="inline" data-confirm="Delete the plan {name}?">{csrf}<button type="submit" class="danger small">Delete</button></form>"#
                )
            } else {
                String::new()
            };
            format!(
                r#"<tr><td><strong>{name}</strong></td><td data-limits="{name}">{limits}</td><td>{description}</td><td>{actions}</td></tr>"#,
                limits = esc(&plan.limits.describe()),
                description = esc(&plan.description),
            )
        })
        .collect();
    let create = if admin {
        format!(
            r#"<form method="post" action="{BACK}" class="card" novalidate><h2>New plan</h2>{summary}{csrf}
{fields}
<div class="actions"><button type="submit" class="primary">Create plan</button></div></form>"#,
            summary = problems.summary(),
            fields = plan_fields(draft, problems, true),
        )
    } else {
        r#"<p class="hint">Admins define plans; publishers choose which plans an API offers.</p>"#.into()
    };
    let body = format!(
        r#"<p class="lead">A plan is a set of limits. Subscribers choose one of the plans an API offers; an API may also name a plan for all its connections together or for each client address, and an application one for all of its connections.</p>
<div class="table-wrap"><table><thead><tr><th scope="col">Plan</th><th scope="col">Limits</th><th scope="col">Description</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>{rows}</tbody></table></div>
{create}"#
    );
    Page { area: AREA, title: "Business plans", viewer: Some(visit::viewer(caller)), notice, body }.render(status)
}

pub async fn create(State(state): State<AppState>, headers: HeaderMap, form: Form) -> Response {
    let caller = match visit::form(&state, &headers, &form, AREA, BACK).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    if let Some(refusal) = visit::lacking(&caller, AREA, Role::Admin) {
        return refusal;
    }
    let draft = Draft::read(&form);
    match backend::store_plan(&state, &caller, &draft.name, &draft.fields(), false).await {
        Ok(_) => see_other(&format!("{BACK}?notice={}", Notice::PlanSaved.code())),
        Err(err) => {
            let status = err.status();
            render_list(&state, &caller, None, &draft, &Problems::from_api(err), status).await
        }
    }
}

pub async fn edit(State(state): State<AppState>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let back = format!("{BACK}/{name}");
    let caller = match visit::page(&state, &headers, AREA, &back).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    if let Some(refusal) = visit::lacking(&caller, AREA, Role::Admin) {
        return refusal;
    }
    let plans = match backend::list_plans(&state, &caller).await {
        Ok(plans) => plans,
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    match plans.iter().find(|plan| plan.name == name) {
        Some(plan) => render_edit(&caller, &Draft::of(plan), &Problems::default(), StatusCode::OK),
        None => visit::failure(AREA, &caller, crate::error::ApiError::not_found("plan")),
    }
}

fn render_edit(caller: &Caller, draft: &Draft, problems: &Problems, status: StatusCode) -> Response {
    let body = format!(
        r#"<p class="lead">Live connections under this plan follow the new limits within a second.</p>
<form method="post" action="{BACK}/{name}" class="card" novalidate>{summary}{csrf}
{fields}
<div class="actions"><button type="submit" class="primary">Save plan</button> <a href="{BACK}">Cancel</a></div></form>"#,
        name = esc(&draft.name),
        summary = problems.summary(),
        csrf = csrf_input(&caller.csrf_token),
        fields = plan_fields(draft, problems, false),
    );
    let title = format!("Plan {}", draft.name);
    Page { area: AREA, title: &title, viewer: Some(visit::viewer(caller)), notice: None, body }.render(status)
}

pub async fn save(State(state): State<AppState>, headers: HeaderMap, Path(name): Path<String>, form: Form) -> Response {
    let caller = match visit::form(&state, &headers, &form, AREA, &format!("{BACK}/{name}")).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    if let Some(refusal) = visit::lacking(&caller, AREA, Role::Admin) {
        return refusal;
    }
    let draft = Draft { name: name.clone(), ..Draft::read(&form) };
    match backend::store_plan(&state, &caller, &name, &draft.fields(), true).await {
        Ok(_) => see_other(&format!("{BACK}?notice={}", Notice::PlanSaved.code())),
        Err(err) => {
            let status = err.status();
            render_edit(&caller, &draft, &Problems::from_api(err), status)
        }
    }
}

pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: Form,
) -> Response {
    let caller = match visit::form(&state, &headers, &form, AREA, BACK).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    match backend::delete_plan(&state, &caller, &name).await {
        Ok(()) => see_other(&format!("{BACK}?notice={}", Notice::PlanDeleted.code())),
        Err(err) => visit::failure(AREA, &caller, err),
    }
}

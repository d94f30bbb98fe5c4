//! An API's subscriptions, the publisher's side: who is subscribed with which plan, blocking
//! and unblocking, moving a subscription to another of the API's plans, and granting the API's
//! scopes to each subscription. Publishers only; every change goes through the REST handlers
//! (`PUT /api/v1/subscriptions/{id}/scopes`, `POST /api/v1/subscriptions/{id}/state`,
//! `PUT /api/v1/subscriptions/{id}/plan`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use wsgate_core::model::{ApiRecord, Role, Subscription, SubscriptionState};

use super::forms::{Form, Problems};
use super::html::{Area, Page, badge, csrf_input, esc, see_other};
use super::publisher::{Tab, tabs};
use super::{backend, visit};
use crate::auth::Caller;
use crate::state::AppState;

const AREA: Area = Area::Publisher;

pub async fn list(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let caller = match visit::page(&state, &headers, AREA, &format!("/publisher/apis/{id}/subscriptions")).await {
        Ok(caller) => caller,
        Err(page) => return page,
    };
    if let Some(refusal) = visit::lacking(&caller, AREA, Role::Publisher) {
        return refusal;
    }
    render(&state, &caller, &id, &Problems::default(), StatusCode::OK).await
}

async fn render(state: &AppState, caller: &Caller, id: &str, problems: &Problems, status: StatusCode) -> Response {
    let api = match backend::api(state, caller, id).await {
        Ok(api) => api,
        Err(err) => return visit::failure(AREA, caller, err),
    };
    let subscriptions = match backend::list_subscriptions(state, caller, None, Some(&api.id)).await {
        Ok(list) => list,
        Err(err) => return visit::failure(AREA, caller, err),
    };
    let mut rows = String::new();
    for subscription in subscriptions.iter().filter(|s| s.state != SubscriptionState::Removed) {
        // Publishers oversee every subscription, so they may see which application it is.
        let application = state.store().application(&subscription.application_id).await.ok().flatten();
        let (name, owner) =
            application.map_or((subscription.application_id.clone(), String::new()), |a| (a.name, a.owner));
        rows.push_str(&row(caller, &api, subscription, &name, &owner));
    }
    let table = if rows.is_empty() {
        r#"<p class="hint">No application is subscribed yet.</p>"#.to_string()
    } else {
        format!(
            r#"<table class="subscriptions"><thead><tr><th>Application</th><th>Plan</th><th>State</th><th>Granted scopes</th><th></th></tr></thead><tbody>{rows}</tbody></table>"#
        )
    };
    let declared = if api.scopes.is_empty() {
        "This API declares no scopes: there is nothing to grant.".to_string()
    } else {
        format!(
            "Tokens carry only the scopes granted here, and a connection needs every scope the API declares ({}).",
            esc(&api.scopes.join(", "))
        )
    };
    let body = format!(
        r#"{tabs}
{summary}<p class="hint">{declared} A blocked subscription stays blocked until a publisher unblocks it: its owner can neither unblock nor delete it.</p>
{table}"#,
        tabs = tabs(&api, caller, Tab::Subscriptions),
        summary = problems.summary(),
    );
    let title = format!("{} {}: subscriptions", api.name, api.version);
    Page { area: AREA, title: &title, viewer: Some(visit::viewer(caller)), notice: None, body }.render(status)
}

fn row(caller: &Caller, api: &ApiRecord, subscription: &Subscription, name: &str, owner: &str) -> String {
    let id = esc(&subscription.id);
    let csrf = csrf_input(&caller.csrf_token);
    let boxes: String = api
        .scopes
        .iter()
        .map(|scope| {
            let checked = if subscription.granted_scopes.contains(scope) { " checked" } else { "" };
            format!(
                r#"<label class="check"><input type="checkbox" name="scopes" value="{scope}"{checked}> {scope}</label>"#,
                scope = esc(scope)
            )
        })
        .collect();
    let grant = if api.scopes.is_empty() {
        r#"<span class="hint">none declared</span>"#.to_string()
    } else {
        format!(
            r#"<form method="post" action="/publisher/subscriptions/{id}/scopes" aria-label="Scopes of {label}">{csrf}{boxes} <button type="submit" class="secondary">Save scopes</button></form>"#,
            label = esc(name)
        )
    };
    let options: String = api
        .plans
        .iter()
        .chain(std::iter::once(&subscription.plan).filter(|plan| !api.plans.contains(plan)))
        .map(|plan| {
            let selected = if *plan == subscription.plan { " selected" } else { "" };
            format!(r#"<option value="{plan}"{selected}>{plan}</option>"#, plan = esc(plan))
        })
        .collect();
    let plan = format!(
        r#"<form method="post" action="/publisher/subscriptions/{id}/plan" class="inline" aria-label="Plan of {label}">{csrf}<label class="visually-hidden" for="plan-{id}">Plan</label><select id="plan-{id}" name="plan">{options}</select> <button type="submit" class="secondary">Change plan</button></form>"#,
        label = esc(name)
    );
    let (to, button) = match subscription.state {
        SubscriptionState::Blocked => ("ACTIVE", "Unblock"),
        _ => ("BLOCKED", "Block"),
    };
    format!(
        r#"<tr data-subscription="{id}"><td>{name}<br><span class="hint">{owner}</span></td><td>{plan}</td><td>{state}</td><td>{grant}</td><td><form method="post" action="/publisher/subscriptions/{id}/state">{csrf}<input type="hidden" name="state" value="{to}"><button type="submit" class="secondary">{button}</button></form></td></tr>"#,
        name = esc(name),
        owner = esc(owner),
        state = badge(subscription.state.as_str()),
    )
}

/// `POST /publisher/subscriptions/{id}/scopes`: the ticked scopes become the grant.
pub async fn grant(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>, form: Form) -> Response {
    change(state, headers, id, form, |state, caller, id, form| {
        Box::pin(async move { backend::grant_scopes(&state, &caller, &id, &form.all("scopes")).await })
    })
    .await
}

/// `POST /publisher/subscriptions/{id}/plan`: move the subscription to another of the API's
/// plans; its live connections follow within a second.
pub async fn set_plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    change(state, headers, id, form, |state, caller, id, form| {
        Box::pin(async move { backend::set_subscription_plan(&state, &caller, &id, form.get("plan")).await })
    })
    .await
}

/// `POST /publisher/subscriptions/{id}/state`: block or unblock.
pub async fn set_state(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    change(state, headers, id, form, |state, caller, id, form| {
        Box::pin(async move { backend::set_subscription_state(&state, &caller, &id, form.get("state")).await })
    })
    .await
}

type Change = fn(
    AppState,
    Caller,
    String,
    Form,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Subscription, crate::error::ApiError>> + Send>,
>;

/// Checks the form's session and role, makes the change, and goes back to the API's
/// subscriptions (or shows the refusal there).
async fn change(state: AppState, headers: HeaderMap, id: String, form: Form, make: Change) -> Response {
    let caller = match visit::form(&state, &headers, &form, AREA, "/publisher").await {
        Ok(caller) => caller,
        Err(page) => return page,
    };
    if let Some(refusal) = visit::lacking(&caller, AREA, Role::Publisher) {
        return refusal;
    }
    let api_id = match state.store().subscription(&id).await {
        Ok(Some(subscription)) => subscription.api_id,
        Ok(None) => return visit::failure(AREA, &caller, crate::error::ApiError::not_found("subscription")),
        Err(err) => return visit::failure(AREA, &caller, err.into()),
    };
    match make(state.clone(), caller.clone(), id, form).await {
        Ok(_) => see_other(&format!("/publisher/apis/{api_id}/subscriptions")),
        Err(err) => {
            let status = err.status();
            let mut problems = Problems::default();
            problems.general(err.to_string());
            render(&state, &caller, &api_id, &problems, status).await
        }
    }
}

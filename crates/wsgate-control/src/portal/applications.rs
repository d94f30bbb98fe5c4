//! The caller's applications and their subscriptions: create and delete applications,
//! (re)generate their keys, get a fresh access token, unsubscribe.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use wsgate_core::model::{ApiRecord, SubscriptionState};

use super::devportal::own_applications;
use super::forms::{Form, Problems};
use super::html::{Area, Notice, Page, badge, csrf_input, esc, see_other, text_field};
use super::wizard::{credentials, token_block};
use super::{backend, visit};
use crate::auth::Caller;
use crate::state::AppState;

const AREA: Area = Area::Devportal;
const BACK: &str = "/devportal/applications";

#[derive(serde::Deserialize)]
pub struct ListQuery {
    notice: Option<String>,
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<ListQuery>) -> Response {
    let caller = match visit::page(&state, &headers, AREA, BACK).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let notice = query.notice.as_deref().and_then(Notice::parse);
    render(&state, &caller, notice, "", &Problems::default(), StatusCode::OK).await
}

async fn render(
    state: &AppState,
    caller: &Caller,
    notice: Option<Notice>,
    name: &str,
    problems: &Problems,
    status: StatusCode,
) -> Response {
    let (apps, apis, subs) = match tokio::try_join!(
        own_applications(state, caller),
        backend::list_apis(state, caller),
        backend::list_subscriptions(state, caller, None, None),
    ) {
        Ok(all) => all,
        Err(err) => return visit::failure(AREA, caller, err),
    };
    let csrf = csrf_input(&caller.csrf_token);
    let mut cards = String::new();
    for app in &apps {
        let client_id = backend::client_id(state, caller, &app.id).await.ok().flatten();
        let mut rows = String::new();
        for sub in subs.iter().filter(|s| s.application_id == app.id && s.state != SubscriptionState::Removed) {
            let api = apis.iter().find(|a| a.id == sub.api_id);
            let api_name = api.map_or_else(|| "(API removed)".to_string(), |a| format!("{} {}", a.name, a.version));
            let link = match api.filter(|a| a.state.invokable()) {
                Some(a) => format!(r#"<a href="/devportal/apis/{}">{}</a>"#, esc(&a.id), esc(&api_name)),
                None => esc(&api_name),
            };
            let usage = backend::subscription_usage(state, caller, &sub.id).await.ok();
            let offered = api.map(|a| a.plans.as_slice()).unwrap_or_default();
            rows.push_str(&format!(
                r#"<tr data-subscription="{id}"><td>{link}</td><td>{plan}</td><td>{state}</td><td class="usage">{usage}</td><td><form method="post" action="/devportal/subscriptions/{id}/unsubscribe" data-confirm="Unsubscribe {app} from {api}?">{csrf}<button type="submit" class="secondary small">Unsubscribe</button></form></td></tr>"#,
                id = esc(&sub.id),
                plan = plan_choice(&sub.id, &sub.plan, offered, sub.state == SubscriptionState::Active, &csrf),
                state = badge(sub.state.as_str()),
                usage = usage.as_ref().map(usage_summary).unwrap_or_default(),
                app = esc(&app.name),
                api = esc(&api_name),
            ));
        }
        let table = if rows.is_empty() {
            r#"<p class="hint">No subscriptions. Open an API and run its key generation wizard.</p>"#.to_string()
        } else {
            format!(
                r#"<div class="table-wrap"><table><thead><tr><th scope="col">API</th><th scope="col">Plan</th><th scope="col">State</th><th scope="col">Limits and usage</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody>{rows}</tbody></table></div>"#
            )
        };
        let keys = match &client_id {
            Some(id) => format!("Consumer key <code>{}</code>", esc(id)),
            None => "No keys yet".to_string(),
        };
        let id = esc(&app.id);
        cards.push_str(&format!(
            r#"<li class="card"><h2>{name}</h2>{description}<p class="hint">{keys}</p>{table}
<div class="actions">
<form method="post" action="/devportal/applications/{id}/token" class="inline">{csrf}<button type="submit" class="primary">New access token</button></form>
<a class="button" href="/devportal/applications/{id}/analytics">Usage charts</a>
<form method="post" action="/devportal/applications/{id}/keys" class="inline"{confirm}>{csrf}<button type="submit">{keys_label}</button></form>
<form method="post" action="/devportal/applications/{id}/delete" class="inline" data-confirm="Delete the application {name}? Its keys, tokens and subscriptions stop working.">{csrf}<button type="submit" class="danger">Delete application</button></form>
</div></li>"#,
            name = esc(&app.name),
            description = if app.description.is_empty() { String::new() } else { format!("<p>{}</p>", esc(&app.description)) },
            keys_label = if client_id.is_some() { "Regenerate keys" } else { "Generate keys" },
            confirm = if client_id.is_some() { r#" data-confirm="Regenerate the keys? The old secret stops working.""# } else { "" },
        ));
    }
    let list = if apps.is_empty() {
        r#"<p class="empty">You have no applications yet.</p>"#.to_string()
    } else {
        format!(r#"<ul class="cards wide">{cards}</ul>"#)
    };
    let body = format!(
        r#"{summary}<form method="post" action="/devportal/applications" class="card" novalidate>
<h2>New application</h2>{csrf}
{name}
{description}
<div class="actions"><button type="submit">Create application</button></div>
</form>
{list}"#,
        summary = problems.summary(),
        name = text_field("name", "Name", name, "Unique among your applications.", problems.on("name"), ""),
        description = text_field("description", "Description (optional)", "", "", problems.on("description"), ""),
    );
    Page { area: AREA, title: "Applications", viewer: Some(visit::viewer(caller)), notice, body }.render(status)
}

/// The subscription's plan, with a form to move to another plan its API offers (an active
/// subscription only: a blocked one is the publisher's to change).
fn plan_choice(id: &str, current: &str, offered: &[String], active: bool, csrf: &str) -> String {
    if !active || offered.len() < 2 {
        return esc(current);
    }
    let options: String = offered
        .iter()
        .map(|plan| {
            let selected = if plan == current { " selected" } else { "" };
            format!(r#"<option value="{plan}"{selected}>{plan}</option>"#, plan = esc(plan))
        })
        .collect();
    format!(
        r#"<form method="post" action="/devportal/subscriptions/{id}/plan" class="inline plan-choice">{csrf}<label class="visually-hidden" for="plan-{id}">Plan</label><select id="plan-{id}" name="plan">{options}</select> <button type="submit" class="secondary small">Change plan</button></form>"#,
        id = esc(id),
    )
}

/// The subscription's usage, a line per limit.
fn usage_summary(usage: &crate::rest::usage::SubscriptionUsage) -> String {
    let parts = usage.usage.describe();
    if parts.is_empty() {
        return r#"<span class="hint">unlimited</span>"#.into();
    }
    parts.iter().map(|part| esc(part)).collect::<Vec<_>>().join("<br>")
}

/// Moves a subscription to another plan, then back to the applications page.
pub async fn change_plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let caller = match visit::form(&state, &headers, &form, AREA, BACK).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    match backend::set_subscription_plan(&state, &caller, &id, form.get("plan")).await {
        Ok(_) => see_other(&format!("{BACK}?notice={}", Notice::PlanChanged.code())),
        Err(err) => visit::failure(AREA, &caller, err),
    }
}

pub async fn create(State(state): State<AppState>, headers: HeaderMap, form: Form) -> Response {
    let caller = match visit::form(&state, &headers, &form, AREA, BACK).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    match backend::create_application(&state, &caller, form.get("name"), form.get("description")).await {
        Ok(_) => see_other(&format!("{BACK}?notice={}", Notice::ApplicationCreated.code())),
        Err(err) => {
            let status = err.status();
            render(&state, &caller, None, form.get("name"), &Problems::from_api(err), status).await
        }
    }
}

pub async fn delete(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>, form: Form) -> Response {
    let caller = match visit::form(&state, &headers, &form, AREA, BACK).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    match backend::delete_application(&state, &caller, &id).await {
        Ok(()) => see_other(&format!("{BACK}?notice={}", Notice::ApplicationDeleted.code())),
        Err(err) => visit::failure(AREA, &caller, err),
    }
}

pub async fn unsubscribe(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let caller = match visit::form(&state, &headers, &form, AREA, BACK).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    match backend::unsubscribe(&state, &caller, &id).await {
        Ok(_) => see_other(&format!("{BACK}?notice={}", Notice::Unsubscribed.code())),
        Err(err) => visit::failure(AREA, &caller, err),
    }
}

/// New keys for an application, the secret shown once (the answer to this POST).
pub async fn generate_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let caller = match visit::form(&state, &headers, &form, AREA, BACK).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let (app, issued) = match backend::application(&state, &caller, &id).await {
        Ok(app) => match backend::generate_keys(&state, &caller, &app.id).await {
            Ok(issued) => (app, issued),
            Err(err) => return visit::failure(AREA, &caller, err),
        },
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    let body = format!(r#"{}<p><a href="{BACK}">Back to applications</a></p>"#, credentials(&issued));
    let title = format!("Keys of {}", app.name);
    Page { area: AREA, title: &title, viewer: Some(visit::viewer(&caller)), notice: None, body }.render(StatusCode::OK)
}

/// A fresh access token for an application, with the commands for every API it may call.
pub async fn token(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>, form: Form) -> Response {
    let caller = match visit::form(&state, &headers, &form, AREA, BACK).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let app = match backend::application(&state, &caller, &id).await {
        Ok(app) => app,
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    let subscribed = match tokio::try_join!(
        backend::list_subscriptions(&state, &caller, Some(&app.id), None),
        backend::list_apis(&state, &caller),
    ) {
        Ok((subs, apis)) => {
            let active: Vec<&str> =
                subs.iter().filter(|s| s.state == SubscriptionState::Active).map(|s| s.api_id.as_str()).collect();
            apis.into_iter()
                .filter(|api| active.contains(&api.id.as_str()) && api.state.invokable())
                .collect::<Vec<ApiRecord>>()
        }
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    match backend::token(&state, &caller, &app.id).await {
        Ok(token) => {
            let body = format!(
                r#"{}<p><a href="{BACK}">Back to applications</a></p>"#,
                token_block(&state, &app, &subscribed, &token.token, token.expires_in())
            );
            let title = format!("Access token of {}", app.name);
            Page { area: AREA, title: &title, viewer: Some(visit::viewer(&caller)), notice: None, body }
                .render(StatusCode::OK)
        }
        Err(err) => visit::failure(AREA, &caller, err),
    }
}

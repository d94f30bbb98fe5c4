//! The developer portal's catalogue (PUBLISHED and DEPRECATED APIs, searchable) and an API's
//! page: its invoke URLs, the way to the key generation wizard, the caller's subscriptions to
//! it, and the "Try it" console, a WebSocket opened by the browser through the gateway.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use wsgate_core::config::AuthMode;
use wsgate_core::model::{ApiRecord, Application, Subscription, SubscriptionState};

use super::forms::{Form, encode};
use super::html::{Area, Notice, Page, badge, copyable, csrf_input, esc};
use super::wizard::wscat_commands;
use super::{backend, gateway, invoke_url, visit};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

const AREA: Area = Area::Devportal;

#[derive(Deserialize)]
pub struct CatalogueQuery {
    q: Option<String>,
    notice: Option<String>,
}

pub async fn catalogue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CatalogueQuery>,
) -> Response {
    let search = query.q.as_deref().unwrap_or("").trim().to_string();
    let back = if search.is_empty() { "/devportal".to_string() } else { format!("/devportal?q={}", encode(&search)) };
    let caller = match visit::browse(&state, &headers, AREA, &back).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let apis = match backend::browsable_apis(&state, caller.as_ref()).await {
        Ok(apis) => apis,
        Err(err) => return visit::failure(AREA, caller.as_ref(), err),
    };
    let wanted = search.to_lowercase();
    // Publishers and admins see every API through REST; the catalogue shows what can be used.
    let shown: Vec<&ApiRecord> = apis
        .iter()
        .filter(|api| api.state.invokable())
        .filter(|api| {
            wanted.is_empty()
                || [&api.name, &api.context, &api.version].iter().any(|text| text.to_lowercase().contains(&wanted))
        })
        .collect();
    let cards: String = shown
        .iter()
        .map(|api| {
            format!(
                r#"<li class="card api-card"><h2><a href="/devportal/apis/{id}">{name}</a></h2>
<p>Version {version} · <code>{context}</code> · {state}</p>
<p class="hint">Business plans: {plans}</p></li>"#,
                id = esc(&api.id),
                name = esc(&api.name),
                version = esc(&api.version),
                context = esc(&api.context),
                state = badge(api.state.as_str()),
                plans = esc(&api.plans.join(", ")),
            )
        })
        .collect();
    let results = match (shown.is_empty(), search.is_empty()) {
        (true, true) => r#"<p class="empty">No APIs are published yet.</p>"#.to_string(),
        (true, false) => format!(r#"<p class="empty">No API matches “{}”.</p>"#, esc(&search)),
        (false, _) => format!(r#"<ul class="cards">{cards}</ul>"#),
    };
    let body = format!(
        r#"<form method="get" action="/devportal" class="search" role="search">
<label for="q">Search APIs</label>
<input id="q" name="q" type="search" value="{q}" placeholder="name, context or version">
<button type="submit">Search</button>
</form>
<p class="hint" aria-live="polite">{count} API{plural}</p>
{results}"#,
        q = esc(&search),
        count = shown.len(),
        plural = if shown.len() == 1 { "" } else { "s" },
    );
    let notice = query.notice.as_deref().and_then(Notice::parse);
    let viewer = Some(visit::viewer_or_visitor(&state, caller.as_ref(), &back));
    Page { area: AREA, title: "APIs", viewer, notice, body }.render(StatusCode::OK)
}

/// An API the developer portal shows: visible to the caller and open for use.
pub async fn usable_api(state: &AppState, caller: &Caller, id: &str) -> Result<ApiRecord, ApiError> {
    match backend::api(state, caller, id).await? {
        api if api.state.invokable() => Ok(api),
        _ => Err(ApiError::not_found("API")),
    }
}

/// The caller's own applications (admins see everyone's through REST; the portal is personal).
pub async fn own_applications(state: &AppState, caller: &Caller) -> Result<Vec<Application>, ApiError> {
    let apps = backend::list_applications(state, caller).await?;
    Ok(apps.into_iter().filter(|app| app.owner == caller.name()).collect())
}

pub async fn api_page(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let caller = match visit::browse(&state, &headers, AREA, &format!("/devportal/apis/{id}")).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    render(&state, caller.as_ref(), &id, None).await
}

/// A token for one of the caller's applications subscribed to this API, handed to the page's
/// console. The token travels in this POST's answer, never in a URL the browser navigates to.
pub async fn try_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let caller = match visit::form(&state, &headers, &form, AREA, &format!("/devportal/apis/{id}")).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let app_id = form.get("application");
    let subscribed = match subscriptions_here(&state, &caller, &id).await {
        Ok(subs) => subs.iter().any(|(app, sub)| app.id == app_id && sub.state == SubscriptionState::Active),
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    if !subscribed {
        let err = ApiError::invalid("application", "choose one of your applications subscribed to this API");
        return visit::failure(AREA, &caller, err);
    }
    match backend::token(&state, &caller, app_id).await {
        Ok(token) => render(&state, Some(&caller), &id, Some(token.token)).await,
        Err(err) => visit::failure(AREA, Some(&caller), err),
    }
}

/// The caller's applications' live subscriptions to the API `api_id`.
async fn subscriptions_here(
    state: &AppState,
    caller: &Caller,
    api_id: &str,
) -> Result<Vec<(Application, Subscription)>, ApiError> {
    let apps = own_applications(state, caller).await?;
    let subs = backend::list_subscriptions(state, caller, None, Some(api_id)).await?;
    Ok(subs
        .into_iter()
        .filter(|sub| sub.state != SubscriptionState::Removed)
        .filter_map(|sub| apps.iter().find(|app| app.id == sub.application_id).map(|app| (app.clone(), sub)))
        .collect())
}

/// The API's page, for a signed-in caller or (`None`) a visitor without an account.
async fn render(state: &AppState, caller: Option<&Caller>, id: &str, token: Option<String>) -> Response {
    let api = match backend::browsable_api(state, caller, id).await {
        Ok(api) if api.state.invokable() => api,
        Ok(_) => return visit::failure(AREA, caller, ApiError::not_found("API")),
        Err(err) => return visit::failure(AREA, caller, err),
    };
    let subs = match caller {
        Some(caller) => match subscriptions_here(state, caller, &api.id).await {
            Ok(subs) => subs,
            Err(err) => return visit::failure(AREA, Some(caller), err),
        },
        None => Vec::new(),
    };
    let urls = gateway(state);
    let mut invoke = String::new();
    for (n, (label, base)) in
        [("WebSocket (ws://)", &urls.ws), ("Secure WebSocket (wss://)", &urls.wss)].into_iter().enumerate()
    {
        if let Some(base) = base {
            invoke.push_str(&copyable(&format!("url-{n}"), label, &invoke_url(base, &api)));
        }
    }
    let subscribed: String = subs
        .iter()
        .map(|(app, sub)| {
            format!("<li>{} · plan {} · {}</li>", esc(&app.name), esc(&sub.plan), badge(sub.state.as_str()))
        })
        .collect();
    let subscribed = if caller.is_none() {
        r#"<p class="hint">Sign in to see your applications' subscriptions.</p>"#.to_string()
    } else if subscribed.is_empty() {
        r#"<p class="hint">None of your applications is subscribed yet.</p>"#.to_string()
    } else {
        format!(
            r#"<ul class="plain">{subscribed}</ul><p><a href="/devportal/applications">Manage applications</a></p>"#
        )
    };
    let wizard = if api.state == wsgate_core::model::Lifecycle::Published {
        format!(
            r#"<p><a class="button primary" href="/devportal/apis/{}/wizard">Key generation wizard</a></p>
<p class="hint">Creates or picks an application, subscribes it with a business plan, generates its keys and an access token, in four short steps.</p>"#,
            esc(&api.id)
        )
    } else {
        r#"<p class="hint">This API is DEPRECATED: existing subscriptions keep working, new ones are not taken.</p>"#
            .into()
    };
    let security = match api.auth {
        AuthMode::Oauth2 => {
            "OAuth2 access token: the Authorization: Bearer header, or the access_token query parameter"
        }
        AuthMode::None => "None: no token needed",
    };
    let body = format!(
        r#"<dl class="facts">
<dt>State</dt><dd>{state}</dd>
<dt>Context</dt><dd><code>{context}</code></dd>
<dt>Business plans</dt><dd>{plans}</dd>
<dt>Security</dt><dd>{security}</dd>
</dl>
<section aria-labelledby="h-invoke"><h2 id="h-invoke">Invoke URLs</h2>{invoke}</section>
<section aria-labelledby="h-subscribe"><h2 id="h-subscribe">Subscribe</h2>{wizard}
<h3>Your subscriptions</h3>{subscribed}</section>
<section aria-labelledby="h-wscat"><h2 id="h-wscat">Invoke with wscat</h2>
<p class="hint">Install it with <code>npm install -g wscat</code>; replace TOKEN with an access token from the wizard.</p>
{commands}</section>
<section id="try" aria-labelledby="h-try"><h2 id="h-try">Try it</h2>{console}</section>"#,
        state = badge(api.state.as_str()),
        context = esc(&api.context),
        plans = esc(&api.plans.join(", ")),
        commands = wscat_commands(state, &api, "TOKEN", "cmd"),
        console = console(state, caller, &api, &subs, token.as_deref()),
    );
    let title = format!("{} {}", api.name, api.version);
    let back = format!("/devportal/apis/{}", api.id);
    let viewer = Some(visit::viewer_or_visitor(state, caller, &back));
    Page { area: AREA, title: &title, viewer, notice: None, body }.render(StatusCode::OK)
}

/// The "Try it" console. Without a token: a form that gets one for a subscribed application.
/// With a token: the console itself, which `portal.js` drives. The browser's page is served
/// over HTTPS, so it may only open `wss://` (a `ws://` socket would be blocked as mixed content).
fn console(
    state: &AppState,
    caller: Option<&Caller>,
    api: &ApiRecord,
    subs: &[(Application, Subscription)],
    token: Option<&str>,
) -> String {
    let urls = gateway(state);
    let Some(base) = urls.wss.as_deref() else {
        return r#"<p class="hint">The console needs the gateway's wss:// listener, which is turned off on this server.</p>"#.into();
    };
    let Some(caller) = caller else {
        return format!(
            r#"<p class="hint"><a href="/devportal/login?next={}">Sign in</a> to try the API from this page with one of your applications.</p>"#,
            esc(&encode(&format!("/devportal/apis/{}#try", api.id)))
        );
    };
    let active: Vec<&Application> =
        subs.iter().filter(|(_, sub)| sub.state == SubscriptionState::Active).map(|(app, _)| app).collect();
    let Some(token) = token else {
        if active.is_empty() {
            return r#"<p class="hint">Subscribe an application with the key generation wizard to try the API from this page.</p>"#.into();
        }
        let options: String = active
            .iter()
            .map(|app| format!(r#"<option value="{}">{}</option>"#, esc(&app.id), esc(&app.name)))
            .collect();
        return format!(
            r##"<form method="post" action="/devportal/apis/{id}/try#try" class="inline">{csrf}
<label for="try-app">Application</label>
<select id="try-app" name="application">{options}</select>
<button type="submit" class="primary">Get a test token</button></form>
<p class="hint">Gets a fresh access token for the application and opens a console here that connects through the gateway.</p>"##,
            id = esc(&api.id),
            csrf = csrf_input(&caller.csrf_token),
        );
    };
    format!(
        r#"<div class="console" data-url="{url}" data-token="{token}" data-diagnose="/devportal/apis/{id}/diagnose" data-csrf="{csrf}">
<p class="hint">Connects to <code>{url}</code> with the test token as <code>access_token</code> (browsers cannot set the Authorization header on a WebSocket).
If the connection fails on a self-signed certificate, open <a href="{https}">{https}</a> once and accept it.</p>
<div class="actions">
<button type="button" class="primary" data-console="connect">Connect</button>
<button type="button" data-console="disconnect" disabled>Disconnect</button>
<span class="console-state" data-console="state" role="status">Not connected</span>
</div>
<form class="inline" data-console="form">
<label for="try-message">Message</label>
<input id="try-message" data-console="message" autocomplete="off" disabled>
<button type="submit" data-console="send" disabled>Send</button>
</form>
<ol class="console-log" data-console="log" aria-live="polite" aria-label="Console log"></ol>
</div>"#,
        url = esc(&invoke_url(base, api)),
        token = esc(token),
        id = esc(&api.id),
        csrf = esc(&caller.csrf_token),
        https = esc(&base.replacen("wss://", "https://", 1)),
    )
}

//! The key generation wizard, as in the seeds: (1) a new or existing application, (2) a
//! subscription to the API with one of its business plans, (3) client keys, the secret shown
//! once, (4) an access token, shown once with copy buttons and the ready wscat commands.
//!
//! Steps 1 and 2 end in redirects, so reloading their next page is harmless. Steps 3 and 4
//! show secrets, so they are the answers to their POSTs: a secret is never in a URL and never
//! on a page that can be fetched again.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use wsgate_core::model::{ApiRecord, Application, SubscriptionState};

use super::devportal::{own_applications, usable_api};
use super::forms::{Form, Problems};
use super::html::{Area, Page, copyable, csrf_input, esc, see_other, text_field};
use super::{backend, gateway, invoke_url, visit};
use crate::auth::Caller;
use crate::clients::IssuedCredentials;
use crate::state::AppState;

const AREA: Area = Area::Devportal;

const STEPS: [&str; 4] = ["Application", "Subscribe", "Keys", "Access token"];

/// "Step n of 4" as an ordered list, the current step marked for assistive technology too.
fn steps(current: usize) -> String {
    let items: String = STEPS
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let (class, aria) = match i.cmp(&current) {
                std::cmp::Ordering::Less => ("done", ""),
                std::cmp::Ordering::Equal => ("current", r#" aria-current="step""#),
                std::cmp::Ordering::Greater => ("", ""),
            };
            format!(r#"<li class="{class}"{aria}>{label}</li>"#)
        })
        .collect();
    format!(r#"<ol class="steps" aria-label="Key generation wizard, step {} of 4">{items}</ol>"#, current + 1)
}

fn page(caller: &Caller, api: &ApiRecord, body: String, status: StatusCode) -> Response {
    let title = format!("Key generation wizard: {} {}", api.name, api.version);
    Page { area: AREA, title: &title, viewer: Some(visit::viewer(caller)), notice: None, body }.render(status)
}

/// The caller and the API, or the page that replaces them.
async fn open(
    state: &AppState,
    headers: &HeaderMap,
    form: Option<&Form>,
    id: &str,
) -> Result<(Caller, ApiRecord), Response> {
    let back = format!("/devportal/apis/{id}/wizard");
    let caller = match form {
        Some(form) => visit::form(state, headers, form, AREA, &back).await?,
        None => visit::page(state, headers, AREA, &back).await?,
    };
    let api = usable_api(state, &caller, id).await.map_err(|err| visit::failure(AREA, &caller, err))?;
    Ok((caller, api))
}

pub async fn start(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    match open(&state, &headers, None, &id).await {
        Ok((caller, api)) => render_start(&state, &caller, &api, "", &Problems::default(), StatusCode::OK).await,
        Err(page) => page,
    }
}

async fn render_start(
    state: &AppState,
    caller: &Caller,
    api: &ApiRecord,
    name: &str,
    problems: &Problems,
    status: StatusCode,
) -> Response {
    let apps = match own_applications(state, caller).await {
        Ok(apps) => apps,
        Err(err) => return visit::failure(AREA, caller, err),
    };
    let existing: String = apps
        .iter()
        .map(|app| {
            format!(
                r#"<label class="check"><input type="radio" name="application" value="{id}"> {name}</label>"#,
                id = esc(&app.id),
                name = esc(&app.name)
            )
        })
        .collect();
    let new_checked =
        if apps.is_empty() || !name.is_empty() || problems.on("app_name").is_some() { " checked" } else { "" };
    let body = format!(
        r#"{steps}{summary}<form method="post" action="/devportal/apis/{id}/wizard" class="card" novalidate>
{csrf}
<fieldset><legend>Which application will call {api_name}?</legend>
<label class="check"><input type="radio" name="application" value="new"{new_checked}> A new application</label>
{name_field}
{existing}
</fieldset>
<div class="actions"><button type="submit" class="primary">Next: subscribe</button></div>
</form>"#,
        steps = steps(0),
        summary = problems.summary(),
        id = esc(&api.id),
        csrf = csrf_input(&caller.csrf_token),
        api_name = esc(&api.name),
        name_field = text_field(
            "app_name",
            "Name of the new application",
            name,
            "For example EchoApp. Ignored when you pick an existing application.",
            problems.on("app_name"),
            r#"autocomplete="off""#
        ),
    );
    page(caller, api, body, status)
}

pub async fn choose_application(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let (caller, api) = match open(&state, &headers, Some(&form), &id).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    let choice = form.get("application");
    let name = form.get("app_name");
    let app = if choice == "new" || (choice.is_empty() && !name.is_empty()) {
        match backend::create_application(&state, &caller, name, "").await {
            Ok(app) => app,
            Err(err) => {
                let status = err.status();
                let mut problems = Problems::default();
                problems.field("app_name", err.to_string());
                return render_start(&state, &caller, &api, name, &problems, status).await;
            }
        }
    } else {
        match backend::application(&state, &caller, choice).await {
            Ok(app) => app,
            Err(_) => {
                let mut problems = Problems::default();
                problems.general("Choose an application, or name a new one.");
                return render_start(&state, &caller, &api, name, &problems, StatusCode::UNPROCESSABLE_ENTITY).await;
            }
        }
    };
    see_other(&format!("/devportal/apis/{}/wizard/{}/subscribe", api.id, app.id))
}

/// The API and one of the caller's applications, for steps 2 to 4.
async fn open_with_app(
    state: &AppState,
    headers: &HeaderMap,
    form: Option<&Form>,
    id: &str,
    app_id: &str,
) -> Result<(Caller, ApiRecord, Application), Response> {
    let (caller, api) = open(state, headers, form, id).await?;
    let app = backend::application(state, &caller, app_id).await.map_err(|err| visit::failure(AREA, &caller, err))?;
    Ok((caller, api, app))
}

pub async fn plan_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, app)): Path<(String, String)>,
) -> Response {
    match open_with_app(&state, &headers, None, &id, &app).await {
        Ok((caller, api, app)) => render_plans(&state, &caller, &api, &app, &Problems::default(), StatusCode::OK).await,
        Err(page) => page,
    }
}

async fn render_plans(
    state: &AppState,
    caller: &Caller,
    api: &ApiRecord,
    app: &Application,
    problems: &Problems,
    status: StatusCode,
) -> Response {
    let subs = match backend::list_subscriptions(state, caller, Some(&app.id), Some(&api.id)).await {
        Ok(subs) => subs,
        Err(err) => return visit::failure(AREA, caller, err),
    };
    let live = subs.iter().find(|s| s.state != SubscriptionState::Removed);
    let keys_url = format!("/devportal/apis/{}/wizard/{}/keys", esc(&api.id), esc(&app.id));
    let content = match live {
        Some(sub) if sub.state == SubscriptionState::Active => format!(
            r#"<p>{app} is already subscribed to {api} with the <strong>{plan}</strong> plan.</p>
<div class="actions"><a class="button primary" href="{keys_url}">Next: keys</a></div>"#,
            app = esc(&app.name),
            api = esc(&api.name),
            plan = esc(&sub.plan),
        ),
        Some(_) => r#"<p class="notice error">The publisher has blocked this application's subscription. Ask them to lift the block, or use another application.</p>"#.to_string(),
        None => {
            // Each plan with its limits in words, so a subscriber knows what they choose.
            let known = backend::list_plans(state, caller).await.unwrap_or_default();
            let options: String = api
                .plans
                .iter()
                .enumerate()
                .map(|(i, plan)| {
                    let limits = known.iter().find(|p| &p.name == plan).map(|p| p.limits.describe()).unwrap_or_default();
                    format!(
                        r#"<label class="check"><input type="radio" name="plan" value="{plan}"{checked}> {plan} <span class="hint">{limits}</span></label>"#,
                        plan = esc(plan),
                        limits = esc(&limits),
                        checked = if i == 0 { " checked" } else { "" }
                    )
                })
                .collect();
            let error = problems.on("plan").map(|m| format!(r#"<p class="field-error">{}</p>"#, esc(m))).unwrap_or_default();
            format!(
                r#"<form method="post" action="/devportal/apis/{id}/wizard/{app_id}/subscribe" class="card">{csrf}
<fieldset><legend>Business plan for {app}</legend>{options}{error}</fieldset>
<div class="actions"><button type="submit" class="primary">Subscribe</button></div></form>"#,
                id = esc(&api.id),
                app_id = esc(&app.id),
                csrf = csrf_input(&caller.csrf_token),
                app = esc(&app.name),
            )
        }
    };
    page(caller, api, format!("{}{}{content}", steps(1), problems.summary()), status)
}

pub async fn subscribe(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, app)): Path<(String, String)>,
    form: Form,
) -> Response {
    let (caller, api, app) = match open_with_app(&state, &headers, Some(&form), &id, &app).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    match backend::subscribe(&state, &caller, &app.id, &api.id, form.get("plan")).await {
        Ok(_) => see_other(&format!("/devportal/apis/{}/wizard/{}/keys", api.id, app.id)),
        Err(err) => {
            let status = err.status();
            render_plans(&state, &caller, &api, &app, &Problems::from_api(err), status).await
        }
    }
}

pub async fn keys_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, app)): Path<(String, String)>,
) -> Response {
    let (caller, api, app) = match open_with_app(&state, &headers, None, &id, &app).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    let client_id = match backend::client_id(&state, &caller, &app.id).await {
        Ok(client_id) => client_id,
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    let base = format!("/devportal/apis/{}/wizard/{}", esc(&api.id), esc(&app.id));
    let csrf = csrf_input(&caller.csrf_token);
    let content = match client_id {
        Some(client_id) => format!(
            r#"<p>{app} already has keys. Its client secret was shown when they were made; regenerate them to see a new one (the old secret stops working).</p>
{client}
<div class="actions">
<form method="post" action="{base}/token" class="inline">{csrf}<button type="submit" class="primary">Next: access token</button></form>
<form method="post" action="{base}/keys" class="inline" data-confirm="Regenerate the keys? The old secret stops working.">{csrf}<button type="submit">Regenerate keys</button></form>
</div>"#,
            app = esc(&app.name),
            client = copyable("client-id", "Consumer key (client id)", &client_id),
        ),
        None => format!(
            r#"<p>Generate the OAuth2 client credentials of {app}: a consumer key (client id) and a consumer secret.</p>
<form method="post" action="{base}/keys">{csrf}<div class="actions"><button type="submit" class="primary">Generate keys</button></div></form>"#,
            app = esc(&app.name),
        ),
    };
    page(&caller, &api, format!("{}{content}", steps(2)), StatusCode::OK)
}

pub async fn generate_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, app)): Path<(String, String)>,
    form: Form,
) -> Response {
    let (caller, api, app) = match open_with_app(&state, &headers, Some(&form), &id, &app).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    let issued = match backend::generate_keys(&state, &caller, &app.id).await {
        Ok(issued) => issued,
        Err(err) => return visit::failure(AREA, &caller, err),
    };
    let next = format!(
        r#"<form method="post" action="/devportal/apis/{}/wizard/{}/token">{}<div class="actions"><button type="submit" class="primary">Next: access token</button></div></form>"#,
        esc(&api.id),
        esc(&app.id),
        csrf_input(&caller.csrf_token),
    );
    page(&caller, &api, format!("{}{}{next}", steps(2), credentials(&issued)), StatusCode::OK)
}

/// Freshly generated client credentials, with the warning that the secret is shown only now.
pub fn credentials(issued: &IssuedCredentials) -> String {
    format!(
        r#"<p class="notice warn" role="status">Copy the consumer secret now: it is shown only this once (wsgate keeps only a hash of it).</p>
{id}{secret}"#,
        id = copyable("client-id", "Consumer key (client id)", &issued.client_id),
        secret = copyable("client-secret", "Consumer secret", &issued.client_secret),
    )
}

pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, app)): Path<(String, String)>,
    form: Form,
) -> Response {
    let (caller, api, app) = match open_with_app(&state, &headers, Some(&form), &id, &app).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    match backend::token(&state, &caller, &app.id).await {
        Ok(token) => {
            let body = format!(
                "{}{}",
                steps(3),
                token_block(&state, &app, std::slice::from_ref(&api), &token.token, token.expires_in())
            );
            page(&caller, &api, body, StatusCode::OK)
        }
        Err(err) => visit::failure(AREA, &caller, err),
    }
}

/// An access token shown once, and how to use it with each of `apis`.
pub fn token_block(state: &AppState, app: &Application, apis: &[ApiRecord], token: &str, expires_in: i64) -> String {
    let mut html = format!(
        r#"<p class="notice warn" role="status">Copy the access token now: it is shown only this once. It is valid for {minutes} minutes; get a new one any time from <a href="/devportal/applications">Applications</a>.</p>
{token}"#,
        minutes = (expires_in + 59) / 60,
        token = copyable("token", &format!("Access token of {}", app.name), token),
    );
    for (n, api) in apis.iter().enumerate() {
        html.push_str(&format!(
            r##"<section class="try-links"><h2>Invoke {name} {version}</h2>{commands}
<p><a href="/devportal/apis/{id}#try">Try it in the browser</a></p></section>"##,
            name = esc(&api.name),
            version = esc(&api.version),
            commands = wscat_commands(state, api, token, &format!("cmd-{n}")),
            id = esc(&api.id),
        ));
    }
    if apis.is_empty() {
        html.push_str(r#"<p class="hint">This application is not subscribed to any API yet.</p>"#);
    }
    html
}

/// The seeds' three wscat commands for `api`: the header over ws://, the header over wss://
/// (`-n`: the generated certificate is self-signed), and the `access_token` query parameter.
pub fn wscat_commands(state: &AppState, api: &ApiRecord, token: &str, id: &str) -> String {
    let urls = gateway(state);
    let mut html = String::new();
    if let Some(ws) = &urls.ws {
        let url = invoke_url(ws, api);
        let header = format!(r#"wscat -c {url} -H "Authorization: Bearer {token}""#);
        html.push_str(&copyable(&format!("{id}-ws"), "ws://, token in the Authorization header", &header));
    }
    if let Some(wss) = &urls.wss {
        let url = invoke_url(wss, api);
        let header = format!(r#"wscat -n -c {url} -H "Authorization: Bearer {token}""#);
        html.push_str(&copyable(&format!("{id}-wss"), "wss:// (-n accepts the self-signed certificate)", &header));
    }
    if let Some(base) = urls.ws.as_ref().or(urls.wss.as_ref()) {
        let query = format!(
            r#"wscat{n} -c "{url}?access_token={token}""#,
            n = if urls.ws.is_some() { "" } else { " -n" },
            url = invoke_url(base, api)
        );
        html.push_str(&copyable(
            &format!("{id}-query"),
            "Clients that cannot set headers (browsers): the access_token parameter",
            &query,
        ));
    }
    html
}

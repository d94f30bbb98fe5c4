//! The two web portals, server-rendered HTML over the same sessions, roles and rules as the REST
//! API: the **publisher** at `/publisher` (create, configure and publish APIs) and the
//! **developer portal** at `/devportal` (find APIs, subscribe, get keys and tokens, try them).
//!
//! Modules, in reading order:
//! - `html`: the page layout, the one escaping function, notices and error pages.
//! - `forms`: form bodies, CSRF fields, field-level problems, safe `next` paths.
//! - `visit`: who is looking at a page: sign-in redirects, CSRF checks, the 403 page.
//! - `backend`: the REST handlers called in-process, so every rule lives in `rest` only.
//! - `account`: sign-in, sign-out and self sign-up for both portals.
//! - `publisher`: API list, "Create API", overview.
//! - `configure`: an API's configuration and the lifecycle page.
//! - `endpoints`: each endpoint's state and the endpoint settings and allowed origins.
//! - `subscriptions`: an API's subscriptions for publishers: block, unblock, change plan,
//!   grant scopes.
//! - `devportal`: catalogue, API page with invoke URLs and the "Try it" console; both pages
//!   open to visitors without an account when `control.anonymous_browsing` is on.
//! - `diagnosis`: why the "Try it" console's WebSocket failed, as the gateway says it.
//! - `wizard`: the key generation wizard and the page that shows a token once.
//! - `applications`: applications and subscriptions management, with each subscription's
//!   limits, usage and plan.
//! - `plans`: the business plans page (admins create, change and delete plans).
//! - `charts`: bar charts as inline SVG, drawn on the server, numbers in `data-*` attributes.
//! - `analytics`: the publisher's per-API analytics tab and an application's usage page.
//! - `nodes`: the cluster's nodes and their health (admins).
//!
//! Invariants: every value that came from a user or the store is escaped by `html::esc`
//! before it is written into a page; every form carries a CSRF field checked before anything
//! is written; no secret ever appears in a URL (the "Try it" console puts the access token in
//! the query of its WebSocket only, as browsers cannot set headers there); pages are never
//! cached and may not be framed.

mod html;
mod forms;
mod visit;
mod backend;
mod account;
mod publisher;
mod configure;
mod endpoints;
mod subscriptions;
mod devportal;
mod diagnosis;
mod wizard;
mod applications;
mod plans;
mod charts;
mod analytics;
mod nodes;

use std::net::SocketAddr;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::state::AppState;

/// Where browsers and wscat reach the gateway, as the portals print it in invoke URLs.
#[derive(Debug, Clone, Default)]
pub struct GatewayUrls {
    /// `ws://host:port`, or `None` when the ws listener is off.
    pub ws: Option<String>,
    /// `wss://host:port`, or `None` when the wss listener is off.
    pub wss: Option<String>,
}

impl GatewayUrls {
    /// The seeds' addresses, for a control plane that was not told the gateway's.
    pub fn fallback() -> GatewayUrls {
        GatewayUrls { ws: Some("ws://localhost:9099".into()), wss: Some("wss://localhost:8099".into()) }
    }
}

/// The URL a client on this machine uses for a listener bound to `addr`: an unspecified
/// address (`0.0.0.0`, `[::]`) becomes `localhost`, as in the seeds.
pub fn gateway_url(scheme: &str, addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("{scheme}://localhost:{}", addr.port())
    } else {
        format!("{scheme}://{addr}")
    }
}

/// The portals' routes, merged into the control plane's router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/portal-assets/portal.css", get(css))
        .route("/portal-assets/portal.js", get(js))
        .route("/", get(|| async { html::see_other("/devportal") }))
        .route("/publisher", get(publisher::list))
        .route("/publisher/login", get(account::publisher_login_page).post(account::publisher_login))
        .route("/publisher/logout", post(account::publisher_logout))
        .route("/publisher/apis/new", get(publisher::new_form))
        .route("/publisher/apis", post(publisher::create))
        .route("/publisher/apis/{id}", get(publisher::overview))
        .route("/publisher/apis/{id}/delete", post(publisher::delete))
        .route("/publisher/apis/{id}/configure", get(configure::form).post(configure::save))
        .route("/publisher/apis/{id}/endpoints", get(endpoints::page).post(endpoints::save))
        .route("/publisher/apis/{id}/lifecycle", get(configure::lifecycle).post(configure::move_to))
        .route("/publisher/apis/{id}/subscriptions", get(subscriptions::list))
        .route("/publisher/apis/{id}/analytics", get(analytics::api_page))
        .route("/publisher/subscriptions/{id}/scopes", post(subscriptions::grant))
        .route("/publisher/subscriptions/{id}/state", post(subscriptions::set_state))
        .route("/publisher/subscriptions/{id}/plan", post(subscriptions::set_plan))
        .route("/publisher/plans", get(plans::list).post(plans::create))
        .route("/publisher/plans/{name}", get(plans::edit).post(plans::save))
        .route("/publisher/plans/{name}/delete", post(plans::delete))
        .route("/publisher/nodes", get(nodes::page))
        .route("/devportal", get(devportal::catalogue))
        .route("/devportal/login", get(account::devportal_login_page).post(account::devportal_login))
        .route("/devportal/logout", post(account::devportal_logout))
        .route("/devportal/signup", get(account::signup_page).post(account::signup))
        .route("/devportal/apis/{id}", get(devportal::api_page))
        .route("/devportal/apis/{id}/try", post(devportal::try_token))
        .route("/devportal/apis/{id}/diagnose", post(diagnosis::diagnose))
        .route("/devportal/apis/{id}/wizard", get(wizard::start).post(wizard::choose_application))
        .route("/devportal/apis/{id}/wizard/{app}/subscribe", get(wizard::plan_form).post(wizard::subscribe))
        .route("/devportal/apis/{id}/wizard/{app}/keys", get(wizard::keys_form).post(wizard::generate_keys))
        .route("/devportal/apis/{id}/wizard/{app}/token", post(wizard::token))
        .route("/devportal/applications", get(applications::list).post(applications::create))
        .route("/devportal/applications/{id}/delete", post(applications::delete))
        .route("/devportal/applications/{id}/analytics", get(analytics::application_page))
        .route("/devportal/applications/{id}/keys", post(applications::generate_keys))
        .route("/devportal/applications/{id}/token", post(applications::token))
        .route("/devportal/subscriptions/{id}/unsubscribe", post(applications::unsubscribe))
        .route("/devportal/subscriptions/{id}/plan", post(applications::change_plan))
        .layer(axum::middleware::map_response(harden))
}

const CSS: &str = include_str!("../../assets/portal.css");
const JS: &str = include_str!("../../assets/portal.js");

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

/// Assets are compiled in, so they change only with the binary: revalidating is enough.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// What a browser may do with a portal page: run only our own script and style, open
/// WebSockets (the "Try it" console), post forms only to us, never be framed (clickjacking),
/// and never send the page's address to another site.
async fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self' ws: wss:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The gateway's URLs as the binary reported them, else the seeds' defaults.
fn gateway(state: &AppState) -> GatewayUrls {
    state.gateway_urls.get().cloned().unwrap_or_else(GatewayUrls::fallback)
}

/// The address of an API on a gateway listener: `ws://host:port/context/version`.
fn invoke_url(base: &str, api: &wsgate_core::model::ApiRecord) -> String {
    format!("{base}{}/{}", api.context, api.version)
}

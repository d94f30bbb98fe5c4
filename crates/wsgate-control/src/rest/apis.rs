//! WebSocket APIs, the publisher's side: create (or create & publish), list, show, edit,
//! delete, and lifecycle moves. Creators write APIs, publishers move them through their
//! lifecycle; subscribers see only what they may subscribe to or call.
//!
//! What reaches beyond the gateway is an admin's call: only an admin sets `ca_file` (a path
//! the gateway reads) or `insecure_skip_verify`, and a non-admin's new endpoints must be in
//! `control.endpoint_allowlist` when one is configured.
//!
//! An API's upstream (its endpoint URLs, which are internal addresses, their TLS and endpoint
//! settings, and their live state at `GET /api/v1/apis/{id}/endpoints`) is shown to creators,
//! publishers and admins only; a subscriber sees the API without it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wsgate_core::config::AuthMode;
use wsgate_core::model::{ApiRecord, Lifecycle, Role};
use wsgate_core::upstream::{EndpointSettings, EndpointStatus};
use wsgate_core::version;

use super::extract::{Body, Query};
use super::validate;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::{crypto, now, oauth2};

/// The body of `POST /api/v1/apis` and `PUT /api/v1/apis/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiBody {
    name: String,
    context: String,
    version: String,
    #[serde(default)]
    endpoints: Vec<String>,
    #[serde(default)]
    plans: Vec<String>,
    /// `"oauth2"` (default) or `"none"`; text so that a wrong value is a 422 naming the field.
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    default_version: Option<bool>,
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    insecure_skip_verify: Option<bool>,
    /// Scopes a token must carry to connect.
    #[serde(default)]
    scopes: Vec<String>,
    /// Close live connections when their token expires (default true).
    #[serde(default)]
    close_on_token_expiry: Option<bool>,
    /// A plan whose limits all connections to this API share (protects the backend).
    #[serde(default)]
    api_plan: Option<String>,
    /// A plan whose limits each client address gets on its own (for keyless APIs).
    #[serde(default)]
    client_plan: Option<String>,
    /// Create & publish in one step (POST only; on PUT even `"publish": null` is refused, so
    /// the outer `Option` says whether the key was there at all).
    #[serde(default, deserialize_with = "present")]
    publish: Option<Option<bool>>,
    /// Timeouts, balancing, breaker, probe and keepalive (`null`: every default). Absent on a
    /// PUT: the stored settings stay, so clients that do not know the key never wipe them.
    /// Kept as JSON here and read by `validate::endpoint_settings`, which names the field.
    #[serde(default, deserialize_with = "present")]
    endpoint_settings: Option<Value>,
    /// Origins whose pages may connect (`null` or `[]`: any). Absent on a PUT: kept.
    #[serde(default, deserialize_with = "present")]
    allowed_origins: Option<Option<Vec<String>>>,
}

/// `Some(value)` for a key that is present, `null` included; absent keys get the default.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    name: Option<String>,
    version: Option<String>,
}

/// Creators, publishers and admins see every API; subscribers see those they can use.
fn visible(caller: &Caller, api: &ApiRecord) -> bool {
    sees_upstream(caller) || api.state.invokable()
}

/// Whether the caller may read APIs' upstreams: endpoint URLs (internal addresses an attacker
/// would love to map), their TLS and endpoint settings, and their live state. Creators,
/// publishers and admins; never a subscriber.
pub fn sees_upstream(caller: &Caller) -> bool {
    caller.has(Role::Creator) || caller.has(Role::Publisher)
}

/// The fields of an API that describe its upstream, left out of a subscriber's view.
const UPSTREAM_FIELDS: [&str; 4] = ["endpoints", "ca_file", "insecure_skip_verify", "endpoint_settings"];

/// An API as `GET /api/v1/apis` answers it: whole for those who [`sees_upstream`], without
/// [`UPSTREAM_FIELDS`] for everyone else.
pub struct Shown {
    api: ApiRecord,
    upstream: bool,
}

impl Serialize for Shown {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.upstream {
            return self.api.serialize(serializer);
        }
        let mut value = serde_json::to_value(&self.api).map_err(serde::ser::Error::custom)?;
        if let Some(fields) = value.as_object_mut() {
            for field in UPSTREAM_FIELDS {
                fields.remove(field);
            }
        }
        value.serialize(serializer)
    }
}

fn shown(caller: &Caller, api: ApiRecord) -> Shown {
    Shown { api, upstream: sees_upstream(caller) }
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<Shown>>, ApiError> {
    let apis = visible_apis(&state, &caller, &query).await?;
    Ok(Json(apis.into_iter().map(|api| shown(&caller, api)).collect()))
}

/// The APIs the caller may see that match the query (typed, for the portals).
pub async fn visible_apis(state: &AppState, caller: &Caller, query: &ListQuery) -> Result<Vec<ApiRecord>, ApiError> {
    let ListQuery { name, version: wanted } = query;
    let apis = state.store().list_apis().await?;
    let matches = |api: &ApiRecord| {
        name.as_ref().is_none_or(|name| &api.name == name)
            && wanted.as_ref().is_none_or(|v| version::canonical(&api.version) == version::canonical(v))
    };
    Ok(apis.into_iter().filter(|api| visible(caller, api) && matches(api)).collect())
}

/// The APIs a visitor without an account sees in the developer portal when
/// `control.anonymous_browsing` is on: those open for use (PUBLISHED, DEPRECATED), as any
/// subscriber sees them.
pub async fn public(state: &AppState) -> Result<Vec<ApiRecord>, ApiError> {
    Ok(state.store().list_apis().await?.into_iter().filter(|api| api.state.invokable()).collect())
}

/// One of [`public`]'s APIs; any other is "not found".
pub async fn public_one(state: &AppState, id: &str) -> Result<ApiRecord, ApiError> {
    match state.store().api(id).await? {
        Some(api) if api.state.invokable() => Ok(api),
        _ => Err(ApiError::not_found("API")),
    }
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Shown>, ApiError> {
    let api = find(&state, &caller, &id).await?;
    Ok(Json(shown(&caller, api)))
}

/// The API with this id, if the caller may see it; an API the caller may not see is as absent
/// as one that does not exist.
pub async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<ApiRecord, ApiError> {
    match state.store().api(id).await? {
        Some(api) if visible(caller, &api) => Ok(api),
        _ => Err(ApiError::not_found("API")),
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<ApiBody>,
) -> Result<Response, ApiError> {
    caller.require(Role::Creator)?;
    let publish = body.publish.flatten().unwrap_or(false);
    // "CREATE & PUBLISH" is offered only to a user who may also publish.
    if publish {
        caller.require(Role::Publisher)?;
    }
    let now = now();
    let mut api = ApiRecord {
        id: crypto::id()?,
        name: String::new(),
        context: String::new(),
        version: String::new(),
        endpoints: Vec::new(),
        plans: Vec::new(),
        auth: AuthMode::Oauth2,
        state: Lifecycle::Created,
        default_version: false,
        ca_file: None,
        insecure_skip_verify: false,
        scopes: Vec::new(),
        close_on_token_expiry: true,
        api_plan: None,
        client_plan: None,
        allowed_origins: Vec::new(),
        endpoint_settings: EndpointSettings::default(),
        owner: caller.name().to_string(),
        created_at: now,
        updated_at: now,
    };
    apply(&state, &caller, &mut api, body).await?;
    if publish {
        publishable(&api)?;
        api.state = Lifecycle::Published;
    }
    state.store().create_api(&api).await?;
    tracing::info!(api = %api.name, version = %api.version, state = api.state.as_str(), by = %caller.name(), "API created");
    Ok((StatusCode::CREATED, Json(api)).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<ApiBody>,
) -> Result<Json<ApiRecord>, ApiError> {
    caller.require(Role::Creator)?;
    if body.publish.is_some() {
        return Err(ApiError::MalformedBody {
            message: "publish: only on create; move a stored API with POST /api/v1/apis/{id}/lifecycle".into(),
            field: Some("publish".into()),
        });
    }
    let mut api = find(&state, &caller, &id).await?;
    apply(&state, &caller, &mut api, body).await?;
    // An API that takes connections must keep something to connect to and plans to offer.
    if api.state != Lifecycle::Created && api.state != Lifecycle::Retired {
        publishable(&api)?;
    }
    api.updated_at = now();
    state.store().update_api(&api).await?;
    Ok(Json(api))
}

/// Validates the body and writes it into `api`. Shared by create and edit so both apply the
/// same rules.
async fn apply(state: &AppState, caller: &Caller, api: &mut ApiRecord, body: ApiBody) -> Result<(), ApiError> {
    api.name = validate::display_name("name", &body.name, 100)?;
    validate::context(&body.context)?;
    validate::version(&body.version)?;
    validate::endpoints(&body.endpoints, None)?;
    // Endpoints already on the API were allowed when they were set (perhaps by an admin).
    if !caller.is_admin() {
        for (i, url) in body.endpoints.iter().enumerate().filter(|(_, url)| !api.endpoints.contains(url)) {
            validate::endpoints(std::slice::from_ref(url), Some(&state.endpoint_allowlist)).map_err(
                |err| match err {
                    ApiError::InvalidValue { message, .. } => ApiError::invalid(format!("endpoints[{i}]"), message),
                    other => other,
                },
            )?;
        }
    }
    let ca_file = body.ca_file.filter(|path| !path.is_empty());
    let insecure_skip_verify = body.insecure_skip_verify.unwrap_or(false);
    if !caller.is_admin() && (ca_file != api.ca_file || insecure_skip_verify != api.insecure_skip_verify) {
        let field = if ca_file != api.ca_file { "ca_file" } else { "insecure_skip_verify" };
        return Err(ApiError::invalid(
            field,
            "ca_file and insecure_skip_verify are set by admins only: one names a file the gateway reads, \
             the other turns off upstream certificate checks",
        ));
    }
    let offered = state.store().list_plans().await?;
    let names = || offered.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
    for (field, plan) in [("api_plan", &body.api_plan), ("client_plan", &body.client_plan)] {
        if let Some(plan) = plan.as_deref().filter(|p| !p.is_empty())
            && !offered.iter().any(|p| p.name == plan)
        {
            return Err(ApiError::invalid(field, format!("\"{plan}\" is not a business plan; plans are: {}", names())));
        }
    }
    let mut plans: Vec<String> = Vec::new();
    for (i, plan) in body.plans.iter().enumerate() {
        if plan.is_empty() {
            return Err(ApiError::invalid(
                format!("plans[{i}]"),
                format!("plans[{i}] is empty: name a business plan (plans are: {})", names()),
            ));
        }
        if !offered.iter().any(|p| &p.name == plan) {
            return Err(ApiError::invalid(
                format!("plans[{i}]"),
                format!("\"{plan}\" is not a business plan; plans are: {}", names()),
            ));
        }
        if !plans.contains(plan) {
            plans.push(plan.clone());
        }
    }
    api.auth = match body.auth.as_deref() {
        None | Some("oauth2") => AuthMode::Oauth2,
        Some("none") => AuthMode::None,
        Some(other) => return Err(ApiError::invalid("auth", format!("\"{other}\" is not \"oauth2\" or \"none\""))),
    };
    api.context = body.context;
    api.version = body.version;
    api.endpoints = body.endpoints;
    api.plans = plans;
    api.default_version = body.default_version.unwrap_or(false);
    api.ca_file = ca_file;
    api.insecure_skip_verify = insecure_skip_verify;
    for (i, scope) in body.scopes.iter().enumerate() {
        if scope.is_empty() {
            return Err(ApiError::invalid(
                format!("scopes[{i}]"),
                format!("scopes[{i}] is empty: name a scope (e.g. chat)"),
            ));
        }
        if scope.contains(' ') || !oauth2::valid_scope(scope) {
            return Err(ApiError::invalid(format!("scopes[{i}]"), format!("\"{scope}\" is not an OAuth2 scope word")));
        }
    }
    api.scopes = body.scopes;
    api.close_on_token_expiry = body.close_on_token_expiry.unwrap_or(true);
    api.api_plan = body.api_plan.filter(|p| !p.is_empty());
    api.client_plan = body.client_plan.filter(|p| !p.is_empty());
    if let Some(origins) = body.allowed_origins {
        let origins = origins.unwrap_or_default();
        validate::allowed_origins(&origins)?;
        api.allowed_origins = origins;
    }
    match &body.endpoint_settings {
        Some(value) => api.endpoint_settings = validate::endpoint_settings(value, api.endpoints.len())?,
        // The stored settings stay, but they must still fit: weights count the endpoints.
        None => {
            let (stored, now) = (api.endpoint_settings.weights.len(), api.endpoints.len());
            if stored != 0 && stored != now {
                return Err(ApiError::invalid(
                    "endpoint_settings.weights",
                    format!(
                        "endpoint_settings.weights: the API's {stored} stored weights do not fit its {now} endpoints; \
                         send endpoint_settings with one weight per endpoint (or \"weights\": [] for equal weights) \
                         along with the endpoints"
                    ),
                ));
            }
            validate::settings_fit(&api.endpoint_settings, now)?;
        }
    }
    if api.default_version {
        let others = state.store().list_apis().await?;
        if let Some(other) = others.iter().find(|o| o.id != api.id && o.context == api.context && o.default_version) {
            return Err(ApiError::Conflict(format!(
                "{} already has a default version ({} {}); unset it there first",
                api.context, other.name, other.version
            )));
        }
    }
    Ok(())
}

/// Publishing needs an endpoint to connect to and a plan to subscribe with.
fn publishable(api: &ApiRecord) -> Result<(), ApiError> {
    if api.endpoints.is_empty() {
        return Err(ApiError::invalid("endpoints", "publishing needs at least one ws:// or wss:// endpoint"));
    }
    if api.plans.is_empty() {
        return Err(ApiError::invalid("plans", "publishing needs at least one business plan"));
    }
    Ok(())
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Creator)?;
    let api = find(&state, &caller, &id).await?;
    state.store().delete_api(&api.id).await?;
    tracing::info!(api = %api.name, version = %api.version, by = %caller.name(), "API deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Move {
    state: String,
}

pub async fn lifecycle(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Move>,
) -> Result<Json<ApiRecord>, ApiError> {
    caller.require(Role::Publisher)?;
    let to = Lifecycle::parse(&body.state).ok_or_else(|| {
        ApiError::invalid(
            "state",
            format!("\"{}\" is not a lifecycle state: CREATED, PUBLISHED, DEPRECATED, RETIRED or BLOCKED", body.state),
        )
    })?;
    let mut api = find(&state, &caller, &id).await?;
    if !api.state.can_move_to(to) {
        return Err(ApiError::LifecycleMoveRefused { from: api.state, to });
    }
    if to == Lifecycle::Published {
        publishable(&api)?;
    }
    let from = api.state;
    api.state = to;
    api.updated_at = now();
    state.store().update_api(&api).await?;
    tracing::info!(api = %api.name, version = %api.version, from = from.as_str(), to = to.as_str(), by = %caller.name(), "API lifecycle moved");
    Ok(Json(api))
}

/// The answer of `GET /api/v1/apis/{id}/endpoints`: this node's view of the API's endpoints.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointsView {
    pub api_id: String,
    /// Whether this node's gateway reported the endpoints. `false` on a node without a gateway
    /// (a control plane alone) and for an API the gateway does not route (not published, or
    /// not loaded yet): then `endpoints` lists the configured ones with state `unknown`.
    pub reported: bool,
    pub endpoints: Vec<EndpointView>,
}

/// One endpoint as this node sees it (`state` `unknown` when not reported), with its weight.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointView {
    #[serde(flatten)]
    pub status: EndpointStatus,
    /// Its load-balancing weight, when it is one of the API's configured endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

pub async fn endpoints(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EndpointsView>, ApiError> {
    Ok(Json(endpoint_state(&state, &caller, &id).await?))
}

/// The endpoints of the API `id` as this node's gateway sees them, for creators, publishers
/// and admins (the role is checked before the API is looked up, so the refusal says nothing
/// about which ids exist).
pub async fn endpoint_state(state: &AppState, caller: &Caller, id: &str) -> Result<EndpointsView, ApiError> {
    if !sees_upstream(caller) {
        return Err(ApiError::MissingRole(Role::Publisher));
    }
    let api = find(state, caller, id).await?;
    let reported = state.endpoint_health.get().map(|health| health.endpoints(&api.id)).unwrap_or_default();
    Ok(view(&api, &reported))
}

/// What the gateway `reported` of `api`'s endpoints, with their weights; the configured
/// endpoints in state `unknown` when it reported nothing.
fn view(api: &ApiRecord, reported: &[EndpointStatus]) -> EndpointsView {
    let weight =
        |url: &str| api.endpoints.iter().position(|e| e == url).map(|index| api.endpoint_settings.weight(index));
    let statuses: Vec<EndpointStatus> = if reported.is_empty() {
        api.endpoints.iter().map(|url| EndpointStatus::unreported(url)).collect()
    } else {
        reported.to_vec()
    };
    let endpoints = statuses.into_iter().map(|status| EndpointView { weight: weight(&status.url), status }).collect();
    EndpointsView { api_id: api.id.clone(), reported: !reported.is_empty(), endpoints }
}

#[cfg(test)]
mod tests {
    use wsgate_core::upstream::EndpointCondition;

    use super::*;

    fn api() -> ApiRecord {
        ApiRecord {
            id: "a1".into(),
            name: "Echo".into(),
            context: "/echo".into(),
            version: "1".into(),
            endpoints: vec!["ws://a:1".into(), "ws://b:2".into()],
            plans: vec![],
            auth: AuthMode::Oauth2,
            state: Lifecycle::Published,
            default_version: false,
            ca_file: Some("/etc/ca.pem".into()),
            insecure_skip_verify: false,
            scopes: vec![],
            close_on_token_expiry: true,
            api_plan: None,
            client_plan: None,
            allowed_origins: vec!["https://app.example".into()],
            endpoint_settings: EndpointSettings { weights: vec![3, 1], ..EndpointSettings::default() },
            owner: "carl".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn unreported_endpoints_are_listed_as_configured_with_state_unknown() {
        let view = view(&api(), &[]);
        assert!(!view.reported);
        let states: Vec<_> =
            view.endpoints.iter().map(|e| (e.status.url.as_str(), e.status.state.as_str(), e.weight)).collect();
        assert_eq!(states, [("ws://a:1", "unknown", Some(3)), ("ws://b:2", "unknown", Some(1))]);
    }

    #[test]
    fn reported_endpoints_keep_the_gateways_words_and_get_their_weights() {
        let suspended = EndpointStatus {
            url: "ws://b:2".into(),
            state: EndpointCondition::Suspended,
            active_connections: 0,
            consecutive_failures: 5,
            retry_in_ms: Some(7_000),
            last_failure: Some("connect refused".into()),
        };
        let gone = EndpointStatus { url: "ws://old:3".into(), state: EndpointCondition::Up, ..suspended.clone() };
        let view = view(&api(), &[suspended, gone]);
        assert!(view.reported);
        let json = serde_json::to_value(&view).expect("json");
        assert_eq!(json["endpoints"][0]["state"], "suspended");
        assert_eq!(json["endpoints"][0]["weight"], 1);
        assert_eq!(json["endpoints"][0]["retry_in_ms"], 7000);
        assert!(json["endpoints"][1].get("weight").is_none(), "an endpoint no longer configured has no weight");
    }

    #[test]
    fn a_subscriber_sees_no_upstream() {
        let whole = serde_json::to_value(Shown { api: api(), upstream: true }).expect("json");
        assert_eq!(whole["endpoints"][0], "ws://a:1");
        assert_eq!(whole["endpoint_settings"]["weights"], serde_json::json!([3, 1]));
        let seen = serde_json::to_value(Shown { api: api(), upstream: false }).expect("json");
        for field in UPSTREAM_FIELDS {
            assert!(seen.get(field).is_none(), "{field} is hidden: {seen}");
        }
        assert_eq!(seen["name"], "Echo");
        assert_eq!(seen["allowed_origins"][0], "https://app.example", "origins are no secret");
    }
}

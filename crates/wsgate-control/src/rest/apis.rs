//! WebSocket APIs, the publisher's side: create (or create & publish), list, show, edit,
//! delete, and lifecycle moves. Creators write APIs, publishers move them through their
//! lifecycle; subscribers see only what they may subscribe to or call.
//!
//! What reaches beyond the gateway is an admin's call: only an admin sets `ca_file` (a path
//! the gateway reads) or `insecure_skip_verify`, and a non-admin's new endpoints must be in
//! `control.endpoint_allowlist` when one is configured.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use wsgate_core::config::AuthMode;
use wsgate_core::model::{ApiRecord, Lifecycle, Role};
use wsgate_core::upstream::EndpointSettings;
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
}

/// `Some(value)` for a key that is present, `null` included; absent keys get the default.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<bool>>, D::Error> {
    Option::<bool>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
pub struct ListQuery {
    name: Option<String>,
    version: Option<String>,
}

/// Creators, publishers and admins see every API; subscribers see those they can use.
fn visible(caller: &Caller, api: &ApiRecord) -> bool {
    caller.has(Role::Creator) || caller.has(Role::Publisher) || api.state.invokable()
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<ApiRecord>>, ApiError> {
    let ListQuery { name, version: wanted } = query;
    let apis = state.store().list_apis().await?;
    let matches = |api: &ApiRecord| {
        name.as_ref().is_none_or(|name| &api.name == name)
            && wanted.as_ref().is_none_or(|v| version::canonical(&api.version) == version::canonical(v))
    };
    Ok(Json(apis.into_iter().filter(|api| visible(&caller, api) && matches(api)).collect()))
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
) -> Result<Json<ApiRecord>, ApiError> {
    Ok(Json(find(&state, &caller, &id).await?))
}

/// The API with this id, if the caller may see it; an API the caller may not see is as absent
/// as one that does not exist.
async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<ApiRecord, ApiError> {
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

//! Applications, the developer portal's side: a subscriber's applications, their client
//! credentials (shown once) and tokens minted for them by their owner's session.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use wsgate_core::model::{Application, ExternalClient, Role, SubscriptionState};
use wsgate_store::SubscriptionFilter;

use super::extract::Body;
use super::validate;
use crate::auth::Caller;
use crate::clients::{self, IssuedCredentials};
use crate::error::ApiError;
use crate::oauth2::{self, TokenAnswer};
use crate::state::AppState;
use crate::{crypto, now, scopes};

/// The caller's application with this id. Another user's application is "not found", not
/// "forbidden", so that ids of other users' applications cannot be probed.
pub async fn owned(state: &AppState, caller: &Caller, id: &str) -> Result<Application, ApiError> {
    match state.store().application(id).await? {
        Some(app) if app.owner == caller.name() || caller.is_admin() => Ok(app),
        _ => Err(ApiError::not_found("application")),
    }
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<Application>>, ApiError> {
    let owner = if caller.is_admin() { None } else { Some(caller.name()) };
    Ok(Json(state.store().list_applications(owner).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// A plan all of the application's connections share.
    #[serde(default)]
    plan: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewApplication>,
) -> Result<(StatusCode, Json<Application>), ApiError> {
    caller.require(Role::Subscriber)?;
    let description = body.description.unwrap_or_default();
    if description.chars().count() > 1000 {
        return Err(ApiError::invalid("description", "description must be at most 1000 characters"));
    }
    let plan = body.plan.filter(|p| !p.is_empty());
    if let Some(plan) = &plan {
        existing_plan(&state, plan).await?;
    }
    let app = Application {
        id: crypto::id()?,
        name: validate::display_name("name", &body.name, 100)?,
        owner: caller.name().to_string(),
        description,
        plan,
        created_at: now(),
        external_clients: Vec::new(),
    };
    state.store().create_application(&app).await?;
    tracing::info!(application = %app.name, id = %app.id, by = %caller.name(), "application created");
    Ok((StatusCode::CREATED, Json(app)))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Application>, ApiError> {
    Ok(Json(owned(&state, &caller, &id).await?))
}

/// 422 naming `plan` unless a plan with this name exists.
async fn existing_plan(state: &AppState, plan: &str) -> Result<(), ApiError> {
    if state.store().plan(plan).await?.is_none() {
        let names: Vec<String> = state.store().list_plans().await?.into_iter().map(|p| p.name).collect();
        return Err(ApiError::invalid("plan", format!("\"{plan}\" is not a plan; plans are: {}", names.join(", "))));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppPlan {
    plan: Option<String>,
}

/// Sets (or, with `null`, clears) the plan all of the application's connections share. Since
/// it only ever restricts, the owner may choose it, as WSO2's application policies.
pub async fn set_plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<AppPlan>,
) -> Result<Json<Application>, ApiError> {
    let mut app = owned(&state, &caller, &id).await?;
    let plan = body.plan.filter(|p| !p.is_empty());
    if let Some(plan) = &plan {
        existing_plan(&state, plan).await?;
    }
    state.store().set_application_plan(&app.id, plan.as_deref()).await?;
    tracing::info!(application = %app.name, plan = plan.as_deref().unwrap_or("-"), by = %caller.name(), "application plan changed");
    app.plan = plan;
    Ok(Json(app))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let app = owned(&state, &caller, &id).await?;
    // Deleting the application would delete a publisher's block with it, and a new
    // application could then subscribe afresh: only a publisher may.
    if !caller.has(Role::Publisher) {
        let filter = SubscriptionFilter { application_id: Some(&app.id), api_id: None };
        let subscriptions = state.store().list_subscriptions(filter).await?;
        if subscriptions.iter().any(|s| s.state == SubscriptionState::Blocked) {
            return Err(ApiError::Forbidden(format!(
                "{} has a subscription a publisher blocked; only a publisher can lift the block or delete it",
                app.name
            )));
        }
    }
    state.store().delete_application(&app.id).await?;
    tracing::info!(application = %app.name, id = %app.id, by = %caller.name(), "application deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Generates or regenerates the client secret; the answer is the only place it ever appears.
pub async fn generate_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<IssuedCredentials>), ApiError> {
    let app = owned(&state, &caller, &id).await?;
    let issued = clients::generate(&state.hasher, state.store(), &app.id).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

#[derive(Serialize)]
pub struct ClientId {
    client_id: String,
    created_at: i64,
}

pub async fn keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ClientId>, ApiError> {
    let app = owned(&state, &caller, &id).await?;
    let credentials = state.store().credentials_for_application(&app.id).await?.ok_or(ApiError::NotFound {
        what: "client credentials (generate them with POST /api/v1/applications/{id}/keys)",
        field: None,
    })?;
    Ok(Json(ClientId { client_id: credentials.client_id, created_at: credentials.created_at }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[serde(default)]
    scope: Option<String>,
}

/// A token for the caller's own application, without its client secret: the session proves
/// the owner, as the portal's key-generation wizard and `wsgate token` need. The token
/// carries the scopes asked for, each granted to the application (see `scopes`); without
/// `scope`, every granted scope. A scope not granted is a 422 naming it.
pub async fn token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<TokenRequest>,
) -> Result<Json<TokenAnswer>, ApiError> {
    let app = owned(&state, &caller, &id).await?;
    let token = issue_token(&state, &app, body.scope.as_deref()).await?;
    Ok(Json(TokenAnswer::of(&token)))
}

/// Signs a token for `app` with the requested scope within its grants.
pub async fn issue_token(
    state: &AppState,
    app: &Application,
    requested: Option<&str>,
) -> Result<crate::AccessToken, ApiError> {
    if requested.is_some_and(|scope| !oauth2::valid_scope(scope)) {
        return Err(ApiError::invalid(
            "scope",
            "scope must be space-separated printable ASCII words without '\"' or '\\'",
        ));
    }
    let granted = scopes::granted(state.store(), &app.id).await?;
    let scope =
        scopes::decide(requested, &granted).map_err(|refused| ApiError::invalid("scope", refused.to_string()))?;
    Ok(state.keys.issue_for_application(&app.id, Some(&scope)).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalClients {
    external_clients: Vec<ExternalClientBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalClientBody {
    issuer: String,
    client_id: String,
}

/// How many external clients one application may register.
const MAX_EXTERNAL_CLIENTS: usize = 20;

/// `PUT /api/v1/applications/{id}/external_clients`: the clients of configured external
/// identity providers whose tokens act as this application (replacing the list). Only these
/// map an external token to an application; a client id wsgate generated never does. A
/// client registered on another application is a 409.
pub async fn set_external_clients(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<ExternalClients>,
) -> Result<Json<Application>, ApiError> {
    let mut app = owned(&state, &caller, &id).await?;
    if body.external_clients.len() > MAX_EXTERNAL_CLIENTS {
        return Err(ApiError::invalid("external_clients", format!("at most {MAX_EXTERNAL_CLIENTS} clients")));
    }
    let mut clients: Vec<ExternalClient> = Vec::new();
    for (i, client) in body.external_clients.into_iter().enumerate() {
        if !state.identity_providers.contains(&client.issuer) {
            let known = if state.identity_providers.is_empty() {
                "none is configured ([[identity_providers]])".to_string()
            } else {
                state.identity_providers.join(", ")
            };
            return Err(ApiError::invalid(
                format!("external_clients[{i}].issuer"),
                format!("{:?} is not a configured identity provider; they are: {known}", client.issuer),
            ));
        }
        let printable = |c: char| c.is_ascii_graphic();
        if client.client_id.is_empty() || client.client_id.len() > 200 || !client.client_id.chars().all(printable) {
            return Err(ApiError::invalid(
                format!("external_clients[{i}].client_id"),
                "client_id must be 1 to 200 printable ASCII characters without spaces",
            ));
        }
        let client = ExternalClient { issuer: client.issuer, client_id: client.client_id };
        if !clients.contains(&client) {
            clients.push(client);
        }
    }
    let others = state.store().list_applications(None).await?;
    if let Some(taken) =
        clients.iter().find(|c| others.iter().any(|o| o.id != app.id && o.external_clients.contains(c)))
    {
        return Err(ApiError::Conflict(format!(
            "client {} of {} is registered on another application",
            taken.client_id, taken.issuer
        )));
    }
    state.store().set_external_clients(&app.id, &clients).await?;
    tracing::info!(application = %app.name, clients = clients.len(), by = %caller.name(), "external clients registered");
    app.external_clients = clients;
    Ok(Json(app))
}

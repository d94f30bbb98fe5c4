//! Applications, the developer portal's side: a subscriber's applications, their client
//! credentials (shown once) and tokens minted for them by their owner's session.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use wsgate_core::model::{Application, Role};

use super::extract::Body;
use super::validate;
use crate::auth::Caller;
use crate::clients::{self, IssuedCredentials};
use crate::error::ApiError;
use crate::oauth2::{self, TokenAnswer};
use crate::state::AppState;
use crate::{crypto, now};

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
    if description.len() > 1000 {
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
    let issued = clients::generate(state.store(), &app.id).await?;
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
/// the owner, as the portal's key-generation wizard and `wsgate token` need.
pub async fn token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<TokenRequest>,
) -> Result<Json<TokenAnswer>, ApiError> {
    let app = owned(&state, &caller, &id).await?;
    let scope = body.scope.unwrap_or_default();
    if !oauth2::valid_scope(&scope) {
        return Err(ApiError::invalid(
            "scope",
            "scope must be space-separated printable ASCII words without '\"' or '\\'",
        ));
    }
    let token = state.keys.issue_for_application(&app.id, Some(&scope)).await?;
    Ok(Json(TokenAnswer::of(&token)))
}

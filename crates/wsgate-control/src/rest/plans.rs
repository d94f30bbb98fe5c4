//! Business plans (throttling tiers): anyone signed in reads them, admins define them.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use wsgate_core::model::{Plan, Role};

use super::extract::Body;
use super::validate;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn list(State(state): State<AppState>, _caller: Caller) -> Result<Json<Vec<Plan>>, ApiError> {
    Ok(Json(state.store().list_plans().await?))
}

/// The body of `PUT /api/v1/plans/{name}`; an absent limit is unlimited.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    #[serde(default)]
    description: String,
    #[serde(default)]
    messages_per_minute: Option<u64>,
    #[serde(default)]
    max_connections: Option<u32>,
}

pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<PlanBody>,
) -> Result<Json<Plan>, ApiError> {
    caller.require(Role::Admin)?;
    validate::identifier("name", &name)?;
    if body.description.len() > 500 {
        return Err(ApiError::invalid("description", "description must be at most 500 characters"));
    }
    let plan = Plan {
        name,
        description: body.description,
        messages_per_minute: body.messages_per_minute,
        max_connections: body.max_connections,
    };
    state.store().put_plan(&plan).await?;
    tracing::info!(plan = %plan.name, by = %caller.name(), "plan stored");
    Ok(Json(plan))
}

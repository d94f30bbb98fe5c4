//! Business plans (throttling tiers): anyone signed in reads them, admins define them. A plan is
//! a named set of limits ([`Limits`]); APIs offer plans to subscribers and may name one as their
//! API-wide or per-client limit, applications may name one for all their connections.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use wsgate_core::limits::{Direction, Limits, OnExceed, Rate};
use wsgate_core::model::{Plan, Role};

use super::extract::Body;
use super::validate;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn list(State(state): State<AppState>, _caller: Caller) -> Result<Json<Vec<Plan>>, ApiError> {
    Ok(Json(state.store().list_plans().await?))
}

pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Plan>, ApiError> {
    Ok(Json(state.store().plan(&name).await?.ok_or_else(|| ApiError::not_found("plan"))?))
}

/// The body of `POST /api/v1/plans` (with `name`) and `PUT /api/v1/plans/{name}`. Limits are
/// text so that a wrong one is a 422 naming its field; an absent limit is unlimited.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    messages: Option<String>,
    #[serde(default)]
    bytes: Option<String>,
    #[serde(default)]
    count: Option<String>,
    #[serde(default)]
    connections: Option<u32>,
    #[serde(default)]
    connection_rate: Option<String>,
    #[serde(default)]
    on_exceed: Option<String>,
}

impl PlanBody {
    /// The plan this body describes, every value checked and refusals naming the field.
    fn into_plan(self, name: String) -> Result<Plan, ApiError> {
        validate::identifier("name", &name)?;
        if self.description.chars().count() > 500 || self.description.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "description",
                "description must be at most 500 characters, without control characters",
            ));
        }
        let rate = |field: &str, text: Option<String>| -> Result<Option<Rate>, ApiError> {
            text.filter(|t| !t.trim().is_empty())
                .map(|t| t.parse().map_err(|problem| ApiError::invalid(field, problem)))
                .transpose()
        };
        let count = match self.count.as_deref() {
            None | Some("") => Direction::default(),
            Some(text) => Direction::parse(text)
                .ok_or_else(|| ApiError::invalid("count", format!("\"{text}\" is not in, out or both")))?,
        };
        let on_exceed = match self.on_exceed.as_deref() {
            None | Some("") => OnExceed::default(),
            Some(text) => OnExceed::parse(text)
                .ok_or_else(|| ApiError::invalid("on_exceed", format!("\"{text}\" is not throttle or close")))?,
        };
        let limits = Limits {
            messages: rate("messages", self.messages)?,
            bytes: rate("bytes", self.bytes)?,
            count,
            connections: self.connections,
            connection_rate: rate("connection_rate", self.connection_rate)?,
            on_exceed,
        };
        limits.check().map_err(|(field, problem)| ApiError::invalid(field, problem))?;
        Ok(Plan { name, description: self.description, limits })
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(mut body): Body<PlanBody>,
) -> Result<(StatusCode, Json<Plan>), ApiError> {
    caller.require(Role::Admin)?;
    let name = body
        .name
        .take()
        .ok_or(ApiError::MalformedBody { message: "name: missing".into(), field: Some("name".into()) })?;
    let plan = body.into_plan(name)?;
    if state.store().plan(&plan.name).await?.is_some() {
        return Err(ApiError::Conflict(format!("a plan named {} already exists; change it with PUT", plan.name)));
    }
    state.store().put_plan(&plan).await?;
    tracing::info!(plan = %plan.name, limits = %plan.limits.describe(), by = %caller.name(), "plan created");
    Ok((StatusCode::CREATED, Json(plan)))
}

/// Creates or replaces the plan; live connections under it follow the new limits within a
/// second (the gateway's snapshot follows the store).
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<PlanBody>,
) -> Result<Json<Plan>, ApiError> {
    caller.require(Role::Admin)?;
    if body.name.as_ref().is_some_and(|other| *other != name) {
        return Err(ApiError::invalid("name", "a plan cannot be renamed; create a new one"));
    }
    let plan = body.into_plan(name)?;
    state.store().put_plan(&plan).await?;
    tracing::info!(plan = %plan.name, limits = %plan.limits.describe(), by = %caller.name(), "plan stored");
    Ok(Json(plan))
}

/// Refused (409, naming who) while an API offers or names the plan, or an application or a
/// live subscription uses it.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    let store = state.store();
    let users: Vec<String> = store
        .list_apis()
        .await?
        .iter()
        .filter(|api| api.named_plans().any(|plan| plan == name))
        .map(|api| format!("API {} {}", api.name, api.version))
        .chain(
            store
                .list_applications(None)
                .await?
                .iter()
                .filter(|app| app.plan.as_deref() == Some(&name))
                .map(|app| format!("application {}", app.name)),
        )
        .collect();
    if !users.is_empty() {
        return Err(ApiError::Conflict(format!("plan {name} is in use by {}", users.join(", "))));
    }
    store.delete_plan(&name).await?;
    tracing::info!(plan = %name, by = %caller.name(), "plan deleted");
    Ok(StatusCode::NO_CONTENT)
}

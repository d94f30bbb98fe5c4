//! Users: `POST /api/v1/users` and `GET /api/v1/users`, for admins.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use wsgate_core::model::{Role, User};

use super::extract::Body;
use super::validate;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::now;
use crate::state::AppState;

/// A user as the API shows it: never the password hash.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub name: String,
    pub roles: Vec<Role>,
    pub created_at: i64,
}

impl UserView {
    pub fn of(user: &User) -> UserView {
        UserView { name: user.name.clone(), roles: user.roles.clone(), created_at: user.created_at }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    password: String,
    roles: Vec<String>,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    caller.require(Role::Admin)?;
    let mut roles = Vec::new();
    for (i, text) in body.roles.iter().enumerate() {
        let role = Role::parse(text).ok_or_else(|| {
            ApiError::invalid(
                format!("roles[{i}]"),
                format!("\"{text}\" is not a role: admin, creator, publisher or subscriber"),
            )
        })?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    if roles.is_empty() {
        return Err(ApiError::invalid("roles", "a user needs at least one role"));
    }
    let user = create_user(&state, &body.name, &body.password, roles).await?;
    tracing::info!(user = %user.name, by = %caller.name(), "user created");
    Ok((StatusCode::CREATED, Json(user)))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<UserView>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(state.store().list_users().await?.iter().map(UserView::of).collect()))
}

/// Checks name and password, hashes the password and stores the user (409 when taken).
pub async fn create_user(state: &AppState, name: &str, password: &str, roles: Vec<Role>) -> Result<UserView, ApiError> {
    validate::identifier("name", name)?;
    validate::password(password, name)?;
    let user = User {
        name: name.to_string(),
        password_hash: state.hasher.hash(password.to_string()).await?,
        roles,
        created_at: now(),
    };
    state.store().create_user(&user).await?;
    Ok(UserView::of(&user))
}

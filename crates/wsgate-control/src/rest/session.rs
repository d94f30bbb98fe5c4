//! Signing in and out: `POST /api/v1/login`, `/logout`, `/signup` and `GET /api/v1/me`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use wsgate_core::model::Role;

use super::extract::Body;
use super::users::{UserView, create_user};
use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::now;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct SignedIn {
    /// The session token: `Authorization: Bearer <token>`. Also set as the session cookie.
    token: String,
    expires_at: i64,
    /// Send as `X-CSRF-Token` on writes authenticated by the cookie.
    csrf_token: String,
    user: UserView,
}

pub async fn login(State(state): State<AppState>, Body(body): Body<Login>) -> Result<Response, ApiError> {
    let user = auth::check_password(&state, &body.username, &body.password).await?;
    let session = auth::open_session(&state, &user.name).await?;
    tracing::info!(user = %user.name, "signed in");
    let cookie = auth::session_cookie_header(&session.token, session.expires_at - now());
    let answer = SignedIn {
        token: session.token,
        expires_at: session.expires_at,
        csrf_token: session.csrf_token,
        user: UserView::of(&user),
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(answer)).into_response())
}

pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    state.store().delete_session(&caller.session_hash).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, auth::cleared_cookie_header())]).into_response())
}

#[derive(Serialize)]
struct Me {
    name: String,
    roles: Vec<Role>,
    csrf_token: String,
    expires_at: i64,
}

pub async fn me(caller: Caller) -> Json<impl Serialize> {
    Json(Me {
        name: caller.user.name,
        roles: caller.user.roles,
        csrf_token: caller.csrf_token,
        expires_at: caller.expires_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signup {
    name: String,
    password: String,
}

/// Self-service accounts are subscribers only: publishing rights are granted by an admin.
pub async fn signup(State(state): State<AppState>, Body(body): Body<Signup>) -> Result<Response, ApiError> {
    if !state.settings.self_signup {
        return Err(ApiError::Forbidden("self sign-up is turned off (control.self_signup); ask an admin".into()));
    }
    let user = create_user(&state, &body.name, &body.password, vec![Role::Subscriber]).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

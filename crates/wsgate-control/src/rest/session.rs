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
use crate::limits::ClientAddress;
use crate::now;
use crate::state::AppState;
use crate::throttle::Kind;

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

pub async fn login(
    State(state): State<AppState>,
    address: ClientAddress,
    Body(body): Body<Login>,
) -> Result<Response, ApiError> {
    let user = auth::check_password(&state, address, &body.username, &body.password).await?;
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

/// What sign-up answers whether or not the name was free.
#[derive(Serialize)]
struct SignupAnswer {
    name: String,
    message: &'static str,
}

/// Self-service accounts are subscribers only: publishing rights are granted by an admin.
///
/// The answer does not tell whether the name was free: a taken name gets the same 202 and
/// body as a new account, after the same work (rules checked, password hashed, one insert),
/// and both take at least [`SIGNUP_FLOOR`], so neither status nor timing lists the users. (A
/// sign-in with the chosen password then works only if the account was new; sign-in is
/// throttled per address, which bounds that probe.)
/// Sign-ups from one address are counted by a throttle of their own: a few are free, then
/// they slow down exponentially (429), so a flood of accounts cannot come from one place.
pub async fn signup(
    State(state): State<AppState>,
    address: ClientAddress,
    Body(body): Body<Signup>,
) -> Result<Response, ApiError> {
    let started = tokio::time::Instant::now();
    if !state.settings.self_signup {
        return Err(ApiError::Forbidden("self sign-up is turned off (control.self_signup); ask an admin".into()));
    }
    if let Err(locked) = state.signups.check(Kind::User, "sign-up", address.0) {
        return Err(ApiError::TooManyAttempts { retry_after: locked.retry_after_secs() });
    }
    state.signups.failed(Kind::User, "sign-up", address.0);
    let created = create_user(&state, &body.name, &body.password, vec![Role::Subscriber]).await;
    let result = match created {
        Ok(user) => {
            tracing::info!(user = %user.name, "signed up");
            Ok(())
        }
        Err(ApiError::Conflict(_)) => {
            tracing::info!(user = ?body.name, "sign-up for a name that is taken; answered as if it were free");
            Ok(())
        }
        Err(other) => Err(other),
    };
    tokio::time::sleep_until(started + SIGNUP_FLOOR).await;
    result?;
    let answer = SignupAnswer {
        name: body.name,
        message: "if this name was free, the account exists now: sign in with it (POST /api/v1/login)",
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// The least time a sign-up answer takes, longer than the work in either case, so that a
/// taken name and a free one answer after the same time.
pub const SIGNUP_FLOOR: std::time::Duration = std::time::Duration::from_millis(500);

//! Signing keys, for admins: `GET /api/v1/signing-keys` lists them (never their private
//! material) and `POST /api/v1/signing-keys/rotate` forces a rotation, made once however many
//! nodes are asked at the same moment (see [`crate::keys`]).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use wsgate_core::model::{Role, SigningKey};

use super::extract::Body;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// A signing key as the API shows it: its public facts only.
#[derive(Debug, Serialize)]
pub struct SigningKeyView {
    pub kid: String,
    pub algorithm: String,
    pub created_at: i64,
    /// No token is signed with it from then on.
    pub signs_until: i64,
    /// It leaves the JWKS then; every token it signed has expired by then.
    pub retire_at: i64,
}

impl SigningKeyView {
    fn of(key: &SigningKey, signs_until: i64) -> SigningKeyView {
        SigningKeyView {
            kid: key.kid.clone(),
            algorithm: key.algorithm.clone(),
            created_at: key.created_at,
            signs_until,
            retire_at: key.retire_at,
        }
    }
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<SigningKeyView>>, ApiError> {
    caller.require(Role::Admin)?;
    let keys = state.keys.list().await?;
    Ok(Json(keys.iter().map(|(key, signs_until)| SigningKeyView::of(key, *signs_until)).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateFrom {
    /// The key to rotate away from; absent: the one signing now.
    kid: Option<String>,
}

/// Answers with the key signing after the rotation. Asking again with the same `kid` changes
/// nothing and gives the same answer, so a retried or repeated request makes no second key.
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<RotateFrom>,
) -> Result<Json<SigningKeyView>, ApiError> {
    caller.require(Role::Admin)?;
    let (key, signs_until) = state
        .keys
        .rotate_away_from(body.kid.as_deref())
        .await?
        .ok_or(ApiError::NotFound { what: "signing key", field: Some("kid") })?;
    tracing::info!(kid = %key.kid, from = ?body.kid, by = %caller.name(), "signing key rotation requested");
    Ok(Json(SigningKeyView::of(&key, signs_until)))
}

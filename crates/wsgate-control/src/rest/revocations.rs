//! Revocation by a signed-in owner (or an admin): one access token, or every token an
//! application holds so far. RFC 7009's `/oauth2/revoke` needs the client's secret; these do
//! not, so that `wsgate revoke` and the portals can act with a session. The gateway closes the
//! live connections of revoked tokens as soon as the change reaches it.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use wsgate_core::model::RevokedToken;

use super::applications::owned;
use super::extract::Body;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::keys::VerifyError;
use crate::now;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenToRevoke {
    token: String,
}

#[derive(Serialize)]
pub struct Revoked {
    /// The revoked token's jti, or the application-wide entry's.
    revoked: String,
    /// Until when the revocation is kept (the last moment a revoked token could be valid).
    until: i64,
}

/// `POST /api/v1/revocations`: revokes one token of one of the caller's applications.
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<TokenToRevoke>,
) -> Result<Json<Revoked>, ApiError> {
    let claims = match state.keys.verify(&body.token).await {
        Ok(claims) => claims,
        Err(VerifyError::Rejected(why)) => {
            return Err(ApiError::invalid("token", format!("not a valid access token of this control plane ({why})")));
        }
        Err(VerifyError::Store(err)) => return Err(err.into()),
    };
    // Someone else's token is "not found", as their application is.
    owned(&state, &caller, &claims.application_id).await?;
    let entry = RevokedToken { jti: claims.jti.clone(), expires_at: claims.exp };
    state.store().revoke_token(&entry).await?;
    tracing::info!(jti = %claims.jti, by = %caller.name(), "access token revoked");
    Ok(Json(Revoked { revoked: entry.jti, until: entry.expires_at }))
}

async fn wait_for_second_after(at: i64) {
    let next = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(at + 1).unwrap_or(0));
    if let Ok(left) = next.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
}

/// `POST /api/v1/applications/{id}/revocations`: revokes every token issued to the application
/// up to now; tokens issued afterwards are valid.
pub async fn revoke_application_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    let app = owned(&state, &caller, &id).await?;
    let ttl = i64::try_from(state.settings.token_ttl.as_secs()).unwrap_or(i64::MAX);
    let at = now();
    let entry = RevokedToken::application(&app.id, at, ttl);
    state.store().revoke_token(&entry).await?;
    // Token times are whole seconds and the entry revokes up to and including second `at`:
    // answer only once that second is over, so every token minted after this answer is valid
    // (one minted meanwhile, in the same second, stays revoked, the safe side).
    wait_for_second_after(at).await;
    tracing::info!(application = %app.name, by = %caller.name(), "all access tokens of the application revoked");
    Ok(Json(Revoked { revoked: entry.jti, until: entry.expires_at }))
}

//! Subscriptions: an application's right to call an API under one of its plans. Owners
//! subscribe and unsubscribe their applications; publishers block and unblock, and grant the
//! API's scopes (see `scopes`).
//!
//! A publisher's block holds against the owner: a BLOCKED subscription cannot be unblocked,
//! deleted (nor its application) by its owner, and while it stands none of the owner's
//! applications may subscribe to that API again.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use wsgate_core::model::{Lifecycle, Role, Subscription, SubscriptionState};
use wsgate_store::SubscriptionFilter;

use super::applications::owned;
use super::extract::{Body, Query};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::{crypto, now, oauth2};

/// Publishers (and admins) oversee every subscription; anyone else sees their own
/// applications' subscriptions only.
fn oversees(caller: &Caller) -> bool {
    caller.has(Role::Publisher)
}

#[derive(Deserialize)]
pub struct ListQuery {
    application_id: Option<String>,
    api_id: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<Subscription>>, ApiError> {
    let store = state.store();
    if let Some(app) = &query.application_id
        && !oversees(&caller)
    {
        owned(&state, &caller, app).await?;
    }
    let filter =
        SubscriptionFilter { application_id: query.application_id.as_deref(), api_id: query.api_id.as_deref() };
    let all = store.list_subscriptions(filter).await?;
    if oversees(&caller) {
        return Ok(Json(all));
    }
    let mine: Vec<String> = store.list_applications(Some(caller.name())).await?.into_iter().map(|a| a.id).collect();
    Ok(Json(all.into_iter().filter(|s| mine.contains(&s.application_id)).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    application_id: String,
    api_id: String,
    plan: String,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewSubscription>,
) -> Result<(StatusCode, Json<Subscription>), ApiError> {
    caller.require(Role::Subscriber)?;
    let app = owned(&state, &caller, &body.application_id)
        .await
        .map_err(|_| ApiError::NotFound { what: "application", field: Some("application_id") })?;
    let api = state.store().api(&body.api_id).await?;
    // Only APIs open for subscription are visible to subscribers: the rest are "not found".
    let api = match api {
        Some(api) if api.state.invokable() || caller.has(Role::Creator) || caller.has(Role::Publisher) => api,
        _ => return Err(ApiError::NotFound { what: "API", field: Some("api_id") }),
    };
    if api.state != Lifecycle::Published {
        return Err(ApiError::invalid(
            "api_id",
            format!(
                "{} {} is {}: only PUBLISHED APIs take new subscriptions",
                api.name,
                api.version,
                api.state.as_str()
            ),
        ));
    }
    if !api.plans.contains(&body.plan) {
        return Err(ApiError::invalid(
            "plan",
            format!(
                "{} {} does not offer \"{}\"; it offers: {}",
                api.name,
                api.version,
                body.plan,
                api.plans.join(", ")
            ),
        ));
    }
    if !oversees(&caller) {
        refuse_while_blocked(&state, &app.owner, &api.id).await?;
    }
    let subscription = Subscription {
        id: crypto::id()?,
        application_id: app.id,
        api_id: api.id,
        plan: body.plan,
        state: SubscriptionState::Active,
        created_at: now(),
        granted_scopes: Vec::new(),
    };
    state.store().create_subscription(&subscription).await?;
    tracing::info!(subscription = %subscription.id, application = %app.name, api = %api.name, plan = %subscription.plan, "subscribed");
    Ok((StatusCode::CREATED, Json(subscription)))
}

/// Refuses a new subscription of `owner` to `api_id` while a publisher's block of another of
/// the owner's subscriptions to it stands, so that a block cannot be escaped by subscribing
/// again (from the same application or a new one).
async fn refuse_while_blocked(state: &AppState, owner: &str, api_id: &str) -> Result<(), ApiError> {
    let filter = SubscriptionFilter { application_id: None, api_id: Some(api_id) };
    let blocked: Vec<Subscription> = state
        .store()
        .list_subscriptions(filter)
        .await?
        .into_iter()
        .filter(|s| s.state == SubscriptionState::Blocked)
        .collect();
    if blocked.is_empty() {
        return Ok(());
    }
    let mine: Vec<String> = state.store().list_applications(Some(owner)).await?.into_iter().map(|a| a.id).collect();
    if blocked.iter().any(|s| mine.contains(&s.application_id)) {
        return Err(ApiError::Forbidden(
            "a publisher blocked your subscription to this API; only a publisher can lift the block".into(),
        ));
    }
    Ok(())
}

/// The subscription with this id if the caller owns its application or oversees it.
pub(crate) async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<Subscription, ApiError> {
    let subscription = state.store().subscription(id).await?.ok_or_else(|| ApiError::not_found("subscription"))?;
    if !oversees(caller) {
        owned(state, caller, &subscription.application_id).await.map_err(|_| ApiError::not_found("subscription"))?;
    }
    Ok(subscription)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewState {
    state: String,
}

pub async fn set_state(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<NewState>,
) -> Result<Json<Subscription>, ApiError> {
    let to = match SubscriptionState::parse(&body.state) {
        Some(to @ (SubscriptionState::Active | SubscriptionState::Blocked)) => to,
        Some(SubscriptionState::Removed) => {
            return Err(ApiError::invalid("state", "remove a subscription with DELETE /api/v1/subscriptions/{id}"));
        }
        None => return Err(ApiError::invalid("state", format!("\"{}\" is not ACTIVE or BLOCKED", body.state))),
    };
    let mut subscription = find(&state, &caller, &id).await?;
    // Blocking and lifting a block are the publisher's calls: a blocked owner must not unblock
    // themselves, and a block set by anyone else would be one the owner could not lift.
    if !oversees(&caller) {
        return Err(ApiError::MissingRole(Role::Publisher));
    }
    if subscription.state == SubscriptionState::Removed {
        return Err(ApiError::Conflict("the subscription was removed; subscribe again instead".into()));
    }
    state.store().set_subscription_state(&subscription.id, to).await?;
    tracing::info!(subscription = %subscription.id, state = to.as_str(), by = %caller.name(), "subscription state changed");
    subscription.state = to;
    Ok(Json(subscription))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    plan: String,
}

/// Moves a subscription to another plan its API offers (the subscriber or a publisher). Live
/// connections follow the new plan's limits within a second. A blocked subscription stays as
/// the publisher left it: only a publisher may change its plan.
pub async fn set_plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<NewPlan>,
) -> Result<Json<Subscription>, ApiError> {
    let mut subscription = find(&state, &caller, &id).await?;
    match subscription.state {
        SubscriptionState::Removed => {
            return Err(ApiError::Conflict("the subscription was removed; subscribe again instead".into()));
        }
        SubscriptionState::Blocked if !oversees(&caller) => return Err(ApiError::MissingRole(Role::Publisher)),
        _ => {}
    }
    let api = state.store().api(&subscription.api_id).await?.ok_or_else(|| ApiError::not_found("API"))?;
    if !api.plans.contains(&body.plan) {
        return Err(ApiError::invalid(
            "plan",
            format!(
                "{} {} does not offer \"{}\"; it offers: {}",
                api.name,
                api.version,
                body.plan,
                api.plans.join(", ")
            ),
        ));
    }
    state.store().set_subscription_plan(&subscription.id, &body.plan).await?;
    tracing::info!(subscription = %subscription.id, from = %subscription.plan, to = %body.plan, by = %caller.name(), "subscription plan changed");
    subscription.plan = body.plan;
    Ok(Json(subscription))
}

/// Unsubscribing keeps the record as REMOVED, so the history of who could call what remains.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Subscription>, ApiError> {
    let mut subscription = find(&state, &caller, &id).await?;
    if subscription.state == SubscriptionState::Blocked && !oversees(&caller) {
        return Err(ApiError::Forbidden(
            "a publisher blocked this subscription; only a publisher can lift the block or remove it".into(),
        ));
    }
    if subscription.state != SubscriptionState::Removed {
        state.store().set_subscription_state(&subscription.id, SubscriptionState::Removed).await?;
        subscription.state = SubscriptionState::Removed;
        tracing::info!(subscription = %subscription.id, by = %caller.name(), "unsubscribed");
    }
    Ok(Json(subscription))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    scopes: Vec<String>,
}

/// `PUT /api/v1/subscriptions/{id}/scopes`: a publisher grants the subscription some of the
/// API's scopes (replacing the grant). Tokens issued afterwards carry at most these; tokens
/// already issued lose at the gateway what is no longer granted.
pub async fn set_scopes(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Grant>,
) -> Result<Json<Subscription>, ApiError> {
    if !oversees(&caller) {
        // Owners learn nothing about subscriptions they could not see anyway.
        find(&state, &caller, &id).await?;
        return Err(ApiError::MissingRole(Role::Publisher));
    }
    let mut subscription = find(&state, &caller, &id).await?;
    let api = state.store().api(&subscription.api_id).await?.ok_or_else(|| ApiError::not_found("API"))?;
    let mut scopes: Vec<String> = Vec::new();
    for (i, scope) in body.scopes.into_iter().enumerate() {
        if scope.contains(' ') || !oauth2::valid_scope(&scope) || !api.scopes.contains(&scope) {
            let declared = if api.scopes.is_empty() { "none".to_string() } else { api.scopes.join(", ") };
            return Err(ApiError::invalid(
                format!("scopes[{i}]"),
                format!("{scope:?} is not a scope of {} {}; its scopes are: {declared}", api.name, api.version),
            ));
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    state.store().set_subscription_scopes(&subscription.id, &scopes).await?;
    tracing::info!(subscription = %subscription.id, scopes = %scopes.join(" "), by = %caller.name(), "scopes granted");
    subscription.granted_scopes = scopes;
    Ok(Json(subscription))
}

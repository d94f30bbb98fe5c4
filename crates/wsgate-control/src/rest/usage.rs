//! Usage against limits: `GET /api/v1/subscriptions/{id}/usage` (the subscriber and
//! publishers) and `GET /api/v1/apis/{id}/usage` (publishers). The numbers come from the
//! gateway's counters — Redis when nodes share it, so every node shows the same.
//!
//! Rates are token buckets: `left` is what may pass at once now, `used` what the bucket lacks
//! to be full (what was spent and not yet refilled). Connections are counted only under a
//! connection cap.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use wsgate_core::limits::{Limits, Rate};
use wsgate_core::model::{Role, Subscription, SubscriptionState};
use wsgate_counters::Counters;
use wsgate_counters::keys::{Counted, Scope, key};
use wsgate_store::SubscriptionFilter;

use super::subscriptions::find;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct RateUsage {
    pub limit: Rate,
    pub used: u64,
    pub left: u64,
}

#[derive(Debug, Serialize)]
pub struct ConnectionUsage {
    pub limit: u32,
    pub open: u64,
}

/// One limited party's usage of one set of limits; absent limits are absent.
#[derive(Debug, Serialize)]
pub struct Usage {
    pub limits: Limits,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<RateUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<RateUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<ConnectionUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_rate: Option<RateUsage>,
}

impl Usage {
    /// Each set limit's usage in words: `20000/min messages: 12 used, 19988 left`.
    pub fn describe(&self) -> Vec<String> {
        let mut parts = Vec::new();
        for (noun, rate) in
            [("messages", &self.messages), ("bytes", &self.bytes), ("new connections", &self.connection_rate)]
        {
            if let Some(rate) = rate {
                parts.push(format!("{} {noun}: {} used, {} left", rate.limit, rate.used, rate.left));
            }
        }
        if let Some(connections) = &self.connections {
            parts.push(format!("{} connections at once: {} open", connections.limit, connections.open));
        }
        parts
    }
}

/// Reads `scope`'s counters under `limits`.
pub async fn usage(counters: &dyn Counters, scope: Scope<'_>, limits: Limits) -> Usage {
    let rate = async |counted: Counted, limit: Option<Rate>| match limit {
        None => None,
        Some(limit) => {
            let left = counters.tokens_left(&key(scope, counted), limit).await.min(limit.amount);
            Some(RateUsage { limit, used: limit.amount - left, left })
        }
    };
    let connections = match limits.connections {
        None => None,
        Some(limit) => {
            Some(ConnectionUsage { limit, open: counters.open_slots(&key(scope, Counted::Connections)).await })
        }
    };
    Usage {
        messages: rate(Counted::Messages, limits.messages).await,
        bytes: rate(Counted::Bytes, limits.bytes).await,
        connection_rate: rate(Counted::NewConnections, limits.connection_rate).await,
        connections,
        limits,
    }
}

#[derive(Debug, Serialize)]
pub struct SubscriptionUsage {
    pub subscription_id: String,
    pub application_id: String,
    pub plan: String,
    pub state: SubscriptionState,
    #[serde(flatten)]
    pub usage: Usage,
}

async fn subscription_usage(state: &AppState, subscription: Subscription) -> Result<SubscriptionUsage, ApiError> {
    let limits = state.store().plan(&subscription.plan).await?.map(|plan| plan.limits).unwrap_or_default();
    let usage = usage(state.counters().as_ref(), Scope::Subscription(&subscription.id), limits).await;
    Ok(SubscriptionUsage {
        subscription_id: subscription.id,
        application_id: subscription.application_id,
        plan: subscription.plan,
        state: subscription.state,
        usage,
    })
}

pub async fn of_subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionUsage>, ApiError> {
    let subscription = find(&state, &caller, &id).await?;
    Ok(Json(subscription_usage(&state, subscription).await?))
}

#[derive(Debug, Serialize)]
pub struct ApiUsage {
    pub api_id: String,
    /// The API-wide limit's usage, when the API names an API-wide plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_plan: Option<Usage>,
    /// Every subscription that is not removed.
    pub subscriptions: Vec<SubscriptionUsage>,
}

/// For publishers (and admins): the API's own limit and each subscription's usage.
pub async fn of_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiUsage>, ApiError> {
    caller.require(Role::Publisher)?;
    let api = state.store().api(&id).await?.ok_or_else(|| ApiError::not_found("API"))?;
    let api_plan = match &api.api_plan {
        Some(name) => {
            let limits = state.store().plan(name).await?.map(|plan| plan.limits).unwrap_or_default();
            Some(usage(state.counters().as_ref(), Scope::Api(&api.id), limits).await)
        }
        None => None,
    };
    let filter = SubscriptionFilter { application_id: None, api_id: Some(&api.id) };
    let mut subscriptions = Vec::new();
    for subscription in state.store().list_subscriptions(filter).await? {
        if subscription.state != SubscriptionState::Removed {
            subscriptions.push(subscription_usage(&state, subscription).await?);
        }
    }
    Ok(Json(ApiUsage { api_id: api.id, api_plan, subscriptions }))
}

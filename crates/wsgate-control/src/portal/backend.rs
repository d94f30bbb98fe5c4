//! The REST API's handlers, called in-process by the portals. A page does what the matching
//! REST request would do, through the same function: role checks, validation, visibility
//! ("not found" for what the caller may not see) and logging stay in `rest` and cannot drift
//! between the two ways in. Bodies are built as JSON and parsed by the REST parser, exactly
//! as a request body would be.

use axum::extract::{Path, State};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wsgate_core::model::{ApiRecord, Application, Lifecycle, Plan, Subscription};

use crate::auth::Caller;
use crate::clients::IssuedCredentials;
use crate::error::ApiError;
use crate::keys::AccessToken;
use crate::rest::extract::{Body, Query, parse};
use crate::rest::{apis, applications, nodes, plans, subscriptions, usage};
use crate::state::AppState;

/// `value` as the body type of a REST handler.
fn body<T: DeserializeOwned>(value: &Value) -> Result<T, ApiError> {
    parse(value.to_string().as_bytes())
}

pub async fn list_apis(state: &AppState, caller: &Caller) -> Result<Vec<ApiRecord>, ApiError> {
    apis::visible_apis(state, caller, &apis::ListQuery::default()).await
}

/// The APIs a caller sees, or (`None`) what a visitor without an account sees.
pub async fn browsable_apis(state: &AppState, caller: Option<&Caller>) -> Result<Vec<ApiRecord>, ApiError> {
    match caller {
        Some(caller) => list_apis(state, caller).await,
        None => apis::public(state).await,
    }
}

/// One API as [`browsable_apis`] sees it.
pub async fn browsable_api(state: &AppState, caller: Option<&Caller>, id: &str) -> Result<ApiRecord, ApiError> {
    match caller {
        Some(caller) => api(state, caller, id).await,
        None => apis::public_one(state, id).await,
    }
}

pub async fn api(state: &AppState, caller: &Caller, id: &str) -> Result<ApiRecord, ApiError> {
    apis::find(state, caller, id).await
}

/// `POST /api/v1/apis` with the body `fields` (the REST body's JSON).
pub async fn create_api(state: &AppState, caller: &Caller, fields: &Value) -> Result<ApiRecord, ApiError> {
    let response = apis::create(State(state.clone()), caller.clone(), Body(body(fields)?)).await?;
    // create answers a whole response (201 and the record); read the record back from it.
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(|err| ApiError::Internal(format!("reading the created API: {err}")))?;
    serde_json::from_slice(&bytes).map_err(|err| ApiError::Internal(format!("reading the created API: {err}")))
}

pub async fn update_api(state: &AppState, caller: &Caller, id: &str, fields: &Value) -> Result<ApiRecord, ApiError> {
    Ok(apis::update(State(state.clone()), caller.clone(), Path(id.to_string()), Body(body(fields)?)).await?.0)
}

pub async fn delete_api(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    apis::delete(State(state.clone()), caller.clone(), Path(id.to_string())).await?;
    Ok(())
}

pub async fn move_api(state: &AppState, caller: &Caller, id: &str, to: Lifecycle) -> Result<ApiRecord, ApiError> {
    let moved = Body(body(&json!({ "state": to.as_str() }))?);
    Ok(apis::lifecycle(State(state.clone()), caller.clone(), Path(id.to_string()), moved).await?.0)
}

pub async fn list_plans(state: &AppState, caller: &Caller) -> Result<Vec<Plan>, ApiError> {
    Ok(plans::list(State(state.clone()), caller.clone()).await?.0)
}

pub async fn list_applications(state: &AppState, caller: &Caller) -> Result<Vec<Application>, ApiError> {
    Ok(applications::list(State(state.clone()), caller.clone()).await?.0)
}

pub async fn application(state: &AppState, caller: &Caller, id: &str) -> Result<Application, ApiError> {
    applications::owned(state, caller, id).await
}

pub async fn create_application(
    state: &AppState,
    caller: &Caller,
    name: &str,
    description: &str,
) -> Result<Application, ApiError> {
    let fields = json!({ "name": name, "description": description });
    Ok(applications::create(State(state.clone()), caller.clone(), Body(body(&fields)?)).await?.1.0)
}

pub async fn delete_application(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    applications::delete(State(state.clone()), caller.clone(), Path(id.to_string())).await?;
    Ok(())
}

/// New client credentials; the secret in the answer is shown once and never again.
pub async fn generate_keys(state: &AppState, caller: &Caller, id: &str) -> Result<IssuedCredentials, ApiError> {
    Ok(applications::generate_keys(State(state.clone()), caller.clone(), Path(id.to_string())).await?.1.0)
}

/// Whether the application has client credentials (its client id), without its secret.
pub async fn client_id(state: &AppState, caller: &Caller, id: &str) -> Result<Option<String>, ApiError> {
    let app = applications::owned(state, caller, id).await?;
    Ok(state.store().credentials_for_application(&app.id).await?.map(|c| c.client_id))
}

/// An access token for the caller's own application, as `POST /api/v1/applications/{id}/token`
/// makes it without a `scope` (the session proves the owner; no client secret needed): it
/// carries every scope granted to the application.
pub async fn token(state: &AppState, caller: &Caller, id: &str) -> Result<AccessToken, ApiError> {
    let app = applications::owned(state, caller, id).await?;
    applications::issue_token(state, &app, None).await
}

pub async fn list_subscriptions(
    state: &AppState,
    caller: &Caller,
    application_id: Option<&str>,
    api_id: Option<&str>,
) -> Result<Vec<Subscription>, ApiError> {
    let query = Query(body(&json!({ "application_id": application_id, "api_id": api_id }))?);
    Ok(subscriptions::list(State(state.clone()), caller.clone(), query).await?.0)
}

pub async fn subscribe(
    state: &AppState,
    caller: &Caller,
    application_id: &str,
    api_id: &str,
    plan: &str,
) -> Result<Subscription, ApiError> {
    let fields = json!({ "application_id": application_id, "api_id": api_id, "plan": plan });
    Ok(subscriptions::create(State(state.clone()), caller.clone(), Body(body(&fields)?)).await?.1.0)
}

pub async fn unsubscribe(state: &AppState, caller: &Caller, id: &str) -> Result<Subscription, ApiError> {
    Ok(subscriptions::delete(State(state.clone()), caller.clone(), Path(id.to_string())).await?.0)
}

/// `PUT /api/v1/subscriptions/{id}/scopes` with these scopes.
pub async fn grant_scopes(
    state: &AppState,
    caller: &Caller,
    id: &str,
    scopes: &[String],
) -> Result<Subscription, ApiError> {
    let grant = Body(body(&json!({ "scopes": scopes }))?);
    Ok(subscriptions::set_scopes(State(state.clone()), caller.clone(), Path(id.to_string()), grant).await?.0)
}

/// `POST /api/v1/subscriptions/{id}/state` to `to` (ACTIVE or BLOCKED).
pub async fn set_subscription_state(
    state: &AppState,
    caller: &Caller,
    id: &str,
    to: &str,
) -> Result<Subscription, ApiError> {
    let moved = Body(body(&json!({ "state": to }))?);
    Ok(subscriptions::set_state(State(state.clone()), caller.clone(), Path(id.to_string()), moved).await?.0)
}

/// `POST /api/v1/plans` (`put` false) or `PUT /api/v1/plans/{name}` with the plan form's fields.
pub async fn store_plan(
    state: &AppState,
    caller: &Caller,
    name: &str,
    fields: &Value,
    put: bool,
) -> Result<Plan, ApiError> {
    if put {
        let answer =
            plans::put(State(state.clone()), caller.clone(), Path(name.to_string()), Body(body(fields)?)).await?;
        return Ok(answer.0);
    }
    let mut fields = fields.clone();
    fields["name"] = json!(name);
    Ok(plans::create(State(state.clone()), caller.clone(), Body(body(&fields)?)).await?.1.0)
}

pub async fn delete_plan(state: &AppState, caller: &Caller, name: &str) -> Result<(), ApiError> {
    plans::delete(State(state.clone()), caller.clone(), Path(name.to_string())).await?;
    Ok(())
}

pub async fn set_subscription_plan(
    state: &AppState,
    caller: &Caller,
    id: &str,
    plan: &str,
) -> Result<Subscription, ApiError> {
    let fields = Body(body(&json!({ "plan": plan }))?);
    Ok(subscriptions::set_plan(State(state.clone()), caller.clone(), Path(id.to_string()), fields).await?.0)
}

pub async fn subscription_usage(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<usage::SubscriptionUsage, ApiError> {
    Ok(usage::of_subscription(State(state.clone()), caller.clone(), Path(id.to_string())).await?.0)
}

pub async fn api_usage(state: &AppState, caller: &Caller, id: &str) -> Result<usage::ApiUsage, ApiError> {
    Ok(usage::of_api(State(state.clone()), caller.clone(), Path(id.to_string())).await?.0)
}

/// `GET /api/v1/nodes` (admins only).
pub async fn list_nodes(state: &AppState, caller: &Caller) -> Result<Vec<nodes::NodeView>, ApiError> {
    Ok(nodes::list(State(state.clone()), caller.clone()).await?.0)
}

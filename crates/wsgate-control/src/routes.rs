//! The route table: every method and path the control plane answers, in one list. The router
//! is built from it and a test compares it with `openapi.json`, so the document cannot drift
//! from the code.

use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::error::ApiError;
use crate::oauth2;
use crate::rest::{
    analytics, apis, applications, nodes, plans, revocations, session, signing_keys, subscriptions, usage, users,
};
use crate::state::AppState;

/// The OpenAPI 3 document of every route below, served at `GET /api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// One entry of the table: the handler is attached to exactly the method named beside it.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

const fn route(method: Method, path: &'static str, handler: fn(MethodFilter) -> MethodRouter<AppState>) -> Route {
    Route { method, path, handler }
}

pub const ROUTES: &[Route] = &[
    route(Method::POST, "/api/v1/login", |m| on(m, session::login)),
    route(Method::POST, "/api/v1/logout", |m| on(m, session::logout)),
    route(Method::POST, "/api/v1/signup", |m| on(m, session::signup)),
    route(Method::GET, "/api/v1/me", |m| on(m, session::me)),
    route(Method::GET, "/api/v1/users", |m| on(m, users::list)),
    route(Method::POST, "/api/v1/users", |m| on(m, users::create)),
    route(Method::GET, "/api/v1/plans", |m| on(m, plans::list)),
    route(Method::POST, "/api/v1/plans", |m| on(m, plans::create)),
    route(Method::GET, "/api/v1/plans/{name}", |m| on(m, plans::get)),
    route(Method::PUT, "/api/v1/plans/{name}", |m| on(m, plans::put)),
    route(Method::DELETE, "/api/v1/plans/{name}", |m| on(m, plans::delete)),
    route(Method::GET, "/api/v1/apis", |m| on(m, apis::list)),
    route(Method::POST, "/api/v1/apis", |m| on(m, apis::create)),
    route(Method::GET, "/api/v1/apis/{id}", |m| on(m, apis::get)),
    route(Method::PUT, "/api/v1/apis/{id}", |m| on(m, apis::update)),
    route(Method::DELETE, "/api/v1/apis/{id}", |m| on(m, apis::delete)),
    route(Method::POST, "/api/v1/apis/{id}/lifecycle", |m| on(m, apis::lifecycle)),
    route(Method::GET, "/api/v1/apis/{id}/endpoints", |m| on(m, apis::endpoints)),
    route(Method::GET, "/api/v1/apis/{id}/usage", |m| on(m, usage::of_api)),
    route(Method::GET, "/api/v1/apis/{id}/analytics", |m| on(m, analytics::of_api)),
    route(Method::GET, "/api/v1/applications", |m| on(m, applications::list)),
    route(Method::POST, "/api/v1/applications", |m| on(m, applications::create)),
    route(Method::GET, "/api/v1/applications/{id}", |m| on(m, applications::get)),
    route(Method::DELETE, "/api/v1/applications/{id}", |m| on(m, applications::delete)),
    route(Method::PUT, "/api/v1/applications/{id}/plan", |m| on(m, applications::set_plan)),
    route(Method::GET, "/api/v1/applications/{id}/analytics", |m| on(m, analytics::of_application)),
    route(Method::GET, "/api/v1/applications/{id}/keys", |m| on(m, applications::keys)),
    route(Method::POST, "/api/v1/applications/{id}/keys", |m| on(m, applications::generate_keys)),
    route(Method::POST, "/api/v1/applications/{id}/token", |m| on(m, applications::token)),
    route(Method::PUT, "/api/v1/applications/{id}/external_clients", |m| on(m, applications::set_external_clients)),
    route(Method::POST, "/api/v1/applications/{id}/revocations", |m| on(m, revocations::revoke_application_tokens)),
    route(Method::POST, "/api/v1/revocations", |m| on(m, revocations::revoke_token)),
    route(Method::GET, "/api/v1/signing-keys", |m| on(m, signing_keys::list)),
    route(Method::POST, "/api/v1/signing-keys/rotate", |m| on(m, signing_keys::rotate)),
    route(Method::GET, "/api/v1/subscriptions", |m| on(m, subscriptions::list)),
    route(Method::POST, "/api/v1/subscriptions", |m| on(m, subscriptions::create)),
    route(Method::POST, "/api/v1/subscriptions/{id}/state", |m| on(m, subscriptions::set_state)),
    route(Method::PUT, "/api/v1/subscriptions/{id}/scopes", |m| on(m, subscriptions::set_scopes)),
    route(Method::PUT, "/api/v1/subscriptions/{id}/plan", |m| on(m, subscriptions::set_plan)),
    route(Method::GET, "/api/v1/subscriptions/{id}/usage", |m| on(m, usage::of_subscription)),
    route(Method::DELETE, "/api/v1/subscriptions/{id}", |m| on(m, subscriptions::delete)),
    route(Method::GET, "/api/v1/nodes", |m| on(m, nodes::list)),
    route(Method::GET, "/api/v1/openapi.json", |m| on(m, openapi)),
    route(Method::POST, "/oauth2/token", |m| on(m, oauth2::token)),
    route(Method::POST, "/oauth2/revoke", |m| on(m, oauth2::revoke)),
    route(Method::POST, "/oauth2/introspect", |m| on(m, oauth2::introspect)),
    route(Method::GET, "/oauth2/jwks", |m| on(m, oauth2::jwks)),
    route(Method::GET, "/.well-known/openid-configuration", |m| on(m, oauth2::discovery)),
];

/// The whole control plane as one axum router.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for entry in ROUTES {
        // Every method in the table has a filter; a failure here is a typo caught by tests.
        let filter = MethodFilter::try_from(entry.method.clone()).unwrap_or(MethodFilter::GET);
        router = router.route(entry.path, (entry.handler)(filter));
    }
    // The portals' HTML pages sit beside the REST API; they are not part of its OpenAPI document.
    router
        .merge(crate::portal::router())
        // Every body extractor reads through `limits`; this caps any other one the same way.
        .layer(axum::extract::DefaultBodyLimit::max(crate::limits::MAX_BODY))
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::map_response(protect))
        .with_state(state)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Unknown paths get the REST API's JSON error, not an empty body.
async fn unknown_path() -> ApiError {
    ApiError::not_found("route (see GET /api/v1/openapi.json)")
}

async fn wrong_method(method: Method) -> Response {
    let body = serde_json::json!({
        "error": "method_not_allowed",
        "message": format!("{method} is not allowed here (see GET /api/v1/openapi.json)"),
    });
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// Answers carry sessions, secrets and tokens: no cache may keep them, and no browser may
/// guess their type.
async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Fails when a route is added, removed or renamed without the document (or vice versa).
    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "an OpenAPI 3 document");
        let mut documented = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                if method == "parameters" {
                    continue;
                }
                assert!(operation["responses"].is_object(), "{method} {path} documents its responses");
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let routed: BTreeSet<(String, String)> =
            ROUTES.iter().map(|r| (r.method.as_str().to_string(), r.path.to_string())).collect();
        assert_eq!(routed.len(), ROUTES.len(), "a route is listed twice");
        let missing: Vec<_> = routed.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routed).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "undocumented routes: {missing:?}; documented but not routed: {extra:?}"
        );
    }

    #[test]
    fn every_method_in_the_table_has_a_filter() {
        for entry in ROUTES {
            assert!(MethodFilter::try_from(entry.method.clone()).is_ok(), "{} {}", entry.method, entry.path);
        }
    }
}

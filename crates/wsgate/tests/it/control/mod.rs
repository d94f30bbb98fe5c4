//! The control plane over real HTTPS: the REST API of the publisher and the developer portal,
//! and the OAuth2 key manager. Each test starts its own control plane in-process on
//! `127.0.0.1:0` with an SQLite store in a fresh directory.
//!
//! Reading order: `harness` (the control plane under test and an HTTPS client that trusts its
//! generated certificate), then the tests in the order a new user meets the product:
//! `session` (sign-in, roles, CSRF), `apis` (publisher), `endpoints` (endpoint settings, origins
//! and who sees an API's upstream), `applications` (developer portal:
//! applications, keys, subscriptions), `oauth2` (token, JWKS, revocation, rotation), then
//! the control plane under attack: `hardening` (bounded bodies, throttled sign-ins, password
//! policy, sign-up), `permissions` (granted scopes, blocks, who may set what, sealed keys),
//! `analytics` (session analytics series and who may read them), `nodes` (the node list and
//! its states, for admins only), and `fuzz` (schemathesis against the OpenAPI document).

pub(crate) mod harness;

mod session;
mod apis;
mod endpoints;
mod applications;
mod oauth2;
mod hardening;
mod permissions;
mod analytics;
mod signing_keys;
mod nodes;
mod fuzz;

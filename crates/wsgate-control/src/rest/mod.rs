//! The REST API under `/api/v1`, one module per resource, in the order a new user meets them:
//! `session` (sign in, sign up), `users`, `plans`, `apis` (publisher), `applications` and
//! `subscriptions` (developer portal), `revocations`, `signing_keys` (admin), `usage` (of
//! limits), `analytics` (session analytics charts' series), `nodes` (the cluster's nodes and
//! their health). Handlers check the caller's role first, then validate,
//! then write; every refusal is an [`ApiError`](crate::error::ApiError).
//!
//! Helpers: `extract` (bodies and query strings whose errors name the field), `validate`
//! (value rules shared with the config file).

pub mod extract;
pub mod validate;

pub mod session;
pub mod users;
pub mod plans;
pub mod apis;
pub mod applications;
pub mod subscriptions;
pub mod revocations;
pub mod signing_keys;
pub mod usage;
pub mod analytics;
pub mod nodes;

//! The [`Store`] operations, written once over [`Backend`]: each turns into SQL statements, and
//! each row back into a record. Both backends therefore share every rule (what is a conflict,
//! what is not found, what a write announces) and differ only in how they run SQL.
//!
//! One file per group of tables: `users` (users, sessions), `apis` (APIs, plans), `apps`
//! (applications, subscriptions, credentials), `keys` (signing keys, revocations), `analytics`
//! (session analytics buckets), `cluster` (settings fixed once, leases), `nodes` (the node
//! list's heartbeat records).
//!
//! Lists come back sorted here rather than by `ORDER BY`, because PostgreSQL sorts text by the
//! database's collation (often case-insensitive) while SQLite compares bytes; sorting in Rust
//! gives both backends the same order.

mod analytics;
mod apis;
mod apps;
mod cluster;
mod keys;
mod nodes;
mod users;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;
use wsgate_core::model::{
    ApiRecord, Application, ClientCredentials, ExternalClient, Plan, RevokedToken, Session, SigningKey, Subscription,
    SubscriptionState, UnixTime, User,
};

use wsgate_core::node::NodeRecord;

use crate::analytics::{AnalyticsFilter, CodeCount, MinuteBucket, SeriesPoint, Span, TopBy, TopEntry};
use crate::schema::Rule;
use crate::sql::{Backend, Param, Row, Statement, Write};
use crate::{Change, KeyRotation, Result, Store, StoreError, SubscriptionFilter};

pub(crate) use apis::seed_plans;

/// A [`Store`] over one backend.
#[derive(Debug)]
pub(crate) struct Tables<B> {
    db: B,
}

impl<B: Backend> Tables<B> {
    pub(crate) fn new(db: B) -> Tables<B> {
        Tables { db }
    }
}

/// Runs a read and decodes each row.
async fn read<B: Backend, T>(
    db: &B,
    sql: &'static str,
    params: Vec<Param>,
    decode: impl Fn(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    let rows = db.query(sql, params).await.map_err(|failure| failure.plain())?;
    rows.iter().map(decode).collect()
}

/// Runs a read expected to match at most one row.
async fn read_one<B: Backend, T>(
    db: &B,
    sql: &'static str,
    params: Vec<Param>,
    decode: impl Fn(&Row) -> Result<T>,
) -> Result<Option<T>> {
    Ok(read(db, sql, params, decode).await?.into_iter().next())
}

/// Runs a write; `explain` words a broken uniqueness rule for the user.
async fn write<B: Backend>(
    db: &B,
    statements: Vec<Statement>,
    changes: &[Change],
    explain: impl FnOnce(Rule) -> String,
) -> Result<()> {
    let write = Write { statements, changes: changes.to_vec(), exclusive: false };
    db.write(write).await.map_err(|failure| failure.explain(explain))
}

/// Lists are stored as JSON text; see the migration.
fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Param> {
    serde_json::to_string(value)
        .map(Param::Text)
        .map_err(|error| StoreError::Backend(format!("cannot encode a list as JSON: {error}")))
}

fn from_json<T: DeserializeOwned>(text: &str, column: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|error| StoreError::Backend(format!("stored {column} are not valid: {error}")))
}

/// A stored enum name this build does not know (written by a newer wsgate, or edited by hand).
fn unknown(column: &str, value: &str) -> StoreError {
    StoreError::Backend(format!("stored {column} {value:?} is unknown"))
}

fn from_i64<T: TryFrom<i64>>(value: i64, column: &str) -> Result<T> {
    T::try_from(value).map_err(|_| StoreError::Backend(format!("stored {column} {value} is out of range")))
}

#[async_trait]
impl<B: Backend> Store for Tables<B> {
    async fn create_user(&self, user: &User) -> Result<()> {
        users::create_user(&self.db, user).await
    }
    async fn user(&self, name: &str) -> Result<Option<User>> {
        users::user(&self.db, name).await
    }
    async fn list_users(&self) -> Result<Vec<User>> {
        users::list_users(&self.db).await
    }
    async fn update_user(&self, user: &User) -> Result<()> {
        users::update_user(&self.db, user).await
    }
    async fn create_session(&self, session: &Session) -> Result<()> {
        users::create_session(&self.db, session).await
    }
    async fn session(&self, token_hash: &str, now: UnixTime) -> Result<Option<Session>> {
        users::session(&self.db, token_hash, now).await
    }
    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        users::delete_session(&self.db, token_hash).await
    }

    async fn create_api(&self, api: &ApiRecord) -> Result<()> {
        apis::create_api(&self.db, api).await
    }
    async fn api(&self, id: &str) -> Result<Option<ApiRecord>> {
        apis::api(&self.db, id).await
    }
    async fn list_apis(&self) -> Result<Vec<ApiRecord>> {
        apis::list_apis(&self.db).await
    }
    async fn update_api(&self, api: &ApiRecord) -> Result<()> {
        apis::update_api(&self.db, api).await
    }
    async fn delete_api(&self, id: &str) -> Result<()> {
        apis::delete_api(&self.db, id).await
    }

    async fn list_plans(&self) -> Result<Vec<Plan>> {
        apis::list_plans(&self.db).await
    }
    async fn plan(&self, name: &str) -> Result<Option<Plan>> {
        apis::plan(&self.db, name).await
    }
    async fn put_plan(&self, plan: &Plan) -> Result<()> {
        apis::put_plan(&self.db, plan).await
    }
    async fn delete_plan(&self, name: &str) -> Result<()> {
        apis::delete_plan(&self.db, name).await
    }

    async fn create_application(&self, app: &Application) -> Result<()> {
        apps::create_application(&self.db, app).await
    }
    async fn application(&self, id: &str) -> Result<Option<Application>> {
        apps::application(&self.db, id).await
    }
    async fn list_applications(&self, owner: Option<&str>) -> Result<Vec<Application>> {
        apps::list_applications(&self.db, owner).await
    }
    async fn set_external_clients(&self, id: &str, clients: &[ExternalClient]) -> Result<()> {
        apps::set_external_clients(&self.db, id, clients).await
    }
    async fn set_application_plan(&self, id: &str, plan: Option<&str>) -> Result<()> {
        apps::set_application_plan(&self.db, id, plan).await
    }
    async fn delete_application(&self, id: &str) -> Result<()> {
        apps::delete_application(&self.db, id).await
    }

    async fn create_subscription(&self, subscription: &Subscription) -> Result<()> {
        apps::create_subscription(&self.db, subscription).await
    }
    async fn subscription(&self, id: &str) -> Result<Option<Subscription>> {
        apps::subscription(&self.db, id).await
    }
    async fn list_subscriptions(&self, filter: SubscriptionFilter<'_>) -> Result<Vec<Subscription>> {
        apps::list_subscriptions(&self.db, filter).await
    }
    async fn set_subscription_state(&self, id: &str, state: SubscriptionState) -> Result<()> {
        apps::set_subscription_state(&self.db, id, state).await
    }
    async fn set_subscription_scopes(&self, id: &str, scopes: &[String]) -> Result<()> {
        apps::set_subscription_scopes(&self.db, id, scopes).await
    }

    async fn set_subscription_plan(&self, id: &str, plan: &str) -> Result<()> {
        apps::set_subscription_plan(&self.db, id, plan).await
    }

    async fn put_credentials(&self, credentials: &ClientCredentials) -> Result<()> {
        apps::put_credentials(&self.db, credentials).await
    }
    async fn credentials_by_client_id(&self, client_id: &str) -> Result<Option<ClientCredentials>> {
        apps::credentials_by_client_id(&self.db, client_id).await
    }
    async fn credentials_for_application(&self, application_id: &str) -> Result<Option<ClientCredentials>> {
        apps::credentials_for_application(&self.db, application_id).await
    }
    async fn list_credentials(&self) -> Result<Vec<ClientCredentials>> {
        apps::list_credentials(&self.db).await
    }

    async fn put_signing_key(&self, key: &SigningKey) -> Result<()> {
        keys::put_signing_key(&self.db, key).await
    }
    async fn list_signing_keys(&self) -> Result<Vec<SigningKey>> {
        keys::list_signing_keys(&self.db).await
    }
    async fn revoke_token(&self, token: &RevokedToken) -> Result<()> {
        keys::revoke_token(&self.db, token).await
    }
    async fn list_revoked_tokens(&self, now: UnixTime) -> Result<Vec<RevokedToken>> {
        keys::list_revoked_tokens(&self.db, now).await
    }

    async fn add_analytics(&self, buckets: &[MinuteBucket]) -> Result<()> {
        analytics::add_analytics(&self.db, buckets).await
    }
    async fn delete_analytics_before(&self, minute: i64) -> Result<()> {
        analytics::delete_analytics_before(&self.db, minute).await
    }
    async fn analytics_series(&self, filter: AnalyticsFilter<'_>, span: Span) -> Result<Vec<SeriesPoint>> {
        analytics::analytics_series(&self.db, filter, span).await
    }
    async fn analytics_codes(&self, filter: AnalyticsFilter<'_>, from: i64, to: i64) -> Result<Vec<CodeCount>> {
        analytics::analytics_codes(&self.db, filter, from, to).await
    }
    async fn analytics_top(
        &self,
        filter: AnalyticsFilter<'_>,
        from: i64,
        to: i64,
        by: TopBy,
        limit: usize,
    ) -> Result<Vec<TopEntry>> {
        analytics::analytics_top(&self.db, filter, from, to, by, limit).await
    }

    async fn fix_setting(&self, key: &str, value: &str) -> Result<String> {
        cluster::fix_setting(&self.db, key, value).await
    }
    async fn setting(&self, key: &str) -> Result<Option<String>> {
        cluster::setting(&self.db, key).await
    }
    async fn acquire_lease(&self, name: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        cluster::acquire_lease(&self.db, name, holder, now_ms, ttl_ms).await
    }
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        cluster::release_lease(&self.db, name, holder).await
    }
    async fn rotate_signing_key(&self, new: &SigningKey, rotation: KeyRotation<'_>) -> Result<SigningKey> {
        keys::rotate_signing_key(&self.db, new, rotation).await
    }
    async fn put_node(&self, node: &NodeRecord) -> Result<()> {
        nodes::put_node(&self.db, node).await
    }
    async fn list_nodes(&self) -> Result<Vec<NodeRecord>> {
        nodes::list_nodes(&self.db).await
    }
    async fn delete_nodes_seen_before(&self, ms: i64) -> Result<()> {
        nodes::delete_nodes_seen_before(&self.db, ms).await
    }

    fn changes(&self) -> broadcast::Receiver<Change> {
        self.db.changes()
    }
}

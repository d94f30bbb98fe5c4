//! The store: everything the control plane writes and the gateway reads, behind one trait with
//! two backends. SQLite is the embedded default (one file in the data directory); PostgreSQL is
//! for several gateway nodes sharing one configuration. Both run the same migrations and pass
//! the same test suite.
//!
//! Modules, in reading order:
//! - this file: the [`Store`] trait, its errors, the change feed, and [`open`].
//! - `schema`: the numbered migrations both backends run, and the uniqueness rules.
//! - `sql`: the narrow interface a backend implements (a query; a list of statements run in
//!   one transaction).
//! - `tables`: every [`Store`] operation, written once as SQL over that interface.
//! - `sqlite`, `postgres`: the backends.
//! - `analytics`: the types of session analytics (per-minute buckets, series, top lists).
//!
//! Every write is one transaction: it is either wholly stored (and then acknowledged) or not at
//! all. After a write commits, a [`Change`] is sent on the change feed — in-process for SQLite,
//! through LISTEN/NOTIFY for PostgreSQL so that every node hears every other node's writes.
//! PostgreSQL's feed is asynchronous: a change committed just before [`Store::changes`] was
//! called may still arrive after it, and when its LISTEN connection was lost and is back, every
//! [`Change`] is announced (notifications sent meanwhile are gone).

pub mod analytics;
mod schema;
mod sql;
mod tables;
mod sqlite;
mod postgres;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;
use wsgate_core::config::StoreSettings;
use wsgate_core::model::{
    ApiRecord, Application, ClientCredentials, ExternalClient, Plan, RevokedToken, Session, SigningKey, Subscription,
    SubscriptionState, UnixTime, User,
};

/// The store file's name in the data directory.
pub const SQLITE_FILE: &str = "wsgate.db";

/// How many changes the feed holds for a slow receiver before it lags (and must reload all).
const CHANGE_FEED_CAPACITY: usize = 1024;

/// Opens the configured store: PostgreSQL when `settings.url` is set, else the SQLite file
/// [`SQLITE_FILE`] in `data_dir` (created with the directory if needed). Either way the schema
/// is migrated and a new store gets [`Plan::defaults`].
pub async fn open(settings: &StoreSettings, data_dir: &Path) -> Result<Arc<dyn Store>> {
    match &settings.url {
        Some(url) => open_postgres(url).await,
        None => {
            std::fs::create_dir_all(data_dir).map_err(|error| {
                StoreError::Unavailable(format!("cannot create the data directory {}: {error}", data_dir.display()))
            })?;
            open_sqlite(&data_dir.join(SQLITE_FILE)).await
        }
    }
}

/// Opens (creating if needed) an SQLite store at `path`.
pub async fn open_sqlite(path: &Path) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(tables::Tables::new(sqlite::Sqlite::open(path).await?)))
}

/// Opens a PostgreSQL store at `url` (`postgres://user@host:port/db`, optionally with
/// `?options=-csearch_path%3Dschema` to keep it in a schema of its own). Returns once the
/// schema is migrated and the change feed listens.
pub async fn open_postgres(url: &str) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(tables::Tables::new(postgres::Postgres::open(url).await?)))
}

/// Why a store call failed. Variants are facts a caller can act on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The record to read, change or delete does not exist (`what` names its kind).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// A uniqueness rule would break; the message says which, in words a user understands
    /// (e.g. "an API with context /echowebsocket and version 1.0 already exists").
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached (PostgreSQL down, file unreadable). Nothing was written;
    /// the call may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Any other database failure. Nothing was written.
    #[error("store error: {0}")]
    Backend(String),
}

/// What kind of data changed; the gateway rebuilds its snapshot on any change it cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    Users,
    Apis,
    Plans,
    Applications,
    Subscriptions,
    Credentials,
    SigningKeys,
    Revocations,
}

impl Change {
    pub const ALL: [Change; 8] = [
        Change::Users,
        Change::Apis,
        Change::Plans,
        Change::Applications,
        Change::Subscriptions,
        Change::Credentials,
        Change::SigningKeys,
        Change::Revocations,
    ];

    /// The name used as the NOTIFY payload.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Users => "users",
            Change::Apis => "apis",
            Change::Plans => "plans",
            Change::Applications => "applications",
            Change::Subscriptions => "subscriptions",
            Change::Credentials => "credentials",
            Change::SigningKeys => "signing_keys",
            Change::Revocations => "revocations",
        }
    }

    pub fn parse(text: &str) -> Option<Change> {
        Change::ALL.into_iter().find(|change| change.as_str() == text)
    }
}

/// Which subscriptions to list; `None` fields match everything.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionFilter<'a> {
    pub application_id: Option<&'a str>,
    pub api_id: Option<&'a str>,
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// When [`Store::rotate_signing_key`] stores its new key. A stored key signs at time `t` when
/// `t < active_until` and `t < created_at + period` (the configured period caps stored keys).
#[derive(Debug, Clone, Copy)]
pub struct KeyRotation<'a> {
    /// A forced rotation away from this key: the new key is stored, and every key signing at
    /// `now` stops signing then (it stays published until its `retire_at`), only while this
    /// key still signs. A second request for the same key therefore changes nothing.
    /// `None`: a rotation by time, storing the new key only when no key signs at `needed_at`.
    pub away_from: Option<&'a str>,
    pub now: UnixTime,
    /// By time: the moment some key must still sign at; later than `now` to make the next key
    /// before the current one stops signing.
    pub needed_at: UnixTime,
    /// The configured signing period (`control.signing_key_rotation`), in seconds.
    pub period: i64,
}

/// The operations of a store. Reads return `Ok(None)` (or an empty list) for what does not
/// exist; writes return [`StoreError::NotFound`] when what they change does not exist.
/// Callers generate ids and timestamps; the store keeps them as given.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    // --- users and sessions: called by sign-in and every authenticated control-plane request

    /// Conflict when the name is taken.
    async fn create_user(&self, user: &User) -> Result<()>;
    async fn user(&self, name: &str) -> Result<Option<User>>;
    async fn list_users(&self) -> Result<Vec<User>>;
    /// Replaces roles and password hash of an existing user.
    async fn update_user(&self, user: &User) -> Result<()>;
    async fn create_session(&self, session: &Session) -> Result<()>;
    /// The session with this token hash, if it has not expired at `now`.
    async fn session(&self, token_hash: &str, now: UnixTime) -> Result<Option<Session>>;
    /// Sign-out. Not an error when already gone.
    async fn delete_session(&self, token_hash: &str) -> Result<()>;

    // --- APIs: written by publishers, read by the gateway's snapshot

    /// Conflict when another API has the same name and version, or the same context and
    /// canonical version (`1.0` = `1.0.0`).
    async fn create_api(&self, api: &ApiRecord) -> Result<()>;
    async fn api(&self, id: &str) -> Result<Option<ApiRecord>>;
    /// All APIs, ordered by name then version.
    async fn list_apis(&self) -> Result<Vec<ApiRecord>>;
    /// Replaces every field of the API with this id; the same conflicts as create.
    async fn update_api(&self, api: &ApiRecord) -> Result<()>;
    /// Deletes the API and its subscriptions.
    async fn delete_api(&self, id: &str) -> Result<()>;

    // --- business plans

    /// Ordered by name. A new store holds [`Plan::defaults`].
    async fn list_plans(&self) -> Result<Vec<Plan>>;
    async fn plan(&self, name: &str) -> Result<Option<Plan>>;
    /// Creates or replaces the plan with this name.
    async fn put_plan(&self, plan: &Plan) -> Result<()>;
    /// Conflict while an API offers or names the plan, or an application or a subscription
    /// that is not REMOVED uses it.
    async fn delete_plan(&self, name: &str) -> Result<()>;

    // --- applications, subscriptions, credentials: written from the developer portal

    /// Conflict when the owner already has an application with this name.
    async fn create_application(&self, app: &Application) -> Result<()>;
    async fn application(&self, id: &str) -> Result<Option<Application>>;
    /// Applications of one owner (ordered by name), or all with `None`.
    async fn list_applications(&self, owner: Option<&str>) -> Result<Vec<Application>>;
    /// Replaces the external identity providers' clients registered on the application
    /// (uniqueness across applications is the caller's rule).
    async fn set_external_clients(&self, id: &str, clients: &[ExternalClient]) -> Result<()>;
    /// Sets or clears the plan all of the application's connections share; NotFound when the
    /// application or the plan does not exist.
    async fn set_application_plan(&self, id: &str, plan: Option<&str>) -> Result<()>;
    /// Deletes the application, its subscriptions and its credentials.
    async fn delete_application(&self, id: &str) -> Result<()>;

    /// Conflict when the application already has a subscription to this API that is not
    /// REMOVED.
    async fn create_subscription(&self, subscription: &Subscription) -> Result<()>;
    async fn subscription(&self, id: &str) -> Result<Option<Subscription>>;
    /// Ordered by creation time.
    async fn list_subscriptions(&self, filter: SubscriptionFilter<'_>) -> Result<Vec<Subscription>>;
    async fn set_subscription_state(&self, id: &str, state: SubscriptionState) -> Result<()>;
    /// Replaces the scopes granted to the subscription (a publisher's decision).
    async fn set_subscription_scopes(&self, id: &str, scopes: &[String]) -> Result<()>;
    /// Moves a subscription to another plan; NotFound when it or the plan does not exist.
    async fn set_subscription_plan(&self, id: &str, plan: &str) -> Result<()>;

    /// Creates or replaces the application's credentials (regenerating keys). Conflict when the
    /// client id is used by another application.
    async fn put_credentials(&self, credentials: &ClientCredentials) -> Result<()>;
    async fn credentials_by_client_id(&self, client_id: &str) -> Result<Option<ClientCredentials>>;
    async fn credentials_for_application(&self, application_id: &str) -> Result<Option<ClientCredentials>>;
    /// Every application's credentials.
    async fn list_credentials(&self) -> Result<Vec<ClientCredentials>>;

    // --- key manager: signing keys and revoked tokens

    /// Creates or replaces the key with this kid.
    async fn put_signing_key(&self, key: &SigningKey) -> Result<()>;
    /// All keys, newest first.
    async fn list_signing_keys(&self) -> Result<Vec<SigningKey>>;
    /// Records a revocation; revoking twice is not an error.
    async fn revoke_token(&self, token: &RevokedToken) -> Result<()>;
    /// Revocations whose tokens have not expired at `now`.
    async fn list_revoked_tokens(&self, now: UnixTime) -> Result<Vec<RevokedToken>>;

    // --- session analytics: written by the analytics writer in batches, read by charts

    /// Adds the buckets' counts to the stored ones (creating buckets as needed), in one
    /// transaction. Nothing announces it: no node caches analytics.
    async fn add_analytics(&self, buckets: &[analytics::MinuteBucket]) -> Result<()>;
    /// Retention: deletes every bucket of a minute before `minute` (Unix seconds).
    async fn delete_analytics_before(&self, minute: i64) -> Result<()>;
    /// The slots of the span that hold data, in time order; empty slots are left out.
    async fn analytics_series(
        &self,
        filter: analytics::AnalyticsFilter<'_>,
        span: analytics::Span,
    ) -> Result<Vec<analytics::SeriesPoint>>;
    /// Refusals by status and closes by code and side over `[from, to)`, most frequent first.
    async fn analytics_codes(
        &self,
        filter: analytics::AnalyticsFilter<'_>,
        from: i64,
        to: i64,
    ) -> Result<Vec<analytics::CodeCount>>;
    /// The `limit` applications or APIs with the most messages over `[from, to)`.
    async fn analytics_top(
        &self,
        filter: analytics::AnalyticsFilter<'_>,
        from: i64,
        to: i64,
        by: analytics::TopBy,
        limit: usize,
    ) -> Result<Vec<analytics::TopEntry>>;

    // --- cluster state: what the nodes sharing this store agree on and do once

    /// Stores `value` under `key` unless the key holds a value already, atomically, and returns
    /// what the store holds: `value`, or the value an earlier caller (another node) fixed.
    /// Called at start, e.g. for the token issuer, so that every node uses the first one's.
    async fn fix_setting(&self, key: &str, value: &str) -> Result<String>;
    /// The value fixed under `key`, if any. Called at start by nodes that only read it.
    async fn setting(&self, key: &str) -> Result<Option<String>>;
    /// Takes the lease `name` for `holder` until `now_ms + ttl_ms` when it is free, expired at
    /// `now_ms`, or already `holder`'s (a renewal), in one atomic statement; `false` when
    /// another holder has it. Called every few seconds by each node's one-writer job runner.
    async fn acquire_lease(&self, name: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool>;
    /// Gives the lease up if `holder` has it (on a clean shutdown), so another node takes it at
    /// once instead of after its expiry. Not an error when someone else holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
    /// Stores `new` as the signing key unless another node rotated first; returns the key that
    /// signs afterwards (`new` or the other node's). Exclusive writes take turns across nodes,
    /// so however many nodes call this at the same moment, one key is made. See
    /// [`KeyRotation`] for when `new` is stored. Called by the key manager when its key stops
    /// signing, by the one-writer job runner ahead of that, and by an admin's forced rotation.
    async fn rotate_signing_key(&self, new: &SigningKey, rotation: KeyRotation<'_>) -> Result<SigningKey>;
    // --- the node list: written by each node's heartbeat, read by the control plane

    /// Creates or replaces the node's record (upsert by id). Nothing announces it.
    async fn put_node(&self, node: &wsgate_core::node::NodeRecord) -> Result<()>;
    /// Every node's last record, ordered by name then id.
    async fn list_nodes(&self) -> Result<Vec<wsgate_core::node::NodeRecord>>;
    /// Retention: deletes the records last written before `ms` (milliseconds since the epoch).
    async fn delete_nodes_seen_before(&self, ms: i64) -> Result<()>;

    // --- change feed

    /// Changes committed after this call, from this process and (PostgreSQL) every other
    /// node. A lagging receiver should reload everything.
    fn changes(&self) -> broadcast::Receiver<Change>;
}

//! The one suite every backend must pass. Each case is an async function taking a freshly
//! opened, empty store (plus a second store on the same database where a case needs two);
//! `sqlite.rs` and `postgres.rs` run every case listed in [`for_each_case`].

mod analytics;
mod apis;
mod apps;
mod cluster;
mod feed;
mod keys;
mod nodes;
mod users;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};
use wsgate_core::config::AuthMode;
use wsgate_core::model::{
    ApiRecord, Application, ClientCredentials, Lifecycle, Role, Subscription, SubscriptionState, User,
};
use wsgate_store::{Change, Store, StoreError};

pub use analytics::*;
pub use apis::*;
pub use apps::*;
pub use cluster::*;
pub use feed::*;
pub use keys::*;
pub use nodes::*;
pub use users::*;

/// Calls `$run!(case, …)` with every case that takes one store, so a case added here runs on
/// both backends.
macro_rules! for_each_case {
    ($run:ident) => {
        $run!(
            users_are_created_read_listed_and_updated,
            user_names_are_unique,
            sessions_are_found_until_they_expire,
            sessions_need_an_existing_user,
            apis_are_created_read_listed_updated_and_deleted,
            api_name_and_version_are_unique,
            api_context_and_canonical_version_are_unique,
            api_updates_obey_the_same_rules,
            plans_start_with_the_defaults_and_can_be_put,
            plans_in_use_cannot_be_deleted,
            subscriptions_and_applications_change_plans,
            applications_are_per_owner,
            subscriptions_are_created_filtered_and_moved,
            one_live_subscription_per_application_and_api,
            subscriptions_need_an_application_and_an_api,
            granted_scopes_and_external_clients_are_stored,
            credentials_are_put_replaced_and_found,
            client_ids_are_unique,
            deleting_an_api_deletes_its_subscriptions,
            deleting_an_application_deletes_its_subscriptions_and_credentials,
            signing_keys_are_put_and_listed_newest_first,
            revocations_are_listed_until_the_token_expires,
            writes_announce_what_they_changed,
            failed_writes_announce_nothing,
            analytics_buckets_add_up_and_aggregate_per_slot,
            analytics_retention_deletes_old_minutes_only,
            settings_are_fixed_by_the_first_writer,
            leases_are_held_renewed_released_and_taken_after_expiry,
            signing_keys_rotate_once_by_time_and_when_forced,
            nodes_are_put_replaced_listed_and_retained,
        );
    };
}
pub(crate) use for_each_case;

pub type Db = Arc<dyn Store>;

/// The longest a case may run before it counts as hung.
pub const CASE_LIMIT: Duration = Duration::from_secs(60);

/// A point in time the cases count from.
pub const NOW: i64 = 1_750_000_000;

pub fn user(name: &str, roles: &[Role]) -> User {
    User {
        name: name.into(),
        password_hash: format!("$argon2id$v=19$hash-of-{name}"),
        roles: roles.to_vec(),
        created_at: NOW,
    }
}

pub fn api(id: &str, name: &str, context: &str, version: &str) -> ApiRecord {
    ApiRecord {
        id: id.into(),
        name: name.into(),
        context: context.into(),
        version: version.into(),
        endpoints: vec!["ws://127.0.0.1:9000/echo".into(), "wss://echo.example:443/ws".into()],
        plans: vec!["Gold".into(), "Unlimited".into()],
        auth: AuthMode::Oauth2,
        state: Lifecycle::Created,
        default_version: false,
        ca_file: None,
        insecure_skip_verify: false,
        scopes: vec![],
        close_on_token_expiry: true,
        api_plan: None,
        client_plan: None,
        allowed_origins: vec![],
        endpoint_settings: Default::default(),
        owner: "alice".into(),
        created_at: NOW,
        updated_at: NOW,
    }
}

pub fn application(id: &str, owner: &str, name: &str) -> Application {
    Application {
        id: id.into(),
        name: name.into(),
        owner: owner.into(),
        description: format!("{name} of {owner}"),
        plan: None,
        created_at: NOW,
        external_clients: Vec::new(),
    }
}

pub fn subscription(id: &str, application_id: &str, api_id: &str, created_at: i64) -> Subscription {
    Subscription {
        id: id.into(),
        application_id: application_id.into(),
        api_id: api_id.into(),
        plan: "Gold".into(),
        state: SubscriptionState::Active,
        created_at,
        granted_scopes: Vec::new(),
    }
}

pub fn credentials(application_id: &str, client_id: &str) -> ClientCredentials {
    ClientCredentials {
        application_id: application_id.into(),
        client_id: client_id.into(),
        secret_hash: format!("$argon2id$secret-of-{client_id}"),
        created_at: NOW,
    }
}

/// The message of a `Conflict`, failing the case for any other outcome.
pub fn conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::Conflict(message)) => message,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

pub fn not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) -> &'static str {
    match result {
        Err(StoreError::NotFound { what }) => what,
        other => panic!("expected not found, got {other:?}"),
    }
}

/// How long a change may take to arrive (PostgreSQL: through the server and the LISTEN
/// connection).
pub const FEED_WAIT: Duration = Duration::from_secs(10);

/// The next change on the feed, within [`FEED_WAIT`].
pub async fn next_change(feed: &mut broadcast::Receiver<Change>) -> Change {
    match tokio::time::timeout(FEED_WAIT, feed.recv()).await {
        Ok(Ok(change)) => change,
        Ok(Err(RecvError::Lagged(missed))) => panic!("the feed lagged by {missed}"),
        Ok(Err(RecvError::Closed)) => panic!("the feed closed"),
        Err(_) => panic!("no change within {FEED_WAIT:?}"),
    }
}

/// The next `expected.len()` changes are exactly `expected`, in order.
pub async fn expect_changes(feed: &mut broadcast::Receiver<Change>, expected: &[Change]) {
    let mut got = Vec::new();
    for _ in expected {
        got.push(next_change(feed).await);
    }
    assert_eq!(got, expected);
}

/// Opening a store that exists runs no migration twice, keeps its data and does not seed the
/// default plans again (a changed default plan stays changed). `reopen` opens a second store on
/// the same database.
pub async fn reopening_keeps_data_and_seeds_once(first: Db, reopen: impl AsyncFnOnce() -> Db) {
    first.create_user(&user("bob", &[Role::Admin])).await.expect("create user");
    let mut gold = wsgate_core::model::Plan::defaults().remove(2);
    assert_eq!(gold.name, "Gold");
    gold.limits.connections = Some(7);
    first.put_plan(&gold).await.expect("change a default plan");

    let second = reopen().await;
    assert_eq!(second.user("bob").await.expect("read"), Some(user("bob", &[Role::Admin])));
    let plans = second.list_plans().await.expect("list");
    assert_eq!(plans.len(), wsgate_core::model::Plan::defaults().len());
    assert_eq!(plans.iter().find(|plan| plan.name == "Gold"), Some(&gold));
    second.create_user(&user("carol", &[])).await.expect("write through the second");
    assert_eq!(first.list_users().await.expect("list").len(), 2);
}

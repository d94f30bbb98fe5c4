//! What the gateway knows, as one immutable snapshot: routes, what token checks read (signing
//! keys, revocations, applications, subscriptions) and the plans limits come from. The store is
//! never queried on a connection's path: `follow` rebuilds the snapshot from the store's change
//! feed and swaps it in whole; each handshake reads the snapshot current at that moment.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use wsgate_core::config::ApiSpec;
use wsgate_core::limits::Limits;
use wsgate_core::model::{ApiRecord, Application, Lifecycle, Plan, RevokedToken, Subscription, SubscriptionState};
use wsgate_store::{Store, StoreError, SubscriptionFilter};

use crate::idp::VerifyKey;
use crate::route::{Api, ApiLimits, Managed, RouteTable};

/// Everything a handshake looks up.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// How many snapshots were swapped in before this one (0: the one the gateway started with).
    pub generation: u64,
    pub routes: RouteTable,
    pub access: Access,
    /// Every plan's limits, by plan name.
    pub plans: HashMap<String, Arc<Limits>>,
}

impl Snapshot {
    pub fn plan_limits(&self, name: &str) -> Option<Arc<Limits>> {
        self.plans.get(name).cloned()
    }
}

/// What token checks read.
#[derive(Debug, Default)]
pub struct Access {
    /// The `iss` every token must carry; `None` when no control plane issues tokens.
    pub issuer: Option<String>,
    /// The control plane's public keys by `kid`, for keys not yet retired.
    pub keys: HashMap<String, VerifyKey>,
    /// Application ids by (issuer, client id) of the external clients registered on them, for
    /// tokens of external identity providers (usually one; several is refused as ambiguous).
    pub external_clients: HashMap<(String, String), Vec<String>>,
    /// `jti`s of revoked tokens that have not expired yet.
    pub revoked: HashSet<String>,
    /// Applications whose tokens issued at or before a moment are revoked, with that moment.
    pub revoked_applications: HashMap<String, i64>,
    pub applications: HashMap<String, Application>,
    /// Subscriptions that are not REMOVED, by (application id, API id).
    pub subscriptions: HashMap<(String, String), Subscription>,
}

impl Access {
    /// Whether the token with this jti, application and issue time has been revoked, by itself
    /// or with all of its application's earlier tokens.
    pub fn is_revoked(&self, jti: &str, application_id: &str, issued_at: i64) -> bool {
        self.revoked.contains(jti) || self.revoked_applications.get(application_id).is_some_and(|at| issued_at <= *at)
    }

    /// Whether `application_id` may still use API `api_id`: it exists and its subscription is
    /// active.
    pub fn allows(&self, application_id: &str, api_id: &str) -> Result<&Subscription, Denial> {
        if !self.applications.contains_key(application_id) {
            return Err(Denial::ApplicationDeleted);
        }
        match self.subscriptions.get(&(application_id.to_string(), api_id.to_string())) {
            Some(subscription) if subscription.state == SubscriptionState::Active => Ok(subscription),
            Some(_) => Err(Denial::SubscriptionBlocked),
            None => Err(Denial::NotSubscribed),
        }
    }
}

/// Why an application may not (or no longer) use an API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("the application does not exist")]
    ApplicationDeleted,
    #[error("the application is not subscribed to this API")]
    NotSubscribed,
    #[error("the subscription is blocked")]
    SubscriptionBlocked,
}

/// A cheap-clone handle to the current snapshot. Readers take the lock only to clone an `Arc`,
/// once per handshake; the relay never touches it.
#[derive(Debug, Clone, Default)]
pub struct SnapshotHandle(Arc<RwLock<Arc<Snapshot>>>);

impl SnapshotHandle {
    pub fn new(snapshot: Snapshot) -> SnapshotHandle {
        SnapshotHandle(Arc::new(RwLock::new(Arc::new(snapshot))))
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn replace(&self, snapshot: Snapshot) -> Arc<Snapshot> {
        let snapshot = Arc::new(snapshot);
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = snapshot.clone();
        snapshot
    }
}

/// The store's contents a snapshot is built from.
#[derive(Debug, Default)]
pub struct StoreView {
    pub apis: Vec<ApiRecord>,
    pub keys: Vec<wsgate_core::model::SigningKey>,
    pub revoked: Vec<wsgate_core::model::RevokedToken>,
    pub applications: Vec<Application>,
    pub subscriptions: Vec<Subscription>,
    pub plans: Vec<Plan>,
}

impl StoreView {
    pub async fn load(store: &dyn Store) -> Result<StoreView, StoreError> {
        let now = unix_now();
        Ok(StoreView {
            apis: store.list_apis().await?,
            keys: store.list_signing_keys().await?,
            revoked: store.list_revoked_tokens(now).await?,
            applications: store.list_applications(None).await?,
            subscriptions: store.list_subscriptions(SubscriptionFilter::default()).await?,
            plans: store.list_plans().await?,
        })
    }
}

/// Builds a snapshot. Store APIs that are PUBLISHED, DEPRECATED or BLOCKED are routed (blocked
/// ones only to be refused with 403); a store API whose TLS settings do not load is left out
/// and logged rather than taking the others down; file APIs win over store APIs with the same
/// context and version.
pub fn build(file_apis: &[ApiSpec], view: &StoreView, issuer: Option<&str>) -> Snapshot {
    let mut specs = Vec::new();
    let mut apis = Vec::new();
    let plans: HashMap<String, Arc<Limits>> =
        view.plans.iter().map(|plan| (plan.name.clone(), Arc::new(plan.limits.clone()))).collect();
    let routed = view.apis.iter().filter(|record| record.state.invokable() || record.state == Lifecycle::Blocked);
    let store_apis = routed.map(|record| (record.to_spec(), Some(record)));
    for (spec, record) in store_apis.chain(file_apis.iter().map(|spec| (spec.clone(), None))) {
        match Api::from_spec(&spec) {
            Ok(mut api) => {
                if let Some(record) = record {
                    api.managed = Some(managed(record));
                    api.limits = ApiLimits {
                        api: record.api_plan.as_ref().and_then(|name| plans.get(name).cloned()),
                        plan: record.api_plan.clone(),
                        client: record.client_plan.as_ref().and_then(|name| plans.get(name).cloned()),
                        client_plan: record.client_plan.clone(),
                    };
                }
                apis.push(api);
                specs.push(spec);
            }
            Err(err) => {
                tracing::error!(api = %spec.name, version = %spec.version, error = %err, "API left out of routing")
            }
        }
    }
    let now = unix_now();
    let access = Access {
        issuer: issuer.map(str::to_string),
        keys: view
            .keys
            .iter()
            .filter(|k| k.retire_at > now)
            .map(|k| (k.kid.clone(), VerifyKey::Es256(k.public_key.clone())))
            .collect(),
        external_clients: view.applications.iter().fold(HashMap::new(), |mut index, app| {
            for client in &app.external_clients {
                let key = (client.issuer.clone(), client.client_id.clone());
                index.entry(key).or_insert_with(Vec::new).push(app.id.clone());
            }
            index
        }),
        revoked: view.revoked.iter().filter(|r| r.application_cutoff().is_none()).map(|r| r.jti.clone()).collect(),
        revoked_applications: view.revoked.iter().filter_map(RevokedToken::application_cutoff).fold(
            HashMap::new(),
            |mut cutoffs, (application, at)| {
                let cutoff = cutoffs.entry(application.to_string()).or_insert(at);
                *cutoff = (*cutoff).max(at);
                cutoffs
            },
        ),
        applications: view.applications.iter().map(|a| (a.id.clone(), a.clone())).collect(),
        subscriptions: view
            .subscriptions
            .iter()
            .filter(|s| s.state != SubscriptionState::Removed)
            .map(|s| ((s.application_id.clone(), s.api_id.clone()), s.clone()))
            .collect(),
    };
    Snapshot { generation: 0, routes: RouteTable::from_apis(apis, &specs), access, plans }
}

fn managed(record: &ApiRecord) -> Managed {
    Managed {
        id: record.id.clone(),
        blocked: record.state == Lifecycle::Blocked,
        scopes: record.scopes.clone(),
        close_on_token_expiry: record.close_on_token_expiry,
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

//! Which limits a connection runs under: its subscription's plan, its application's plan, its
//! API's API-wide limit and its API's per-client-address limit, each counted against its own
//! party. Resolved from a snapshot at the upgrade, and again after every snapshot swap, so a
//! changed plan reaches live connections.

use std::net::IpAddr;
use std::sync::Arc;

use wsgate_core::limits::Limits;
use wsgate_counters::keys::{Counted, Scope, key};

use crate::auth::Principal;
use crate::route::Api;
use crate::snapshot::Snapshot;

/// Who a set of limits counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Party {
    Subscription(String),
    Application(String),
    /// All connections to one API (its id, or `file:<context>/<version>` for config-file APIs).
    Api(String),
    Client {
        api: String,
        addr: IpAddr,
    },
}

impl Party {
    pub fn scope(&self) -> Scope<'_> {
        match self {
            Party::Subscription(id) => Scope::Subscription(id),
            Party::Application(id) => Scope::Application(id),
            Party::Api(id) => Scope::Api(id),
            Party::Client { api, addr } => Scope::Client { api, addr: *addr },
        }
    }

    /// The counters' key for what is `counted` against this party.
    pub fn key(&self, counted: Counted) -> String {
        key(self.scope(), counted)
    }
}

/// One set of limits applied to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub party: Party,
    /// The plan the limits come from (`None` for limits written inline in the config file).
    pub plan: Option<String>,
    pub limits: Arc<Limits>,
}

impl Applied {
    /// `subscription plan Gold` / `API limit` for refusals and close reasons.
    pub fn describe(&self) -> String {
        match &self.plan {
            Some(plan) => format!("{} plan {plan}", self.party.scope().noun()),
            None => format!("{} limit", self.party.scope().noun()),
        }
    }
}

/// Every set of limits a connection runs under; empty when it is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnLimits {
    pub applied: Vec<Applied>,
}

impl ConnLimits {
    /// The limits of a connection to `api` by `caller` (none for keyless APIs) from `addr`,
    /// under `snapshot`. A plan that does not exist (deleted under a config-file API) limits
    /// nothing.
    pub fn resolve(snapshot: &Snapshot, api: &Api, caller: Option<&Principal>, addr: IpAddr) -> ConnLimits {
        let mut applied = Vec::new();
        let mut add = |party: Party, plan: Option<&str>, limits: Option<Arc<Limits>>| {
            if let Some(limits) = limits.filter(|l| !l.is_unlimited()) {
                applied.push(Applied { party, plan: plan.map(str::to_string), limits });
            }
        };
        if let (Some(caller), Some(managed)) = (caller, &api.managed) {
            let access = &snapshot.access;
            if let Ok(subscription) = access.allows(&caller.application_id, &managed.id) {
                let plan = &subscription.plan;
                add(Party::Subscription(subscription.id.clone()), Some(plan), snapshot.plan_limits(plan));
            }
            let application_plan = access.applications.get(&caller.application_id).and_then(|a| a.plan.as_deref());
            if let Some(plan) = application_plan {
                add(Party::Application(caller.application_id.clone()), Some(plan), snapshot.plan_limits(plan));
            }
        }
        let api_key = api.counter_key();
        add(Party::Api(api_key.clone()), api.limits.plan.as_deref(), api.limits.api.clone());
        add(Party::Client { api: api_key, addr }, api.limits.client_plan.as_deref(), api.limits.client.clone());
        ConnLimits { applied }
    }

    pub fn is_empty(&self) -> bool {
        self.applied.is_empty()
    }

    /// Whether message or byte traffic is limited, so the relay must meter it.
    pub fn meters_traffic(&self) -> bool {
        self.applied.iter().any(|a| a.limits.meters_traffic())
    }
}

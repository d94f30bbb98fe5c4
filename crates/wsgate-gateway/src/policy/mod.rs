//! The policy step, between authentication and the upstream: which limits a connection runs
//! under ([`limits`]), whether they let it open now ([`admit`]), and the budget its traffic
//! spends once it is open ([`budget`]).
//!
//! [`admit`] is the only way to make an [`Admission`], and [`crate::upstream::open`] takes one,
//! so "authenticate, then admit, then connect" is kept by the compiler. An admission holds the
//! connection's slots under its connection caps; they are freed when it is dropped, with the
//! connection.

pub mod budget;
pub mod limits;

use std::net::IpAddr;
use std::sync::Arc;

use wsgate_counters::keys::Counted;
use wsgate_counters::{Counters, Refusal, Slot};

use crate::auth::{self, Principal};
use crate::rejection::Rejection;
use crate::route::Route;
use crate::snapshot::Snapshot;

pub use limits::{Applied, ConnLimits, Party};

/// A connection the policy let in: where it goes, who it is, what it runs under.
#[derive(Debug)]
pub struct Admission {
    /// The API, and the target to request upstream (without `access_token`).
    pub route: Route,
    /// `None` on keyless APIs. Shared with the registry, which checks it after every swap.
    pub caller: Option<Arc<Principal>>,
    pub limits: Arc<ConnLimits>,
    /// Places under connection caps, freed when the admission is dropped.
    _slots: Vec<Slot>,
}

/// Resolves the connection's limits and checks its connection caps and new-connection rates.
/// Caps are taken first: a refused rate then frees them, while a refused cap spends no rate.
pub async fn admit(
    mut route: Route,
    caller: Option<Principal>,
    snapshot: &Snapshot,
    client: IpAddr,
    counters: &dyn Counters,
) -> Result<Admission, Rejection> {
    let limits = ConnLimits::resolve(snapshot, &route.api, caller.as_ref(), client);
    let mut slots = Vec::new();
    for applied in &limits.applied {
        if let Some(cap) = applied.limits.connections {
            let slot = counters.acquire_slot(&applied.party.key(Counted::Connections), cap).await;
            slots.push(slot.map_err(|refusal| refused(applied, refusal))?);
        }
    }
    for applied in &limits.applied {
        if let Some(rate) = applied.limits.connection_rate {
            let taken = counters.take_connection(&applied.party.key(Counted::NewConnections), rate).await;
            taken.map_err(|refusal| refused(applied, refusal))?;
        }
    }
    route.rest = auth::without_access_token(&route.rest);
    Ok(Admission { route, caller: caller.map(Arc::new), limits: Arc::new(limits), _slots: slots })
}

fn refused(applied: &Applied, refusal: Refusal) -> Rejection {
    match refusal {
        Refusal::Full { retry_after } => Rejection::LimitReached {
            limit: format!(
                "{} allows {} connections at once",
                applied.describe(),
                applied.limits.connections.unwrap_or(0)
            ),
            retry_after,
        },
        Refusal::TooFast { retry_after } => Rejection::LimitReached {
            limit: format!(
                "{} allows {} new connections",
                applied.describe(),
                applied.limits.connection_rate.map(|r| r.to_string()).unwrap_or_default()
            ),
            retry_after,
        },
        Refusal::Unavailable { retry_after } => Rejection::LimitsUnavailable { retry_after },
    }
}

//! Which endpoint a connection tries first, and which next when connecting fails. Only endpoints
//! that are available (breaker not open, probe not failing) and weigh more than 0 are candidates;
//! when there is none the caller answers 503 with the shortest wait as `Retry-After`.

use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use wsgate_core::upstream::{Balancing, EndpointSettings};

use super::health::ApiEndpoints;

/// What sticky balancing hashes: the application, or the client's address.
#[derive(Debug, Clone, Copy)]
pub struct StickyKey<'a> {
    pub application: Option<&'a str>,
    pub client: std::net::IpAddr,
}

/// The candidates' indexes, best first; `Err(wait)` when no endpoint is available, with the
/// shortest time until one may be.
pub fn order(
    endpoints: &ApiEndpoints,
    settings: &EndpointSettings,
    key: StickyKey<'_>,
    now: Instant,
) -> Result<Vec<usize>, Duration> {
    let probe_interval = settings.probe.as_ref().map(|p| p.interval);
    let mut soonest = Duration::MAX;
    let mut candidates: Vec<usize> = Vec::with_capacity(endpoints.states.len());
    for (index, state) in endpoints.states.iter().enumerate() {
        if settings.weight(index) == 0 {
            continue;
        }
        match state.available(now, probe_interval) {
            Ok(()) => candidates.push(index),
            Err(wait) => soonest = soonest.min(wait),
        }
    }
    if candidates.is_empty() {
        return Err(if soonest == Duration::MAX { Duration::from_secs(1) } else { soonest });
    }
    let weight = |i: usize| u64::from(settings.weight(i));
    match settings.load_balancing {
        Balancing::RoundRobin => {
            // A position in the weighted sequence (weights 3, 1: a a a b); the rest follow in
            // configured order for retries.
            let total: u64 = candidates.iter().map(|&i| weight(i)).sum();
            let position = endpoints.cursor.fetch_add(1, Ordering::Relaxed) as u64 % total.max(1);
            let mut passed = 0;
            let first = candidates
                .iter()
                .position(|&i| {
                    passed += weight(i);
                    position < passed
                })
                .unwrap_or(0);
            candidates.rotate_left(first);
        }
        Balancing::LeastConnections => {
            // Fewest connections for the weight (a/wa < b/wb ⇔ a·wb < b·wa); ties go in turn so
            // that a burst of new connections does not all land on the first endpoint.
            let start = endpoints.cursor.fetch_add(1, Ordering::Relaxed) % candidates.len();
            candidates.rotate_left(start);
            let load = |i: usize| endpoints.states[i].active();
            candidates.sort_by(|&a, &b| (load(a) * weight(b)).cmp(&(load(b) * weight(a))));
        }
        Balancing::HashApplication | Balancing::HashClientAddress => {
            // Weighted rendezvous hashing: each endpoint draws a score from the key and its
            // URL; the highest wins. When an endpoint goes down only its own clients move.
            // SipHash with fixed keys, not `RandomState`: every node of one build sends a key to
            // the same endpoint.
            let state = std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
            let application =
                if settings.load_balancing == Balancing::HashApplication { key.application } else { None };
            let score = |i: usize| {
                let hash = match application {
                    Some(app) => state.hash_one((app, &endpoints.states[i].url)),
                    None => state.hash_one((key.client, &endpoints.states[i].url)),
                };
                // A uniform draw in (0, 1), then -w / ln(u): larger for heavier endpoints.
                let unit = ((hash >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                -(weight(i) as f64) / unit.ln()
            };
            candidates.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
        }
    }
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::upstream::health::EndpointTable;

    fn endpoints(n: usize) -> (Arc<ApiEndpoints>, EndpointSettings) {
        let urls: Vec<String> = (0..n).map(|i| format!("ws://10.0.0.{i}:80")).collect();
        let settings = EndpointSettings::default();
        (EndpointTable::default().resolve("api", "Api", &urls, &settings, None), settings)
    }

    fn key(app: &str) -> StickyKey<'_> {
        StickyKey { application: Some(app), client: [127, 0, 0, 1].into() }
    }

    #[test]
    fn round_robin_follows_the_weights() {
        let (api, mut settings) = endpoints(2);
        settings.weights = vec![3, 1];
        let firsts: Vec<usize> =
            (0..8).map(|_| order(&api, &settings, key("a"), Instant::now()).expect("available")[0]).collect();
        assert_eq!(firsts, [0, 0, 0, 1, 0, 0, 0, 1]);
        settings.weights = vec![0, 1];
        assert_eq!(order(&api, &settings, key("a"), Instant::now()), Ok(vec![1]), "weight 0 takes nothing new");
    }

    #[test]
    fn least_connections_prefers_the_emptiest_for_its_weight() {
        let (api, mut settings) = endpoints(3);
        settings.load_balancing = Balancing::LeastConnections;
        let now = Instant::now();
        let _leases: Vec<_> =
            [0, 0, 1].iter().map(|&i| api.states[i].begin(now).expect("closed").succeeded()).collect();
        assert_eq!(order(&api, &settings, key("a"), now).expect("available"), [2, 1, 0]);
        settings.weights = vec![4, 1, 1];
        // 2 connections for weight 4 is less loaded than 1 for weight 1.
        assert_eq!(order(&api, &settings, key("a"), now).expect("available")[0], 2);
        let _more = api.states[2].begin(now).expect("closed").succeeded();
        assert_eq!(order(&api, &settings, key("a"), now).expect("available")[0], 0);
    }

    #[test]
    fn sticky_hashing_keeps_a_key_on_one_endpoint_and_spreads_keys() {
        let (api, mut settings) = endpoints(4);
        settings.load_balancing = Balancing::HashApplication;
        let now = Instant::now();
        let first = |app: &str| order(&api, &settings, key(app), now).expect("available")[0];
        let mut counts = [0; 4];
        for n in 0..400 {
            let app = format!("app-{n}");
            assert_eq!(first(&app), first(&app), "the same key, the same endpoint");
            counts[first(&app)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 60), "keys spread over every endpoint: {counts:?}");
        let cursor: &AtomicUsize = &api.cursor;
        assert_eq!(cursor.load(Ordering::Relaxed), 0, "hashing does not move the cursor");
    }
}

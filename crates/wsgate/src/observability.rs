//! The binary's part of metrics and health: the Prometheus recorder the gateway records into,
//! the build-info gauge, and the periodic check of the store and Redis that readiness and
//! their health gauges read.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use wsgate_control::ops::Health;
use wsgate_core::config::Config;
use wsgate_counters::Health as CountersHealth;
use wsgate_gateway::Gateway;
use wsgate_store::Store;

/// Upgrade latency buckets, in seconds: a local upgrade takes a millisecond or less, a remote
/// TLS upstream tens of them, a stuck one up to the handshake timeouts.
const UPGRADE_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often the store and Redis are checked, and the recorder's histograms tidied.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Gives `gateway` a Prometheus recorder and returns the handle that renders it.
pub fn install(gateway: &mut Gateway, config: &Config) -> anyhow::Result<PrometheusHandle> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("wsgate_upgrade_duration_seconds".into()), UPGRADE_BUCKETS)
        .context("upgrade latency buckets")?
        .build_recorder();
    let handle = recorder.handle();
    // Without the exporter's own HTTP listener, nothing else drains histogram samples.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            upkeep.run_upkeep();
        }
    });
    gateway.set_metrics(Arc::new(recorder), config.observability.per_application_labels);
    if let Some(info) = gateway.gauge("wsgate_build_info", &[("version", env!("CARGO_PKG_VERSION"))]) {
        info.set(1.0);
    }
    Ok(handle)
}

/// Checks the store (and Redis, when configured) now and then every few seconds until
/// `shutdown`, for `/readyz` and the `wsgate_store_up` / `wsgate_redis_up` gauges.
pub async fn watch_health(gateway: &Gateway, store: Arc<dyn Store>, health: Arc<Health>, shutdown: CancellationToken) {
    let store_up = gateway.gauge("wsgate_store_up", &[]);
    let counters = gateway.counters();
    // In-process counters have nothing to reach: no series rather than a misleading 0.
    let redis_up = match counters.health() {
        CountersHealth::InProcess => None,
        _ => gateway.gauge("wsgate_redis_up", &[]),
    };
    let check = move || {
        let (store, health, store_up, redis_up, counters) =
            (store.clone(), health.clone(), store_up.clone(), redis_up.clone(), counters.clone());
        async move {
            // A lookup of a plan that cannot exist: one indexed query, answered or not.
            let up = store.plan("-").await.is_ok();
            health.store_reachable.store(up, Ordering::Relaxed);
            if let Some(gauge) = &store_up {
                gauge.set(if up { 1.0 } else { 0.0 });
            }
            if let Some(gauge) = &redis_up {
                match counters.health() {
                    CountersHealth::Shared => gauge.set(1.0),
                    CountersHealth::SharedUnreachable => gauge.set(0.0),
                    CountersHealth::InProcess => {}
                }
            }
        }
    };
    check().await;
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(CHECK_EVERY);
        ticks.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => check().await,
            }
        }
    });
}

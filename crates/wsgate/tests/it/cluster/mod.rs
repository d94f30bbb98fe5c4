//! A cluster run for real: three `wsgate serve` processes on one PostgreSQL schema and one Redis
//! (and HAProxy in front, for the rolling restart), on loopback.
//!
//! - `propagation`: a change through one node reaches the others within a second (measured);
//!   a revocation through one node closes sockets on the others within a second.
//! - `sigkill`: a node that dies takes only its own clients with it.
//! - `store_outage`: PostgreSQL cut off from a node (refusing, or silent), then back: traffic
//!   goes on, the control plane says 503 within the store's timeout, `/readyz` stays 200, and
//!   the node catches up with what changed meanwhile.
//! - `rolling_restart`: every node restarted in turn behind HAProxy while clients reconnect:
//!   nobody refused, every close a 1001.

mod propagation;
mod rolling_restart;
mod sigkill;
mod store_outage;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::control::harness::Session;
use crate::harness::RawClient;

/// Creates and publishes, through `admin`'s node, an API without credentials at `context` in
/// front of `endpoint`; returns the path clients connect to.
pub async fn keyless_api(admin: &Session, context: &str, endpoint: &str) -> String {
    let body = json!({"name": context.trim_start_matches('/'), "context": context, "version": "1.0",
                      "endpoints": [endpoint], "plans": ["Gold"], "auth": "none", "publish": true});
    admin.post("/api/v1/apis", body).await.expect(201);
    format!("{context}/1.0.0")
}

/// Whether `node` routes `path`: a plain GET there gets 426 ("upgrade required"), not 404.
/// Nothing upgrades, so nothing is spent.
pub async fn routes(node: SocketAddr, path: &str) -> bool {
    let mut raw = RawClient::connect(node).await;
    raw.send(format!("GET {path} HTTP/1.1\r\nHost: {node}\r\n\r\n").as_bytes()).await;
    raw.read_response_head().await.status() == 426
}

/// Polls `node` until it routes `path`; how long that took from `since`. Fails past `limit`.
pub async fn until_routed(node: SocketAddr, path: &str, since: Instant, limit: Duration) -> Duration {
    loop {
        if routes(node, path).await {
            return since.elapsed();
        }
        assert!(since.elapsed() < limit, "{node} does not route {path} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The `q`-quantile (0.5, 0.99, ...) of sorted `samples`, nearest rank.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// "p50 … p99 … max …" in milliseconds.
pub fn distribution(samples: &[Duration]) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        sorted.len(),
        ms(quantile(&sorted, 0.5)),
        ms(quantile(&sorted, 0.99)),
        ms(*sorted.last().expect("samples"))
    )
}

//! What operators and load balancers ask of a node, without signing in: `/metrics` (Prometheus
//! text), `/healthz` (the process answers) and `/readyz` (it should get new clients: listeners
//! bound, snapshot loaded, and not draining — 503 from the moment the draining token is
//! cancelled; the store must be reachable only until the first snapshot is loaded). Served on the control listener and, when
//! `observability.metrics_listen` is set, on a plain-HTTP listener of its own. Each answer
//! reads a few atomics (or renders the recorder's metrics): cheap enough to poll every second.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::ControlError;

/// A node's readiness, set by whoever knows each part (the binary's start-up and health
/// checks), read by `/readyz`.
#[derive(Debug)]
pub struct Health {
    pub listening: AtomicBool,
    pub snapshot_loaded: AtomicBool,
    pub store_reachable: AtomicBool,
    /// Cancelled when the node announces its drain (SIGTERM), before its listeners close.
    draining: CancellationToken,
}

impl Health {
    pub fn new(draining: CancellationToken) -> Arc<Health> {
        Arc::new(Health {
            listening: AtomicBool::new(false),
            snapshot_loaded: AtomicBool::new(false),
            store_reachable: AtomicBool::new(false),
            draining,
        })
    }

    /// What keeps the node from being ready, in words; empty when it is ready. Once its APIs
    /// are loaded, an unreachable store does not: the node admits handshakes from its last
    /// snapshot, and nodes sharing a store lose it together, so a balancer that took unready
    /// nodes out would take out every one.
    pub fn not_ready(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.draining.is_cancelled() {
            missing.push("draining");
        }
        let loaded = self.snapshot_loaded.load(Ordering::Relaxed);
        for (ready, what) in [
            (self.listening.load(Ordering::Relaxed), "listeners not bound"),
            (loaded, "APIs not loaded"),
            (loaded || self.store_reachable.load(Ordering::Relaxed), "store unreachable"),
        ] {
            if !ready {
                missing.push(what);
            }
        }
        missing
    }

    /// What a ready node serves without, in words, if anything: the store.
    pub fn degraded(&self) -> Option<&'static str> {
        (!self.store_reachable.load(Ordering::Relaxed)).then_some("store unreachable: serving the last snapshot")
    }
}

/// What the operational endpoints serve from.
#[derive(Debug, Clone)]
pub struct Ops {
    /// `None`: metrics are off, `/metrics` is a 404.
    pub metrics: Option<PrometheusHandle>,
    pub health: Arc<Health>,
}

/// `/metrics`, `/healthz` and `/readyz`.
pub fn router(ops: Ops) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(ops)
}

async fn metrics(State(ops): State<Ops>) -> Response {
    match &ops.metrics {
        Some(handle) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
        }
        None => (StatusCode::NOT_FOUND, "metrics are off\n").into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(ops): State<Ops>) -> Response {
    let missing = ops.health.not_ready();
    if missing.is_empty() {
        let body = match ops.health.degraded() {
            Some(without) => format!("ready ({without})\n"),
            None => "ready\n".to_string(),
        };
        (StatusCode::OK, body).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", missing.join(", "))).into_response()
    }
}

/// Binds `observability.metrics_listen`, or says why not and what to change.
pub async fn listen(addr: SocketAddr) -> Result<TcpListener, ControlError> {
    TcpListener::bind(addr).await.map_err(|err| ControlError::Bind {
        addr,
        problem: wsgate_core::config::bind_problem("observability.metrics_listen", addr, &err),
    })
}

/// Serves [`router`] over plain HTTP on `listener` until `stop`.
pub async fn serve(listener: TcpListener, ops: Ops, stop: CancellationToken) {
    let served = axum::serve(listener, router(ops)).with_graceful_shutdown(stop.cancelled_owned()).await;
    if let Err(err) = served {
        tracing::warn!(error = %err, "metrics listener stopped");
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn status_of(router: &Router, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(Body::empty()).expect("a request");
        let response = router.clone().oneshot(request).await.expect("an answer");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("a body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn readiness_needs_every_part_and_ends_with_the_drain() {
        let draining = CancellationToken::new();
        let health = Health::new(draining.clone());
        let router = router(Ops { metrics: None, health: health.clone() });
        assert_eq!(status_of(&router, "/healthz").await.0, StatusCode::OK);
        let (status, body) = status_of(&router, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("store unreachable"), "{body}");
        health.listening.store(true, Ordering::Relaxed);
        let (status, body) = status_of(&router, "/readyz").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "not ready: APIs not loaded, store unreachable\n"),
            "no snapshot to serve from yet"
        );
        health.snapshot_loaded.store(true, Ordering::Relaxed);
        let (status, body) = status_of(&router, "/readyz").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "ready (store unreachable: serving the last snapshot)\n"),
            "a store outage after the first snapshot leaves the node ready"
        );
        health.store_reachable.store(true, Ordering::Relaxed);
        assert_eq!(status_of(&router, "/readyz").await, (StatusCode::OK, "ready\n".to_string()));
        draining.cancel();
        let (status, body) = status_of(&router, "/readyz").await;
        assert_eq!((status, body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "not ready: draining\n"));
        assert_eq!(status_of(&router, "/healthz").await.0, StatusCode::OK, "alive while draining");
        assert_eq!(status_of(&router, "/metrics").await.0, StatusCode::NOT_FOUND, "metrics off");
    }
}

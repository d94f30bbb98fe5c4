//! The HTTPS listener: TCP accept, TLS (tokio-rustls, the gateway's certificate), HTTP/1.1
//! (hyper via hyper-util) serving the axum router, and a graceful stop.
//!
//! axum's own `serve` speaks plain HTTP only, hence this loop. Every connection is tracked;
//! on shutdown the listener closes first, then each connection finishes the request it is
//! serving and closes (idle keep-alive connections close at once), within a deadline.
//!
//! Slow clients are bounded at every step: the TLS handshake and each request head must arrive
//! within `gateway.handshake_timeout`, a head may be at most [`limits::MAX_HEAD`], and each
//! request's body must have arrived within `handshake_timeout` of its head (else 408 and the
//! connection closes). Each request carries the peer's address as a [`ClientAddress`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use wsgate_core::config::Config;
use wsgate_store::Store;
use wsgate_tls::server::ReloadingCertificate;

use crate::keys::KeyManager;
use crate::limits::{self, ClientAddress, DeadlineBody};
use crate::routes;
use crate::state::{AppState, Shared};
use crate::{ControlError, fixed_issuer, issuer};

/// The control plane, bound and ready to run.
pub struct ControlPlane {
    /// `None` when `control.listen` is `"off"`: then `run` returns at once.
    listener: Option<TcpListener>,
    state: AppState,
    acceptor: TlsAcceptor,
    /// TLS handshake, each request head and each request body must arrive within this
    /// (`gateway.handshake_timeout`), so a slow client cannot hold a connection open for free.
    handshake_timeout: Duration,
    /// How long live requests get to finish on shutdown (`gateway.shutdown_timeout`).
    drain_timeout: Duration,
    /// `/metrics`, `/healthz`, `/readyz`, when the binary set them.
    ops: std::sync::OnceLock<crate::ops::Ops>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane").field("addr", &self.addr()).finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Binds `config.control.listen` with the listener certificate. The issuer of tokens is
    /// the store's (see [`crate::fixed_issuer`]): at a store's first start, `control.issuer`,
    /// else `https://localhost:<bound port>`.
    pub async fn bind(
        config: &Config,
        store: Arc<dyn Store>,
        certificate: Arc<ReloadingCertificate>,
    ) -> Result<ControlPlane, ControlError> {
        let listener = match config.control.listen_addr()? {
            Some(addr) => Some(Self::listen(addr).await?),
            None => None,
        };
        Self::on(config, store, certificate, listener).await
    }

    /// Binds `addr` as `control.listen`, or says why not and what to change.
    pub async fn listen(addr: SocketAddr) -> Result<TcpListener, ControlError> {
        TcpListener::bind(addr).await.map_err(|err| ControlError::Bind {
            addr,
            problem: wsgate_core::config::bind_problem("control.listen", addr, &err),
        })
    }

    /// The control plane on a listener bound already (`None`: no listener, `run` returns at
    /// once).
    pub async fn on(
        config: &Config,
        store: Arc<dyn Store>,
        certificate: Arc<ReloadingCertificate>,
        listener: Option<TcpListener>,
    ) -> Result<ControlPlane, ControlError> {
        let certificate_file = certificate.files().cert.clone();
        let acceptor = TlsAcceptor::from(wsgate_tls::server::server_config(certificate)?);
        let port = match &listener {
            Some(listener) => listener.local_addr().map(|a| a.port()).unwrap_or_default(),
            None => 9443,
        };
        let issuer = fixed_issuer(&*store, &config.control, &issuer(&config.control, port)).await?;
        let state = Shared::new(store, config, issuer).await?;
        let _ = state.own_certificate.set(certificate_file);
        Ok(ControlPlane {
            listener,
            state,
            acceptor,
            handshake_timeout: config.gateway.handshake_timeout,
            drain_timeout: config.gateway.shutdown_timeout,
            ops: std::sync::OnceLock::new(),
        })
    }

    pub fn addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The routes without the listener, for tests that drive them in memory.
    pub fn router(&self) -> Router {
        let router = routes::router(self.state.clone());
        match self.ops.get() {
            Some(ops) => crate::ops::router(ops.clone()).merge(router),
            None => router,
        }
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` from `ops` beside the rest. Only the first
    /// call counts.
    pub fn set_ops(&self, ops: crate::ops::Ops) {
        let _ = self.ops.set(ops);
    }

    /// Tells the portals where the gateway listens (`ws://host:port`, `wss://host:port`), for
    /// the invoke URLs and wscat commands they print. Without it they show the seeds'
    /// `ws://localhost:9099` and `wss://localhost:8099`. Only the first call counts.
    pub fn set_gateway_urls(&self, ws: Option<String>, wss: Option<String>) {
        let _ = self.state.gateway_urls.set(crate::portal::GatewayUrls { ws, wss });
    }

    /// Gives the usage pages and endpoints the gateway's counters. Only the first call counts.
    pub fn set_counters(&self, counters: std::sync::Arc<dyn wsgate_counters::Counters>) {
        let _ = self.state.counters.set(counters);
    }

    /// Gives the publisher's endpoint page and `GET /api/v1/apis/{id}/endpoints` the gateway's
    /// view of each API's endpoints. Only the first call counts.
    pub fn set_endpoint_health(&self, health: std::sync::Arc<dyn wsgate_core::upstream::EndpointHealth>) {
        let _ = self.state.endpoint_health.set(health);
    }

    /// The key manager this control plane signs with (for `wsgate demo`'s token).
    pub fn key_manager(&self) -> KeyManager {
        self.state.keys.clone()
    }

    /// Serves until `shutdown` is cancelled, then drains.
    pub async fn run(self, shutdown: CancellationToken) {
        let router = self.router();
        let Some(listener) = self.listener else { return };
        let connections = TaskTracker::new();
        loop {
            let (tcp, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %err, "control plane accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let connection = Connection {
                acceptor: self.acceptor.clone(),
                router: router.clone(),
                handshake_timeout: self.handshake_timeout,
            };
            connections.spawn(connection.serve(tcp, peer, shutdown.clone()));
        }
        drop(listener);
        connections.close();
        if tokio::time::timeout(self.drain_timeout, connections.wait()).await.is_err() {
            tracing::warn!(open = connections.len(), "control plane connections still open at the shutdown deadline");
        }
    }
}

struct Connection {
    acceptor: TlsAcceptor,
    router: Router,
    handshake_timeout: Duration,
}

impl Connection {
    async fn serve(self, tcp: TcpStream, peer: SocketAddr, shutdown: CancellationToken) {
        let tls = match tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => return tracing::debug!(%peer, error = %err, "control plane TLS handshake failed"),
            Err(_) => return tracing::debug!(%peer, "control plane TLS handshake timed out"),
        };
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(self.handshake_timeout).max_buf_size(limits::MAX_HEAD);
        let (router, body_timeout) = (self.router, self.handshake_timeout);
        let service = tower::service_fn(move |request: Request<Incoming>| {
            let (mut parts, body) = request.into_parts();
            parts.extensions.insert(ClientAddress(peer.ip()));
            let body = Body::new(DeadlineBody::new(body, body_timeout));
            router.clone().oneshot(Request::from_parts(parts, body))
        });
        let connection = builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
        let mut connection = std::pin::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(err) = result {
            tracing::debug!(%peer, error = %err, "control plane connection ended with an error");
        }
    }
}

//! The wsgate data plane: it accepts WebSocket clients, checks their upgrade, routes them to
//! an API's upstream, and relays frames unchanged in both directions.
//!
//! Modules, in the order a connection meets them:
//! - [`handshake`]: read and check the client's upgrade request.
//! - [`route`]: find the API by context and version.
//! - [`upstream`]: connect and upgrade to the API's endpoint.
//! - [`relay`]: frame-aware, payload-blind relay of both directions.
//! - [`rejection`]: every refusal before the upgrade, written as an HTTP response.
//! - `pipeline`: the one function that chains the steps; `access_log`: one event per connection.
//!
//! [`Gateway`] binds the listener and runs the accept loop; shutdown is an argument.

mod access_log;
pub mod handshake;
mod pipeline;
pub mod rejection;
pub mod relay;
pub mod route;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wsgate_core::config::{Config, ConfigError, GatewaySettings};

use relay::RelayLimits;
use route::RouteTable;
use upstream::{ClientInfo, UpstreamTimeouts};

/// Errors that stop the gateway from starting.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What every connection reads and nobody writes after start.
#[derive(Debug)]
pub(crate) struct Shared {
    pub settings: GatewaySettings,
    pub routes: RouteTable,
    pub relay_limits: RelayLimits,
    pub upstream_timeouts: UpstreamTimeouts,
}

/// A bound, not yet running gateway.
#[derive(Debug)]
pub struct Gateway {
    ws_listener: TcpListener,
    shared: Arc<Shared>,
}

impl Gateway {
    /// Validates `config` and binds the ws listener. Nothing is bound when the config is invalid.
    pub async fn bind(config: &Config) -> Result<Gateway, GatewayError> {
        config.validate()?;
        let settings = config.gateway.clone();
        let addr = settings.ws_listen_addr()?;
        let ws_listener = TcpListener::bind(addr)
            .await
            .map_err(|source| GatewayError::Bind { addr, source })?;
        let shared = Shared {
            relay_limits: RelayLimits {
                max_frame: settings.max_frame_size,
                max_message: settings.max_message_size,
                idle_timeout: settings.idle_timeout,
                close_timeout: settings.close_timeout,
            },
            upstream_timeouts: UpstreamTimeouts {
                connect: settings.connect_timeout,
                handshake: settings.upstream_handshake_timeout,
            },
            routes: RouteTable::new(&config.apis),
            settings,
        };
        Ok(Gateway {
            ws_listener,
            shared: Arc::new(shared),
        })
    }

    /// The address the ws listener is bound to (useful with port 0).
    pub fn ws_addr(&self) -> SocketAddr {
        self.ws_listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Accepts connections until `shutdown` is cancelled, then lets live connections close
    /// (1001 to both sides) for up to the configured shutdown timeout.
    pub async fn run(self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.ws_listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let info = ClientInfo {
                        addr,
                        proto: "http",
                    };
                    tracker.spawn(pipeline::serve_connection(
                        stream,
                        info,
                        self.shared.clone(),
                        shutdown.clone(),
                    ));
                }
                Err(err) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        drop(self.ws_listener);
        tracker.close();
        if tokio::time::timeout(self.shared.settings.shutdown_timeout, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                live = tracker.len(),
                "shutdown deadline passed with connections still open"
            );
        }
    }
}

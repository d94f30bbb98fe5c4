//! The upstream side of the handshake: pick an endpoint that is up, connect (trying another
//! on failure), wrap `wss://` in TLS, and make the upgrade exchange (`request`). What the gateway
//! learns about each endpoint on the way — failures for its circuit breaker, live connections for
//! least-connections balancing — goes to the long-lived endpoint table (`health`), which also
//! holds the active probes' verdicts (`probe`); `balance` orders the candidates.
//!
//! The gateway is the upstream's client: it sends its own `Sec-WebSocket-Key` and checks the
//! upstream's accept value against it, and computes the client's accept value itself, so that
//! neither side's proof of having read the handshake is borrowed from the other.

pub mod balance;
pub mod breaker;
pub mod health;
pub mod probe;
mod request;

use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;
use wsgate_core::upstream::DEFAULT_RETRIES;

pub use crate::conn::ClientInfo;
use crate::handshake::UpgradeRequest;
use crate::observe::metrics::Metrics;
use crate::policy::Admission;
use crate::rejection::Rejection;
use crate::route::Route;
pub(crate) use request::request_head;
use wsgate_core::config::{Endpoint, Scheme};

use balance::StickyKey;
use health::{EndpointLease, EndpointTable};

#[derive(Debug, Clone, Copy)]
pub struct UpstreamTimeouts {
    pub connect: Duration,
    pub handshake: Duration,
}

/// The upstream socket: plain for `ws://`, TLS for `wss://`. The TLS state is boxed so that
/// plain connections do not carry its size.
pub type UpstreamStream = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// An upgraded upstream connection.
#[derive(Debug)]
pub struct Upstream {
    pub stream: UpstreamStream,
    /// The 101 response to send to the client.
    pub response: Vec<u8>,
    /// Frame bytes the upstream sent right after its 101.
    pub early: Vec<u8>,
    /// Whether the 101 negotiated an extension (permessage-deflate): RSV bits then pass.
    pub extensions: bool,
    /// Counts the connection at its endpoint until dropped with it.
    pub lease: EndpointLease,
}

/// What `open` needs besides the connection: the gateway's defaults and its endpoint table.
#[derive(Debug, Clone, Copy)]
pub struct Upstreams<'a> {
    pub defaults: UpstreamTimeouts,
    pub table: &'a EndpointTable,
    pub metrics: Option<&'a Metrics>,
}

/// Picks the admitted route's endpoints in balancing order among those up, connects to the
/// first that accepts (at most `retries` more after a failed connect, each on another endpoint),
/// then makes the upgrade exchange with it. When every endpoint is suspended or down, the
/// client is answered 503 at once, without a connect attempt.
pub async fn open(
    admission: &Admission,
    request: &UpgradeRequest,
    client: ClientInfo,
    upstreams: Upstreams<'_>,
) -> Result<Upstream, Rejection> {
    let route = &admission.route;
    let api = &route.api;
    let settings = &api.settings;
    let timeouts = UpstreamTimeouts {
        connect: settings.connect_timeout.unwrap_or(upstreams.defaults.connect),
        handshake: settings.upstream_handshake_timeout.unwrap_or(upstreams.defaults.handshake),
    };
    let caller = admission.caller.as_deref();
    let endpoints = api.upstream(upstreams.table, upstreams.metrics);
    let key = StickyKey { application: caller.map(|c| c.application_id.as_str()), client: client.addr.ip() };
    let candidates = balance::order(endpoints, settings, key, Instant::now())
        .map_err(|retry_after| Rejection::UpstreamUnavailable { retry_after })?;
    let mut attempts_left = 1 + settings.retries.unwrap_or(DEFAULT_RETRIES);
    let mut last_error = None;
    for index in candidates {
        if attempts_left == 0 {
            break;
        }
        // Another connection may have taken a half-open endpoint's one trial meanwhile.
        let Some(attempt) = endpoints.states[index].begin(Instant::now()) else { continue };
        attempts_left -= 1;
        let endpoint = &api.endpoints[index];
        let tcp = match connect(endpoint, timeouts.connect).await {
            Ok(tcp) => tcp,
            Err(rejection) => {
                attempt.failed(&rejection);
                last_error = Some(rejection.at(endpoint));
                continue;
            }
        };
        // TLS and the upgrade share one deadline: together they are the upstream's answer.
        let handshake = async {
            let stream = secure(tcp, endpoint, route).await?;
            request::upgrade(stream, endpoint, route, request, client, caller).await
        };
        let answer = tokio::time::timeout(timeouts.handshake, handshake)
            .await
            .unwrap_or(Err(Rejection::UpstreamHandshakeTimeout));
        // The upgrade is not retried: the endpoint was reached, and the request may have acted.
        return match answer {
            Ok(parts) => Ok(parts.into_upstream(attempt.succeeded())),
            Err(rejection) if endpoint_at_fault(&rejection) => {
                attempt.failed(&rejection);
                Err(rejection.at(endpoint))
            }
            Err(rejection) => {
                drop(attempt.succeeded());
                Err(rejection.at(endpoint))
            }
        };
    }
    // Every candidate's trial was taken by other connections: none is available right now.
    Err(last_error.unwrap_or(Rejection::UpstreamUnavailable { retry_after: Duration::from_secs(1) }))
}

/// Whether a failed exchange counts against the endpoint's breaker: it did not answer, could
/// not speak TLS or WebSocket, or answered a server error. A 4xx is the client's business.
fn endpoint_at_fault(rejection: &Rejection) -> bool {
    match rejection {
        Rejection::UpstreamDeclined { status, .. } => *status >= 500,
        _ => true,
    }
}

/// Wraps the TCP stream in TLS for `wss://` endpoints, verifying the certificate for the
/// endpoint's host name (SNI) as the API's TLS settings say.
async fn secure(tcp: TcpStream, endpoint: &Endpoint, route: &Route) -> Result<UpstreamStream, Rejection> {
    if endpoint.scheme == Scheme::Ws {
        return Ok(Either::Left(tcp));
    }
    let Some(config) = &route.api.tls else {
        return Err(Rejection::UpstreamTlsFailed("no TLS settings for this API".into()));
    };
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|_| Rejection::UpstreamTlsFailed(format!("\"{}\" is not a valid TLS server name", endpoint.host)))?;
    match TlsConnector::from(config.clone()).connect(name, tcp).await {
        Ok(tls) => Ok(Either::Right(Box::new(tls))),
        Err(err) => {
            Err(Rejection::UpstreamTlsFailed(wsgate_tls::failure::describe(&err, &endpoint.host, endpoint.port)))
        }
    }
}

async fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<TcpStream, Rejection> {
    let connecting = TcpStream::connect((endpoint.host.as_str(), endpoint.port));
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => Err(Rejection::UpstreamConnectTimeout),
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => Err(Rejection::UpstreamRefused),
        Ok(Err(_)) => Err(Rejection::UpstreamUnreachable),
        Ok(Ok(stream)) => {
            // Frames are small and latency matters more than packet count.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
    }
}

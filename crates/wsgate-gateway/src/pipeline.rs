//! The life of one connection, top to bottom. Each step takes what the previous one learned
//! and returns a small named value; detail lives in the step's module.
//!
//! Two phases with different lifetimes: `upgrade` (short, large state: buffers, headers, TLS
//! handshakes) runs boxed and is freed when it returns the ready relay; the relay (long, small
//! state) is all an open connection keeps.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use wsgate_core::config::AuthMode;

use crate::rejection::Rejection;
use crate::relay::{self, RelayConfig, RelayReport};
use crate::route::Route;
use crate::upstream::{self, ClientInfo};
use crate::{Shared, access_log, handshake, tls};

/// Handles one connection accepted on the wss listener: TLS first, then as any other.
pub async fn serve_tls_connection(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    info: ClientInfo,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    match Box::pin(tls::accept(tcp, &acceptor, shared.settings.handshake_timeout)).await {
        Ok(client) => serve_connection(client, info, shared, shutdown).await,
        Err(rejection) => access_log::refused(&info, None, started, &rejection),
    }
}

/// Handles one client connection, plain or already decrypted, until it ends.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    client: S,
    info: ClientInfo,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let Some((route, relay)) = Box::pin(upgrade(client, info, &shared, shutdown, started)).await else {
        return;
    };
    // 5. Relay frames until both sides close.
    let report = relay.await;
    access_log::upgraded(&info, &route, started, &report);
}

/// Steps 1–4: from the first byte of the request to the client's 101. Every failure here is
/// answered with an HTTP status and logged; success returns the relay, ready to run.
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    info: ClientInfo,
    shared: &Shared,
    shutdown: CancellationToken,
    started: Instant,
) -> Option<(Route, impl Future<Output = RelayReport> + use<S>)> {
    let settings = &shared.settings;
    // 1. The upgrade request, within the handshake time and size limits (slow clients cannot
    //    hold a slot).
    let head = match tokio::time::timeout(
        settings.handshake_timeout,
        handshake::read_head(&mut client, settings.max_header_size),
    )
    .await
    {
        Ok(Ok(head)) => head,
        Ok(Err(rejection)) => return refuse(client, info, None, rejection, started).await,
        Err(_) => return refuse(client, info, None, Rejection::HandshakeTimeout, started).await,
    };
    // 2. Route before judging the upgrade, so an unknown path is a 404 whatever its method.
    let route = match handshake::check_target(&head)
        .and_then(|()| shared.snapshot.current().routes.resolve(&head.target).ok_or(Rejection::NoRoute))
    {
        Ok(route) => route,
        Err(rejection) => return refuse(client, info, None, rejection, started).await,
    };
    // 3. The request must be a valid WebSocket upgrade before anything goes upstream.
    let request = match handshake::check_upgrade(head) {
        Ok(request) => request,
        Err(rejection) => return refuse(client, info, Some(&route), rejection, started).await,
    };
    // 3b. Access: OAuth2 APIs need token checks, which this build does not have yet; they are
    //     refused rather than served open.
    if route.api.auth == AuthMode::Oauth2 {
        return refuse(client, info, Some(&route), Rejection::TokenChecksUnavailable, started).await;
    }
    // 4. Upstream: connect, upgrade, verify its 101. The client's upgrade is answered last, so
    //    every failure before it is still an HTTP status.
    let upstream = match upstream::open(&route, &request, info, shared.upstream_timeouts).await {
        Ok(upstream) => upstream,
        Err(rejection) => return refuse(client, info, Some(&route), rejection, started).await,
    };
    client.write_all(&upstream.response).await.ok()?;
    let config = RelayConfig { extensions: upstream.extensions, ..shared.relay_limits };
    let relay = relay::relay(client, upstream.stream, &request.head.early, &upstream.early, config, shutdown);
    Some((route, relay))
}

/// Answers a refused handshake; always `None`, so steps can `return refuse(…)`.
async fn refuse<S: AsyncWrite + Unpin, T>(
    mut client: S,
    info: ClientInfo,
    route: Option<&Route>,
    rejection: Rejection,
    started: Instant,
) -> Option<T> {
    access_log::refused(&info, route, started, &rejection);
    rejection.send(&mut client).await;
    None
}

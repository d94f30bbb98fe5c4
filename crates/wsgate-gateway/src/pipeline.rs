//! The life of one connection, top to bottom. Each step takes what the previous one learned
//! and returns a small named value; detail lives in the step's module.

use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::rejection::Rejection;
use crate::relay::{self, RelayConfig};
use crate::route::Route;
use crate::upstream::{self, ClientInfo};
use crate::{Shared, access_log};
use crate::{handshake, tls};

/// Handles one connection accepted on the wss listener: TLS first, then as any other.
pub async fn serve_tls_connection(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    info: ClientInfo,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    match tls::accept(tcp, &acceptor, shared.settings.handshake_timeout).await {
        Ok(client) => serve_connection(client, info, shared, shutdown).await,
        Err(rejection) => access_log::refused(&info, None, started, &rejection),
    }
}

/// Handles one client connection, plain or already decrypted, until it ends.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    info: ClientInfo,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
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
        .and_then(|()| shared.routes.resolve(&head.target).ok_or(Rejection::NoRoute))
    {
        Ok(route) => route,
        Err(rejection) => return refuse(client, info, None, rejection, started).await,
    };
    // 3. The request must be a valid WebSocket upgrade before anything goes upstream.
    let request = match handshake::check_upgrade(head) {
        Ok(request) => request,
        Err(rejection) => return refuse(client, info, Some(&route), rejection, started).await,
    };
    // 4. Upstream: connect, upgrade, verify its 101. The client's upgrade is answered last, so
    //    every failure before it is still an HTTP status.
    let upstream = match upstream::open(&route, &request, info, shared.upstream_timeouts).await {
        Ok(upstream) => upstream,
        Err(rejection) => return refuse(client, info, Some(&route), rejection, started).await,
    };
    if client.write_all(&upstream.response).await.is_err() {
        return;
    }
    // 5. Relay frames until both sides close.
    let report = relay::relay(
        client,
        upstream.stream,
        &request.head.early,
        &upstream.early,
        RelayConfig { extensions: upstream.extensions, ..shared.relay_limits },
        shutdown,
    )
    .await;
    access_log::upgraded(&info, &route, started, &report);
}

async fn refuse<S: AsyncWrite + Unpin>(
    mut client: S,
    info: ClientInfo,
    route: Option<&Route>,
    rejection: Rejection,
    started: Instant,
) {
    access_log::refused(&info, route, started, &rejection);
    rejection.send(&mut client).await;
}

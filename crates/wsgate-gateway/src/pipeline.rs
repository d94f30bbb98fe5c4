//! The life of one connection, top to bottom. Each step takes what the previous one learned
//! and returns a small named value; detail lives in the step's module.
//!
//! Two phases with different lifetimes: `upgrade` (short, large state: buffers, headers, TLS
//! handshakes) runs boxed and is freed when it returns the ready relay; the relay (long, small
//! state) is all an open connection keeps.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use wsgate_core::config::{AuthMode, GatewaySettings};

use crate::auth::{self, Principal};
use crate::handshake::UpgradeRequest;
use crate::idp::Providers;
use crate::registry::Registration;
use crate::rejection::Rejection;
use crate::relay::stop::StopSignal;
use crate::relay::{self, RelayConfig, RelayReport};
use crate::route::Route;
use crate::snapshot::{Snapshot, unix_now};
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
    // Destructured in place: a bound-then-moved value would keep its own slot in this future.
    let Some(Upgraded { route, caller, relay, _registration }) =
        Box::pin(upgrade(client, info, &shared, shutdown, started)).await
    else {
        return;
    };
    // 5. Relay frames until both sides close (or the registry stops it: `_registration`
    //    keeps the connection reachable by revocations until then).
    let report = relay.await;
    access_log::upgraded(&info, &route, caller.as_deref(), started, &report);
}

/// What a successful upgrade hands to the relay phase.
struct Upgraded<R> {
    route: Route,
    /// Boxed: most of its bytes are only read once, by the access log at the end.
    caller: Option<Box<Principal>>,
    relay: R,
    _registration: Option<Registration>,
}

/// Steps 1–4: from the first byte of the request to the client's 101. Every failure here is
/// answered with an HTTP status and logged; success returns the relay, ready to run.
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    info: ClientInfo,
    shared: &Shared,
    shutdown: CancellationToken,
    started: Instant,
) -> Option<Upgraded<impl Future<Output = RelayReport> + use<S>>> {
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
        Ok(Err(rejection)) => return refuse(client, settings, info, None, rejection, started).await,
        Err(_) => return refuse(client, settings, info, None, Rejection::HandshakeTimeout, started).await,
    };
    // 2. Route before judging the upgrade, so an unknown path is a 404 whatever its method.
    //    One snapshot serves routing and access checks, so they agree.
    let snapshot = shared.snapshot.current();
    let mut route = match handshake::check_target(&head)
        .and_then(|()| snapshot.routes.resolve(&head.target).ok_or(Rejection::NoRoute))
    {
        Ok(route) => route,
        Err(rejection) => return refuse(client, settings, info, None, rejection, started).await,
    };
    // 3. The request must be a valid WebSocket upgrade before anything goes upstream.
    let request = match handshake::check_upgrade(head) {
        Ok(request) => request,
        Err(rejection) => return refuse(client, settings, info, Some(&route), rejection, started).await,
    };
    // 3b. Access: a blocked API refuses everyone; an OAuth2 API needs a valid token of an
    //     application subscribed to it. The token never goes upstream.
    let principal = match access(&request, &route, &snapshot, &shared.providers).await {
        Ok(principal) => principal,
        Err(rejection) => return refuse(client, settings, info, Some(&route), rejection, started).await,
    };
    route.rest = auth::without_access_token(&route.rest);
    // 4. Upstream: connect, upgrade, verify its 101. The client's upgrade is answered last, so
    //    every failure before it is still an HTTP status.
    let upstream = match upstream::open(&route, &request, info, principal.as_ref(), shared.upstream_timeouts).await {
        Ok(upstream) => upstream,
        Err(rejection) => return refuse(client, settings, info, Some(&route), rejection, started).await,
    };
    // Written within the handshake time too: a client that never reads cannot hold the slot.
    match tokio::time::timeout(settings.handshake_timeout, client.write_all(&upstream.response)).await {
        Ok(Ok(())) => {}
        _ => {
            access_log::refused(&info, Some(&route), started, &Rejection::ResponseNotTaken);
            return None;
        }
    }
    let config = RelayConfig { extensions: upstream.extensions, ..shared.relay_limits };
    let stop = StopSignal::new(&shutdown);
    let (registration, expires) = match (&principal, &route.api.managed) {
        (Some(principal), Some(managed)) => {
            let registration = shared.registry.register(principal, &managed.id, stop.clone());
            let left = Duration::from_secs(u64::try_from(principal.valid_until() - unix_now()).unwrap_or(0));
            (Some(registration), managed.close_on_token_expiry.then(|| tokio::time::Instant::now() + left))
        }
        _ => (None, None),
    };
    let relay = relay::relay(client, upstream.stream, &request.head.early, &upstream.early, config, stop, expires);
    Some(Upgraded { route, caller: principal.map(Box::new), relay, _registration: registration })
}

/// Who may pass: `None` for a keyless API, the token's principal for an OAuth2 one.
async fn access(
    request: &UpgradeRequest,
    route: &Route,
    snapshot: &Snapshot,
    providers: &Providers,
) -> Result<Option<Principal>, Rejection> {
    let managed = route.api.managed.as_ref();
    if managed.is_some_and(|m| m.blocked) {
        return Err(Rejection::ApiBlocked);
    }
    match (route.api.auth, managed) {
        (AuthMode::None, _) => Ok(None),
        (AuthMode::Oauth2, Some(managed)) => {
            auth::authenticate(&request.head, managed, &snapshot.access, providers, unix_now()).await.map(Some)
        }
        // Config validation keeps file APIs keyless; refuse rather than serve open if one slips by.
        (AuthMode::Oauth2, None) => Err(Rejection::InvalidToken("no token issuer for this API")),
    }
}

/// Answers a refused handshake within the handshake time; always `None`, so steps can
/// `return refuse(…)`.
async fn refuse<S: AsyncWrite + Unpin, T>(
    mut client: S,
    settings: &GatewaySettings,
    info: ClientInfo,
    route: Option<&Route>,
    rejection: Rejection,
    started: Instant,
) -> Option<T> {
    access_log::refused(&info, route, started, &rejection);
    rejection.send(&mut client, settings.handshake_timeout).await;
    None
}

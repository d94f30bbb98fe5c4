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
use wsgate_core::config::AuthMode;

use crate::auth::{self, Principal};
use crate::conn::{ClientInfo, ConnCtx};
use crate::handshake::UpgradeRequest;
use crate::idp::Providers;
use crate::observe::Watch;
use crate::policy::{self, Admission};
use crate::registry::Registration;
use crate::rejection::Rejection;
use crate::relay::{self, Metering, RelayConfig, RelayReport, Sockets};
use crate::route::Route;
use crate::snapshot::{Snapshot, unix_now};
use crate::{Shared, handshake, tls, upstream};

/// Handles one connection accepted on the wss listener: TLS first, then as any other.
pub async fn serve_tls_connection(tcp: TcpStream, acceptor: TlsAcceptor, info: ClientInfo, shared: Arc<Shared>) {
    let ctx = shared.context(info);
    match Box::pin(tls::accept(tcp, &acceptor, shared.settings.handshake_timeout)).await {
        Ok(client) => serve(client, ctx, shared).await,
        Err(rejection) => shared.observe.refused(&ctx, None, &rejection),
    }
}

/// Answers a connection the caps have no room for (`crate::caps`): on the plain listener the
/// refusal is written if the socket takes it at once and the request is drained for a moment
/// (closing with unread bytes would reset the connection before the client reads the answer);
/// on the TLS listener the socket is just closed.
pub async fn refuse_at_accept(
    tcp: TcpStream,
    info: ClientInfo,
    shared: Arc<Shared>,
    rejection: Rejection,
    answer: bool,
) {
    let ctx = shared.context(info);
    shared.observe.refused(&ctx, None, &rejection);
    if !answer || tcp.try_write(&rejection.to_response()).is_err() {
        return;
    }
    let mut tcp = tcp;
    let _ = tcp.shutdown().await;
    let mut sink = [0u8; 512];
    let drain = async { while matches!(tokio::io::AsyncReadExt::read(&mut tcp, &mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
}

/// Handles one client connection, plain or already decrypted, until it ends.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(client: S, info: ClientInfo, shared: Arc<Shared>) {
    let ctx = shared.context(info);
    serve(client, ctx, shared).await
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(client: S, ctx: ConnCtx, shared: Arc<Shared>) {
    // Destructured in place: a bound-then-moved value would keep its own slot in this future.
    let Some(Upgraded { about, relay, _registration }) = Box::pin(upgrade(client, ctx, &shared)).await else {
        return;
    };
    // 6. Relay frames until both sides close (or the registry stops it: `_registration` keeps
    //    the connection reachable by revocations, limit changes and shutdown until then).
    let report = relay.await;
    let About { ctx, admission, watch, .. } = &*about;
    shared.observe.relayed(ctx, admission, watch, &report);
}

/// What a successful upgrade hands to the relay phase.
struct Upgraded<R> {
    /// Boxed: read once, by the access log at the end; meanwhile the admission holds the
    /// connection's slots under its caps.
    about: Box<About>,
    relay: R,
    _registration: Registration,
}

struct About {
    ctx: ConnCtx,
    admission: Admission,
    /// Its published counts and the handles its outcome is reported with.
    watch: Watch,
    /// Counts the connection at its upstream endpoint until it ends.
    _endpoint: upstream::health::EndpointLease,
}

/// Steps 1–5: from the first byte of the request to the client's 101. Every failure here is
/// answered with an HTTP status and logged; success returns the relay, ready to run.
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    ctx: ConnCtx,
    shared: &Shared,
) -> Option<Upgraded<impl Future<Output = RelayReport> + use<S>>> {
    let ctx = &ctx;
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
        Ok(Err(rejection)) => return refuse(client, shared, ctx, None, rejection).await,
        Err(_) => return refuse(client, shared, ctx, None, Rejection::HandshakeTimeout).await,
    };
    // 2. Route before judging the upgrade, so an unknown path is a 404 whatever its method.
    //    One snapshot serves routing, access and limits, so they agree.
    let snapshot = shared.snapshot.current();
    let route = match handshake::check_target(&head).and_then(|()| {
        snapshot.routes.resolve(&head.target).ok_or_else(|| {
            // A known context with an unknown version says which versions it has.
            snapshot.routes.known_context(&head.target).map_or(Rejection::NoRoute, Rejection::UnknownVersion)
        })
    }) {
        Ok(route) => route,
        Err(rejection) => return refuse(client, shared, ctx, None, rejection).await,
    };
    // 3. The request must be a valid WebSocket upgrade before anything goes upstream.
    let request = match handshake::check_upgrade(head) {
        Ok(request) => request,
        Err(rejection) => return refuse(client, shared, ctx, Some(&route), rejection).await,
    };
    // 3b. A browser page of another site must not ride on its visitor's credentials (cross-site
    //     WebSocket hijacking): the API's Origin allow-list is checked before anything else.
    if !origin_passes(&route, &request) {
        return refuse(client, shared, ctx, Some(&route), Rejection::OriginNotAllowed).await;
    }
    // 4. Who is calling: a blocked API refuses everyone; an OAuth2 API needs a valid token of
    //    an application subscribed to it.
    let caller = match authenticate(&request, &route, &snapshot, &shared.providers).await {
        Ok(caller) => caller,
        Err(rejection) => return refuse(client, shared, ctx, Some(&route), rejection).await,
    };
    // 4b. What they may do: connection caps and rates of their plans, before anything goes
    //     upstream. The admission drops the token from the target.
    let admission =
        match policy::admit(route.clone(), caller, &snapshot, ctx.client.addr.ip(), shared.counters.as_ref()).await {
            Ok(admission) => admission,
            Err(rejection) => return refuse(client, shared, ctx, Some(&route), rejection).await,
        };
    drop(snapshot);
    // 5. Upstream: connect, upgrade, verify its 101. The client's upgrade is answered last, so
    //    every failure before it is still an HTTP status.
    let upstreams = upstream::Upstreams {
        defaults: shared.upstream_timeouts,
        table: &shared.endpoints,
        metrics: shared.observe.metrics.get(),
    };
    let upstream = match upstream::open(&admission, &request, ctx.client, upstreams).await {
        Ok(upstream) => upstream,
        Err(rejection) => return refuse(client, shared, ctx, Some(&admission.route), rejection).await,
    };
    // Written within the handshake time too: a client that never reads cannot hold the slot.
    match tokio::time::timeout(settings.handshake_timeout, client.write_all(&upstream.response)).await {
        Ok(Ok(())) => {}
        _ => {
            shared.observe.refused(ctx, Some(&admission.route), &Rejection::ResponseNotTaken);
            return None;
        }
    }
    // The gateway's relay settings with the API's own over them, resolved once here.
    let config =
        RelayConfig { extensions: upstream.extensions, ..shared.relay_limits.for_api(&admission.route.api.settings) };
    let watch = shared.observe.upgraded(ctx, &admission);
    let live = watch.live.clone();
    let registration = shared.registry.register(&admission, ctx.client.addr.ip(), live.clone(), watch.session());
    let expires = match (&admission.caller, &admission.route.api.managed) {
        (Some(caller), Some(managed)) if managed.close_on_token_expiry => {
            let left = Duration::from_secs(u64::try_from(caller.valid_until() - unix_now()).unwrap_or(0));
            Some(tokio::time::Instant::now() + left)
        }
        _ => None,
    };
    let metering = Metering { limits: admission.limits.clone(), counters: shared.counters.clone() };
    let sockets = Sockets {
        client,
        upstream: upstream.stream,
        client_early: &request.head.early,
        upstream_early: &upstream.early,
    };
    let relay = relay::relay(sockets, config, live, metering, expires);
    let about = About { ctx: *ctx, admission, watch, _endpoint: upstream.lease };
    Some(Upgraded { about: Box::new(about), relay, _registration: registration })
}

/// Whether the request's `Origin` is one the API allows (see `wsgate_core::upstream::origin_allowed`).
/// Two `Origin` headers are never allowed by a list: which one counts would depend on the
/// reader.
fn origin_passes(route: &Route, request: &UpgradeRequest) -> bool {
    let allowed = &route.api.allowed_origins;
    if allowed.is_empty() {
        return true;
    }
    let mut origins = request.head.values("origin");
    let first = origins.next();
    origins.next().is_none() && wsgate_core::upstream::origin_allowed(allowed, first)
}

/// Who may pass: `None` for a keyless API, the token's principal for an OAuth2 one.
async fn authenticate(
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
    shared: &Shared,
    ctx: &ConnCtx,
    route: Option<&Route>,
    rejection: Rejection,
) -> Option<T> {
    shared.observe.refused(ctx, route, &rejection);
    rejection.send(&mut client, shared.settings.handshake_timeout).await;
    None
}

impl Shared {
    /// The context of a connection accepted now.
    fn context(&self, client: ClientInfo) -> ConnCtx {
        let id = self.next_connection.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ConnCtx { id, started: Instant::now(), client }
    }
}

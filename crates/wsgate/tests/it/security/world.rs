//! The world a security test runs in: an SQLite store in a fresh directory, a control plane over
//! it (admin bootstrapped), a gateway following the store with the control plane's issuer (ws
//! and wss listeners), and an echo upstream, all on `127.0.0.1:0`.
//!
//! ```text
//! let world = world().start().await;
//! let api = world.api("/chat").published().await;
//! let app = world.application("Chat").await;
//! world.subscribe(&app, &api).await;
//! let token = world.token(&app).await;
//! let mut socket = world.connect(&api, &token).await;
//! world.revoke(&app, &token).await;
//! assert_eq!(socket.closed_by(deadline).await, (Some(1008), "token revoked".into()));
//! ```
//!
//! Every write goes through the control plane's REST API or OAuth2 endpoints, as a user's
//! would; the gateway learns of it from the store's change feed, a moment later. Sentences that
//! need the gateway to have caught up say so and wait for it (bounded by [`STEP`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wsgate_core::config::Config;
use wsgate_gateway::Gateway;

use super::socket::{Socket, attempt, eventually};
use crate::control::harness::{Control, Scratch, Session, With, control};
use crate::harness::gateway::{Echo, echo_upstream};
use crate::harness::raw::Head;
use crate::harness::{STEP, within};

/// An external identity provider the gateway is configured to trust.
pub struct TrustedProvider {
    pub issuer: String,
    pub jwks_url: String,
    /// The CA bundle that verifies `jwks_url` (the provider's own self-signed certificate).
    pub ca_file: PathBuf,
}

#[derive(Default)]
pub struct WorldBuilder {
    token_ttl: Option<Duration>,
    providers: Vec<TrustedProvider>,
    metrics: bool,
}

pub fn world() -> WorldBuilder {
    WorldBuilder::default()
}

impl WorldBuilder {
    /// `[control] token_ttl`: how long the control plane's access tokens live.
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = Some(ttl);
        self
    }

    /// Adds an `[[identity_providers]]` entry, refetching its JWKS at most once a second.
    pub fn trusting(mut self, provider: TrustedProvider) -> Self {
        self.providers.push(provider);
        self
    }

    /// The gateway records Prometheus metrics, as `wsgate serve` wires them; [`World::metrics`]
    /// renders them.
    pub fn with_metrics(mut self) -> Self {
        self.metrics = true;
        self
    }

    pub async fn start(self) -> World {
        let dir = Scratch::new("security");
        let toml = gateway_toml(&dir.0, &self.providers);
        let config = Config::from_toml(&toml).unwrap_or_else(|err| panic!("test config is valid ({err:?}):\n{toml}"));
        let mut gateway = within(STEP, "the gateway binds", Gateway::bind(&config))
            .await
            .unwrap_or_else(|err| panic!("the gateway binds: {err:?}"));
        let metrics = self.metrics.then(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            gateway.set_metrics(std::sync::Arc::new(recorder), false);
            handle
        });
        // The control plane shows usage from the gateway's own counters, as `wsgate serve` wires it.
        let mut plane = control().counters(gateway.counters());
        for provider in &self.providers {
            plane = plane.trusting_issuer(&provider.issuer);
        }
        if let Some(ttl) = self.token_ttl {
            plane = plane.token_ttl(ttl);
        }
        let control = plane.start().await;
        let admin = control.admin().await;
        let shutdown = CancellationToken::new();
        within(STEP, "the gateway loads the store", async {
            gateway.follow_store(control.store.clone(), Vec::new(), Some(control.issuer()), shutdown.clone()).await
        })
        .await
        .expect("the gateway loads the store");
        let ws = gateway.ws_addr().expect("the ws listener is on");
        let wss = gateway.wss_addr().expect("the wss listener is on");
        let snapshots = gateway.snapshots();
        tokio::spawn(gateway.run(shutdown.clone()));
        let echo = echo_upstream().await;
        World { control, admin, ws, wss, echo, snapshots, metrics, shutdown, _dir: dir }
    }
}

/// The gateway's config file: both listeners on free ports, its generated certificate in the
/// world's directory, and the trusted identity providers.
fn gateway_toml(dir: &Path, providers: &[TrustedProvider]) -> String {
    let mut toml = format!(
        "[gateway]\nws_listen = \"127.0.0.1:0\"\nwss_listen = \"127.0.0.1:0\"\ndata_dir = {dir:?}\n\
         shutdown_timeout = \"2s\"\n"
    );
    for provider in providers {
        toml.push_str(&format!(
            "\n[[identity_providers]]\nissuer = {:?}\njwks_url = {:?}\nca_file = {:?}\njwks_refresh_interval = \"1s\"\n",
            provider.issuer, provider.jwks_url, provider.ca_file
        ));
    }
    toml
}

/// A running world; dropping it stops the gateway, the control plane and the echo.
pub struct World {
    pub control: Control,
    /// The bootstrapped admin: creator, publisher and subscriber at once.
    pub admin: Session,
    ws: SocketAddr,
    wss: SocketAddr,
    pub echo: Echo,
    /// The gateway's snapshot as it is swapped.
    pub snapshots: wsgate_gateway::snapshot::SnapshotHandle,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    shutdown: CancellationToken,
    _dir: Scratch,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A published (or merely created) API: its record id and the path that reaches it.
#[derive(Debug, Clone)]
pub struct Api {
    pub id: String,
    /// `/context/1.0.0`: the version in canonical form, as the seeds write it.
    pub path: String,
}

/// An application with its client credentials.
#[derive(Debug, Clone)]
pub struct App {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub secret: String,
}

impl App {
    /// HTTP Basic credentials of its OAuth2 client.
    pub fn basic(&self) -> Vec<(String, String)> {
        let encoded = STANDARD.encode(format!("{}:{}", self.client_id, self.secret));
        vec![("authorization".to_string(), format!("Basic {encoded}"))]
    }
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
}

/// An API under construction: EchoWebSocket-like, version 1.0, plans Gold and Silver, OAuth2,
/// relaying to the world's echo.
pub struct ApiBuilder<'w> {
    world: &'w World,
    body: Value,
}

impl ApiBuilder<'_> {
    /// Sets any field of the API's REST body (`plans`, `api_plan`, `auth`, …).
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.body = self.body.with(key, value);
        self
    }

    pub fn named(mut self, name: &str) -> Self {
        self.body = self.body.with("name", json!(name));
        self
    }

    pub fn endpoint(mut self, url: &str) -> Self {
        self.body = self.body.with("endpoints", json!([url]));
        self
    }

    /// Scopes a token must carry to use the API.
    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.body = self.body.with("scopes", json!(scopes));
        self
    }

    /// `"close_on_token_expiry": false`.
    pub fn keeping_connections_past_token_expiry(mut self) -> Self {
        self.body = self.body.with("close_on_token_expiry", json!(false));
        self
    }

    /// Created, not published: the gateway does not route it.
    pub async fn created(self) -> Api {
        let record = self.world.admin.post("/api/v1/apis", self.body.clone()).await.expect(201);
        api_of(&record, &self.body)
    }

    /// A keyless API, created and published in one step; returns once the gateway routes it (a
    /// plain GET gets 426, "upgrade required", rather than 404). Nothing upgrades meanwhile, so
    /// no connection limit is spent.
    pub async fn published_keyless(self) -> Api {
        let body = self.body.with("auth", json!("none")).with("publish", json!(true));
        let record = self.world.admin.post("/api/v1/apis", body.clone()).await.expect(201);
        let api = api_of(&record, &body);
        let (addr, path) = (self.world.ws, api.path.clone());
        eventually(&format!("{path} is routed"), || {
            let path = path.clone();
            async move {
                let mut raw = crate::harness::RawClient::connect(addr).await;
                raw.send(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await;
                let status = raw.read_response_head().await.status();
                if status == 426 { Ok(()) } else { Err(status.to_string()) }
            }
        })
        .await;
        api
    }

    /// Created and published in one step; returns once the gateway routes it (a request without
    /// a token gets 401 rather than 404).
    pub async fn published(self) -> Api {
        let body = self.body.with("publish", json!(true));
        let record = self.world.admin.post("/api/v1/apis", body.clone()).await.expect(201);
        let api = api_of(&record, &body);
        self.world.until_answered(&api.path, &[], 401).await;
        api
    }
}

fn api_of(record: &Value, body: &Value) -> Api {
    let context = body["context"].as_str().expect("context");
    Api { id: record["id"].as_str().expect("id").to_string(), path: format!("{context}/1.0.0") }
}

/// Creates an application as `owner` on `control` and generates its client credentials.
pub async fn create_application(owner: &Session, name: &str) -> App {
    let app = owner.post("/api/v1/applications", json!({ "name": name })).await.expect(201);
    let id = app["id"].as_str().expect("id").to_string();
    let keys = owner.post(&format!("/api/v1/applications/{id}/keys"), json!({})).await.expect(201);
    App {
        id,
        name: name.to_string(),
        client_id: keys["client_id"].as_str().expect("client_id").to_string(),
        secret: keys["client_secret"].as_str().expect("client_secret").to_string(),
    }
}

/// A token from `control`'s `/oauth2/token`, client-credentials grant, as a script would get it.
pub async fn client_credentials_token(control: &Control, app: &App) -> String {
    let grant = [("grant_type", "client_credentials")];
    let answer = control.http.post_form("/oauth2/token", app.basic(), &grant).await.expect(200);
    answer["access_token"].as_str().expect("access_token").to_string()
}

/// What to put in the `Authorization` header for `token`.
pub fn bearer(token: &str) -> Vec<(String, String)> {
    vec![("Authorization".to_string(), format!("Bearer {token}"))]
}

impl World {
    pub fn api(&self, context: &str) -> ApiBuilder<'_> {
        let body = json!({
            "name": context.trim_start_matches('/'),
            "context": context,
            "version": "1.0",
            "endpoints": [self.echo.url()],
            "plans": ["Gold", "Silver"],
        });
        ApiBuilder { world: self, body }
    }

    pub async fn application(&self, name: &str) -> App {
        create_application(&self.admin, name).await
    }

    /// Subscribes `app` to `api` with the Gold plan.
    pub async fn subscribe(&self, app: &App, api: &Api) -> Subscription {
        self.subscribe_with_plan(app, api, "Gold").await
    }

    /// Subscribes `app` to `api` with `plan`; returns once the gateway's snapshot holds the
    /// subscription (under load the change feed takes a moment, and a connection opened before
    /// would be a 403 "not subscribed").
    pub async fn subscribe_with_plan(&self, app: &App, api: &Api, plan: &str) -> Subscription {
        let body = json!({ "application_id": app.id, "api_id": api.id, "plan": plan });
        let subscription = self.admin.post("/api/v1/subscriptions", body).await.expect(201);
        let id = subscription["id"].as_str().expect("id").to_string();
        let key = (app.id.clone(), api.id.clone());
        eventually("the gateway knows the subscription", || {
            let known = self.snapshots.current().access.subscriptions.get(&key).map(|s| s.id.clone());
            let id = id.clone();
            async move { if known.as_deref() == Some(id.as_str()) { Ok(()) } else { Err(format!("{known:?}")) } }
        })
        .await;
        Subscription { id }
    }

    /// A token minted through the REST API (`POST /api/v1/applications/{id}/token`).
    pub async fn token(&self, app: &App) -> String {
        self.token_with_scope(app, "").await
    }

    pub async fn token_with_scope(&self, app: &App, scope: &str) -> String {
        let path = format!("/api/v1/applications/{}/token", app.id);
        let answer = self.admin.post(&path, json!({ "scope": scope })).await.expect(200);
        answer["access_token"].as_str().expect("access_token").to_string()
    }

    /// A token from `/oauth2/token` with the application's client credentials.
    pub async fn client_credentials_token(&self, app: &App) -> String {
        client_credentials_token(&self.control, app).await
    }

    /// Revokes `token` at `/oauth2/revoke`, authenticated as the application's client.
    pub async fn revoke(&self, app: &App, token: &str) {
        self.control.http.post_form("/oauth2/revoke", app.basic(), &[("token", token)]).await.expect(200);
    }

    /// Revokes every token issued to `app` so far (`POST /api/v1/applications/{id}/revocations`,
    /// as `wsgate revoke --app` does); returns the cutoff, in Unix seconds, that it recorded.
    pub async fn revoke_all_tokens(&self, app: &App) -> i64 {
        let path = format!("/api/v1/applications/{}/revocations", app.id);
        let answer = self.admin.post(&path, json!({})).await.expect(200);
        let entry = answer["revoked"].as_str().expect("revoked");
        entry.rsplit_once('@').and_then(|(_, at)| at.parse().ok()).unwrap_or_else(|| panic!("a cutoff in {answer}"))
    }

    /// Grants `scopes` (of the API's) to the subscription, as a publisher.
    pub async fn grant(&self, subscription: &Subscription, scopes: &[&str]) {
        let path = format!("/api/v1/subscriptions/{}/scopes", subscription.id);
        self.admin.put(&path, json!({ "scopes": scopes })).await.expect(200);
    }

    pub async fn block(&self, subscription: &Subscription) {
        self.set_subscription(subscription, "BLOCKED").await;
    }

    pub async fn unblock(&self, subscription: &Subscription) {
        self.set_subscription(subscription, "ACTIVE").await;
    }

    async fn set_subscription(&self, subscription: &Subscription, state: &str) {
        let path = format!("/api/v1/subscriptions/{}/state", subscription.id);
        self.admin.post(&path, json!({ "state": state })).await.expect(200);
    }

    /// Unsubscribes (the subscription becomes REMOVED).
    pub async fn unsubscribe(&self, subscription: &Subscription) {
        self.admin.delete(&format!("/api/v1/subscriptions/{}", subscription.id)).await.expect(200);
    }

    pub async fn delete_application(&self, app: &App) {
        self.admin.delete(&format!("/api/v1/applications/{}", app.id)).await.expect(204);
    }

    /// Moves the API to `state` (`DEPRECATED`, `RETIRED`, `BLOCKED`, `PUBLISHED`).
    pub async fn move_api(&self, api: &Api, state: &str) {
        let path = format!("/api/v1/apis/{}/lifecycle", api.id);
        let moved = self.admin.post(&path, json!({ "state": state })).await.expect(200);
        assert_eq!(moved["state"], state, "{moved}");
    }

    pub fn ws_addr(&self) -> SocketAddr {
        self.ws
    }

    /// `ws://ADDR` + `target`.
    pub fn ws_url(&self, target: &str) -> String {
        format!("ws://{}{target}", self.ws)
    }

    /// `wss://ADDR` + `target`, on the listener with the gateway's generated certificate.
    pub fn wss_url(&self, target: &str) -> String {
        format!("wss://{}{target}", self.wss)
    }

    /// The gateway's answer to one upgrade request for `target` with these headers.
    pub async fn answer(&self, target: &str, headers: &[(String, String)]) -> Head {
        attempt(self.ws, target, headers).await.0
    }

    /// Asks until the gateway answers `status` (it follows the store a moment behind).
    pub async fn until_answered(&self, target: &str, headers: &[(String, String)], status: u16) -> Head {
        eventually(&format!("{target} answers {status}"), || async move {
            let head = self.answer(target, headers).await;
            if head.status() == status { Ok(head) } else { Err(head.start_line) }
        })
        .await
    }

    /// The gateway's metrics in Prometheus text (empty without [`WorldBuilder::with_metrics`]).
    pub fn metrics(&self) -> String {
        self.metrics.as_ref().map(|h| h.render()).unwrap_or_default()
    }

    /// Opens a socket to `api` with `token` in the Authorization header, waiting while the
    /// gateway catches up with the store (a fresh subscription may take a moment to count).
    pub async fn connect(&self, api: &Api, token: &str) -> Socket {
        eventually(&format!("{} upgrades with the token", api.path), || async move {
            match attempt(self.ws, &api.path, &bearer(token)).await {
                (_, Some(socket)) => Ok(socket),
                (head, None) => Err(head.start_line),
            }
        })
        .await
    }
}

/// Seconds since the Unix epoch, with a fraction.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

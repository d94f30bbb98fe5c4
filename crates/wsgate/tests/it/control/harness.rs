//! A control plane under test and the clients that talk to it.
//!
//! `let control = control().start().await;` binds a control plane on `127.0.0.1:0` over a new
//! SQLite store and a certificate generated for the test; `control.user("alice",
//! &["subscriber"]).await` creates a user as admin and signs them in; `alice.post(path,
//! json).await` answers a [`Reply`]. Requests are made with ureq (blocking, on the blocking
//! pool) trusting only the generated certificate, as `wsgate`'s own client commands do.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use ureq::Agent;
use ureq::http::Method;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
use wsgate_control::ControlPlane;
use wsgate_core::config::{Config, ControlSettings};

/// The admin's password in every test store.
pub const ADMIN_PASSWORD: &str = "admin-password";
/// The password of every user a test creates.
pub const PASSWORD: &str = "s3cret-passw0rd";

/// A scratch directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(what: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wsgate-it-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct ControlBuilder {
    settings: ControlSettings,
    issuers: Vec<String>,
    handshake_timeout: Option<Duration>,
    counters: Option<Arc<dyn wsgate_counters::Counters>>,
}

pub fn control() -> ControlBuilder {
    let settings = ControlSettings { listen: "127.0.0.1:0".into(), ..ControlSettings::default() };
    ControlBuilder { settings, issuers: Vec::new(), handshake_timeout: None, counters: None }
}

impl ControlBuilder {
    pub fn signing_key_rotation(mut self, every: Duration) -> Self {
        self.settings.signing_key_rotation = every;
        self
    }

    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.settings.token_ttl = ttl;
        self
    }

    /// The gateway's counters, for usage endpoints (as `wsgate serve` wires them).
    pub fn counters(mut self, counters: Arc<dyn wsgate_counters::Counters>) -> Self {
        self.counters = Some(counters);
        self
    }

    pub fn self_signup(mut self, open: bool) -> Self {
        self.settings.self_signup = open;
        self
    }

    /// An `[[identity_providers]]` entry with this `iss`, whose clients applications may
    /// register (the control plane reads nothing else of it).
    pub fn trusting_issuer(mut self, issuer: &str) -> Self {
        self.issuers.push(issuer.to_string());
        self
    }

    /// `gateway.handshake_timeout`: also how long a request head and body may take.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = Some(timeout);
        self
    }

    /// Any other `[control]` setting.
    pub fn settings(mut self, change: impl FnOnce(&mut ControlSettings)) -> Self {
        change(&mut self.settings);
        self
    }

    pub async fn start(self) -> Control {
        let dir = Scratch::new("control");
        let store = wsgate_store::open_sqlite(&dir.0.join("wsgate.db")).await.expect("open the SQLite store");
        wsgate_control::bootstrap(&*store, &self.settings, Some(ADMIN_PASSWORD)).await.expect("bootstrap");
        let files = wsgate_tls::server::locate_or_generate(None, None, &dir.0).expect("certificate");
        let certificate = wsgate_tls::server::ReloadingCertificate::load(files.clone()).expect("load certificate");
        let mut config = Config { control: self.settings, ..Config::default() };
        config.gateway.shutdown_timeout = Duration::from_secs(2);
        if let Some(timeout) = self.handshake_timeout {
            config.gateway.handshake_timeout = timeout;
        }
        config.identity_providers = self
            .issuers
            .iter()
            .map(|issuer| wsgate_core::config::IdentityProvider {
                issuer: issuer.clone(),
                jwks_url: "https://localhost/unused-by-the-control-plane".into(),
                audience: "wsgate".into(),
                ca_file: None,
                jwks_refresh_interval: Duration::from_secs(10),
            })
            .collect();
        let plane = ControlPlane::bind(&config, store.clone(), certificate).await.expect("bind the control plane");
        if let Some(counters) = self.counters {
            plane.set_counters(counters);
        }
        let addr = plane.addr().expect("listening");
        let shutdown = CancellationToken::new();
        let task = Some(tokio::spawn(plane.run(shutdown.clone())));
        let http = Http { agent: agent(&files.cert), base: format!("https://127.0.0.1:{}", addr.port()) };
        Control { http, port: addr.port(), store, certificate: files, shutdown, task, _dir: dir }
    }
}

/// A running control plane; stopped when dropped.
pub struct Control {
    pub http: Http,
    pub port: u16,
    /// The store it writes, for tests that also run a gateway over it or write to it directly.
    pub store: Arc<dyn wsgate_store::Store>,
    /// Its generated certificate, for clients that must trust it.
    pub certificate: wsgate_tls::server::CertificateFiles,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
    _dir: Scratch,
}

impl Drop for Control {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Control {
    /// Cancels the shutdown token and waits for `run` to return (it drains first).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("the control plane stops within its drain deadline")
                .expect("run returns");
        }
    }

    /// The `iss` of this control plane's tokens.
    pub fn issuer(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// Signs in, failing the test unless it works.
    pub async fn login(&self, name: &str, password: &str) -> Session {
        self.http.login(name, password).await
    }

    pub async fn admin(&self) -> Session {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Creates a user with these roles (as admin) and signs them in.
    pub async fn user(&self, name: &str, roles: &[&str]) -> Session {
        let admin = self.admin().await;
        admin.post("/api/v1/users", json!({ "name": name, "password": PASSWORD, "roles": roles })).await.expect(201);
        self.login(name, PASSWORD).await
    }

    /// An API as a creator-publisher makes it, in the state asked for.
    pub async fn published_api(&self, owner: &Session, context: &str, plans: &[&str]) -> Value {
        let body = api_body(&context[1..], context, "1.0").with("plans", json!(plans)).with("publish", json!(true));
        owner.post("/api/v1/apis", body).await.expect(201)
    }
}

/// The body of `POST /api/v1/apis` for a publishable API.
pub fn api_body(name: &str, context: &str, version: &str) -> Value {
    json!({
        "name": name,
        "context": context,
        "version": version,
        "endpoints": ["ws://127.0.0.1:7070"],
        "plans": ["Gold", "Silver"],
    })
}

/// Small edits of JSON bodies in tests.
pub trait With {
    fn with(self, key: &str, value: Value) -> Self;
    fn without(self, key: &str) -> Self;
}

impl With for Value {
    fn with(mut self, key: &str, value: Value) -> Value {
        self[key] = value;
        self
    }

    fn without(mut self, key: &str) -> Value {
        if let Some(object) = self.as_object_mut() {
            object.remove(key);
        }
        self
    }
}

/// A signed-in user, sending its session as a bearer token.
#[derive(Clone)]
pub struct Session {
    pub http: Http,
    pub token: String,
    pub csrf: String,
}

impl Session {
    pub async fn get(&self, path: &str) -> Reply {
        self.http.send(Method::GET, path, self.bearer(), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.http.post_json(path, Some(&self.token), body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.http.send(Method::PUT, path, self.bearer(), Some(json_body(&body))).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.http.send(Method::DELETE, path, self.bearer(), None).await
    }

    /// A POST with this exact body text, to send what no serialiser would.
    pub async fn post_raw(&self, path: &str, text: &str) -> Reply {
        let body = ("application/json".to_string(), text.as_bytes().to_vec());
        self.http.send(Method::POST, path, self.bearer(), Some(body)).await
    }

    fn bearer(&self) -> Vec<(String, String)> {
        vec![("authorization".into(), format!("Bearer {}", self.token))]
    }
}

fn json_body(body: &Value) -> (String, Vec<u8>) {
    ("application/json".into(), serde_json::to_vec(body).expect("json"))
}

/// An HTTPS client trusting only the control plane's certificate.
#[derive(Clone)]
pub struct Http {
    agent: Agent,
    pub base: String,
}

fn agent(ca: &Path) -> Agent {
    // ureq's rustls needs a process-wide provider; ring is the one the project uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(ca).expect("read certificate");
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    let tls =
        TlsConfig::builder().provider(TlsProvider::Rustls).root_certs(RootCerts::Specific(Arc::new(certs))).build();
    Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

impl Http {
    /// A client for the control plane at `base` (`https://127.0.0.1:PORT`) trusting only the
    /// certificate in `cert`.
    pub fn trusting(cert: &Path, base: String) -> Http {
        Http { agent: agent(cert), base }
    }

    /// Signs in, failing the test unless it works.
    pub async fn login(&self, name: &str, password: &str) -> Session {
        let reply = self.post_json("/api/v1/login", None, json!({ "username": name, "password": password })).await;
        let body = reply.expect(200);
        Session {
            http: self.clone(),
            token: body["token"].as_str().expect("token").to_string(),
            csrf: body["csrf_token"].as_str().expect("csrf_token").to_string(),
        }
    }

    pub async fn post_json(&self, path: &str, bearer: Option<&str>, body: Value) -> Reply {
        let headers = bearer.map(|t| vec![("authorization".to_string(), format!("Bearer {t}"))]).unwrap_or_default();
        self.send(Method::POST, path, headers, Some(json_body(&body))).await
    }

    /// A form POST (the OAuth2 endpoints), with extra headers such as Basic credentials.
    pub async fn post_form(&self, path: &str, headers: Vec<(String, String)>, form: &[(&str, &str)]) -> Reply {
        let text = form.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
        let body = ("application/x-www-form-urlencoded".to_string(), text.into_bytes());
        self.send(Method::POST, path, headers, Some(body)).await
    }

    /// One request, made on the blocking pool so the in-process server keeps running.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: Vec<(String, String)>,
        body: Option<(String, Vec<u8>)>,
    ) -> Reply {
        let agent = self.agent.clone();
        let url = format!("{}{path}", self.base);
        let what = format!("{method} {path}");
        tokio::task::spawn_blocking(move || {
            let mut request = ureq::http::Request::builder().method(method).uri(&url);
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            let sent = match body {
                Some((content_type, bytes)) => {
                    agent.run(request.header("content-type", content_type).body(bytes).expect("request"))
                }
                None => agent.run(request.body(()).expect("request")),
            };
            let mut response = sent.unwrap_or_else(|err| panic!("{what}: {err}"));
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect();
            let text = response.body_mut().read_to_string().unwrap_or_default();
            Reply { what, status: response.status().as_u16(), headers, text }
        })
        .await
        .expect("request task")
    }
}

/// Percent-encodes a form value (every byte but unreserved ones).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An answer: status, headers, body text.
#[derive(Debug)]
pub struct Reply {
    pub what: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|err| panic!("{}: body is not JSON ({err}): {}", self.what, self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The JSON body, failing the test unless the status is `status`.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{} answered {}: {}", self.what, self.status, self.text);
        if self.text.is_empty() { Value::Null } else { self.json() }
    }

    /// Asserts a REST error: its status, code and (when given) the field it names.
    pub fn refused(&self, status: u16, code: &str, field: Option<&str>) -> Value {
        let body = self.expect(status);
        assert_eq!(body["error"], code, "{}: {body}", self.what);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{}: message: {body}", self.what);
        assert_eq!(body["field"].as_str(), field, "{}: field: {body}", self.what);
        body
    }
}

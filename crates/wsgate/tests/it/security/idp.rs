//! An external identity provider: a second control plane, with its own store and port, issues
//! tokens the gateway accepts through `[[identity_providers]]` (its JWKS over HTTPS, trusted
//! through its generated certificate). Its tokens map to a gateway application by `client_id`.
//!
//! Counting the provider's JWKS requests needs a view of them: `JwksFront` serves the
//! provider's JWKS over HTTPS with the provider's own certificate, fetching it from the
//! provider on every request and counting requests. The gateway's HTTP client keeps
//! connections alive, so counting requests rather than connections is what makes the count
//! exact.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use ureq::http::Method;

use super::socket::attempt;
use super::tokens::{Jwt, TestKey, now, random_hex};
use super::world::{App, TrustedProvider, World, bearer, client_credentials_token, create_application, world};
use crate::control::harness::{Control, Http, control};
use crate::harness::raw::read_head;
use crate::harness::{STEP, within};

/// The gateway's config entry for `idp`, with its JWKS at `jwks_url`.
fn trusting(idp: &Control, jwks_url: String) -> TrustedProvider {
    TrustedProvider { issuer: idp.issuer(), jwks_url, ca_file: idp.certificate.cert.clone() }
}

/// Registers the provider's client `client_id` on the gateway application `local` (as its
/// owner, through the REST API): tokens the provider issues to that client are then that
/// application's.
async fn map_client_id(world: &World, idp: &Control, local: &App, client_id: &str) {
    let path = format!("/api/v1/applications/{}/external_clients", local.id);
    let body = json!({ "external_clients": [{ "issuer": idp.issuer(), "client_id": client_id }] });
    world.admin.put(&path, body).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_providers_tokens_open_connections_for_mapped_clients_only() {
    let idp = control().start().await;
    let idp_admin = idp.admin().await;
    let partner = create_application(&idp_admin, "Partner").await;
    let unmapped = create_application(&idp_admin, "Unmapped").await;
    let jwks_url = format!("https://localhost:{}/oauth2/jwks", idp.port);
    let world = world().trusting(trusting(&idp, jwks_url)).start().await;
    let api = world.api("/partners").published().await;
    let local = world.application("PartnerHere").await;
    map_client_id(&world, &idp, &local, &partner.client_id).await;
    world.subscribe(&local, &api).await;

    let token = client_credentials_token(&idp, &partner).await;
    world.connect(&api, &token).await.echoes("from the partner").await;

    let stranger = client_credentials_token(&idp, &unmapped).await;
    let answer = world.answer(&api.path, &bearer(&stranger)).await;
    assert_eq!(answer.status(), 401, "{answer:?}");
    let challenge = answer.header("WWW-Authenticate").unwrap_or_default();
    assert!(challenge.contains("no application has this client id"), "{answer:?}");
    // The gateway's own application token still works beside the provider's.
    world.connect(&api, &world.token(&local).await).await.echoes("from the gateway's issuer").await;
}

/// The two namespaces stay apart: a provider's token naming a client id that wsgate generated
/// for an application is not that application's, however the provider came to issue it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_providers_token_cannot_borrow_a_client_id_wsgate_generated() {
    let idp = control().start().await;
    // The provider signs with a key of ours, published in its JWKS: a provider that lets its
    // clients choose their ids (or that an attacker runs) is what this test plays.
    let key = TestKey::generate("provider-key");
    idp.store.put_signing_key(&key.record()).await.expect("the key is published by the provider");
    let jwks_url = format!("https://localhost:{}/oauth2/jwks", idp.port);
    let world = world().trusting(trusting(&idp, jwks_url)).start().await;
    let api = world.api("/partners").published().await;
    let victim = world.application("Victim").await;
    world.subscribe(&victim, &api).await;
    world.connect(&api, &world.token(&victim).await).await.echoes("the victim's own token works").await;

    let borrowed = Jwt::es256(&key.kid)
        .claim("iss", json!(idp.issuer()))
        .claim("aud", json!("wsgate"))
        .claim("exp", json!(now() + 300))
        .claim("client_id", json!(victim.client_id))
        .fresh_jti()
        .signed_by(&key);
    let answer = world.answer(&api.path, &bearer(&borrowed)).await;
    assert_eq!(answer.status(), 401, "{answer:?}");
    assert!(answer.header("WWW-Authenticate").unwrap_or_default().contains("no application has this client id"));

    // Registered explicitly, the same client id is the victim's: the owner decided so.
    map_client_id(&world, &idp, &victim, &victim.client_id).await;
    world.until_answered(&api.path, &bearer(&borrowed), 101).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_ids_cost_the_identity_provider_one_or_two_jwks_fetches() {
    let idp = control().start().await;
    let front = JwksFront::start(&idp).await;
    let world = world().trusting(trusting(&idp, front.url())).start().await;
    let api = world.api("/partners").published().await;

    // The gateway fetches the keys once at start; the next fetch is allowed a second later.
    within(STEP, "the gateway fetches the JWKS at start", async {
        while front.requests() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = front.requests();

    let forger = TestKey::generate("forger");
    let attempts = (0..20).map(|_| {
        let token = Jwt::es256(&random_hex(16))
            .claim("iss", json!(idp.issuer()))
            .claim("aud", json!("wsgate"))
            .claim("exp", json!(now() + 300))
            .claim("client_id", json!("anyone"))
            .fresh_jti()
            .signed_by(&forger);
        let (addr, path) = (world.ws_addr(), api.path.clone());
        tokio::spawn(async move { attempt(addr, &path, &bearer(&token)).await.0 })
    });
    for answer in futures_util::future::join_all(attempts).await {
        let answer = answer.expect("the attempt ran");
        assert_eq!(answer.status(), 401, "{answer:?}");
        assert!(answer.header("WWW-Authenticate").unwrap_or_default().contains("unknown signing key"), "{answer:?}");
    }
    let fetched = front.requests() - before;
    assert!((1..=2).contains(&fetched), "20 unknown kids made {fetched} JWKS fetches");
    assert!(front.all_answered_ok(), "the front served the provider's JWKS every time");
}

/// An HTTPS front for the provider's JWKS that counts requests.
struct JwksFront {
    port: u16,
    requests: Arc<AtomicUsize>,
    failures: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl JwksFront {
    async fn start(idp: &Control) -> JwksFront {
        let certificate = wsgate_tls::server::ReloadingCertificate::load(idp.certificate.clone())
            .expect("the provider's certificate");
        let acceptor = TlsAcceptor::from(wsgate_tls::server::server_config(certificate).expect("a TLS config"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("the front binds");
        let port = listener.local_addr().expect("a bound address").port();
        let (requests, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let http = idp.http.clone();
        let task = tokio::spawn({
            let (requests, failures) = (requests.clone(), failures.clone());
            async move {
                // Owns every connection task: aborting the accept loop aborts them all.
                let mut connections = JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    let counters = (requests.clone(), failures.clone());
                    connections.spawn(serve(stream, acceptor.clone(), http.clone(), counters));
                    while connections.try_join_next().is_some() {}
                }
            }
        });
        JwksFront { port, requests, failures, task }
    }

    /// Under the provider's name, so the provider's certificate verifies.
    fn url(&self) -> String {
        format!("https://localhost:{}/oauth2/jwks", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn all_answered_ok(&self) -> bool {
        self.failures.load(Ordering::SeqCst) == 0
    }
}

impl Drop for JwksFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers every request on one connection with the provider's JWKS, as long as it is kept
/// alive. A request for anything else counts as a failure.
async fn serve(stream: TcpStream, acceptor: TlsAcceptor, http: Http, counters: (Arc<AtomicUsize>, Arc<AtomicUsize>)) {
    let (requests, failures) = counters;
    let Ok(tls) = acceptor.accept(stream).await else { return };
    let mut io = BufReader::new(tls);
    while let Ok(Some(head)) = read_head(&mut io).await {
        requests.fetch_add(1, Ordering::SeqCst);
        let jwks = http.send(Method::GET, "/oauth2/jwks", vec![], None).await;
        if head.start_line != "GET /oauth2/jwks HTTP/1.1" || jwks.status != 200 {
            failures.fetch_add(1, Ordering::SeqCst);
        }
        let answer = format!(
            "HTTP/1.1 {} OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            jwks.status,
            jwks.text.len(),
            jwks.text
        );
        if io.get_mut().write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

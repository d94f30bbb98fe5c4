//! TLS on both sides: the wss listener (its certificate configured, rotated, or talked to in
//! plain HTTP by mistake) and wss:// upstreams (trusted through an API's CA bundle, refused
//! when untrusted, expired or for another name, mutual TLS, explicit insecure mode).
//! Certificates are made at test time by a throwaway CA.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use wsgate::echo::EchoServer;
use wsgate_core::config::Config;
use wsgate_gateway::Gateway;

use crate::harness::process::TempDir;
use crate::harness::{STEP, echo_upstream, within};

/// A throwaway CA that signs leaf certificates into a temp dir.
struct Pki {
    dir: TempDir,
    ca: Issuer<'static, KeyPair>,
    ca_pem: PathBuf,
}

/// A certificate and its key as files.
#[derive(Clone)]
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new(label: &str) -> Pki {
        let dir = TempDir::new(label);
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "wsgate test CA");
        let cert = params.self_signed(&key).expect("a CA certificate");
        let ca_pem = dir.write("ca.pem", &cert.pem());
        Pki { dir, ca: Issuer::new(params, key), ca_pem }
    }

    /// A leaf for `names`, valid now unless `expired`.
    fn leaf(&self, file: &str, names: &[&str], expired: bool) -> Leaf {
        let key = KeyPair::generate().expect("a leaf key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &self.ca).expect("a signed leaf");
        Leaf {
            cert: self.dir.write(&format!("{file}.pem"), &cert.pem()),
            key: self.dir.write(&format!("{file}.key"), &key.serialize_pem()),
        }
    }

    /// A client config that trusts only this CA.
    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca_pem).expect("CA file") {
            roots.add(cert.expect("a CA certificate")).expect("a usable root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

/// A gateway from a TOML body, with both listeners on free ports and its data in a temp dir.
struct Running {
    ws: Option<SocketAddr>,
    wss: Option<SocketAddr>,
    shutdown: CancellationToken,
    _data: TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(gateway_keys: &str, apis: &str) -> Running {
    let data = TempDir::new("tls-data");
    let toml = format!(
        "[gateway]\nws_listen = \"127.0.0.1:0\"\nwss_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nhandshake_timeout = \"2s\"\n{gateway_keys}\n{apis}",
        data.path()
    );
    let config = Config::from_toml(&toml).unwrap_or_else(|err| panic!("valid test config ({err}):\n{toml}"));
    let gateway = Gateway::bind(&config).await.unwrap_or_else(|err| panic!("the gateway binds: {err}"));
    let (ws, wss) = (gateway.ws_addr(), gateway.wss_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(gateway.run(shutdown.clone()));
    Running { ws, wss, shutdown, _data: data }
}

fn api(context: &str, endpoint: &str, extra: &str) -> String {
    format!(
        "[[apis]]\nname = \"{context}\"\ncontext = \"/{context}\"\nversion = \"1.0\"\nendpoints = [\"{endpoint}\"]\nauth = \"none\"\n{extra}\n"
    )
}

/// A wss echo upstream presenting `leaf`, stopped when the token drops.
async fn tls_echo(leaf: &Leaf, listen: &str) -> (SocketAddr, tokio_util::sync::DropGuard) {
    let files =
        wsgate_tls::server::CertificateFiles { cert: leaf.cert.clone(), key: leaf.key.clone(), generated: false };
    let certificate = wsgate_tls::server::ReloadingCertificate::load(files).expect("the echo's certificate loads");
    let config = wsgate_tls::server::server_config(certificate).expect("a server config");
    tls_echo_with(config, listen).await
}

async fn tls_echo_with(config: Arc<rustls::ServerConfig>, listen: &str) -> (SocketAddr, tokio_util::sync::DropGuard) {
    let echo = EchoServer::bind(listen.parse().expect("an address")).await.expect("the wss echo binds");
    let echo = echo.with_tls(tokio_rustls::TlsAcceptor::from(config));
    let addr = echo.local_addr();
    let shutdown = CancellationToken::new();
    tokio::spawn(echo.run(shutdown.clone()));
    (addr, shutdown.drop_guard())
}

type WssStream = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// Opens `wss://localhost:PORT/path` trusting `config`'s roots; returns the socket and the
/// certificate the server presented.
async fn wss_connect(addr: SocketAddr, path: &str, config: Arc<ClientConfig>) -> (WssStream, Vec<u8>) {
    let tcp = within(STEP, "TCP connect", TcpStream::connect(addr)).await.expect("TCP connect");
    let name = ServerName::try_from("localhost").expect("a server name");
    let tls =
        within(STEP, "TLS handshake", TlsConnector::from(config).connect(name, tcp)).await.expect("TLS handshake");
    let presented = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap_or_default();
    let url = format!("wss://localhost:{}{path}", addr.port());
    let (ws, _) = within(STEP, "upgrade", tokio_tungstenite::client_async(url, tls)).await.expect("upgrade");
    (ws, presented)
}

async fn ws_connect(addr: SocketAddr, path: &str) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("TCP connect");
    let url = format!("ws://{addr}{path}");
    within(STEP, "upgrade", tokio_tungstenite::client_async(url, tcp)).await.expect("upgrade").0
}

/// The status of a plain ws upgrade that the gateway refuses.
async fn ws_refusal(addr: SocketAddr, path: &str) -> u16 {
    let tcp = TcpStream::connect(addr).await.expect("TCP connect");
    let url = format!("ws://{addr}{path}");
    match within(STEP, "upgrade answer", tokio_tungstenite::client_async(url, tcp)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Ok(_) => 101,
        Err(err) => panic!("expected an HTTP refusal, got {err}"),
    }
}

async fn round_trip<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, text: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    within(STEP, "send", ws.send(Message::text(text))).await.expect("send");
    let reply = within(STEP, "echo", ws.next()).await.expect("a reply").expect("no error");
    assert_eq!(reply, Message::text(text));
}

fn listener_keys(leaf: &Leaf) -> String {
    format!("tls_cert = {:?}\ntls_key = {:?}\ntls_reload_interval = \"100ms\"\n", leaf.cert, leaf.key)
}

#[tokio::test]
async fn a_wss_client_reaches_a_ws_upstream() {
    let pki = Pki::new("wss-ws");
    let echo = echo_upstream().await;
    let gw = start(&listener_keys(&pki.leaf("gw", &["localhost"], false)), &api("echo", &echo.url(), "")).await;
    let (mut ws, _) = wss_connect(gw.wss.expect("wss on"), "/echo/1.0.0", pki.client_config()).await;
    round_trip(&mut ws, "decrypted, then relayed").await;
}

#[tokio::test]
async fn a_ws_client_reaches_a_wss_upstream_trusted_through_the_api_ca_file() {
    let pki = Pki::new("ws-wss");
    let (echo, _echo) = tls_echo(&pki.leaf("echo", &["localhost"], false), "127.0.0.1:0").await;
    let extra = format!("ca_file = {:?}", pki.ca_pem);
    let gw = start("", &api("echo", &format!("wss://localhost:{}", echo.port()), &extra)).await;
    let mut ws = ws_connect(gw.ws.expect("ws on"), "/echo/1.0").await;
    round_trip(&mut ws, "re-encrypted upstream").await;
}

#[tokio::test]
async fn wss_to_wss_relays_in_both_directions() {
    let pki = Pki::new("wss-wss");
    let (echo, _echo) = tls_echo(&pki.leaf("echo", &["localhost"], false), "127.0.0.1:0").await;
    let extra = format!("ca_file = {:?}", pki.ca_pem);
    let gw = start(
        &listener_keys(&pki.leaf("gw", &["localhost"], false)),
        &api("echo", &format!("wss://localhost:{}/", echo.port()), &extra),
    )
    .await;
    let (mut ws, _) = wss_connect(gw.wss.expect("wss on"), "/echo/1.0", pki.client_config()).await;
    for size in [1usize, 125, 126, 65_536, 1 << 20] {
        let message = Message::binary(vec![0xA5; size]);
        within(STEP, "send", ws.send(message.clone())).await.expect("send");
        assert_eq!(within(STEP, "echo", ws.next()).await.expect("reply").expect("ok"), message);
    }
}

#[tokio::test]
async fn untrusted_expired_and_wrong_name_upstream_certificates_get_502() {
    let pki = Pki::new("bad-upstream");
    let (valid, _a) = tls_echo(&pki.leaf("valid", &["localhost"], false), "127.0.0.1:0").await;
    let (expired, _b) = tls_echo(&pki.leaf("expired", &["localhost"], true), "127.0.0.1:0").await;
    let (other_name, _c) = tls_echo(&pki.leaf("other", &["other.example"], false), "127.0.0.1:0").await;
    let ca = format!("ca_file = {:?}", pki.ca_pem);
    let apis = [
        api("untrusted", &format!("wss://localhost:{}", valid.port()), ""),
        api("expired", &format!("wss://localhost:{}", expired.port()), &ca),
        api("wrongname", &format!("wss://localhost:{}", other_name.port()), &ca),
        api("trusted", &format!("wss://localhost:{}", valid.port()), &ca),
    ];
    let gw = start("", &apis.concat()).await;
    let ws = gw.ws.expect("ws on");
    assert_eq!(ws_refusal(ws, "/untrusted/1.0").await, 502, "a CA the system does not trust");
    assert_eq!(ws_refusal(ws, "/expired/1.0").await, 502, "an expired certificate");
    assert_eq!(ws_refusal(ws, "/wrongname/1.0").await, 502, "a certificate for another name");
    round_trip(&mut ws_connect(ws, "/trusted/1.0").await, "the same upstream, trusted").await;
}

#[tokio::test]
async fn insecure_skip_verify_accepts_an_upstream_certificate_nobody_trusts() {
    let pki = Pki::new("insecure");
    let (echo, _echo) = tls_echo(&pki.leaf("expired", &["other.example"], true), "127.0.0.1:0").await;
    let gw = start("", &api("echo", &format!("wss://localhost:{}", echo.port()), "insecure_skip_verify = true")).await;
    round_trip(&mut ws_connect(gw.ws.expect("ws on"), "/echo/1.0").await, "unverified but encrypted").await;
}

#[tokio::test]
async fn mutual_tls_presents_the_api_client_certificate_to_the_upstream() {
    let pki = Pki::new("mtls");
    let server = pki.leaf("server", &["localhost"], false);
    let client = pki.leaf("client", &["wsgate-client"], false);
    // An upstream that refuses clients without a certificate from the test CA.
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(&pki.ca_pem).expect("CA")).expect("root");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("a client verifier");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            CertificateDer::pem_file_iter(&server.cert).expect("cert").map(|c| c.expect("cert")).collect(),
            rustls::pki_types::PrivateKeyDer::from_pem_file(&server.key).expect("key"),
        )
        .expect("server config");
    let (echo, _echo) = tls_echo_with(Arc::new(config), "127.0.0.1:0").await;
    let endpoint = format!("wss://localhost:{}", echo.port());
    let with_cert =
        format!("ca_file = {:?}\nclient_cert = {:?}\nclient_key = {:?}", pki.ca_pem, client.cert, client.key);
    let without_cert = format!("ca_file = {:?}", pki.ca_pem);
    let gw = start("", &[api("mtls", &endpoint, &with_cert), api("nocert", &endpoint, &without_cert)].concat()).await;
    let ws = gw.ws.expect("ws on");
    round_trip(&mut ws_connect(ws, "/mtls/1.0").await, "authenticated both ways").await;
    assert_eq!(ws_refusal(ws, "/nocert/1.0").await, 502);
}

#[tokio::test]
async fn the_default_and_an_explicit_443_port_both_reach_the_upstream() {
    // 127.0.0.44 is loopback on Linux; port 443 needs root, which the test command has.
    let pki = Pki::new("port443");
    let (echo, _echo) = tls_echo(&pki.leaf("echo", &["127.0.0.44"], false), "127.0.0.44:443").await;
    assert_eq!(echo.port(), 443);
    let ca = format!("ca_file = {:?}", pki.ca_pem);
    let gw =
        start("", &[api("implicit", "wss://127.0.0.44", &ca), api("explicit", "wss://127.0.0.44:443/", &ca)].concat())
            .await;
    let ws = gw.ws.expect("ws on");
    round_trip(&mut ws_connect(ws, "/implicit/1.0").await, "default port").await;
    round_trip(&mut ws_connect(ws, "/explicit/1.0").await, "explicit port").await;
}

#[tokio::test]
async fn a_rotated_certificate_serves_new_connections_while_open_ones_stay_up() {
    let pki = Pki::new("rotate");
    let echo = echo_upstream().await;
    let live = pki.leaf("live", &["localhost"], false);
    let gw = start(&listener_keys(&live), &api("echo", &echo.url(), "")).await;
    let wss = gw.wss.expect("wss on");
    let (mut before, first_cert) = wss_connect(wss, "/echo/1.0", pki.client_config()).await;

    let next = pki.leaf("next", &["localhost"], false);
    std::fs::copy(&next.cert, &live.cert).expect("replace the certificate");
    std::fs::copy(&next.key, &live.key).expect("replace the key");
    let expected = std::fs::read(&next.cert).expect("read");
    let expected = CertificateDer::from_pem_slice(&expected).expect("pem").to_vec();

    let mut rotated = false;
    for _ in 0..50 {
        let (mut after, cert) = wss_connect(wss, "/echo/1.0", pki.client_config()).await;
        if cert == expected {
            round_trip(&mut after, "new certificate").await;
            rotated = true;
            break;
        }
        assert_eq!(cert, first_cert);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rotated, "new connections got the new certificate within 5 s");
    round_trip(&mut before, "the connection opened before the rotation is still up").await;
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_a_readable_400() {
    let pki = Pki::new("plain-to-tls");
    let gw = start(&listener_keys(&pki.leaf("gw", &["localhost"], false)), "").await;
    let mut tcp = TcpStream::connect(gw.wss.expect("wss on")).await.expect("connect");
    tcp.write_all(b"GET /echo/1.0 HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("write");
    let mut answer = String::new();
    within(STEP, "the answer", tcp.read_to_string(&mut answer)).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("wss://"), "the reason says to use wss://: {answer}");
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_dropped_after_the_handshake_timeout() {
    let pki = Pki::new("stall");
    let gw = start(&listener_keys(&pki.leaf("gw", &["localhost"], false)), "").await;
    let mut tcp = TcpStream::connect(gw.wss.expect("wss on")).await.expect("connect");
    // The first bytes of a ClientHello record, then silence.
    tcp.write_all(&[0x16, 0x03, 0x01]).await.expect("write");
    let mut buf = [0u8; 64];
    let read = within(Duration::from_secs(5), "the gateway gives up (handshake_timeout 2s)", tcp.read(&mut buf)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "the connection is closed, got {read:?}");
}

#[tokio::test]
async fn stock_wscat_with_n_reaches_the_api_over_wss() {
    let echo = echo_upstream().await;
    // No certificate configured: the gateway generates a self-signed one, as on first start.
    let gw = start("", &api("echowebsocket", &echo.url(), "")).await;
    let url = format!("wss://localhost:{}/echowebsocket/1.0.0", gw.wss.expect("wss on").port());
    let run = crate::harness::process::wscat(&["-n", "-c", &url], "over tls").await;
    assert!(run.received("over tls"), "wscat -n echoes over wss: {} {}", run.stdout, run.stderr);
}

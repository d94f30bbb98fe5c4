//! wss:// upstreams with certificates made the way users make them: `openssl req -x509` at
//! test time (a self-signed certificate with `CA:TRUE`), served by `wsgate echo --tls-cert
//! --tls-key`, and trusted by putting that very certificate in the API's `ca_file` (pinning).
//! A certificate for another name, an expired one and one nobody trusts each get a 502 whose
//! body is one sentence with the fix, and an access log line naming the endpoint tried.

use std::path::{Path, PathBuf};
use std::process::Command;

use tokio_tungstenite::tungstenite::Message;

use crate::harness::process::{EchoProcess, TempDir, echo_process, serve_logging, tool, wscat};
use crate::harness::raw::{RawClient, upgrade_request};
use crate::harness::{Client, api, gateway};

/// A certificate file and its key file.
struct Made {
    cert: PathBuf,
    key: PathBuf,
}

/// Runs openssl as the README tells users to, failing the test with its stderr.
fn openssl(args: &[&str], dir: &Path) {
    let output =
        Command::new(tool("WSGATE_OPENSSL", "openssl")).args(args).current_dir(dir).output().expect("openssl runs");
    assert!(output.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// `openssl req -x509 -newkey ec …`: a self-signed P-256 certificate (CA:TRUE, as openssl
/// makes it) for `cn` with the subject alternative names `san`.
fn self_signed(dir: &Path, name: &str, cn: &str, san: &str) -> Made {
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            &format!("subjectAltName={san}"),
            "-keyout",
            &key,
            "-out",
            &cert,
        ],
        dir,
    );
    Made { cert: dir.join(cert), key: dir.join(key) }
}

/// The same certificate re-signed so that it expired yesterday.
fn expired(dir: &Path, made: &Made) -> Made {
    let cert = dir.join("expired.pem");
    let (from, key, out) =
        (made.cert.display().to_string(), made.key.display().to_string(), cert.display().to_string());
    openssl(&["x509", "-in", &from, "-signkey", &key, "-days", "-1", "-out", &out], dir);
    Made { cert, key: made.key.clone() }
}

async fn serving(made: &Made) -> EchoProcess {
    echo_process(Some((&made.cert, &made.key))).await
}

fn ca_file(made: &Made) -> String {
    format!("ca_file = {:?}", made.cert.display().to_string())
}

#[tokio::test]
async fn openssl_made_upstream_certificates_are_pinned_or_refused_with_a_sentence() {
    let dir = TempDir::new("openssl-upstream");
    let good = self_signed(dir.path(), "good", "localhost", "DNS:localhost,IP:127.0.0.1");
    let other = self_signed(dir.path(), "other", "other.example", "DNS:other.example");
    let stranger = self_signed(dir.path(), "stranger", "localhost", "DNS:localhost,IP:127.0.0.1");
    let old = expired(dir.path(), &good);
    let (good_echo, other_echo, old_echo, stranger_echo) =
        (serving(&good).await, serving(&other).await, serving(&old).await, serving(&stranger).await);
    let wss = |echo: &EchoProcess, host: &str| format!("wss://{host}:{}", echo.addr.port());
    let config = gateway()
        .api(api("/pinned", "1.0", &wss(&good_echo, "localhost")).with_toml(&ca_file(&good)))
        .api(api("/pinned-ip", "1.0", &wss(&good_echo, "127.0.0.1")).with_toml(&ca_file(&good)))
        .api(api("/wrong-name", "1.0", &wss(&other_echo, "localhost")).with_toml(&ca_file(&other)))
        .api(api("/expired", "1.0", &wss(&old_echo, "localhost")).with_toml(&ca_file(&old)))
        .api(api("/untrusted", "1.0", &wss(&stranger_echo, "localhost")).with_toml(&ca_file(&good)))
        .api(api("/system-roots", "1.0", &wss(&good_echo, "localhost")))
        .toml();
    let config = dir.write("wsgate.toml", &config);
    let (served, mut log) = serve_logging(&config, dir.path()).await;
    let addr: std::net::SocketAddr = served.ws_addr.parse().expect("an address");

    // Pinned: the very certificate in ca_file, by name and by IP address.
    for path in ["/pinned/1.0", "/pinned-ip/1.0"] {
        let mut client = Client::connect(&format!("ws://{addr}{path}")).await;
        client.echoes(Message::text(format!("through {path}"))).await;
    }
    let run = wscat(&["-c", &format!("ws://{addr}/pinned/1.0")], "hello").await;
    assert!(run.received("hello"), "the stock wscat reaches the pinned upstream: {} {}", run.stdout, run.stderr);

    let refusals = [
        ("/wrong-name/1.0", &other_echo, "not valid for the name localhost (it names other.example)"),
        ("/expired/1.0", &old_echo, "the upstream's certificate expired"),
        // openssl's certificate is CA:TRUE: trusted nowhere, it is told to be pinned.
        ("/untrusted/1.0", &stranger_echo, "put that very certificate in the API's ca_file to pin it"),
        ("/system-roots/1.0", &good_echo, "put that very certificate in the API's ca_file to pin it"),
    ];
    for (path, echo, says) in refusals {
        let mut client = RawClient::connect(addr).await;
        client.send(&upgrade_request(addr, path, &[])).await;
        let response = client.read_response().await;
        let body = String::from_utf8_lossy(&response.body).into_owned();
        assert_eq!(response.status(), 502, "{path}: {response:?}");
        assert!(body.starts_with("upstream TLS handshake failed: ") && body.contains(says), "{path}: {body}");
        assert!(!body.contains("Other(") && !body.contains("Error"), "{path}: no Rust debug text: {body}");
        assert!(!body.contains(&echo.addr.port().to_string()), "{path}: the client is not told the endpoint: {body}");
        // The operator's log names the endpoint that was tried, and the same reason.
        let event = log.next_refusal().await;
        assert_eq!(event["status"], 502, "{event}");
        assert_eq!(event["endpoint"], format!("wss://localhost:{}", echo.addr.port()), "{event}");
        assert!(event["reason"].as_str().is_some_and(|r| r.contains(says)), "{event}");
    }
}

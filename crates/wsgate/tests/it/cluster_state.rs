//! What the nodes of a cluster agree on and do once, on three `wsgate serve` processes sharing
//! one PostgreSQL schema: the issuer fixed by the first node, the one-writer duties passing on
//! when their holder dies or stops, and signing keys rotated exactly once however many nodes
//! rotate at the same moment.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::control::harness::Session;
use crate::harness::cluster::{Cluster, cluster};
use crate::harness::gateway::{Echo, echo_upstream};
use crate::harness::process::TempDir;
use crate::harness::services::pg_connect;
use crate::harness::within;
use crate::security::socket::{attempt, eventually};
use crate::security::world::{bearer, create_application};

/// A published API on the echo upstream and an application subscribed to it; returns the
/// gateway path and the application id.
async fn subscribed_api(admin: &Session, echo: &Echo) -> (String, String) {
    let body = json!({"name": "Everywhere", "context": "/everywhere", "version": "1.0", "endpoints": [echo.url()],
                      "plans": ["Unlimited"], "publish": true});
    let api = admin.post("/api/v1/apis", body).await.expect(201);
    let app = create_application(admin, "Anywhere").await;
    let subscribe = json!({"application_id": app.id, "api_id": api["id"], "plan": "Unlimited"});
    admin.post("/api/v1/subscriptions", subscribe).await.expect(201);
    ("/everywhere/1.0.0".to_string(), app.id)
}

/// A token for the application, issued through `admin`'s node.
async fn token(admin: &Session, application: &str) -> String {
    let answer = admin.post(&format!("/api/v1/applications/{application}/token"), json!({})).await.expect(200);
    answer["access_token"].as_str().expect("access_token").to_string()
}

/// The `kid` in a JWT's header.
fn kid_of(token: &str) -> String {
    let header = token.split('.').next().expect("a header");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON");
    header["kid"].as_str().expect("kid").to_string()
}

/// Every token upgrades on every node's gateway (retrying while a node's snapshot catches up).
async fn accepted_everywhere(cluster: &Cluster, path: &str, tokens: &[String]) {
    for (n, token) in tokens.iter().enumerate() {
        for (i, node) in cluster.nodes.iter().enumerate() {
            eventually(&format!("node {i}'s gateway accepts the token issued through node {n}"), || async {
                match attempt(node.ws, path, &bearer(token)).await {
                    (_, Some(_)) => Ok(()),
                    (head, None) => Err(head.start_line),
                }
            })
            .await;
        }
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The first finding: nodes started with nothing but the store's URL each took their
/// own `https://localhost:<port>` as issuer, and refused each other's tokens. Now the first node
/// fixes its issuer in the store and the others use it; a node configured with another one
/// refuses to start, saying which and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_without_a_configured_issuer_accept_each_others_tokens() {
    let echo = echo_upstream().await;
    let cluster = cluster(3).without_issuer().start().await;
    let first_port = cluster.nodes[0].control.port();
    let issuer = format!("https://localhost:{first_port}");
    for i in 0..3 {
        let http = cluster.http(i);
        let discovery = http.send(ureq::http::Method::GET, "/.well-known/openid-configuration", vec![], None).await;
        assert_eq!(discovery.expect(200)["issuer"], issuer.as_str(), "node {i} names the first node's issuer");
    }
    let admin = cluster.admin(0).await;
    let (path, application) = subscribed_api(&admin, &echo).await;
    let mut tokens = Vec::new();
    for i in 0..3 {
        tokens.push(token(&cluster.admin(i).await, &application).await);
    }
    accepted_everywhere(&cluster, &path, &tokens).await;

    // A fourth node told another issuer refuses to start, in one line naming both.
    let dir = TempDir::new("issuer-mismatch");
    let config = format!(
        "[gateway]\nws_listen = \"127.0.0.1:0\"\nwss_listen = \"off\"\n\
         [control]\nlisten = \"127.0.0.1:0\"\nissuer = \"https://other.example\"\n[store]\nurl = {:?}\n",
        cluster.schema().url
    );
    let config = dir.write("wsgate.toml", &config);
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "off")
        .kill_on_drop(true)
        .output();
    let output = within(Duration::from_secs(30), "the mismatched node gives up", run).await.expect("it runs");
    assert!(!output.status.success(), "it must not start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "control.issuer is \"https://other.example\" but this store's issuer is \"{issuer}\" (fixed when the store \
         was first set up); remove control.issuer or set it to \"{issuer}\""
    );
    assert!(stderr.contains(&expected), "stderr: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

/// The control address of the node holding the duties lease, read from the store: the holder
/// is a node id, whose node-list record says where that node listens.
async fn duties_holder(cluster: &Cluster) -> Option<String> {
    let client = pg_connect(&cluster.schema().url).await;
    let rows = client
        .query("SELECT n.control_addr FROM leases l JOIN nodes n ON n.id = l.holder WHERE l.name = 'duties'", &[])
        .await
        .expect("read the lease");
    rows.first().and_then(|row| row.get(0))
}

/// Which node holds the duties, waiting until one does.
async fn holding_node(cluster: &Cluster, among: &[usize], limit: Duration) -> usize {
    let started = Instant::now();
    loop {
        if let Some(holder) = duties_holder(cluster).await
            && let Some(&i) = among.iter().find(|&&i| holder == cluster.nodes[i].control.to_string())
        {
            return i;
        }
        assert!(started.elapsed() < limit, "no node among {among:?} took the duties within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// "Never twice and never not at all when the holder dies": a SIGKILLed holder is replaced
/// once its lease ran out (6 s, renewed every 2 s); one that stops cleanly hands over at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duties_pass_on_when_their_holder_dies_or_stops() {
    let mut cluster = cluster(3).duties_lease("6s").start().await;
    let lease = Duration::from_secs(6);
    let tick = Duration::from_secs(2);
    let first = holding_node(&cluster, &[0, 1, 2], tick * 2).await;
    cluster.nodes[first].kill().await;
    let killed = Instant::now();
    let others: Vec<usize> = (0..3).filter(|&i| i != first).collect();
    let second = holding_node(&cluster, &others, lease + tick * 2).await;
    let took = killed.elapsed();
    assert!(took <= lease + tick + Duration::from_millis(500), "taken over after {took:?}");
    assert!(took >= lease - tick - Duration::from_millis(500), "not before the lease expired: {took:?}");

    let stopped = Instant::now();
    cluster.nodes[second].terminate().await;
    let third: Vec<usize> = others.into_iter().filter(|&i| i != second).collect();
    holding_node(&cluster, &third, lease).await;
    let took = stopped.elapsed();
    // Waiting for the lease to expire would take at least `lease - tick`.
    assert!(took < lease - tick - Duration::from_millis(500), "released on shutdown, taken at once: {took:?}");
}

/// The "key rotation forced on all three nodes at once produces exactly one new key",
/// and every node signs with it afterwards: tokens issued through each verify on every gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_forced_on_three_nodes_at_once_makes_one_key_all_sign_with() {
    let echo = echo_upstream().await;
    let cluster = cluster(3).start().await;
    let mut admins = Vec::new();
    for i in 0..3 {
        admins.push(cluster.admin(i).await);
    }
    let (path, application) = subscribed_api(&admins[0], &echo).await;
    let before = admins[0].get("/api/v1/signing-keys").await.expect(200);
    let current = before[0]["kid"].as_str().expect("kid").to_string();
    assert_eq!(before.as_array().map(Vec::len), Some(1));
    // Each node has signed with the current key, so each has it cached.
    for admin in &admins {
        assert_eq!(kid_of(&token(admin, &application).await), current);
    }

    let body = json!({"kid": current});
    let answers = futures_util::future::join_all(
        admins.iter().map(|admin| admin.post("/api/v1/signing-keys/rotate", body.clone())),
    )
    .await;
    let kids: BTreeSet<String> =
        answers.iter().map(|answer| answer.expect(200)["kid"].as_str().expect("kid").to_string()).collect();
    assert_eq!(kids.len(), 1, "every node answers with the same key: {kids:?}");
    let new = kids.into_iter().next().expect("a kid");
    assert_ne!(new, current);
    let after = admins[1].get("/api/v1/signing-keys").await.expect(200);
    assert_eq!(after.as_array().map(Vec::len), Some(2), "exactly one new key: {after}");

    let mut tokens = Vec::new();
    for (i, admin) in admins.iter().enumerate() {
        let signed = eventually(&format!("node {i} signs with the new key"), || async {
            let token = token(admin, &application).await;
            if kid_of(&token) == new { Ok(token) } else { Err(format!("signed with {}", kid_of(&token))) }
        })
        .await;
        tokens.push(signed);
    }
    accepted_everywhere(&cluster, &path, &tokens).await;
}

/// Rotation by time on three nodes issuing tokens all along: the duties' holder makes each
/// next key ahead of the edge and the store makes it once, so keys are one per period (6 s less
/// the 2 s made ahead), never several at one edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_time_on_three_nodes_makes_one_key_per_period() {
    let cluster = cluster(3).signing_key_rotation("6s").duties_lease("3s").start().await;
    let mut admins = Vec::new();
    for i in 0..3 {
        admins.push(cluster.admin(i).await);
    }
    let application = create_application(&admins[0], "Rotating").await.id;
    let started = now();
    let deadline = Instant::now() + Duration::from_secs(14);
    let mut kids = BTreeSet::new();
    while Instant::now() < deadline {
        let tokens = futures_util::future::join_all(admins.iter().map(|admin| token(admin, &application))).await;
        kids.extend(tokens.iter().map(|token| kid_of(token)));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let keys = admins[0].get("/api/v1/signing-keys").await.expect(200);
    let mut made: Vec<i64> =
        keys.as_array().expect("list").iter().map(|k| k["created_at"].as_i64().expect("created_at")).collect();
    made.sort_unstable();
    // Keys are made every 4 s (to the second), so at least 3 in the 14 s of issuing.
    assert!(made.iter().filter(|&&at| at >= started).count() >= 3, "rotation happened: {made:?}");
    assert!(kids.len() >= 3, "the nodes signed with the new keys: {kids:?}");
    for pair in made.windows(2) {
        assert!(pair[1] - pair[0] >= 3, "two keys made at one edge: {made:?}");
    }
}

/// A node without the control plane takes the store's issuer: it accepts the tokens the
/// control-plane nodes issue without being told whose they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_only_node_accepts_tokens_of_the_stores_issuer() {
    let echo = echo_upstream().await;
    let cluster = cluster(1).without_issuer().start().await;
    let admin = cluster.admin(0).await;
    let (path, application) = subscribed_api(&admin, &echo).await;
    let token = token(&admin, &application).await;

    let dir = TempDir::new("gateway-only");
    let config = format!(
        "[gateway]\nws_listen = \"127.0.0.1:0\"\nwss_listen = \"off\"\n[control]\nlisten = \"off\"\n[store]\nurl = {:?}\n",
        cluster.schema().url
    );
    let config = dir.write("wsgate.toml", &config);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the wsgate binary starts");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout is piped"));
    let ws: std::net::SocketAddr = within(Duration::from_secs(30), "the gateway-only node listens", async {
        use tokio::io::AsyncBufReadExt;
        let mut line = String::new();
        loop {
            line.clear();
            assert!(stdout.read_line(&mut line).await.expect("stdout") > 0, "the node exited before it listened");
            if let Some(addr) = line.trim().strip_prefix("wsgate: ws listening on ") {
                return addr.parse().expect("an address");
            }
        }
    })
    .await;
    eventually("the gateway-only node accepts the control plane's token", || async {
        match attempt(ws, &path, &bearer(&token)).await {
            (_, Some(_)) => Ok(()),
            (head, None) => Err(head.start_line),
        }
    })
    .await;
}

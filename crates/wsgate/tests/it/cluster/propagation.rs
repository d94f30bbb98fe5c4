//! Three nodes on one store: an API created and published through node 0 is routable on
//! nodes 1 and 2 within one second (measured over repetitions, its distribution printed), and
//! revoking a token through node 1 closes its live sockets on nodes 0 and 2 within one second,
//! with 1008, while another application's sockets stay up.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{distribution, keyless_api, until_routed};
use crate::harness::cluster::cluster;
use crate::harness::gateway::echo_upstream;
use crate::security::socket::{Socket, attempt};
use crate::security::world::{bearer, create_application};

const ONE_SECOND: Duration = Duration::from_secs(1);
const REPETITIONS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_published_through_one_node_is_routed_by_the_others_within_a_second() {
    let echo = echo_upstream().await;
    let cluster = cluster(3).start().await;
    let admin = cluster.admin(0).await;
    let mut took: Vec<Vec<Duration>> = vec![Vec::new(); cluster.nodes.len()];
    for i in 0..REPETITIONS {
        // From before the request: the time includes the control plane's own answer.
        let sent = Instant::now();
        let path = keyless_api(&admin, &format!("/propagated{i}"), &echo.url()).await;
        let waits = cluster.nodes.iter().map(|node| until_routed(node.ws, &path, sent, 2 * ONE_SECOND));
        for (node, time) in futures_util::future::join_all(waits).await.into_iter().enumerate() {
            took[node].push(time);
        }
    }
    let all: Vec<Duration> = took[1..].iter().flatten().copied().collect();
    for (node, samples) in took.iter().enumerate() {
        eprintln!("propagation: created through node 0, routable on node {node}: {}", distribution(samples));
    }
    eprintln!("propagation: routable on the other nodes: {}", distribution(&all));
    assert!(all.iter().all(|time| *time < ONE_SECOND), "every sample under 1 s: {}", distribution(&all));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_through_one_node_closes_its_sockets_on_the_others_within_a_second() {
    let echo = echo_upstream().await;
    let cluster = cluster(3).start().await;
    let admin = cluster.admin(1).await;
    let body = json!({"name": "Everywhere", "context": "/everywhere", "version": "1.0",
                      "endpoints": [echo.url()], "plans": ["Gold"], "publish": true});
    let api = admin.post("/api/v1/apis", body).await.expect(201);
    let path = "/everywhere/1.0.0";
    let (revoked_app, kept_app) =
        (create_application(&admin, "Revoked").await, create_application(&admin, "Kept").await);
    let control = cluster.http(1);
    let mut tokens = Vec::new();
    for app in [&revoked_app, &kept_app] {
        let subscribe = json!({"application_id": app.id, "api_id": api["id"], "plan": "Gold"});
        admin.post("/api/v1/subscriptions", subscribe).await.expect(201);
        let grant = [("grant_type", "client_credentials")];
        let answer = control.post_form("/oauth2/token", app.basic(), &grant).await.expect(200);
        tokens.push(answer["access_token"].as_str().expect("access_token").to_string());
    }
    let (revoked, kept) = (&tokens[0], &tokens[1]);
    let open = |node: usize, token: &str| {
        let (addr, headers) = (cluster.nodes[node].ws, bearer(token));
        async move {
            let started = Instant::now();
            loop {
                match attempt(addr, path, &headers).await {
                    (_, Some(socket)) => return socket,
                    (head, None) => assert!(started.elapsed() < 5 * ONE_SECOND, "node {node}: {}", head.start_line),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let mut doomed: Vec<Socket> = vec![open(0, revoked).await, open(2, revoked).await];
    let mut spared: Vec<Socket> = vec![open(0, kept).await, open(2, kept).await];

    control.post_form("/oauth2/revoke", revoked_app.basic(), &[("token", revoked)]).await.expect(200);
    let revoked_at = Instant::now();
    for (i, socket) in doomed.iter_mut().enumerate() {
        let close = socket.closed_by(revoked_at + ONE_SECOND).await;
        assert_eq!(close, (Some(1008), "token revoked".to_string()), "socket {i} of the revoked token");
    }
    eprintln!("revocation: through node 1, both sockets on nodes 0 and 2 closed {:?} after", revoked_at.elapsed());
    for socket in &mut spared {
        socket.echoes("still here").await;
    }
}

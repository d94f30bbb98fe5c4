//! SIGKILL of one node of three: its own clients lose their connection; the other nodes'
//! clients do not notice and keep relaying, and new clients keep being admitted there.

use std::time::Duration;

use super::{keyless_api, until_routed};
use crate::harness::RawClient;
use crate::harness::cluster::cluster;
use crate::harness::gateway::echo_upstream;
use crate::security::socket::{Socket, attempt};

/// Two clients on each node.
const PER_NODE: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_takes_only_its_own_clients_with_it() {
    let echo = echo_upstream().await;
    let mut cluster = cluster(3).start().await;
    let admin = cluster.admin(0).await;
    let path = keyless_api(&admin, "/survivors", &echo.url()).await;
    let mut sockets: Vec<Vec<Socket>> = Vec::new();
    for node in &cluster.nodes {
        until_routed(node.ws, &path, std::time::Instant::now(), Duration::from_secs(5)).await;
        let mut on_node = Vec::new();
        for _ in 0..PER_NODE {
            let (head, socket) = attempt(node.ws, &path, &[]).await;
            let mut socket = socket.unwrap_or_else(|| panic!("{} upgrades: {}", node.ws, head.start_line));
            socket.echoes("hello").await;
            on_node.push(socket);
        }
        sockets.push(on_node);
    }

    cluster.nodes[1].kill().await;

    for socket in &mut sockets[1] {
        assert!(socket.is_hung_up().await, "a client of the killed node loses its connection");
    }
    for (node, on_node) in sockets.iter_mut().enumerate().filter(|(node, _)| *node != 1) {
        for (i, socket) in on_node.iter_mut().enumerate() {
            for round in 0..3 {
                socket.echoes(&format!("node {node} client {i} round {round}")).await;
            }
        }
    }
    for node in [0, 2] {
        let addr = cluster.nodes[node].ws;
        let mut fresh = RawClient::upgraded(addr, &path).await;
        fresh.send_frame(crate::harness::frame(crate::harness::opcode::TEXT, "newcomer")).await;
        assert_eq!(fresh.read_frame().await.payload, b"newcomer", "a new client of node {node} is relayed");
    }
}

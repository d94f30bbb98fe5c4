//! The shared services a cluster runs on, made private to one test: a schema of its own in the
//! machine's PostgreSQL (`WSGATE_PG_URL`), and either the machine's Redis (`WSGATE_REDIS_URL`,
//! with a key prefix of the test's own) or a `redis-server` of the test's own on a free port,
//! for tests that kill it. Never the machine's services themselves: those stay up.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::NoTls;

use super::ports::unused_port;

/// A name no other test or run uses at the same time.
pub fn unique(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or_default();
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

fn pg_url() -> String {
    std::env::var("WSGATE_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn shared_redis_url() -> String {
    std::env::var("WSGATE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio::time::timeout(Duration::from_secs(5), tokio_postgres::connect(url, NoTls))
        .await
        .unwrap_or_else(|_| panic!("PostgreSQL at {url} answers within 5 s (WSGATE_PG_URL)"))
        .unwrap_or_else(|err| panic!("PostgreSQL at {url} (WSGATE_PG_URL): {err}"));
    tokio::spawn(connection);
    client
}

/// A schema of the test's own; dropped, with every session using it, when this is dropped.
pub struct PgSchema {
    base: String,
    pub name: String,
    /// The store URL for nodes: search path and application name set to the schema.
    pub url: String,
}

impl PgSchema {
    pub async fn create() -> PgSchema {
        let base = pg_url();
        let name = unique("wsgate_it");
        pg_connect(&base).await.batch_execute(&format!("CREATE SCHEMA {name}")).await.expect("create schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-csearch_path%3D{name}&application_name={name}");
        PgSchema { base, name, url }
    }

    /// The store URL for a node that reaches PostgreSQL through `addr` (a proxy in front of it).
    pub fn url_via(&self, addr: std::net::SocketAddr) -> String {
        let (before, host_port) = split_authority(&self.url);
        let after = &self.url[before.len() + host_port.len()..];
        format!("{before}{addr}{after}")
    }
}

/// The address of the machine's PostgreSQL (`WSGATE_PG_URL`), for a proxy in front of it.
pub fn pg_server() -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let url = pg_url();
    let (_, host_port) = split_authority(&url);
    let with_port = if host_port.contains(':') { host_port.to_string() } else { format!("{host_port}:5432") };
    with_port.to_socket_addrs().ok().and_then(|mut addrs| addrs.next()).expect("WSGATE_PG_URL names a host")
}

/// `postgres://user@host:port/db?...` → (`postgres://user@`, `host:port`).
fn split_authority(url: &str) -> (&str, &str) {
    let start = url.find("://").map(|i| i + 3).expect("the PostgreSQL URL has a scheme");
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let host_start = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    (&url[..host_start], &url[host_start..end])
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop cannot await: a thread with a runtime of its own ends the schema's sessions (the
        // nodes may still hold locks) and drops it.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let client = pg_connect(&base).await;
                let end = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1";
                let _ = client.execute(end, &[&name]).await;
                let _ = client
                    .batch_execute(&format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await;
            });
        })
        .join();
    }
}

/// A `redis-server` of the test's own on a free port; killed when dropped.
pub struct OwnRedis {
    pub port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start() -> OwnRedis {
        let port = unused_port();
        let mut redis = OwnRedis { port, child: None };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port, empty, and waits until it listens.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (Debian package redis-server)");
        self.child = Some(child);
        for _ in 0..250 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not listen on port {} within 5 s", self.port);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

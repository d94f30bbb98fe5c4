//! What the tests share besides the suite: unique names, temporary directories, and the
//! PostgreSQL test schema.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_postgres::NoTls;

/// A name no other test, run or process uses at the same time: `RandomState` is seeded
/// randomly per process, the counter separates calls within one.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("{prefix}_{:016x}", hasher.finish())
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn base_url() -> String {
    std::env::var("WSGATE_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `url` with its search path set to `schema`, through the startup `options` parameter, and
/// the schema's name as application name, so the test's sessions can be found and ended.
pub fn url_in_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-csearch_path%3D{schema}&application_name={schema}")
}

/// A schema of the test's own in the shared PostgreSQL database, dropped with everything in it
/// when this is dropped (also when the test fails).
pub struct PgSchema {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgSchema {
    /// `None` (after saying why) when the server cannot be reached and this is not CI.
    pub async fn create() -> Option<PgSchema> {
        let admin_url = base_url();
        let client = match connect(&admin_url).await {
            Ok(client) => client,
            Err(error) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
                panic!("PostgreSQL at WSGATE_PG_URL is required under CI=true: {error}")
            }
            Err(error) => {
                eprintln!("skipped: PostgreSQL is not reachable ({error}); set WSGATE_PG_URL");
                return None;
            }
        };
        let name = unique_name("wsgate_t");
        client.batch_execute(&format!("CREATE SCHEMA {name}")).await.expect("create the test schema");
        let url = url_in_schema(&admin_url, &name);
        Some(PgSchema { admin_url, name, url })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // Drop cannot await, so a thread with a runtime of its own does the work. The test's
        // runtime is blocked meanwhile, stores opened on it included: their sessions are ended
        // first, or a lock they still hold would make the drop wait for ever.
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async {
                let client = connect(&url).await?;
                let end_sessions = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                    WHERE application_name = $1 AND pid <> pg_backend_pid()";
                client.execute(end_sessions, &[&name]).await.map_err(|e| e.to_string())?;
                let drop = format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {name} CASCADE");
                client.batch_execute(&drop).await.map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.name);
        }
    }
}

/// A plain connection for the test's own checks, bounded in time.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let connecting = tokio_postgres::connect(url, NoTls);
    let (client, connection) = tokio::time::timeout(Duration::from_secs(5), connecting)
        .await
        .map_err(|_| "no answer within 5 s".to_string())?
        .map_err(|error| match std::error::Error::source(&error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        })?;
    tokio::spawn(connection);
    Ok(client)
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

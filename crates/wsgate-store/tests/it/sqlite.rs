//! The suite on SQLite, each case in a file of its own, and what is particular to opening a
//! file.

use wsgate_core::config::StoreSettings;
use wsgate_core::model::Plan;

use crate::harness::TempDir;
use crate::suite;

macro_rules! sqlite_case {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let dir = TempDir::new("wsgate_sqlite");
                let db = wsgate_store::open_sqlite(&dir.path().join("wsgate.db")).await.expect("open");
                tokio::time::timeout(suite::CASE_LIMIT, suite::$case(db)).await.expect("the case finished in time");
            }
        )*
    };
}

suite::for_each_case!(sqlite_case);

#[tokio::test]
async fn open_without_a_url_creates_the_data_directory_and_file() {
    let dir = TempDir::new("wsgate_sqlite");
    let data_dir = dir.path().join("nested").join("data");
    let db = wsgate_store::open(&StoreSettings::default(), &data_dir).await.expect("open");
    let file = data_dir.join(wsgate_store::SQLITE_FILE);
    assert!(file.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "password hashes and signing keys are for the owner only");
    }
    assert_eq!(db.list_plans().await.expect("list").len(), Plan::defaults().len());
}

#[tokio::test]
async fn reopening_keeps_data_and_migrates_once() {
    let dir = TempDir::new("wsgate_sqlite");
    let path = dir.path().join("wsgate.db");
    let first = wsgate_store::open_sqlite(&path).await.expect("open");
    suite::reopening_keeps_data_and_seeds_once(first, async || wsgate_store::open_sqlite(&path).await.expect("reopen"))
        .await;
    let connection = rusqlite::Connection::open(&path).expect("open the file");
    let (rows, versions): (i64, i64) = connection
        .query_row("SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .expect("count");
    assert_eq!(rows, versions, "one row per migration, however often opened");
    assert_eq!(rows, 7, "versions 1 to 7");
    let mode: String = connection.query_row("PRAGMA journal_mode", [], |row| row.get(0)).expect("journal mode");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn an_unusable_path_is_reported_as_unavailable() {
    let dir = TempDir::new("wsgate_sqlite");
    // A directory where the file should be.
    let error = wsgate_store::open_sqlite(dir.path()).await.expect_err("a directory is no database");
    assert!(matches!(error, wsgate_store::StoreError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains(&dir.path().display().to_string()), "{error}");
}

/// A store made by the first schema keeps its data through version 2, and what could be asked
/// for before (any scope) stays granted, so issued tokens keep working.
#[tokio::test]
async fn version_2_keeps_subscriptions_and_grants_them_their_apis_scopes() {
    let dir = TempDir::new("wsgate_sqlite");
    let path = dir.path().join("wsgate.db");
    {
        let connection = rusqlite::Connection::open(&path).expect("create the file");
        connection.execute_batch(include_str!("../../migrations/0001_initial.sql")).expect("version 1");
        connection
            .execute_batch(
                "CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, \
                 applied_at BIGINT NOT NULL);
                 INSERT INTO schema_migrations VALUES (1, 'initial', 0);
                 INSERT INTO apis VALUES ('a1', 'Chat', '/chat', '1.0', '1.0.0', '[]', '[\"Gold\"]', 'oauth2', \
                   'PUBLISHED', 0, NULL, 0, '[\"chat\",\"read\"]', 1, 'bob', 0, 0);
                 INSERT INTO applications VALUES ('p1', 'mobile', 'alice', '', 0);
                 INSERT INTO subscriptions VALUES ('s1', 'p1', 'a1', 'Gold', 'ACTIVE', 0);",
            )
            .expect("version 1 data");
    }
    let db = wsgate_store::open_sqlite(&path).await.expect("open and migrate");
    let subscription = db.subscription("s1").await.expect("read").expect("kept");
    assert_eq!(subscription.granted_scopes, ["chat", "read"]);
    let app = db.application("p1").await.expect("read").expect("kept");
    assert!(app.external_clients.is_empty(), "no external client is registered by the migration");
}

/// A store made by the first release (schema version 1) keeps its plans' limits when a newer
/// wsgate opens it: the per-minute message count and the connection cap carry over.
#[tokio::test]
async fn a_version_1_store_keeps_its_plans_limits() {
    let dir = TempDir::new("wsgate_sqlite");
    let path = dir.path().join("wsgate.db");
    {
        let connection = rusqlite::Connection::open(&path).expect("create");
        connection
            .execute_batch(
                "CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, \
                 applied_at BIGINT NOT NULL);",
            )
            .expect("migrations table");
        connection.execute_batch(include_str!("../../migrations/0001_initial.sql")).expect("version 1");
        connection
            .execute_batch(
                "INSERT INTO schema_migrations VALUES (1, 'initial', 0); \
                 INSERT INTO plans VALUES ('Gold', 'old gold', 20000, 200), ('Open', 'no limits', NULL, NULL);",
            )
            .expect("version 1 data");
    }
    let store = wsgate_store::open_sqlite(&path).await.expect("open and migrate");
    let plans = store.list_plans().await.expect("list");
    assert_eq!(plans.len(), 2, "an existing store is not seeded again: {plans:?}");
    let gold = &plans[0].limits;
    assert_eq!(gold.messages.map(|r| r.to_string()), Some("20000/min".into()));
    assert_eq!(gold.connections, Some(200));
    assert!(plans[1].limits.is_unlimited());
}

/// Processes sharing one file race for a lease: exactly one holds it.
#[tokio::test]
async fn one_of_several_connections_to_a_file_takes_a_lease() {
    let dir = TempDir::new("wsgate_sqlite");
    let path = dir.path().join("wsgate.db");
    let mut nodes = Vec::new();
    for _ in 0..4 {
        nodes.push(wsgate_store::open_sqlite(&path).await.expect("open"));
    }
    let tasks: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let node = node.clone();
            tokio::spawn(async move { node.acquire_lease("duties", &format!("node-{i}"), 1_000, 1_000).await })
        })
        .collect();
    let mut holders = 0;
    for task in tasks {
        holders += usize::from(task.await.expect("no panic").expect("try"));
    }
    assert_eq!(holders, 1);
}

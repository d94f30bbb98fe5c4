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
    let versions: i64 =
        connection.query_row("SELECT COUNT(*) FROM schema_migrations", [], |row| row.get(0)).expect("count");
    assert_eq!(versions, 1, "one row per migration, however often opened");
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

//! The writer against real stores: records fed through the sink come back as the store's
//! series, a shutdown stores what was queued, and a store that fails keeps memory bounded.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use wsgate_analytics::{minute_of, now_ms};
use wsgate_core::config::AnalyticsSettings;
use wsgate_core::session::{ClosedBy, SessionRecord, SessionSink};
use wsgate_store::Store;
use wsgate_store::analytics::{AnalyticsFilter, CodeKind, Span, TopBy};

fn record(connection: u64, application: Option<&str>, status: u16, at: i64) -> SessionRecord {
    SessionRecord {
        connection,
        api_id: Some("api-1".into()),
        api_name: "Echo".into(),
        api_version: "1.0".into(),
        application_id: application.map(str::to_owned),
        plan: Some("Gold".into()),
        client_ip: Some("127.0.0.0".into()),
        started_at: at - 500,
        at,
        last: true,
        status,
        refusal: (status != 101).then(|| "invalid_token".into()),
        messages_in: if status == 101 { 4 } else { 0 },
        bytes_in: if status == 101 { 40 } else { 0 },
        messages_out: if status == 101 { 4 } else { 0 },
        bytes_out: if status == 101 { 44 } else { 0 },
        client_close: (status == 101).then_some(1000),
        upstream_close: None,
        closed_by: (status == 101).then_some(ClosedBy::Client),
    }
}

fn settings() -> AnalyticsSettings {
    AnalyticsSettings { flush_interval: Duration::from_millis(100), ..AnalyticsSettings::default() }
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        // Tests run in parallel: the counter keeps two started in the same millisecond apart.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("wsgate_analytics_{}_{}_{n}", std::process::id(), now_ms()));
        std::fs::create_dir_all(&path).expect("temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Feeds a known pattern, waits for the periodic flush, checks the series; then more records
/// and a shutdown, which must store them without waiting for a tick.
async fn pattern_comes_back(store: Arc<dyn Store>) {
    let (writer, handle) = wsgate_analytics::start(Arc::clone(&store), &settings());
    let now = now_ms();
    for connection in 0..5 {
        writer.record(record(connection, Some("app-a"), 101, now));
    }
    writer.record(record(5, Some("app-b"), 101, now));
    writer.record(record(6, None, 401, now));
    writer.record(record(7, None, 401, now));

    let minute = minute_of(now);
    let span = Span { from: minute - 3600, to: minute + 60, step: 60 };
    let api = AnalyticsFilter { api: Some("api-1"), application: None };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let series = loop {
        let series = store.analytics_series(api, span).await.expect("series");
        if series.iter().map(|point| point.counts.closed + point.counts.refused).sum::<u64>() == 8 {
            break series;
        }
        assert!(tokio::time::Instant::now() < deadline, "the writer did not flush within 10 s: {series:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let total = |f: fn(&wsgate_store::analytics::Counts) -> u64| series.iter().map(|p| f(&p.counts)).sum::<u64>();
    assert_eq!(total(|c| c.opened), 6);
    assert_eq!(total(|c| c.closed), 6);
    assert_eq!(total(|c| c.refused), 2);
    assert_eq!(total(|c| c.messages_in), 24);
    assert_eq!(total(|c| c.bytes_out), 264);
    let codes = store.analytics_codes(api, minute - 3600, minute + 60).await.expect("codes");
    let refused: u64 = codes.iter().filter(|c| c.kind == CodeKind::Refused && c.code == 401).map(|c| c.total).sum();
    assert_eq!(refused, 2);
    let top = store.analytics_top(api, minute - 3600, minute + 60, TopBy::Application, 5).await.expect("top");
    assert_eq!(
        top.iter().map(|t| (t.key.as_str(), t.connections)).collect::<Vec<_>>(),
        vec![("app-a", 5), ("app-b", 1)]
    );

    for connection in 10..13 {
        writer.record(record(connection, Some("app-b"), 101, now));
    }
    handle.shutdown().await;
    let top = store.analytics_top(api, minute - 3600, minute + 60, TopBy::Application, 5).await.expect("top");
    assert_eq!(
        top.iter().map(|t| (t.key.as_str(), t.connections)).collect::<Vec<_>>(),
        vec![("app-a", 5), ("app-b", 4)]
    );
    assert_eq!(writer.stats().dropped_records.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn records_become_the_series_on_sqlite() {
    let dir = TempDir::new();
    let store = wsgate_store::open_sqlite(&dir.0.join("wsgate.db")).await.expect("open");
    pattern_comes_back(store).await;
}

#[tokio::test]
async fn records_become_the_series_on_postgres() {
    let url = std::env::var("WSGATE_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("wsgate_analytics_{}_{}", std::process::id(), now_ms());
    let admin = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            client
        }
        Err(error) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("PostgreSQL at WSGATE_PG_URL is required under CI=true: {error}")
        }
        Err(error) => {
            eprintln!("skipped: PostgreSQL is not reachable ({error})");
            return;
        }
    };
    admin.batch_execute(&format!("CREATE SCHEMA {schema}")).await.expect("schema");
    let separator = if url.contains('?') { '&' } else { '?' };
    let store =
        wsgate_store::open_postgres(&format!("{url}{separator}options=-csearch_path%3D{schema}")).await.expect("open");
    pattern_comes_back(store).await;
    admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.expect("drop the schema");
}

/// A queue of one and a writer that cannot keep up: `record` never waits, it drops and counts.
#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_drops_and_counts_without_blocking() {
    let dir = TempDir::new();
    let store = wsgate_store::open_sqlite(&dir.0.join("wsgate.db")).await.expect("open");
    let settings = AnalyticsSettings { queue: 1, ..settings() };
    let (writer, handle) = wsgate_analytics::start(store, &settings);
    // On a current-thread runtime the writer's task cannot run between these calls.
    for connection in 0..100 {
        writer.record(record(connection, Some("app-a"), 101, now_ms()));
    }
    assert_eq!(writer.stats().dropped_records.load(Ordering::Relaxed), 99);
    handle.shutdown().await;
}

/// While the store fails, the buckets wait in memory and the next flush that works stores them
/// all: nothing is lost, nothing counted twice.
#[tokio::test]
async fn buckets_wait_for_a_failing_store_and_are_stored_once_it_works() {
    const MIGRATION: &str = include_str!("../../wsgate-store/migrations/0004_analytics.sql");
    let dir = TempDir::new();
    let path = dir.0.join("wsgate.db");
    let store = wsgate_store::open_sqlite(&path).await.expect("open");
    let (writer, handle) = wsgate_analytics::start(Arc::clone(&store), &settings());
    // Another connection to the same file takes the tables away: every flush now fails.
    let side = rusqlite::Connection::open(&path).expect("open the file");
    side.execute_batch("DROP TABLE analytics_minutes; DROP TABLE analytics_codes;").expect("drop");
    let now = now_ms();
    for connection in 0..3 {
        writer.record(record(connection, Some("app-a"), 101, now));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while writer.stats().failed_flushes.load(Ordering::Relaxed) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the writer kept trying");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    side.execute_batch(MIGRATION).expect("the tables are back");
    let minute = minute_of(now);
    let span = Span { from: minute - 60, to: minute + 60, step: 60 };
    let api = AnalyticsFilter { api: Some("api-1"), application: None };
    loop {
        let opened: u64 =
            store.analytics_series(api, span).await.expect("series").iter().map(|p| p.counts.opened).sum();
        if opened > 0 {
            assert_eq!(opened, 3, "every record once");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the kept buckets were stored once the store worked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.shutdown().await;
    let opened: u64 = store.analytics_series(api, span).await.expect("series").iter().map(|p| p.counts.opened).sum();
    assert_eq!(opened, 3, "not again at shutdown");
    assert_eq!(writer.stats().dropped_buckets.load(Ordering::Relaxed), 0);
}

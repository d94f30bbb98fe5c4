//! The suite on PostgreSQL, each case in a schema of its own, and what only a shared database
//! has: several nodes on one schema, nodes starting together, schemas not hearing each other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wsgate_core::config::StoreSettings;
use wsgate_core::model::{Plan, RevokedToken, Role};
use wsgate_store::{Change, KeyRotation, Store, StoreError};

use crate::harness::{self, PgSchema};
use crate::suite::{self, NOW, expect_changes, next_change, user};

macro_rules! postgres_case {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let Some(schema) = PgSchema::create().await else { return };
                let db = wsgate_store::open_postgres(&schema.url).await.expect("open");
                tokio::time::timeout(suite::CASE_LIMIT, suite::$case(db)).await.expect("the case finished in time");
            }
        )*
    };
}

suite::for_each_case!(postgres_case);

#[tokio::test]
async fn open_with_a_url_uses_postgres() {
    let Some(schema) = PgSchema::create().await else { return };
    let dir = harness::TempDir::new("wsgate_pg");
    let settings = StoreSettings { url: Some(schema.url.clone()) };
    let db = wsgate_store::open(&settings, dir.path()).await.expect("open");
    db.create_user(&user("bob", &[])).await.expect("create user");
    assert!(!dir.path().join(wsgate_store::SQLITE_FILE).exists(), "no SQLite file beside");
    let client = harness::connect(&schema.url).await.expect("connect");
    let row = client.query_one("SELECT COUNT(*) FROM users", &[]).await.expect("count users in the schema");
    assert_eq!(row.get::<_, i64>(0), 1);
}

#[tokio::test]
async fn reopening_keeps_data_and_migrates_once() {
    let Some(schema) = PgSchema::create().await else { return };
    let first = wsgate_store::open_postgres(&schema.url).await.expect("open");
    suite::reopening_keeps_data_and_seeds_once(first, async || {
        wsgate_store::open_postgres(&schema.url).await.expect("reopen")
    })
    .await;
    assert_eq!(migration_rows(&schema).await, 7);
}

/// Rows in `schema_migrations`; asserts there is one per version (none applied twice).
async fn migration_rows(schema: &PgSchema) -> i64 {
    let client = harness::connect(&schema.url).await.expect("connect");
    let row =
        client.query_one("SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations", &[]).await.expect("count");
    let (rows, versions): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(rows, versions, "a migration was applied twice");
    rows
}

#[tokio::test]
async fn nodes_starting_together_migrate_once() {
    let Some(schema) = PgSchema::create().await else { return };
    let open = || wsgate_store::open_postgres(&schema.url);
    let (a, b, c) = tokio::join!(open(), open(), open());
    for node in [a, b, c] {
        let node = node.expect("every node opens");
        assert_eq!(node.list_plans().await.expect("list").len(), Plan::defaults().len(), "seeded once");
    }
    assert_eq!(migration_rows(&schema).await, 7);
}

/// The multi-node feed: a write through one store is heard by another on the same database.
#[tokio::test]
async fn a_second_node_hears_the_first_nodes_writes() {
    let Some(schema) = PgSchema::create().await else { return };
    let first = wsgate_store::open_postgres(&schema.url).await.expect("open the first node");
    let second = wsgate_store::open_postgres(&schema.url).await.expect("open the second node");
    let (mut first_feed, mut second_feed) = (first.changes(), second.changes());

    first.create_user(&user("bob", &[Role::Admin])).await.expect("write through the first");
    expect_changes(&mut second_feed, &[Change::Users]).await;
    expect_changes(&mut first_feed, &[Change::Users]).await;

    second.delete_api("nope").await.expect_err("a failed write announces nothing");
    second.revoke_token(&RevokedToken { jti: "j1".into(), expires_at: NOW }).await.expect("write through the second");
    expect_changes(&mut first_feed, &[Change::Revocations]).await;
    expect_changes(&mut second_feed, &[Change::Revocations]).await;
    assert_eq!(second.user("bob").await.expect("read").map(|u| u.name), Some("bob".into()));
}

#[tokio::test]
async fn stores_in_other_schemas_are_not_heard() {
    let (Some(one_schema), Some(other_schema)) = (PgSchema::create().await, PgSchema::create().await) else { return };
    let one = wsgate_store::open_postgres(&one_schema.url).await.expect("open");
    let other_store = wsgate_store::open_postgres(&other_schema.url).await.expect("open");
    let mut feed = other_store.changes();
    one.create_user(&user("bob", &[])).await.expect("write in one schema");
    other_store.revoke_token(&RevokedToken { jti: "j1".into(), expires_at: NOW }).await.expect("write in the other");
    assert_eq!(next_change(&mut feed).await, Change::Revocations, "the other schema's write was not heard");
    assert_eq!(other_store.user("bob").await.expect("read"), None);
}

#[tokio::test]
async fn an_unreachable_server_is_reported_quickly() {
    let url = format!("postgres://postgres@127.0.0.1:{}/test", harness::free_port());
    let started = Instant::now();
    let error = wsgate_store::open_postgres(&url).await.expect_err("nothing listens there");
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    let StoreError::Unavailable(message) = &error else { panic!("expected unavailable, got {error:?}") };
    assert!(message.contains("127.0.0.1:") && message.to_lowercase().contains("refused"), "{message}");
}

/// A server that accepts the connection and then says nothing (hung, or a black hole on the
/// way) costs a caller the store's call bound, not for ever.
#[tokio::test]
async fn a_server_that_never_answers_is_given_up_on_in_time() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("postgres://postgres@{}/test", silent.local_addr().expect("address"));
    let started = Instant::now();
    let error = wsgate_store::open_postgres(&url).await.expect_err("no answer");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(7), "took {took:?}");
    let StoreError::Unavailable(message) = &error else { panic!("expected unavailable, got {error:?}") };
    assert!(message.ends_with("did not answer within 5 s"), "{message}");
}

#[tokio::test]
async fn a_malformed_url_is_refused_without_echoing_the_password() {
    let error =
        wsgate_store::open_postgres("postgres://wsgate:s3cret@127.0.0.1:notaport/db").await.expect_err("bad url");
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    assert!(!error.to_string().contains("s3cret"), "{error}");
}

/// Nodes racing for a lease, each with its own connection: exactly one holds it; once it has
/// expired another takes it.
#[tokio::test]
async fn one_of_several_nodes_takes_a_lease_and_another_once_it_expired() {
    let Some(schema) = PgSchema::create().await else { return };
    let nodes = open_nodes(&schema, 4).await;
    let ms = NOW * 1000;
    for round in 0..5 {
        let name = format!("duties-{round}");
        let taken = together(&nodes, |i, node| {
            let name = name.clone();
            async move { node.acquire_lease(&name, &format!("node-{i}"), ms, 1000).await.expect("try") }
        })
        .await;
        assert_eq!(taken.iter().filter(|&&t| t).count(), 1, "round {round}: exactly one holder, got {taken:?}");
        let holder = taken.iter().position(|&t| t).expect("a holder");
        let other = (holder + 1) % nodes.len();
        assert!(!nodes[other].acquire_lease(&name, &format!("node-{other}"), ms + 999, 1000).await.expect("try"));
        assert!(nodes[other].acquire_lease(&name, &format!("node-{other}"), ms + 1000, 1000).await.expect("take"));
    }
}

/// The "key rotation forced on all nodes at once produces exactly one new key", at the
/// store: four nodes rotate away from the same key at the same moment, then by time at the
/// edge; one key is made each time, and every node is told the same key.
#[tokio::test]
async fn nodes_rotating_together_make_one_key() {
    let Some(schema) = PgSchema::create().await else { return };
    let nodes = open_nodes(&schema, 4).await;
    let period = 100;
    let first = suite::signing_key("k0", NOW, period);
    let at = move |now: i64, away_from: Option<&'static str>| KeyRotation { away_from, now, needed_at: now, period };
    nodes[0].rotate_signing_key(&first, at(NOW, None)).await.expect("first key");

    for (round, (now, away_from)) in [(NOW + 10, Some("k0")), (NOW + 110, None)].into_iter().enumerate() {
        let signing = together(&nodes, |i, node| async move {
            let key = suite::signing_key(&format!("key-{round}-{i}"), now, period);
            node.rotate_signing_key(&key, at(now, away_from)).await.expect("rotate").kid
        })
        .await;
        assert!(signing.iter().all(|kid| kid == &signing[0]), "round {round}: one key signs: {signing:?}");
        let stored = nodes[0].list_signing_keys().await.expect("list");
        assert_eq!(stored.len(), round + 2, "round {round}: one new key");
    }
}

async fn open_nodes(schema: &PgSchema, count: usize) -> Vec<Arc<dyn Store>> {
    let mut nodes = Vec::new();
    for _ in 0..count {
        nodes.push(wsgate_store::open_postgres(&schema.url).await.expect("open a node"));
    }
    nodes
}

/// Runs `call` for every node at once, each on its own task, and collects the results in order.
async fn together<T, F>(nodes: &[Arc<dyn Store>], call: impl Fn(usize, Arc<dyn Store>) -> F) -> Vec<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = nodes.iter().enumerate().map(|(i, node)| tokio::spawn(call(i, node.clone()))).collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("the call did not panic"));
    }
    results
}

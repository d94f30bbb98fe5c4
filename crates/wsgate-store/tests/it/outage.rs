//! PostgreSQL goes away under a running store and comes back: calls fail fast and clearly
//! while it is gone, the store recovers by itself, the feed tells readers to reload, and no
//! acknowledged write is lost.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;
use wsgate_core::model::Role;
use wsgate_store::{Change, Store, StoreError};

use crate::pg_server::PgServer;
use crate::suite::user;

/// The store promises each call an answer within 5 s; the test allows a little more.
const CALL_BOUND: Duration = Duration::from_secs(6);

/// Writes users `w-0`, `w-1`, … until stopped; returns the names acknowledged and the slowest
/// failed call.
async fn keep_writing(db: Arc<dyn Store>, stop: Arc<AtomicBool>) -> (Vec<String>, Duration) {
    let (mut acknowledged, mut slowest_failure) = (Vec::new(), Duration::ZERO);
    let mut index = 0;
    while !stop.load(Ordering::Relaxed) {
        let name = format!("w-{index}");
        index += 1;
        let started = Instant::now();
        match db.create_user(&user(&name, &[Role::Subscriber])).await {
            Ok(()) => acknowledged.push(name),
            Err(StoreError::Unavailable(_)) => slowest_failure = slowest_failure.max(started.elapsed()),
            Err(other) => panic!("a write during the outage failed with {other:?}, not Unavailable"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (acknowledged, slowest_failure)
}

/// A call that must fail as unavailable; returns how long it took and its message.
async fn unavailable<T: std::fmt::Debug>(call: impl Future<Output = Result<T, StoreError>>) -> (Duration, String) {
    let started = Instant::now();
    let result = tokio::time::timeout(CALL_BOUND * 2, call).await.expect("the call did not hang");
    let took = started.elapsed();
    match result {
        Err(StoreError::Unavailable(message)) => (took, message),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_survives_a_server_outage() {
    let Some(server) = tokio::task::block_in_place(PgServer::start_new) else { return };
    let db = wsgate_store::open_postgres(&server.url()).await.expect("open");
    for index in 0..5 {
        db.create_user(&user(&format!("before-{index}"), &[])).await.expect("write before the outage");
    }

    let stop_writing = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(keep_writing(Arc::clone(&db), Arc::clone(&stop_writing)));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stopping = Instant::now();
    tokio::task::block_in_place(|| server.stop());
    eprintln!("server stopped in {:?}", stopping.elapsed());

    let (read_took, message) = unavailable(db.list_users()).await;
    eprintln!("read while down: {read_took:?}: {message}");
    assert!(read_took < CALL_BOUND, "a read took {read_took:?}");
    assert!(message.contains("PostgreSQL at 127.0.0.1:"), "the message names the server: {message}");
    let (write_took, message) = unavailable(db.create_user(&user("during", &[]))).await;
    eprintln!("write while down: {write_took:?}: {message}");
    assert!(write_took < CALL_BOUND, "a write took {write_took:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut feed = db.changes();
    let restarting = Instant::now();
    tokio::task::block_in_place(|| server.start());
    eprintln!("server restarted in {:?}", restarting.elapsed());

    // The same store, not reopened, writes again.
    let recovering = Instant::now();
    loop {
        match db.create_user(&user("after", &[])).await {
            Ok(()) => break,
            Err(StoreError::Unavailable(message)) if recovering.elapsed() < Duration::from_secs(15) => {
                eprintln!("not yet: {message}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the store did not recover: {error:?}"),
        }
    }
    eprintln!("first write after restart succeeded {:?} after the server was up", recovering.elapsed());

    // The LISTEN connection came back and told readers to reload everything (only users were
    // written, so any other change proves it).
    let listening = Instant::now();
    let mut heard = HashSet::new();
    while !Change::ALL.iter().all(|change| heard.contains(change)) {
        let left = Duration::from_secs(15).saturating_sub(listening.elapsed());
        match tokio::time::timeout(left, feed.recv()).await {
            Ok(Ok(change)) => {
                heard.insert(change);
            }
            Ok(Err(RecvError::Lagged(_))) => {}
            Ok(Err(RecvError::Closed)) => panic!("the feed closed"),
            Err(_) => panic!("after the restart, the feed announced only {heard:?}"),
        }
    }
    eprintln!("feed announced every change {:?} after the first write", listening.elapsed());

    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_writing.store(true, Ordering::Relaxed);
    let (acknowledged, slowest_failure) =
        tokio::time::timeout(CALL_BOUND * 2, writer).await.expect("the writer stops").expect("the writer ran");
    eprintln!("writer: {} writes acknowledged, slowest failed call {slowest_failure:?}", acknowledged.len());
    assert!(slowest_failure < CALL_BOUND, "a failing write took {slowest_failure:?}");

    let stored: HashSet<String> = db.list_users().await.expect("list").into_iter().map(|u| u.name).collect();
    let lost: Vec<&String> = acknowledged.iter().filter(|name| !stored.contains(*name)).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    for name in ["before-0", "before-4", "after"] {
        assert!(stored.contains(name), "{name} is missing");
    }
    assert!(acknowledged.iter().any(|name| name == "w-0"), "the writer wrote before the outage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_costs_each_call_at_most_the_bound() {
    let Some(server) = tokio::task::block_in_place(PgServer::start_new) else { return };
    let db = wsgate_store::open_postgres(&server.url()).await.expect("open");
    db.create_user(&user("before", &[])).await.expect("write before the freeze");

    tokio::task::block_in_place(|| server.freeze());
    // On the open connection: the query is sent and never answered.
    let (took, message) = unavailable(db.list_users()).await;
    eprintln!("read on the frozen connection: {took:?}: {message}");
    assert!(took >= Duration::from_millis(4500) && took < CALL_BOUND, "took {took:?}");
    assert!(message.ends_with("did not answer within 5 s"), "{message}");
    // On a new connection: TCP connects (the kernel accepts), the handshake is never answered.
    let (took, message) = unavailable(db.create_user(&user("during", &[]))).await;
    eprintln!("write needing a new connection: {took:?}: {message}");
    assert!(took < CALL_BOUND, "took {took:?}");
    tokio::task::block_in_place(|| server.thaw());

    let thawed = Instant::now();
    loop {
        match db.create_user(&user("after", &[])).await {
            Ok(()) => break,
            Err(StoreError::Unavailable(message)) if thawed.elapsed() < Duration::from_secs(15) => {
                eprintln!("not yet: {message}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the store did not recover: {error:?}"),
        }
    }
    eprintln!("first write after the thaw succeeded after {:?}", thawed.elapsed());
    let names: HashSet<String> = db.list_users().await.expect("list").into_iter().map(|u| u.name).collect();
    assert!(names.contains("before") && names.contains("after"), "{names:?}");
}

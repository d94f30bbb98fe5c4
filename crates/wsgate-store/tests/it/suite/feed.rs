//! The change feed: what each write announces, and that failed writes announce nothing. The
//! cases subscribe before their first write: with PostgreSQL, a change committed just before
//! `changes()` was called may still arrive after it.

use wsgate_core::model::{Plan, RevokedToken, Role, Session, SubscriptionState};
use wsgate_store::Change;

use super::{Db, NOW, api, application, credentials, expect_changes, next_change, subscription, user};

pub async fn writes_announce_what_they_changed(db: Db) {
    let mut feed = db.changes();
    db.create_user(&user("bob", &[Role::Admin])).await.expect("create user");
    expect_changes(&mut feed, &[Change::Users]).await;
    db.update_user(&user("bob", &[Role::Creator])).await.expect("update user");
    expect_changes(&mut feed, &[Change::Users]).await;

    db.create_api(&api("a1", "Echo", "/echo", "1")).await.expect("create api");
    expect_changes(&mut feed, &[Change::Apis]).await;
    db.update_api(&api("a1", "Echo", "/echo", "2")).await.expect("update api");
    expect_changes(&mut feed, &[Change::Apis]).await;
    db.put_plan(&Plan::defaults()[0]).await.expect("put plan");
    expect_changes(&mut feed, &[Change::Plans]).await;

    db.create_application(&application("p1", "bob", "mobile")).await.expect("create app");
    expect_changes(&mut feed, &[Change::Applications]).await;
    db.create_subscription(&subscription("s1", "p1", "a1", NOW)).await.expect("subscribe");
    expect_changes(&mut feed, &[Change::Subscriptions]).await;
    db.set_subscription_state("s1", SubscriptionState::Blocked).await.expect("block");
    expect_changes(&mut feed, &[Change::Subscriptions]).await;
    db.put_credentials(&credentials("p1", "c1")).await.expect("credentials");
    expect_changes(&mut feed, &[Change::Credentials]).await;

    db.put_signing_key(&wsgate_core::model::SigningKey {
        kid: "k1".into(),
        algorithm: "ES256".into(),
        private_pkcs8: vec![1],
        public_key: vec![2],
        created_at: NOW,
        active_until: NOW,
        retire_at: NOW,
    })
    .await
    .expect("put key");
    expect_changes(&mut feed, &[Change::SigningKeys]).await;
    db.revoke_token(&RevokedToken { jti: "j1".into(), expires_at: NOW }).await.expect("revoke");
    expect_changes(&mut feed, &[Change::Revocations]).await;

    // Sessions are looked up on every request and cached nowhere: they are not announced, so
    // the next change seen is the one after them.
    db.create_session(&Session { token_hash: "t".into(), user: "bob".into(), expires_at: NOW }).await.expect("session");
    db.delete_session("t").await.expect("sign out");

    db.delete_application("p1").await.expect("delete app");
    expect_changes(&mut feed, &[Change::Applications, Change::Subscriptions, Change::Credentials]).await;
    db.delete_api("a1").await.expect("delete api");
    expect_changes(&mut feed, &[Change::Apis, Change::Subscriptions]).await;
}

pub async fn failed_writes_announce_nothing(db: Db) {
    let mut feed = db.changes();
    db.create_user(&user("bob", &[])).await.expect("create user");
    db.create_api(&api("a1", "Echo", "/echo", "1")).await.expect("create api");
    // Heard before the failures, so that PostgreSQL's asynchronous delivery cannot make them
    // look like the failures' changes.
    expect_changes(&mut feed, &[Change::Users, Change::Apis]).await;

    db.create_user(&user("bob", &[])).await.expect_err("conflict");
    db.update_user(&user("ghost", &[])).await.expect_err("not found");
    db.create_api(&api("a2", "Echo", "/echo", "1")).await.expect_err("conflict");
    db.delete_api("a9").await.expect_err("not found");
    db.create_subscription(&subscription("s1", "p9", "a1", NOW)).await.expect_err("no application");
    db.put_credentials(&credentials("p9", "c1")).await.expect_err("no application");

    // A write that succeeds after the failed ones: its change must be the first one seen.
    db.revoke_token(&RevokedToken { jti: "sentinel".into(), expires_at: NOW }).await.expect("revoke");
    assert_eq!(next_change(&mut feed).await, Change::Revocations);
}

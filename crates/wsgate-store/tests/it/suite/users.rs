//! Users and sessions.

use wsgate_core::model::{Role, Session, User};

use super::{Db, NOW, conflict, not_found, user};

pub async fn users_are_created_read_listed_and_updated(db: Db) {
    assert_eq!(db.user("bob").await.expect("read"), None);
    assert_eq!(db.list_users().await.expect("list"), vec![]);

    let bob = user("bob", &[Role::Subscriber]);
    let alice = user("alice", &[Role::Admin]);
    let zed = user("Zed", &[Role::Creator, Role::Publisher]);
    for user in [&bob, &alice, &zed] {
        db.create_user(user).await.expect("create");
    }
    assert_eq!(db.user("bob").await.expect("read"), Some(bob.clone()));
    // Byte order on both backends, whatever PostgreSQL's collation: upper case first.
    let names: Vec<String> = db.list_users().await.expect("list").into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["Zed", "alice", "bob"]);

    let changed = User { password_hash: "$argon2id$new".into(), roles: vec![Role::Publisher], created_at: 1, ..bob };
    db.update_user(&changed).await.expect("update");
    let stored = db.user("bob").await.expect("read").expect("bob exists");
    assert_eq!(stored.password_hash, "$argon2id$new");
    assert_eq!(stored.roles, vec![Role::Publisher]);
    assert_eq!(stored.created_at, NOW, "an update replaces roles and hash only");

    assert_eq!(not_found(db.update_user(&user("nobody", &[])).await), "user");
}

pub async fn user_names_are_unique(db: Db) {
    db.create_user(&user("bob", &[Role::Subscriber])).await.expect("create");
    let message = conflict(db.create_user(&user("bob", &[Role::Admin])).await);
    assert_eq!(message, "a user named bob already exists");
    let stored = db.user("bob").await.expect("read").expect("bob exists");
    assert_eq!(stored.roles, vec![Role::Subscriber], "the failed create changed nothing");
}

pub async fn sessions_are_found_until_they_expire(db: Db) {
    db.create_user(&user("bob", &[])).await.expect("create user");
    let session = Session { token_hash: "a1b2".into(), user: "bob".into(), expires_at: NOW + 60 };
    db.create_session(&session).await.expect("create session");

    assert_eq!(db.session("a1b2", NOW).await.expect("read"), Some(session.clone()));
    assert_eq!(db.session("a1b2", NOW + 59).await.expect("read"), Some(session.clone()));
    assert_eq!(db.session("a1b2", NOW + 60).await.expect("read"), None, "expired at its expiry time");
    assert_eq!(db.session("a1b2", NOW + 3600).await.expect("read"), None);
    assert_eq!(db.session("ffff", NOW).await.expect("read"), None);

    assert_eq!(conflict(db.create_session(&session).await), "a session with this token already exists");

    db.delete_session("a1b2").await.expect("sign out");
    assert_eq!(db.session("a1b2", NOW).await.expect("read"), None);
    db.delete_session("a1b2").await.expect("signing out twice is not an error");
}

pub async fn sessions_need_an_existing_user(db: Db) {
    let session = Session { token_hash: "a1b2".into(), user: "ghost".into(), expires_at: NOW + 60 };
    assert_eq!(not_found(db.create_session(&session).await), "user");
    assert_eq!(db.session("a1b2", NOW).await.expect("read"), None);
}

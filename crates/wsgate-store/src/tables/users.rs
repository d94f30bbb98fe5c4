//! Users and their sessions. Sessions are not announced on the change feed: each request looks
//! its session up, and no node keeps a copy that could go stale.

use wsgate_core::model::{Role, Session, UnixTime, User};

use super::{from_json, read, read_one, to_json, write};
use crate::sql::{Backend, Expect, Row, Statement};
use crate::{Change, Result};

/// The columns `decode_user` reads, in its order (a macro so `concat!` can splice it).
macro_rules! user_columns {
    () => {
        "name, password_hash, roles, created_at"
    };
}

fn decode_user(row: &Row) -> Result<User> {
    Ok(User {
        name: row.text(0)?,
        password_hash: row.text(1)?,
        roles: from_json::<Vec<Role>>(&row.text(2)?, "roles")?,
        created_at: row.int(3)?,
    })
}

pub(super) async fn create_user(db: &impl Backend, user: &User) -> Result<()> {
    const SQL: &str = concat!("INSERT INTO users (", user_columns!(), ") VALUES ($1, $2, $3, $4)");
    let params = vec![
        user.name.as_str().into(),
        user.password_hash.as_str().into(),
        to_json(&user.roles)?,
        user.created_at.into(),
    ];
    write(db, vec![Statement::new(SQL, params)], &[Change::Users], |_| {
        format!("a user named {} already exists", user.name)
    })
    .await
}

pub(super) async fn user(db: &impl Backend, name: &str) -> Result<Option<User>> {
    const SQL: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE name = $1");
    read_one(db, SQL, vec![name.into()], decode_user).await
}

pub(super) async fn list_users(db: &impl Backend) -> Result<Vec<User>> {
    const SQL: &str = concat!("SELECT ", user_columns!(), " FROM users");
    let mut users = read(db, SQL, vec![], decode_user).await?;
    users.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(users)
}

pub(super) async fn update_user(db: &impl Backend, user: &User) -> Result<()> {
    const SQL: &str = "UPDATE users SET password_hash = $2, roles = $3 WHERE name = $1";
    let params = vec![user.name.as_str().into(), user.password_hash.as_str().into(), to_json(&user.roles)?];
    let statement = Statement::new(SQL, params).expect(Expect::Touches("user"));
    write(db, vec![statement], &[Change::Users], |rule| format!("updating user {} breaks {rule:?}", user.name)).await
}

/// The user must exist: a session of nobody could never be used, so it is a caller's mistake.
pub(super) async fn create_session(db: &impl Backend, session: &Session) -> Result<()> {
    const USER_EXISTS: &str = "SELECT 1 FROM users WHERE name = $1";
    const SQL: &str = "INSERT INTO sessions (token_hash, user_name, expires_at) VALUES ($1, $2, $3)";
    let statements = vec![
        Statement::new(USER_EXISTS, vec![session.user.as_str().into()]).expect(Expect::Finds("user")),
        Statement::new(
            SQL,
            vec![session.token_hash.as_str().into(), session.user.as_str().into(), session.expires_at.into()],
        ),
    ];
    write(db, statements, &[], |_| "a session with this token already exists".into()).await
}

/// Expired sessions are filtered here rather than deleted, so a lookup never writes.
pub(super) async fn session(db: &impl Backend, token_hash: &str, now: UnixTime) -> Result<Option<Session>> {
    const SQL: &str =
        "SELECT token_hash, user_name, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2";
    read_one(db, SQL, vec![token_hash.into(), now.into()], |row| {
        Ok(Session { token_hash: row.text(0)?, user: row.text(1)?, expires_at: row.int(2)? })
    })
    .await
}

pub(super) async fn delete_session(db: &impl Backend, token_hash: &str) -> Result<()> {
    const SQL: &str = "DELETE FROM sessions WHERE token_hash = $1";
    write(db, vec![Statement::new(SQL, vec![token_hash.into()])], &[], |rule| format!("sign-out breaks {rule:?}")).await
}

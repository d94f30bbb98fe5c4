//! What the nodes sharing a store agree on (settings fixed once) and take turns at (leases).

use super::{read_one, write};
use crate::sql::{Backend, Statement};
use crate::{Result, StoreError};

/// The first value stored under a key stays: a later node's `INSERT` finds the key and does
/// nothing, then everyone reads the value that won.
pub(super) async fn fix_setting(db: &impl Backend, key: &str, value: &str) -> Result<String> {
    const INSERT: &str = "INSERT INTO settings (key, value, set_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING";
    let params = vec![key.into(), value.into(), crate::schema::now().into()];
    write(db, vec![Statement::new(INSERT, params)], &[], |rule| format!("setting {key} breaks {rule:?}")).await?;
    setting(db, key).await?.ok_or_else(|| StoreError::Backend(format!("setting {key} vanished after it was fixed")))
}

pub(super) async fn setting(db: &impl Backend, key: &str) -> Result<Option<String>> {
    const SQL: &str = "SELECT value FROM settings WHERE key = $1";
    read_one(db, SQL, vec![key.into()], |row| row.text(0)).await
}

/// One statement, so no other caller can come between the check and the take: PostgreSQL
/// locks the conflicting row and evaluates the `WHERE` on its latest version, SQLite has one
/// writer. The row comes back only when the insert or the update happened, i.e. when we hold
/// the lease.
pub(super) async fn acquire_lease(
    db: &impl Backend,
    name: &str,
    holder: &str,
    now_ms: i64,
    ttl_ms: i64,
) -> Result<bool> {
    const SQL: &str = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
        ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
        WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder \
        RETURNING holder";
    let params = vec![name.into(), holder.into(), now_ms.saturating_add(ttl_ms).into(), now_ms.into()];
    let taken = read_one(db, SQL, params, |row| row.text(0)).await?;
    Ok(taken.as_deref() == Some(holder))
}

pub(super) async fn release_lease(db: &impl Backend, name: &str, holder: &str) -> Result<()> {
    const SQL: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";
    write(db, vec![Statement::new(SQL, vec![name.into(), holder.into()])], &[], |rule| {
        format!("lease {name} breaks {rule:?}")
    })
    .await
}

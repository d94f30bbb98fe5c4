//! The key manager's signing keys and revoked tokens.

use wsgate_core::model::{RevokedToken, SigningKey, UnixTime};

use super::{read, write};
use crate::sql::{Backend, Param, Statement};
use crate::{Change, Result};

pub(super) async fn put_signing_key(db: &impl Backend, key: &SigningKey) -> Result<()> {
    const SQL: &str = "INSERT INTO signing_keys \
        (kid, algorithm, private_pkcs8, public_key, created_at, active_until, retire_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kid) DO UPDATE SET algorithm = excluded.algorithm, \
        private_pkcs8 = excluded.private_pkcs8, public_key = excluded.public_key, created_at = excluded.created_at, \
        active_until = excluded.active_until, retire_at = excluded.retire_at";
    let params = vec![
        key.kid.as_str().into(),
        key.algorithm.as_str().into(),
        Param::Bytes(key.private_pkcs8.clone()),
        Param::Bytes(key.public_key.clone()),
        key.created_at.into(),
        key.active_until.into(),
        key.retire_at.into(),
    ];
    write(db, vec![Statement::new(SQL, params)], &[Change::SigningKeys], |rule| {
        format!("signing key {} breaks {rule:?}", key.kid)
    })
    .await
}

pub(super) async fn list_signing_keys(db: &impl Backend) -> Result<Vec<SigningKey>> {
    const SQL: &str =
        "SELECT kid, algorithm, private_pkcs8, public_key, created_at, active_until, retire_at FROM signing_keys";
    let mut keys = read(db, SQL, vec![], |row| {
        Ok(SigningKey {
            kid: row.text(0)?,
            algorithm: row.text(1)?,
            private_pkcs8: row.bytes(2)?,
            public_key: row.bytes(3)?,
            created_at: row.int(4)?,
            active_until: row.int(5)?,
            retire_at: row.int(6)?,
        })
    })
    .await?;
    // Newest first; the kid breaks ties so the order is the same on every node.
    keys.sort_by(|a, b| (b.created_at, &b.kid).cmp(&(a.created_at, &a.kid)));
    Ok(keys)
}

/// A token revoked twice keeps its first row: its expiry cannot differ, it is in the token.
pub(super) async fn revoke_token(db: &impl Backend, token: &RevokedToken) -> Result<()> {
    const SQL: &str = "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING";
    let params = vec![token.jti.as_str().into(), token.expires_at.into()];
    write(db, vec![Statement::new(SQL, params)], &[Change::Revocations], |rule| {
        format!("revocation of {} breaks {rule:?}", token.jti)
    })
    .await
}

/// Tokens past their expiry are refused anyway, so their revocations are left out.
pub(super) async fn list_revoked_tokens(db: &impl Backend, now: UnixTime) -> Result<Vec<RevokedToken>> {
    const SQL: &str = "SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > $1";
    let mut tokens =
        read(db, SQL, vec![now.into()], |row| Ok(RevokedToken { jti: row.text(0)?, expires_at: row.int(1)? })).await?;
    tokens.sort_by(|a, b| a.jti.cmp(&b.jti));
    Ok(tokens)
}

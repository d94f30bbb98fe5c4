//! The key manager's signing keys and revoked tokens.

use wsgate_core::model::{RevokedToken, SigningKey, UnixTime};

use super::{read, write};
use crate::sql::{Backend, Expect, Param, Statement, Write};
use crate::{Change, KeyRotation, Result, StoreError};

pub(super) async fn put_signing_key(db: &impl Backend, key: &SigningKey) -> Result<()> {
    const SQL: &str = "INSERT INTO signing_keys \
        (kid, algorithm, private_pkcs8, public_key, created_at, active_until, retire_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kid) DO UPDATE SET algorithm = excluded.algorithm, \
        private_pkcs8 = excluded.private_pkcs8, public_key = excluded.public_key, created_at = excluded.created_at, \
        active_until = excluded.active_until, retire_at = excluded.retire_at";
    write(db, vec![Statement::new(SQL, key_params(key))], &[Change::SigningKeys], |rule| {
        format!("signing key {} breaks {rule:?}", key.kid)
    })
    .await
}

fn key_params(key: &SigningKey) -> Vec<Param> {
    vec![
        key.kid.as_str().into(),
        key.algorithm.as_str().into(),
        Param::Bytes(key.private_pkcs8.clone()),
        Param::Bytes(key.public_key.clone()),
        key.created_at.into(),
        key.active_until.into(),
        key.retire_at.into(),
    ]
}

/// Why a rotation's check stopped it: another node rotated first. Not an error for the caller,
/// who gets the key that signs now.
const ROTATED_ALREADY: &str = "signing key that still signs";

/// One exclusive write (nodes take turns): the check, then the end of the current key's
/// signing and the new key. A caller that waited for another node's rotation checks what that
/// node committed, finds its check unmet, and stores nothing.
pub(super) async fn rotate_signing_key(
    db: &impl Backend,
    new: &SigningKey,
    rotation: KeyRotation<'_>,
) -> Result<SigningKey> {
    // A key signs at `t` when `t < active_until` and `t - period < created_at`.
    const SIGNS_AT: &str =
        "SELECT kid FROM signing_keys WHERE algorithm = $1 AND active_until > $2 AND created_at > $3";
    const STILL_SIGNS: &str = "SELECT kid FROM signing_keys WHERE kid = $1 AND active_until > $2 AND created_at > $3";
    const STOP_SIGNING: &str =
        "UPDATE signing_keys SET active_until = $2 WHERE algorithm = $1 AND active_until > $2 AND created_at > $3";
    const INSERT: &str = "INSERT INTO signing_keys \
        (kid, algorithm, private_pkcs8, public_key, created_at, active_until, retire_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7)";
    let KeyRotation { away_from, now, needed_at, period } = rotation;
    let since = |at: i64| at.saturating_sub(period);
    let algorithm = || Param::from(new.algorithm.as_str());
    let mut statements = match away_from {
        Some(kid) => vec![
            Statement::new(STILL_SIGNS, vec![kid.into(), now.into(), since(now).into()])
                .expect(Expect::Finds(ROTATED_ALREADY)),
            Statement::new(STOP_SIGNING, vec![algorithm(), now.into(), since(now).into()]),
        ],
        None => vec![
            Statement::new(SIGNS_AT, vec![algorithm(), needed_at.into(), since(needed_at).into()])
                .expect(Expect::FindsNone(ROTATED_ALREADY)),
        ],
    };
    statements.push(Statement::new(INSERT, key_params(new)));
    let write = Write { statements, changes: vec![Change::SigningKeys], exclusive: true };
    match db.write(write).await {
        Ok(()) => {
            tracing::info!(kid = %new.kid, active_until = new.active_until, retire_at = new.retire_at, "new signing key")
        }
        Err(failure) => match failure.explain(|rule| format!("signing key {} breaks {rule:?}", new.kid)) {
            StoreError::NotFound { what: ROTATED_ALREADY } => {}
            StoreError::Conflict(message) if message == ROTATED_ALREADY => {}
            error => return Err(error),
        },
    }
    let signs_now =
        |key: &SigningKey| key.algorithm == new.algorithm && key.active_until > now && key.created_at > since(now);
    // Newest first: when a key was made ahead of the edge, it is the one to sign with.
    list_signing_keys(db).await?.into_iter().find(signs_now).ok_or(StoreError::NotFound { what: "signing key" })
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

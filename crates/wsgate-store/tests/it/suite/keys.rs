//! Signing keys and revoked tokens.

use wsgate_core::model::{RevokedToken, SigningKey};

use super::{Db, NOW};

fn key(kid: &str, created_at: i64) -> SigningKey {
    SigningKey {
        kid: kid.into(),
        algorithm: "ES256".into(),
        // Every byte value, including 0 and invalid UTF-8, must come back unchanged.
        private_pkcs8: (0..=255).collect(),
        public_key: [vec![4], vec![0xff; 64]].concat(),
        created_at,
        active_until: created_at + 86_400,
        retire_at: created_at + 2 * 86_400,
    }
}

pub async fn signing_keys_are_put_and_listed_newest_first(db: Db) {
    assert_eq!(db.list_signing_keys().await.expect("list"), vec![]);
    let old = key("k1", NOW);
    let new = key("k2", NOW + 100);
    let same_time = key("k0", NOW);
    for key in [&old, &new, &same_time] {
        db.put_signing_key(key).await.expect("put");
    }
    assert_eq!(db.list_signing_keys().await.expect("list"), vec![new.clone(), old.clone(), same_time.clone()]);

    let retired_early = SigningKey { retire_at: NOW + 1, private_pkcs8: vec![], ..old.clone() };
    db.put_signing_key(&retired_early).await.expect("replace");
    let keys = db.list_signing_keys().await.expect("list");
    assert_eq!(keys.len(), 3);
    assert_eq!(keys.iter().find(|k| k.kid == "k1"), Some(&retired_early));
}

pub async fn revocations_are_listed_until_the_token_expires(db: Db) {
    let soon = RevokedToken { jti: "j1".into(), expires_at: NOW + 10 };
    let later = RevokedToken { jti: "j2".into(), expires_at: NOW + 1000 };
    db.revoke_token(&soon).await.expect("revoke");
    db.revoke_token(&later).await.expect("revoke");
    db.revoke_token(&soon).await.expect("revoking twice is not an error");
    assert_eq!(db.list_revoked_tokens(NOW).await.expect("list"), vec![soon.clone(), later.clone()]);
    assert_eq!(db.list_revoked_tokens(NOW + 10).await.expect("list"), vec![later.clone()], "expired at expiry");
    assert_eq!(db.list_revoked_tokens(NOW + 1000).await.expect("list"), vec![]);
}

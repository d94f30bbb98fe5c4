//! What the nodes of a cluster agree on: settings fixed once, leases, signing-key rotation.
//! Several nodes racing are in `sqlite.rs` and `postgres.rs` (they need several stores).

use wsgate_core::model::SigningKey;
use wsgate_store::KeyRotation;

use super::{Db, NOW};

pub async fn settings_are_fixed_by_the_first_writer(db: Db) {
    assert_eq!(db.setting("issuer").await.expect("read"), None);
    assert_eq!(db.fix_setting("issuer", "https://a.example").await.expect("fix"), "https://a.example");
    assert_eq!(db.fix_setting("issuer", "https://b.example").await.expect("fix again"), "https://a.example");
    assert_eq!(db.setting("issuer").await.expect("read"), Some("https://a.example".into()));
    assert_eq!(db.fix_setting("other", "x").await.expect("another key"), "x");
}

pub async fn leases_are_held_renewed_released_and_taken_after_expiry(db: Db) {
    let ms = NOW * 1000;
    assert!(db.acquire_lease("duties", "a", ms, 1000).await.expect("take"), "free: taken");
    assert!(!db.acquire_lease("duties", "b", ms + 500, 1000).await.expect("try"), "held by a");
    assert!(db.acquire_lease("duties", "a", ms + 900, 1000).await.expect("renew"), "a renews");
    assert!(!db.acquire_lease("duties", "b", ms + 1500, 1000).await.expect("try"), "renewed until ms + 1900");
    assert!(db.acquire_lease("other", "b", ms + 1500, 1000).await.expect("take"), "leases are per name");
    assert!(db.acquire_lease("duties", "b", ms + 1900, 1000).await.expect("take"), "expired: taken");
    assert!(!db.acquire_lease("duties", "a", ms + 2000, 1000).await.expect("try"), "a lost it");
    db.release_lease("duties", "a").await.expect("releasing what another holds changes nothing");
    assert!(!db.acquire_lease("duties", "a", ms + 2000, 1000).await.expect("try"), "still b's");
    db.release_lease("duties", "b").await.expect("release");
    assert!(db.acquire_lease("duties", "a", ms + 2000, 1000).await.expect("take"), "released: free");
}

pub fn signing_key(kid: &str, created_at: i64, period: i64) -> SigningKey {
    SigningKey {
        kid: kid.into(),
        algorithm: "ES256".into(),
        private_pkcs8: vec![1, 2, 3],
        public_key: vec![4, 5, 6],
        created_at,
        active_until: created_at + period,
        retire_at: created_at + 2 * period,
    }
}

pub async fn signing_keys_rotate_once_by_time_and_when_forced(db: Db) {
    let period = 100;
    let by_time = |now: i64, needed_at: i64| KeyRotation { away_from: None, now, needed_at, period };
    let first = signing_key("k1", NOW, period);
    assert_eq!(db.rotate_signing_key(&first, by_time(NOW, NOW)).await.expect("first key"), first);
    let late = signing_key("k2", NOW + 1, period);
    assert_eq!(db.rotate_signing_key(&late, by_time(NOW + 1, NOW + 1)).await.expect("k1 signs"), first);
    assert_eq!(db.list_signing_keys().await.expect("list").len(), 1, "nothing stored while a key signs");

    // Ahead of the edge: k1 signs now but not at NOW + 100; the next key is made, and signs.
    let next = signing_key("k3", NOW + 90, period);
    assert_eq!(db.rotate_signing_key(&next, by_time(NOW + 90, NOW + 100)).await.expect("pre-rotation"), next);
    let stored = db.list_signing_keys().await.expect("list");
    assert_eq!(stored.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["k3", "k1"]);
    assert_eq!(stored[1], first, "k1 keeps signing until its end and stays published");

    // Forced, twice away from the same key: one new key; k3 stops signing, stays published.
    let forced = signing_key("k4", NOW + 95, period);
    let away_from_k3 = KeyRotation { away_from: Some("k3"), now: NOW + 95, needed_at: NOW + 95, period };
    assert_eq!(db.rotate_signing_key(&forced, away_from_k3).await.expect("forced"), forced);
    let again = signing_key("k5", NOW + 96, period);
    let away_again = KeyRotation { now: NOW + 96, needed_at: NOW + 96, ..away_from_k3 };
    assert_eq!(db.rotate_signing_key(&again, away_again).await.expect("same kid again"), forced);
    let stored = db.list_signing_keys().await.expect("list");
    assert_eq!(stored.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["k4", "k3", "k1"]);
    let k3 = &stored[1];
    assert_eq!((k3.active_until, k3.retire_at), (NOW + 95, NOW + 90 + 2 * period), "signs no more, published");
    assert_eq!(stored[2].active_until, NOW + 95, "every key signing then stopped");

    // A key made longer ago than the configured period signs no more, whatever it stored.
    let shorter = KeyRotation { away_from: None, now: NOW + 150, needed_at: NOW + 150, period: 50 };
    let after = signing_key("k6", NOW + 150, 50);
    assert_eq!(db.rotate_signing_key(&after, shorter).await.expect("period capped"), after);
}

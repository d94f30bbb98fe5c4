//! JWTs made by hand, for the tokens no honest issuer signs: a test key the gateway trusts once
//! it is in the store, and a builder that writes any header and claims, signed by any key,
//! by an HMAC secret, or not at all.
//!
//! `Jwt::es256(&key.kid).claim("exp", json!(now() - 60)).signed_by(&key)` is an expired token
//! that is otherwise perfect.

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use wsgate_core::model::SigningKey;

/// An ES256 key pair made for one test.
pub struct TestKey {
    pub kid: String,
    pkcs8: Vec<u8>,
    pair: EcdsaKeyPair,
}

impl TestKey {
    pub fn generate(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("the key");
        TestKey { kid: kid.to_string(), pkcs8: pkcs8.as_ref().to_vec(), pair }
    }

    /// The uncompressed public point (65 bytes), as the JWKS publishes it.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The store record that makes the gateway trust this key: valid for an hour, and created a
    /// minute ago so that the control plane, which signs with its newest key, keeps its own.
    pub fn record(&self) -> SigningKey {
        let now = now();
        SigningKey {
            kid: self.kid.clone(),
            algorithm: "ES256".to_string(),
            private_pkcs8: self.pkcs8.clone(),
            public_key: self.public_key().to_vec(),
            created_at: now - 60,
            active_until: now + 3600,
            retire_at: now + 3600,
        }
    }
}

/// A JWT under construction.
#[derive(Debug, Clone)]
pub struct Jwt {
    header: Value,
    claims: Value,
}

impl Jwt {
    /// `{"alg":"ES256","typ":"JWT","kid":kid}` and no claims yet.
    pub fn es256(kid: &str) -> Jwt {
        Jwt { header: json!({ "alg": "ES256", "typ": "JWT", "kid": kid }), claims: json!({}) }
    }

    /// Sets a header field; `Value::Null` removes it.
    pub fn header(mut self, name: &str, value: Value) -> Jwt {
        set(&mut self.header, name, value);
        self
    }

    /// Sets a claim; `Value::Null` removes it.
    pub fn claim(mut self, name: &str, value: Value) -> Jwt {
        set(&mut self.claims, name, value);
        self
    }

    /// A fresh `jti`, so that no two crafted tokens share one.
    pub fn fresh_jti(self) -> Jwt {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.claim("jti", json!(format!("crafted-{}-{n}", std::process::id())))
    }

    pub fn claims(&self) -> &Value {
        &self.claims
    }

    /// `header.claims`, base64url-encoded: what a signature covers.
    pub fn signing_input(&self) -> String {
        let encode = |value: &Value| B64URL.encode(serde_json::to_vec(value).expect("JSON"));
        format!("{}.{}", encode(&self.header), encode(&self.claims))
    }

    /// Signed with ES256 (the fixed 64-byte r‖s form JWS uses).
    pub fn signed_by(&self, key: &TestKey) -> String {
        let input = self.signing_input();
        let signature = key.pair.sign(&SystemRandom::new(), input.as_bytes()).expect("ECDSA signs");
        format!("{input}.{}", B64URL.encode(signature.as_ref()))
    }

    /// Signed with HMAC-SHA256 under `secret`, whatever the header says.
    pub fn hmac_signed(&self, secret: &[u8]) -> String {
        let input = self.signing_input();
        let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), input.as_bytes());
        format!("{input}.{}", B64URL.encode(tag.as_ref()))
    }

    /// With an empty signature, as `alg: none` tokens are.
    pub fn unsigned(&self) -> String {
        format!("{}.", self.signing_input())
    }
}

fn set(object: &mut Value, name: &str, value: Value) {
    let map = object.as_object_mut().expect("a JSON object");
    if value.is_null() {
        map.remove(name);
    } else {
        map.insert(name.to_string(), value);
    }
}

/// The claims of a compact JWT, read without checking anything.
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a compact JWT");
    serde_json::from_slice(&B64URL.decode(payload).expect("base64url")).expect("JSON claims")
}

/// `bytes` random bytes in hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new().fill(&mut buf).expect("randomness");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

//! Passwords, stored only as argon2id hashes (PHC strings, `$argon2id$v=19$…`).
//!
//! Verifying a hash costs tens of milliseconds by design, and a player sending Basic credentials
//! makes a request per HLS part; so a successful check is remembered for a few minutes under a
//! keyed digest of the name and password (never the password itself), and an identical request
//! after it costs one SHA-256.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

/// How long a verified password is remembered.
const REMEMBER: Duration = Duration::from_secs(300);
/// Most remembered verifications; past it, the memory starts over.
const REMEMBER_MAX: usize = 10_000;

/// An argon2id hash of `password` with a fresh salt (the library's default cost).
pub fn hash(password: &str) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source");
    let salt = SaltString::encode_b64(&bytes).expect("a 16-byte salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing of an in-memory password")
        .to_string()
}

/// Whether `hash` is a PHC string this build can verify.
pub fn is_valid_hash(hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

pub struct Verifier {
    /// A per-process random key: the remembered digests mean nothing outside this process.
    salt: [u8; 32],
    remembered: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Default for Verifier {
    fn default() -> Self {
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt).expect("the OS random source");
        Verifier { salt, remembered: Mutex::new(HashMap::new()) }
    }
}

impl Verifier {
    /// Checks `password` for `name` against its stored `hash`.
    pub fn verify(&self, name: &str, password: &str, hash: &str) -> bool {
        let mut d = Sha256::new();
        d.update(self.salt);
        d.update(name.as_bytes());
        d.update([0]);
        d.update(password.as_bytes());
        d.update([0]);
        d.update(hash.as_bytes());
        let digest: [u8; 32] = d.finalize().into();
        let now = Instant::now();
        {
            let mut seen = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
            match seen.get(&digest) {
                Some(&until) if until > now => return true,
                Some(_) => {
                    seen.remove(&digest);
                }
                None => {}
            }
        }
        let ok = PasswordHash::new(hash)
            .is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok());
        if ok {
            let mut seen = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() >= REMEMBER_MAX {
                seen.clear();
            }
            seen.insert(digest, now + REMEMBER);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let h = hash("correct horse");
        assert!(h.starts_with("$argon2id$") && is_valid_hash(&h));
        assert_ne!(h, hash("correct horse"), "salted");
        let v = Verifier::default();
        assert!(v.verify("op", "correct horse", &h));
        assert!(v.verify("op", "correct horse", &h), "remembered");
        assert!(!v.verify("op", "wrong", &h));
        assert!(!v.verify("op", "correct horse", "not a hash"));
        assert!(!is_valid_hash("plain"));
    }
}

//! Tamper-evident tokens: shard iterators and pagination `NextToken`s, MAC'd with HMAC-SHA256
//! under a key generated once per data directory (`datastreams/iterator.key`, mode 0600).
//!
//! Shard iterator (base64, standard alphabet with padding, 92 characters) of 69 bytes:
//!
//! ```text
//! 0      version (1)
//! 1..9   stream id (i64 BE; catalog ids are never reused)
//! 9..17  stream creation time, µs (i64 BE): a re-created stream's iterators never resolve
//! 17..21 shard ordinal (u32 BE)
//! 21..29 next offset to read (u64 BE)
//! 29..37 issue time, µs (i64 BE): expires [`ITERATOR_TTL`] later
//! 37..69 HMAC-SHA256(key, bytes 0..37)
//! ```
//!
//! A `NextToken` is `base64url(json) "." base64url(first 16 bytes of the HMAC of the json)`.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use super::error::DsError;
use crate::clock::Timestamp;
use crate::log::Offset;

/// Shard iterators and next tokens expire this long after they were issued.
pub const ITERATOR_TTL: Duration = Duration::from_secs(300);

const VERSION: u8 = 1;
const BODY_LEN: usize = 37;
const MAC_LEN: usize = 32;
const KEY_LEN: usize = 32;

/// What a shard iterator says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IteratorClaims {
    pub stream_id: super::store::DataStreamId,
    pub stream_created: Timestamp,
    pub ordinal: u32,
    pub offset: Offset,
    pub issued: Timestamp,
}

/// Signs and verifies tokens. Cheap to share (`Arc`).
pub struct Signer {
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl Signer {
    pub fn from_key(key: [u8; KEY_LEN]) -> Signer {
        Signer { key }
    }

    /// Loads the key in `path`, or creates it (32 random bytes, mode 0600, fsynced) if missing.
    pub fn load_or_create(path: &Path) -> Result<Signer, DsError> {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::File::open(path) {
            Ok(mut f) => {
                let mut key = [0u8; KEY_LEN];
                f.read_exact(&mut key).map_err(|e| {
                    DsError::Internal(format!("iterator key {}: {e}", path.display()))
                })?;
                return Ok(Signer { key });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(DsError::Internal(format!("iterator key {}: {e}", path.display())));
            }
        }
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key)
            .map_err(|e| DsError::Internal(format!("no randomness for the iterator key: {e}")))?;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&key)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(Signer { key })
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; 32 bytes never fails.
        match <HmacSha256 as KeyInit>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        }
    }

    /// Encodes a shard iterator.
    pub fn iterator(&self, c: &IteratorClaims) -> String {
        let mut buf = Vec::with_capacity(BODY_LEN + MAC_LEN);
        buf.push(VERSION);
        buf.extend_from_slice(&c.stream_id.0.to_be_bytes());
        buf.extend_from_slice(&c.stream_created.as_micros().to_be_bytes());
        buf.extend_from_slice(&c.ordinal.to_be_bytes());
        buf.extend_from_slice(&c.offset.0.to_be_bytes());
        buf.extend_from_slice(&c.issued.as_micros().to_be_bytes());
        let mut mac = self.mac();
        mac.update(&buf);
        buf.extend_from_slice(&mac.finalize().into_bytes());
        STANDARD.encode(buf)
    }

    /// Verifies a shard iterator: garbage or a bad MAC is `InvalidArgumentException`, one issued
    /// more than [`ITERATOR_TTL`] before `now` is `ExpiredIteratorException`.
    pub fn verify_iterator(&self, s: &str, now: Timestamp) -> Result<IteratorClaims, DsError> {
        let invalid = || DsError::InvalidArgument("Invalid ShardIterator.".to_owned());
        let raw = STANDARD.decode(s.as_bytes()).map_err(|_| invalid())?;
        if raw.len() != BODY_LEN + MAC_LEN || raw[0] != VERSION {
            return Err(invalid());
        }
        let (body, tag) = raw.split_at(BODY_LEN);
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_slice(tag).map_err(|_| invalid())?;
        let i64_at = |i: usize| i64::from_be_bytes(body[i..i + 8].try_into().unwrap_or([0; 8]));
        let claims = IteratorClaims {
            stream_id: super::store::DataStreamId(i64_at(1)),
            stream_created: Timestamp::from_micros(i64_at(9)),
            ordinal: u32::from_be_bytes(body[17..21].try_into().unwrap_or([0; 4])),
            offset: Offset(u64::from_be_bytes(body[21..29].try_into().unwrap_or([0; 8]))),
            issued: Timestamp::from_micros(i64_at(29)),
        };
        if now.micros_since(claims.issued) > ITERATOR_TTL.as_micros() as i64 {
            return Err(DsError::ExpiredIterator(format!(
                "Iterator expired. The iterator was created at time {} while right now it is {} \
                 which is further in the future than the tolerated delay of 300000 milliseconds.",
                claims.issued.to_rfc3339(),
                now.to_rfc3339()
            )));
        }
        Ok(claims)
    }

    /// Signs a pagination token holding `value`.
    pub fn next_token<T: Serialize>(&self, value: &T) -> String {
        let json = serde_json::to_vec(value).unwrap_or_default();
        let mut mac = self.mac();
        mac.update(&json);
        let tag = mac.finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&json), URL_SAFE_NO_PAD.encode(&tag[..16]))
    }

    /// Verifies a pagination token: garbage is `InvalidArgumentException`.
    pub fn verify_next_token<T: DeserializeOwned>(&self, s: &str) -> Result<T, DsError> {
        let invalid = || DsError::InvalidArgument("Invalid NextToken.".to_owned());
        let (body, tag) = s.split_once('.').ok_or_else(invalid)?;
        let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        if tag.len() != 16 {
            return Err(invalid());
        }
        let mut mac = self.mac();
        mac.update(&json);
        mac.verify_truncated_left(&tag).map_err(|_| invalid())?;
        serde_json::from_slice(&json).map_err(|_| invalid())
    }
}

/// Fails with `ExpiredNextTokenException` if a token issued at `issued_ms` is too old.
pub fn check_token_age(issued_ms: i64, now: Timestamp) -> Result<(), DsError> {
    if now.as_millis().saturating_sub(issued_ms) > ITERATOR_TTL.as_millis() as i64 {
        return Err(DsError::ExpiredNextToken("The NextToken has expired.".to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(issued: Timestamp) -> IteratorClaims {
        IteratorClaims {
            stream_id: super::super::store::DataStreamId(3),
            stream_created: Timestamp::from_millis(5),
            ordinal: 9,
            offset: Offset(12345),
            issued,
        }
    }

    #[test]
    fn iterator_roundtrip_expiry_and_tamper() {
        let s = Signer::from_key([7; 32]);
        let t0 = Timestamp::from_millis(1_700_000_000_000);
        let it = s.iterator(&claims(t0));
        assert_eq!(it.len(), 92);
        assert_eq!(s.verify_iterator(&it, t0).unwrap(), claims(t0));
        let later = t0.saturating_add(ITERATOR_TTL);
        assert!(s.verify_iterator(&it, later).is_ok(), "valid for exactly five minutes");
        let too_late = later.add_micros(1);
        assert!(matches!(s.verify_iterator(&it, too_late), Err(DsError::ExpiredIterator(_))));

        // Flip one bit anywhere: rejected as invalid, not expired.
        let mut raw = STANDARD.decode(&it).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 1;
            let bad = STANDARD.encode(&raw);
            assert!(matches!(s.verify_iterator(&bad, t0), Err(DsError::InvalidArgument(_))));
            raw[i] ^= 1;
        }
        // Another server's key, garbage, truncation.
        let other = Signer::from_key([8; 32]);
        assert!(matches!(other.verify_iterator(&it, t0), Err(DsError::InvalidArgument(_))));
        for g in ["", "AAAA", "not base64!", &it[..40]] {
            assert!(matches!(s.verify_iterator(g, t0), Err(DsError::InvalidArgument(_))));
        }
    }

    #[test]
    fn next_tokens_are_signed() {
        let s = Signer::from_key([1; 32]);
        let tok = s.next_token(&(5i64, "abc"));
        let back: (i64, String) = s.verify_next_token(&tok).unwrap();
        assert_eq!(back, (5, "abc".to_owned()));
        let forged =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(b"[6,\"abc\"]"), &tok[tok.len() - 22..]);
        assert!(s.verify_next_token::<(i64, String)>(&forged).is_err());
        assert!(s.verify_next_token::<(i64, String)>("x").is_err());
    }

    #[test]
    fn key_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iterator.key");
        let a = Signer::load_or_create(&path).unwrap();
        let b = Signer::load_or_create(&path).unwrap();
        assert_eq!(a.key, b.key);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

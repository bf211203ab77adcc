//! Playback sessions: HMAC-signed, expiring, stream-scoped tokens that players carry in the query
//! of every HLS, clip and frame URL (`?token=…`), so hls.js, Safari, VLC and ffmpeg play with no
//! headers. A token is checked by its MAC alone: no catalog, no password hash, per request.
//!
//! `v1.<stream, base64url>.<expiry, epoch seconds>.<HMAC-SHA256, base64url>`: the stream name and
//! the expiry are visible (they are not secrets), the MAC covers both, and no credential is in it.
//! The MAC key is derived from the server's secret key (`super::seal`), so tokens survive a
//! restart and die with a replaced key.

use std::collections::HashMap;
use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::clock::Timestamp;

type HmacSha256 = Hmac<Sha256>;

/// Shortest and longest session, in seconds (as Kinesis Video's HLS sessions).
pub const MIN_EXPIRES_SECS: u64 = 300;
pub const MAX_EXPIRES_SECS: u64 = 43_200;

pub struct PlaybackTokens {
    /// HMAC-SHA256 keyed once: each token costs the message's hashing only.
    keyed: HmacSha256,
    /// Tokens already verified, with their expiry (epoch seconds): a player asks for a part every
    /// 200 ms with the same token, and a map lookup is cheaper than a MAC. Bounded; cleared when
    /// full.
    verified: RwLock<HashMap<Box<str>, i64>>,
}

/// Most remembered tokens.
const VERIFIED_MAX: usize = 10_000;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token, or its MAC does not match (tampered, or another server's).
    Invalid,
    Expired,
    /// Valid, for another stream.
    OtherStream,
}

impl TokenError {
    pub fn message(&self) -> &'static str {
        match self {
            TokenError::Invalid => "the playback session token is not valid",
            TokenError::Expired => "the playback session has expired; start a new one",
            TokenError::OtherStream => "the playback session is for another stream",
        }
    }
}

impl PlaybackTokens {
    pub fn new(key: [u8; 32]) -> Self {
        let keyed = match <HmacSha256 as KeyInit>::new_from_slice(&key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        PlaybackTokens { keyed, verified: RwLock::new(HashMap::new()) }
    }

    fn mac(&self, stream: &[u8], expires: i64) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(b"sluice playback v1\0");
        mac.update(stream);
        mac.update(b"\0");
        mac.update(&expires.to_be_bytes());
        mac
    }

    /// A token for `stream`, valid until `expires`.
    pub fn issue(&self, stream: &str, expires: Timestamp) -> String {
        let secs = expires.as_micros().div_euclid(1_000_000);
        format!(
            "v1.{}.{secs}.{}",
            URL_SAFE_NO_PAD.encode(stream),
            URL_SAFE_NO_PAD.encode(self.mac(stream.as_bytes(), secs).finalize().into_bytes())
        )
    }

    /// Checks `token` for `stream` at `now`. Checked on every segment request, so without a heap
    /// allocation: the parts are decoded into stack buffers.
    pub fn verify(&self, token: &str, stream: &str, now: Timestamp) -> Result<(), TokenError> {
        let cached = self.verified.read().unwrap_or_else(|p| p.into_inner()).get(token).copied();
        let secs = match cached {
            Some(secs) => {
                // The token names its stream in clear: the MAC already covered it.
                let name = token.split('.').nth(1).unwrap_or("");
                let mut buf = [0u8; 256];
                let n = URL_SAFE_NO_PAD
                    .decode_slice(name, &mut buf)
                    .map_err(|_| TokenError::Invalid)?;
                if &buf[..n] != stream.as_bytes() {
                    return Err(TokenError::OtherStream);
                }
                secs
            }
            None => self.check_mac(token, stream)?,
        };
        if now.as_micros() >= secs.saturating_mul(1_000_000) {
            return Err(TokenError::Expired);
        }
        if cached.is_none() {
            let mut v = self.verified.write().unwrap_or_else(|p| p.into_inner());
            if v.len() >= VERIFIED_MAX {
                v.clear();
            }
            v.insert(token.into(), secs);
        }
        Ok(())
    }

    /// The MAC check of a token not seen before; its expiry (epoch seconds) when valid.
    fn check_mac(&self, token: &str, stream: &str) -> Result<i64, TokenError> {
        let mut parts = token.split('.');
        let (Some("v1"), Some(name), Some(secs), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid);
        };
        let mut name_buf = [0u8; 256];
        let n =
            URL_SAFE_NO_PAD.decode_slice(name, &mut name_buf).map_err(|_| TokenError::Invalid)?;
        let name = &name_buf[..n];
        let secs: i64 = secs.parse().map_err(|_| TokenError::Invalid)?;
        let mut mac_buf = [0u8; 48];
        let m = URL_SAFE_NO_PAD.decode_slice(mac, &mut mac_buf).map_err(|_| TokenError::Invalid)?;
        // `verify_slice` compares in constant time.
        self.mac(name, secs).verify_slice(&mac_buf[..m]).map_err(|_| TokenError::Invalid)?;
        if name != stream.as_bytes() {
            return Err(TokenError::OtherStream);
        }
        Ok(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_expire_and_resist_tampering() {
        let t = PlaybackTokens::new([7; 32]);
        let now = Timestamp::from_micros(1_800_000_000_000_000);
        let expires = Timestamp::from_micros(now.as_micros() + 300_000_000);
        let token = t.issue("cam-1", expires);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)), "{token}");
        assert_eq!(t.verify(&token, "cam-1", now), Ok(()));
        assert_eq!(t.verify(&token, "cam-2", now), Err(TokenError::OtherStream));
        assert_eq!(t.verify(&token, "cam-1", expires), Err(TokenError::Expired));
        // Moving the expiry, renaming the stream, or another key: invalid.
        let parts: Vec<&str> = token.split('.').collect();
        let later =
            format!("v1.{}.{}.{}", parts[1], parts[2].parse::<i64>().unwrap() + 3600, parts[3]);
        assert_eq!(t.verify(&later, "cam-1", now), Err(TokenError::Invalid));
        let renamed = format!("v1.{}.{}.{}", URL_SAFE_NO_PAD.encode("cam-2"), parts[2], parts[3]);
        assert_eq!(t.verify(&renamed, "cam-2", now), Err(TokenError::Invalid));
        assert_eq!(
            PlaybackTokens::new([8; 32]).verify(&token, "cam-1", now),
            Err(TokenError::Invalid)
        );
        for garbage in
            ["", "v1", "v1.a.b.c", "v2.Y2Ft.1.AA", "v1.!!.1.AA", "v1.Y2Ft.x.AA", "v1.Y2Ft.1.AA.x"]
        {
            assert_eq!(t.verify(garbage, "cam", now), Err(TokenError::Invalid), "{garbage}");
        }
    }
}

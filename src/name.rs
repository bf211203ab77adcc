//! `StreamName`: the validated name of a video stream or data stream.
//!
//! Names follow Kinesis: `[a-zA-Z0-9_.-]{1,256}`. A name is never used as a path on disk (`.` and
//! `..` are valid names); the catalog gives each stream a numeric id for its directory.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct StreamName(String);

#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "invalid stream name {shown:?}: {reason} (names are 1-256 characters of a-z, A-Z, 0-9, '_', '.', '-')"
)]
pub struct InvalidName {
    pub shown: String,
    pub reason: &'static str,
}

impl StreamName {
    pub const MAX_LEN: usize = 256;

    pub fn new(s: impl Into<String>) -> Result<Self, InvalidName> {
        let s = s.into();
        let shown = || s.chars().take(64).collect::<String>();
        if s.is_empty() {
            return Err(InvalidName { shown: shown(), reason: "empty" });
        }
        if s.len() > Self::MAX_LEN {
            return Err(InvalidName { shown: shown(), reason: "longer than 256 characters" });
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
            return Err(InvalidName {
                shown: shown(),
                reason: "contains a character outside the allowed set",
            });
        }
        Ok(StreamName(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StreamName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StreamName::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_like_kinesis() {
        assert!(StreamName::new("cam-1.front_door").is_ok());
        assert!(StreamName::new("..").is_ok());
        assert!(StreamName::new("").is_err());
        assert!(StreamName::new("a/b").is_err());
        assert!(StreamName::new("x".repeat(256)).is_ok());
        assert!(StreamName::new("x".repeat(257)).is_err());
        assert!(StreamName::new("caméra").is_err());
    }
}

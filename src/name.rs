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
    "invalid stream name {shown:?}: {reason} (names are 1-{max} characters of a-z, A-Z, 0-9, '_', '.', '-')"
)]
pub struct InvalidName {
    pub shown: String,
    pub reason: &'static str,
    /// The longest name of this kind of stream.
    pub max: usize,
}

impl StreamName {
    /// The longest video stream name (Kinesis Video Streams allows 256).
    pub const MAX_LEN: usize = 256;

    pub fn new(s: impl Into<String>) -> Result<Self, InvalidName> {
        Self::with_max(s.into(), Self::MAX_LEN)
    }

    fn with_max(s: String, max: usize) -> Result<Self, InvalidName> {
        let shown = || s.chars().take(64).collect::<String>();
        if s.is_empty() {
            return Err(InvalidName { shown: shown(), reason: "empty", max });
        }
        if s.len() > max {
            return Err(InvalidName { shown: shown(), reason: "too long", max });
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
            return Err(InvalidName {
                shown: shown(),
                reason: "contains a character outside the allowed set",
                max,
            });
        }
        if s.bytes().all(|b| b == b'.') {
            // `.` and `..` are path components, and a name of dots only is never meant as one.
            return Err(InvalidName { shown: shown(), reason: "is only dots", max });
        }
        Ok(StreamName(s))
    }

    /// The name as one path component, for the few places a user-facing layout names files by
    /// stream (an image directory `<path>/<stream>/`). Safe by construction: a valid name has no
    /// separator and is not `.` or `..`. Sluice's own data is named by ids, never by names.
    pub fn as_path_component(&self) -> &std::path::Path {
        let p = std::path::Path::new(&self.0);
        debug_assert!(matches!(
            p.components().collect::<Vec<_>>().as_slice(),
            [std::path::Component::Normal(_)]
        ));
        p
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

/// A data stream's name: as a video stream's, but at most 128 characters (Kinesis Data Streams'
/// limit), so a name that passes configuration validation is one the data streams take.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DataStreamName(StreamName);

impl DataStreamName {
    pub const MAX_LEN: usize = 128;

    pub fn new(s: impl Into<String>) -> Result<Self, InvalidName> {
        StreamName::with_max(s.into(), Self::MAX_LEN).map(DataStreamName)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The same name, where any stream name is taken.
    pub fn as_name(&self) -> &StreamName {
        &self.0
    }
}

impl fmt::Display for DataStreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
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
        for dots in [".", "..", "...", "...."] {
            assert!(StreamName::new(dots).is_err(), "{dots:?} is a path component, not a name");
        }
        for ok in [".a", "a.", "a..b", "-", "_", "x"] {
            let n = StreamName::new(ok).unwrap();
            let mut parts = n.as_path_component().components();
            assert!(matches!(parts.next(), Some(std::path::Component::Normal(_))), "{ok}");
            assert!(parts.next().is_none(), "{ok}");
        }
        assert!(StreamName::new("").is_err());
        assert!(StreamName::new("a/b").is_err());
        assert!(StreamName::new("x".repeat(256)).is_ok());
        assert!(StreamName::new("x".repeat(257)).is_err());
        assert!(StreamName::new("caméra").is_err());
    }

    #[test]
    fn data_stream_names_are_shorter() {
        assert!(DataStreamName::new("x".repeat(128)).is_ok());
        let e = DataStreamName::new("x".repeat(129)).unwrap_err();
        assert!(e.to_string().contains("1-128 characters"), "{e}");
        assert!(StreamName::new("x".repeat(129)).is_ok());
    }
}

//! Wall-clock time for Sluice: the `Timestamp` newtype every API and the storage engine use, and
//! the injectable `Clock` so retention, expiry and rollover are tested without sleeping.
//!
//! A `Timestamp` is microseconds since the Unix epoch (UTC). The API accepts RFC 3339 or epoch
//! milliseconds (`Timestamp::parse_api`) and prints RFC 3339 with millisecond precision.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Microseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms.saturating_mul(1000))
    }
    pub const fn as_micros(self) -> i64 {
        self.0
    }
    pub const fn as_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }
    /// Seconds as a float, the shape Kinesis JSON uses for timestamps.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    pub fn saturating_add(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)))
    }
    pub fn saturating_sub(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)))
    }
    pub const fn add_micros(self, us: i64) -> Self {
        Timestamp(self.0.saturating_add(us))
    }
    /// `self - earlier` in microseconds (negative when `earlier` is later).
    pub const fn micros_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Parses the API's two spellings: RFC 3339 (`2026-11-21T10:00:00.250Z`) or integer epoch
    /// milliseconds (`1795000000250`).
    pub fn parse_api(s: &str) -> Result<Self, TimestampParseError> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            let ms: i64 = s.parse().map_err(|_| TimestampParseError(s.to_owned()))?;
            return Ok(Timestamp::from_millis(ms));
        }
        let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|_| TimestampParseError(s.to_owned()))?;
        let us = dt.unix_timestamp_nanos() / 1000;
        i64::try_from(us).map(Timestamp).map_err(|_| TimestampParseError(s.to_owned()))
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-21T10:00:00.250Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1000;
        match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(dt) => {
                let f = time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                );
                dt.format(&f).unwrap_or_else(|_| self.0.to_string())
            }
            Err(_) => self.0.to_string(),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Millis(ms) => Ok(Timestamp::from_millis(ms)),
            Raw::Text(s) => Timestamp::parse_api(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid timestamp {0:?}: expected RFC 3339 (2026-11-21T10:00:00Z) or epoch milliseconds")]
pub struct TimestampParseError(pub String);

/// Which of a fragment's (or event's) two clocks a query selects (`timestamps=producer|server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampKind {
    /// The producer's timestamp.
    #[default]
    Producer,
    /// The server's arrival timestamp.
    Server,
}

/// The source of "now". Production uses [`SystemClock`]; tests use [`ManualClock`].
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    fn now(&self) -> Timestamp;
}

pub type SharedClock = Arc<dyn Clock>;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to: for tests of retention and expiry.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicI64::new(start.0))
    }
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
    pub fn advance(&self, d: Duration) {
        let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        self.0.fetch_add(us, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_api_spellings() {
        let a = Timestamp::parse_api("2026-11-21T10:00:00.250Z").unwrap();
        let b = Timestamp::parse_api(&a.as_millis().to_string()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_rfc3339(), "2026-11-21T10:00:00.250Z");
        assert!(Timestamp::parse_api("yesterday").is_err());
        assert!(Timestamp::parse_api("").is_err());
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let a = Timestamp::parse_api("2026-11-21T12:00:00+02:00").unwrap();
        assert_eq!(a.to_rfc3339(), "2026-11-21T10:00:00.000Z");
    }
}

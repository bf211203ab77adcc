//! Durations in the configuration. A field keeps its unit in its name (`…_secs`, `…_ms`), so a
//! TOML file reads plainly (`retention_interval_secs = 30`), and is a `Duration` in Rust, so no
//! code converts units by hand.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A whole number of seconds.
pub fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// A whole number of milliseconds.
pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

//! Sequence numbers: decimal strings of one `u128` laid out as
//! `arrival_ms << 64 | shard_ordinal << 40 | offset`.
//!
//! - Unique in a stream (the ordinal and the offset identify the record).
//! - Increasing within a shard: arrival times never decrease along a shard's log (the writer
//!   clamps them) and offsets increase.
//! - Ordered by arrival time across shards (to the millisecond).
//! - Decodable to (shard ordinal, offset), so a sequence number finds its record by one index
//!   lookup. Ordinals are below 2^24, offsets below 2^40.

use std::fmt;

use super::error::DsError;
use crate::clock::Timestamp;
use crate::log::Offset;

/// Shard ordinals must be below this (24 bits).
pub const MAX_ORDINAL: u32 = 1 << 24;
/// Offsets in one shard must be below this (40 bits).
pub const MAX_OFFSET: u64 = 1 << 40;

/// A record's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SequenceNumber(pub u128);

impl SequenceNumber {
    /// The sequence number of the record at `offset` of shard `ordinal` that arrived at `arrival`.
    pub fn encode(arrival: Timestamp, ordinal: u32, offset: Offset) -> SequenceNumber {
        let ms = u128::from(u64::try_from(arrival.as_millis()).unwrap_or(0));
        let ord = u128::from(ordinal & (MAX_ORDINAL - 1));
        let off = u128::from(offset.0 & (MAX_OFFSET - 1));
        SequenceNumber((ms << 64) | (ord << 40) | off)
    }

    /// The shard ordinal this sequence number belongs to.
    pub fn ordinal(self) -> u32 {
        ((self.0 >> 40) as u64 & u64::from(MAX_ORDINAL - 1)) as u32
    }

    /// The record's offset in its shard.
    pub fn offset(self) -> Offset {
        Offset(self.0 as u64 & (MAX_OFFSET - 1))
    }

    /// The arrival time, to the millisecond.
    pub fn arrival_ms(self) -> u64 {
        (self.0 >> 64) as u64
    }

    /// Parses the wire form: `0|([1-9]\d{0,128})` (else `ValidationException`), and a value this
    /// server can have issued (else `InvalidArgumentException`).
    pub fn parse(s: &str, member: &str) -> Result<SequenceNumber, DsError> {
        super::validate::decimal(s, member, 129)?;
        s.parse::<u128>().map(SequenceNumber).map_err(|_| {
            DsError::InvalidArgument(format!("{member} {s} is not a valid sequence number"))
        })
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_order() {
        let t = Timestamp::from_millis(1_700_000_000_123);
        let s = SequenceNumber::encode(t, 7, Offset(42));
        assert_eq!((s.ordinal(), s.offset(), s.arrival_ms()), (7, Offset(42), 1_700_000_000_123));
        let parsed = SequenceNumber::parse(&s.to_string(), "S").unwrap();
        assert_eq!(parsed, s);
        // Within a shard: later offsets (same or later ms) are larger.
        assert!(SequenceNumber::encode(t, 7, Offset(43)) > s);
        assert!(SequenceNumber::encode(t.add_micros(1000), 7, Offset(43)) > s);
        // Across shards: a later millisecond wins whatever the shard.
        assert!(SequenceNumber::encode(t.add_micros(1000), 0, Offset(0)) > s);
        // Extremes decode.
        let max = SequenceNumber::encode(t, MAX_ORDINAL - 1, Offset(MAX_OFFSET - 1));
        assert_eq!((max.ordinal(), max.offset()), (MAX_ORDINAL - 1, Offset(MAX_OFFSET - 1)));
    }

    #[test]
    fn parse_is_strict() {
        for bad in ["", "01", "abc", "-5", " 1"] {
            assert!(matches!(SequenceNumber::parse(bad, "S"), Err(DsError::Validation(_))));
        }
        assert!(matches!(
            SequenceNumber::parse(&"9".repeat(60), "S"),
            Err(DsError::InvalidArgument(_))
        ));
    }
}

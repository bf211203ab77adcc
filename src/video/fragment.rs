//! What the video layer stores about each fragment, beside its bytes: the `FragmentMeta` packed
//! into the log index's 24-byte metadata (so listing never reads media), and `FragmentInfo`, the
//! decoded view the API and playback use.

use crate::clock::Timestamp;
use crate::log::{IndexEntry, META_LEN, Offset, RecordMeta};

/// A fragment's number: increasing in ingestion order, never reused (not after retention, not
/// after a restart); decimal strings in the API. It is the fragment's offset in its stream's log,
/// but a distinct type, so positions in other logs (init segments, data-stream shards) cannot
/// pass for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FragmentNumber(pub u64);

impl FragmentNumber {
    /// The fragment's position in its stream's fragment log.
    pub fn offset(self) -> Offset {
        Offset(self.0)
    }

    /// The number after this one.
    pub fn next(self) -> FragmentNumber {
        FragmentNumber(self.0 + 1)
    }
}

impl From<Offset> for FragmentNumber {
    fn from(o: Offset) -> Self {
        FragmentNumber(o.0)
    }
}

impl std::fmt::Display for FragmentNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

const META_VERSION: u8 = 1;

/// The fragment starts with a sync sample (keyframe) on its timing track.
pub const FLAG_KEYFRAME: u8 = 1;
/// The fragment starts an HLS segment (a keyframe, the first after a discontinuity, or a
/// producer's first fragment).
pub const FLAG_SEGMENT_START: u8 = 2;
/// The fragment starts a discontinuity: a new producer session or a new init segment.
pub const FLAG_DISCONTINUITY: u8 = 4;

/// Per-fragment facts kept in the index. Layout (little endian): version u8, flags u8,
/// reserved u16, duration_us u32, init_id u32, segment u32, discontinuity u32, then 4 bytes
/// reserved (zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FragmentMeta {
    pub flags: u8,
    /// Duration of the fragment's timing track (video if any), in microseconds.
    pub duration_us: u32,
    /// Offset of the fragment's init segment in the stream's init log.
    pub init_id: u32,
    /// HLS segment sequence number: increases by one at every fragment with FLAG_SEGMENT_START.
    pub segment: u32,
    /// Discontinuity sequence number: increases by one at every FLAG_DISCONTINUITY.
    pub discontinuity: u32,
}

impl FragmentMeta {
    pub fn encode(&self) -> RecordMeta {
        let mut m = [0u8; META_LEN];
        m[0] = META_VERSION;
        m[1] = self.flags;
        m[4..8].copy_from_slice(&self.duration_us.to_le_bytes());
        m[8..12].copy_from_slice(&self.init_id.to_le_bytes());
        m[12..16].copy_from_slice(&self.segment.to_le_bytes());
        m[16..20].copy_from_slice(&self.discontinuity.to_le_bytes());
        m
    }

    pub fn decode(m: &RecordMeta) -> FragmentMeta {
        let u32_at = |i: usize| u32::from_le_bytes([m[i], m[i + 1], m[i + 2], m[i + 3]]);
        FragmentMeta {
            flags: m[1],
            duration_us: u32_at(4),
            init_id: u32_at(8),
            segment: u32_at(12),
            discontinuity: u32_at(16),
        }
    }

    pub fn keyframe(&self) -> bool {
        self.flags & FLAG_KEYFRAME != 0
    }
    pub fn segment_start(&self) -> bool {
        self.flags & FLAG_SEGMENT_START != 0
    }
    pub fn discontinuity_start(&self) -> bool {
        self.flags & FLAG_DISCONTINUITY != 0
    }
}

/// A stored fragment as listed by the API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FragmentInfo {
    pub number: FragmentNumber,
    pub size: u32,
    pub producer_ts: Timestamp,
    pub server_ts: Timestamp,
    pub meta: FragmentMeta,
}

impl FragmentInfo {
    pub fn from_entry(e: &IndexEntry) -> Self {
        FragmentInfo {
            number: e.offset.into(),
            size: e.len,
            producer_ts: e.time,
            server_ts: e.arrival,
            meta: FragmentMeta::decode(&e.meta),
        }
    }

    /// The producer timestamp at which the fragment ends.
    pub fn producer_end(&self) -> Timestamp {
        self.producer_ts.add_micros(i64::from(self.meta.duration_us))
    }

    pub fn time(&self, clock: TimestampKind) -> Timestamp {
        match clock {
            TimestampKind::Producer => self.producer_ts,
            TimestampKind::Server => self.server_ts,
        }
    }
}

pub use crate::clock::TimestampKind;

impl TimestampKind {
    pub fn log_key(self) -> crate::log::TimeKey {
        match self {
            TimestampKind::Producer => crate::log::TimeKey::Time,
            TimestampKind::Server => crate::log::TimeKey::Arrival,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_roundtrips() {
        let m = FragmentMeta {
            flags: FLAG_KEYFRAME | FLAG_SEGMENT_START,
            duration_us: 1_000_000,
            init_id: 3,
            segment: 77,
            discontinuity: 2,
        };
        assert_eq!(FragmentMeta::decode(&m.encode()), m);
        assert!(m.keyframe() && m.segment_start() && !m.discontinuity_start());
    }
}

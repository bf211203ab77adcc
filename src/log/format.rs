//! The on-disk byte layout of segment files: the file header shared by `.log` and `.idx` files,
//! the record frame in `.log` files and the fixed-size entry in `.idx` files.
//!
//! Pure: no I/O. The files themselves are opened, read and written by [`super::segment`]; this
//! module only turns values into bytes and back, and computes the CRC32C (Castagnoli) checksums.
//! All integers are little-endian.
//!
//! # File header (32 bytes, both file kinds)
//!
//! | bytes  | field                                              |
//! |--------|----------------------------------------------------|
//! | 0..8   | magic: `SLUICELG` (`.log`) or `SLUICEIX` (`.idx`)  |
//! | 8..12  | format version (`1`)                               |
//! | 12..16 | reserved, zero                                     |
//! | 16..24 | base offset: the offset of the segment's first record |
//! | 24..28 | reserved, zero                                     |
//! | 28..32 | CRC32C of bytes 0..28                              |
//!
//! # Record frame in `.log` (56-byte header, then the payload)
//!
//! | bytes  | field                                              |
//! |--------|----------------------------------------------------|
//! | 0..4   | payload length `len` (u32)                         |
//! | 4..8   | CRC32C of bytes 0..4, 8..56 and the payload        |
//! | 8..16  | offset (u64)                                       |
//! | 16..24 | time (i64 µs since the epoch)                      |
//! | 24..32 | arrival (i64 µs since the epoch)                   |
//! | 32..56 | meta (24 opaque bytes)                             |
//! | 56..   | payload (`len` bytes)                              |
//!
//! # Index entry in `.idx` (64 bytes, one per record, dense, in offset order)
//!
//! | bytes  | field                                              |
//! |--------|----------------------------------------------------|
//! | 0..8   | offset (u64; also implied by the entry's position) |
//! | 8..16  | file position of the record frame in the `.log`    |
//! | 16..20 | payload length (u32)                               |
//! | 20..24 | CRC32C of bytes 0..20 and 24..64                   |
//! | 24..32 | time                                               |
//! | 32..40 | arrival                                            |
//! | 40..64 | meta                                               |

use crate::clock::Timestamp;

use super::{IndexEntry, META_LEN, Offset};

/// Magic of a `.log` file.
pub(super) const LOG_MAGIC: [u8; 8] = *b"SLUICELG";
/// Magic of an `.idx` file.
pub(super) const IDX_MAGIC: [u8; 8] = *b"SLUICEIX";
/// Bumped whenever any layout in this module changes.
pub(super) const FORMAT_VERSION: u32 = 1;
/// Length of the header at the start of both file kinds.
pub(super) const FILE_HEADER_LEN: u64 = 32;
/// Length of a record frame's header in a `.log` file.
pub(super) const FRAME_HEADER_LEN: usize = 56;
/// Length of one entry in an `.idx` file.
pub(super) const INDEX_ENTRY_LEN: usize = 64;

/// An index entry together with where its frame starts in the `.log` file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Slot {
    pub entry: IndexEntry,
    /// File position of the frame header in the segment's `.log` file.
    pub position: u64,
}

impl Slot {
    /// Position just past this record's frame: where the next frame starts.
    pub fn end(&self) -> u64 {
        self.position + FRAME_HEADER_LEN as u64 + u64::from(self.entry.len)
    }
}

/// Why a file header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HeaderError {
    Short,
    BadMagic,
    BadChecksum,
    UnsupportedVersion(u32),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Short => f.write_str("file header is truncated"),
            HeaderError::BadMagic => f.write_str("bad magic in file header"),
            HeaderError::BadChecksum => f.write_str("file header checksum mismatch"),
            HeaderError::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
        }
    }
}

pub(super) fn encode_file_header(magic: [u8; 8], base: Offset) -> [u8; FILE_HEADER_LEN as usize] {
    let mut b = [0u8; FILE_HEADER_LEN as usize];
    b[0..8].copy_from_slice(&magic);
    b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[16..24].copy_from_slice(&base.0.to_le_bytes());
    let crc = crc32c::crc32c(&b[0..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Checks a file header and returns the base offset it names.
pub(super) fn decode_file_header(b: &[u8], magic: [u8; 8]) -> Result<Offset, HeaderError> {
    if b.len() < FILE_HEADER_LEN as usize {
        return Err(HeaderError::Short);
    }
    if b[0..8] != magic {
        return Err(HeaderError::BadMagic);
    }
    if crc32c::crc32c(&b[0..28]) != u32_at(b, 28) {
        return Err(HeaderError::BadChecksum);
    }
    let version = u32_at(b, 8);
    if version != FORMAT_VERSION {
        return Err(HeaderError::UnsupportedVersion(version));
    }
    Ok(Offset(u64_at(b, 16)))
}

/// The frame header for `entry` whose payload is `payload`, checksum included.
pub(super) fn encode_frame_header(entry: &IndexEntry, payload: &[u8]) -> [u8; FRAME_HEADER_LEN] {
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[0..4].copy_from_slice(&entry.len.to_le_bytes());
    h[8..16].copy_from_slice(&entry.offset.0.to_le_bytes());
    h[16..24].copy_from_slice(&entry.time.as_micros().to_le_bytes());
    h[24..32].copy_from_slice(&entry.arrival.as_micros().to_le_bytes());
    h[32..56].copy_from_slice(&entry.meta);
    let crc = frame_crc(&h, payload);
    h[4..8].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The CRC a frame should carry: over the header (minus the CRC field itself) and the payload.
pub(super) fn frame_crc(header: &[u8; FRAME_HEADER_LEN], payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&header[0..4]);
    let crc = crc32c::crc32c_append(crc, &header[8..FRAME_HEADER_LEN]);
    crc32c::crc32c_append(crc, payload)
}

/// A decoded frame header: the entry it describes and the checksum it claims.
pub(super) struct FrameHeader {
    pub entry: IndexEntry,
    pub crc: u32,
}

pub(super) fn decode_frame_header(h: &[u8; FRAME_HEADER_LEN]) -> FrameHeader {
    let mut meta = [0u8; META_LEN];
    meta.copy_from_slice(&h[32..56]);
    FrameHeader {
        entry: IndexEntry {
            offset: Offset(u64_at(h, 8)),
            time: Timestamp::from_micros(i64_at(h, 16)),
            arrival: Timestamp::from_micros(i64_at(h, 24)),
            len: u32_at(h, 0),
            meta,
        },
        crc: u32_at(h, 4),
    }
}

pub(super) fn encode_index_entry(slot: &Slot) -> [u8; INDEX_ENTRY_LEN] {
    let e = &slot.entry;
    let mut b = [0u8; INDEX_ENTRY_LEN];
    b[0..8].copy_from_slice(&e.offset.0.to_le_bytes());
    b[8..16].copy_from_slice(&slot.position.to_le_bytes());
    b[16..20].copy_from_slice(&e.len.to_le_bytes());
    b[24..32].copy_from_slice(&e.time.as_micros().to_le_bytes());
    b[32..40].copy_from_slice(&e.arrival.as_micros().to_le_bytes());
    b[40..64].copy_from_slice(&e.meta);
    let crc = index_crc(&b);
    b[20..24].copy_from_slice(&crc.to_le_bytes());
    b
}

fn index_crc(b: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&b[0..20]), &b[24..INDEX_ENTRY_LEN])
}

/// Decodes one index entry; `None` if `b` is short or its checksum does not match.
pub(super) fn decode_index_entry(b: &[u8]) -> Option<Slot> {
    if b.len() < INDEX_ENTRY_LEN || index_crc(b) != u32_at(b, 20) {
        return None;
    }
    let mut meta = [0u8; META_LEN];
    meta.copy_from_slice(&b[40..64]);
    Some(Slot {
        entry: IndexEntry {
            offset: Offset(u64_at(b, 0)),
            time: Timestamp::from_micros(i64_at(b, 24)),
            arrival: Timestamp::from_micros(i64_at(b, 32)),
            len: u32_at(b, 16),
            meta,
        },
        position: u64_at(b, 8),
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(a)
}

/// Limited hex of the first bytes of `b`, for error messages.
pub(super) fn hex_prefix(b: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for byte in b.iter().take(16) {
        let _ = write!(s, "{byte:02x}");
    }
    if b.len() > 16 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> IndexEntry {
        IndexEntry {
            offset: Offset(42),
            time: Timestamp::from_micros(1_000),
            arrival: Timestamp::from_micros(-7),
            len: 5,
            meta: [9; META_LEN],
        }
    }

    #[test]
    fn file_header_roundtrips_and_rejects_damage() {
        let h = encode_file_header(LOG_MAGIC, Offset(77));
        assert_eq!(decode_file_header(&h, LOG_MAGIC), Ok(Offset(77)));
        assert_eq!(decode_file_header(&h, IDX_MAGIC), Err(HeaderError::BadMagic));
        assert_eq!(decode_file_header(&h[..10], LOG_MAGIC), Err(HeaderError::Short));
        let mut bad = h;
        bad[17] ^= 1;
        assert_eq!(decode_file_header(&bad, LOG_MAGIC), Err(HeaderError::BadChecksum));
    }

    #[test]
    fn frame_header_roundtrips_and_checksums_payload() {
        let h = encode_frame_header(&entry(), b"hello");
        let d = decode_frame_header(&h);
        assert_eq!(d.entry, entry());
        assert_eq!(d.crc, frame_crc(&h, b"hello"));
        assert_ne!(d.crc, frame_crc(&h, b"hellp"));
    }

    #[test]
    fn index_entry_roundtrips_and_detects_flips() {
        let slot = Slot { entry: entry(), position: 123 };
        let b = encode_index_entry(&slot);
        assert_eq!(decode_index_entry(&b), Some(slot));
        for i in 0..INDEX_ENTRY_LEN {
            let mut bad = b;
            bad[i] ^= 0x10;
            assert_eq!(decode_index_entry(&bad), None, "flip at byte {i}");
        }
        assert_eq!(slot.end(), 123 + 56 + 5);
    }
}

//! How one Kinesis record sits in a shard's log.
//!
//! - `time` = `arrival` = the server's arrival time (`ApproximateArrivalTimestamp`), never
//!   decreasing along the shard.
//! - payload = `u16 LE partition-key length | partition key (UTF-8) | data`.
//! - meta = the record's 128-bit hash key (big-endian) in bytes 0..16, then zeros.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::DsError;
use super::hashkey::HashKey;
use crate::log::{META_LEN, RecordMeta};

/// Encodes the payload of a record.
pub fn encode(partition_key: &str, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(2 + partition_key.len() + data.len());
    // Partition keys are at most 256 characters (1,024 bytes): always fits a u16.
    b.put_u16_le(partition_key.len() as u16);
    b.put_slice(partition_key.as_bytes());
    b.put_slice(data);
    b.freeze()
}

/// The index metadata of a record.
pub fn meta(hash: HashKey) -> RecordMeta {
    let mut m = [0u8; META_LEN];
    m[..16].copy_from_slice(&hash.0.to_be_bytes());
    m
}

/// Splits a stored payload into (partition key, data) without copying the data.
pub fn decode(payload: &Bytes) -> Result<(String, Bytes), DsError> {
    let bad = || DsError::Internal("stored data record is malformed".to_owned());
    let len = payload.get(..2).ok_or_else(bad)?;
    let n = usize::from(u16::from_le_bytes([len[0], len[1]]));
    let key = payload.get(2..2 + n).ok_or_else(bad)?;
    let key = std::str::from_utf8(key).map_err(|_| bad())?.to_owned();
    Ok((key, payload.slice(2 + n..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let p = encode("clé", b"\x00\x01data");
        let (k, d) = decode(&p).unwrap();
        assert_eq!((k.as_str(), &d[..]), ("clé", &b"\x00\x01data"[..]));
        assert!(decode(&Bytes::from_static(b"\x05\x00ab")).is_err());
        assert!(decode(&Bytes::new()).is_err());
    }
}

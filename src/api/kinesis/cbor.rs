//! The CBOR codec of the Kinesis wire (`application/x-amz-cbor-1.1`), what the AWS SDK for Java
//! and the KCL send by default. The members are those of JSON 1.1; blobs are CBOR byte strings
//! rather than base64 text, and timestamps are CBOR tag 1 (epoch-based date/time) over integer
//! epoch **milliseconds**, as the AWS SDKs write and read them for this protocol.
//!
//! Requests are turned into the JSON the operations decode (byte strings become base64, tagged
//! timestamps epoch seconds), so every operation has one set of request types; answers are
//! written from the same values, members named `…Timestamp` as tagged milliseconds. GetRecords,
//! the hot path, is written straight from the records: their bytes are copied once into the
//! answer, never base64-encoded. Uses `ciborium` (maintained, serde-based) for the values and its
//! low-level encoder for GetRecords.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ciborium::value::{Integer, Value as Cbor};
use ciborium_ll::{Encoder, Header};
use serde_json::{Map, Number, Value as Json};

use super::ops::Position;
use crate::datastream::{DataRecord, DsError};

/// CBOR's tag for an epoch-based date/time.
const EPOCH: u64 = 1;
/// Nesting deeper than any Kinesis request needs is refused (a hostile body cannot recurse far).
const MAX_DEPTH: usize = 32;

/// A CBOR request body as the JSON text the operations decode.
pub fn request_to_json(body: &[u8]) -> Result<Vec<u8>, DsError> {
    if body.is_empty() {
        return Ok(b"{}".to_vec());
    }
    let value: Cbor = ciborium::from_reader(body)
        .map_err(|e| DsError::Serialization(format!("Invalid CBOR request body: {e}")))?;
    let json = to_json(value, 0)?;
    serde_json::to_vec(&json).map_err(|e| DsError::Internal(format!("re-encoding a request: {e}")))
}

fn to_json(v: Cbor, depth: usize) -> Result<Json, DsError> {
    if depth > MAX_DEPTH {
        return Err(DsError::Serialization("The CBOR request nests too deeply.".to_owned()));
    }
    Ok(match v {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(b),
        Cbor::Integer(i) => {
            let i = i128::from(i);
            match (i64::try_from(i), u64::try_from(i)) {
                (Ok(n), _) => Json::from(n),
                (_, Ok(n)) => Json::from(n),
                _ => {
                    return Err(DsError::Serialization(format!(
                        "The integer {i} is out of range."
                    )));
                }
            }
        }
        Cbor::Float(f) => Number::from_f64(f).map(Json::Number).ok_or_else(|| {
            DsError::Serialization(format!("The number {f} is not a finite number."))
        })?,
        Cbor::Text(s) => Json::String(s),
        Cbor::Bytes(b) => Json::String(STANDARD.encode(b)),
        Cbor::Tag(EPOCH, inner) => Json::from(epoch_seconds(*inner)?),
        // Other tags carry no meaning in this protocol: their content stands for itself.
        Cbor::Tag(_, inner) => to_json(*inner, depth + 1)?,
        Cbor::Array(items) => {
            Json::Array(items.into_iter().map(|i| to_json(i, depth + 1)).collect::<Result<_, _>>()?)
        }
        Cbor::Map(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (k, v) in entries {
                let Cbor::Text(k) = k else {
                    return Err(DsError::Serialization(
                        "Map keys in a CBOR request must be text.".to_owned(),
                    ));
                };
                map.insert(k, to_json(v, depth + 1)?);
            }
            Json::Object(map)
        }
        _ => return Err(DsError::Serialization("Unsupported CBOR value.".to_owned())),
    })
}

/// A tagged timestamp as epoch seconds: integers are milliseconds (what the AWS SDKs send); a
/// float is seconds, or milliseconds when it could only be milliseconds (past the year 5000).
fn epoch_seconds(v: Cbor) -> Result<f64, DsError> {
    match v {
        Cbor::Integer(i) => Ok(i128::from(i) as f64 / 1000.0),
        Cbor::Float(f) if f.is_finite() && f.abs() < 1e11 => Ok(f),
        Cbor::Float(f) if f.is_finite() => Ok(f / 1000.0),
        _ => Err(DsError::Serialization("A timestamp must be a number.".to_owned())),
    }
}

/// An answer (or error body) as CBOR: numbers under members named `…Timestamp` (epoch seconds
/// in JSON) become tagged epoch milliseconds.
pub fn json_to_cbor(v: &Json) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ciborium::into_writer(&to_cbor(v, false), &mut out);
    out
}

fn to_cbor(v: &Json, timestamp: bool) -> Cbor {
    match v {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(*b),
        Json::Number(n) if timestamp => {
            let ms = n.as_f64().map_or(0, |s| (s * 1000.0).round() as i64);
            Cbor::Tag(EPOCH, Box::new(Cbor::Integer(Integer::from(ms))))
        }
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cbor::Integer(Integer::from(i)),
            (_, Some(u)) => Cbor::Integer(Integer::from(u)),
            _ => Cbor::Float(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => Cbor::Text(s.clone()),
        Json::Array(items) => Cbor::Array(items.iter().map(|i| to_cbor(i, false)).collect()),
        Json::Object(map) => Cbor::Map(
            map.iter()
                .map(|(k, v)| (Cbor::Text(k.clone()), to_cbor(v, k.ends_with("Timestamp"))))
                .collect(),
        ),
    }
}

/// A page of records (GetRecords' answer, a SubscribeToShard event), written straight from the
/// records (their bytes as byte strings).
pub fn records_to_cbor(
    records: &[DataRecord],
    millis_behind_latest: i64,
    position: Position<'_>,
    child_shards: Option<&Json>,
) -> Vec<u8> {
    let payload: usize = records.iter().map(|r| r.data.len() + r.partition_key.len()).sum();
    let mut buf = Vec::with_capacity(64 + payload + records.len() * 80);
    let mut e = Encoder::from(&mut buf);
    // Writing into a Vec cannot fail; `?`-free so the shape reads top to bottom.
    let members = 3 + usize::from(child_shards.is_some());
    let _ = e.push(Header::Map(Some(members)));
    let _ = e.text("Records", None);
    let _ = e.push(Header::Array(Some(records.len())));
    for r in records {
        let _ = e.push(Header::Map(Some(4)));
        let _ = e.text("SequenceNumber", None);
        let _ = e.text(&r.sequence_number.to_string(), None);
        let _ = e.text("ApproximateArrivalTimestamp", None);
        let _ = e.push(Header::Tag(EPOCH));
        push_int(&mut e, r.arrival.as_millis());
        let _ = e.text("Data", None);
        let _ = e.bytes(&r.data, None);
        let _ = e.text("PartitionKey", None);
        let _ = e.text(&r.partition_key, None);
    }
    let _ = e.text("MillisBehindLatest", None);
    push_int(&mut e, millis_behind_latest);
    let _ = e.text(position.name(), None);
    match position.value() {
        Some(it) => {
            let _ = e.text(it, None);
        }
        None => {
            let _ = e.push(Header::Simple(ciborium_ll::simple::NULL));
        }
    }
    if let Some(children) = child_shards {
        let _ = e.text("ChildShards", None);
        let _ = ciborium::into_writer(&to_cbor(children, false), &mut buf);
    }
    buf
}

fn push_int(e: &mut Encoder<&mut Vec<u8>>, n: i64) {
    let _ = e.push(if n >= 0 { Header::Positive(n as u64) } else { Header::Negative(!n as u64) });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor(v: &Cbor) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    fn text(s: &str) -> Cbor {
        Cbor::Text(s.to_owned())
    }

    #[test]
    fn requests_become_the_json_the_operations_read() {
        let req = Cbor::Map(vec![
            (text("StreamName"), text("s")),
            (text("Data"), Cbor::Bytes(vec![0, 1, 2, 255])),
            (
                text("Timestamp"),
                Cbor::Tag(1, Box::new(Cbor::Integer(Integer::from(1_700_000_000_250i64)))),
            ),
            (text("Limit"), Cbor::Integer(Integer::from(10))),
        ]);
        let json: Json = serde_json::from_slice(&request_to_json(&cbor(&req)).unwrap()).unwrap();
        assert_eq!(json["Data"], "AAEC/w==");
        assert_eq!(json["Timestamp"], 1_700_000_000.25);
        assert_eq!(json["Limit"], 10);
        assert_eq!(request_to_json(b"").unwrap(), b"{}");
        for bad in [&b"\xff\xff"[..], &b"\xa1\x01\x02"[..], &b"\x1b"[..]] {
            let e = request_to_json(bad).unwrap_err();
            assert_eq!(e.type_name(), "SerializationException", "{bad:?}");
        }
        let mut deep = Cbor::Null;
        for _ in 0..100 {
            deep = Cbor::Array(vec![deep]);
        }
        assert!(request_to_json(&cbor(&deep)).is_err());
    }

    #[test]
    fn answers_tag_timestamps_in_milliseconds() {
        let v = serde_json::json!({
            "StreamDescriptionSummary": { "StreamCreationTimestamp": 1_700_000_000.5, "OpenShardCount": 2 },
            "__type": "ResourceNotFoundException",
        });
        let back: Cbor = ciborium::from_reader(&json_to_cbor(&v)[..]).unwrap();
        let get = |v: &Cbor, k: &str| {
            v.as_map().unwrap().iter().find(|(n, _)| n.as_text() == Some(k)).unwrap().1.clone()
        };
        let summary = get(&back, "StreamDescriptionSummary");
        assert_eq!(
            get(&summary, "StreamCreationTimestamp"),
            Cbor::Tag(1, Box::new(Cbor::Integer(Integer::from(1_700_000_000_500i64))))
        );
        assert_eq!(get(&summary, "OpenShardCount"), Cbor::Integer(Integer::from(2)));
        assert_eq!(get(&back, "__type"), text("ResourceNotFoundException"));
    }
}

//! Producers' metadata on the video timeline (`POST/GET /v1/streams/{name}/events`): GPS fixes,
//! detections, anything JSON, stamped on either of the video's clocks.
//!
//! This module is the pure part: request parsing and validation, and the JSON document stored per
//! event. Storage is in the data-stream core (see `store`): each event is one record of the
//! metadata data stream (default `sluice-metadata`) with the video stream's name as partition key,
//! so Kinesis clients can consume it, plus a row in a catalog index by (video stream, clock,
//! timestamp) so a time range is read back in timestamp order with one indexed query.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::clock::TimestampKind;
use crate::error::{Error, Result};

/// Events per request, at most.
pub const MAX_BATCH: usize = 500;
/// Bytes of one stored event document, at most (the data-stream record limit).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Characters of an event type, at most.
pub const MAX_TYPE_LEN: usize = 128;

/// One event as a producer posts it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    /// When the event happened, on `timestamps`' clock. Default: now (server clock).
    pub timestamp: Option<Timestamp>,
    #[serde(default)]
    pub timestamps: Option<TimestampKind>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// A request body: one event, a JSON array of events, or `{"events": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum EventsBody {
    Wrapped { events: Vec<EventInput> },
    Many(Vec<EventInput>),
    One(EventInput),
}

impl EventsBody {
    pub fn into_vec(self) -> Vec<EventInput> {
        match self {
            EventsBody::Wrapped { events } | EventsBody::Many(events) => events,
            EventsBody::One(e) => vec![e],
        }
    }
}

/// The stored document of one event (the data-stream record's data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    pub stream: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: Timestamp,
    pub timestamps: TimestampKind,
    pub received_at: Timestamp,
    pub data: serde_json::Value,
}

impl StoredEvent {
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::internal(format!("encoding event: {e}")))
    }

    pub fn decode(bytes: &[u8]) -> Option<StoredEvent> {
        serde_json::from_slice(bytes).ok()
    }
}

/// Validates a batch and turns it into stored documents (in request order).
pub fn validate(stream: &str, inputs: Vec<EventInput>, now: Timestamp) -> Result<Vec<StoredEvent>> {
    if inputs.is_empty() {
        return Err(Error::invalid("no events in the request"));
    }
    if inputs.len() > MAX_BATCH {
        return Err(Error::invalid(format!(
            "{} events in one request; at most {MAX_BATCH}",
            inputs.len()
        )));
    }
    let mut out = Vec::with_capacity(inputs.len());
    for (i, e) in inputs.into_iter().enumerate() {
        if e.kind.is_empty() || e.kind.chars().count() > MAX_TYPE_LEN {
            return Err(Error::invalid(format!(
                "event {i}: type must be 1 to {MAX_TYPE_LEN} characters"
            )));
        }
        let doc = StoredEvent {
            stream: stream.to_owned(),
            kind: e.kind,
            timestamp: e.timestamp.unwrap_or(now),
            timestamps: e.timestamps.unwrap_or(if e.timestamp.is_some() {
                TimestampKind::Producer
            } else {
                TimestampKind::Server
            }),
            received_at: now,
            data: e.data,
        };
        let size = doc.encode()?.len();
        if size > MAX_EVENT_BYTES {
            return Err(Error::new(
                crate::error::ErrorKind::TooLarge,
                format!("event {i} is {size} bytes; at most {MAX_EVENT_BYTES}"),
            ));
        }
        out.push(doc);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Vec<EventInput> {
        serde_json::from_str::<EventsBody>(json).unwrap().into_vec()
    }

    #[test]
    fn accepts_one_many_and_wrapped() {
        assert_eq!(parse(r#"{"type":"gps","data":{"lat":1}}"#).len(), 1);
        assert_eq!(parse(r#"[{"type":"a"},{"type":"b"}]"#).len(), 2);
        assert_eq!(parse(r#"{"events":[{"type":"a"}]}"#).len(), 1);
        assert!(serde_json::from_str::<EventsBody>(r#"{"type":"a","colour":1}"#).is_err());
    }

    #[test]
    fn validates_and_defaults_the_clock() {
        let now = Timestamp::from_millis(10_000);
        let docs = validate(
            "cam",
            parse(r#"[{"type":"a"},{"type":"b","timestamp":"1970-01-01T00:00:05Z"},{"type":"c","timestamp":1,"timestamps":"server"}]"#),
            now,
        )
        .unwrap();
        assert_eq!((docs[0].timestamp, docs[0].timestamps), (now, TimestampKind::Server));
        assert_eq!(
            (docs[1].timestamp.as_millis(), docs[1].timestamps),
            (5000, TimestampKind::Producer)
        );
        assert_eq!(docs[2].timestamps, TimestampKind::Server);
        let back = StoredEvent::decode(&docs[1].encode().unwrap()).unwrap();
        assert_eq!(back, docs[1]);
        assert!(validate("cam", vec![], now).is_err());
        assert!(validate("cam", parse(r#"{"type":""}"#), now).is_err());
        let many = format!("[{}]", vec![r#"{"type":"x"}"#; 501].join(","));
        assert!(validate("cam", parse(&many), now).is_err());
        let big = format!(r#"{{"type":"x","data":"{}"}}"#, "a".repeat(MAX_EVENT_BYTES));
        let err = validate("cam", parse(&big), now).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::TooLarge);
    }
}

//! Sluice's own lifecycle events (`StreamCreated`, `ProducerConnected`, `FragmentPersisted`, …)
//! and where they go.
//!
//! The video layer reports events to an [`EventSink`]; it never waits on one. The production sink
//! ([`sink::DataStreamSink`]) queues events and a background task writes them into the system data
//! stream (default `sluice-events`) with the video stream's name as partition key, so each video
//! stream's events are ordered and any Kinesis client can consume them. The schema is in
//! `docs/events.md`; [`Event`] is its single source.

pub mod metadata;
pub mod sink;
pub mod store;

use serde::Serialize;

use crate::clock::Timestamp;

/// Version of the event schema, carried in every event.
pub const SCHEMA_VERSION: u32 = 1;

/// One lifecycle event of a video stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub version: u32,
    pub stream: String,
    /// Server time at which the event happened.
    pub timestamp: Timestamp,
    pub details: EventDetails,
}

/// The details of each event type. Field names are camelCase in JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EventDetails {
    #[serde(rename_all = "camelCase")]
    StreamCreated {
        retention_hours: u32,
        retention_bytes: Option<u64>,
        media_type: Option<String>,
        /// The principal that created it (`anonymous` with auth off; `config` for a stream a
        /// configured source needs).
        by: String,
    },
    #[serde(rename_all = "camelCase")]
    StreamUpdated { retention_hours: u32, retention_bytes: Option<u64>, version: i64, by: String },
    #[serde(rename_all = "camelCase")]
    StreamDeleted { by: String },
    /// A request refused by authentication or authorization (`crate::auth`); `stream` is the
    /// stream it named, or empty.
    #[serde(rename_all = "camelCase")]
    AccessDenied {
        /// `http`, `kinesis`, `rtsp`.
        surface: &'static str,
        /// `missing`, `unknown_principal`, `bad_secret`, `bad_signature`, `not_granted`,
        /// `source_not_allowed`, `throttled`, `malformed`.
        reason: &'static str,
        principal: String,
        action: Option<&'static str>,
        remote_addr: Option<String>,
    },
    /// A user or access key created, rotated or deleted through the admin API.
    #[serde(rename_all = "camelCase")]
    PrincipalChanged {
        /// `created`, `updated`, `rotated`, `deleted`.
        change: &'static str,
        kind: &'static str,
        name: String,
        by: String,
    },
    #[serde(rename_all = "camelCase")]
    ProducerConnected { protocol: &'static str, remote_addr: Option<String> },
    #[serde(rename_all = "camelCase")]
    ProducerDisconnected { protocol: &'static str, reason: String, fragments: u64 },
    #[serde(rename_all = "camelCase")]
    FragmentPersisted {
        fragment_number: String,
        producer_timestamp: Timestamp,
        server_timestamp: Timestamp,
        size_bytes: u32,
        duration_ms: f64,
        keyframe: bool,
    },
    #[serde(rename_all = "camelCase")]
    IngestError { code: u32, name: &'static str, message: String },
    #[serde(rename_all = "camelCase")]
    RetentionDeleted {
        first_fragment_number: String,
        last_fragment_number: String,
        fragments: u64,
        bytes: u64,
        first_producer_timestamp: Timestamp,
        last_producer_timestamp: Timestamp,
        /// `retention` (the stream's age or size limit), `free_disk_floor`, or
        /// `free_disk_floor_not_uploaded` (the object tier had not uploaded it yet).
        reason: &'static str,
    },
    /// A fragment a producer tagged for notice (KVS's `AWS_KINESISVIDEO_NOTIFICATION`) is on
    /// stable storage, and the stream's notification configuration is enabled (`crate::notify`).
    #[serde(rename_all = "camelCase")]
    FragmentNotification {
        fragment_number: String,
        producer_timestamp: Timestamp,
        server_timestamp: Timestamp,
        /// `PERSISTED`.
        notification_type: &'static str,
        /// The pairs nested in the notification tag.
        payload: std::collections::BTreeMap<String, String>,
        /// The configured destination URI (an `http(s)://` one is also sent the message).
        destination: String,
    },
    /// Image generation (`crate::imagegen`) made an image for a sampling instant.
    #[serde(rename_all = "camelCase")]
    ImageGenerated {
        /// The sampling instant (a multiple of `intervalMs` on the configured clock).
        instant: Timestamp,
        /// `producer` or `server`: the clock `instant` is on.
        timestamps: crate::clock::TimestampKind,
        producer_timestamp: Timestamp,
        server_timestamp: Timestamp,
        fragment_number: String,
        format: &'static str,
        width: u32,
        height: u32,
        size_bytes: u64,
        /// `directory` or `webhook`.
        destination: &'static str,
        /// The file written (directory destination), relative to the stream's directory.
        #[serde(skip_serializing_if = "Option::is_none")]
        file: Option<String>,
    },
}

impl EventDetails {
    pub fn kind(&self) -> &'static str {
        match self {
            EventDetails::StreamCreated { .. } => "StreamCreated",
            EventDetails::StreamUpdated { .. } => "StreamUpdated",
            EventDetails::StreamDeleted { .. } => "StreamDeleted",
            EventDetails::ProducerConnected { .. } => "ProducerConnected",
            EventDetails::ProducerDisconnected { .. } => "ProducerDisconnected",
            EventDetails::FragmentPersisted { .. } => "FragmentPersisted",
            EventDetails::IngestError { .. } => "IngestError",
            EventDetails::RetentionDeleted { .. } => "RetentionDeleted",
            EventDetails::ImageGenerated { .. } => "ImageGenerated",
            EventDetails::FragmentNotification { .. } => "FragmentNotification",
            EventDetails::AccessDenied { .. } => "AccessDenied",
            EventDetails::PrincipalChanged { .. } => "PrincipalChanged",
        }
    }
}

/// The partition key of events that name no stream (`PrincipalChanged`, a refusal that named
/// none): not a valid stream name, so it never shares a stream's ordering.
pub const SERVER_PARTITION_KEY: &str = "(server)";

impl Event {
    /// The record's partition key: the stream's name, so each stream's events stay in order.
    pub fn partition_key(&self) -> &str {
        if self.stream.is_empty() { SERVER_PARTITION_KEY } else { &self.stream }
    }

    pub fn new(stream: &str, timestamp: Timestamp, details: EventDetails) -> Self {
        Event {
            kind: details.kind(),
            version: SCHEMA_VERSION,
            stream: stream.to_owned(),
            timestamp,
            details,
        }
    }
}

/// Where the video layer reports events. Implementations must not block or fail the caller:
/// an event never slows or breaks ingest.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Discards events (before the event stream is wired, and in unit tests).
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: Event) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_type_version_stream_and_details() {
        let e = Event::new(
            "cam1",
            Timestamp::from_millis(1_000),
            EventDetails::FragmentPersisted {
                fragment_number: "7".into(),
                producer_timestamp: Timestamp::from_millis(500),
                server_timestamp: Timestamp::from_millis(900),
                size_bytes: 1234,
                duration_ms: 1000.0,
                keyframe: true,
            },
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "FragmentPersisted");
        assert_eq!(v["version"], 1);
        assert_eq!(v["stream"], "cam1");
        assert_eq!(v["timestamp"], "1970-01-01T00:00:01.000Z");
        assert_eq!(v["details"]["fragmentNumber"], "7");
        assert_eq!(v["details"]["sizeBytes"], 1234);
        assert_eq!(v["details"]["keyframe"], true);
        let d = serde_json::to_value(Event::new(
            "x",
            Timestamp::from_millis(0),
            EventDetails::StreamDeleted { by: "ops".into() },
        ))
        .unwrap();
        assert_eq!(d["details"], serde_json::json!({ "by": "ops" }));
    }
}

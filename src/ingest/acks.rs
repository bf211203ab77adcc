//! Acknowledgements sent back to a producer while it pushes, as in Kinesis Video Streams
//! PutMedia: one JSON object per line (`application/x-ndjson`).
//!
//! The queue never blocks ingest. A producer that does not read its acks (ffmpeg, for one, only
//! reads the response at the end) makes the queue grow; past `ingest.ack_queue` entries the
//! informational acks (BUFFERING, RECEIVED, IDLE) are dropped and counted, while PERSISTED and
//! ERROR are always kept (one small line per fragment).
//!
//! With `hold` (the producer asked for `acks=end`), nothing is sent until the session ends: the
//! receiver only yields once every sender is gone, and IDLE keep-alives are not queued at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::video::writer::IngestError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    Buffering,
    Received,
    Persisted,
    Error,
    Idle,
}

/// One acknowledgement line.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ack {
    pub event_type: EventType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment_timecode: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment_number: Option<String>,
    /// Unique id of this error occurrence (ERROR only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_id: Option<u64>,
    /// Kinesis error code, e.g. 4006 (ERROR only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u32>,
    /// Kinesis error name, e.g. INVALID_MKV_DATA (ERROR only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_name: Option<&'static str>,
    /// What was wrong, with the byte offset or fragment concerned (ERROR only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Ack {
    pub fn new(event_type: EventType) -> Self {
        Ack {
            event_type,
            fragment_timecode: None,
            fragment_number: None,
            error_id: None,
            error_code: None,
            error_name: None,
            message: None,
        }
    }

    pub fn fragment(event_type: EventType, timecode_ms: i64, number: u64) -> Self {
        Ack {
            fragment_timecode: Some(timecode_ms),
            fragment_number: Some(number.to_string()),
            ..Ack::new(event_type)
        }
    }

    pub fn error(e: &IngestError) -> Self {
        static NEXT_ERROR_ID: AtomicU64 = AtomicU64::new(1);
        Ack {
            error_id: Some(NEXT_ERROR_ID.fetch_add(1, Ordering::Relaxed)),
            error_code: Some(e.code.code()),
            error_name: Some(e.code.name()),
            message: Some(e.message.clone()),
            ..Ack::new(EventType::Error)
        }
    }

    fn essential(&self) -> bool {
        matches!(self.event_type, EventType::Persisted | EventType::Error)
    }

    fn to_line(&self) -> Bytes {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

/// The sending side of a producer's ack stream. Cloned into the session's tasks; the response
/// ends when every clone is dropped.
#[derive(Clone)]
pub struct AckSender {
    /// Unbounded so that sending never waits; `queued` bounds what is optional.
    tx: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
    limit: usize,
    hold: bool,
    metrics: Arc<Metrics>,
}

pub struct AckReceiver {
    rx: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
    /// Held acks are released once the senders are gone (the session is over).
    hold: bool,
    held: std::collections::VecDeque<Bytes>,
    /// Every sender is gone: `held` has all there will be.
    drained: bool,
}

pub fn channel(limit: usize, hold: bool, metrics: Arc<Metrics>) -> (AckSender, AckReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        AckSender { tx, queued: queued.clone(), limit, hold, metrics },
        AckReceiver { rx, queued, hold, held: Default::default(), drained: false },
    )
}

impl AckSender {
    pub fn send(&self, ack: Ack) {
        if self.hold && ack.event_type == EventType::Idle {
            return;
        }
        if !ack.essential() && self.queued.load(Ordering::Relaxed) >= self.limit {
            self.metrics.acks_dropped.inc();
            return;
        }
        if self.tx.send(ack.to_line()).is_ok() {
            self.queued.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl AckReceiver {
    pub async fn recv(&mut self) -> Option<Bytes> {
        // Cancel-safe: each line moves into `self` as soon as it is received.
        let line = if self.hold {
            while !self.drained {
                match self.rx.recv().await {
                    Some(line) => self.held.push_back(line),
                    None => self.drained = true,
                }
            }
            self.held.pop_front()?
        } else {
            self.rx.recv().await?
        };
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::writer::IngestErrorCode;

    #[test]
    fn lines_look_like_kinesis_acks() {
        let a = Ack::fragment(EventType::Persisted, 2000, 7);
        assert_eq!(
            std::str::from_utf8(&a.to_line()).unwrap(),
            "{\"EventType\":\"PERSISTED\",\"FragmentTimecode\":2000,\"FragmentNumber\":\"7\"}\n"
        );
        let e = Ack::error(&IngestError::new(IngestErrorCode::InvalidMedia, "bad box at byte 9"));
        let v: serde_json::Value = serde_json::from_slice(&e.to_line()).unwrap();
        assert_eq!(v["EventType"], "ERROR");
        assert_eq!(v["ErrorCode"], 4006);
        assert_eq!(v["ErrorName"], "INVALID_MKV_DATA");
    }

    #[tokio::test]
    async fn optional_acks_are_dropped_when_the_reader_lags_but_essential_ones_are_kept() {
        let (tx, mut rx) = channel(2, false, Arc::new(Metrics::new()));
        for _ in 0..5 {
            tx.send(Ack::new(EventType::Idle));
        }
        tx.send(Ack::fragment(EventType::Persisted, 0, 1));
        drop(tx);
        let mut n = 0;
        while rx.recv().await.is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[tokio::test]
    async fn held_acks_come_only_after_the_session_ends() {
        let (tx, mut rx) = channel(100, true, Arc::new(Metrics::new()));
        tx.send(Ack::fragment(EventType::Received, 0, 0));
        tx.send(Ack::new(EventType::Idle));
        let early = tokio::time::timeout(std::time::Duration::from_millis(50), rx.recv()).await;
        assert!(early.is_err(), "nothing is released while the session runs");
        tx.send(Ack::fragment(EventType::Persisted, 0, 0));
        drop(tx);
        let mut kinds = Vec::new();
        while let Some(line) = rx.recv().await {
            kinds.push(String::from_utf8(line.to_vec()).unwrap());
        }
        assert_eq!(kinds.len(), 2, "IDLE is not held: {kinds:?}");
    }
}

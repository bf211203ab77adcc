//! The production event sink: a bounded queue drained by one task that writes events into a data
//! stream. `emit` never waits: when the queue is full the event is dropped and counted
//! (`sluice_events_dropped_total`), because an event must never slow or fail ingest. One writer
//! task keeps each video stream's events in the order they were emitted.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Event, EventDetails, EventSink, NoEvents};
use crate::clock::SharedClock;
use crate::metrics::{DeniedLabel, Metrics};

/// Where the writer task puts events: one record per event, partition key = video stream name.
/// Implemented over the data-stream core in `app`.
pub trait RecordWriter: Send + Sync + 'static {
    /// Appends the records in order and resolves once they are durable.
    fn write<'a>(
        &'a self,
        records: Vec<(String, Bytes)>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

/// Writes events into a data stream through the data-stream core (server-internal appends: no
/// throughput limits), then waits until they are durable and visible to consumers.
pub struct DataStreamWriter {
    pub data: Arc<crate::datastream::DataStreams>,
    pub stream: crate::name::StreamName,
}

impl RecordWriter for DataStreamWriter {
    fn write<'a>(
        &'a self,
        records: Vec<(String, Bytes)>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let appended = self
                .data
                .append_all(&self.stream, records)
                .await
                .map_err(|e| format!("appending to {}: {}", self.stream, e.message()))?;
            // One group commit covers the batch: after the first wait the rest are durable.
            for a in &appended {
                self.data.wait_durable(a).await.map_err(|e| e.message().to_owned())?;
            }
            Ok(())
        })
    }
}

/// Events waiting to be written, at most.
const QUEUE: usize = 65_536;
/// Events written per batch, at most.
const BATCH: usize = 500;

pub struct QueueSink {
    /// Bounded so a stalled writer cannot grow memory without limit; `try_send` never waits.
    tx: mpsc::Sender<Event>,
    metrics: Arc<Metrics>,
}

impl QueueSink {
    /// Starts the writer task; it ends when `shutdown` is cancelled and the queue is drained.
    pub fn start(
        writer: Arc<dyn RecordWriter>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> (Arc<QueueSink>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_loop(rx, writer, metrics.clone(), shutdown));
        (Arc::new(QueueSink { tx, metrics }), task)
    }
}

impl EventSink for QueueSink {
    fn emit(&self, event: Event) {
        if self.tx.try_send(event).is_err() {
            self.metrics.events_dropped.inc();
        }
    }
}

async fn write_loop(
    mut rx: mpsc::Receiver<Event>,
    writer: Arc<dyn RecordWriter>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            _ = shutdown.cancelled() => {
                // Drain what is queued, then stop.
                rx.close();
                rx.recv_many(&mut batch, QUEUE).await
            }
        };
        if n == 0 {
            return;
        }
        let records: Vec<(String, Bytes)> = batch
            .drain(..)
            .filter_map(|e| {
                let json = serde_json::to_vec(&e).ok()?;
                Some((e.partition_key().to_owned(), Bytes::from(json)))
            })
            .collect();
        let count = records.len() as u64;
        match writer.write(records).await {
            Ok(()) => {
                metrics.events_written.inc_by(count);
            }
            Err(e) => {
                metrics.events_dropped.inc_by(count);
                tracing::warn!(error = %e, events = count, "could not write events");
            }
        }
    }
}

/// The video layer's handle on the current sink, and the clock that stamps events. Starts with
/// [`NoEvents`]; `app` installs the real sink once the event stream exists.
pub struct Emitter {
    /// std `RwLock`: read on every event, written once at start-up; never held across `.await`.
    sink: RwLock<Arc<dyn EventSink>>,
    clock: SharedClock,
}

impl Emitter {
    pub fn new(clock: SharedClock) -> Self {
        Emitter { sink: RwLock::new(Arc::new(NoEvents)), clock }
    }

    pub fn set_sink(&self, sink: Arc<dyn EventSink>) {
        *self.sink.write().unwrap_or_else(|p| p.into_inner()) = sink;
    }

    pub fn emit(&self, stream: &str, details: EventDetails) {
        let event = Event::new(stream, self.clock.now(), details);
        self.sink.read().unwrap_or_else(|p| p.into_inner()).emit(event);
    }

    /// Records a request refused by authentication or authorization, on any surface: the
    /// `sluice_auth_denied_total{surface,reason}` counter and an `AccessDenied` event.
    pub fn denied(&self, metrics: &Metrics, d: Denial<'_>) {
        metrics
            .auth_denied
            .get_or_create(&DeniedLabel { surface: d.surface.into(), reason: d.reason.into() })
            .inc();
        self.emit(
            d.stream,
            EventDetails::AccessDenied {
                surface: d.surface,
                reason: d.reason,
                principal: if d.principal.is_empty() {
                    "anonymous".into()
                } else {
                    d.principal.to_owned()
                },
                action: d.action,
                remote_addr: d.remote.map(|a| a.to_string()),
            },
        );
    }
}

/// A refused request, as [`Emitter::denied`] records it.
pub struct Denial<'a> {
    /// `http`, `kinesis`, `rtsp`.
    pub surface: &'static str,
    pub reason: &'static str,
    /// Who was recognized (empty: nobody).
    pub principal: &'a str,
    pub action: Option<&'static str>,
    /// The stream the request named, or empty.
    pub stream: &'a str,
    pub remote: Option<std::net::IpAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, Timestamp};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<(String, serde_json::Value)>>);

    impl RecordWriter for Collect {
        fn write<'a>(
            &'a self,
            records: Vec<(String, Bytes)>,
        ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
            Box::pin(async move {
                let mut v = self.0.lock().unwrap();
                for (k, d) in records {
                    v.push((k, serde_json::from_slice(&d).unwrap()));
                }
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn events_reach_the_writer_in_order_and_drain_at_shutdown() {
        let writer = Arc::new(Collect::default());
        let metrics = Arc::new(Metrics::new());
        let shutdown = CancellationToken::new();
        let (sink, task) = QueueSink::start(writer.clone(), metrics.clone(), shutdown.clone());
        let emitter = Emitter::new(Arc::new(ManualClock::new(Timestamp::from_millis(5))));
        emitter.set_sink(sink);
        for i in 0..1000 {
            emitter.emit(
                if i % 2 == 0 { "a" } else { "b" },
                EventDetails::IngestError { code: i, name: "X", message: String::new() },
            );
        }
        shutdown.cancel();
        task.await.unwrap();
        let got = writer.0.lock().unwrap();
        assert_eq!(got.len(), 1000);
        let codes_a: Vec<u64> = got
            .iter()
            .filter(|(k, _)| k == "a")
            .map(|(_, v)| v["details"]["code"].as_u64().unwrap())
            .collect();
        assert!(codes_a.windows(2).all(|w| w[0] < w[1]), "per-stream order is kept");
        assert_eq!(got[0].1["type"], "IngestError");
        assert_eq!(got[0].1["timestamp"], "1970-01-01T00:00:00.005Z");
    }
}

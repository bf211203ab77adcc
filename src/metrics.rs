//! Prometheus metrics: one registry for the process, and the typed handles every layer reports
//! into. Served as text at `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabel {
    pub stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub stream: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

pub struct Metrics {
    registry: Registry,
    pub ingest_bytes: Family<StreamLabel, Counter>,
    pub ingest_fragments: Family<StreamLabel, Counter>,
    pub ingest_errors: Family<ErrorLabel, Counter>,
    pub active_producers: Gauge,
    pub acks_dropped: Counter,
    pub stored_bytes: Family<StreamLabel, Gauge>,
    pub stored_fragments: Family<StreamLabel, Gauge>,
    pub retention_deleted_fragments: Family<StreamLabel, Counter>,
    pub retention_deleted_bytes: Family<StreamLabel, Counter>,
    pub hls_requests: Family<KindLabel, Counter>,
    pub segment_cache_hits: Counter,
    pub segment_cache_misses: Counter,
    pub events_written: Counter,
    pub events_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sluice");
        let m = Metrics {
            ingest_bytes: Family::default(),
            ingest_fragments: Family::default(),
            ingest_errors: Family::default(),
            active_producers: Gauge::default(),
            acks_dropped: Counter::default(),
            stored_bytes: Family::default(),
            stored_fragments: Family::default(),
            retention_deleted_fragments: Family::default(),
            retention_deleted_bytes: Family::default(),
            hls_requests: Family::default(),
            segment_cache_hits: Counter::default(),
            segment_cache_misses: Counter::default(),
            events_written: Counter::default(),
            events_dropped: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "ingest_bytes",
            "Bytes of fragments accepted from producers",
            m.ingest_bytes.clone(),
        );
        registry.register(
            "ingest_fragments",
            "Fragments persisted from producers",
            m.ingest_fragments.clone(),
        );
        registry.register(
            "ingest_errors",
            "Ingest errors by Kinesis error code",
            m.ingest_errors.clone(),
        );
        registry.register(
            "active_producers",
            "Producers connected now",
            m.active_producers.clone(),
        );
        registry.register(
            "ingest_acks_dropped",
            "Non-essential acknowledgements dropped for producers that do not read them",
            m.acks_dropped.clone(),
        );
        registry.register("stored_bytes", "Bytes stored per stream", m.stored_bytes.clone());
        registry.register(
            "stored_fragments",
            "Fragments stored per stream",
            m.stored_fragments.clone(),
        );
        registry.register(
            "retention_deleted_fragments",
            "Fragments deleted by retention",
            m.retention_deleted_fragments.clone(),
        );
        registry.register(
            "retention_deleted_bytes",
            "Bytes deleted by retention",
            m.retention_deleted_bytes.clone(),
        );
        registry.register(
            "hls_requests",
            "HLS requests by kind (live, index, init, segment)",
            m.hls_requests.clone(),
        );
        registry.register(
            "hls_segment_cache_hits",
            "Segment requests served from memory",
            m.segment_cache_hits.clone(),
        );
        registry.register(
            "hls_segment_cache_misses",
            "Segment requests read from the log",
            m.segment_cache_misses.clone(),
        );
        registry.register(
            "events_written",
            "Lifecycle events written to the event data stream",
            m.events_written.clone(),
        );
        registry.register(
            "events_dropped",
            "Lifecycle events dropped (queue full or write failed); ingest is never slowed",
            m.events_dropped.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn stream(name: &str) -> StreamLabel {
        StreamLabel { stream: name.to_owned() }
    }

    pub fn ingest_error(&self, stream: &str, code: u32) {
        self.ingest_errors
            .get_or_create(&ErrorLabel { stream: stream.to_owned(), code: code.to_string() })
            .inc();
    }

    pub fn hls(&self, kind: &str) {
        self.hls_requests.get_or_create(&KindLabel { kind: kind.to_owned() }).inc();
    }

    /// Drops a deleted stream's series so `/metrics` does not grow without bound.
    pub fn forget_stream(&self, name: &str) {
        let l = Self::stream(name);
        self.ingest_bytes.remove(&l);
        self.ingest_fragments.remove(&l);
        self.stored_bytes.remove(&l);
        self.stored_fragments.remove(&l);
        self.retention_deleted_fragments.remove(&l);
        self.retention_deleted_bytes.remove(&l);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

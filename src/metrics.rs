//! Prometheus metrics: one registry for the process, and the typed handles every layer reports
//! into. Served as text at `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
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
pub struct DeniedLabel {
    pub surface: String,
    pub reason: String,
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
    /// Open HTTP connections.
    pub http_connections: Gauge,
    /// HTTP connections closed at accept, by the limit they were over (`total`, `per_ip`).
    pub http_connections_refused: Family<KindLabel, Counter>,
    /// Bytes available on the data directory's filesystem, measured each retention pass.
    pub disk_available_bytes: Gauge,
    /// The memory budget (`crate::memory`): its limit (0: none), bytes held by part, refusals.
    pub memory_limit: Gauge,
    pub memory_reserved: Family<KindLabel, Gauge>,
    pub memory_refused: Family<KindLabel, Counter>,
    /// Requests refused by authentication or authorization, by surface and reason.
    pub auth_denied: Family<DeniedLabel, Counter>,
    /// Video streams that could not be opened at start-up.
    pub streams_unavailable: Gauge,
    pub segment_cache_misses: Counter,
    /// Images rendered by `crate::frames`, failed images, and requests refused (queue full).
    pub frames_images: Counter,
    pub frames_image_errors: Counter,
    pub frames_busy: Counter,
    /// LL-HLS: seconds from a blocking request's wake by a persisted fragment to its response.
    pub hls_blocking_wake: Family<KindLabel, Histogram>,
    pub events_written: Counter,
    pub events_dropped: Counter,
    /// Image generation (`crate::imagegen`), per stream.
    pub imagegen: ImageGenMetrics,
    /// RTSP pull sources and WHIP sessions (`crate::ingest::pull`, `crate::ingest::whip`).
    pub sources: SourceMetrics,
    /// Fragment notifications (`crate::notify`), per stream.
    pub notifications: NotificationMetrics,
    /// Delivery streams (`crate::firehose`), per delivery stream.
    pub firehose: FirehoseMetrics,
    /// The object tier (`crate::tiering`).
    pub tier: TierMetrics,
    /// Fragments the free-disk floor deleted before they were uploaded to the tier's bucket.
    pub tier_deleted_not_uploaded: Counter,
}

/// The object tier's counters (`[tiering]`).
#[derive(Default)]
pub struct TierMetrics {
    pub uploaded_segments: Counter,
    pub uploaded_bytes: Counter,
    pub evicted_segments: Counter,
    pub evicted_bytes: Counter,
    /// Passes in which an upload failed (each segment is tried again on the next pass).
    pub failures: Counter,
    /// Sealed segments not uploaded yet, and how old the oldest one's newest record is.
    pub pending_segments: Gauge,
    pub oldest_pending_seconds: Gauge,
}

impl FirehoseMetrics {
    /// Drops a deleted delivery stream's series.
    pub fn forget(&self, name: &str) {
        let l = Metrics::stream(name);
        for f in [
            &self.records,
            &self.bytes,
            &self.objects,
            &self.failures,
            &self.expired,
            &self.failed_records,
        ] {
            f.remove(&l);
        }
        self.buffered.remove(&l);
    }
}

/// Delivery streams' counters, labelled by delivery stream (`crate::firehose`).
#[derive(Default)]
pub struct FirehoseMetrics {
    /// Records in acknowledged objects.
    pub records: Family<StreamLabel, Counter>,
    /// Record bytes (before compression) in acknowledged objects.
    pub bytes: Family<StreamLabel, Counter>,
    pub objects: Family<StreamLabel, Counter>,
    /// Failed object writes (each retried) and source reads.
    pub failures: Family<StreamLabel, Counter>,
    /// Records the source's retention deleted before they were delivered.
    pub expired: Family<StreamLabel, Counter>,
    /// Records written under the error prefix (processing, partitioning or conversion failed).
    pub failed_records: Family<StreamLabel, Counter>,
    /// Records read from the source and not yet in an acknowledged object.
    pub buffered: Family<StreamLabel, Gauge>,
}

/// Fragment notifications' counters, per stream (`crate::notify`).
#[derive(Default)]
pub struct NotificationMetrics {
    /// Tagged fragments notified (an event written).
    pub notified: Family<StreamLabel, Counter>,
    /// Webhook messages accepted.
    pub delivered: Family<StreamLabel, Counter>,
    pub webhook_failures: Family<StreamLabel, Counter>,
    /// Webhook messages given up (queue full or attempts exhausted).
    pub dropped: Family<StreamLabel, Counter>,
}

impl NotificationMetrics {
    pub fn all(&self) -> [&Family<StreamLabel, Counter>; 4] {
        [&self.notified, &self.delivered, &self.webhook_failures, &self.dropped]
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceStateLabel {
    pub stream: String,
    pub state: String,
}

/// Pulled sources' state and WHIP sessions.
#[derive(Default)]
pub struct SourceMetrics {
    /// 1 for the state each pulled source is in (connecting, streaming, backoff), 0 for the others.
    pub state: Family<SourceStateLabel, Gauge>,
    /// Reconnection attempts of pulled sources after a failure.
    pub reconnects: Family<StreamLabel, Counter>,
    /// WHIP sessions open now.
    pub whip_active: Gauge,
    /// WHIP sessions accepted (201).
    pub whip_started: Counter,
    /// WHIP offers refused, by reason (conflict, bad_sdp, unsupported_codec, unsupported_media_type, limit, failed).
    pub whip_rejected: Family<KindLabel, Counter>,
}

/// Continuous image generation's counters, per stream (`crate::imagegen`).
#[derive(Default)]
pub struct ImageGenMetrics {
    pub generated: Family<StreamLabel, Counter>,
    pub delivered: Family<StreamLabel, Counter>,
    pub webhook_failures: Family<StreamLabel, Counter>,
    pub webhook_retries: Family<StreamLabel, Counter>,
    pub dropped: Family<StreamLabel, Counter>,
    pub skipped: Family<StreamLabel, Counter>,
    pub errors: Family<StreamLabel, Counter>,
}

impl ImageGenMetrics {
    /// Every per-stream counter of the group.
    pub fn all(&self) -> [&Family<StreamLabel, Counter>; 7] {
        [
            &self.generated,
            &self.delivered,
            &self.webhook_failures,
            &self.webhook_retries,
            &self.dropped,
            &self.skipped,
            &self.errors,
        ]
    }
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
            http_connections: Gauge::default(),
            http_connections_refused: Family::default(),
            disk_available_bytes: Gauge::default(),
            memory_limit: Gauge::default(),
            memory_reserved: Family::default(),
            memory_refused: Family::default(),
            auth_denied: Family::default(),
            streams_unavailable: Gauge::default(),
            segment_cache_misses: Counter::default(),
            frames_images: Counter::default(),
            frames_image_errors: Counter::default(),
            frames_busy: Counter::default(),
            hls_blocking_wake: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_01, 1.5, 30))
            }),
            events_written: Counter::default(),
            events_dropped: Counter::default(),
            imagegen: ImageGenMetrics::default(),
            sources: SourceMetrics::default(),
            notifications: NotificationMetrics::default(),
            firehose: FirehoseMetrics::default(),
            tier: TierMetrics::default(),
            tier_deleted_not_uploaded: Counter::default(),
            registry: Registry::default(),
        };
        let t = &m.tier;
        for (name, help, c) in [
            (
                "tier_uploaded_segments",
                "Object tier: sealed segments uploaded",
                &t.uploaded_segments,
            ),
            (
                "tier_uploaded_bytes",
                "Object tier: bytes of segment data uploaded",
                &t.uploaded_bytes,
            ),
            (
                "tier_evicted_segments",
                "Object tier: segments whose data left local disk",
                &t.evicted_segments,
            ),
            (
                "tier_evicted_bytes",
                "Object tier: bytes of segment data evicted from local disk",
                &t.evicted_bytes,
            ),
            (
                "tier_failures",
                "Object tier: passes in which an upload failed (retried next pass)",
                &t.failures,
            ),
        ] {
            registry.register(name, help, c.clone());
        }
        registry.register(
            "tier_deleted_not_uploaded_fragments",
            "Object tier: fragments the free-disk floor deleted before they were uploaded",
            m.tier_deleted_not_uploaded.clone(),
        );
        registry.register(
            "tier_pending_segments",
            "Object tier: sealed segments not uploaded yet",
            t.pending_segments.clone(),
        );
        registry.register(
            "tier_oldest_pending_seconds",
            "Object tier: age of the oldest not-yet-uploaded segment's newest record",
            t.oldest_pending_seconds.clone(),
        );
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
        registry.register("http_connections", "Open HTTP connections", m.http_connections.clone());
        registry.register(
            "http_connections_refused",
            "HTTP connections closed at accept, by the limit they were over",
            m.http_connections_refused.clone(),
        );
        registry.register(
            "disk_available_bytes",
            "Bytes available on the data directory's filesystem (each retention pass)",
            m.disk_available_bytes.clone(),
        );
        registry.register(
            "memory_limit_bytes",
            "The memory budget ([server] memory_limit); 0 when unset",
            m.memory_limit.clone(),
        );
        registry.register(
            "memory_reserved_bytes",
            "Bytes held against the memory budget, by kind (segment_cache, ingest, kinesis)",
            m.memory_reserved.clone(),
        );
        registry.register(
            "memory_refused",
            "Reservations refused because the memory budget was in use, by kind",
            m.memory_refused.clone(),
        );
        registry.register(
            "auth_denied",
            "Requests refused by authentication or authorization, by surface (http, kinesis, rtsp) and reason",
            m.auth_denied.clone(),
        );
        registry.register(
            "video_streams_unavailable",
            "Video streams that could not be opened at start-up (their data is kept)",
            m.streams_unavailable.clone(),
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
        registry.register("frames_images", "Images decoded and encoded", m.frames_images.clone());
        registry.register(
            "frames_image_errors",
            "Image requests per instant that failed (NO_MEDIA, MEDIA_ERROR, ...)",
            m.frames_image_errors.clone(),
        );
        registry.register(
            "frames_busy",
            "Frame requests refused with 503 because the decode queue was full",
            m.frames_busy.clone(),
        );
        registry.register(
            "hls_blocking_wake_seconds",
            "LL-HLS blocking requests (kind playlist or part): seconds from the wake by a persisted \
             fragment to the response",
            m.hls_blocking_wake.clone(),
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
        let g = &m.imagegen;
        for (name, help, family) in [
            ("imagegen_generated", "Images generated by image generation", &g.generated),
            (
                "imagegen_delivered",
                "Generated images stored or accepted by the webhook",
                &g.delivered,
            ),
            ("imagegen_webhook_failures", "Webhook attempts that failed", &g.webhook_failures),
            ("imagegen_webhook_retries", "Webhook attempts that were retries", &g.webhook_retries),
            (
                "imagegen_dropped",
                "Generated images dropped (webhook queue full or attempts exhausted)",
                &g.dropped,
            ),
            (
                "imagegen_skipped",
                "Sampling instants skipped because generation fell too far behind",
                &g.skipped,
            ),
            (
                "imagegen_errors",
                "Sampling instants whose image could not be made or stored",
                &g.errors,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
        let n = &m.notifications;
        for (name, help, family) in [
            ("notifications", "Tagged fragments notified (KVS notifications)", &n.notified),
            (
                "notification_webhooks_delivered",
                "Notification messages accepted by the webhook",
                &n.delivered,
            ),
            (
                "notification_webhook_failures",
                "Notification webhook attempts that failed",
                &n.webhook_failures,
            ),
            (
                "notification_webhooks_dropped",
                "Notification messages given up (queue full or attempts exhausted)",
                &n.dropped,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
        let f = &m.firehose;
        for (name, help, family) in [
            ("firehose_records", "Delivery streams: records in acknowledged objects", &f.records),
            (
                "firehose_bytes",
                "Delivery streams: record bytes (before compression) in acknowledged objects",
                &f.bytes,
            ),
            ("firehose_objects", "Delivery streams: objects written", &f.objects),
            (
                "firehose_failures",
                "Delivery streams: failed object writes (retried) and source reads",
                &f.failures,
            ),
            (
                "firehose_expired_records",
                "Delivery streams: records the source's retention deleted before delivery",
                &f.expired,
            ),
            (
                "firehose_error_records",
                "Delivery streams: records written under the error prefix (processing, partitioning or format conversion failed)",
                &f.failed_records,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "firehose_buffered_records",
            "Delivery streams: records read and not yet in an acknowledged object",
            f.buffered.clone(),
        );
        registry.register(
            "source_state",
            "Pulled RTSP sources: 1 for the state each is in (connecting, streaming, backoff)",
            m.sources.state.clone(),
        );
        registry.register(
            "source_reconnects",
            "Pulled RTSP sources: reconnection attempts after a failure",
            m.sources.reconnects.clone(),
        );
        registry.register(
            "whip_sessions_active",
            "WHIP sessions open now",
            m.sources.whip_active.clone(),
        );
        registry.register(
            "whip_sessions",
            "WHIP sessions accepted",
            m.sources.whip_started.clone(),
        );
        registry.register(
            "whip_rejected",
            "WHIP offers refused, by reason",
            m.sources.whip_rejected.clone(),
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
        for f in self.imagegen.all().into_iter().chain(self.notifications.all()) {
            f.remove(&l);
        }
    }

    /// The state gauge of a pulled source.
    pub fn source_state(&self, stream: &str, state: &str) -> Gauge {
        self.sources
            .state
            .get_or_create(&SourceStateLabel { stream: stream.to_owned(), state: state.to_owned() })
            .clone()
    }

    /// Drops a removed source's series.
    pub fn forget_source(&self, stream: &str) {
        for state in ["connecting", "streaming", "backoff"] {
            self.sources
                .state
                .remove(&SourceStateLabel { stream: stream.to_owned(), state: state.to_owned() });
        }
        self.sources.reconnects.remove(&Self::stream(stream));
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

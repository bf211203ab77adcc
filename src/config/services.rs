//! The service sections: `[data_streams]`, `[events]`, `[frames]`, `[image_generation]`.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// The Kinesis-compatible data streams (`[data_streams]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataStreamsConfig {
    /// Region named in stream and consumer ARNs. Default `us-east-1`.
    pub region: String,
    /// 12-digit account id named in ARNs. Default `000000000000`.
    pub account_id: String,
    /// Shortest retention `DecreaseStreamRetentionPeriod` accepts, in hours (1–24). Default 24
    /// (Kinesis's minimum); lower it for tests.
    pub min_retention_hours: u32,
    /// Most open shards across all data streams (DescribeLimits `ShardLimit`). Default 500.
    pub shard_limit: u32,
    /// Most on-demand streams. Default 50.
    pub on_demand_stream_limit: u32,
    /// Shards of a stream created in ON_DEMAND mode (its write capacity at the start: 4 MiB/s
    /// and 4,000 records/s with the default per-shard limits). Default 4.
    pub on_demand_shard_count: u32,
    /// How often the on-demand scaler looks at each ON_DEMAND stream's load, in seconds; the
    /// busiest second of each window decides which shards split. Default 10.
    #[serde(deserialize_with = "super::units::secs")]
    pub on_demand_scale_secs: Duration,
    /// Most open shards the scaler (and warm throughput) gives one ON_DEMAND stream. Default
    /// 200 (200 MiB/s of writes with the default per-shard limits).
    pub on_demand_max_shards: u32,
    /// Enforce the per-shard throughput limits below (provisioned streams for writes, every
    /// stream for reads). Default true.
    pub throughput_limits: bool,
    /// Per-shard write limit, in bytes of data + partition key per second. Default 1048576.
    pub write_bytes_per_sec: u64,
    /// Per-shard write limit, in records per second. Default 1000.
    pub write_records_per_sec: u64,
    /// Per-shard read limit, in bytes per second. Default 2097152.
    pub read_bytes_per_sec: u64,
    /// Per-shard read limit, in GetRecords calls per second. Default 5.
    pub read_calls_per_sec: u64,
    /// How long a SubscribeToShard subscription lasts before the consumer must call again, in
    /// seconds. Default 300 (AWS's 5 minutes).
    #[serde(deserialize_with = "super::units::secs")]
    pub subscription_secs: Duration,
    /// How long a new stream stays `CREATING` (reads and writes are `ResourceNotFoundException`
    /// meanwhile), in milliseconds. Default 0: `ACTIVE` at once.
    #[serde(deserialize_with = "super::units::millis")]
    pub create_stream_ms: Duration,
    /// How long a reshard, mode, encryption or record-size change keeps the stream `UPDATING`
    /// (another such change is `ResourceInUseException` meanwhile), in milliseconds. Default 0.
    #[serde(deserialize_with = "super::units::millis")]
    pub update_stream_ms: Duration,
    /// How long a deleted stream stays `DELETING` (still described, read and written; changes
    /// and a new stream of its name are `ResourceInUseException`), in milliseconds. Default 0:
    /// gone at once.
    #[serde(deserialize_with = "super::units::millis")]
    pub delete_stream_ms: Duration,
}

impl Default for DataStreamsConfig {
    fn default() -> Self {
        DataStreamsConfig {
            region: String::from("us-east-1"),
            account_id: String::from("000000000000"),
            min_retention_hours: 24,
            shard_limit: 500,
            on_demand_stream_limit: 50,
            on_demand_shard_count: 4,
            on_demand_scale_secs: Duration::from_secs(10),
            on_demand_max_shards: 200,
            throughput_limits: true,
            write_bytes_per_sec: 1024 * 1024,
            write_records_per_sec: 1000,
            read_bytes_per_sec: 2 * 1024 * 1024,
            read_calls_per_sec: 5,
            subscription_secs: Duration::from_secs(300),
            create_stream_ms: Duration::ZERO,
            update_stream_ms: Duration::ZERO,
            delete_stream_ms: Duration::ZERO,
        }
    }
}

/// Where events go (`[events]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Data stream for Sluice's lifecycle events, created at start-up if missing. Default
    /// `sluice-events`.
    pub events_stream: String,
    /// Its shard count when created. Default 1.
    pub events_shards: u32,
    /// Data stream for producers' metadata (`POST /v1/streams/{name}/events`), created at
    /// start-up if missing. Default `sluice-metadata`.
    pub metadata_stream: String,
    /// Its shard count when created. Default 1.
    pub metadata_shards: u32,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            events_stream: String::from("sluice-events"),
            events_shards: 1,
            metadata_stream: String::from("sluice-metadata"),
            metadata_shards: 1,
        }
    }
}

/// The frame decode service (`[frames]`): exact frames and image sets (`crate::frames`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FramesConfig {
    /// Decode worker threads; 0 means one per CPU core. Default 0.
    pub workers: usize,
    /// Decode jobs that may wait for a worker; when the queue is full, frame requests get 503
    /// with Retry-After. Default 32.
    pub queue_depth: usize,
    /// Build an H.264 decoder in this many workers at start-up, so the first request does not pay
    /// the first-pipeline cost (0 = none, larger than `workers` = all). Default 2.
    pub warm_decoders: usize,
    /// JPEG quality used when a request gives none (1–100). Default 85.
    pub default_quality: u8,
    /// Most images a JSON image-set page holds when the request gives no `maxResults`. Default 25.
    pub default_page_size: usize,
}

impl Default for FramesConfig {
    fn default() -> Self {
        FramesConfig {
            workers: 0,
            queue_depth: 32,
            warm_decoders: 2,
            default_quality: 85,
            default_page_size: 25,
        }
    }
}

/// The object tier (`[tiering]`, `crate::tiering` and `crate::log::tier`): sealed log segments
/// of video and data streams uploaded to a bucket (through `[object_store]`), their `.log` files
/// then evicted from local disk and read back by range.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TieringConfig {
    /// Default false: everything stays on local disk.
    pub enabled: bool,
    /// The bucket. Default `sluice-tier`.
    pub bucket: String,
    /// Prepended to every key. Default none.
    pub prefix: String,
    /// Upload a sealed segment once its newest record is this old. Default 60.
    #[serde(deserialize_with = "super::units::secs")]
    pub upload_after_secs: Duration,
    /// Evict an uploaded segment's data from local disk once its newest record is this old
    /// (fractions allowed; 0: as soon as it is uploaded). Default 24.
    pub local_retention_hours: Option<f64>,
    /// Evict uploaded segments, oldest first, while a log keeps more than this on local disk.
    /// Default none.
    pub local_max_bytes: Option<u64>,
    /// How often the tier looks for segments to upload and evict. Default 10.
    #[serde(deserialize_with = "super::units::secs")]
    pub interval_secs: Duration,
    /// Sealed segments uploaded at once (per log). Default 2.
    pub upload_concurrency: usize,
    /// After each upload, check that the objects have the files' sizes (one HEAD each) before
    /// the segment may leave local disk. Default true.
    pub verify: bool,
    /// Segments read from the bucket are kept whole in `<data_dir>/tier-cache`, at most this
    /// many bytes (least recently used out first). 0: no cache. Default 1 GiB.
    pub read_cache_bytes: u64,
}

impl Default for TieringConfig {
    fn default() -> Self {
        TieringConfig {
            enabled: false,
            bucket: "sluice-tier".into(),
            prefix: String::new(),
            upload_after_secs: Duration::from_secs(60),
            local_retention_hours: Some(24.0),
            local_max_bytes: None,
            interval_secs: Duration::from_secs(10),
            read_cache_bytes: 1 << 30,
            verify: true,
            upload_concurrency: 2,
        }
    }
}

/// Where buckets are (`[object_store]`, `crate::buckets`): delivery streams write their
/// objects there. Without an S3 endpoint (here or in `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`)
/// and without `s3 = true`, a bucket is a directory under `local_root`: no external service.
/// Credentials come from the standard AWS variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`), never from this file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectStoreConfig {
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`). Default: none (directories), or the
    /// standard AWS variables' endpoint.
    pub endpoint: Option<String>,
    /// Use S3 even without an endpoint (Amazon S3 itself). Default false.
    pub s3: bool,
    /// The S3 region. Default: `AWS_REGION`, else us-east-1.
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), as most S3-compatible servers want; false
    /// for virtual-hosted style. Default true.
    pub path_style: bool,
    /// The directory holding one directory per bucket. Default `<data_dir>/buckets`.
    pub local_root: Option<std::path::PathBuf>,
}

impl Default for ObjectStoreConfig {
    fn default() -> Self {
        ObjectStoreConfig {
            endpoint: None,
            s3: false,
            region: None,
            path_style: true,
            local_root: None,
        }
    }
}

/// Continuous image generation per stream (`[image_generation]`, `crate::imagegen`): bounds on
/// what a stream's `imageGeneration` may ask for, and how webhook deliveries are queued and retried.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageGenerationConfig {
    /// Shortest `intervalMs` a stream may configure, in milliseconds. Default 100.
    #[serde(deserialize_with = "super::units::millis")]
    pub min_interval_ms: Duration,
    /// Longest `intervalMs` a stream may configure, in milliseconds. Default 86400000 (a day).
    #[serde(deserialize_with = "super::units::millis")]
    pub max_interval_ms: Duration,
    /// Images waiting for a stream's webhook, at most; beyond this new images are dropped and
    /// counted (`sluice_imagegen_dropped_total`), never slowing generation or ingest. Default 64.
    pub webhook_queue: usize,
    /// Webhook requests in flight across all streams, at most. Default 8.
    pub max_concurrent_webhooks: usize,
    /// Time limit of one webhook request (connect, send, response), in milliseconds. Default 10000.
    #[serde(deserialize_with = "super::units::millis")]
    pub webhook_timeout_ms: Duration,
    /// Attempts per image (the first try included) before it is dropped. Default 5.
    pub webhook_max_attempts: u32,
    /// Backoff before the first retry, in milliseconds; it doubles per retry, with full jitter.
    /// Default 200.
    #[serde(deserialize_with = "super::units::millis")]
    pub webhook_initial_backoff_ms: Duration,
    /// Longest backoff between retries, in milliseconds. Default 10000.
    #[serde(deserialize_with = "super::units::millis")]
    pub webhook_max_backoff_ms: Duration,
    /// How far generation may fall behind, in milliseconds: when the media of the next instant
    /// arrived longer ago than this (wall time, so a fast upload of recorded video is not behind),
    /// generation skips ahead to the live edge (skipped instants are counted in
    /// `sluice_imagegen_skipped_total`). Default 60000.
    #[serde(deserialize_with = "super::units::millis")]
    pub max_lag_ms: Duration,
}

impl Default for ImageGenerationConfig {
    fn default() -> Self {
        ImageGenerationConfig {
            min_interval_ms: Duration::from_millis(100),
            max_interval_ms: Duration::from_millis(86_400_000),
            webhook_queue: 64,
            max_concurrent_webhooks: 8,
            webhook_timeout_ms: Duration::from_millis(10_000),
            webhook_max_attempts: 5,
            webhook_initial_backoff_ms: Duration::from_millis(200),
            webhook_max_backoff_ms: Duration::from_millis(10_000),
            max_lag_ms: Duration::from_millis(60_000),
        }
    }
}

impl ImageGenerationConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, message: &str| Err(ConfigError::Value { key, message: message.to_owned() });
        if self.min_interval_ms.is_zero() || self.min_interval_ms > self.max_interval_ms {
            return bad(
                "image_generation.min_interval_ms",
                "must be at least 1 and at most max_interval_ms",
            );
        }
        if self.webhook_queue == 0 {
            return bad("image_generation.webhook_queue", "must be at least 1");
        }
        if self.max_concurrent_webhooks == 0 {
            return bad("image_generation.max_concurrent_webhooks", "must be at least 1");
        }
        if self.webhook_timeout_ms.is_zero() {
            return bad("image_generation.webhook_timeout_ms", "must be at least 1");
        }
        if !(1..=100).contains(&self.webhook_max_attempts) {
            return bad("image_generation.webhook_max_attempts", "must be between 1 and 100");
        }
        if self.webhook_initial_backoff_ms > self.webhook_max_backoff_ms {
            return bad(
                "image_generation.webhook_initial_backoff_ms",
                "must be at most webhook_max_backoff_ms",
            );
        }
        Ok(())
    }
}

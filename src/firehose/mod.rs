//! Delivery streams, as Amazon Data Firehose has them: records put directly (kept first in an
//! internal data stream on the log engine, so a record is safe once PutRecord answers) or read
//! from a Sluice data stream, delivered in buffered, compressed objects to an S3-style bucket —
//! a directory under the data dir, or an S3-compatible store (`crate::buckets`).
//!
//! - `spec`: configurations from and to Firehose's JSON, prefixes and object names; `http_spec`:
//!   the HTTP endpoint destination's (pure).
//! - `process`: processors (decompression, de-aggregation, the transform contract, jq partition
//!   keys, delimiters); `convert`: JSON → Parquet; `encode`: compression (pure).
//! - `store`: the catalog table (configuration, version, tags, checkpoint).
//! - `deliver`: one task per stream: source → processing (`stage`) → objects per partition →
//!   checkpoint.
//!
//! Errors are `DsError`s: the Firehose API speaks the same JSON 1.1 as Kinesis, with the same
//! exception names.

pub mod convert;
pub mod deliver;
pub mod encode;
pub mod http;
pub mod http_spec;
pub mod process;
pub mod spec;
mod stage;
pub mod store;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use self::deliver::{Delivery, Progress};
use self::spec::{DeliveryConfig, Source};
use self::store::{Row, Store};
use crate::buckets::Buckets;
use crate::catalog::Catalog;
use crate::clock::SharedClock;
use crate::config::DataStreamsConfig;
use crate::datastream::validate::Violations;
use crate::datastream::{DataStreams, DsError, StreamSel};
use crate::metrics::Metrics;
use crate::name::StreamName;

/// Delivery streams per server, at most (Firehose's default quota per region).
pub const MAX_STREAMS: usize = 5000;
/// Firehose's id of a stream's one destination.
pub const DESTINATION_ID: &str = "destinationId-000000000001";

/// A running delivery stream.
struct Running {
    row: Row,
    config: watch::Sender<(u64, DeliveryConfig)>,
    progress: Arc<Progress>,
    stop: CancellationToken,
    abort: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub struct Firehose {
    store: Arc<Store>,
    data: Arc<DataStreams>,
    buckets: Arc<Buckets>,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    http: Arc<http::HttpSender>,
    account: DataStreamsConfig,
    streams: Mutex<BTreeMap<String, Running>>,
    /// Serialises changes (a tokio mutex: held across the blocking catalog work).
    admin: tokio::sync::Mutex<()>,
    /// Request ids the HTTP endpoint receiver (`crate::api::firehose_endpoint`) took lately, per
    /// data stream: a retried request is acknowledged without writing again.
    recent: Mutex<(std::collections::VecDeque<String>, std::collections::HashSet<String>)>,
}

/// Request ids remembered for the receiver's retries.
const RECENT_REQUESTS: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The internal data stream a `DirectPut` delivery stream keeps its records in.
pub fn direct_put_stream(name: &str) -> StreamName {
    // Delivery stream names are valid data stream names; the prefix keeps them apart.
    StreamName::new(format!("sluice-firehose-{name}")).expect("a valid data stream name")
}

fn not_found(name: &str, account: &str) -> DsError {
    DsError::ResourceNotFound(format!("Firehose {name} under account {account} not found."))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DsError> + Send + 'static,
) -> Result<T, DsError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DsError::Internal(format!("catalog task: {e}")))?
}

fn internal(e: crate::error::Error) -> DsError {
    DsError::Internal(e.to_string())
}

impl Firehose {
    pub fn open(
        catalog: Arc<Catalog>,
        data: Arc<DataStreams>,
        buckets: Arc<Buckets>,
        clock: SharedClock,
        metrics: Arc<Metrics>,
        http: http::HttpSender,
        account: &DataStreamsConfig,
    ) -> crate::error::Result<Arc<Firehose>> {
        Ok(Arc::new(Firehose {
            store: Arc::new(Store::open(catalog)?),
            data,
            buckets,
            clock,
            metrics,
            http: Arc::new(http),
            account: account.clone(),
            streams: Mutex::new(BTreeMap::new()),
            admin: tokio::sync::Mutex::new(()),
            recent: Mutex::new(Default::default()),
        }))
    }

    /// Starts delivery of every stored stream (at server start).
    pub fn start(&self) -> crate::error::Result<()> {
        for row in self.store.all()? {
            if row.config.source == Source::DirectPut {
                let _ = self.data.ensure_stream(&direct_put_stream(&row.name), 1);
            }
            self.spawn(row);
        }
        Ok(())
    }

    pub fn arn(&self, name: &str) -> String {
        format!(
            "arn:aws:firehose:{}:{}:deliverystream/{name}",
            self.account.region, self.account.account_id
        )
    }

    fn source_stream(&self, row: &Row) -> StreamName {
        match &row.config.source {
            Source::DirectPut => direct_put_stream(&row.name),
            Source::KinesisStream { stream, .. } => {
                StreamName::new(stream.clone()).unwrap_or_else(|_| direct_put_stream(&row.name))
            }
        }
    }

    fn spawn(&self, row: Row) {
        let (tx, rx) = watch::channel((row.version, row.config.clone()));
        let label = Metrics::stream(&row.name);
        let progress = Arc::new(Progress {
            series: Some((self.metrics.clone(), label)),
            ..Progress::default()
        });
        let (stop, abort) = (CancellationToken::new(), CancellationToken::new());
        let delivery = Delivery {
            name: row.name.clone(),
            created_ms: row.created_ms,
            source: self.source_stream(&row),
            config: rx,
            data: self.data.clone(),
            buckets: self.buckets.clone(),
            store: self.store.clone(),
            checkpoint: row.checkpoint.clone(),
            marks: row.marks.clone(),
            progress: progress.clone(),
            metrics: self.metrics.clone(),
            http: self.http.clone(),
            arn: self.arn(&row.name),
            clock: self.clock.clone(),
            stop: stop.clone(),
            abort: abort.clone(),
        };
        let task = tokio::spawn(delivery.run());
        let running = Running { row, config: tx, progress, stop, abort, task: Some(task) };
        lock(&self.streams).insert(running.row.name.clone(), running);
    }

    /// Flushes every stream's buffer and stops delivery (graceful shutdown), waiting at most
    /// `patience` for objects in flight.
    pub async fn stop(&self, patience: std::time::Duration) {
        let tasks: Vec<_> = lock(&self.streams)
            .values_mut()
            .filter_map(|r| {
                r.stop.cancel();
                r.task.take()
            })
            .collect();
        let _ = tokio::time::timeout(patience, futures_util::future::join_all(tasks)).await;
    }

    /// True if the HTTP endpoint receiver took `request_id` for `stream` lately.
    pub fn seen_request(&self, stream: &str, request_id: &str) -> bool {
        lock(&self.recent).1.contains(&format!("{stream}/{request_id}"))
    }

    /// Remembers a request the receiver took (the oldest of [`RECENT_REQUESTS`] is forgotten).
    pub fn remember_request(&self, stream: &str, request_id: &str) {
        let mut recent = lock(&self.recent);
        let key = format!("{stream}/{request_id}");
        if recent.1.insert(key.clone()) {
            recent.0.push_back(key);
        }
        while recent.0.len() > RECENT_REQUESTS {
            if let Some(old) = recent.0.pop_front() {
                recent.1.remove(&old);
            }
        }
    }

    /// CreateDeliveryStream.
    pub async fn create(
        &self,
        name: &str,
        config: DeliveryConfig,
        tags: BTreeMap<String, String>,
    ) -> Result<String, DsError> {
        let _admin = self.admin.lock().await;
        if lock(&self.streams).contains_key(name) {
            return Err(DsError::ResourceInUse(format!(
                "Firehose {name} under accountId {} already exists",
                self.account.account_id
            )));
        }
        if lock(&self.streams).len() >= MAX_STREAMS {
            return Err(DsError::LimitExceeded(format!(
                "You have already consumed your firehose quota of {MAX_STREAMS} hoses. Firehose names: {name}"
            )));
        }
        let now = self.clock.now().as_millis();
        let mut row = Row {
            name: name.to_owned(),
            created_ms: now,
            updated_ms: now,
            version: 1,
            config,
            tags,
            checkpoint: BTreeMap::new(),
            marks: BTreeMap::new(),
        };
        let source = self.source_stream(&row);
        let (data, store, r) = (self.data.clone(), self.store.clone(), row.clone());
        let direct = row.config.source == Source::DirectPut;
        row.checkpoint = blocking(move || {
            if direct {
                data.ensure_stream(&source, 1)?;
            }
            // Delivery starts where the source ends now (Firehose reads a Kinesis source from
            // LATEST); a DirectPut stream's internal stream is empty.
            let (_, shards, _) =
                data.describe_stream(StreamSel::name(source.as_str()), Some(10_000), None)?;
            let mut at = BTreeMap::new();
            for s in shards.iter().filter(|s| s.ending.is_none()) {
                at.insert(s.shard_id.0, data.shard_reader(&source, &s.shard_id)?.committed_end().0);
            }
            let mut r = r;
            r.checkpoint = at.clone();
            if !store.insert(&r).map_err(internal)? {
                return Err(DsError::ResourceInUse(format!("Firehose {} already exists", r.name)));
            }
            Ok(at)
        })
        .await?;
        tracing::info!(stream = name, source = row.config.source.type_name(), bucket = %row.config.destination.bucket, "delivery stream created");
        self.spawn(row);
        Ok(self.arn(name))
    }

    fn row(&self, name: &str) -> Result<(Row, Arc<Progress>), DsError> {
        let streams = lock(&self.streams);
        let r = streams.get(name).ok_or_else(|| not_found(name, &self.account.account_id))?;
        Ok((r.row.clone(), r.progress.clone()))
    }

    /// Every stream's name and source type, sorted.
    pub fn names(&self) -> Vec<(String, &'static str)> {
        lock(&self.streams)
            .values()
            .map(|r| (r.row.name.clone(), r.row.config.source.type_name()))
            .collect()
    }

    /// DescribeDeliveryStream's `DeliveryStreamDescription`.
    pub fn describe(&self, name: &str) -> Result<Value, DsError> {
        let (row, progress) = self.row(name)?;
        let (s3, extended) = spec::describe_s3(&row.config.destination);
        let secs = |ms: i64| ms as f64 / 1000.0;
        let mut d = json!({
            "DeliveryStreamName": row.name,
            "DeliveryStreamARN": self.arn(&row.name),
            "DeliveryStreamStatus": "ACTIVE",
            "DeliveryStreamEncryptionConfiguration": {
                "Status": if row.config.encryption.is_some() { "ENABLED" } else { "DISABLED" },
            },
            "DeliveryStreamType": row.config.source.type_name(),
            "VersionId": row.version.to_string(),
            "CreateTimestamp": secs(row.created_ms),
            "LastUpdateTimestamp": secs(row.updated_ms),
            "Destinations": [match &row.config.http {
                None => json!({
                    "DestinationId": DESTINATION_ID,
                    "S3DestinationDescription": s3,
                    "ExtendedS3DestinationDescription": extended,
                }),
                Some(h) => json!({
                    "DestinationId": DESTINATION_ID,
                    "HttpEndpointDestinationDescription": http_spec::describe_http(h, &row.config.destination),
                }),
            }],
            "HasMoreDestinations": false,
            "SluiceDelivery": {
                "DeliveredRecords": progress.records.load(Ordering::Relaxed),
                "DeliveredBytes": progress.bytes.load(Ordering::Relaxed),
                "DeliveredObjects": progress.objects.load(Ordering::Relaxed),
                "BufferedRecords": progress.buffered_records.load(Ordering::Relaxed),
                "Failures": progress.failures.load(Ordering::Relaxed),
                "LastError": progress.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            },
        });
        if let Some(kms) = &row.config.encryption {
            d["DeliveryStreamEncryptionConfiguration"]["KeyType"] = json!(kms);
        }
        if let Source::KinesisStream { arn, role_arn, .. } = &row.config.source {
            d["Source"] = json!({ "KinesisStreamSourceDescription": {
                "KinesisStreamARN": arn, "RoleARN": role_arn, "DeliveryStartTimestamp": secs(row.created_ms),
            }});
        }
        Ok(d)
    }

    /// DeleteDeliveryStream: delivery stops at once (what is not delivered is dropped, as in
    /// Firehose), the row and a DirectPut stream's internal data stream go.
    pub async fn delete(&self, name: &str) -> Result<(), DsError> {
        let _admin = self.admin.lock().await;
        let mut running = lock(&self.streams)
            .remove(name)
            .ok_or_else(|| not_found(name, &self.account.account_id))?;
        running.abort.cancel();
        if let Some(t) = running.task.take() {
            let _ = t.await;
        }
        self.metrics.firehose.forget(name);
        let (store, data, n) = (self.store.clone(), self.data.clone(), name.to_owned());
        let direct = running.row.config.source == Source::DirectPut;
        blocking(move || {
            store.delete(&n).map_err(internal)?;
            if direct {
                data.delete_system_stream(&direct_put_stream(&n))?;
            }
            Ok(())
        })
        .await?;
        tracing::info!(stream = name, "delivery stream deleted");
        Ok(())
    }

    /// PutRecord / PutRecordBatch: appended to the internal stream, answered once durable. Each
    /// record's `RecordId` (its sequence number there), or why it was not taken.
    pub async fn put(
        &self,
        name: &str,
        records: Vec<Bytes>,
    ) -> Result<Vec<Result<String, DsError>>, DsError> {
        let (row, _) = self.row(name)?;
        if row.config.source != Source::DirectPut {
            return Err(DsError::InvalidArgument(format!(
                "This operation is not permitted on KinesisStreamAsSource type Firehose {}.",
                self.arn(name)
            )));
        }
        let stream = direct_put_stream(name);
        let items = records.into_iter().map(|d| ("firehose".to_owned(), d)).collect();
        let written = self.data.append_all(&stream, items).await?;
        if let Some(last) = written.last() {
            self.data.wait_durable(last).await?;
        }
        Ok(written.into_iter().map(|a| Ok(a.sequence_number.to_string())).collect())
    }

    /// Applies `change` to a stream's row (under the admin lock), stores it, and hands the new
    /// configuration to the delivery task.
    async fn change(
        &self,
        name: &str,
        change: impl FnOnce(&mut Row) -> Result<bool, DsError> + Send,
    ) -> Result<(), DsError> {
        let _admin = self.admin.lock().await;
        let (mut row, _) = self.row(name)?;
        let bumps = change(&mut row)?;
        if bumps {
            row.version += 1;
        }
        row.updated_ms = self.clock.now().as_millis();
        let (store, r) = (self.store.clone(), row.clone());
        blocking(move || store.update(&r).map_err(internal)).await?;
        let mut streams = lock(&self.streams);
        if let Some(running) = streams.get_mut(name) {
            running.config.send_replace((row.version, row.config.clone()));
            running.row = row;
        }
        Ok(())
    }

    /// UpdateDestination with optimistic concurrency on `VersionId`.
    pub async fn update_destination(
        &self,
        name: &str,
        version: &str,
        destination_id: &str,
        update: &Value,
        member: &str,
    ) -> Result<(), DsError> {
        let (version, destination_id, update, member) =
            (version.to_owned(), destination_id.to_owned(), update.clone(), member.to_owned());
        let sealer = self.http.sealer();
        self.change(name, move |row| {
            if version != row.version.to_string() {
                return Err(DsError::ConcurrentModification(format!(
                    "Cannot update firehose: {} since the current version id: {} and specified version id: {version} do not match",
                    row.name, row.version
                )));
            }
            if destination_id != DESTINATION_ID {
                return Err(DsError::InvalidArgument(format!(
                    "Destination Id {destination_id} not found."
                )));
            }
            if member == "HttpEndpointDestinationUpdate" {
                let Some(old) = &row.config.http else {
                    return Err(DsError::InvalidArgument(format!(
                        "Delivery stream {} delivers to S3, not to an HTTP endpoint.",
                        row.name
                    )));
                };
                let (h, backup) =
                    http_spec::http_update(&update, old, &row.config.destination, &|k| sealer.seal(k))?;
                row.config.http = Some(h);
                row.config.destination = backup;
                return Ok(true);
            }
            if row.config.http.is_some() {
                return Err(DsError::InvalidArgument(format!(
                    "Delivery stream {} delivers to an HTTP endpoint: update it with HttpEndpointDestinationUpdate.",
                    row.name
                )));
            }
            row.config.destination = spec::s3_update(&update, &member, Some(&row.config.destination))?;
            Ok(true)
        })
        .await
    }

    pub async fn tag(&self, name: &str, tags: BTreeMap<String, String>) -> Result<(), DsError> {
        self.change(name, move |row| {
            let mut merged = row.tags.clone();
            merged.extend(tags);
            if merged.len() > 50 {
                return Err(DsError::LimitExceeded(format!(
                    "A Firehose can have at most 50 tags; {} were asked for.",
                    merged.len()
                )));
            }
            row.tags = merged;
            Ok(false)
        })
        .await
    }

    pub async fn untag(&self, name: &str, keys: Vec<String>) -> Result<(), DsError> {
        self.change(name, move |row| {
            for k in &keys {
                row.tags.remove(k);
            }
            Ok(false)
        })
        .await
    }

    pub fn tags(&self, name: &str) -> Result<BTreeMap<String, String>, DsError> {
        Ok(self.row(name)?.0.tags)
    }

    /// Start/StopDeliveryStreamEncryption: recorded and described, not applied.
    pub async fn encryption(&self, name: &str, key_type: Option<String>) -> Result<(), DsError> {
        self.change(name, move |row| {
            row.config.encryption = key_type;
            Ok(false)
        })
        .await
    }
}

/// Validates a delivery stream name.
pub fn check_name(v: &mut Violations, member: &str, name: Option<&str>) {
    v.name(member, name, true, spec::MAX_NAME_LEN);
}

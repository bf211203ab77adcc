//! One delivery stream's delivery task: reads its source data stream from the checkpoint,
//! buffers records into one object (compressed as it goes) until `SizeInMBs` of records or
//! `IntervalInSeconds` after the oldest record's arrival, writes the object (retrying with backoff
//! while the destination is down; the backlog stays in the source log on disk, not in memory),
//! and only then advances and stores the checkpoint. Object names are derived from where the
//! batch starts, so an object rewritten after a crash overwrites itself. A graceful stop flushes
//! what is buffered first.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::buckets::Buckets;
use super::spec::{Compression, DeliveryConfig, object_key};
use super::store::Store;
use crate::clock::{SharedClock, Timestamp};
use crate::datastream::{DataStreams, DsError, ShardId, ShardReader, StreamSel};
use crate::log::Offset;
use crate::metrics::Metrics;
use crate::name::StreamName;

/// Records read from a shard per step, at most.
const READ_RECORDS: usize = 10_000;
/// Backoff between attempts at a failed object write.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What a delivery stream has done, for Describe and `/metrics`.
#[derive(Default)]
pub struct Progress {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    pub objects: AtomicU64,
    pub failures: AtomicU64,
    /// Records read from the source and not yet in an acknowledged object.
    pub buffered_records: AtomicU64,
    pub last_error: std::sync::Mutex<Option<String>>,
    /// The `/metrics` series the counts go to as well.
    pub series: Option<(Arc<Metrics>, crate::metrics::StreamLabel)>,
}

impl Progress {
    fn failed(&self, e: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Some((metrics, label)) = &self.series {
            metrics.firehose.failures.get_or_create(label).inc();
        }
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }
}

pub struct Delivery {
    pub name: String,
    pub created_ms: i64,
    pub source: StreamName,
    /// The configuration and its version, as updates change them.
    pub config: watch::Receiver<(u64, DeliveryConfig)>,
    pub data: Arc<DataStreams>,
    pub buckets: Arc<Buckets>,
    pub store: Arc<Store>,
    pub checkpoint: BTreeMap<u32, u64>,
    pub progress: Arc<Progress>,
    pub metrics: Arc<Metrics>,
    /// The HTTP endpoint client, and this stream's ARN (`X-Amz-Firehose-Source-Arn`).
    pub http: Arc<super::http::HttpSender>,
    pub arn: String,
    pub clock: SharedClock,
    /// Cancelled to stop: what is buffered is delivered first (a graceful stop).
    pub stop: CancellationToken,
    /// Cancelled to stop at once (the stream was deleted).
    pub abort: CancellationToken,
}

/// The object being filled.
struct Batch {
    encoder: Encoder,
    /// The records themselves (and their arrival, ms), for an HTTP endpoint.
    kept: Vec<(bytes::Bytes, i64)>,
    /// Bytes of record data in it (before compression).
    raw: u64,
    records: u64,
    oldest: Option<Timestamp>,
}

enum Encoder {
    Plain(Vec<u8>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Snappy(Box<snap::write::FrameEncoder<Vec<u8>>>),
    /// Hadoop's block format is written whole at the end, from the plain bytes.
    HadoopSnappy(Vec<u8>),
}

/// Hadoop's Snappy codec compresses in blocks of this many bytes (its default buffer size).
const HADOOP_SNAPPY_BLOCK: usize = 256 * 1024;

/// `data` in Hadoop's block format of Snappy: per block, the uncompressed length (u32, big
/// endian), then the compressed length and the raw Snappy block.
pub fn hadoop_snappy(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 2 + 16);
    let mut encoder = snap::raw::Encoder::new();
    for block in data.chunks(HADOOP_SNAPPY_BLOCK) {
        let compressed = encoder.compress_vec(block).unwrap_or_default();
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
        out.extend_from_slice(&compressed);
    }
    out
}

impl Encoder {
    fn new(c: Compression) -> Encoder {
        match c {
            Compression::Uncompressed => Encoder::Plain(Vec::new()),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::fast(),
            )),
            Compression::Snappy => {
                Encoder::Snappy(Box::new(snap::write::FrameEncoder::new(Vec::new())))
            }
            Compression::HadoopSnappy => Encoder::HadoopSnappy(Vec::new()),
        }
    }

    fn write(&mut self, data: &[u8]) {
        match self {
            Encoder::Plain(v) | Encoder::HadoopSnappy(v) => v.extend_from_slice(data),
            Encoder::Snappy(f) => {
                let _ = f.write_all(data);
            }
            // Writing into a Vec cannot fail.
            Encoder::Gzip(g) => {
                let _ = g.write_all(data);
            }
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Encoder::Plain(v) => v,
            Encoder::Gzip(g) => g.finish().unwrap_or_default(),
            Encoder::Snappy(f) => f.into_inner().unwrap_or_default(),
            Encoder::HadoopSnappy(v) => hadoop_snappy(&v),
        }
    }
}

impl Delivery {
    pub async fn run(mut self) {
        let mut readers: BTreeMap<u32, ShardReader> = BTreeMap::new();
        let mut done: BTreeSet<u32> = BTreeSet::new();
        loop {
            if self.abort.is_cancelled() {
                return;
            }
            if let Err(e) = self.follow_shards(&mut readers, &mut done) {
                self.progress.failed(format!("source {}: {e}", self.source));
                if self.pause(FIRST_BACKOFF * 5).await {
                    return;
                }
                continue;
            }
            let (version, config) = self.config.borrow_and_update().clone();
            let d = &config.destination;
            let start = self.checkpoint.clone();
            let mut at = start.clone();
            let mut batch = Batch {
                encoder: Encoder::new(d.compression),
                kept: Vec::new(),
                raw: 0,
                records: 0,
                oldest: None,
            };
            let (limit, interval_secs) = match &config.http {
                Some(h) => (u64::from(h.size_mib) << 20, h.interval_secs),
                None => (d.buffer_bytes(), d.interval_secs),
            };
            let interval = Duration::from_secs(u64::from(interval_secs));
            let keep = config.http.is_some();
            // Fill the batch until it is full, due, or the stop comes. Records read after a
            // configuration change go by the new one.
            loop {
                if batch.records == 0 && self.config.has_changed().unwrap_or(false) {
                    break;
                }
                let got = match self
                    .read_into(&readers, &mut at, &mut batch, limit, (d.append_delimiter, keep))
                    .await
                {
                    Ok(n) => n,
                    Err(e) => {
                        self.progress.failed(format!("reading {}: {e}", self.source));
                        0
                    }
                };
                self.progress.buffered_records.store(batch.records, Ordering::Relaxed);
                self.gauge().set(batch.records as i64);
                let full = batch.raw >= limit;
                let due = batch.oldest.is_some_and(|o| {
                    let age = self.clock.now().micros_since(o);
                    age >= i64::try_from(interval.as_micros()).unwrap_or(i64::MAX)
                });
                let stopping = self.stop.is_cancelled() || self.abort.is_cancelled();
                if full || due || (stopping && batch.records > 0) {
                    break;
                }
                if stopping {
                    return;
                }
                if got > 0 {
                    continue;
                }
                // Nothing new: wait for the source, the batch's deadline, or the stop.
                let deadline = batch.oldest.map(|o| {
                    let waited = self.clock.now().micros_since(o).max(0) as u64;
                    Duration::from_micros((interval.as_micros() as u64).saturating_sub(waited))
                });
                self.wait(&readers, &at, deadline).await;
                if readers.values().any(ShardReader::is_closed) || readers.is_empty() {
                    // Children of a closed shard join between batches.
                    if batch.records == 0 {
                        break;
                    }
                }
            }
            if batch.records == 0 {
                continue;
            }
            let oldest = batch.oldest.unwrap_or_else(|| self.clock.now());
            let seed = format!("{}/{}/{start:?}", self.name, self.created_ms);
            let records = batch.records;
            let delivered = match &config.http {
                Some(h) => self.to_endpoint(h, &config, version, oldest, &seed, &batch.kept).await,
                None => {
                    let key = object_key(d, &self.name, version, oldest, seed.as_bytes());
                    self.write(&d.bucket, &key, batch.encoder.finish()).await
                }
            };
            if !delivered {
                return;
            }
            self.checkpoint = at;
            let (store, name, created, cp) =
                (self.store.clone(), self.name.clone(), self.created_ms, self.checkpoint.clone());
            let saved =
                tokio::task::spawn_blocking(move || store.checkpoint(&name, created, &cp)).await;
            if let Ok(Err(e)) = saved {
                self.progress.failed(format!("saving the checkpoint: {e}"));
            }
            let p = &self.progress;
            p.records.fetch_add(records, Ordering::Relaxed);
            p.bytes.fetch_add(batch.raw, Ordering::Relaxed);
            p.objects.fetch_add(1, Ordering::Relaxed);
            p.buffered_records.store(0, Ordering::Relaxed);
            let (f, label) = (&self.metrics.firehose, Metrics::stream(&self.name));
            f.records.get_or_create(&label).inc_by(records);
            f.bytes.get_or_create(&label).inc_by(batch.raw);
            f.objects.get_or_create(&label).inc();
            self.gauge().set(0);
            tracing::debug!(stream = %self.name, records, "batch delivered");
        }
    }

    fn gauge(&self) -> prometheus_client::metrics::gauge::Gauge {
        self.metrics.firehose.buffered.get_or_create(&Metrics::stream(&self.name)).clone()
    }

    /// Sleeps `d` unless aborted (`true`: aborted).
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = self.abort.cancelled() => true,
        }
    }

    /// Keeps `readers` to the shards to read: every shard of the checkpoint not read to the end
    /// of its closing, and children whose parents are all done.
    fn follow_shards(
        &mut self,
        readers: &mut BTreeMap<u32, ShardReader>,
        done: &mut BTreeSet<u32>,
    ) -> Result<(), DsError> {
        let (_, shards, _) =
            self.data.describe_stream(StreamSel::name(self.source.as_str()), Some(10_000), None)?;
        if self.checkpoint.is_empty() {
            // A new delivery stream starts where its source ends now (Firehose reads from LATEST).
            for s in shards.iter().filter(|s| s.ending.is_none()) {
                let r = self.data.shard_reader(&self.source, &s.shard_id)?;
                self.checkpoint.insert(s.shard_id.0, r.committed_end().0);
            }
        }
        for (&id, &pos) in &self.checkpoint {
            if readers.contains_key(&id) || done.contains(&id) {
                continue;
            }
            let r = match self.data.shard_reader(&self.source, &ShardId(id)) {
                Ok(r) => r,
                // Gone (its records expired with it): nothing more to read there.
                Err(DsError::ResourceNotFound(_)) => {
                    done.insert(id);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if r.is_closed() && pos >= r.committed_end().0 {
                done.insert(id);
            } else {
                readers.insert(id, r);
            }
        }
        readers.retain(|id, r| {
            let finished = r.is_closed()
                && self.checkpoint.get(id).copied().unwrap_or(0) >= r.committed_end().0;
            if finished {
                done.insert(*id);
            }
            !finished
        });
        for s in &shards {
            let id = s.shard_id.0;
            if self.checkpoint.contains_key(&id) {
                continue;
            }
            let parents: Vec<u32> =
                [s.parent, s.adjacent_parent].into_iter().flatten().map(|p| p.0).collect();
            if !parents.is_empty() && parents.iter().all(|p| done.contains(p)) {
                let r = self.data.shard_reader(&self.source, &s.shard_id)?;
                self.checkpoint.insert(id, r.start().0);
                readers.insert(id, r);
            }
        }
        Ok(())
    }

    /// Reads what each shard has past `at` into the batch, up to `limit` bytes in all; returns
    /// the records read.
    async fn read_into(
        &self,
        readers: &BTreeMap<u32, ShardReader>,
        at: &mut BTreeMap<u32, u64>,
        batch: &mut Batch,
        limit: u64,
        (delimiter, keep): (bool, bool),
    ) -> Result<u64, DsError> {
        let mut got = 0;
        for (id, r) in readers {
            let room = limit.saturating_sub(batch.raw);
            if room == 0 {
                break;
            }
            let mut from = at.get(id).copied().unwrap_or(0);
            if from >= r.committed_end().0 {
                continue;
            }
            let kept_from = r.start().0;
            if from < kept_from {
                // The source's retention deleted records before they were delivered: say so in the
                // error prefix, and go on from what is left.
                self.expired(*id, from, kept_from).await;
                from = kept_from;
                at.insert(*id, from);
            }
            let reader = r.clone();
            let records = tokio::task::spawn_blocking(move || {
                reader.read(Offset(from), READ_RECORDS, usize::try_from(room).unwrap_or(usize::MAX))
            })
            .await
            .map_err(|e| DsError::Internal(format!("read task: {e}")))??;
            let Some(last) = records.last() else { continue };
            at.insert(*id, last.offset.0 + 1);
            for rec in &records {
                if keep {
                    batch.kept.push((rec.data.clone(), rec.arrival.as_millis()));
                } else {
                    batch.encoder.write(&rec.data);
                    if delimiter {
                        batch.encoder.write(b"\n");
                    }
                }
                batch.raw += rec.data.len() as u64;
                batch.records += 1;
                batch.oldest = Some(batch.oldest.map_or(rec.arrival, |o| o.min(rec.arrival)));
            }
            got += records.len() as u64;
        }
        Ok(got)
    }

    /// Waits until a shard has records past `at`, `deadline` passes, or a stop.
    async fn wait(
        &self,
        readers: &BTreeMap<u32, ShardReader>,
        at: &BTreeMap<u32, u64>,
        deadline: Option<Duration>,
    ) {
        let mut watches: Vec<(u64, watch::Receiver<Offset>)> = readers
            .iter()
            .map(|(id, r)| (at.get(id).copied().unwrap_or(0), r.subscribe()))
            .collect();
        let changed = async {
            let waits = watches.iter_mut().map(|(from, rx)| {
                let from = *from;
                Box::pin(async move {
                    let _ = rx.wait_for(|end| end.0 > from).await;
                })
            });
            if waits.len() == 0 {
                std::future::pending::<()>().await;
            }
            futures_util::future::select_all(waits).await;
        };
        // Closed shards and new children are looked at again at least this often.
        let cap = Duration::from_secs(1);
        let sleep = deadline.map_or(cap, |d| d.min(cap));
        let mut config = self.config.clone();
        tokio::select! {
            _ = changed => {}
            _ = config.changed() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = self.stop.cancelled() => {}
            _ = self.abort.cancelled() => {}
        }
    }

    /// Records `from..to` of source shard `shard` expired before delivery: counted, logged, and
    /// written as one JSON line under the error prefix (`retention-expired`).
    async fn expired(&self, shard: u32, from: u64, to: u64) {
        let n = to - from;
        let message = format!(
            "{n} records of {} shard {shard} (offsets {from}..{to}) were deleted by the source's retention before delivery",
            self.source
        );
        tracing::warn!(stream = %self.name, %message, "records expired before delivery");
        self.progress.failed(message.clone());
        self.metrics.firehose.expired.get_or_create(&Metrics::stream(&self.name)).inc_by(n);
        let (version, config) = self.config.borrow().clone();
        let d = &config.destination;
        let now = self.clock.now();
        let line = serde_json::json!({
            "errorCode": "RecordsExpired",
            "errorMessage": message,
            "source": self.source.as_str(),
            "shard": shard,
            "fromOffset": from,
            "toOffset": to,
            "records": n,
            "detectedTimestamp": now.as_millis(),
        });
        let prefix = if d.error_output_prefix.is_empty() {
            "retention-expired/"
        } else {
            &d.error_output_prefix
        };
        let seed = format!("{}/{}/expired/{shard}/{from}", self.name, self.created_ms);
        let prefix =
            super::spec::evaluate_prefix(prefix, now, seed.as_bytes(), "retention-expired");
        let key =
            super::spec::object_name(&prefix, ".json", &self.name, version, now, seed.as_bytes());
        let mut body = line.to_string().into_bytes();
        body.push(b'\n');
        let _ = self.write(&d.bucket, &key, body).await;
    }

    /// Sends a batch to the HTTP endpoint; after the retry window (or with `AllData`), to the
    /// backup bucket too. `false` if stopped first.
    async fn to_endpoint(
        &self,
        h: &super::spec::HttpDestination,
        config: &DeliveryConfig,
        version: u64,
        oldest: Timestamp,
        seed: &str,
        records: &[(bytes::Bytes, i64)],
    ) -> bool {
        let b = &config.destination;
        if h.backup_all {
            let mut raw = Vec::new();
            for (data, _) in records {
                raw.extend_from_slice(data);
                if b.append_delimiter {
                    raw.push(b'\n');
                }
            }
            let key = object_key(b, &self.name, version, oldest, seed.as_bytes());
            if !self.write(&b.bucket, &key, raw).await {
                return false;
            }
        }
        let request_id = super::spec::uuid_of(format!("{seed}/http").as_bytes());
        let data: Vec<bytes::Bytes> = records.iter().map(|(d, _)| d.clone()).collect();
        let progress = self.progress.clone();
        let sent = self
            .http
            .send(h, &self.arn, &request_id, &data, &self.stop, |e| progress.failed(e))
            .await;
        match sent {
            super::http::Sent::Acknowledged => true,
            super::http::Sent::Stopped => false,
            super::http::Sent::Failed { attempts, code, message } => {
                tracing::warn!(stream = %self.name, url = %h.url, attempts, %message, "HTTP endpoint delivery failed; backing the batch up");
                let lines = super::http::HttpSender::failed_lines(
                    h,
                    records,
                    attempts,
                    code,
                    &message,
                    self.clock.now().as_millis(),
                );
                // Firehose's default error prefix is `<error type>/` and the date path.
                let prefix = if b.error_output_prefix.is_empty() {
                    "http-endpoint-failed/"
                } else {
                    &b.error_output_prefix
                };
                let prefix = super::spec::evaluate_prefix(
                    prefix,
                    oldest,
                    seed.as_bytes(),
                    "http-endpoint-failed",
                );
                let key = super::spec::object_name(
                    &prefix,
                    "",
                    &self.name,
                    version,
                    oldest,
                    seed.as_bytes(),
                );
                self.write(&b.bucket, &key, lines).await
            }
        }
    }

    /// Writes the object, retrying with backoff until it is acknowledged; `false` if stopped
    /// first (the records stay in the source and are delivered after a restart).
    async fn write(&self, bucket: &str, key: &str, body: Vec<u8>) -> bool {
        let body = bytes::Bytes::from(body);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let result = match self.buckets.bucket(bucket) {
                Ok(store) => store
                    .put(&ObjectPath::from(key), body.clone().into())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => return true,
                Err(e) => {
                    tracing::warn!(stream = %self.name, bucket, key, error = %e, "object write failed; retrying");
                    self.progress.failed(format!("writing s3://{bucket}/{key}: {e}"));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.cancelled() => return false,
                _ = self.abort.cancelled() => return false,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

//! One delivery stream's delivery task: reads its source data stream from the checkpoint, passes
//! the records through the processors (`super::stage`) into parts — one object being filled per
//! dynamic partition (one in all without partitioning), compressed or converted as it goes —
//! and writes a part's object when it holds `SizeInMBs` of records or its oldest record arrived
//! `IntervalInSeconds` ago (retrying with backoff while the destination is down; the backlog stays
//! in the source log on disk, not in memory). The checkpoint then moves to the first record still
//! in an open part; a part's marks say how far it is delivered past the checkpoint, so a restart
//! does not deliver those records again. Object names derive from where a part starts, so an
//! object rewritten after a crash overwrites itself. A graceful stop flushes every part first.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::spec::{DeliveryConfig, object_key};
use super::stage::{BACKUP, Part, Sink, Stopped, hints};
use super::store::Store;
use crate::buckets::Buckets;
use crate::clock::{SharedClock, Timestamp};
use crate::datastream::{DataStreams, DsError, ShardId, ShardReader, StreamSel};
use crate::log::Offset;
use crate::metrics::Metrics;
use crate::name::StreamName;

/// How often the source's shards are looked at again (splits, merges, closings).
const SHARDS_LOOK: Duration = Duration::from_secs(1);
/// Open parts (dynamic partitions) at once, at most (Firehose's active partition quota), and
/// the bytes of records they may hold in all before the oldest is flushed early.
const MAX_PARTS: usize = 500;
const MAX_BUFFERED: u64 = 256 << 20;
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
    pub(super) fn failed(&self, e: String) {
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
    pub marks: super::store::Marks,
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

/// Per shard, the read position or the first record still in an open part, whichever is
/// earlier.
fn delivered_to(parts: &BTreeMap<String, Part>, at: &BTreeMap<u32, u64>) -> BTreeMap<u32, u64> {
    let mut base = at.clone();
    for p in parts.values() {
        for (shard, first) in &p.first {
            let b = base.entry(*shard).or_insert(*first);
            *b = (*b).min(*first);
        }
    }
    base
}

impl Delivery {
    pub async fn run(mut self) {
        let mut readers: BTreeMap<u32, ShardReader> = BTreeMap::new();
        let mut done: BTreeSet<u32> = BTreeSet::new();
        let mut parts: BTreeMap<String, Part> = BTreeMap::new();
        let mut at = self.checkpoint.clone();
        let mut looked: Option<std::time::Instant> = None;
        let (mut version, mut config) = self.config.borrow_and_update().clone();
        loop {
            if self.abort.is_cancelled() {
                return;
            }
            if looked.is_none_or(|t| t.elapsed() >= SHARDS_LOOK) || readers.is_empty() {
                if let Err(e) = self.follow_shards(&mut readers, &mut done) {
                    self.progress.failed(format!("source {}: {e}", self.source));
                    if self.pause(FIRST_BACKOFF * 5).await {
                        return;
                    }
                    continue;
                }
                for (id, pos) in &self.checkpoint {
                    at.entry(*id).or_insert(*pos);
                }
                looked = Some(std::time::Instant::now());
            }
            let stopping = self.stop.is_cancelled() || self.abort.is_cancelled();
            // Records read after a configuration change go by the new one: flush first.
            let changed = self.config.has_changed().unwrap_or(false);
            let mut got = 0;
            if !stopping && !changed {
                match self.read_step(&config, &readers, &mut at, &mut parts).await {
                    Ok(n) => got = n,
                    Err(Stopped) => return,
                }
            }
            let now = self.clock.now();
            let mut due: Vec<String> = parts
                .iter()
                .filter(|(id, p)| {
                    let (limit, interval) = hints(&config, id);
                    stopping || changed || p.raw >= limit || now.micros_since(p.oldest) >= interval
                })
                .map(|(id, _)| id.clone())
                .collect();
            // Bounded: at most MAX_PARTS partitions and MAX_BUFFERED bytes open at once; the
            // oldest go first.
            let mut open: Vec<(Timestamp, u64, String)> = parts
                .iter()
                .filter(|(id, _)| !due.contains(id))
                .map(|(id, p)| (p.oldest, p.raw, id.clone()))
                .collect();
            open.sort();
            let mut bytes: u64 = open.iter().map(|(_, raw, _)| raw).sum();
            let mut count = open.len();
            for (_, raw, id) in open {
                if count <= MAX_PARTS && bytes <= MAX_BUFFERED {
                    break;
                }
                due.push(id);
                count -= 1;
                bytes -= raw;
            }
            let flushed = !due.is_empty();
            let mut written = Vec::new();
            for id in due {
                let Some(part) = parts.remove(&id) else { continue };
                let end = part.end.clone();
                written.push((part.records, part.raw));
                if !self.flush(&config, version, &id, part).await {
                    return;
                }
                let mark = self.marks.entry(id).or_default();
                for (shard, offset) in end {
                    let m = mark.entry(shard).or_insert(offset);
                    *m = (*m).max(offset);
                }
            }
            let buffered: u64 = parts.values().map(|p| p.records).sum();
            self.progress.buffered_records.store(buffered, Ordering::Relaxed);
            self.gauge().set(buffered as i64);
            if flushed || (parts.is_empty() && at != self.checkpoint) {
                self.advance(delivered_to(&parts, &at)).await;
            }
            // Counted once the checkpoint says so.
            for (records, raw) in written {
                self.count(records, raw);
            }
            if changed {
                (version, config) = self.config.borrow_and_update().clone();
                continue;
            }
            if stopping && parts.is_empty() {
                return;
            }
            if got == 0 {
                // Nothing new: wait for the source, the first part's deadline, or the stop.
                let deadline = parts
                    .iter()
                    .map(|(id, p)| {
                        let waited = now.micros_since(p.oldest).max(0);
                        Duration::from_micros((hints(&config, id).1 - waited).max(0) as u64)
                    })
                    .min();
                self.wait(&readers, &at, deadline).await;
            }
        }
    }

    /// Moves the checkpoint to what is delivered: per shard, the read position or the first
    /// record still in an open part, whichever is earlier; marks the checkpoint passed are
    /// dropped.
    async fn advance(&mut self, base: BTreeMap<u32, u64>) {
        for mark in self.marks.values_mut() {
            mark.retain(|shard, offset| base.get(shard).is_none_or(|b| *offset > *b));
        }
        self.marks.retain(|_, m| !m.is_empty());
        self.checkpoint = base;
        let (store, name, created) = (self.store.clone(), self.name.clone(), self.created_ms);
        let (cp, marks) = (self.checkpoint.clone(), self.marks.clone());
        let saved =
            tokio::task::spawn_blocking(move || store.checkpoint(&name, created, &cp, &marks))
                .await;
        if let Ok(Err(e)) = saved {
            self.progress.failed(format!("saving the checkpoint: {e}"));
        }
    }

    /// Writes one part's object (and, for Parquet, the records the schema refused); `false` if
    /// stopped first.
    async fn flush(&self, config: &DeliveryConfig, version: u64, id: &str, part: Part) -> bool {
        let d = if id == BACKUP {
            match config.destination.backup.as_deref() {
                Some(b) => b,
                None => return true,
            }
        } else {
            &config.destination
        };
        let seed = format!("{}/{}/{id}/{:?}", self.name, self.created_ms, part.first);
        let key = object_key(d, &self.name, version, part.oldest, seed.as_bytes(), &part.keys);
        match part.sink {
            Sink::Kept(kept) => match &config.http {
                Some(h) => self.to_endpoint(h, config, version, part.oldest, &seed, &kept).await,
                None => true,
            },
            Sink::Lines(encoder) => {
                let entry = key.rsplit('/').next().unwrap_or("records");
                let entry = entry.strip_suffix(".zip").unwrap_or(entry).to_owned();
                let body = tokio::task::spawn_blocking(move || encoder.finish(&entry))
                    .await
                    .unwrap_or_default();
                self.write(&d.bucket, &key, body).await
            }
            Sink::Parquet(writer) => {
                let (body, refused) =
                    tokio::task::spawn_blocking(move || writer.finish()).await.unwrap_or_default();
                if !refused.is_empty() {
                    let now = self.clock.now();
                    let failed: Vec<super::stage::Failure> = refused
                        .into_iter()
                        .map(|r| super::stage::Failure::conversion(r, now))
                        .collect();
                    if !self.errors(d, version, &seed, &failed).await {
                        return false;
                    }
                }
                body.is_empty() || self.write(&d.bucket, &key, body).await
            }
        }
    }

    fn count(&self, records: u64, raw: u64) {
        let p = &self.progress;
        p.records.fetch_add(records, Ordering::Relaxed);
        p.bytes.fetch_add(raw, Ordering::Relaxed);
        p.objects.fetch_add(1, Ordering::Relaxed);
        let (f, label) = (&self.metrics.firehose, Metrics::stream(&self.name));
        f.records.get_or_create(&label).inc_by(records);
        f.bytes.get_or_create(&label).inc_by(raw);
        f.objects.get_or_create(&label).inc();
        tracing::debug!(stream = %self.name, records, "object delivered");
    }

    fn gauge(&self) -> prometheus_client::metrics::gauge::Gauge {
        self.metrics.firehose.buffered.get_or_create(&Metrics::stream(&self.name)).clone()
    }

    /// Sleeps `d` unless aborted (`true`: aborted).
    pub(super) async fn pause(&self, d: Duration) -> bool {
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
    pub(super) async fn expired(&self, shard: u32, from: u64, to: u64) {
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
        h: &super::http_spec::HttpDestination,
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
            let key = object_key(b, &self.name, version, oldest, seed.as_bytes(), &BTreeMap::new());
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
    pub(super) async fn write(&self, bucket: &str, key: &str, body: Vec<u8>) -> bool {
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

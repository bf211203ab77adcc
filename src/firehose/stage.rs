//! From source records to parts: one read step of a delivery stream reads what each shard has,
//! keeps the source backup's copy, runs the processors in Firehose's order (decompression,
//! de-aggregation, the transform over HTTP, jq partition keys) and puts each record into the
//! part of its partition. Records that fail a step are written at once under the error prefix
//! (`processing-failed`, `partitioning-failed`), one JSON line each as Firehose writes them.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::json;

use super::convert::{ParquetWriter, Refused};
use super::deliver::Delivery;
use super::encode::Encoder;
use super::process::{self, Transformed};
use super::spec::{DeliveryConfig, S3Destination};
use crate::clock::Timestamp;
use crate::datastream::{DsError, ShardReader};
use crate::log::Offset;

/// Records read from a shard per step, at most, and bytes when no part bounds it.
const READ_RECORDS: usize = 10_000;
const READ_BYTES: u64 = 8 << 20;
/// The part of the source backup (`S3BackupMode` `Enabled`).
pub const BACKUP: &str = "\u{1}backup";

/// The delivery stream is stopping: what is read stays in the source.
pub struct Stopped;

/// What a part's object is made of.
pub enum Sink {
    Lines(Encoder),
    Parquet(Box<ParquetWriter>),
    /// The records themselves (and their arrival, ms), for an HTTP endpoint.
    Kept(Vec<(Bytes, i64)>),
}

/// One object being filled: the stream's (without partitioning), a dynamic partition's, or
/// the source backup's.
pub struct Part {
    pub keys: BTreeMap<String, String>,
    pub sink: Sink,
    /// Bytes of record data in it (before compression or conversion).
    pub raw: u64,
    pub records: u64,
    pub oldest: Timestamp,
    /// Per shard, the first record's offset (the checkpoint stays before it) and the offset
    /// past its last record (its mark once delivered).
    pub first: BTreeMap<u32, u64>,
    pub end: BTreeMap<u32, u64>,
}

/// A part's size limit (bytes of records) and interval (µs).
pub fn hints(config: &DeliveryConfig, part: &str) -> (u64, i64) {
    let (bytes, secs) = match (&config.http, config.destination.backup.as_deref()) {
        (Some(h), _) => (u64::from(h.size_mib) << 20, h.interval_secs),
        (None, Some(b)) if part == BACKUP => (b.buffer_bytes(), b.interval_secs),
        _ => (config.destination.buffer_bytes(), config.destination.interval_secs),
    };
    (bytes, i64::from(secs) * 1_000_000)
}

/// A record on its way, with where it came from.
struct Item {
    data: Bytes,
    arrival: Timestamp,
    shard: u32,
    offset: u64,
    /// Partition keys (from the transform, then the query), or why there are none.
    keys: Option<BTreeMap<String, String>>,
    key_error: Option<String>,
}

/// A record that failed a step, for the error prefix.
pub struct Failure {
    pub kind: &'static str,
    pub line: serde_json::Value,
}

impl Failure {
    fn of(
        kind: &'static str,
        item: &Item,
        code: &str,
        message: &str,
        attempts: u32,
        now: Timestamp,
    ) -> Failure {
        Failure {
            kind,
            line: json!({
                "attemptsMade": attempts,
                "arrivalTimestamp": item.arrival.as_millis(),
                "errorCode": code,
                "errorMessage": message,
                "attemptEndingTimestamp": now.as_millis(),
                "rawData": STANDARD.encode(&item.data),
            }),
        }
    }

    /// A record the Parquet schema refused (Firehose's `format-conversion-failed` line).
    pub fn conversion(r: Refused, now: Timestamp) -> Failure {
        Failure {
            kind: "format-conversion-failed",
            line: json!({
                "attemptsMade": 1,
                "arrivalTimestamp": r.arrival_ms,
                "lastErrorCode": "DataFormatConversion.MalformedData",
                "lastErrorMessage": r.message,
                "attemptEndingTimestamp": now.as_millis(),
                "rawData": STANDARD.encode(&r.data),
            }),
        }
    }
}

fn new_part(d: &S3Destination, http: bool, keys: BTreeMap<String, String>, at: Timestamp) -> Part {
    let sink = if http {
        Sink::Kept(Vec::new())
    } else if let Some(c) = &d.conversion {
        match ParquetWriter::new(c) {
            Ok(w) => Sink::Parquet(Box::new(w)),
            // The schema was checked when configured; keep the records as lines rather than lose them.
            Err(e) => {
                tracing::error!(error = %e, "the Parquet schema no longer builds; writing JSON lines");
                Sink::Lines(Encoder::new(d.compression))
            }
        }
    } else {
        Sink::Lines(Encoder::new(d.compression))
    };
    Part {
        keys,
        sink,
        raw: 0,
        records: 0,
        oldest: at,
        first: BTreeMap::new(),
        end: BTreeMap::new(),
    }
}

impl Part {
    fn add(&mut self, item: &Item, delimiter: bool) {
        match &mut self.sink {
            Sink::Lines(e) => {
                e.write(&item.data);
                if delimiter {
                    e.write(b"\n");
                }
            }
            Sink::Parquet(w) => w.push(&item.data, item.arrival.as_millis()),
            Sink::Kept(k) => k.push((item.data.clone(), item.arrival.as_millis())),
        }
        self.raw += item.data.len() as u64;
        self.records += 1;
        self.oldest = self.oldest.min(item.arrival);
        self.first.entry(item.shard).or_insert(item.offset);
        self.end.insert(item.shard, item.offset + 1);
    }
}

impl Delivery {
    /// Reads what each shard has past `at` (no more than the fullest part has room for), and
    /// stages it into `parts`; returns the records read.
    pub(super) async fn read_step(
        &self,
        config: &DeliveryConfig,
        readers: &BTreeMap<u32, ShardReader>,
        at: &mut BTreeMap<u32, u64>,
        parts: &mut BTreeMap<String, Part>,
    ) -> Result<u64, Stopped> {
        let mut got = 0;
        for (id, r) in readers {
            let fullest = parts.iter().filter(|(k, _)| *k != BACKUP).map(|(_, p)| p.raw).max();
            let limit = super::stage::hints(config, "").0;
            let room = match fullest {
                Some(raw) => limit.saturating_sub(raw),
                None => limit.min(READ_BYTES),
            };
            if room == 0 {
                break;
            }
            let mut from = at.get(id).copied().unwrap_or(0);
            if from >= r.committed_end().0 {
                continue;
            }
            let kept_from = r.start().0;
            if from < kept_from {
                // The source's retention deleted records before they were delivered: say so in
                // the error prefix, and go on from what is left.
                self.expired(*id, from, kept_from).await;
                from = kept_from;
                at.insert(*id, from);
            }
            let reader = r.clone();
            let read = tokio::task::spawn_blocking(move || {
                reader.read(Offset(from), READ_RECORDS, usize::try_from(room).unwrap_or(usize::MAX))
            })
            .await
            .map_err(|e| DsError::Internal(format!("read task: {e}")))
            .and_then(|r| r);
            let records = match read {
                Ok(r) => r,
                Err(e) => {
                    self.progress.failed(format!("reading {}: {e}", self.source));
                    continue;
                }
            };
            let Some(last) = records.last() else { continue };
            let next = last.offset.0 + 1;
            let items: Vec<Item> = records
                .into_iter()
                .map(|rec| Item {
                    data: rec.data,
                    arrival: rec.arrival,
                    shard: *id,
                    offset: rec.offset.0,
                    keys: None,
                    key_error: None,
                })
                .collect();
            got += items.len() as u64;
            self.stage(config, items, parts).await?;
            at.insert(*id, next);
        }
        Ok(got)
    }

    /// `true` if the records of `part` up to `item` were delivered before a restart.
    fn delivered(&self, part: &str, item: &Item) -> bool {
        self.marks.get(part).and_then(|m| m.get(&item.shard)).is_some_and(|m| item.offset < *m)
    }

    fn put(
        &self,
        config: &DeliveryConfig,
        parts: &mut BTreeMap<String, Part>,
        id: String,
        keys: BTreeMap<String, String>,
        item: &Item,
    ) {
        if self.delivered(&id, item) {
            return;
        }
        let d = if id == BACKUP {
            match config.destination.backup.as_deref() {
                Some(b) => b,
                None => return,
            }
        } else {
            &config.destination
        };
        let delimiter = d.append_delimiter;
        let http = config.http.is_some() && id != BACKUP;
        parts
            .entry(id)
            .or_insert_with(|| new_part(d, http, keys, item.arrival))
            .add(item, delimiter);
    }

    async fn stage(
        &self,
        config: &DeliveryConfig,
        items: Vec<Item>,
        parts: &mut BTreeMap<String, Part>,
    ) -> Result<(), Stopped> {
        let d = &config.destination;
        let p = &d.processing;
        let now = self.clock.now();
        let mut failed: Vec<Failure> = Vec::new();
        if d.backup.is_some() {
            for item in &items {
                self.put(config, parts, BACKUP.to_owned(), BTreeMap::new(), item);
            }
        }
        let mut items = items;
        if p.decompress() {
            let mut out = Vec::with_capacity(items.len());
            for mut item in items {
                match process::decompress(&item.data) {
                    Ok(data) => {
                        item.data = data;
                        out.push(item);
                    }
                    Err(e) => failed.push(Failure::of(
                        "processing-failed",
                        &item,
                        "Decompression.Failed",
                        &e,
                        1,
                        now,
                    )),
                }
            }
            items = out;
        }
        if let Ok(Some(how)) = p.deaggregate() {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match process::split(&how, &item.data) {
                    Ok(subs) => {
                        out.extend(subs.into_iter().map(|data| Item { data, ..item.clone_meta() }))
                    }
                    Err(e) => failed.push(Failure::of(
                        "processing-failed",
                        &item,
                        "RecordDeAggregation.Failed",
                        &e,
                        1,
                        now,
                    )),
                }
            }
            items = out;
        }
        if let Ok(Some(t)) = p.transform() {
            items = self.transform(&t, items, &mut failed, now).await?;
        }
        let partitioned = d.dynamic_partitioning.is_some() && config.http.is_none();
        if partitioned && let Some(query) = p.metadata_query() {
            let (query, datas) =
                (query.to_owned(), items.iter().map(|i| i.data.clone()).collect::<Vec<_>>());
            let keys = tokio::task::spawn_blocking(move || process::partition_keys(&query, &datas))
                .await
                .unwrap_or_default();
            for (item, k) in items.iter_mut().zip(keys) {
                match k {
                    Ok(mut k) => {
                        // Keys from the transform (`partitionKeyFromLambda`) stay beside them.
                        if let Some(lambda) = item.keys.take() {
                            k.extend(lambda);
                        }
                        item.keys = Some(k);
                    }
                    Err(e) => item.key_error = Some(e),
                }
            }
        }
        for item in &items {
            if !partitioned {
                self.put(config, parts, String::new(), BTreeMap::new(), item);
                continue;
            }
            let keys = item.keys.clone().unwrap_or_default();
            let problem = match &item.key_error {
                Some(e) => Some(e.clone()),
                None => super::spec::missing_key(&d.prefix, &keys)
                    .map(|k| format!("the record has no partition key {k} (the prefix uses it)")),
            };
            if let Some(e) = problem {
                failed.push(Failure::of(
                    "partitioning-failed",
                    item,
                    "DynamicPartitioning.MetadataExtractionFailed",
                    &e,
                    1,
                    now,
                ));
                continue;
            }
            let id = serde_json::to_string(&keys).unwrap_or_default();
            self.put(config, parts, id, keys, item);
        }
        if !failed.is_empty() {
            let (version, _) = *self.config.borrow();
            let first =
                failed.first().map(|f| f.line["arrivalTimestamp"].to_string()).unwrap_or_default();
            let seed = format!(
                "{}/{}/failed/{first}/{}",
                self.name,
                self.created_ms,
                items.first().map_or(0, |i| i.offset)
            );
            if !self.errors(d, version, &seed, &failed).await {
                return Err(Stopped);
            }
        }
        Ok(())
    }

    /// Runs the transform over `items` in requests of at most its buffer size; returns what it
    /// kept (transformed), putting its failures in `failed`.
    async fn transform(
        &self,
        t: &process::Transform,
        items: Vec<Item>,
        failed: &mut Vec<Failure>,
        now: Timestamp,
    ) -> Result<Vec<Item>, Stopped> {
        let mut out = Vec::with_capacity(items.len());
        let mut chunk: Vec<Item> = Vec::new();
        let mut size = 0;
        let mut rest = items.into_iter().peekable();
        while let Some(item) = rest.next() {
            size += item.data.len();
            chunk.push(item);
            let full = rest.peek().is_none_or(|n| size + n.data.len() > t.buffer_bytes);
            if !full {
                continue;
            }
            let batch = std::mem::take(&mut chunk);
            size = 0;
            let ids: Vec<String> = batch
                .iter()
                .enumerate()
                .map(|(i, it)| format!("{:05}{:020}{i:06}", it.shard, it.offset))
                .collect();
            let listed: Vec<(String, i64, &Bytes)> = batch
                .iter()
                .zip(&ids)
                .map(|(it, id)| (id.clone(), it.arrival.as_millis(), &it.data))
                .collect();
            let invocation = super::spec::uuid_of(format!("{}/{}", self.name, ids[0]).as_bytes());
            let body = Bytes::from(process::transform_request(&invocation, &self.arn, &listed));
            let mut backoff = Duration::from_secs(1);
            let mut attempts = 0;
            let answer = loop {
                attempts += 1;
                let tried = match self.http.invoke(&t.url, body.clone(), &self.stop).await {
                    None => return Err(Stopped),
                    Some(Ok(text)) => process::transform_answer(&ids, &text),
                    Some(Err(e)) => Err(e),
                };
                match tried {
                    Ok(results) => break Ok(results),
                    Err(e) if attempts > t.retries => break Err(e),
                    Err(e) => {
                        self.progress.failed(format!("transform {}: {e}", t.url));
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = self.stop.cancelled() => return Err(Stopped),
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            };
            match answer {
                Ok(results) => {
                    for (mut item, r) in batch.into_iter().zip(results) {
                        match r {
                            Transformed::Ok { data, keys } => {
                                item.data = data;
                                item.keys = keys;
                                out.push(item);
                            }
                            Transformed::Dropped => {}
                            Transformed::Failed(e) => failed.push(Failure::with_url(
                                Failure::of(
                                    "processing-failed",
                                    &item,
                                    "Lambda.ProcessingFailed",
                                    &e,
                                    attempts,
                                    now,
                                ),
                                &t.url,
                            )),
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(stream = %self.name, url = %t.url, attempts, error = %e, "the transform failed; records go to processing-failed");
                    self.progress.failed(format!("transform {}: {e}", t.url));
                    for item in &batch {
                        failed.push(Failure::with_url(
                            Failure::of(
                                "processing-failed",
                                item,
                                "Lambda.FunctionError",
                                &e,
                                attempts,
                                now,
                            ),
                            &t.url,
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Writes failed records as JSON lines under the error prefix, one object per kind; `false`
    /// if stopped first.
    pub(super) async fn errors(
        &self,
        d: &S3Destination,
        version: u64,
        seed: &str,
        failed: &[Failure],
    ) -> bool {
        let mut kinds: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        for f in failed {
            let body = kinds.entry(f.kind).or_default();
            let _ = serde_json::to_writer(&mut *body, &f.line);
            body.push(b'\n');
        }
        let now = self.clock.now();
        for (kind, body) in kinds {
            let n = body.iter().filter(|b| **b == b'\n').count() as u64;
            self.metrics
                .firehose
                .failed_records
                .get_or_create(&crate::metrics::Metrics::stream(&self.name))
                .inc_by(n);
            let prefix = if d.error_output_prefix.is_empty() {
                format!("{kind}/")
            } else {
                d.error_output_prefix.clone()
            };
            let seed = format!("{seed}/{kind}");
            let prefix = super::spec::evaluate_prefix(&prefix, now, seed.as_bytes(), kind);
            let key =
                super::spec::object_name(&prefix, "", &self.name, version, now, seed.as_bytes());
            if !self.write(&d.bucket, &key, body).await {
                return false;
            }
        }
        true
    }
}

impl Failure {
    fn with_url(mut self, url: &str) -> Failure {
        self.line["lambdaArn"] = json!(url);
        self
    }
}

impl Item {
    fn clone_meta(&self) -> Item {
        Item {
            data: Bytes::new(),
            arrival: self.arrival,
            shard: self.shard,
            offset: self.offset,
            keys: None,
            key_error: None,
        }
    }
}

//! A stream's recorded settings beyond its shape: server-side encryption
//! (Start/StopStreamEncryption), enhanced monitoring (Enable/DisableEnhancedMonitoring: which
//! shard-level metrics `/metrics` shows for the stream) and resource policies
//! (Put/Get/DeleteResourcePolicy on a stream or consumer ARN), plus the shard-level counters the
//! monitoring reports.
//!
//! Encryption is recorded and reported (`EncryptionType`, `KeyId`), not applied: Sluice keeps
//! records as written (encryption at rest is its own piece of work; docs/kinesis.md says so).
//! Policies are stored and returned as given; what a principal may do is decided by Sluice's
//! grants (`crate::auth`), not by policy documents.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::*;

/// The shard-level metrics of enhanced monitoring, in AWS's names and order.
pub const SHARD_METRICS: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

/// A shard's running totals, counted always (a few relaxed atomics), shown when monitored.
#[derive(Debug, Default)]
pub struct ShardCounters {
    pub incoming_bytes: AtomicU64,
    pub incoming_records: AtomicU64,
    pub outgoing_bytes: AtomicU64,
    pub outgoing_records: AtomicU64,
    pub write_throttled: AtomicU64,
    pub read_throttled: AtomicU64,
    /// The last reader's distance behind the shard's newest record.
    pub iterator_age_ms: AtomicI64,
}

impl ShardCounters {
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn read_out(&self, records: &[DataRecord], millis_behind_latest: i64) {
        let bytes: usize = records.iter().map(|r| r.data.len() + r.partition_key.len()).sum();
        Self::add(&self.outgoing_bytes, bytes as u64);
        Self::add(&self.outgoing_records, records.len() as u64);
        self.iterator_age_ms.store(millis_behind_latest, Ordering::Relaxed);
    }
}

/// One monitored shard's values, for `/metrics`.
#[derive(Debug, Clone)]
pub struct ShardMetrics {
    pub stream: String,
    pub shard: ShardId,
    /// The metrics enabled on its stream.
    pub enabled: BTreeSet<String>,
    pub incoming_bytes: u64,
    pub incoming_records: u64,
    pub outgoing_bytes: u64,
    pub outgoing_records: u64,
    pub write_throttled: u64,
    pub read_throttled: u64,
    pub iterator_age_ms: i64,
}

/// EnableEnhancedMonitoring / DisableEnhancedMonitoring's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitoringChange {
    pub stream: String,
    pub arn: String,
    pub current: Vec<String>,
    pub desired: Vec<String>,
}

/// The metric names asked for (`ALL` stands for every one), validated as the model's enum.
fn metric_names(asked: &[String]) -> Result<BTreeSet<String>, DsError> {
    validate::count(asked.len(), "shardLevelMetrics", 1, 7)?;
    let mut out = BTreeSet::new();
    for (i, m) in asked.iter().enumerate() {
        if m == "ALL" {
            out.extend(SHARD_METRICS.iter().map(|s| s.to_string()));
        } else if SHARD_METRICS.contains(&m.as_str()) {
            out.insert(m.clone());
        } else {
            return Err(DsError::Validation(format!(
                "1 validation error detected: Value '[{m}]' at 'shardLevelMetrics.{}' failed to satisfy constraint: Member must satisfy enum value set: [IncomingBytes, OutgoingRecords, IteratorAgeMilliseconds, IncomingRecords, ReadProvisionedThroughputExceeded, WriteProvisionedThroughputExceeded, OutgoingBytes, ALL]",
                i + 1
            )));
        }
    }
    Ok(out)
}

/// In AWS's order.
fn ordered(set: &BTreeSet<String>) -> Vec<String> {
    SHARD_METRICS.iter().filter(|m| set.contains(**m)).map(|m| m.to_string()).collect()
}

impl DataStreams {
    /// Enable (`enable`) or DisableEnhancedMonitoring of the named metrics.
    pub fn set_enhanced_monitoring(
        &self,
        sel: StreamSel<'_>,
        metrics: &[String],
        enable: bool,
    ) -> Result<MonitoringChange, DsError> {
        let names = metric_names(metrics)?;
        let _admin = lock(&self.admin);
        let s = self.resolve(sel)?;
        let current = read_lock(&s.state).shard_metrics.clone();
        let desired: BTreeSet<String> = if enable {
            current.union(&names).cloned().collect()
        } else {
            current.difference(&names).cloned().collect()
        };
        store::set_settings(&self.catalog, s.id, None, Some(&ordered(&desired).join(",")))?;
        write_lock(&s.state).shard_metrics = desired.clone();
        Ok(MonitoringChange {
            stream: s.name.to_string(),
            arn: self.stream_arn(s.name.as_str()),
            current: ordered(&current),
            desired: ordered(&desired),
        })
    }

    /// StartStreamEncryption (`key` = the KMS key id) or StopStreamEncryption (`None`). Only
    /// `KMS` is an encryption type to start or stop, as in Kinesis.
    pub fn set_encryption(
        &self,
        sel: StreamSel<'_>,
        encryption_type: &str,
        key_id: &str,
        start: bool,
    ) -> Result<(), DsError> {
        if !matches!(encryption_type, "KMS" | "NONE") {
            return Err(DsError::Validation(format!(
                "1 validation error detected: Value '{encryption_type}' at 'encryptionType' failed to satisfy constraint: Member must satisfy enum value set: [KMS, NONE]"
            )));
        }
        validate::length(key_id, "keyId", 1, 2048)?;
        if encryption_type != "KMS" {
            return Err(DsError::InvalidArgument(format!(
                "Encryption type {encryption_type} is not supported; use KMS."
            )));
        }
        let _admin = lock(&self.admin);
        let s = self.resolve(sel)?;
        self.require_active(&s)?;
        let key = if start { Some(key_id.to_owned()) } else { None };
        store::set_settings(&self.catalog, s.id, Some(key.as_deref()), None)?;
        let mut st = write_lock(&s.state);
        st.encryption_key = key;
        self.updated(&mut st);
        Ok(())
    }

    /// The stream a resource ARN names (a stream, or one of its consumers, which must exist).
    fn policy_target(&self, arn: &str) -> Result<Arc<DataStream>, DsError> {
        validate::length(arn, "resourceARN", 1, 2048)?;
        if arn.contains("/consumer/") {
            return self.find_consumer(None, None, Some(arn)).map(|(s, _)| s);
        }
        self.resolve(StreamSel::arn(arn))
    }

    /// PutResourcePolicy: `policy` must be a JSON document.
    pub fn put_resource_policy(&self, arn: &str, policy: &str) -> Result<(), DsError> {
        if serde_json::from_str::<serde_json::Value>(policy).map_or(true, |v| !v.is_object()) {
            return Err(DsError::InvalidArgument(
                "The policy is not a valid JSON policy document.".to_owned(),
            ));
        }
        let s = self.policy_target(arn)?;
        store::put_policy(&self.catalog, s.id, arn, Some(policy))
    }

    /// GetResourcePolicy: the stored document, or `{}` when none is attached.
    pub fn get_resource_policy(&self, arn: &str) -> Result<String, DsError> {
        self.policy_target(arn)?;
        Ok(store::get_policy(&self.catalog, arn)?.unwrap_or_else(|| "{}".to_owned()))
    }

    /// DeleteResourcePolicy: `ResourceNotFoundException` when none is attached.
    pub fn delete_resource_policy(&self, arn: &str) -> Result<(), DsError> {
        let s = self.policy_target(arn)?;
        if store::get_policy(&self.catalog, arn)?.is_none() {
            return Err(DsError::ResourceNotFound(format!("No resource policy found for {arn}.")));
        }
        store::put_policy(&self.catalog, s.id, arn, None)
    }

    /// Every shard of the streams with enhanced monitoring on, with its counters.
    pub fn monitored_shards(&self) -> Vec<ShardMetrics> {
        let streams: Vec<Arc<DataStream>> =
            read_lock(&self.streams).by_id.values().cloned().collect();
        let mut out = Vec::new();
        for s in streams {
            let st = read_lock(&s.state);
            if st.shard_metrics.is_empty() {
                continue;
            }
            for shard in st.shards.values() {
                let c = &shard.counters;
                let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
                out.push(ShardMetrics {
                    stream: s.name.to_string(),
                    shard: shard.id(),
                    enabled: st.shard_metrics.clone(),
                    incoming_bytes: get(&c.incoming_bytes),
                    incoming_records: get(&c.incoming_records),
                    outgoing_bytes: get(&c.outgoing_bytes),
                    outgoing_records: get(&c.outgoing_records),
                    write_throttled: get(&c.write_throttled),
                    read_throttled: get(&c.read_throttled),
                    iterator_age_ms: c.iterator_age_ms.load(Ordering::Relaxed),
                });
            }
        }
        out.sort_by(|a, b| (&a.stream, a.shard.0).cmp(&(&b.stream, b.shard.0)));
        out
    }
}

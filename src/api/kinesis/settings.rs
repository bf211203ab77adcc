//! The settings operations: Start/StopStreamEncryption, Enable/DisableEnhancedMonitoring,
//! Put/Get/DeleteResourcePolicy (`crate::datastream::settings` has their semantics), warm
//! throughput, the account's settings, and the stream's tags.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::ops::StreamMembers;
use super::{parse, required};
use crate::datastream::validate::Violations;
use crate::datastream::{DataStreams, DsError, StreamSel};

pub(super) fn encryption(ds: &DataStreams, body: &[u8], start: bool) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        encryption_type: Option<String>,
        key_id: Option<String>,
    }
    let r: In = parse(body)?;
    let kind = required(r.encryption_type, "encryptionType")?;
    let key = required(r.key_id, "keyId")?;
    ds.set_encryption(r.stream.sel(), &kind, &key, start)?;
    Ok(json!({}))
}

pub(super) fn monitoring(ds: &DataStreams, body: &[u8], enable: bool) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        shard_level_metrics: Option<Vec<String>>,
    }
    let r: In = parse(body)?;
    let metrics = required(r.shard_level_metrics, "shardLevelMetrics")?;
    let c = ds.set_enhanced_monitoring(r.stream.sel(), &metrics, enable)?;
    Ok(json!({
        "StreamName": c.stream,
        "StreamARN": c.arn,
        "CurrentShardLevelMetrics": c.current,
        "DesiredShardLevelMetrics": c.desired,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyIn {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    policy: Option<String>,
}

pub(super) fn put_policy(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    let r: PolicyIn = parse(body)?;
    let arn = required(r.resource_arn, "resourceARN")?;
    let policy = required(r.policy, "policy")?;
    ds.put_resource_policy(&arn, &policy)?;
    Ok(json!({}))
}

pub(super) fn get_policy(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    let r: PolicyIn = parse(body)?;
    let arn = required(r.resource_arn, "resourceARN")?;
    Ok(json!({ "Policy": ds.get_resource_policy(&arn)? }))
}

pub(super) fn delete_policy(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    let r: PolicyIn = parse(body)?;
    let arn = required(r.resource_arn, "resourceARN")?;
    ds.delete_resource_policy(&arn)?;
    Ok(json!({}))
}

/// The shard-level series of enhanced monitoring, in the Prometheus text format: one family per
/// metric, with a sample per shard of each stream that enabled it.
pub fn shard_metrics_text(ds: &DataStreams) -> String {
    use std::fmt::Write;
    let shards = ds.monitored_shards();
    let mut out = String::new();
    type Get = fn(&crate::datastream::settings::ShardMetrics) -> i128;
    let families: [(&str, &str, &str, &str, Get); 7] = [
        (
            "IncomingBytes",
            "sluice_kinesis_shard_incoming_bytes",
            "counter",
            "Bytes of data and partition keys written to the shard",
            |m| m.incoming_bytes.into(),
        ),
        (
            "IncomingRecords",
            "sluice_kinesis_shard_incoming_records",
            "counter",
            "Records written to the shard",
            |m| m.incoming_records.into(),
        ),
        (
            "OutgoingBytes",
            "sluice_kinesis_shard_outgoing_bytes",
            "counter",
            "Bytes of data and partition keys read from the shard (GetRecords and SubscribeToShard)",
            |m| m.outgoing_bytes.into(),
        ),
        (
            "OutgoingRecords",
            "sluice_kinesis_shard_outgoing_records",
            "counter",
            "Records read from the shard",
            |m| m.outgoing_records.into(),
        ),
        (
            "WriteProvisionedThroughputExceeded",
            "sluice_kinesis_shard_write_throttled_records",
            "counter",
            "Records refused by the shard's write limits",
            |m| m.write_throttled.into(),
        ),
        (
            "ReadProvisionedThroughputExceeded",
            "sluice_kinesis_shard_read_throttled_calls",
            "counter",
            "GetRecords calls refused by the shard's read limits",
            |m| m.read_throttled.into(),
        ),
        (
            "IteratorAgeMilliseconds",
            "sluice_kinesis_shard_iterator_age_milliseconds",
            "gauge",
            "How far behind the shard's newest record its last reader was",
            |m| m.iterator_age_ms.into(),
        ),
    ];
    for (metric, name, kind, help, get) in families {
        let with: Vec<_> = shards.iter().filter(|s| s.enabled.contains(metric)).collect();
        if with.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {name} {help} (enhanced monitoring {metric}).");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let suffix = if kind == "counter" { "_total" } else { "" };
        for s in with {
            let _ = writeln!(
                out,
                "{name}{suffix}{{stream=\"{}\",shard=\"{}\"}} {}",
                s.stream,
                s.shard,
                get(s)
            );
        }
    }
    out
}

pub(super) fn warm_throughput(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        #[serde(rename = "WarmThroughputMiBps")]
        warm_throughput_mibps: Option<i64>,
    }
    let r: In = parse(body)?;
    let mibps = required(r.warm_throughput_mibps, "warmThroughputMiBps")?;
    let (name, arn, w) = ds.update_warm_throughput(r.stream.sel(), mibps)?;
    Ok(json!({ "StreamName": name, "StreamARN": arn, "WarmThroughput": super::ops::warm_json(&w) }))
}

fn commitment_json(c: &crate::datastream::store::CommitmentRow) -> Value {
    let mut v = json!({ "Status": c.status });
    for (member, t) in [
        ("StartedAt", c.started_at),
        ("EndedAt", c.ended_at),
        ("EarliestAllowedEndAt", c.earliest_end_at),
    ] {
        if let Some(t) = t {
            v[member] = json!(t.as_secs_f64());
        }
    }
    json!({ "MinimumThroughputBillingCommitment": v })
}

pub(super) fn describe_account(ds: &DataStreams) -> Result<Value, DsError> {
    Ok(commitment_json(&ds.account_settings()?))
}

pub(super) fn update_account(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Commitment {
        status: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        minimum_throughput_billing_commitment: Option<Commitment>,
    }
    let r: In = parse(body)?;
    let c =
        required(r.minimum_throughput_billing_commitment, "minimumThroughputBillingCommitment")?;
    let status = required(c.status, "minimumThroughputBillingCommitment.status")?;
    Ok(commitment_json(&ds.update_account_settings(&status)?))
}

pub(super) fn add_tags(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        tags: Option<BTreeMap<String, String>>,
    }
    let r: In = parse(body)?;
    ds.add_tags(r.stream.sel(), required(r.tags, "tags")?)?;
    Ok(json!({}))
}

pub(super) fn remove_tags(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        tag_keys: Option<Vec<String>>,
    }
    let r: In = parse(body)?;
    ds.remove_tags(r.stream.sel(), &required(r.tag_keys, "tagKeys")?)?;
    Ok(json!({}))
}

pub(super) fn list_tags(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        exclusive_start_tag_key: Option<String>,
        limit: Option<i64>,
    }
    let r: In = parse(body)?;
    let mut v = Violations::default();
    v.length("exclusiveStartTagKey", r.exclusive_start_tag_key.as_deref(), false, (1, 128));
    v.range("limit", r.limit, false, (1, 50));
    r.stream.check(&mut v);
    v.finish()?;
    let (tags, more) =
        ds.list_tags(r.stream.sel(), r.exclusive_start_tag_key.as_deref(), r.limit)?;
    Ok(json!({
        "Tags": tags.iter().map(|(k, v)| json!({ "Key": k, "Value": v })).collect::<Vec<_>>(),
        "HasMoreTags": more,
    }))
}

/// The stream of a `ResourceARN` for the ARN-based tag operations: stream ARNs only (Sluice keeps
/// tags on streams; a consumer ARN is `InvalidArgumentException`).
fn tagged_stream(arn: &str) -> Result<(), DsError> {
    crate::datastream::validate::length(arn, "resourceARN", 1, 2048)?;
    if arn.contains("/consumer/") {
        return Err(DsError::InvalidArgument(format!(
            "{arn} is a consumer ARN: Sluice keeps tags on streams only; tag the stream."
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResourceTagsIn {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    tag_keys: Option<Vec<String>>,
}

/// TagResource: AddTagsToStream by the stream's ARN.
pub(super) fn tag_resource(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    let r: ResourceTagsIn = parse(body)?;
    let arn = required(r.resource_arn, "resourceARN")?;
    let tags = required(r.tags, "tags")?;
    tagged_stream(&arn)?;
    ds.add_tags(StreamSel::arn(&arn), tags)?;
    Ok(json!({}))
}

/// UntagResource: RemoveTagsFromStream by the stream's ARN.
pub(super) fn untag_resource(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    let r: ResourceTagsIn = parse(body)?;
    let arn = required(r.resource_arn, "resourceARN")?;
    let keys = required(r.tag_keys, "tagKeys")?;
    tagged_stream(&arn)?;
    ds.remove_tags(StreamSel::arn(&arn), &keys)?;
    Ok(json!({}))
}

/// ListTagsForResource: every tag of the stream the ARN names, as `[{Key, Value}]`.
pub(super) fn list_tags_for_resource(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    let r: ResourceTagsIn = parse(body)?;
    let arn = required(r.resource_arn, "resourceARN")?;
    tagged_stream(&arn)?;
    let (tags, _) = ds.list_tags(StreamSel::arn(&arn), None, None)?;
    Ok(json!({
        "Tags": tags.iter().map(|(k, v)| json!({ "Key": k, "Value": v })).collect::<Vec<_>>(),
    }))
}

//! The consumer operations (enhanced fan-out): Register/Deregister/Describe/ListStreamConsumer(s).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{parse, required};
use crate::datastream::validate::Violations;
use crate::datastream::{ConsumerDescription, DataStreams, DsError};

pub(super) fn consumer_json(c: &ConsumerDescription) -> Value {
    json!({
        "ConsumerName": c.name,
        "ConsumerARN": c.arn,
        "ConsumerStatus": c.status,
        "ConsumerCreationTimestamp": c.created_at.as_secs_f64(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConsumerMembers {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    consumer_name: Option<String>,
    #[serde(rename = "ConsumerARN")]
    consumer_arn: Option<String>,
}

pub(super) fn register_consumer(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    let r: ConsumerMembers = parse(body)?;
    let mut v = Violations::default();
    v.length("streamARN", r.stream_arn.as_deref(), true, (1, 2048));
    v.name("consumerName", r.consumer_name.as_deref(), true, 128);
    v.finish()?;
    let arn = required(r.stream_arn, "streamARN")?;
    let name = required(r.consumer_name, "consumerName")?;
    let c = ds.register_consumer(&arn, &name)?;
    Ok(json!({ "Consumer": consumer_json(&c) }))
}

pub(super) fn deregister_consumer(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    let r: ConsumerMembers = parse(body)?;
    ds.deregister_consumer(
        r.stream_arn.as_deref(),
        r.consumer_name.as_deref(),
        r.consumer_arn.as_deref(),
    )?;
    Ok(json!({}))
}

pub(super) fn describe_consumer(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    let r: ConsumerMembers = parse(body)?;
    let c = ds.describe_consumer(
        r.stream_arn.as_deref(),
        r.consumer_name.as_deref(),
        r.consumer_arn.as_deref(),
    )?;
    let mut v = consumer_json(&c);
    v["StreamARN"] = json!(c.stream_arn);
    Ok(json!({ "ConsumerDescription": v }))
}

pub(super) fn list_consumers(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(rename = "StreamARN")]
        stream_arn: Option<String>,
        next_token: Option<String>,
        max_results: Option<i64>,
        #[serde(rename = "StreamCreationTimestamp")]
        _stream_creation_timestamp: Option<f64>,
    }
    let r: In = parse(body)?;
    let arn = required(r.stream_arn, "streamARN")?;
    let (consumers, token) = ds.list_consumers(&arn, r.next_token.as_deref(), r.max_results)?;
    let mut v = json!({ "Consumers": consumers.iter().map(consumer_json).collect::<Vec<_>>() });
    if let Some(t) = token {
        v["NextToken"] = json!(t);
    }
    Ok(v)
}

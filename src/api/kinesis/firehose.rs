//! The Amazon Data Firehose API (`X-Amz-Target: Firehose_20150804.<Operation>`) on the Kinesis
//! wire (`POST /`, JSON 1.1 or CBOR, the same errors), signed as service `firehose` when auth is
//! on. One function per operation, from the request's members to `crate::firehose`.
//!
//! Grants: `admin` on the delivery stream's name to create, delete, update, tag and set
//! encryption (and `read` on a Kinesis source's stream to read it); `publish` to put records;
//! `read` to describe and list tags; ListDeliveryStreams shows the streams the key may see.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Value, json};

use super::{Outcome, Reply};
use crate::api::ApiState;
use crate::auth::Identity;
use crate::config::Action;
use crate::datastream::DsError;
use crate::datastream::validate::Violations;
use crate::firehose::spec::{self, DeliveryConfig, Source, structure};

/// The `X-Amz-Target` prefix of Firehose operations.
pub const TARGET_PREFIX: &str = "Firehose_20150804.";

fn string<'v>(body: &'v Value, member: &str) -> Result<Option<&'v str>, DsError> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(spec::serialization(member, "String")),
    }
}

fn integer(body: &Value, member: &str) -> Result<Option<i64>, DsError> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| spec::serialization(member, "Integer")),
    }
}

fn list<'v>(body: &'v Value, member: &str) -> Result<&'v [Value], DsError> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(spec::serialization(member, "List")),
    }
}

fn denied(who: &Identity, op: &str, name: &str) -> DsError {
    DsError::AccessDenied(format!(
        "User: {} is not authorized to perform: firehose:{op} on resource deliverystream/{name}",
        who.name()
    ))
}

/// The delivery stream name a request names (validated), after `who`'s grant for `action` on it.
fn named<'v>(
    state: &ApiState,
    who: &Identity,
    op: &str,
    body: &'v Value,
    action: Action,
) -> Result<&'v str, DsError> {
    let name = string(body, "DeliveryStreamName")?;
    let mut v = Violations::default();
    v.name("deliveryStreamName", name, true, spec::MAX_NAME_LEN);
    v.finish()?;
    let name = name.unwrap_or_default();
    if !state.auth.allows(who, action, Some(name)) {
        return Err(denied(who, op, name));
    }
    Ok(name)
}

/// `[{Key, Value}]` tags (1–128 / 0–256 characters each, at most 50).
fn tags(body: &Value, member: &str) -> Result<BTreeMap<String, String>, DsError> {
    let mut out = BTreeMap::new();
    let list = list(body, member)?;
    if list.len() > 50 {
        return Err(DsError::Validation(format!(
            "1 validation error detected: Value '[…]' at '{}' failed to satisfy constraint: Member must have length less than or equal to 50",
            member.to_ascii_lowercase()
        )));
    }
    for t in list {
        let (k, v) = (string(t, "Key")?, string(t, "Value")?);
        let mut check = Violations::default();
        check.length("tags.member.key", k, true, (1, 128));
        check.length("tags.member.value", v, false, (0, 256));
        check.finish()?;
        out.insert(k.unwrap_or_default().to_owned(), v.unwrap_or_default().to_owned());
    }
    Ok(out)
}

/// Runs a Firehose operation for `who`.
pub async fn run(state: &ApiState, who: &Identity, op: &str, raw: &[u8]) -> Outcome {
    let raw = if raw.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { raw };
    let body: Value = serde_json::from_slice(raw).map_err(|e| {
        DsError::Serialization(format!("Start of structure or map found where not expected: {e}"))
    })?;
    if !body.is_object() {
        return Err(DsError::Serialization("The request body must be a JSON object.".into()).into());
    }
    let fh = &state.firehose;
    let value = match op {
        "CreateDeliveryStream" => create(state, who, &body).await?,
        "DescribeDeliveryStream" => {
            let name = named(state, who, op, &body, Action::Read)?;
            json!({ "DeliveryStreamDescription": fh.describe(name)? })
        }
        "ListDeliveryStreams" => {
            let limit = integer(&body, "Limit")?;
            let kind = string(&body, "DeliveryStreamType")?;
            let after = string(&body, "ExclusiveStartDeliveryStreamName")?;
            let mut v = Violations::default();
            v.range("limit", limit, false, (1, 10_000));
            check_type(&mut v, kind);
            v.finish()?;
            let limit = limit.unwrap_or(10) as usize;
            let mut names: Vec<String> = fh
                .names()
                .into_iter()
                .filter(|(n, t)| {
                    kind.is_none_or(|k| k == *t) && after.is_none_or(|a| n.as_str() > a)
                })
                .filter(|(n, _)| state.auth.sees(who, n))
                .map(|(n, _)| n)
                .collect();
            let more = names.len() > limit;
            names.truncate(limit);
            json!({ "DeliveryStreamNames": names, "HasMoreDeliveryStreams": more })
        }
        "DeleteDeliveryStream" => {
            let name = named(state, who, op, &body, Action::Admin)?;
            fh.delete(name).await?;
            json!({})
        }
        "PutRecord" => {
            let name = named(state, who, op, &body, Action::Publish)?;
            let record = structure(&body, "Record")?
                .ok_or_else(|| DsError::Validation("1 validation error detected: Value null at 'record' failed to satisfy constraint: Member must not be null".into()))?;
            let data = data_of(record, "record.data")?;
            let mut ids = fh.put(name, vec![data]).await?;
            let id = ids.pop().ok_or_else(|| DsError::Internal("no record id".into()))??;
            json!({ "RecordId": id, "Encrypted": false })
        }
        "PutRecordBatch" => {
            let name = named(state, who, op, &body, Action::Publish)?;
            let records = list(&body, "Records")?;
            if records.is_empty() || records.len() > spec::MAX_BATCH_RECORDS {
                return Err(DsError::Validation(format!(
                    "1 validation error detected: Value '{}' at 'records' failed to satisfy constraint: Member must have length {}",
                    records.len(),
                    if records.is_empty() { "greater than or equal to 1" } else { "less than or equal to 500" }
                ))
                .into());
            }
            let mut data = Vec::with_capacity(records.len());
            for (i, r) in records.iter().enumerate() {
                data.push(data_of(r, &format!("records.{}.member.data", i + 1))?);
            }
            let total: usize = data.iter().map(Bytes::len).sum();
            if total > spec::MAX_BATCH_BYTES {
                return Err(DsError::InvalidArgument(format!(
                    "Records size exceeds 4 MB limit: the batch holds {total} bytes of data."
                ))
                .into());
            }
            let results = fh.put(name, data).await?;
            let failed = results.iter().filter(|r| r.is_err()).count();
            let responses: Vec<Value> = results
                .into_iter()
                .map(|r| match r {
                    Ok(id) => json!({ "RecordId": id }),
                    Err(e) => json!({ "ErrorCode": e.type_name(), "ErrorMessage": e.message() }),
                })
                .collect();
            json!({ "FailedPutCount": failed, "Encrypted": false, "RequestResponses": responses })
        }
        "UpdateDestination" => {
            let name = named(state, who, op, &body, Action::Admin)?;
            let version = string(&body, "CurrentDeliveryStreamVersionId")?;
            let destination = string(&body, "DestinationId")?;
            let mut v = Violations::default();
            v.length("currentDeliveryStreamVersionId", version, true, (1, 50));
            v.length("destinationId", destination, true, (1, 100));
            v.finish()?;
            let (member, update) = match (
                structure(&body, "ExtendedS3DestinationUpdate")?,
                structure(&body, "S3DestinationUpdate")?,
                structure(&body, "HttpEndpointDestinationUpdate")?,
            ) {
                (Some(u), _, _) => ("ExtendedS3DestinationUpdate", u),
                (None, Some(u), _) => ("S3DestinationUpdate", u),
                (None, None, Some(u)) => ("HttpEndpointDestinationUpdate", u),
                (None, None, None) => {
                    return Err(DsError::InvalidArgument(
                        "UpdateDestination needs ExtendedS3DestinationUpdate, S3DestinationUpdate or HttpEndpointDestinationUpdate (the destinations Sluice delivers to)."
                            .into(),
                    )
                    .into());
                }
            };
            check_outbound(state, update).await?;
            let (version, destination) =
                (version.unwrap_or_default(), destination.unwrap_or_default());
            fh.update_destination(name, version, destination, update, member).await?;
            json!({})
        }
        "TagDeliveryStream" => {
            let name = named(state, who, op, &body, Action::Admin)?;
            let t = tags(&body, "Tags")?;
            if t.is_empty() {
                return Err(DsError::Validation("1 validation error detected: Value '[]' at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1".into()).into());
            }
            fh.tag(name, t).await?;
            json!({})
        }
        "UntagDeliveryStream" => {
            let name = named(state, who, op, &body, Action::Admin)?;
            let keys: Vec<String> = list(&body, "TagKeys")?
                .iter()
                .map(|k| {
                    k.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| spec::serialization("TagKeys", "String"))
                })
                .collect::<Result<_, _>>()?;
            if keys.is_empty() || keys.len() > 50 {
                return Err(DsError::Validation("1 validation error detected: Value at 'tagKeys' failed to satisfy constraint: Member must have length between 1 and 50".into()).into());
            }
            fh.untag(name, keys).await?;
            json!({})
        }
        "ListTagsForDeliveryStream" => {
            let name = named(state, who, op, &body, Action::Read)?;
            let limit = integer(&body, "Limit")?.unwrap_or(50).clamp(1, 50) as usize;
            let after = string(&body, "ExclusiveStartTagKey")?;
            let all = fh.tags(name)?;
            let rest: Vec<(String, String)> =
                all.into_iter().filter(|(k, _)| after.is_none_or(|a| k.as_str() > a)).collect();
            let more = rest.len() > limit;
            let tags: Vec<Value> = rest
                .into_iter()
                .take(limit)
                .map(|(k, v)| json!({ "Key": k, "Value": v }))
                .collect();
            json!({ "Tags": tags, "HasMoreTags": more })
        }
        "StartDeliveryStreamEncryption" => {
            let name = named(state, who, op, &body, Action::Admin)?;
            let kind = match structure(&body, "DeliveryStreamEncryptionConfigurationInput")? {
                Some(c) => string(c, "KeyType")?.unwrap_or("AWS_OWNED_CMK").to_owned(),
                None => "AWS_OWNED_CMK".to_owned(),
            };
            fh.encryption(name, Some(kind)).await?;
            json!({})
        }
        "StopDeliveryStreamEncryption" => {
            let name = named(state, who, op, &body, Action::Admin)?;
            fh.encryption(name, None).await?;
            json!({})
        }
        other => {
            return Err(super::unknown_operation(Some(&format!("{TARGET_PREFIX}{other}"))));
        }
    };
    Ok(Reply::Value(value))
}

/// `DeliveryStreamType`: one of the model's values.
fn check_type(v: &mut Violations, kind: Option<&str>) {
    v.one_of(
        "deliveryStreamType",
        kind,
        false,
        &["DirectPut", "KinesisStreamAsSource", "MSKAsSource", "DatabaseAsSource"],
        "DirectPut, KinesisStreamAsSource, MSKAsSource, DatabaseAsSource",
    );
}

/// A record's `Data`: base64, at most 1,000 KiB decoded.
fn data_of(record: &Value, member: &str) -> Result<Bytes, DsError> {
    let text = match record.get("Data") {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => {
            return Err(DsError::Validation(format!(
                "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
            )));
        }
        Some(_) => return Err(spec::serialization("Data", "Blob")),
    };
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| DsError::Serialization(format!("Base64 decoding of {member} failed.")))?;
    if bytes.len() > spec::MAX_RECORD_BYTES {
        return Err(DsError::Validation(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must have length less than or equal to {}",
            spec::MAX_RECORD_BYTES
        )));
    }
    Ok(Bytes::from(bytes))
}

/// The outbound policy over the URLs a destination configuration or update points Sluice at:
/// transforms (`LambdaArn`) and an HTTP endpoint's `Url`.
async fn check_outbound(state: &ApiState, c: &Value) -> Result<(), DsError> {
    for url in crate::firehose::process::transform_urls(c) {
        state
            .check_webhook("ProcessingConfiguration.Processors.Lambda.LambdaArn", &url)
            .await
            .map_err(DsError::from)?;
    }
    if let Some(url) =
        c.get("EndpointConfiguration").and_then(|e| e.get("Url")).and_then(Value::as_str)
    {
        state.check_webhook("EndpointConfiguration.Url", url).await.map_err(DsError::from)?;
    }
    Ok(())
}

/// CreateDeliveryStream (also the native `POST /v1/delivery-streams`).
pub(crate) async fn create(
    state: &ApiState,
    who: &Identity,
    body: &Value,
) -> Result<Value, DsError> {
    let name = named(state, who, "CreateDeliveryStream", body, Action::Admin)?;
    let kind = string(body, "DeliveryStreamType")?;
    let mut v = Violations::default();
    check_type(&mut v, kind);
    v.finish()?;
    let source = match kind.unwrap_or("DirectPut") {
        "DirectPut" => {
            if body.get("KinesisStreamSourceConfiguration").is_some_and(|v| !v.is_null()) {
                return Err(DsError::InvalidArgument(
                    "KinesisStreamSourceConfiguration is only for DeliveryStreamType KinesisStreamAsSource.".into(),
                ));
            }
            Source::DirectPut
        }
        "KinesisStreamAsSource" => {
            let c = structure(body, "KinesisStreamSourceConfiguration")?.ok_or_else(|| {
                DsError::InvalidArgument(
                    "KinesisStreamSourceConfiguration is required for DeliveryStreamType KinesisStreamAsSource.".into(),
                )
            })?;
            let (arn, role) = (string(c, "KinesisStreamARN")?, string(c, "RoleARN")?);
            let mut v = Violations::default();
            v.length("kinesisStreamSourceConfiguration.kinesisStreamARN", arn, true, (1, 512));
            v.length("kinesisStreamSourceConfiguration.roleARN", role, true, (1, 512));
            v.finish()?;
            let arn = arn.unwrap_or_default();
            let stream = arn
                .split_once(":stream/")
                .map(|(_, s)| s.to_owned())
                .filter(|s| state.data.stream_arn(s) == arn)
                .ok_or_else(|| {
                    DsError::InvalidArgument(format!("Kinesis stream {arn} does not exist."))
                })?;
            if !state.auth.allows(who, Action::Read, Some(&stream)) {
                return Err(denied(who, "CreateDeliveryStream", &stream));
            }
            Source::KinesisStream {
                stream,
                arn: arn.to_owned(),
                role_arn: role.unwrap_or_default().to_owned(),
            }
        }
        other => {
            return Err(DsError::InvalidArgument(format!(
                "DeliveryStreamType {other} is not supported by Sluice (DirectPut and KinesisStreamAsSource are)."
            )));
        }
    };
    for c in [
        "ExtendedS3DestinationConfiguration",
        "S3DestinationConfiguration",
        "HttpEndpointDestinationConfiguration",
    ] {
        if let Some(c) = structure(body, c)? {
            check_outbound(state, c).await?;
        }
    }
    let mut http = None;
    let destination = match (
        structure(body, "ExtendedS3DestinationConfiguration")?,
        structure(body, "S3DestinationConfiguration")?,
        structure(body, "HttpEndpointDestinationConfiguration")?,
    ) {
        (Some(c), _, _) => spec::s3_destination(c, "ExtendedS3DestinationConfiguration")?,
        (None, Some(c), _) => spec::s3_destination(c, "S3DestinationConfiguration")?,
        (None, None, Some(c)) => {
            let sealer = state.auth.sealer();
            let (h, backup) = crate::firehose::http_spec::http_destination(c, &|k| sealer.seal(k))?;
            state
                .check_webhook(
                    "HttpEndpointDestinationConfiguration.EndpointConfiguration.Url",
                    &h.url,
                )
                .await
                .map_err(DsError::from)?;
            http = Some(h);
            backup
        }
        (None, None, None) => {
            let other = [
                "RedshiftDestinationConfiguration",
                "ElasticsearchDestinationConfiguration",
                "AmazonopensearchserviceDestinationConfiguration",
                "SplunkDestinationConfiguration",
                "SnowflakeDestinationConfiguration",
                "IcebergDestinationConfiguration",
            ]
            .into_iter()
            .find(|m| body.get(*m).is_some_and(|v| !v.is_null()));
            return Err(DsError::InvalidArgument(match other {
                Some(m) => format!(
                    "{m} is not supported by Sluice yet: deliver to ExtendedS3DestinationConfiguration."
                ),
                None => {
                    "A destination configuration is required (ExtendedS3DestinationConfiguration)."
                        .into()
                }
            }));
        }
    };
    let encryption = match structure(body, "DeliveryStreamEncryptionConfigurationInput")? {
        Some(c) => Some(string(c, "KeyType")?.unwrap_or("AWS_OWNED_CMK").to_owned()),
        None => None,
    };
    let tags = tags(body, "Tags")?;
    let arn = state
        .firehose
        .create(name, DeliveryConfig { source, destination, http, encryption }, tags)
        .await?;
    Ok(json!({ "DeliveryStreamARN": arn }))
}

//! The KVS control-plane operations over Sluice's video streams: one function per operation,
//! from the request's JSON members to the answer's.
//!
//! Mapping: a KVS stream is a Sluice video stream of the same name. `DataRetentionInHours` is
//! the stream's `retentionHours`, except that KVS's 0 ("no retention", its default) cannot be
//! had: Sluice always keeps an archive, so 0 gives the server's default retention and a stream
//! with no age limit (Sluice's 0) shows as 87,600 hours, KVS's longest. `Version` is the
//! stream's version, bumped by every change; `CurrentVersion` must match it (else
//! `VersionMismatchException`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::KvsError;
use crate::api::ApiState;
use crate::auth::Identity;
use crate::config::Action;
use crate::datastream::DsError;
use crate::datastream::validate::Violations;
use crate::name::StreamName;
use crate::services::StreamChange;
use crate::video::{NewStream, StreamUpdate, VideoStream};

/// KVS's longest retention, in hours (ten years): what a stream with no age limit shows.
const KVS_MAX_RETENTION_HOURS: i64 = 87_600;
/// Tags per stream.
const MAX_TAGS: usize = 50;

/// What an operation runs with.
pub struct Ctx<'a> {
    pub state: &'a ApiState,
    pub who: &'a Identity,
    pub headers: &'a HeaderMap,
}

pub async fn run(ctx: &Ctx<'_>, op: &str, body: &Value) -> Result<Value, KvsError> {
    match op {
        "CreateStream" => create_stream(ctx, body).await,
        "DescribeStream" => describe_stream(ctx, body),
        "ListStreams" => list_streams(ctx, body),
        "UpdateStream" => update_stream(ctx, body).await,
        "DeleteStream" => delete_stream(ctx, body).await,
        "UpdateDataRetention" => update_data_retention(ctx, body).await,
        "GetDataEndpoint" => get_data_endpoint(ctx, body),
        "TagStream" => tag_stream(ctx, body).await,
        "UntagStream" => untag_stream(ctx, body).await,
        "ListTagsForStream" => list_tags_for_stream(ctx, body),
        "TagResource" => tag_resource(ctx, body).await,
        "UntagResource" => untag_resource(ctx, body).await,
        "ListTagsForResource" => list_tags_for_resource(ctx, body),
        "UpdateImageGenerationConfiguration" => super::imagegen::update(ctx, body).await,
        "DescribeImageGenerationConfiguration" => super::imagegen::describe(ctx, body),
        "UpdateNotificationConfiguration" => super::notification::update(ctx, body).await,
        "DescribeNotificationConfiguration" => super::notification::describe(ctx, body),
        "ListFragments" => super::archived::list_fragments(ctx, body).await,
        "GetHLSStreamingSessionURL" => super::archived::get_hls_streaming_session_url(ctx, body),
        "GetDASHStreamingSessionURL" => super::archived::get_dash_streaming_session_url(ctx, body),
        "GetImages" => super::archived::get_images(ctx, body).await,
        other => Err(KvsError::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            format!("Unknown operation {other}"),
        )),
    }
}

// ---- members ----------------------------------------------------------------------------------

/// A string member, `SerializationException` if present with another JSON type.
pub(super) fn string<'v>(body: &'v Value, member: &str) -> Result<Option<&'v str>, KvsError> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(serialization(member, "String")),
    }
}

pub(super) fn integer(body: &Value, member: &str) -> Result<Option<i64>, KvsError> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| serialization(member, "Integer")),
    }
}

/// A structure member (`None` when absent or null), `SerializationException` for another type.
pub(super) fn structure<'v>(body: &'v Value, member: &str) -> Result<Option<&'v Value>, KvsError> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(_) => Err(serialization(member, "Structure")),
    }
}

pub(super) fn serialization(member: &str, kind: &str) -> KvsError {
    KvsError::new(
        StatusCode::BAD_REQUEST,
        "SerializationException",
        format!("{member} must be of type {kind}"),
    )
}

/// A `ResourceTags` map member (string keys and values).
fn tag_map(body: &Value, member: &str) -> Result<Option<BTreeMap<String, String>>, KvsError> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(serialization(&format!("{member}.{k}"), "String")),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(serialization(member, "Map")),
    }
}

/// A list of strings member.
fn strings(body: &Value, member: &str) -> Result<Option<Vec<String>>, KvsError> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| serialization(member, "List")))
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(serialization(member, "List")),
    }
}

/// The schema violations, as `InvalidArgumentException` with AWS's validation wording.
pub(super) fn finish(v: Violations) -> Result<(), KvsError> {
    v.finish().map_err(|e| match e {
        DsError::Validation(m) => KvsError::invalid(m),
        other => KvsError::invalid(other.to_string()),
    })
}

fn name_pattern_ok(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `[\w\-\.\+]+/[\w\-\.\+]+(,[\w\-\.\+]+/[\w\-\.\+]+)*`
fn media_type_ok(s: &str) -> bool {
    let word = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
    };
    s.split(',').all(|t| t.split_once('/').is_some_and(|(a, b)| word(a) && word(b)))
}

fn check_name(v: &mut Violations, member: &str, value: Option<&str>, required: bool, max: usize) {
    match value {
        None if required => v.null(member),
        None => {}
        Some(s) => {
            if !name_pattern_ok(s) {
                v.push(
                    s,
                    member,
                    "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
                );
            }
            if s.is_empty() {
                v.push(s, member, "Member must have length greater than or equal to 1");
            }
            if s.chars().count() > max {
                v.push(s, member, &format!("Member must have length less than or equal to {max}"));
            }
        }
    }
}

fn check_tags(v: &mut Violations, member: &str, tags: &BTreeMap<String, String>) {
    let tag_char = |c: char| {
        c.is_alphanumeric()
            || c.is_whitespace()
            || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
    };
    for (k, val) in tags {
        if k.is_empty() || k.chars().count() > 128 || !k.chars().all(tag_char) {
            v.push(k, &format!("{member}.key"), "Member must have length between 1 and 128 and satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$");
        }
        if val.chars().count() > 256 || !val.chars().all(tag_char) {
            v.push(val, &format!("{member}.value"), "Member must have length less than or equal to 256 and satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*");
        }
    }
    if tags.is_empty() || tags.len() > MAX_TAGS {
        v.push(
            &format!("{} tags", tags.len()),
            member,
            &format!("Member must have between 1 and {MAX_TAGS} entries"),
        );
    }
}

fn check_version(v: &mut Violations, value: Option<&str>, required: bool) {
    match value {
        None if required => v.null("currentVersion"),
        Some(s)
            if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            v.push(
                s,
                "currentVersion",
                "Member must satisfy regular expression pattern: [a-zA-Z0-9]+",
            );
        }
        _ => {}
    }
}

/// `CurrentVersion` as the stream's version number: a version Sluice never issued is simply a
/// mismatch.
fn version_of(s: Option<&str>) -> Option<i64> {
    s.map(|s| s.parse::<i64>().unwrap_or(-1))
}

// ---- streams, ARNs and grants -----------------------------------------------------------------

impl Ctx<'_> {
    /// `arn:aws:kinesisvideo:<region>:<account>:stream/<name>/<creation epoch ms>`.
    fn arn(&self, s: &VideoStream) -> String {
        crate::notify::stream_arn(&self.state.config.data_streams, s)
    }

    /// The stream a request names by `StreamName` and/or `StreamARN` (they must agree).
    pub(super) fn stream(
        &self,
        body: &Value,
        arn_member: &str,
    ) -> Result<Arc<VideoStream>, KvsError> {
        let name = string(body, "StreamName")?;
        let arn = string(body, arn_member)?;
        let mut v = Violations::default();
        check_name(&mut v, "streamName", name, false, 256);
        if let Some(a) = arn {
            check_arn(&mut v, &lower_first(arn_member), a);
        }
        finish(v)?;
        self.resolve(name, arn)
    }

    fn resolve(&self, name: Option<&str>, arn: Option<&str>) -> Result<Arc<VideoStream>, KvsError> {
        let from_arn = match arn {
            Some(a) => Some(self.parse_arn(a)?),
            None => None,
        };
        let (name, created_ms) = match (name, from_arn) {
            (Some(n), Some((an, _))) if n != an => {
                return Err(KvsError::invalid(format!(
                    "StreamName {n} and StreamARN {} name different streams.",
                    arn.unwrap_or_default()
                )));
            }
            (_, Some((an, ms))) => (an, Some(ms)),
            (Some(n), None) => (n.to_owned(), None),
            (None, None) => {
                return Err(KvsError::invalid("Either StreamName or StreamARN must be provided."));
            }
        };
        let not_found = || {
            KvsError::not_found(format!("The requested stream {name} is not found or not active."))
        };
        let key = StreamName::new(name.clone()).map_err(|_| not_found())?;
        let s = self.state.video.get(&key).map_err(|_| not_found())?;
        // A re-created stream of the same name is another stream: its ARN differs.
        if created_ms.is_some_and(|ms| ms != s.row().created_at.as_millis()) {
            return Err(not_found());
        }
        Ok(s)
    }

    /// (name, creation ms) of a KVS stream ARN in this server's region and account.
    fn parse_arn(&self, arn: &str) -> Result<(String, i64), KvsError> {
        let c = &self.state.config.data_streams;
        let bad = || {
            KvsError::not_found(format!("The requested stream {arn} is not found or not active."))
        };
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, _, _, region, account, rest] = parts.as_slice() else { return Err(bad()) };
        if *region != c.region || *account != c.account_id {
            return Err(bad());
        }
        let rest = rest.strip_prefix("stream/").ok_or_else(bad)?;
        let (name, ms) = rest.rsplit_once('/').ok_or_else(bad)?;
        Ok((name.to_owned(), ms.parse().map_err(|_| bad())?))
    }

    /// `NotAuthorizedException` unless the caller may do `action` on `stream`.
    pub(super) fn allow(&self, op: &str, action: Action, stream: &str) -> Result<(), KvsError> {
        if self.state.auth.allows(self.who, action, Some(stream)) {
            return Ok(());
        }
        Err(self.denied(op, stream))
    }

    /// Any grant on `stream` (describe, endpoints).
    fn see(&self, op: &str, stream: &str) -> Result<(), KvsError> {
        if self.state.auth.sees(self.who, stream) {
            return Ok(());
        }
        Err(self.denied(op, stream))
    }

    fn denied(&self, op: &str, stream: &str) -> KvsError {
        KvsError::new(
            StatusCode::UNAUTHORIZED,
            "NotAuthorizedException",
            format!(
                "User: {} is not authorized to perform: kinesisvideo:{op} on resource stream/{stream}",
                self.who.name()
            ),
        )
    }

    fn info(&self, s: &VideoStream) -> Value {
        let row = s.row();
        let mut v = json!({
            "StreamName": s.name.to_string(),
            "StreamARN": self.arn(s),
            "Version": row.version.to_string(),
            "Status": "ACTIVE",
            "CreationTime": row.created_at.as_secs_f64(),
            "DataRetentionInHours": kvs_hours(row.retention_hours),
        });
        if let Some(m) = &row.media_type {
            v["MediaType"] = json!(m);
        }
        if let Some(d) = &row.device_name {
            v["DeviceName"] = json!(d);
        }
        if let Some(k) = &row.kms_key_id {
            v["KmsKeyId"] = json!(k);
        }
        v
    }

    async fn change(
        &self,
        s: &VideoStream,
        update: StreamUpdate,
    ) -> Result<Arc<VideoStream>, KvsError> {
        let change = StreamChange { update, ..Default::default() };
        Ok(self.state.update_stream(&s.name, change, self.who.name()).await?)
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_ascii_lowercase()).into_iter().chain(c).collect()
}

/// `arn:[a-z\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+`, 1–1024.
fn check_arn(v: &mut Violations, member: &str, arn: &str) {
    let ok = (1..=1024).contains(&arn.len())
        && {
            let p: Vec<&str> = arn.splitn(6, ':').collect();
            matches!(p.as_slice(), [a, part, svc, region, account, rest]
            if *a == "arn"
                && !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && *svc == "kinesisvideo"
                && !region.is_empty() && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !account.is_empty() && account.bytes().all(|b| b.is_ascii_digit())
                && {
                    let r: Vec<&str> = rest.split('/').collect();
                    r.len() == 3
                        && !r[0].is_empty() && r[0].bytes().all(|b| b.is_ascii_lowercase())
                        && name_pattern_ok(r[1])
                        && !r[2].is_empty() && r[2].bytes().all(|b| b.is_ascii_digit())
                })
        };
    if !ok {
        v.push(arn, member, "Member must satisfy regular expression pattern: arn:[a-z\\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+");
    }
}

/// Sluice's retention as KVS shows it (no age limit: KVS's longest).
fn kvs_hours(sluice: u32) -> i64 {
    if sluice == 0 { KVS_MAX_RETENTION_HOURS } else { i64::from(sluice) }
}

// ---- operations -------------------------------------------------------------------------------

async fn create_stream(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let device = string(body, "DeviceName")?;
    let name = string(body, "StreamName")?;
    let media_type = string(body, "MediaType")?;
    let kms = string(body, "KmsKeyId")?;
    let hours = integer(body, "DataRetentionInHours")?;
    let tags = tag_map(body, "Tags")?;
    let mut v = Violations::default();
    check_name(&mut v, "deviceName", device, false, 128);
    check_name(&mut v, "streamName", name, true, 256);
    if let Some(m) = media_type
        && !(1..=128).contains(&m.len()) | !media_type_ok(m)
    {
        v.push(m, "mediaType", "Member must satisfy regular expression pattern: [\\w\\-\\.\\+]+/[\\w\\-\\.\\+]+(,[\\w\\-\\.\\+]+/[\\w\\-\\.\\+]+)*");
    }
    if let Some(k) = kms
        && !(1..=2048).contains(&k.len())
    {
        v.push(k, "kmsKeyId", "Member must have length between 1 and 2048");
    }
    v.range("dataRetentionInHours", hours, false, (0, KVS_MAX_RETENTION_HOURS));
    if let Some(t) = &tags {
        check_tags(&mut v, "tags", t);
    }
    finish(v)?;
    let name = name.unwrap_or_default();
    ctx.allow("CreateStream", Action::Admin, name)?;
    let req = NewStream {
        name: StreamName::new(name).map_err(|e| KvsError::invalid(e.to_string()))?,
        // KVS's 0 (no retention) is the server's default here (see the module docs).
        retention_hours: hours.filter(|h| *h > 0).map(|h| h as u32),
        retention_bytes: None,
        media_type: media_type.map(str::to_owned),
        tags: tags.unwrap_or_default(),
        device_name: device.map(str::to_owned),
        kms_key_id: kms.map(str::to_owned),
    };
    let s = ctx.state.create_stream(req, ctx.who.name()).await.map_err(|e| {
        let e = KvsError::from(e);
        if e.kind == "ResourceInUseException" {
            KvsError::new(e.status, e.kind, format!("The stream {name} already exists."))
        } else {
            e
        }
    })?;
    Ok(json!({ "StreamARN": ctx.arn(&s) }))
}

fn describe_stream(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let s = ctx.stream(body, "StreamARN")?;
    ctx.see("DescribeStream", s.name.as_str())?;
    Ok(json!({ "StreamInfo": ctx.info(&s) }))
}

fn list_streams(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let max = integer(body, "MaxResults")?;
    let token = string(body, "NextToken")?;
    let cond = match body.get("StreamNameCondition") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => Some(c.clone()),
        Some(_) => return Err(serialization("StreamNameCondition", "Structure")),
    };
    let mut v = Violations::default();
    v.range("maxResults", max, false, (1, 10_000));
    if let Some(t) = token
        && (t.len() > 1024
            || !t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')))
    {
        v.push(t, "nextToken", "Member must satisfy regular expression pattern: [a-zA-Z0-9+/=]*");
    }
    let prefix = match &cond {
        Some(c) => {
            let op = c.get("ComparisonOperator").and_then(Value::as_str);
            if let Some(o) = op
                && o != "BEGINS_WITH"
            {
                v.push(
                    o,
                    "streamNameCondition.comparisonOperator",
                    "Member must satisfy enum value set: [BEGINS_WITH]",
                );
            }
            let value = c.get("ComparisonValue").and_then(Value::as_str);
            check_name(&mut v, "streamNameCondition.comparisonValue", value, false, 256);
            value.map(str::to_owned)
        }
        None => None,
    };
    finish(v)?;
    let after = match token {
        Some(t) if !t.is_empty() => Some(
            STANDARD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| KvsError::invalid("NextToken is not one this server issued."))?,
        ),
        _ => None,
    };
    let max = max.unwrap_or(10_000) as usize;
    let mut all: Vec<Arc<VideoStream>> = ctx
        .state
        .video
        .all()
        .into_iter()
        .filter(|s| prefix.as_deref().is_none_or(|p| s.name.as_str().starts_with(p)))
        .filter(|s| after.as_deref().is_none_or(|a| s.name.as_str() > a))
        .filter(|s| ctx.state.auth.sees(ctx.who, s.name.as_str()))
        .collect();
    all.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    let more = all.len() > max;
    all.truncate(max);
    let mut out = json!({ "StreamInfoList": all.iter().map(|s| ctx.info(s)).collect::<Vec<_>>() });
    if more && let Some(last) = all.last() {
        out["NextToken"] = json!(STANDARD.encode(last.name.as_str()));
    }
    Ok(out)
}

async fn update_stream(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let version = string(body, "CurrentVersion")?;
    let device = string(body, "DeviceName")?;
    let media_type = string(body, "MediaType")?;
    let mut v = Violations::default();
    check_version(&mut v, version, true);
    check_name(&mut v, "deviceName", device, false, 128);
    if let Some(m) = media_type
        && !media_type_ok(m)
    {
        v.push(m, "mediaType", "Member must satisfy regular expression pattern: [\\w\\-\\.\\+]+/[\\w\\-\\.\\+]+(,[\\w\\-\\.\\+]+/[\\w\\-\\.\\+]+)*");
    }
    finish(v)?;
    let s = ctx.stream(body, "StreamARN")?;
    ctx.allow("UpdateStream", Action::Admin, s.name.as_str())?;
    let update = StreamUpdate {
        expected_version: version_of(version),
        device_name: device.map(|d| Some(d.to_owned())),
        media_type: media_type.map(|m| Some(m.to_owned())),
        ..Default::default()
    };
    ctx.change(&s, update).await?;
    Ok(json!({}))
}

async fn delete_stream(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let arn = string(body, "StreamARN")?;
    let version = string(body, "CurrentVersion")?;
    let mut v = Violations::default();
    match arn {
        None => v.null("streamARN"),
        Some(a) => check_arn(&mut v, "streamARN", a),
    }
    check_version(&mut v, version, false);
    finish(v)?;
    let s = ctx.resolve(None, arn)?;
    ctx.allow("DeleteStream", Action::Admin, s.name.as_str())?;
    let (video, name, expected, by) =
        (ctx.state.video.clone(), s.name.clone(), version_of(version), ctx.who.name().to_owned());
    tokio::task::spawn_blocking(move || video.delete_checked(&name, expected, &by))
        .await
        .map_err(|e| {
            KvsError::from(crate::error::Error::internal(format!("delete task: {e}")))
        })??;
    Ok(json!({}))
}

async fn update_data_retention(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let version = string(body, "CurrentVersion")?;
    let op = string(body, "Operation")?;
    let change = integer(body, "DataRetentionChangeInHours")?;
    let mut v = Violations::default();
    check_version(&mut v, version, true);
    v.one_of(
        "operation",
        op,
        true,
        &["INCREASE_DATA_RETENTION", "DECREASE_DATA_RETENTION"],
        "INCREASE_DATA_RETENTION, DECREASE_DATA_RETENTION",
    );
    v.range("dataRetentionChangeInHours", change, true, (1, i64::from(i32::MAX)));
    finish(v)?;
    let s = ctx.stream(body, "StreamARN")?;
    ctx.allow("UpdateDataRetention", Action::Admin, s.name.as_str())?;
    let current = kvs_hours(s.row().retention_hours);
    let change = change.unwrap_or(0);
    let hours =
        if op == Some("INCREASE_DATA_RETENTION") { current + change } else { current - change };
    if !(1..=KVS_MAX_RETENTION_HOURS).contains(&hours) {
        return Err(KvsError::invalid(format!(
            "The retention of stream {} would be {hours} hours: it must stay between 1 and {KVS_MAX_RETENTION_HOURS} hours.",
            s.name
        )));
    }
    let update = StreamUpdate {
        expected_version: version_of(version),
        retention_hours: Some(hours as u32),
        ..Default::default()
    };
    ctx.change(&s, update).await?;
    Ok(json!({}))
}

fn get_data_endpoint(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let api = string(body, "APIName")?;
    let mut v = Violations::default();
    v.one_of(
        "aPIName",
        api,
        true,
        &[
            "PUT_MEDIA",
            "GET_MEDIA",
            "LIST_FRAGMENTS",
            "GET_MEDIA_FOR_FRAGMENT_LIST",
            "GET_HLS_STREAMING_SESSION_URL",
            "GET_DASH_STREAMING_SESSION_URL",
            "GET_CLIP",
            "GET_IMAGES",
        ],
        "PUT_MEDIA, GET_MEDIA, LIST_FRAGMENTS, GET_MEDIA_FOR_FRAGMENT_LIST, GET_HLS_STREAMING_SESSION_URL, GET_DASH_STREAMING_SESSION_URL, GET_CLIP, GET_IMAGES",
    );
    finish(v)?;
    let s = ctx.stream(body, "StreamARN")?;
    ctx.see("GetDataEndpoint", s.name.as_str())?;
    Ok(json!({ "DataEndpoint": super::public_url(ctx.state, ctx.headers) }))
}

async fn set_tags(
    ctx: &Ctx<'_>,
    op: &str,
    s: &VideoStream,
    add: BTreeMap<String, String>,
    remove: &[String],
) -> Result<(), KvsError> {
    ctx.allow(op, Action::Admin, s.name.as_str())?;
    let mut tags = s.row().tags;
    tags.extend(add);
    for k in remove {
        tags.remove(k);
    }
    if tags.len() > MAX_TAGS {
        return Err(KvsError::new(
            StatusCode::BAD_REQUEST,
            "TagsPerResourceExceededLimitException",
            format!(
                "Stream {} would have {} tags; a stream has at most {MAX_TAGS}.",
                s.name,
                tags.len()
            ),
        ));
    }
    ctx.change(s, StreamUpdate { tags: Some(tags), ..Default::default() }).await?;
    Ok(())
}

async fn tag_stream(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let tags = tag_map(body, "Tags")?;
    let mut v = Violations::default();
    match &tags {
        None => v.null("tags"),
        Some(t) => check_tags(&mut v, "tags", t),
    }
    finish(v)?;
    let s = ctx.stream(body, "StreamARN")?;
    set_tags(ctx, "TagStream", &s, tags.unwrap_or_default(), &[]).await?;
    Ok(json!({}))
}

fn check_keys(v: &mut Violations, keys: Option<&Vec<String>>) {
    match keys {
        None => v.null("tagKeyList"),
        Some(k) if k.is_empty() || k.len() > MAX_TAGS => v.push(
            &format!("{} keys", k.len()),
            "tagKeyList",
            &format!("Member must have between 1 and {MAX_TAGS} entries"),
        ),
        Some(k) => {
            for key in k {
                if key.is_empty() || key.chars().count() > 128 {
                    v.push(key, "tagKeyList.member", "Member must have length between 1 and 128");
                }
            }
        }
    }
}

async fn untag_stream(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let keys = strings(body, "TagKeyList")?;
    let mut v = Violations::default();
    check_keys(&mut v, keys.as_ref());
    finish(v)?;
    let s = ctx.stream(body, "StreamARN")?;
    set_tags(ctx, "UntagStream", &s, BTreeMap::new(), &keys.unwrap_or_default()).await?;
    Ok(json!({}))
}

fn list_tags_for_stream(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let s = ctx.stream(body, "StreamARN")?;
    ctx.allow("ListTagsForStream", Action::Read, s.name.as_str())?;
    let tags: Map<String, Value> =
        s.row().tags.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    Ok(json!({ "Tags": tags }))
}

/// The stream of a `ResourceARN` (required).
fn resource(ctx: &Ctx<'_>, body: &Value, v: &mut Violations) -> Result<Option<String>, KvsError> {
    let arn = string(body, "ResourceARN")?;
    match arn {
        None => v.null("resourceARN"),
        Some(a) => check_arn(v, "resourceARN", a),
    }
    let _ = ctx;
    Ok(arn.map(str::to_owned))
}

async fn tag_resource(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let mut v = Violations::default();
    let arn = resource(ctx, body, &mut v)?;
    let list = match body.get("Tags") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a.clone()),
        Some(_) => return Err(serialization("Tags", "List")),
    };
    let mut tags = BTreeMap::new();
    match &list {
        None => v.null("tags"),
        Some(items) => {
            for (i, t) in items.iter().enumerate() {
                let key = t.get("Key").and_then(Value::as_str);
                let value = t.get("Value").and_then(Value::as_str);
                match (key, value) {
                    (Some(k), Some(val)) => {
                        tags.insert(k.to_owned(), val.to_owned());
                    }
                    (None, _) => v.null(&format!("tags.{}.member.key", i + 1)),
                    (_, None) => v.null(&format!("tags.{}.member.value", i + 1)),
                }
            }
            check_tags(&mut v, "tags", &tags);
        }
    }
    finish(v)?;
    let s = ctx.resolve(None, arn.as_deref())?;
    set_tags(ctx, "TagResource", &s, tags, &[]).await?;
    Ok(json!({}))
}

async fn untag_resource(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let mut v = Violations::default();
    let arn = resource(ctx, body, &mut v)?;
    let keys = strings(body, "TagKeyList")?;
    check_keys(&mut v, keys.as_ref());
    finish(v)?;
    let s = ctx.resolve(None, arn.as_deref())?;
    set_tags(ctx, "UntagResource", &s, BTreeMap::new(), &keys.unwrap_or_default()).await?;
    Ok(json!({}))
}

fn list_tags_for_resource(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let mut v = Violations::default();
    let arn = resource(ctx, body, &mut v)?;
    finish(v)?;
    let s = ctx.resolve(None, arn.as_deref())?;
    ctx.allow("ListTagsForResource", Action::Read, s.name.as_str())?;
    let tags: Map<String, Value> =
        s.row().tags.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    Ok(json!({ "Tags": tags }))
}

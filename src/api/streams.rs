//! Native REST API for video streams: create, list, describe, update, delete, and list
//! fragments. Shapes are documented in docs/api.md.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Router};
use serde::{Deserialize, Deserializer, Serialize};

use super::ApiState;
use super::access;
use super::error::{ApiJson, ApiQuery, ApiResult};
use super::params::{Bounds, TimeRange, parse_limit, parse_next};
use super::path::StreamPath;
use crate::auth::Identity;
use crate::clock::Timestamp;
use crate::config::Action;
use crate::error::Error;
use crate::imagegen::spec::ImageGenerationSpec;
use crate::name::StreamName;
use crate::services::StreamChange;
use crate::video::fragment::{FragmentInfo, FragmentNumber, TimestampKind};
use crate::video::{NewStream, StreamUpdate};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/streams", get(list).post(create))
        .route("/v1/streams/{name}", get(describe).patch(update).delete(delete))
        .route("/v1/streams/{name}/fragments", get(fragments))
        .route("/v1/streams/{name}/fragments/{number}/media", get(fragment_media))
}

const MAX_TAGS: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    name: StreamName,
    retention_hours: Option<u32>,
    retention_bytes: Option<u64>,
    media_type: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn validate_tags(tags: &BTreeMap<String, String>) -> Result<(), Error> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid(format!("at most {MAX_TAGS} tags per stream")));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(Error::invalid(format!(
                "tag {k:?}: keys are 1-128 characters and values at most 256"
            )));
        }
    }
    Ok(())
}

async fn create(
    State(state): State<ApiState>,
    Extension(who): Extension<Identity>,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<impl IntoResponse> {
    access::require(&state, &who, Action::Admin, body.name.as_str())?;
    validate_tags(&body.tags)?;
    if body.media_type.as_ref().is_some_and(|m| m.len() > 128) {
        return Err(Error::invalid("mediaType is at most 128 characters").into());
    }
    let stream = state
        .create_stream(
            NewStream {
                name: body.name,
                retention_hours: body.retention_hours,
                retention_bytes: body.retention_bytes,
                media_type: body.media_type,
                tags: body.tags,
                device_name: None,
                kms_key_id: None,
            },
            who.name(),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(state.describe(&stream))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
    limit: Option<usize>,
    next: Option<String>,
}

async fn list(
    State(state): State<ApiState>,
    Extension(who): Extension<Identity>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<impl IntoResponse> {
    let limit = parse_limit(q.limit, 100)?;
    // Only the streams `who` may see, so pages are read until one is full.
    let mut page = Vec::new();
    let mut cursor = q.next.clone();
    loop {
        let batch = state.video.list(&q.prefix, cursor.as_deref(), 1000);
        let done = batch.len() < 1000;
        cursor = batch.last().map(|s| s.name.to_string());
        page.extend(batch.into_iter().filter(|s| state.auth.sees(&who, s.name.as_str())));
        if done || page.len() > limit {
            break;
        }
    }
    let next = if page.len() > limit {
        page.truncate(limit);
        page.last().map(|s| s.name.to_string())
    } else {
        None
    };
    let streams: Vec<_> = page.iter().map(|s| state.describe(s)).collect();
    Ok(axum::Json(serde_json::json!({ "streams": streams, "next": next })))
}

async fn describe(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(state.describe(&stream)))
}

/// `Some(None)` when the field is present and null, `None` when absent.
fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateBody {
    retention_hours: Option<u32>,
    #[serde(default, deserialize_with = "double_option")]
    retention_bytes: Option<Option<u64>>,
    tags: Option<BTreeMap<String, String>>,
    /// The pulled RTSP source (`crate::ingest::pull`); `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    source: Option<Option<crate::ingest::pull::SourceBody>>,
    /// Continuous image generation (`crate::imagegen`); `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    image_generation: Option<Option<serde_json::Value>>,
}

async fn update(
    State(state): State<ApiState>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> ApiResult<impl IntoResponse> {
    if let Some(t) = &body.tags {
        validate_tags(t)?;
    }
    let source = body
        .source
        .map(|s| s.map(crate::ingest::pull::SourceConfig::from_body).transpose())
        .transpose()?;
    let image_generation = body
        .image_generation
        .map(|g| g.map(|v| ImageGenerationSpec::from_json(v, state.imagegen.limits())).transpose())
        .transpose()?;
    let change = StreamChange {
        update: StreamUpdate {
            retention_hours: body.retention_hours,
            retention_bytes: body.retention_bytes,
            tags: body.tags,
            ..Default::default()
        },
        source,
        image_generation,
    };
    let stream = state.update_stream(&StreamName::new(name)?, change, who.name()).await?;
    Ok(axum::Json(state.describe(&stream)))
}

async fn delete(
    State(state): State<ApiState>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
) -> ApiResult<impl IntoResponse> {
    // Its pulled source and image generation go with it (see `crate::services`).
    state.delete_stream(&StreamName::new(name)?, who.name()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FragmentsQuery {
    start: Option<String>,
    end: Option<String>,
    #[serde(default)]
    timestamps: TimestampKind,
    limit: Option<usize>,
    next: Option<String>,
}

/// A fragment as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FragmentJson {
    pub fragment_number: String,
    pub size_bytes: u32,
    pub producer_timestamp: Timestamp,
    pub server_timestamp: Timestamp,
    pub duration_ms: f64,
    pub keyframe: bool,
    pub init_id: u32,
    pub discontinuity: bool,
}

impl From<&FragmentInfo> for FragmentJson {
    fn from(f: &FragmentInfo) -> Self {
        FragmentJson {
            fragment_number: f.number.0.to_string(),
            size_bytes: f.size,
            producer_timestamp: f.producer_ts,
            server_timestamp: f.server_ts,
            duration_ms: f64::from(f.meta.duration_us) / 1000.0,
            keyframe: f.meta.keyframe(),
            init_id: f.meta.init_id,
            discontinuity: f.meta.discontinuity_start(),
        }
    }
}

async fn fragments(
    StreamPath(stream): StreamPath,
    ApiQuery(q): ApiQuery<FragmentsQuery>,
) -> ApiResult<impl IntoResponse> {
    let range = TimeRange::parse(&q.start, &q.end, Bounds::Closed)?;
    let limit = parse_limit(q.limit, 1000)?;
    let after = parse_next::<u64>(q.next.as_deref())?.map(FragmentNumber);
    let page = stream.list_fragments(q.timestamps, range.start, range.end, after, limit)?;
    let fragments: Vec<FragmentJson> = page.fragments.iter().map(FragmentJson::from).collect();
    Ok(axum::Json(serde_json::json!({
        "fragments": fragments,
        "next": page.next.map(|n| n.0.to_string()),
    })))
}

/// One stored fragment (moof+mdat) exactly as the producer sent it, CRC-checked.
async fn fragment_media(
    StreamPath(stream): StreamPath,
    Path((name, number)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> ApiResult<axum::response::Response> {
    let n: u64 = number
        .parse()
        .map_err(|_| Error::invalid(format!("{number:?} is not a fragment number")))?;
    let (info, bytes) = stream.read_fragment(FragmentNumber(n))?.ok_or_else(|| {
        Error::not_found(format!(
            "stream {name} has no fragment {n} (not yet written, or deleted by retention)"
        ))
    })?;
    let etag = stream.stored_fragment_etag(FragmentNumber(n));
    let mut resp =
        super::byte_range::serve_bytes(&headers, "video/iso.segment", &etag, vec![bytes]);
    if let Ok(v) = axum::http::HeaderValue::from_str(&info.number.0.to_string()) {
        resp.headers_mut().insert("x-sluice-fragment-number", v);
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(&info.producer_ts.to_rfc3339()) {
        resp.headers_mut().insert("x-sluice-producer-timestamp", v);
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(&info.server_ts.to_rfc3339()) {
        resp.headers_mut().insert("x-sluice-server-timestamp", v);
    }
    Ok(resp)
}

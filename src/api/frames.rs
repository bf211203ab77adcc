//! Frames over HTTP, thin adapters over `crate::frames`:
//!
//! - `GET /v1/streams/{name}/frame.jpg|frame.png?at=<timestamp>|latest&timestamps=producer|server
//!   &width&height&quality`: the exact frame on display at `at`, with its timestamps and fragment
//!   number in `X-Sluice-*` headers.
//! - `GET /v1/streams/{name}/images?start&end&intervalMs&format=jpeg|png&width&height&quality
//!   &timestamps&maxResults&nextToken`: one image per instant `start + k·intervalMs < end` (just
//!   `start` when `end == start`). By `Accept`: JSON pages in the shape of Kinesis Video
//!   `GetImages` (default), or the whole set streamed as `multipart/mixed` or `application/x-tar`.

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;

use super::ApiState;
use super::error::{ApiError, ApiQuery, ApiResult};
use super::path::StreamPath;
use crate::clock::{Timestamp, TimestampKind};
use crate::error::Error;
use crate::frames::{FrameError, Image, ImageFormat, ImageOptions};

/// Most instants one image-set request may name.
const MAX_INSTANTS: u64 = 1_000_000;
/// Most images in one JSON page.
const MAX_PAGE: usize = 1000;
const BOUNDARY: &str = "sluice-image-7f3a9c";

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/streams/{name}/frame.jpg", get(frame_jpg))
        .route("/v1/streams/{name}/frame.png", get(frame_png))
        .route("/v1/streams/{name}/images", get(images))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameQuery {
    at: Option<String>,
    #[serde(default)]
    timestamps: TimestampKind,
    width: Option<u32>,
    height: Option<u32>,
    quality: Option<u8>,
}

/// A frame error as a response (mapped in `api::error`, like every error).
fn frame_error(e: FrameError) -> Response {
    ApiError(e.into()).into_response()
}

pub fn options(
    format: ImageFormat,
    width: Option<u32>,
    height: Option<u32>,
    quality: Option<u8>,
    default_quality: u8,
) -> Result<ImageOptions, Error> {
    let max = crate::frames::MAX_EDGE;
    for (name, v) in [("width", width), ("height", height)] {
        if let Some(v) = v
            && !(1..=max).contains(&v)
        {
            return Err(Error::invalid(format!("{name} must be between 1 and {max}, got {v}")));
        }
    }
    let quality = quality.unwrap_or(default_quality);
    if !(1..=100).contains(&quality) {
        return Err(Error::invalid(format!("quality must be between 1 and 100, got {quality}")));
    }
    Ok(ImageOptions { format, width, height, quality })
}

fn ts_header(v: Timestamp) -> HeaderValue {
    HeaderValue::from_str(&v.to_rfc3339()).unwrap_or(HeaderValue::from_static(""))
}

fn image_headers(headers: &mut HeaderMap, img: &Image) {
    headers.insert("x-sluice-producer-timestamp", ts_header(img.producer_timestamp));
    headers.insert("x-sluice-server-timestamp", ts_header(img.server_timestamp));
    headers.insert("x-sluice-fragment-number", HeaderValue::from(img.fragment_number.0));
    headers.insert("x-sluice-width", HeaderValue::from(img.width));
    headers.insert("x-sluice-height", HeaderValue::from(img.height));
}

async fn frame_jpg(
    state: State<ApiState>,
    stream: StreamPath,
    q: ApiQuery<FrameQuery>,
) -> ApiResult<Response> {
    frame(state, stream, q, ImageFormat::Jpeg).await
}

async fn frame_png(
    state: State<ApiState>,
    stream: StreamPath,
    q: ApiQuery<FrameQuery>,
) -> ApiResult<Response> {
    frame(state, stream, q, ImageFormat::Png).await
}

async fn frame(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    ApiQuery(q): ApiQuery<FrameQuery>,
    format: ImageFormat,
) -> ApiResult<Response> {
    let opts = options(format, q.width, q.height, q.quality, state.frames.default_quality())?;
    let result = match q.at.as_deref().map(str::trim) {
        None | Some("latest") => state.frames.latest(&stream, &opts).await,
        Some(at) => {
            let at = Timestamp::parse_api(at)?;
            state.frames.frame_at(&stream, at, q.timestamps, &opts).await
        }
    };
    let img = match result {
        Ok(img) => img,
        Err(e) => return Ok(frame_error(e)),
    };
    let mut resp = Response::new(Body::from(img.bytes.clone()));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(img.format.mime()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    image_headers(h, &img);
    Ok(resp)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ImagesQuery {
    start: String,
    end: String,
    interval_ms: u64,
    #[serde(default)]
    format: FormatParam,
    #[serde(default)]
    timestamps: TimestampKind,
    width: Option<u32>,
    height: Option<u32>,
    quality: Option<u8>,
    max_results: Option<usize>,
    next_token: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FormatParam {
    #[default]
    Jpeg,
    Jpg,
    Png,
}

/// How the image set is delivered, from `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Json,
    Multipart,
    Tar,
}

fn delivery(headers: &HeaderMap) -> Delivery {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let accept = accept.to_ascii_lowercase();
    if accept.contains("multipart/mixed") {
        Delivery::Multipart
    } else if accept.contains("application/x-tar") || accept.contains("application/tar") {
        Delivery::Tar
    } else {
        Delivery::Json
    }
}

async fn images(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ImagesQuery>,
) -> ApiResult<Response> {
    let format = match q.format {
        FormatParam::Jpeg | FormatParam::Jpg => ImageFormat::Jpeg,
        FormatParam::Png => ImageFormat::Png,
    };
    let opts = options(format, q.width, q.height, q.quality, state.frames.default_quality())?;
    let start = Timestamp::parse_api(&q.start)?;
    let end = Timestamp::parse_api(&q.end)?;
    if end < start {
        return Err(Error::invalid(format!("end ({end}) is before start ({start})")).into());
    }
    if q.interval_ms == 0 {
        return Err(Error::invalid("intervalMs must be at least 1").into());
    }
    let interval_us = i64::try_from(q.interval_ms.saturating_mul(1000))
        .map_err(|_| Error::invalid("intervalMs is too large"))?;
    let span = u64::try_from(end.micros_since(start)).unwrap_or(0);
    let count = if span == 0 { 1 } else { span.div_ceil(interval_us as u64) };
    if count > MAX_INSTANTS {
        return Err(Error::invalid(format!(
            "the range holds {count} instants; at most {MAX_INSTANTS} per request"
        ))
        .into());
    }
    let how = delivery(&headers);
    let first = match (&q.next_token, how) {
        (Some(t), Delivery::Json) => {
            t.parse::<u64>().ok().filter(|k| *k < count).ok_or_else(|| {
                Error::invalid(format!("nextToken {t:?} is not one this range gave"))
            })?
        }
        _ => 0,
    };
    let page = match how {
        Delivery::Json => {
            let max = q.max_results.unwrap_or(state.frames.default_page_size());
            if !(1..=MAX_PAGE).contains(&max) {
                return Err(
                    Error::invalid(format!("maxResults must be between 1 and {MAX_PAGE}")).into()
                );
            }
            max as u64
        }
        _ => count,
    };
    let last = count.min(first.saturating_add(page));
    let set = ImageSet { start, end, interval_us, clock: q.timestamps, opts };
    let results = match image_results(&state, stream, &set, first, last).await {
        Ok(r) => r,
        Err(ImagesError::Frame(e)) => return Ok(frame_error(e)),
        Err(ImagesError::Other(e)) => return Err(e.into()),
    };
    match how {
        Delivery::Json => {
            let items: Vec<serde_json::Value> =
                results.map(|(t, r)| json_item(t, &r)).collect().await;
            let mut body = serde_json::json!({ "Images": items });
            if last < count {
                body["NextToken"] = serde_json::Value::String(last.to_string());
            }
            Ok(axum::Json(body).into_response())
        }
        Delivery::Multipart => {
            let parts = results.map(|(t, r)| Ok::<Bytes, Infallible>(multipart_part(t, &r))).chain(
                futures_util::stream::once(async {
                    Ok(Bytes::from(format!("--{BOUNDARY}--\r\n")))
                }),
            );
            let mut resp = Response::new(Body::from_stream(parts));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(&format!("multipart/mixed; boundary={BOUNDARY}"))
                    .map_err(|e| Error::internal(e.to_string()))?,
            );
            Ok(resp)
        }
        Delivery::Tar => {
            let entries = results
                .enumerate()
                .map(move |(i, (t, r))| {
                    Ok::<Bytes, Infallible>(tar_entries(first + i as u64, t, &r))
                })
                .chain(futures_util::stream::once(async { Ok(Bytes::from(vec![0u8; 1024])) }));
            let mut resp = Response::new(Body::from_stream(entries));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
            Ok(resp)
        }
    }
}

/// An image set: one image per instant `start + k·interval` before `end` (the native images
/// endpoint and the KVS API's GetImages).
pub struct ImageSet {
    pub start: Timestamp,
    pub end: Timestamp,
    pub interval_us: i64,
    pub clock: TimestampKind,
    pub opts: ImageOptions,
}

/// Why an image set has no images to give: no media at all in its range, the decoders busy, or
/// an error of the store.
pub enum ImagesError {
    Frame(FrameError),
    Other(Error),
}

/// Instant `k`'s images for `k` in `first..last`, in order. A range with no stored media at all
/// is one `NoMedia` instead of a set of `NO_MEDIA`; a full decode queue is `Busy` at once.
pub async fn image_results(
    state: &ApiState,
    stream: std::sync::Arc<crate::video::VideoStream>,
    set: &ImageSet,
    first: u64,
    last: u64,
) -> Result<
    impl futures_util::Stream<Item = (Timestamp, Result<Image, FrameError>)> + use<>,
    ImagesError,
> {
    let (start, end, clock, interval_us) = (set.start, set.end, set.clock, set.interval_us);
    let probe = stream
        .list_fragments(clock, Some(start), Some(end), None, 1)
        .map_err(ImagesError::Other)?;
    if probe.fragments.is_empty() {
        let s = stream.clone();
        let at_start =
            tokio::task::spawn_blocking(move || crate::frames::locate_fragment(&s, start, clock))
                .await
                .map_err(|e| ImagesError::Other(Error::internal(e.to_string())))?;
        if at_start.is_none() {
            return Err(ImagesError::Frame(FrameError::NoMedia(format!(
                "stream {} has no media between {start} and {end} ({} clock)",
                stream.name,
                match clock {
                    TimestampKind::Producer => "producer",
                    TimestampKind::Server => "server",
                }
            ))));
        }
    }
    let instants = (first..last).map(move |k| start.add_micros(k as i64 * interval_us));
    let mut results = state.frames.images(stream, instants, clock, set.opts.clone()).boxed();
    let head = results.next().await;
    if let Some((_, Err(e @ FrameError::Busy { .. }))) = &head {
        return Err(ImagesError::Frame(e.clone()));
    }
    Ok(futures_util::stream::iter(head).chain(results))
}

/// Per-image metadata, the same in every delivery.
fn metadata(t: Timestamp, r: &Result<Image, FrameError>) -> serde_json::Value {
    match r {
        Ok(img) => serde_json::json!({
            "TimeStamp": t.as_secs_f64(),
            "Instant": t.to_rfc3339(),
            "ProducerTimestamp": img.producer_timestamp.to_rfc3339(),
            "ServerTimestamp": img.server_timestamp.to_rfc3339(),
            "FragmentNumber": img.fragment_number.0.to_string(),
            "Width": img.width,
            "Height": img.height,
            "Format": match img.format { ImageFormat::Jpeg => "JPEG", ImageFormat::Png => "PNG" },
        }),
        Err(e) => serde_json::json!({
            "TimeStamp": t.as_secs_f64(),
            "Instant": t.to_rfc3339(),
            "Error": e.code(),
            "Message": e.to_string(),
        }),
    }
}

fn json_item(t: Timestamp, r: &Result<Image, FrameError>) -> serde_json::Value {
    let mut v = metadata(t, r);
    if let Ok(img) = r {
        v["ImageContent"] =
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(&img.bytes));
    }
    v
}

fn multipart_part(t: Timestamp, r: &Result<Image, FrameError>) -> Bytes {
    let mut out = Vec::new();
    let meta = metadata(t, r);
    out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
    out.extend_from_slice(format!("X-Sluice-Instant: {}\r\n", t.to_rfc3339()).as_bytes());
    match r {
        Ok(img) => {
            out.extend_from_slice(
                format!(
                    "Content-Type: {}\r\nContent-Length: {}\r\nX-Sluice-Producer-Timestamp: {}\r\n\
                     X-Sluice-Server-Timestamp: {}\r\nX-Sluice-Fragment-Number: {}\r\n\r\n",
                    img.format.mime(),
                    img.bytes.len(),
                    img.producer_timestamp.to_rfc3339(),
                    img.server_timestamp.to_rfc3339(),
                    img.fragment_number.0
                )
                .as_bytes(),
            );
            out.extend_from_slice(&img.bytes);
        }
        Err(e) => {
            let body = meta.to_string();
            out.extend_from_slice(
                format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\nX-Sluice-Error: {}\r\n\r\n",
                    body.len(),
                    e.code()
                )
                .as_bytes(),
            );
            out.extend_from_slice(body.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// One tar member (ustar header + data + padding to 512 bytes).
fn tar_member(out: &mut Vec<u8>, path: &str, data: &[u8], mtime: u64) {
    let mut h = tar::Header::new_ustar();
    if h.set_path(path).is_err() {
        return;
    }
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

/// The members for one instant: `NNNNNN-<epoch ms>.json` with its metadata, then the image
/// `NNNNNN-<epoch ms>.jpg|png` when there is one.
fn tar_entries(k: u64, t: Timestamp, r: &Result<Image, FrameError>) -> Bytes {
    let mut out = Vec::new();
    let stem = format!("{k:06}-{}", t.as_millis());
    let mtime = u64::try_from(t.as_millis() / 1000).unwrap_or(0);
    tar_member(&mut out, &format!("{stem}.json"), metadata(t, r).to_string().as_bytes(), mtime);
    if let Ok(img) = r {
        tar_member(&mut out, &format!("{stem}.{}", img.format.extension()), &img.bytes, mtime);
    }
    Bytes::from(out)
}

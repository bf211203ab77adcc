//! `GET /v1/streams/{name}/timeline`: what is recorded in a time window, at any zoom (exact
//! ranges and gaps, or per-bucket coverage for long windows), for the web UI's replay timeline.
//! The work is `video::timeline`; this is the HTTP shape (docs/api.md).

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::error::{ApiQuery, ApiResult};
use super::params::{Bounds, TimeRange};
use super::path::StreamPath;
use crate::clock::Timestamp;
use crate::error::Error;
use crate::video::fragment::TimestampKind;
use crate::video::timeline::{Bucket, MAX_BUCKETS, Resolution, Span, Timeline, TimelineQuery};

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/streams/{name}/timeline", get(timeline))
}

/// Buckets when the query does not say.
const DEFAULT_BUCKETS: usize = 200;
/// Default gap threshold on the server clock: arrival times jitter, so holes under a second are
/// not reported as gaps.
const SERVER_GAP_MS: u64 = 1000;
/// Largest `gapMs` (one day).
const MAX_GAP_MS: u64 = 86_400_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TimelineParams {
    start: Option<String>,
    end: Option<String>,
    #[serde(default)]
    timestamps: TimestampKind,
    buckets: Option<usize>,
    gap_ms: Option<u64>,
    resolution: Option<ResolutionParam>,
}

/// `resolution=auto|exact|buckets`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ResolutionParam {
    Auto,
    Exact,
    Buckets,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SpanJson {
    start: Timestamp,
    end: Timestamp,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    fragments: Option<u64>,
}

impl SpanJson {
    fn of(s: &Span, with_count: bool) -> Self {
        SpanJson {
            start: s.start,
            end: s.end,
            duration_ms: s.end.micros_since(s.start) as f64 / 1000.0,
            fragments: with_count.then_some(s.fragments),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BucketJson {
    start: Timestamp,
    end: Timestamp,
    fragments: u64,
    coverage: f64,
}

impl From<&Bucket> for BucketJson {
    fn from(b: &Bucket) -> Self {
        BucketJson {
            start: b.start,
            end: b.end,
            fragments: b.fragments,
            coverage: (b.coverage * 1000.0).round() / 1000.0,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TimelineJson {
    stream: String,
    timestamps: TimestampKind,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    resolution: &'static str,
    gap_ms: u64,
    fragment_count: u64,
    ranges: Vec<SpanJson>,
    gaps: Vec<SpanJson>,
    buckets: Vec<BucketJson>,
}

fn to_json(stream: String, clock: TimestampKind, gap_ms: u64, t: &Timeline) -> TimelineJson {
    TimelineJson {
        stream,
        timestamps: clock,
        start: t.window.map(|w| w.0),
        end: t.window.map(|w| w.1),
        resolution: match t.resolution {
            Resolution::Exact => "exact",
            Resolution::Buckets => "buckets",
        },
        gap_ms,
        fragment_count: t.fragment_count,
        ranges: t.ranges.iter().map(|s| SpanJson::of(s, true)).collect(),
        gaps: t.gaps.iter().map(|s| SpanJson::of(s, false)).collect(),
        buckets: t.buckets.iter().map(BucketJson::from).collect(),
    }
}

async fn timeline(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    ApiQuery(q): ApiQuery<TimelineParams>,
) -> ApiResult<impl IntoResponse> {
    let TimeRange { start, end } = TimeRange::parse(&q.start, &q.end, Bounds::Closed)?;
    let buckets = q.buckets.unwrap_or(DEFAULT_BUCKETS);
    if buckets == 0 || buckets > MAX_BUCKETS {
        return Err(Error::invalid(format!("buckets must be between 1 and {MAX_BUCKETS}")).into());
    }
    let gap_ms = q.gap_ms.unwrap_or(match q.timestamps {
        TimestampKind::Producer => state.config.hls.gap_threshold_ms.as_millis() as u64,
        TimestampKind::Server => SERVER_GAP_MS,
    });
    if gap_ms > MAX_GAP_MS {
        return Err(Error::invalid(format!("gapMs must be at most {MAX_GAP_MS}")).into());
    }
    let query = TimelineQuery {
        clock: q.timestamps,
        start,
        end,
        buckets,
        gap_us: i64::try_from(gap_ms * 1000).unwrap_or(i64::MAX),
        resolution: match q.resolution {
            None | Some(ResolutionParam::Auto) => None,
            Some(ResolutionParam::Exact) => Some(Resolution::Exact),
            Some(ResolutionParam::Buckets) => Some(Resolution::Buckets),
        },
    };
    // Bucket mode does a few thousand index reads: keep them off the async workers.
    let s = stream.clone();
    let t = tokio::task::spawn_blocking(move || s.timeline(query))
        .await
        .map_err(|e| Error::internal(format!("timeline task: {e}")))??;
    Ok(axum::Json(to_json(stream.name.to_string(), q.timestamps, gap_ms, &t)))
}

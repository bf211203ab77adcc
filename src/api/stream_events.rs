//! Producers' metadata on the video timeline: `POST /v1/streams/{name}/events` stores events,
//! `GET /v1/streams/{name}/events` reads a time range back in timestamp order, or, with
//! `Accept: text/event-stream`, sends that range and then follows new events live. Storage and
//! indexing are in `crate::events::store`.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::ApiState;
use super::error::{ApiJson, ApiQuery, ApiResult};
use super::params::{Bounds, TimeRange, parse_limit, parse_next};
use super::path::StreamPath;
use crate::catalog::VideoStreamId;
use crate::clock::Timestamp;
use crate::error::Error;
use crate::events::metadata::{self, EventsBody, StoredEvent};
use crate::events::store::{FoundEvent, MetadataQuery};
use crate::log::Offset;
use crate::video::fragment::TimestampKind;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/streams/{name}/events", get(read).post(post))
}

async fn post(
    State(state): State<ApiState>,
    StreamPath(video): StreamPath,
    ApiJson(body): ApiJson<EventsBody>,
) -> ApiResult<Response> {
    let docs = metadata::validate(video.name.as_str(), body.into_vec(), state.video.clock().now())?;
    let stored = state.metadata.put(video.id, docs).await?;
    let events: Vec<_> = stored
        .iter()
        .map(|p| serde_json::json!({ "shardId": p.shard_id.to_string(), "sequenceNumber": p.sequence_number }))
        .collect();
    Ok((StatusCode::CREATED, axum::Json(serde_json::json!({ "events": events }))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadQuery {
    start: Option<String>,
    end: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    timestamps: TimestampKind,
    limit: Option<usize>,
    next: Option<String>,
}

fn event_json(f: &FoundEvent) -> serde_json::Value {
    serde_json::json!({
        "timestamp": f.event.timestamp,
        "timestamps": f.event.timestamps,
        "type": f.event.kind,
        "data": f.event.data,
        "receivedAt": f.event.received_at,
        "shardId": f.shard_id.to_string(),
        "sequenceNumber": f.sequence_number,
    })
}

async fn read(
    State(state): State<ApiState>,
    StreamPath(video): StreamPath,
    ApiQuery(q): ApiQuery<ReadQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let TimeRange { start, end } = TimeRange::parse(&q.start, &q.end, Bounds::Closed)?;
    let limit = parse_limit(q.limit, 1000)?;
    let after = parse_next::<i64>(q.next.as_deref())?;
    let wants_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !wants_sse {
        let (found, next) =
            query(&state, video.id, q.timestamps, (start, end), q.kind.clone(), after, limit)
                .await?;
        let events: Vec<_> = found.iter().map(event_json).collect();
        return Ok(axum::Json(
            serde_json::json!({ "events": events, "next": next.map(|n| n.to_string()) }),
        )
        .into_response());
    }

    // Live: the stored range first (only with a start), then every new event of this stream.
    // The live part starts where the shard's committed end was before the stored range was read,
    // so nothing is missed and nothing is sent twice.
    let shard = state
        .data
        .shard_for_key(state.metadata.stream(), video.name.as_str())
        .map_err(Error::from)?;
    let reader = state.data.shard_reader(state.metadata.stream(), &shard).map_err(Error::from)?;
    let live_from = reader.committed_end();
    let mut backlog = VecDeque::new();
    if start.is_some() {
        let mut page = None;
        loop {
            let (found, next) =
                query(&state, video.id, q.timestamps, (start, end), q.kind.clone(), page, 10_000)
                    .await?;
            backlog.extend(
                found
                    .into_iter()
                    .filter(|f| {
                        f.shard_id != shard
                            || crate::datastream::SequenceNumber::parse(&f.sequence_number, "seq")
                                .is_ok_and(|s| s.offset() < live_from)
                    })
                    .map(|f| event_json(&f)),
            );
            match next {
                Some(n) => page = Some(n),
                None => break,
            }
        }
    }
    let live = Live {
        reader,
        cursor: live_from,
        video_name: video.name.to_string(),
        kind: q.kind,
        backlog,
        stop: state.shutdown.clone(),
        closed: video.closed().clone(),
    };
    let stream = futures_util::stream::unfold(live, |mut l| async move {
        let ev = l.next_event().await?;
        Some((Ok::<_, Infallible>(ev), l))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

struct Live {
    reader: crate::datastream::ShardReader,
    cursor: Offset,
    video_name: String,
    kind: Option<String>,
    backlog: VecDeque<serde_json::Value>,
    stop: tokio_util::sync::CancellationToken,
    closed: tokio_util::sync::CancellationToken,
}

impl Live {
    async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(v) = self.backlog.pop_front() {
                return Some(SseEvent::default().event("event").data(v.to_string()));
            }
            let mut watch = self.reader.subscribe();
            let end = *watch.borrow_and_update();
            if self.cursor < end {
                let records = self.reader.read(self.cursor, 500, 4 * 1024 * 1024).ok()?;
                let Some(last) = records.last() else {
                    self.cursor = end;
                    continue;
                };
                self.cursor = Offset(last.offset.0 + 1);
                for r in records.iter().filter(|r| r.partition_key == self.video_name) {
                    let Some(e) = StoredEvent::decode(&r.data) else { continue };
                    if self.kind.as_deref().is_some_and(|k| k != e.kind) {
                        continue;
                    }
                    self.backlog.push_back(serde_json::json!({
                        "timestamp": e.timestamp,
                        "timestamps": e.timestamps,
                        "type": e.kind,
                        "data": e.data,
                        "receivedAt": e.received_at,
                        "sequenceNumber": r.sequence_number.to_string(),
                    }));
                }
                continue;
            }
            tokio::select! {
                r = watch.changed() => if r.is_err() { return None },
                _ = self.stop.cancelled() => return None,
                _ = self.closed.cancelled() => return None,
            }
        }
    }
}

/// One page of the metadata index, read on the blocking pool (catalog and record reads).
async fn query(
    state: &ApiState,
    video_id: VideoStreamId,
    clock: TimestampKind,
    (start, end): (Option<Timestamp>, Option<Timestamp>),
    kind: Option<String>,
    after: Option<i64>,
    limit: usize,
) -> Result<(Vec<FoundEvent>, Option<i64>), Error> {
    let metadata = state.metadata.clone();
    tokio::task::spawn_blocking(move || {
        let q = MetadataQuery { clock, start, end, kind: kind.as_deref(), after, limit };
        metadata.query(video_id, &q)
    })
    .await
    .map_err(|e| Error::internal(format!("metadata task: {e}")))?
}

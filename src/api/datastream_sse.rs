//! Push delivery of data-stream records to browsers and simple consumers, as Server-Sent Events:
//! `GET /v1/data-streams/{stream}/shards/{shardId}/records?from=…`. Records are pushed as they
//! become durable: the handler waits on the shard's committed-end watch (no polling). Each event
//! carries the record's sequence number as its SSE `id`, so a reconnecting `EventSource` resumes
//! after the last record it saw (`Last-Event-ID`).

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::ApiState;
use super::error::{ApiQuery, ApiResult};
use crate::clock::Timestamp;
use crate::datastream::{DataRecord, SequenceNumber, ShardId, ShardReader};
use crate::error::Error;
use crate::log::Offset;
use crate::name::StreamName;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/data-streams/{stream}/shards/{shard}/records", get(follow))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowQuery {
    from: Option<String>,
}

/// Where to start: `TRIM_HORIZON`, `LATEST` (default), `AT_SEQUENCE_NUMBER:<n>`,
/// `AFTER_SEQUENCE_NUMBER:<n>`, `AT_TIMESTAMP:<RFC 3339 | epoch ms>`.
fn start_offset(reader: &ShardReader, from: &str) -> Result<Offset, Error> {
    let seq = |s: &str| -> Result<Offset, Error> {
        let n = SequenceNumber::parse(s, "from").map_err(Error::from)?;
        Ok(reader.offset_of(n)?)
    };
    match from.split_once(':') {
        None if from == "TRIM_HORIZON" => Ok(reader.start()),
        None if from == "LATEST" => Ok(reader.committed_end()),
        Some(("AT_SEQUENCE_NUMBER", s)) => seq(s),
        Some(("AFTER_SEQUENCE_NUMBER", s)) => Ok(Offset(seq(s)?.0 + 1)),
        Some(("AT_TIMESTAMP", t)) => {
            let t = Timestamp::parse_api(t)?;
            Ok(reader.lower_bound_arrival(t)?)
        }
        _ => Err(Error::invalid(format!(
            "from: {from:?} is not TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER:<n>, AFTER_SEQUENCE_NUMBER:<n> or AT_TIMESTAMP:<time>"
        ))),
    }
}

async fn follow(
    State(state): State<ApiState>,
    Path((stream, shard)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<FollowQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let stream = StreamName::new(stream)?;
    let shard = ShardId::parse(&shard, "shardId").map_err(Error::from)?;
    let reader = state.data.shard_reader(&stream, &shard).map_err(Error::from)?;
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let cursor = match (resume, q.from.as_deref()) {
        (Some(last), _) => start_offset(&reader, &format!("AFTER_SEQUENCE_NUMBER:{last}"))?,
        (None, Some(from)) => start_offset(&reader, from)?,
        (None, None) => reader.committed_end(),
    };
    let follower = Follower {
        reader,
        cursor,
        pending: VecDeque::new(),
        stop: state.shutdown.clone(),
        done: false,
    };
    let events = futures_util::stream::unfold(follower, |mut f| async move {
        let ev = f.next_event().await?;
        Some((Ok::<_, Infallible>(ev), f))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

/// One record as pushed: the shape of a Kinesis record, with base64 data.
pub fn record_json(r: &DataRecord) -> serde_json::Value {
    serde_json::json!({
        "sequenceNumber": r.sequence_number.to_string(),
        "partitionKey": r.partition_key,
        "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
        "approximateArrivalTimestamp": r.arrival,
    })
}

struct Follower {
    reader: ShardReader,
    cursor: Offset,
    pending: VecDeque<DataRecord>,
    stop: CancellationToken,
    done: bool,
}

impl Follower {
    /// The next SSE event; `None` ends the response (shutdown, or a drained closed shard after
    /// its `end` event).
    async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if self.done {
                return None;
            }
            if let Some(r) = self.pending.pop_front() {
                return Some(
                    SseEvent::default()
                        .id(r.sequence_number.to_string())
                        .event("record")
                        .data(record_json(&r).to_string()),
                );
            }
            let mut watch = self.reader.subscribe();
            let end = *watch.borrow_and_update();
            if self.cursor < end {
                match self.reader.read(self.cursor, 500, 1024 * 1024) {
                    Ok(records) => {
                        let Some(last) = records.last() else {
                            self.cursor = end;
                            continue;
                        };
                        self.cursor = Offset(last.offset.0 + 1);
                        self.pending.extend(records);
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(SseEvent::default().event("error").data(e.message()));
                    }
                }
                continue;
            }
            if self.reader.is_closed() {
                self.done = true;
                return Some(
                    SseEvent::default().event("end").data("{\"reason\":\"shard closed\"}"),
                );
            }
            tokio::select! {
                r = watch.changed() => if r.is_err() { return None },
                _ = self.stop.cancelled() => return None,
            }
        }
    }
}

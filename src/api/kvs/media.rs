//! KVS media as Matroska: GetMedia (boto3 `kinesis-video-media`), a stream's fragments from a
//! start selector, following live data; and GetMediaForFragmentList (`kinesis-video-archived-
//! media`), the listed fragments. Every fragment goes out as one self-contained Matroska document
//! (`crate::media::mkv::write`) with KVS's tags, remuxed from the stored fMP4 without copying its
//! samples.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::KvsError;
use super::archived::timestamp;
use super::control::structure;
use super::control::{Ctx, finish, string};
use crate::clock::Timestamp;
use crate::config::Action;
use crate::datastream::validate::Violations;
use crate::error::Error;
use crate::media::mkv::{DocumentHead, FragmentDocument, fragment_document, tracks_of};
use crate::video::VideoStream;
use crate::video::fragment::{FragmentInfo, FragmentNumber, TimestampKind};
use crate::video::serve::Wake;

/// What KVS answers as the payload's content type.
const CONTENT_TYPE: &str = "video/webm";

/// GetMediaForFragmentList's bounds (the model's `FragmentNumberList`).
const MAX_LISTED: usize = 1000;

/// In-stream error ids (the `AWS_KINESISVIDEO_ERROR_ID` tag).
const ERROR_NOT_FOUND: u32 = 4000;
const ERROR_INTERNAL: u32 = 5000;

pub async fn get_media(ctx: &Ctx<'_>, body: &Value) -> Result<Response, KvsError> {
    let selector = structure(body, "StartSelector")?;
    let mut v = Violations::default();
    let (kind, after, at, token) = match selector {
        None => {
            v.null("startSelector");
            (None, None, None, None)
        }
        Some(sel) => {
            let kind = string(sel, "StartSelectorType")?;
            v.one_of(
                "startSelector.startSelectorType",
                kind,
                true,
                &[
                    "FRAGMENT_NUMBER",
                    "SERVER_TIMESTAMP",
                    "PRODUCER_TIMESTAMP",
                    "NOW",
                    "EARLIEST",
                    "CONTINUATION_TOKEN",
                ],
                "FRAGMENT_NUMBER, SERVER_TIMESTAMP, PRODUCER_TIMESTAMP, NOW, EARLIEST, \
                 CONTINUATION_TOKEN",
            );
            let after = string(sel, "AfterFragmentNumber")?;
            let token = string(sel, "ContinuationToken")?;
            v.length("startSelector.afterFragmentNumber", after, false, (1, 128));
            v.length("startSelector.continuationToken", token, false, (1, 128));
            (kind, after, timestamp(sel, "StartTimestamp")?, token)
        }
    };
    finish(v)?;
    let number = |member: &str, s: Option<&str>| -> Result<FragmentNumber, KvsError> {
        let s = s.ok_or_else(|| {
            KvsError::invalid(format!("StartSelectorType {} needs {member}.", kind.unwrap_or("")))
        })?;
        s.parse::<u64>().map(FragmentNumber).map_err(|_| {
            KvsError::invalid(format!("{member} {s:?} is not one this server issued."))
        })
    };
    let stream = ctx.stream(body, "StreamARN")?;
    ctx.allow("GetMedia", Action::Read, stream.name.as_str())?;
    let (first, end) = (stream.first_retained(), stream.committed_end());
    let mut missing = None;
    let cursor = match kind.unwrap_or("") {
        "EARLIEST" => first,
        "NOW" => {
            if stream.is_live() && end > first {
                stream.segment_start_at_or_before(FragmentNumber(end.0 - 1))?
            } else {
                end
            }
        }
        "FRAGMENT_NUMBER" => {
            let n = number("AfterFragmentNumber", after)?;
            if n < first || n >= end {
                missing = Some(n);
            }
            n
        }
        "CONTINUATION_TOKEN" => number("ContinuationToken", token)?.max(first),
        clock_kind => {
            let clock = if clock_kind == "SERVER_TIMESTAMP" {
                TimestampKind::Server
            } else {
                TimestampKind::Producer
            };
            let t = at.ok_or_else(|| {
                KvsError::invalid(format!("StartSelectorType {clock_kind} needs StartTimestamp."))
            })?;
            let s = stream.clone();
            tokio::task::spawn_blocking(move || containing(&s, clock, t))
                .await
                .map_err(|e| KvsError::from(Error::internal(format!("start task: {e}"))))??
        }
    };
    let mut session = Session::new(ctx, stream, Source::Follow { cursor, pending: Vec::new() });
    if let Some(n) = missing {
        session.error(ERROR_NOT_FOUND, &format!("Requested fragment {} is not found", n.0));
        session.source = Source::Done;
    }
    Ok(respond(session))
}

/// The fragment whose time range contains `t` on `clock`, or the first after it.
fn containing(
    stream: &VideoStream,
    clock: TimestampKind,
    t: Timestamp,
) -> Result<FragmentNumber, KvsError> {
    let n = stream.first_at_or_after(clock, t)?;
    if n > stream.first_retained()
        && let Some(prev) = stream.infos(FragmentNumber(n.0 - 1), n, 1)?.first()
    {
        let start = match clock {
            TimestampKind::Producer => prev.producer_ts,
            TimestampKind::Server => prev.server_ts,
        };
        if start <= t && t < start.add_micros(i64::from(prev.meta.duration_us)) {
            return Ok(prev.number);
        }
    }
    Ok(n)
}

pub async fn get_media_for_fragment_list(
    ctx: &Ctx<'_>,
    body: &Value,
) -> Result<Response, KvsError> {
    let listed = match body.get("Fragments") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| super::control::serialization("Fragments", "List"))?,
        ),
        Some(_) => return Err(super::control::serialization("Fragments", "List")),
    };
    let mut v = Violations::default();
    match &listed {
        None => v.null("fragments"),
        Some(l) => v.range("fragments", Some(l.len() as i64), false, (1, MAX_LISTED as i64)),
    }
    finish(v)?;
    let stream = ctx.stream(body, "StreamARN")?;
    ctx.allow("GetMediaForFragmentList", Action::Read, stream.name.as_str())?;
    let mut numbers = Vec::new();
    let (first, end) = (stream.first_retained(), stream.committed_end());
    for s in listed.unwrap_or_default() {
        let n = s.parse::<u64>().map(FragmentNumber).ok().filter(|n| *n >= first && *n < end);
        numbers.push(n.ok_or_else(|| {
            KvsError::not_found(format!("Fragment {s} of stream {} is not found.", stream.name))
        })?);
    }
    numbers.reverse();
    Ok(respond(Session::new(ctx, stream, Source::Listed(numbers))))
}

fn respond(session: Session) -> Response {
    let body = Body::from_stream(futures_util::stream::unfold(session, |mut s| async move {
        match s.next_chunk().await {
            Ok(Some(b)) => Some((Ok::<Bytes, std::io::Error>(b), s)),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e.message)), s)),
        }
    }));
    let mut resp = body.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp
}

enum Source {
    /// GetMedia: from `cursor` on, following live data while a producer is connected.
    Follow {
        cursor: FragmentNumber,
        pending: Vec<FragmentInfo>,
    },
    /// GetMediaForFragmentList: these fragments (reversed: the next is last).
    Listed(Vec<FragmentNumber>),
    Done,
}

struct Session {
    stream: Arc<VideoStream>,
    /// The Matroska head per init segment, built on first use.
    head: HashMap<u32, Arc<DocumentHead>>,
    out: std::collections::VecDeque<Bytes>,
    source: Source,
    stop: CancellationToken,
    clock: crate::clock::SharedClock,
}

impl Session {
    fn new(ctx: &Ctx<'_>, stream: Arc<VideoStream>, source: Source) -> Session {
        Session {
            stream,
            head: HashMap::new(),
            out: std::collections::VecDeque::new(),
            source,
            stop: ctx.state.shutdown.clone(),
            clock: ctx.state.video.clock().clone(),
        }
    }

    /// The next bytes to send; `None` ends the response.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            if let Some(b) = self.out.pop_front() {
                return Ok(Some(b));
            }
            let next = match &mut self.source {
                Source::Done => return Ok(None),
                Source::Listed(numbers) => match numbers.pop() {
                    Some(n) => n,
                    None => return Ok(None),
                },
                Source::Follow { cursor, pending } => {
                    if let Some(f) = pending.pop() {
                        *cursor = FragmentNumber(f.number.0 + 1);
                        f.number
                    } else {
                        let (first, end) =
                            (self.stream.first_retained(), self.stream.committed_end());
                        // Retention overtook a slow reader: go on with what still exists.
                        *cursor = (*cursor).max(first);
                        if *cursor >= end {
                            if !self.stream.is_live() {
                                return Ok(None);
                            }
                            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
                            let wake = tokio::select! {
                                w = self.stream.wait_for_media(*cursor, far, true) => w,
                                _ = self.stop.cancelled() => return Ok(None),
                            };
                            if wake == Wake::Closed {
                                return Ok(None);
                            }
                            continue;
                        }
                        *pending = self.stream.infos(*cursor, end, 64)?;
                        pending.reverse();
                        continue;
                    }
                }
            };
            self.document(next)?;
        }
    }

    /// Queues fragment `n` as a Matroska document (or, if it cannot be, an error document).
    fn document(&mut self, n: FragmentNumber) -> Result<(), Error> {
        let Some((info, bytes)) = self.stream.read_fragment(n)? else {
            if matches!(self.source, Source::Listed(_)) {
                self.error(ERROR_NOT_FOUND, &format!("Requested fragment {} is not found", n.0));
                self.source = Source::Done;
            }
            return Ok(());
        };
        match self.build(&info, &bytes) {
            Ok(parts) => self.out.extend(parts),
            Err(message) => {
                self.error(ERROR_INTERNAL, &format!("fragment {}: {message}", n.0));
                self.source = Source::Done;
            }
        }
        Ok(())
    }

    fn build(&mut self, info: &FragmentInfo, bytes: &Bytes) -> Result<Vec<Bytes>, String> {
        let init_id = info.meta.init_id;
        let init = self
            .stream
            .init(init_id)
            .map_err(|e| e.message)?
            .ok_or_else(|| format!("init segment {init_id} is missing"))?;
        let head = match self.head.get(&init_id) {
            Some(h) => h.clone(),
            None => {
                let h = Arc::new(DocumentHead::new(tracks_of(&init).map_err(|e| e.to_string())?));
                self.head.insert(init_id, h.clone());
                h
            }
        };
        let samples = crate::media::fmp4::samples(&init, bytes).map_err(|e| e.to_string())?;
        let timing = init.video().or_else(|| init.tracks.first()).ok_or("no tracks")?;
        let base = samples
            .iter()
            .find(|s| s.track_id == timing.track_id)
            .map_or(0, |s| s.base_decode_time);
        let number = info.number.0.to_string();
        let (before, after) = if matches!(self.source, Source::Listed(_)) {
            (
                vec![
                    ("AWS_KINESISVIDEO_FRAGMENT_NUMBER", number),
                    ("AWS_KINESISVIDEO_SERVER_SIDE_TIMESTAMP", secs(info.server_ts)),
                    ("AWS_KINESISVIDEO_PRODUCER_SIDE_TIMESTAMP", secs(info.producer_ts)),
                ],
                Vec::new(),
            )
        } else {
            let behind = (self.clock.now().as_millis() - info.server_ts.as_millis()).max(0);
            (
                vec![
                    ("AWS_KINESISVIDEO_FRAGMENT_NUMBER", number),
                    ("AWS_KINESISVIDEO_SERVER_TIMESTAMP", secs(info.server_ts)),
                    ("AWS_KINESISVIDEO_PRODUCER_TIMESTAMP", secs(info.producer_ts)),
                ],
                vec![
                    ("AWS_KINESISVIDEO_MILLIS_BEHIND_NOW", behind.to_string()),
                    ("AWS_KINESISVIDEO_CONTINUATION_TOKEN", (info.number.0 + 1).to_string()),
                ],
            )
        };
        let doc = FragmentDocument {
            fragment: bytes,
            samples: &samples,
            start_ms: u64::try_from(info.producer_ts.as_millis()).unwrap_or(0),
            timing: (base, timing.timescale),
            before: &before,
            after: &after,
        };
        Ok(fragment_document(&head, &doc))
    }

    /// Queues a document that carries only the error tags, as KVS ends a GetMedia on an error.
    fn error(&mut self, id: u32, message: &str) {
        let head = DocumentHead::new(Vec::new());
        let tags = [
            ("AWS_KINESISVIDEO_ERROR_CODE", message.to_owned()),
            ("AWS_KINESISVIDEO_ERROR_ID", id.to_string()),
        ];
        let empty = Bytes::new();
        let doc = FragmentDocument {
            fragment: &empty,
            samples: &[],
            start_ms: 0,
            timing: (0, 1),
            before: &tags,
            after: &[],
        };
        self.out.extend(fragment_document(&head, &doc));
    }
}

/// A timestamp as KVS writes it in tags: epoch seconds with milliseconds.
fn secs(t: Timestamp) -> String {
    let ms = t.as_millis();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

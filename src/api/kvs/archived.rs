//! KVS archived media (boto3 `kinesis-video-archived-media`) over Sluice's fragment store, HLS and
//! clips: ListFragments; GetHLSStreamingSessionURL, which answers a URL of Sluice's own HLS
//! carrying a signed playback session (`crate::auth::playback`), so hls.js, Safari, VLC and
//! ffmpeg open it with no headers; GetClip, a progressive MP4 of a range (`crate::api::clip`).

use serde_json::{Value, json};

use super::KvsError;
use super::control::{Ctx, integer, serialization, string, structure};
use crate::auth::playback::{MAX_EXPIRES_SECS, MIN_EXPIRES_SECS};
use crate::clock::Timestamp;
use crate::config::Action;
use crate::datastream::validate::Violations;
use crate::video::fragment::{FragmentNumber, TimestampKind};

/// KVS's default and largest ListFragments page.
const DEFAULT_FRAGMENTS: i64 = 100;
const MAX_FRAGMENTS: i64 = 1000;

/// An epoch-seconds timestamp member, as KVS's JSON carries them.
pub(super) fn timestamp(body: &Value, member: &str) -> Result<Option<Timestamp>, KvsError> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|s| s.is_finite() && s.abs() < 9.0e12)
            .map(|s| Some(Timestamp::from_micros((s * 1e6).round() as i64)))
            .ok_or_else(|| serialization(member, "Timestamp")),
    }
}

/// `PRODUCER_TIMESTAMP` / `SERVER_TIMESTAMP` as Sluice's clocks.
fn clock(kind: Option<&str>) -> TimestampKind {
    match kind {
        Some("SERVER_TIMESTAMP") => TimestampKind::Server,
        _ => TimestampKind::Producer,
    }
}

pub async fn list_fragments(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let max = integer(body, "MaxResults")?;
    let token = string(body, "NextToken")?;
    let selector = structure(body, "FragmentSelector")?;
    let mut v = Violations::default();
    v.range("maxResults", max, false, (1, MAX_FRAGMENTS));
    let (kind, start, end) = match selector {
        None => (None, None, None),
        Some(sel) => {
            let kind = string(sel, "FragmentSelectorType")?;
            v.one_of(
                "fragmentSelector.fragmentSelectorType",
                kind,
                true,
                &["PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"],
                "PRODUCER_TIMESTAMP, SERVER_TIMESTAMP",
            );
            let range = structure(sel, "TimestampRange")?;
            let (start, end) = match range {
                None => {
                    v.null("fragmentSelector.timestampRange");
                    (None, None)
                }
                Some(r) => {
                    let (s, e) = (timestamp(r, "StartTimestamp")?, timestamp(r, "EndTimestamp")?);
                    if s.is_none() {
                        v.null("fragmentSelector.timestampRange.startTimestamp");
                    }
                    if e.is_none() {
                        v.null("fragmentSelector.timestampRange.endTimestamp");
                    }
                    (s, e)
                }
            };
            (kind, start, end)
        }
    };
    super::control::finish(v)?;
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(KvsError::invalid("StartTimestamp must not be after EndTimestamp."));
    }
    let after = match token {
        Some(t) => Some(FragmentNumber(
            t.parse::<u64>()
                .map_err(|_| KvsError::invalid("NextToken is not one this server issued."))?,
        )),
        None => None,
    };
    let s = ctx.stream(body, "StreamARN")?;
    ctx.allow("ListFragments", Action::Read, s.name.as_str())?;
    let limit = max.unwrap_or(DEFAULT_FRAGMENTS) as usize;
    let (stream, clock) = (s.clone(), clock(kind));
    let page =
        tokio::task::spawn_blocking(move || stream.list_fragments(clock, start, end, after, limit))
            .await
            .map_err(|e| {
                KvsError::from(crate::error::Error::internal(format!("list task: {e}")))
            })??;
    let fragments: Vec<Value> = page
        .fragments
        .iter()
        .map(|f| {
            json!({
                "FragmentNumber": f.number.0.to_string(),
                "FragmentSizeInBytes": f.size,
                "ProducerTimestamp": f.producer_ts.as_secs_f64(),
                "ServerTimestamp": f.server_ts.as_secs_f64(),
                "FragmentLengthInMilliseconds": (f.meta.duration_us + 500) / 1000,
            })
        })
        .collect();
    let mut out = json!({ "Fragments": fragments });
    if let Some(n) = page.next {
        out["NextToken"] = json!(n.0.to_string());
    }
    Ok(out)
}

pub fn get_hls_streaming_session_url(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let mode = string(body, "PlaybackMode")?;
    let selector = structure(body, "HLSFragmentSelector")?;
    let container = string(body, "ContainerFormat")?;
    let discontinuity = string(body, "DiscontinuityMode")?;
    let display = string(body, "DisplayFragmentTimestamp")?;
    let expires = integer(body, "Expires")?;
    let max = integer(body, "MaxMediaPlaylistFragmentResults")?;
    let mut v = Violations::default();
    v.one_of(
        "playbackMode",
        mode,
        false,
        &["LIVE", "LIVE_REPLAY", "ON_DEMAND"],
        "LIVE, LIVE_REPLAY, ON_DEMAND",
    );
    v.one_of(
        "containerFormat",
        container,
        false,
        &["FRAGMENTED_MP4", "MPEG_TS"],
        "FRAGMENTED_MP4, MPEG_TS",
    );
    v.one_of(
        "discontinuityMode",
        discontinuity,
        false,
        &["ALWAYS", "NEVER", "ON_DISCONTINUITY"],
        "ALWAYS, NEVER, ON_DISCONTINUITY",
    );
    v.one_of("displayFragmentTimestamp", display, false, &["ALWAYS", "NEVER"], "ALWAYS, NEVER");
    v.range("expires", expires, false, (MIN_EXPIRES_SECS as i64, MAX_EXPIRES_SECS as i64));
    v.range("maxMediaPlaylistFragmentResults", max, false, (1, 5000));
    let (kind, start, end) = match selector {
        None => (None, None, None),
        Some(sel) => {
            let kind = string(sel, "FragmentSelectorType")?;
            v.one_of(
                "hLSFragmentSelector.fragmentSelectorType",
                kind,
                false,
                &["PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"],
                "PRODUCER_TIMESTAMP, SERVER_TIMESTAMP",
            );
            match structure(sel, "TimestampRange")? {
                None => (kind, None, None),
                Some(r) => (kind, timestamp(r, "StartTimestamp")?, timestamp(r, "EndTimestamp")?),
            }
        }
    };
    super::control::finish(v)?;
    if container == Some("MPEG_TS") {
        return Err(KvsError::invalid(
            "ContainerFormat MPEG_TS is not served: Sluice's HLS is fragmented MP4 (FRAGMENTED_MP4), which every current player takes.",
        ));
    }
    let session = Session::check("GetHLSStreamingSessionURL", ctx, body, (mode, kind, start, end))?;
    let mut q = session.query();
    // KVS's default: ALWAYS on the server clock, NEVER on the producer's.
    let server_clock = session.server_clock;
    q.append_pair(
        "discontinuity",
        match discontinuity {
            Some("ALWAYS") => "always",
            Some("NEVER") => "never",
            Some(_) => "on_gap",
            None if server_clock => "always",
            None => "never",
        },
    );
    // KVS shows fragment timestamps (EXT-X-PROGRAM-DATE-TIME) only when asked.
    q.append_pair("pdt", if display == Some("ALWAYS") { "true" } else { "false" });
    // On demand, the oldest fragments up to the maximum; live, Sluice's live window applies.
    if let (Some(n), "ON_DEMAND") = (max, session.mode) {
        q.append_pair("maxSegments", &n.to_string());
    }
    let url = session.url(ctx, "hls/master.m3u8", q, expires);
    Ok(json!({ "HLSStreamingSessionURL": url }))
}

/// A streaming session's mode, range and stream, checked as KVS checks them.
struct Session<'a> {
    mode: &'a str,
    server_clock: bool,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    stream: std::sync::Arc<crate::video::VideoStream>,
}

impl<'a> Session<'a> {
    /// `LIVE` (the default) takes no range, `LIVE_REPLAY` needs a start, `ON_DEMAND` both ends;
    /// then the stream, the caller's `playback` grant, and media for every mode but `LIVE`.
    fn check(
        op: &str,
        ctx: &Ctx<'_>,
        body: &Value,
        (mode, kind, start, end): (
            Option<&'a str>,
            Option<&str>,
            Option<Timestamp>,
            Option<Timestamp>,
        ),
    ) -> Result<Session<'a>, KvsError> {
        let selector =
            if op.contains("HLS") { "HLSFragmentSelector" } else { "DASHFragmentSelector" };
        let mode = mode.unwrap_or("LIVE");
        match mode {
            "LIVE_REPLAY" if start.is_none() => {
                return Err(KvsError::invalid(format!(
                    "StartTimestamp must be given in {selector} for LIVE_REPLAY."
                )));
            }
            "ON_DEMAND" if start.is_none() || end.is_none() => {
                return Err(KvsError::invalid(format!(
                    "StartTimestamp and EndTimestamp must be given in {selector} for ON_DEMAND."
                )));
            }
            "LIVE" if start.is_some() || end.is_some() => {
                return Err(KvsError::invalid(format!(
                    "TimestampRange must not be given in {selector} for LIVE."
                )));
            }
            _ => {}
        }
        if let (Some(s), Some(e)) = (start, end)
            && s >= e
        {
            return Err(KvsError::invalid("StartTimestamp must be before EndTimestamp."));
        }
        let stream = ctx.stream(body, "StreamARN")?;
        ctx.allow(op, Action::Playback, stream.name.as_str())?;
        if stream.describe().fragment_count == 0 && mode != "LIVE" {
            return Err(KvsError::not_found(format!(
                "No fragments found in the stream {} for the requested time range.",
                stream.name
            )));
        }
        let server_clock = kind == Some("SERVER_TIMESTAMP");
        Ok(Session { mode, server_clock, start, end, stream })
    }

    /// The query of the native playback URL: mode, range, clock.
    fn query(&self) -> url::form_urlencoded::Serializer<'static, String> {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair(
            "mode",
            match self.mode {
                "LIVE_REPLAY" => "live_replay",
                "ON_DEMAND" => "on_demand",
                _ => "live",
            },
        );
        if let Some(t) = self.start {
            q.append_pair("start", &t.to_rfc3339());
        }
        if let Some(t) = self.end {
            q.append_pair("end", &t.to_rfc3339());
        }
        q.append_pair("timestamps", if self.server_clock { "server" } else { "producer" });
        q
    }

    /// The session URL: `path` under the stream, `q` and a playback token valid for `expires`
    /// seconds (KVS's default 300).
    fn url(
        &self,
        ctx: &Ctx<'_>,
        path: &str,
        mut q: url::form_urlencoded::Serializer<'static, String>,
        expires: Option<i64>,
    ) -> String {
        let secs = expires.unwrap_or(MIN_EXPIRES_SECS as i64) as u64;
        let state = ctx.state;
        let expires_at =
            state.video.clock().now().saturating_add(std::time::Duration::from_secs(secs));
        let token = state.auth.playback.issue(self.stream.name.as_str(), expires_at);
        q.append_pair("token", &token);
        let base = super::public_url(state, ctx.headers);
        format!("{base}/v1/streams/{}/{path}?{}", self.stream.name, q.finish())
    }
}

/// GetDASHStreamingSessionURL: an ON_DEMAND session of Sluice's DASH (`/dash/manifest.mpd`, a
/// static MPD of the range) with a signed playback session. LIVE and LIVE_REPLAY are refused with
/// a clear message: live playback is HLS.
pub fn get_dash_streaming_session_url(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let mode = string(body, "PlaybackMode")?;
    let selector = structure(body, "DASHFragmentSelector")?;
    let display = string(body, "DisplayFragmentTimestamp")?;
    let number = string(body, "DisplayFragmentNumber")?;
    let expires = integer(body, "Expires")?;
    let max = integer(body, "MaxManifestFragmentResults")?;
    let mut v = Violations::default();
    v.one_of(
        "playbackMode",
        mode,
        false,
        &["LIVE", "LIVE_REPLAY", "ON_DEMAND"],
        "LIVE, LIVE_REPLAY, ON_DEMAND",
    );
    v.one_of("displayFragmentTimestamp", display, false, &["ALWAYS", "NEVER"], "ALWAYS, NEVER");
    v.one_of("displayFragmentNumber", number, false, &["ALWAYS", "NEVER"], "ALWAYS, NEVER");
    v.range("expires", expires, false, (MIN_EXPIRES_SECS as i64, MAX_EXPIRES_SECS as i64));
    v.range("maxManifestFragmentResults", max, false, (1, 5000));
    let (kind, start, end) = match selector {
        None => (None, None, None),
        Some(sel) => {
            let kind = string(sel, "FragmentSelectorType")?;
            v.one_of(
                "dASHFragmentSelector.fragmentSelectorType",
                kind,
                false,
                &["PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"],
                "PRODUCER_TIMESTAMP, SERVER_TIMESTAMP",
            );
            match structure(sel, "TimestampRange")? {
                None => (kind, None, None),
                Some(r) => (kind, timestamp(r, "StartTimestamp")?, timestamp(r, "EndTimestamp")?),
            }
        }
    };
    super::control::finish(v)?;
    let session =
        Session::check("GetDASHStreamingSessionURL", ctx, body, (mode, kind, start, end))?;
    let mut q = session.query();
    // The oldest fragments up to the maximum on demand, the newest live; a live replay grows
    // from its start.
    if let (Some(n), "ON_DEMAND" | "LIVE") = (max, session.mode) {
        q.append_pair("maxSegments", &n.to_string());
    }
    let url = session.url(ctx, "dash/manifest.mpd", q, expires);
    Ok(json!({ "DASHStreamingSessionURL": url }))
}

/// GetClip: `ClipFragmentSelector` (either clock, both timestamps) → the range as a progressive
/// MP4 (`Content-Type: video/mp4`), without KVS's 100 MB / 200-fragment caps.
pub async fn get_clip(ctx: &Ctx<'_>, body: &Value) -> Result<axum::response::Response, KvsError> {
    let selector = structure(body, "ClipFragmentSelector")?;
    let mut v = Violations::default();
    let (kind, start, end) = match selector {
        None => {
            v.null("clipFragmentSelector");
            (None, None, None)
        }
        Some(sel) => {
            let kind = string(sel, "FragmentSelectorType")?;
            v.one_of(
                "clipFragmentSelector.fragmentSelectorType",
                kind,
                true,
                &["PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"],
                "PRODUCER_TIMESTAMP, SERVER_TIMESTAMP",
            );
            match structure(sel, "TimestampRange")? {
                None => {
                    v.null("clipFragmentSelector.timestampRange");
                    (kind, None, None)
                }
                Some(r) => {
                    let (s, e) = (timestamp(r, "StartTimestamp")?, timestamp(r, "EndTimestamp")?);
                    if s.is_none() {
                        v.null("clipFragmentSelector.timestampRange.startTimestamp");
                    }
                    if e.is_none() {
                        v.null("clipFragmentSelector.timestampRange.endTimestamp");
                    }
                    (kind, s, e)
                }
            }
        }
    };
    super::control::finish(v)?;
    let (Some(start), Some(end)) = (start, end) else {
        return Err(KvsError::invalid("ClipFragmentSelector needs a TimestampRange."));
    };
    if start >= end {
        return Err(KvsError::invalid("StartTimestamp must be before EndTimestamp."));
    }
    let s = ctx.stream(body, "StreamARN")?;
    ctx.allow("GetClip", Action::Playback, s.name.as_str())?;
    let name = s.name.clone();
    crate::api::clip::mp4(s, ctx.headers, clock(kind), start, end).await.map_err(|e| {
        if e.kind == crate::error::ErrorKind::NotFound {
            KvsError::not_found(format!(
                "No fragments found in the stream {name} for the requested time range."
            ))
        } else {
            KvsError::from(e)
        }
    })
}

/// GetImages onto the image-set service: one image per `SamplingInterval` (≥ 200 ms, default
/// 1,000) from `StartTimestamp` to before `EndTimestamp` on either clock, each the exact frame on
/// display at its instant (`TimeStamp`, `ImageContent` base64) or `Error` `NO_MEDIA` /
/// `MEDIA_ERROR` for that instant alone; `MaxResults` 1–100 (default 25) per page.
pub async fn get_images(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    use crate::api::frames::{ImageSet, ImagesError, image_results, options};
    use crate::frames::{FrameError, ImageFormat};
    use futures_util::StreamExt;

    let kind = string(body, "ImageSelectorType")?;
    let (start, end) = (timestamp(body, "StartTimestamp")?, timestamp(body, "EndTimestamp")?);
    let interval = integer(body, "SamplingInterval")?;
    let format = string(body, "Format")?;
    let quality = match structure(body, "FormatConfig")? {
        None => None,
        Some(c) => Some(
            string(c, "JPEGQuality")?
                .ok_or_else(|| KvsError::invalid("FormatConfig takes one key, JPEGQuality."))?,
        ),
    };
    let (width, height) = (integer(body, "WidthPixels")?, integer(body, "HeightPixels")?);
    let max = integer(body, "MaxResults")?;
    let token = string(body, "NextToken")?;
    let mut v = Violations::default();
    v.one_of(
        "imageSelectorType",
        kind,
        true,
        &["PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"],
        "PRODUCER_TIMESTAMP, SERVER_TIMESTAMP",
    );
    if start.is_none() {
        v.null("startTimestamp");
    }
    if end.is_none() {
        v.null("endTimestamp");
    }
    v.one_of("format", format, true, &["JPEG", "PNG"], "JPEG, PNG");
    v.range("widthPixels", width, false, (1, 3840));
    v.range("heightPixels", height, false, (1, 2160));
    v.range("maxResults", max, false, (1, 100));
    super::control::finish(v)?;
    let (Some(start), Some(end)) = (start, end) else {
        return Err(KvsError::invalid("StartTimestamp and EndTimestamp are required."));
    };
    if end < start {
        return Err(KvsError::invalid("EndTimestamp must not be before StartTimestamp."));
    }
    let interval = interval.unwrap_or(1000);
    if interval < 200 {
        return Err(KvsError::invalid(format!(
            "SamplingInterval {interval} is below the minimum of 200 milliseconds."
        )));
    }
    let quality = match quality {
        Some(q) => {
            Some(q.parse::<u8>().ok().filter(|q| (1..=100).contains(q)).ok_or_else(|| {
                KvsError::invalid(format!("JPEGQuality {q} is not between 1 and 100."))
            })?)
        }
        None => None,
    };
    let s = ctx.stream(body, "StreamARN")?;
    ctx.allow("GetImages", Action::Read, s.name.as_str())?;
    let fmt = if format == Some("PNG") { ImageFormat::Png } else { ImageFormat::Jpeg };
    let opts = options(
        fmt,
        width.map(|w| w as u32),
        height.map(|h| h as u32),
        quality,
        ctx.state.frames.default_quality(),
    )
    .map_err(KvsError::from)?;
    let interval_us = interval.saturating_mul(1000);
    let span = u64::try_from(end.micros_since(start)).unwrap_or(0);
    let count = if span == 0 { 1 } else { span.div_ceil(interval_us as u64) };
    let first = match token {
        Some(t) => t
            .parse::<u64>()
            .ok()
            .filter(|k| *k < count)
            .ok_or_else(|| KvsError::invalid("NextToken is not one this range gave."))?,
        None => 0,
    };
    let last = count.min(first + max.unwrap_or(25) as u64);
    let set = ImageSet { start, end, interval_us, clock: clock(kind), opts };
    let at = |k: u64| start.add_micros(k as i64 * interval_us);
    let images: Vec<Value> = match image_results(ctx.state, s, &set, first, last).await {
        Ok(results) => {
            results
                .map(|(t, r)| match r {
                    Ok(img) => json!({
                        "TimeStamp": t.as_secs_f64(),
                        "ImageContent": base64::Engine::encode(
                            &base64::engine::general_purpose::STANDARD,
                            &img.bytes
                        ),
                    }),
                    Err(e) => json!({ "TimeStamp": t.as_secs_f64(), "Error": e.code() }),
                })
                .collect()
                .await
        }
        // No media anywhere in the range: every instant of the page is NO_MEDIA, as KVS says.
        Err(ImagesError::Frame(FrameError::NoMedia(_))) => (first..last)
            .map(|k| json!({ "TimeStamp": at(k).as_secs_f64(), "Error": "NO_MEDIA" }))
            .collect(),
        Err(ImagesError::Frame(e @ FrameError::Busy { .. })) => {
            return Err(KvsError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "ClientLimitExceededException",
                e.to_string(),
            ));
        }
        Err(ImagesError::Frame(e)) => return Err(KvsError::from(crate::error::Error::from(e))),
        Err(ImagesError::Other(e)) => return Err(KvsError::from(e)),
    };
    let mut out = json!({ "Images": images });
    if last < count {
        out["NextToken"] = json!(last.to_string());
    }
    Ok(out)
}

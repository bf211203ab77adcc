//! `POST /v1/streams/{name}/playback-sessions`: a URL a player can open with no headers, carrying
//! a signed, expiring token for this stream (`crate::auth::playback`). The grant it needs is
//! `playback` on the stream, like the playlists it opens; the token then stands in for it on
//! every playlist, segment, part, init, clip and frame request of that stream until it expires.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use super::ApiState;
use super::error::ApiResult;
use super::path::StreamPath;
use crate::auth::playback::{MAX_EXPIRES_SECS, MIN_EXPIRES_SECS};
use crate::error::Error;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/streams/{name}/playback-sessions", post(create))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Body {
    expires_in_seconds: Option<u64>,
    /// `live` (default), `on_demand` or `live_replay`, with `start`/`end`/`timestamps` as
    /// `master.m3u8` takes them.
    mode: Option<String>,
    start: Option<String>,
    end: Option<String>,
    timestamps: Option<String>,
}

async fn create(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    body: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    let b: Body = if body.iter().all(u8::is_ascii_whitespace) {
        Body::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Error::invalid(format!("body: {e}")))?
    };
    let secs = b.expires_in_seconds.unwrap_or(MIN_EXPIRES_SECS);
    if !(MIN_EXPIRES_SECS..=MAX_EXPIRES_SECS).contains(&secs) {
        return Err(Error::invalid(format!(
            "expiresInSeconds must be between {MIN_EXPIRES_SECS} and {MAX_EXPIRES_SECS}"
        ))
        .into());
    }
    if let Some(m) = &b.mode
        && !["live", "on_demand", "live_replay"].contains(&m.as_str())
    {
        return Err(Error::invalid("mode: live, on_demand or live_replay").into());
    }
    let expires = state.video.clock().now().saturating_add(std::time::Duration::from_secs(secs));
    let token = state.auth.playback.issue(stream.name.as_str(), expires);
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in
        [("mode", &b.mode), ("start", &b.start), ("end", &b.end), ("timestamps", &b.timestamps)]
    {
        if let Some(v) = v {
            query.append_pair(k, v);
        }
    }
    query.append_pair("token", &token);
    let url = format!("/v1/streams/{}/hls/master.m3u8?{}", stream.name, query.finish());
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "stream": stream.name.as_str(),
            "url": url,
            "token": token,
            "expiresAt": expires.to_rfc3339(),
        })),
    ))
}

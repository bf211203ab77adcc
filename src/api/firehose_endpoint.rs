//! Sluice as a Firehose HTTP endpoint: `POST /v1/firehose-endpoint/{stream}` accepts the HTTP
//! endpoint delivery protocol 1.0 (what Amazon Data Firehose, or another Sluice's delivery
//! stream, sends to an HTTP endpoint destination) and appends the records to the data stream
//! `{stream}`, answering once they are durable. The protocol's rules: version `1.0`, a request
//! id (echoed in the answer, and the key for retries: a request id already taken is answered
//! 200 without writing again), `{"requestId", "timestamp", "records": [{"data"}]}`, gzip when
//! `Content-Encoding: gzip`. Errors answer `{"requestId", "timestamp", "errorMessage"}` with 400
//! (malformed), 401 (with auth on, `X-Amz-Firehose-Access-Key` must be a Sluice access key
//! `id:secret` with `publish` on the stream), 404 (no such data stream), 413 (too large) or 503.

use std::io::Read;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Value, json};

use super::ApiState;
use crate::auth::Identity;
use crate::config::Action;
use crate::datastream::DsError;
use crate::name::StreamName;

/// The largest request, before and after decompression (Firehose's limit).
const MAX_BODY: usize = 64 * 1024 * 1024;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/firehose-endpoint/{stream}", post(receive))
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn receive(
    State(state): State<ApiState>,
    Path(stream): Path<String>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let request_id = header(headers, "x-amz-firehose-request-id").unwrap_or("").to_owned();
    let now = state.video.clock().now().as_millis();
    let answer = |status: StatusCode, error: Option<String>| {
        let mut v = json!({ "requestId": request_id, "timestamp": now });
        if let Some(e) = error {
            v["errorMessage"] = json!(e);
        }
        (status, axum::Json(v)).into_response()
    };
    if header(headers, "x-amz-firehose-protocol-version") != Some("1.0") {
        return answer(
            StatusCode::BAD_REQUEST,
            Some("X-Amz-Firehose-Protocol-Version must be 1.0".into()),
        );
    }
    if request_id.is_empty() || request_id.len() > 256 {
        return answer(
            StatusCode::BAD_REQUEST,
            Some("X-Amz-Firehose-Request-Id is required (at most 256 characters)".into()),
        );
    }
    let Ok(name) = StreamName::new(stream.clone()) else {
        return answer(
            StatusCode::BAD_REQUEST,
            Some(format!("{stream:?} is not a data stream name")),
        );
    };
    if state.auth.enabled() {
        let who = header(headers, "x-amz-firehose-access-key")
            .and_then(|k| k.split_once(':'))
            .and_then(|(id, secret)| state.auth.check_secret(id, secret).ok())
            .map(Identity::Principal);
        match who {
            None => {
                return answer(
                    StatusCode::UNAUTHORIZED,
                    Some(
                        "X-Amz-Firehose-Access-Key must be a Sluice access key as id:secret".into(),
                    ),
                );
            }
            Some(who) if !state.auth.allows(&who, Action::Publish, Some(name.as_str())) => {
                return answer(
                    StatusCode::UNAUTHORIZED,
                    Some(format!("the access key may not publish to {name}")),
                );
            }
            Some(_) => {}
        }
    }
    let exists =
        state.data.describe_stream_summary(crate::datastream::StreamSel::name(name.as_str()));
    if let Err(e) = exists {
        return answer(status_of(&e), Some(e.message().to_owned()));
    }
    if state.firehose.seen_request(name.as_str(), &request_id) {
        return answer(StatusCode::OK, None);
    }
    let raw = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                Some(format!("the body is larger than {MAX_BODY} bytes")),
            );
        }
    };
    let text = if header(headers, "content-encoding")
        .is_some_and(|e| e.eq_ignore_ascii_case("gzip"))
    {
        let mut out = Vec::new();
        let limited =
            flate2::read::GzDecoder::new(&raw[..]).take(MAX_BODY as u64 + 1).read_to_end(&mut out);
        match limited {
            Ok(n) if n <= MAX_BODY => Bytes::from(out),
            Ok(_) => {
                return answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Some("the decompressed body is larger than 64 MiB".into()),
                );
            }
            Err(e) => {
                return answer(StatusCode::BAD_REQUEST, Some(format!("the body is not gzip: {e}")));
            }
        }
    } else {
        raw
    };
    let parsed: Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => {
            return answer(StatusCode::BAD_REQUEST, Some(format!("the body is not JSON: {e}")));
        }
    };
    if parsed["requestId"].as_str() != Some(request_id.as_str()) {
        return answer(
            StatusCode::BAD_REQUEST,
            Some("the body's requestId differs from X-Amz-Firehose-Request-Id".into()),
        );
    }
    let Some(records) = parsed["records"].as_array() else {
        return answer(StatusCode::BAD_REQUEST, Some("the body has no records array".into()));
    };
    let mut items = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let Some(data) = r["data"].as_str().and_then(|d| STANDARD.decode(d).ok()) else {
            return answer(
                StatusCode::BAD_REQUEST,
                Some(format!("records[{i}].data is not base64")),
            );
        };
        // Spread over the stream's shards, one key per record of the request.
        items
            .push((format!("{}/{i}", &request_id[..request_id.len().min(200)]), Bytes::from(data)));
    }
    let written = match state.data.append_all(&name, items).await {
        Ok(w) => w,
        Err(e) => return answer(status_of(&e), Some(e.message().to_owned())),
    };
    if let Some(last) = written.last()
        && let Err(e) = state.data.wait_durable(last).await
    {
        return answer(status_of(&e), Some(e.message().to_owned()));
    }
    state.firehose.remember_request(name.as_str(), &request_id);
    answer(StatusCode::OK, None)
}

fn status_of(e: &DsError) -> StatusCode {
    match e {
        DsError::ResourceNotFound(_) => StatusCode::NOT_FOUND,
        DsError::Validation(_) | DsError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
        DsError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

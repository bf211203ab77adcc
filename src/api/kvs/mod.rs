//! The Amazon Kinesis Video Streams control plane (the `kinesisvideo` rest-json protocol of
//! boto3, the AWS SDKs and the CLI): `POST /createStream`, `/describeStream`, … on the main
//! port, over the same video streams the native API (`/v1/streams`) serves. The operations are
//! in [`control`]; this file is the wire: SigV4 (service `kinesisvideo`) under Sluice's grants,
//! JSON bodies, and errors as KVS gives them (`x-amzn-ErrorType` header, `{"message": …}` body,
//! the model's HTTP statuses).

mod archived;
mod control;
mod imagegen;
mod media;
mod notification;
mod put_media;

use std::net::IpAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::ApiState;
use crate::auth::sigv4::{self, SigV4Error};
use crate::auth::{Failure, Identity};
use crate::error::{Error, ErrorKind};
use crate::events::sink::Denial;

/// Largest request body: control-plane requests are small.
const MAX_BODY: usize = 256 * 1024;

/// The operations and their paths (the model's `requestUri`).
pub const OPERATIONS: &[(&str, &str)] = &[
    ("/createStream", "CreateStream"),
    ("/describeStream", "DescribeStream"),
    ("/listStreams", "ListStreams"),
    ("/updateStream", "UpdateStream"),
    ("/deleteStream", "DeleteStream"),
    ("/updateDataRetention", "UpdateDataRetention"),
    ("/getDataEndpoint", "GetDataEndpoint"),
    ("/tagStream", "TagStream"),
    ("/untagStream", "UntagStream"),
    ("/listTagsForStream", "ListTagsForStream"),
    ("/TagResource", "TagResource"),
    ("/UntagResource", "UntagResource"),
    ("/ListTagsForResource", "ListTagsForResource"),
    ("/updateImageGenerationConfiguration", "UpdateImageGenerationConfiguration"),
    ("/describeImageGenerationConfiguration", "DescribeImageGenerationConfiguration"),
    ("/updateNotificationConfiguration", "UpdateNotificationConfiguration"),
    ("/describeNotificationConfiguration", "DescribeNotificationConfiguration"),
    // Archived media (`kinesis-video-archived-media`), at the data endpoint: this server.
    ("/listFragments", "ListFragments"),
    ("/getHLSStreamingSessionURL", "GetHLSStreamingSessionURL"),
    ("/getDASHStreamingSessionURL", "GetDASHStreamingSessionURL"),
    ("/getClip", "GetClip"),
    ("/getImages", "GetImages"),
    ("/getMediaForFragmentList", "GetMediaForFragmentList"),
    // Media (`kinesis-video-media`).
    ("/getMedia", "GetMedia"),
];

pub fn routes() -> Router<ApiState> {
    let mut r = Router::new();
    for (path, _) in OPERATIONS {
        r = r.route(path, post(handle));
    }
    // PutMedia streams its body: it is not read whole like the others'.
    r.route("/putMedia", post(put_media::put_media))
}

/// A KVS error answer: the exception's name, its HTTP status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvsError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl KvsError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> KvsError {
        KvsError { status, kind, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> KvsError {
        KvsError::new(StatusCode::BAD_REQUEST, "InvalidArgumentException", message)
    }

    pub fn not_found(message: impl Into<String>) -> KvsError {
        KvsError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }
}

impl From<Error> for KvsError {
    fn from(e: Error) -> KvsError {
        let (status, kind) = match (e.kind, e.code) {
            (_, Some("VersionMismatch")) => (StatusCode::BAD_REQUEST, "VersionMismatchException"),
            (ErrorKind::NotFound, _) => (StatusCode::NOT_FOUND, "ResourceNotFoundException"),
            (ErrorKind::Conflict, _) => (StatusCode::BAD_REQUEST, "ResourceInUseException"),
            (ErrorKind::Forbidden, _) => (StatusCode::UNAUTHORIZED, "NotAuthorizedException"),
            (ErrorKind::Unavailable, _) => {
                (StatusCode::BAD_REQUEST, "ClientLimitExceededException")
            }
            (ErrorKind::Internal, _) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
            _ => (StatusCode::BAD_REQUEST, "InvalidArgumentException"),
        };
        KvsError::new(status, kind, e.message)
    }
}

impl IntoResponse for KvsError {
    fn into_response(self) -> Response {
        let mut resp =
            (self.status, axum::Json(json!({ "message": self.message }))).into_response();
        if let Ok(v) = HeaderValue::from_str(self.kind) {
            resp.headers_mut().insert("x-amzn-ErrorType", v);
        }
        resp
    }
}

/// One request: the body read (bounded), the signature and grant checked, the operation run.
async fn handle(State(state): State<ApiState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let op = OPERATIONS.iter().find(|(p, _)| *p == path).map_or("", |(_, o)| *o);
    let id = request_id();
    let raw = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return with_id(
                KvsError::invalid(format!("The request body is larger than {MAX_BODY} bytes."))
                    .into_response(),
                &id,
            );
        }
    };
    let outcome = match authenticate(&state, &parts, raw.clone()).await {
        Ok(who) => match parse(&raw) {
            Ok(body) => {
                let ctx = control::Ctx { state: &state, who: &who, headers: &parts.headers };
                if op == "GetClip" {
                    archived::get_clip(&ctx, &body).await
                } else if op == "GetMedia" {
                    media::get_media(&ctx, &body).await
                } else if op == "GetMediaForFragmentList" {
                    media::get_media_for_fragment_list(&ctx, &body).await
                } else {
                    control::run(&ctx, op, &body)
                        .await
                        .map(|v| (StatusCode::OK, axum::Json(v)).into_response())
                }
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    with_id(outcome.unwrap_or_else(IntoResponse::into_response), &id)
}

fn with_id(mut resp: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert("x-amzn-RequestId", v);
    }
    resp
}

/// Who signed the request: with `[auth]` off everyone is anonymous (any signature or none);
/// with it on, a SigV4 signature (service `kinesisvideo`) by a Sluice access key.
async fn authenticate(
    state: &ApiState,
    parts: &axum::http::request::Parts,
    raw: Bytes,
) -> Result<Identity, KvsError> {
    let auth = &state.auth;
    if !auth.enabled() {
        return Ok(Identity::Anonymous);
    }
    let remote = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = remote.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let denied = |reason: &'static str, who: &str| {
        let d = Denial { surface: "kvs", reason, principal: who, action: None, stream: "", remote };
        state.video.events().denied(&state.metrics, d);
    };
    if let Err(Failure::Throttled { .. }) = auth.check_throttle(ip) {
        denied("throttled", "anonymous");
        return Err(KvsError::new(
            StatusCode::BAD_REQUEST,
            "ClientLimitExceededException",
            "Rate exceeded: too many failed authentications from this address",
        ));
    }
    let now = state.video.clock().now();
    match sigv4::verify(auth, parts, raw, "kinesisvideo", now).await {
        Ok(p) => {
            if !p.cidrs.is_empty() && !p.cidrs.iter().any(|n| n.contains(&ip)) {
                denied("source_not_allowed", &p.name);
                return Err(KvsError::new(
                    StatusCode::UNAUTHORIZED,
                    "NotAuthorizedException",
                    format!("User: {} is not authorized to call from {ip}", p.name),
                ));
            }
            Ok(Identity::Principal(p))
        }
        Err(e) => {
            auth.record_failure(ip);
            let claimed = sigv4::claimed_key(auth, parts);
            denied(e.reason(), claimed.as_deref().unwrap_or("anonymous"));
            let status = if e == SigV4Error::Missing {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::BAD_REQUEST
            };
            Err(KvsError::new(status, e.type_name(), e.message()))
        }
    }
}

/// The request's JSON object (an empty body is `{}`).
fn parse(raw: &[u8]) -> Result<Value, KvsError> {
    let body: Value = if raw.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(raw).map_err(|e| {
            KvsError::new(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                format!("The request body is not JSON: {e}"),
            )
        })?
    };
    if !body.is_object() {
        return Err(KvsError::new(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "Start of structure or map expected.",
        ));
    }
    Ok(body)
}

fn request_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The base URL clients should use for data-plane calls (GetDataEndpoint): `[server]
/// public_url`, else the scheme and `Host` the request came with.
pub fn public_url(state: &ApiState, headers: &axum::http::HeaderMap) -> String {
    if let Some(u) = &state.config.server.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let scheme = if state.config.server.tls_cert.is_some() { "https" } else { "http" };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| state.config.server.listen.to_string(), str::to_owned);
    format!("{scheme}://{host}")
}

//! The HTTP adapter of WHIP ingest (RFC 9725, `crate::ingest::whip`): `POST
//! /v1/streams/{name}/whip` with an SDP offer answers 201 with the SDP answer and the session's
//! `Location`; `DELETE` on the Location ends it; `PATCH` (trickle ICE, ICE restart) is 405.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};

use super::ApiState;
use super::error::{ApiError, ApiResult};
use super::path::StreamPath;
use crate::error::{Error, ErrorKind};
use crate::ingest::whip::offer::MAX_OFFER_BYTES;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/streams/{name}/whip", post(create))
        .route("/v1/streams/{name}/whip/{session}", delete(end).patch(trickle))
}

async fn create(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    req: Request,
) -> ApiResult<Response> {
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let remote_addr = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.to_string());
    let body = axum::body::to_bytes(req.into_body(), MAX_OFFER_BYTES).await.map_err(|_| {
        Error::new(
            ErrorKind::TooLarge,
            format!("the SDP offer is larger than {MAX_OFFER_BYTES} bytes"),
        )
    })?;
    let opened = state.whip.open(&stream, content_type.as_deref(), &body, remote_addr).await?;

    let mut resp = (StatusCode::CREATED, opened.answer).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    let location = format!("/v1/streams/{}/whip/{}", stream.name, opened.id);
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", opened.id)) {
        h.insert(header::ETAG, v);
    }
    for server in state.whip.ice_servers() {
        for url in &server.urls {
            // RFC 9725 §4.6: ICE servers the client may use.
            let mut link = format!("<{url}>; rel=\"ice-server\"");
            if !server.username.is_empty() {
                link.push_str(&format!(
                    "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                    server.username, server.credential
                ));
            }
            if let Ok(v) = HeaderValue::from_str(&link) {
                h.append(header::LINK, v);
            }
        }
    }
    Ok(resp)
}

async fn end(
    State(state): State<ApiState>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.whip.end(&name, &id).await?;
    Ok(StatusCode::OK)
}

/// Trickle ICE and ICE restarts (RFC 9725 §4.3) are not supported: the answer is complete.
async fn trickle() -> Response {
    let mut resp = ApiError(Error::new(
        ErrorKind::MethodNotAllowed,
        "trickle ICE and ICE restarts are not supported; the answer carries every candidate",
    ))
    .into_response();
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("DELETE"));
    resp
}

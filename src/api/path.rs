//! [`StreamPath`]: the video stream named by a route's `{name}`, validated and looked up once
//! for every handler (400 for an invalid name, 404 for an unknown stream).

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;

use super::ApiState;
use super::error::ApiError;
use crate::error::Error;
use crate::name::StreamName;
use crate::video::VideoStream;

/// The stream of `/v1/streams/{name}/…`.
pub struct StreamPath(pub Arc<VideoStream>);

impl FromRequestParts<ApiState> for StreamPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| Error::invalid(format!("invalid path: {}", e.body_text())))?;
        let raw = params
            .iter()
            .find(|(k, _)| *k == "name")
            .map(|(_, v)| v)
            .ok_or_else(|| Error::internal("this route names no stream"))?;
        Ok(StreamPath(state.video.get(&StreamName::new(raw)?)?))
    }
}

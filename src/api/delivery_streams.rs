//! Delivery streams on the native API (`/v1/delivery-streams`): the same resources as the
//! Firehose API (`crate::api::kinesis::firehose`), for scripts and the web UI.
//!
//! - `GET /v1/delivery-streams`: the streams the caller may see, each as DescribeDeliveryStream
//!   describes it.
//! - `POST /v1/delivery-streams`: a CreateDeliveryStream request body (Firehose's members) → 201
//!   with the description.
//! - `GET`, `DELETE /v1/delivery-streams/{name}`.
//! - `POST /v1/delivery-streams/{name}/records`: each non-empty line of the body is one record
//!   (without its newline), answered once durable with `{"records": n, "recordIds": [...]}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Router};
use bytes::Bytes;
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiResult;
use crate::auth::Identity;
use crate::error::Error;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/delivery-streams", get(list).post(create))
        .route("/v1/delivery-streams/{name}", get(describe).delete(delete))
        .route("/v1/delivery-streams/{name}/records", post(put))
}

async fn list(
    State(state): State<ApiState>,
    Extension(who): Extension<Identity>,
) -> ApiResult<impl IntoResponse> {
    let mut out = Vec::new();
    for (name, _) in state.firehose.names() {
        if state.auth.sees(&who, &name)
            && let Ok(d) = state.firehose.describe(&name)
        {
            out.push(d);
        }
    }
    Ok(axum::Json(json!({ "deliveryStreams": out })))
}

async fn create(
    State(state): State<ApiState>,
    Extension(who): Extension<Identity>,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let body: Value = serde_json::from_slice(&body).map_err(|e| {
        Error::invalid(format!("the body is not a CreateDeliveryStream request: {e}"))
    })?;
    let created =
        super::kinesis::firehose::create(&state, &who, &body).await.map_err(Error::from)?;
    let name = body["DeliveryStreamName"].as_str().unwrap_or_default();
    let d = state.firehose.describe(name).map_err(Error::from)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "arn": created["DeliveryStreamARN"], "description": d })),
    ))
}

async fn describe(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(state.firehose.describe(&name).map_err(Error::from)?))
}

async fn delete(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<impl IntoResponse> {
    state.firehose.delete(&name).await.map_err(Error::from)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn put(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let records: Vec<Bytes> = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && *l != b"\r")
        .map(|l| body.slice_ref(l.strip_suffix(b"\r").unwrap_or(l)))
        .collect();
    if records.is_empty() {
        return Err(Error::invalid("the body has no record (one record per line)").into());
    }
    if let Some(big) = records.iter().find(|r| r.len() > crate::firehose::spec::MAX_RECORD_BYTES) {
        return Err(Error::invalid(format!(
            "a record of {} bytes is larger than {} bytes",
            big.len(),
            crate::firehose::spec::MAX_RECORD_BYTES
        ))
        .into());
    }
    let mut ids = Vec::with_capacity(records.len());
    for chunk in records.chunks(crate::firehose::spec::MAX_BATCH_RECORDS) {
        for r in state.firehose.put(&name, chunk.to_vec()).await.map_err(Error::from)? {
            ids.push(r.map_err(Error::from)?);
        }
    }
    Ok(axum::Json(json!({ "records": ids.len(), "recordIds": ids })))
}

//! The one place where errors become HTTP responses: `{"error":{"code":"…","message":"…"}}` with
//! the status for the error's kind. Also the JSON and query extractors whose rejections use the
//! same shape, so a malformed request always gets a precise 400/413 in the same format.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn status_and_code(kind: ErrorKind) -> (StatusCode, &'static str) {
    match kind {
        ErrorKind::InvalidArgument => (StatusCode::BAD_REQUEST, "InvalidArgument"),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "ResourceNotFound"),
        ErrorKind::Conflict => (StatusCode::CONFLICT, "ResourceInUse"),
        ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "AccessDenied"),
        ErrorKind::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
        ErrorKind::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
        ErrorKind::UnsupportedMediaType => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType")
        }
        ErrorKind::RangeNotSatisfiable => {
            (StatusCode::RANGE_NOT_SATISFIABLE, "RangeNotSatisfiable")
        }
        ErrorKind::Unprocessable => (StatusCode::UNPROCESSABLE_ENTITY, "Unprocessable"),
        ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = status_and_code(self.0.kind);
        let code = self.0.code.unwrap_or(code);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::debug!(error = %crate::error::error_chain(&self.0), "request refused");
        } else if status.is_server_error() {
            tracing::error!(error = %crate::error::error_chain(&self.0), "request failed");
        }
        let body = serde_json::json!({ "error": { "code": code, "message": self.0.message } });
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let secs = self.0.retry_after.map_or(1, |d| d.as_secs().max(1));
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        resp
    }
}

/// `Json<T>` whose rejections are `ApiError`s (400 naming the bad field, 413, 415).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(ApiError(json_rejection(rej))),
        }
    }
}

fn json_rejection(rej: JsonRejection) -> Error {
    match &rej {
        JsonRejection::MissingJsonContentType(_) => {
            Error::invalid("expected a JSON body with Content-Type: application/json")
        }
        JsonRejection::BytesRejection(_) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Error::new(ErrorKind::TooLarge, "request body is too large")
        }
        _ => Error::invalid(format!("invalid JSON body: {}", rej.body_text())),
    }
}

/// `Query<T>` whose rejections are `ApiError`s naming the bad parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rej) => Err(ApiError(query_rejection(rej))),
        }
    }
}

fn query_rejection(rej: QueryRejection) -> Error {
    Error::invalid(format!("invalid query string: {}", rej.body_text()))
}

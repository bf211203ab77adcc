//! Serving bytes over HTTP the way caches and players expect: strong ETags with 304 Not
//! Modified, single byte ranges with 206 and 416 (RFC 9110 §13, §14), from a list of `Bytes`
//! slices without joining them. Used by HLS segments and init segments, fragments and clips.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::error::{Error, ErrorKind};

/// Cache-Control of content that never changes under its URL (its ETag carries a format version).
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// What a conditional, ranged GET of `total` bytes asks for (RFC 9110 §13, §14).
pub(crate) enum RangeDecision {
    /// Answer with this now: 304 Not Modified, or 416 with `Content-Range: bytes */total`.
    Respond(Response),
    /// Send bytes `[start, end)` with this status (200, or 206 for a single range).
    Send { status: StatusCode, start: u64, end: u64 },
}

pub(crate) fn decide_range(headers: &HeaderMap, etag: &str, total: u64) -> RangeDecision {
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let resp = (StatusCode::NOT_MODIFIED, [(header::ETAG, etag.to_owned())]).into_response();
        return RangeDecision::Respond(resp);
    }
    match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => RangeDecision::Send { status: StatusCode::OK, start: 0, end: total },
        Some(spec) => match parse_byte_range(spec, total) {
            Ok(Some((start, end))) => {
                RangeDecision::Send { status: StatusCode::PARTIAL_CONTENT, start, end }
            }
            Ok(None) => RangeDecision::Send { status: StatusCode::OK, start: 0, end: total },
            Err(e) => {
                let mut resp = super::error::ApiError(e).into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                RangeDecision::Respond(resp)
            }
        },
    }
}

/// A response for bytes `[start, end)` of a `total`-byte resource, with its content type, ETag,
/// length, `Accept-Ranges` and, for 206, `Content-Range`.
pub(crate) fn ranged_response(
    body: Body,
    content_type: &'static str,
    etag: &str,
    status: StatusCode,
    (start, end, total): (u64, u64, u64),
) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{total}", end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    resp
}

/// Serves immutable bytes (one or more parts, concatenated) with ETag, conditional GET and a
/// single byte range (RFC 9110 §14).
pub fn serve_bytes(
    headers: &HeaderMap,
    content_type: &'static str,
    etag: &str,
    parts: Vec<Bytes>,
) -> Response {
    let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
    let (status, start, end) = match decide_range(headers, etag, total) {
        RangeDecision::Respond(resp) => return resp,
        RangeDecision::Send { status, start, end } => (status, start, end),
    };
    let sliced = slice_parts(parts, start, end);
    let body = Body::from_stream(futures_util::stream::iter(
        sliced.into_iter().map(Ok::<_, std::convert::Infallible>),
    ));
    let mut resp = ranged_response(body, content_type, etag, status, (start, end, total));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    resp
}

/// The bytes `[start, end)` of the concatenation of `parts`, without copying.
fn slice_parts(parts: Vec<Bytes>, start: u64, end: u64) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    for p in parts {
        let len = p.len() as u64;
        let (a, b) = (start.max(pos), end.min(pos + len));
        if a < b {
            out.push(p.slice((a - pos) as usize..(b - pos) as usize));
        }
        pos += len;
    }
    out
}

/// Parses one `bytes=` range against a resource of `total` bytes into `[start, end)`.
/// Multiple ranges are answered with the whole resource (`Ok(None)`), as RFC 9110 allows.
fn parse_byte_range(spec: &str, total: u64) -> Result<Option<(u64, u64)>, Error> {
    let unsatisfiable = || {
        Error::new(
            ErrorKind::RangeNotSatisfiable,
            format!("range {spec:?} is not satisfiable for {total} bytes"),
        )
    };
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if set.contains(',') {
        return Ok(None);
    }
    let (a, b) = set.trim().split_once('-').ok_or_else(unsatisfiable)?;
    let range = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| unsatisfiable())?;
            if n == 0 {
                return Err(unsatisfiable());
            }
            (total.saturating_sub(n), total)
        }
        (first, "") => (first.parse().map_err(|_| unsatisfiable())?, total),
        (first, last) => {
            let f: u64 = first.parse().map_err(|_| unsatisfiable())?;
            let l: u64 = last.parse().map_err(|_| unsatisfiable())?;
            if l < f {
                return Err(unsatisfiable());
            }
            (f, (l + 1).min(total))
        }
    };
    if range.0 >= total {
        return Err(unsatisfiable());
    }
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges() {
        assert_eq!(parse_byte_range("bytes=0-99", 1000).unwrap(), Some((0, 100)));
        assert_eq!(parse_byte_range("bytes=900-", 1000).unwrap(), Some((900, 1000)));
        assert_eq!(parse_byte_range("bytes=-100", 1000).unwrap(), Some((900, 1000)));
        assert_eq!(parse_byte_range("bytes=990-2000", 1000).unwrap(), Some((990, 1000)));
        assert_eq!(parse_byte_range("bytes=0-1,5-6", 1000).unwrap(), None);
        assert!(parse_byte_range("bytes=1000-", 1000).is_err());
        assert!(parse_byte_range("bytes=5-1", 1000).is_err());
        assert!(parse_byte_range("bytes=x-1", 1000).is_err());
    }

    #[test]
    fn slices_across_parts() {
        let parts = vec![Bytes::from_static(b"abc"), Bytes::from_static(b"defg")];
        let got: Vec<u8> = slice_parts(parts, 2, 5).concat();
        assert_eq!(got, b"cde");
    }
}

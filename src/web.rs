//! The browser UI, served at `/` (page) and `/ui/` (its modules and styles) from the files in `web/` and the pinned hls.js from npm
//! (`node_modules/hls.js/dist/hls.min.js`, checked by `build.rs`), all embedded into the binary
//! at build time so `make run` needs no separate step. The UI uses only the native REST API.
//!
//! Caching: hls.js is served at a path that carries its version and content hash, immutable for
//! a year. The UI's own files are small and change with the binary: `no-cache` with a content
//! ETag, so a reload revalidates them with a 304.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The hls.js version embedded (from its package.json).
pub const HLS_VERSION: &str = env!("SLUICE_HLS_VERSION");

static HLS_JS: &[u8] = include_bytes!("../node_modules/hls.js/dist/hls.min.js");

/// One embedded file: its bytes, type and ETag.
struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: &'static [u8], content_type: &'static str) -> Asset {
        Asset { body, content_type, etag: format!("\"{:016x}\"", fnv1a(body)) }
    }
}

/// FNV-1a over the bytes: a stable content fingerprint for ETags (not a security hash).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// The UI's files, by URL name.
static FILES: LazyLock<Vec<(&'static str, Asset)>> = LazyLock::new(|| {
    const JS: &str = "text/javascript; charset=utf-8";
    vec![
        ("app.js", Asset::new(include_bytes!("../web/app.js"), JS)),
        ("api.js", Asset::new(include_bytes!("../web/api.js"), JS)),
        ("format.js", Asset::new(include_bytes!("../web/format.js"), JS)),
        ("list.js", Asset::new(include_bytes!("../web/list.js"), JS)),
        ("stream.js", Asset::new(include_bytes!("../web/stream.js"), JS)),
        ("player.js", Asset::new(include_bytes!("../web/player.js"), JS)),
        ("timeline.js", Asset::new(include_bytes!("../web/timeline.js"), JS)),
        ("status.js", Asset::new(include_bytes!("../web/status.js"), JS)),
        ("stream-events.js", Asset::new(include_bytes!("../web/stream-events.js"), JS)),
        ("stream-fragments.js", Asset::new(include_bytes!("../web/stream-fragments.js"), JS)),
        ("stream-frame.js", Asset::new(include_bytes!("../web/stream-frame.js"), JS)),
        ("style.css", Asset::new(include_bytes!("../web/style.css"), "text/css; charset=utf-8")),
        ("favicon.svg", Asset::new(include_bytes!("../web/favicon.svg"), "image/svg+xml")),
    ]
});

static HLS: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(HLS_JS, "text/javascript; charset=utf-8"));

/// The URL path of the embedded hls.js: versioned and content-addressed.
pub fn hls_path() -> String {
    format!("/vendor/hls-{HLS_VERSION}-{}.min.js", &HLS.etag[1..9])
}

/// `index.html` with the hls.js path filled in.
static INDEX: LazyLock<Asset> = LazyLock::new(|| {
    let html = include_str!("../web/index.html")
        .replace("{{HLS_JS}}", &hls_path())
        .replace("{{HLS_VERSION}}", HLS_VERSION);
    Asset::new(Box::leak(html.into_boxed_str()).as_bytes(), "text/html; charset=utf-8")
});

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{file}", get(file))
        .route("/vendor/{file}", get(vendor))
}

fn serve(asset: &Asset, headers: &HeaderMap, cache: &'static str) -> Response {
    let mut resp = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag || t.trim() == "*"))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type))], asset.body)
            .into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&asset.etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

fn not_found(what: &str) -> Response {
    let body = serde_json::json!({
        "error": { "code": "ResourceNotFound", "message": format!("no UI file {what:?}") }
    });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

async fn index(headers: HeaderMap) -> Response {
    serve(&INDEX, &headers, "no-cache")
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match FILES.iter().find(|(n, _)| *n == name) {
        Some((_, asset)) => serve(asset, &headers, "no-cache"),
        None => not_found(&name),
    }
}

async fn vendor(Path(name): Path<String>, headers: HeaderMap) -> Response {
    if format!("/vendor/{name}") == hls_path() {
        serve(&HLS, &headers, "public, max-age=31536000, immutable")
    } else {
        not_found(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_the_versioned_hls_path() {
        let html = std::str::from_utf8(INDEX.body).unwrap_or_default();
        assert!(html.contains(&hls_path()), "index.html must load hls.js from {}", hls_path());
        assert!(!html.contains("{{"), "unfilled placeholder in index.html");
        assert!(hls_path().starts_with(&format!("/vendor/hls-{HLS_VERSION}-")));
    }

    #[test]
    fn fingerprints_differ_by_content() {
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}

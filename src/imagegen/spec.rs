//! A stream's image-generation configuration as clients send it in `PATCH /v1/streams/{name}`
//! (`imageGeneration`) and as the catalog stores it: what to sample (interval, clock), how to
//! render it (format, size, quality) and where the images go (a directory or a webhook).
//! Validation is strict and names the offending field, so a bad request is a precise 400.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::clock::TimestampKind;
use crate::config::ImageGenerationConfig as Limits;
use crate::error::{Error, Result};

/// Largest output width or height, in pixels (as the frame endpoints).
pub const MAX_DIMENSION: u32 = 8192;

/// Image encoding of generated images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Jpeg,
    Png,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
        }
    }
}

/// Where generated images go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Destination {
    /// Files under `<path>/<stream>/`, plus `<path>/<stream>/manifest.jsonl`.
    Directory { path: PathBuf },
    /// `POST` of each image to `url`, with metadata headers.
    Webhook { url: String },
}

impl Destination {
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Directory { .. } => "directory",
            Destination::Webhook { .. } => "webhook",
        }
    }
}

/// A stream's image-generation configuration (camelCase JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageGenerationSpec {
    /// One image per instant k·intervalMs on the chosen clock (epoch-aligned), in milliseconds.
    pub interval_ms: u64,
    #[serde(default)]
    pub format: OutputFormat,
    /// Output width in pixels; with only one of width/height the aspect ratio is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// JPEG quality, 1–100 (ignored for PNG). Default 80.
    #[serde(default = "default_quality")]
    pub quality: u8,
    /// The clock the instants are on: `producer` (default) or `server`.
    #[serde(default)]
    pub timestamps: TimestampKind,
    pub destination: Destination,
}

fn default_quality() -> u8 {
    80
}

impl ImageGenerationSpec {
    /// Parses a JSON value strictly (unknown fields are errors) and validates it.
    pub fn from_json(v: serde_json::Value, limits: &Limits) -> Result<Self> {
        let spec: ImageGenerationSpec = serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                Error::invalid(format!("imageGeneration: {inner}"))
            } else {
                Error::invalid(format!("imageGeneration.{path}: {inner}"))
            }
        })?;
        spec.validate(limits)?;
        Ok(spec)
    }

    /// Checks every field against Sluice's bounds and `[image_generation]` limits.
    pub fn validate(&self, limits: &Limits) -> Result<()> {
        let (min, max) =
            (limits.min_interval_ms.as_millis() as u64, limits.max_interval_ms.as_millis() as u64);
        if self.interval_ms < min || self.interval_ms > max {
            return Err(Error::invalid(format!(
                "imageGeneration.intervalMs: {} is out of range ({min} to {max} milliseconds)",
                self.interval_ms
            )));
        }
        for (field, v) in [("width", self.width), ("height", self.height)] {
            if let Some(v) = v
                && (v == 0 || v > MAX_DIMENSION)
            {
                return Err(Error::invalid(format!(
                    "imageGeneration.{field}: {v} is out of range (1 to {MAX_DIMENSION} pixels)"
                )));
            }
        }
        if !(1..=100).contains(&self.quality) {
            return Err(Error::invalid(format!(
                "imageGeneration.quality: {} is out of range (1 to 100)",
                self.quality
            )));
        }
        match &self.destination {
            Destination::Directory { path } => validate_directory(path),
            Destination::Webhook { url } => validate_webhook_url(url),
        }
    }
}

fn validate_directory(path: &std::path::Path) -> Result<()> {
    if !path.is_absolute() {
        return Err(Error::invalid(format!(
            "imageGeneration.destination.path: {} is not an absolute directory path",
            path.display()
        )));
    }
    if path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(Error::invalid(format!(
            "imageGeneration.destination.path: {} must not contain `..`",
            path.display()
        )));
    }
    if path.as_os_str().len() > 1024 {
        return Err(Error::invalid("imageGeneration.destination.path: longer than 1024 bytes"));
    }
    Ok(())
}

fn validate_webhook_url(url: &str) -> Result<()> {
    let bad =
        |why: &str| Err(Error::invalid(format!("imageGeneration.destination.url: {url:?} {why}")));
    if url.len() > 2048 {
        return bad("is longer than 2048 characters");
    }
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return bad(&format!("is not a URL ({e})")),
    };
    match parsed.scheme() {
        "http" => {}
        // reqwest is built without TLS in Sluice: say so rather than fail at delivery.
        "https" => return bad("uses https, which this build of Sluice cannot deliver to yet"),
        other => return bad(&format!("has scheme {other:?}; expected http")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return bad("has no host");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<ImageGenerationSpec> {
        ImageGenerationSpec::from_json(v, &Limits::default())
    }

    #[test]
    fn minimal_spec_gets_defaults_and_round_trips() {
        let s = parse(json!({
            "intervalMs": 1000,
            "destination": { "kind": "directory", "path": "/tmp/x" }
        }))
        .unwrap();
        assert_eq!(s.format, OutputFormat::Jpeg);
        assert_eq!(s.quality, 80);
        assert_eq!(s.timestamps, TimestampKind::Producer);
        let again = parse(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(s, again);
    }

    #[test]
    fn errors_name_the_field() {
        let dir = json!({ "kind": "directory", "path": "/tmp/x" });
        let cases = [
            (json!({ "intervalMs": 1, "destination": dir }), "intervalMs"),
            (json!({ "intervalMs": 1000, "width": 0, "destination": dir }), "width"),
            (json!({ "intervalMs": 1000, "height": 99999, "destination": dir }), "height"),
            (json!({ "intervalMs": 1000, "quality": 0, "destination": dir }), "quality"),
            (json!({ "intervalMs": 1000, "format": "gif", "destination": dir }), "format"),
            (json!({ "intervalMs": 1000, "bogus": 1, "destination": dir }), "bogus"),
            (
                json!({ "intervalMs": 1000, "destination": { "kind": "directory", "path": "rel" } }),
                "destination.path",
            ),
            (
                json!({ "intervalMs": 1000, "destination": { "kind": "s3", "path": "/x" } }),
                "destination",
            ),
            (
                json!({ "intervalMs": 1000, "destination": { "kind": "webhook", "url": "ftp://h/x" } }),
                "destination.url",
            ),
            (
                json!({ "intervalMs": 1000, "destination": { "kind": "webhook", "url": "not a url" } }),
                "destination.url",
            ),
            (json!({ "intervalMs": 1000 }), "destination"),
        ];
        for (v, field) in cases {
            let e = parse(v.clone()).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::InvalidArgument);
            assert!(e.message.contains(field), "{v}: {}", e.message);
        }
    }

    #[test]
    fn webhook_http_url_is_accepted() {
        let s = parse(json!({
            "intervalMs": 500, "format": "png", "width": 320,
            "destination": { "kind": "webhook", "url": "http://127.0.0.1:9/hook" }
        }))
        .unwrap();
        assert_eq!(s.destination.kind(), "webhook");
        assert_eq!(s.format.extension(), "png");
    }
}

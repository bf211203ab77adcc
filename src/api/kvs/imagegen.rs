//! KVS image generation configuration (Update/DescribeImageGenerationConfiguration) onto Sluice's
//! continuous image generation (`crate::imagegen`): the same generator the native
//! `imageGeneration` configures, so either API sees what the other set.
//!
//! KVS delivers only to S3 (`DestinationConfig.Uri` `s3://bucket/prefix`). Sluice delivers to a
//! directory (`file:///absolute/path`) or a webhook (`http(s)://…`); an `s3://` URI is refused with
//! a clear `InvalidArgumentException` until Sluice has an object store. `Status: DISABLED` (or no
//! configuration) stops generation and removes the configuration.

use serde_json::{Value, json};

use super::KvsError;
use super::control::{Ctx, finish, integer, string, structure};
use crate::config::Action;
use crate::datastream::validate::Violations;
use crate::imagegen::spec::{Destination, ImageGenerationSpec, OutputFormat};
use crate::services::StreamChange;

pub async fn update(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let conf = structure(body, "ImageGenerationConfiguration")?;
    let spec = match conf {
        None => None,
        Some(c) => spec_of(ctx, c)?,
    };
    let s = ctx.stream(body, "StreamARN")?;
    ctx.allow("UpdateImageGenerationConfiguration", Action::Admin, s.name.as_str())?;
    let change = StreamChange { image_generation: Some(spec), ..Default::default() };
    ctx.state.update_stream(&s.name, change, ctx.who.name()).await?;
    Ok(json!({}))
}

/// The native spec for a KVS configuration (`None` for `Status: DISABLED`).
fn spec_of(ctx: &Ctx<'_>, c: &Value) -> Result<Option<ImageGenerationSpec>, KvsError> {
    let status = string(c, "Status")?;
    let kind = string(c, "ImageSelectorType")?;
    let interval = integer(c, "SamplingInterval")?;
    let format = string(c, "Format")?;
    let (width, height) = (integer(c, "WidthPixels")?, integer(c, "HeightPixels")?);
    let quality = match structure(c, "FormatConfig")? {
        Some(f) => string(f, "JPEGQuality")?,
        None => None,
    };
    let dest = structure(c, "DestinationConfig")?;
    let p = "imageGenerationConfiguration";
    let mut v = Violations::default();
    v.one_of(&format!("{p}.status"), status, true, &["ENABLED", "DISABLED"], "ENABLED, DISABLED");
    v.one_of(
        &format!("{p}.imageSelectorType"),
        kind,
        true,
        &["SERVER_TIMESTAMP", "PRODUCER_TIMESTAMP"],
        "SERVER_TIMESTAMP, PRODUCER_TIMESTAMP",
    );
    v.range(&format!("{p}.samplingInterval"), interval, true, (200, 20_000));
    v.one_of(&format!("{p}.format"), format, true, &["JPEG", "PNG"], "JPEG, PNG");
    v.range(&format!("{p}.widthPixels"), width, false, (1, 3840));
    v.range(&format!("{p}.heightPixels"), height, false, (1, 2160));
    let uri = match dest {
        None => {
            v.null(&format!("{p}.destinationConfig"));
            None
        }
        Some(d) => {
            let uri = string(d, "Uri")?;
            v.length(&format!("{p}.destinationConfig.uri"), uri, true, (1, 255));
            v.length(
                &format!("{p}.destinationConfig.destinationRegion"),
                string(d, "DestinationRegion")?,
                true,
                (9, 14),
            );
            uri
        }
    };
    finish(v)?;
    if status == Some("DISABLED") {
        return Ok(None);
    }
    let uri = uri.unwrap_or_default();
    let destination = if let Some(path) = uri.strip_prefix("file://") {
        json!({ "kind": "directory", "path": path })
    } else if uri.starts_with("http://") || uri.starts_with("https://") {
        json!({ "kind": "webhook", "url": uri })
    } else if uri.starts_with("s3://") {
        return Err(KvsError::invalid(format!(
            "DestinationConfig.Uri {uri}: Sluice has no S3-compatible object store configured for image delivery; give a file:///absolute/directory or an http(s):// webhook URI."
        )));
    } else {
        return Err(KvsError::invalid(format!(
            "DestinationConfig.Uri {uri} is not a file:///, http:// or https:// URI."
        )));
    };
    let mut native = json!({
        "intervalMs": interval.unwrap_or(1000),
        "format": if format == Some("PNG") { "png" } else { "jpeg" },
        "timestamps": if kind == Some("SERVER_TIMESTAMP") { "server" } else { "producer" },
        "destination": destination,
    });
    if let Some(w) = width {
        native["width"] = json!(w);
    }
    if let Some(h) = height {
        native["height"] = json!(h);
    }
    if let Some(q) = quality {
        let q: u8 = q.parse().ok().filter(|q| (1..=100).contains(q)).ok_or_else(|| {
            KvsError::invalid(format!("JPEGQuality {q} is not between 1 and 100."))
        })?;
        native["quality"] = json!(q);
    }
    Ok(Some(ImageGenerationSpec::from_json(native, ctx.state.imagegen.limits())?))
}

pub fn describe(ctx: &Ctx<'_>, body: &Value) -> Result<Value, KvsError> {
    let s = ctx.stream(body, "StreamARN")?;
    ctx.allow("DescribeImageGenerationConfiguration", Action::Read, s.name.as_str())?;
    let Some(view) = ctx.state.imagegen.describe(s.id) else {
        return Ok(json!({}));
    };
    let spec = view.spec;
    let uri = match &spec.destination {
        Destination::Directory { path } => format!("file://{}", path.display()),
        Destination::Webhook { url } => url.clone(),
    };
    let mut c = json!({
        "Status": "ENABLED",
        "ImageSelectorType": match spec.timestamps {
            crate::clock::TimestampKind::Server => "SERVER_TIMESTAMP",
            crate::clock::TimestampKind::Producer => "PRODUCER_TIMESTAMP",
        },
        "DestinationConfig": {
            "Uri": uri,
            "DestinationRegion": ctx.state.config.data_streams.region,
        },
        "SamplingInterval": spec.interval_ms,
        "Format": if matches!(spec.format, OutputFormat::Png) { "PNG" } else { "JPEG" },
        "FormatConfig": { "JPEGQuality": spec.quality.to_string() },
    });
    if let Some(w) = spec.width {
        c["WidthPixels"] = json!(w);
    }
    if let Some(h) = spec.height {
        c["HeightPixels"] = json!(h);
    }
    Ok(json!({ "ImageGenerationConfiguration": c }))
}

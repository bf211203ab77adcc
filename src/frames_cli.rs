//! `sluice frames export`: a dataset of frames for ML, pulled from a running server's image-set
//! endpoint (`GET /v1/streams/{name}/images`, JSON pages with `NextToken`) into a directory of
//! images plus `manifest.jsonl` (one line per image: stream, sampling instant, both frame
//! timestamps, fragment number, file, size), with a progress bar on a terminal.
//!
//! Resumable: each image is written (atomically) before its manifest line is appended, and a rerun
//! reads the manifest and continues after the last instant it holds, so an interrupted export is
//! finished without duplicates. The server side is `crate::api::frames`; the manifest format is
//! shared with image generation's directory destination (`crate::imagegen::destination`).

use std::collections::HashSet;
use std::io::{IsTerminal, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::clock::{Timestamp, TimestampKind};
use crate::imagegen::destination::{
    ManifestLine, append_manifest, clock_name, image_file_name, write_atomic,
};

/// Arguments of `sluice frames export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Base URL of the Sluice server.
    #[arg(long, env = "SLUICE_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The video stream.
    #[arg(long)]
    pub stream: String,
    /// First instant (RFC 3339, e.g. 2026-11-21T10:00:00Z, or epoch milliseconds).
    #[arg(long)]
    pub start: String,
    /// End of the range (exclusive: instants are start + k·every < end; just start when
    /// end == start), same forms as --start.
    #[arg(long)]
    pub end: String,
    /// Sampling interval: 1s, 500ms, 2m, 1h, or a number of milliseconds.
    #[arg(long, default_value = "1s")]
    pub every: String,
    /// Output directory (created if missing; an earlier export there is resumed).
    #[arg(long)]
    pub out: PathBuf,
    /// Image format.
    #[arg(long, value_enum, default_value_t = CliFormat::Jpeg)]
    pub format: CliFormat,
    /// Output width in pixels (alone, the aspect ratio is kept).
    #[arg(long)]
    pub width: Option<u32>,
    /// Output height in pixels (alone, the aspect ratio is kept).
    #[arg(long)]
    pub height: Option<u32>,
    /// JPEG quality, 1-100 (the server's default when absent).
    #[arg(long)]
    pub quality: Option<u8>,
    /// The clock --start/--end/--every are on.
    #[arg(long, value_enum, default_value_t = CliClock::Producer)]
    pub timestamps: CliClock,
    /// Images per request page.
    #[arg(long, default_value_t = 25)]
    pub page_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CliFormat {
    Jpeg,
    Png,
}

impl CliFormat {
    fn name(self) -> &'static str {
        match self {
            CliFormat::Jpeg => "jpeg",
            CliFormat::Png => "png",
        }
    }
    fn extension(self) -> &'static str {
        match self {
            CliFormat::Jpeg => "jpg",
            CliFormat::Png => "png",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CliClock {
    Producer,
    Server,
}

impl From<CliClock> for TimestampKind {
    fn from(c: CliClock) -> Self {
        match c {
            CliClock::Producer => TimestampKind::Producer,
            CliClock::Server => TimestampKind::Server,
        }
    }
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    BadArgument(String),
    #[error("cannot reach the Sluice server at {server}: {detail}")]
    Unreachable { server: String, detail: String },
    #[error("stream {stream:?} does not exist on {server}")]
    StreamNotFound { stream: String, server: String },
    #[error("nothing to export: {0}")]
    NoMedia(String),
    #[error("the server refused the request ({status} {code}): {message}")]
    Server { status: u16, code: String, message: String },
    #[error("unexpected answer from the server: {0}")]
    BadResponse(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// What an export did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Images written by this run.
    pub written: u64,
    /// Instants the manifest already held (an earlier run).
    pub already: u64,
    /// Instants with nothing on display (NO_MEDIA).
    pub no_media: u64,
    /// Instants the server could not render (MEDIA_ERROR and others).
    pub errors: u64,
}

/// Parses `1s`, `500ms`, `2m`, `1h`, or bare milliseconds.
pub fn parse_every(s: &str) -> Result<Duration, ExportError> {
    let s = s.trim();
    let bad = || {
        ExportError::BadArgument(format!(
            "--every {s:?}: expected a duration such as 1s, 500ms, 2m, 1h or milliseconds"
        ))
    };
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n * 1e3,
        "m" | "min" => n * 60e3,
        "h" => n * 3600e3,
        _ => return Err(bad()),
    };
    if !ms.is_finite() || !(1.0..=86_400_000.0).contains(&ms) {
        return Err(ExportError::BadArgument(format!(
            "--every {s:?}: must be between 1 ms and 24 h"
        )));
    }
    Ok(Duration::from_millis(ms.round() as u64))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io { path: path.to_owned(), source }
}

/// Reads an earlier run's manifest: the instants it holds. A torn last line (an interrupted
/// append) is cut off so new lines start cleanly. Lines of another stream are an error.
fn read_manifest(out: &Path, stream: &str) -> Result<HashSet<i64>, ExportError> {
    let path = out.join("manifest.jsonl");
    let mut file = match std::fs::OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io_err(&path))?;
    if !text.is_empty() && !text.ends_with('\n') {
        let keep = text.rfind('\n').map_or(0, |i| i + 1);
        file.set_len(keep as u64).map_err(io_err(&path))?;
        file.seek(SeekFrom::End(0)).map_err(io_err(&path))?;
        text.truncate(keep);
    }
    let mut instants = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: ManifestLine = serde_json::from_str(line).map_err(|e| {
            ExportError::BadArgument(format!(
                "{}: line {} is not a Sluice manifest line ({e}); use another --out directory",
                path.display(),
                i + 1
            ))
        })?;
        if l.stream != stream {
            return Err(ExportError::BadArgument(format!(
                "{} holds an export of stream {:?}, not {stream:?}; use another --out directory",
                out.display(),
                l.stream
            )));
        }
        // An image whose file is gone is exported again.
        if out.join(&l.file).is_file() {
            instants.insert(l.instant.as_micros());
        }
    }
    Ok(instants)
}

/// Runs an export to completion.
pub async fn export(args: &ExportArgs) -> Result<Summary, ExportError> {
    // Millisecond precision, as the API prints timestamps.
    let start = Timestamp::parse_api(&args.start)
        .map(|t| Timestamp::from_millis(t.as_millis()))
        .map_err(|e| ExportError::BadArgument(format!("--start: {e}")))?;
    let end = Timestamp::parse_api(&args.end)
        .map(|t| Timestamp::from_millis(t.as_millis()))
        .map_err(|e| ExportError::BadArgument(format!("--end: {e}")))?;
    if end < start {
        return Err(ExportError::BadArgument(format!("--end {end} is before --start {start}")));
    }
    let every = parse_every(&args.every)?;
    let every_us = i64::try_from(every.as_micros()).unwrap_or(i64::MAX);
    if crate::name::StreamName::new(args.stream.as_str()).is_err() {
        return Err(ExportError::BadArgument(format!(
            "--stream {:?} is not a valid stream name ([a-zA-Z0-9_.-]{{1,256}})",
            args.stream
        )));
    }
    if let Some(q) = args.quality
        && !(1..=100).contains(&q)
    {
        return Err(ExportError::BadArgument(format!("--quality {q}: must be 1 to 100")));
    }
    if !(1..=1000).contains(&args.page_size) {
        return Err(ExportError::BadArgument("--page-size must be 1 to 1000".into()));
    }
    let base = reqwest::Url::parse(args.server.trim_end_matches('/'))
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            ExportError::BadArgument(format!(
                "--server {:?} is not an http:// URL of a Sluice server",
                args.server
            ))
        })?;
    let base = base.as_str().trim_end_matches('/').to_owned();
    std::fs::create_dir_all(&args.out).map_err(io_err(&args.out))?;
    let mut done = read_manifest(&args.out, &args.stream)?;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| ExportError::BadArgument(e.to_string()))?;
    check_stream(&client, &base, &args.stream).await?;

    // The server's instants: start + k·every < end, or just start when end == start.
    let span = u64::try_from(end.micros_since(start)).unwrap_or(0);
    let total = if span == 0 { 1 } else { span.div_ceil(every_us.unsigned_abs()) };
    let on_grid = |t: i64| {
        t >= start.as_micros()
            && (t < end.as_micros() || t == start.as_micros())
            && (t - start.as_micros()).rem_euclid(every_us) == 0
    };
    let already = done.iter().filter(|t| on_grid(**t)).count() as u64;
    // Continue after the last exported instant of this grid.
    let resume = done
        .iter()
        .copied()
        .filter(|t| on_grid(*t))
        .max()
        .map(|t| Timestamp::from_micros(t).add_micros(every_us));
    let bar = progress_bar(total, already);
    let mut summary = Summary { already, ..Summary::default() };
    let from = match resume {
        None => Some(start),
        Some(t) if t < end => Some(t),
        Some(_) => None,
    };
    if let Some(from) = from {
        let pager = Pager {
            client: &client,
            base: &base,
            args,
            start: from,
            end,
            every_ms: every.as_millis(),
        };
        let mut token: Option<String> = None;
        let mut busy_pages = 0;
        loop {
            let page = pager.fetch(token.as_deref()).await?;
            let busy = page.items.iter().any(|i| matches!(i, Item::Busy));
            for item in page.items {
                match item {
                    Item::Image(img) => {
                        if done.insert(img.instant.as_micros()) {
                            store_image(args, img)?;
                            summary.written += 1;
                            bar.inc(1);
                        }
                    }
                    Item::NoMedia => {
                        summary.no_media += 1;
                        bar.inc(1);
                    }
                    Item::Error(e) => {
                        summary.errors += 1;
                        bar.inc(1);
                        bar.println(format!("warning: {e}"));
                    }
                    Item::Busy => {}
                }
            }
            if busy {
                // Some instants met saturated decoders: ask for the same page again.
                busy_pages += 1;
                if busy_pages > BUSY_RETRIES {
                    return Err(ExportError::Server {
                        status: 503,
                        code: "ServiceUnavailable".into(),
                        message: format!("the server stayed busy for {BUSY_RETRIES} attempts"),
                    });
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            busy_pages = 0;
            match page.next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }
    bar.finish_and_clear();
    Ok(summary)
}

fn progress_bar(total: u64, position: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total).with_position(position.min(total));
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} images ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

async fn check_stream(
    client: &reqwest::Client,
    base: &str,
    stream: &str,
) -> Result<(), ExportError> {
    let url = format!("{base}/v1/streams/{stream}");
    let resp = client.get(&url).send().await.map_err(|e| ExportError::Unreachable {
        server: base.to_owned(),
        detail: crate::error::error_chain(&e),
    })?;
    match resp.status().as_u16() {
        200 => {
            let v: Value = resp.json().await.map_err(|e| {
                ExportError::BadResponse(format!(
                    "GET {url}: not JSON ({e}); is this a Sluice server?"
                ))
            })?;
            if v.get("name").and_then(Value::as_str) != Some(stream) {
                return Err(ExportError::BadResponse(format!(
                    "GET {url} did not describe a stream; is this a Sluice server?"
                )));
            }
            Ok(())
        }
        404 => {
            Err(ExportError::StreamNotFound { stream: stream.to_owned(), server: base.to_owned() })
        }
        status => Err(server_error(status, resp).await),
    }
}

async fn server_error(status: u16, resp: reqwest::Response) -> ExportError {
    let text = resp.text().await.unwrap_or_default();
    let v = serde_json::from_str::<Value>(&text).ok();
    let field = |k: &str| v.as_ref().and_then(|v| v["error"][k].as_str().map(str::to_owned));
    let code = field("code").unwrap_or_default();
    let message = field("message").unwrap_or(text);
    ExportError::Server { status, code, message }
}

/// An exported image and its metadata.
struct Exported {
    instant: Timestamp,
    producer_timestamp: Timestamp,
    server_timestamp: Timestamp,
    fragment_number: String,
    bytes: Vec<u8>,
    width: u32,
    height: u32,
}

enum Item {
    Image(Exported),
    NoMedia,
    /// The decoders were saturated for this instant: the page is asked for again.
    Busy,
    Error(String),
}

struct Page {
    items: Vec<Item>,
    next: Option<String>,
}

struct Pager<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
    args: &'a ExportArgs,
    start: Timestamp,
    end: Timestamp,
    every_ms: u128,
}

/// Attempts of one page while the server answers 503 (decoders busy).
const BUSY_RETRIES: u32 = 60;

impl Pager<'_> {
    async fn fetch(&self, token: Option<&str>) -> Result<Page, ExportError> {
        let a = self.args;
        let mut query: Vec<(&str, String)> = vec![
            ("start", self.start.to_rfc3339()),
            ("end", self.end.to_rfc3339()),
            ("intervalMs", self.every_ms.to_string()),
            ("format", a.format.name().to_owned()),
            ("timestamps", clock_name(a.timestamps.into()).to_owned()),
            ("maxResults", a.page_size.to_string()),
        ];
        if let Some(w) = a.width {
            query.push(("width", w.to_string()));
        }
        if let Some(h) = a.height {
            query.push(("height", h.to_string()));
        }
        if let Some(q) = a.quality {
            query.push(("quality", q.to_string()));
        }
        if let Some(t) = token {
            query.push(("nextToken", t.to_owned()));
        }
        let url = format!("{}/v1/streams/{}/images", self.base, a.stream);
        for _ in 0..BUSY_RETRIES {
            let resp = self
                .client
                .get(&url)
                .query(&query)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| ExportError::Unreachable {
                    server: self.base.to_owned(),
                    detail: crate::error::error_chain(&e),
                })?;
            let status = resp.status().as_u16();
            if status == 503 {
                let wait = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1)
                    .clamp(1, 30);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            if status == 404 {
                let e = server_error(status, resp).await;
                if let ExportError::Server { code, message, .. } = &e
                    && code == "NoMedia"
                {
                    return Err(ExportError::NoMedia(message.clone()));
                }
                return Err(ExportError::StreamNotFound {
                    stream: a.stream.clone(),
                    server: self.base.to_owned(),
                });
            }
            if status != 200 {
                return Err(server_error(status, resp).await);
            }
            let v: Value = resp
                .json()
                .await
                .map_err(|e| ExportError::BadResponse(format!("GET {url}: not JSON ({e})")))?;
            return parse_page(&v);
        }
        Err(ExportError::Server {
            status: 503,
            code: "ServiceUnavailable".into(),
            message: format!("the server stayed busy for {BUSY_RETRIES} attempts"),
        })
    }
}

/// The first of `names` present in `v`.
fn field<'a>(v: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| v.get(*n)).filter(|v| !v.is_null())
}

fn time_field(v: &Value, names: &[&str]) -> Result<Option<Timestamp>, ExportError> {
    match field(v, names) {
        None => Ok(None),
        Some(Value::String(s)) => Timestamp::parse_api(s)
            .map(Some)
            .map_err(|e| ExportError::BadResponse(format!("{}: {e}", names[0]))),
        Some(Value::Number(n)) => {
            // Kinesis-style epoch seconds (a float), as GetImages answers.
            let secs = n.as_f64().unwrap_or(0.0);
            Ok(Some(Timestamp::from_micros((secs * 1e6).round() as i64)))
        }
        Some(other) => Err(ExportError::BadResponse(format!("{}: {other}", names[0]))),
    }
}

fn parse_page(v: &Value) -> Result<Page, ExportError> {
    let images = field(v, &["Images", "images"])
        .and_then(Value::as_array)
        .ok_or_else(|| ExportError::BadResponse("no Images array in the page".into()))?;
    let mut items = Vec::with_capacity(images.len());
    for img in images {
        let instant = time_field(img, &["Instant", "TimeStamp", "Timestamp", "timestamp"])?
            .ok_or_else(|| {
                ExportError::BadResponse(format!("an image without TimeStamp: {img}"))
            })?;
        if let Some(err) = field(img, &["Error", "error"]) {
            let code = err.as_str().map(str::to_owned).unwrap_or_else(|| err.to_string());
            if code == "NO_MEDIA" {
                items.push(Item::NoMedia);
            } else if code == "BUSY" {
                items.push(Item::Busy);
            } else {
                let msg = field(img, &["ErrorMessage", "errorMessage", "Message"])
                    .and_then(Value::as_str)
                    .unwrap_or("");
                items.push(Item::Error(format!("{instant}: {code} {msg}")));
            }
            continue;
        }
        let content = field(img, &["ImageContent", "imageContent", "content"])
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ExportError::BadResponse(format!("image at {instant} has no content"))
            })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|e| ExportError::BadResponse(format!("image at {instant}: base64: {e}")))?;
        let producer_timestamp =
            time_field(img, &["ProducerTimestamp", "producerTimestamp"])?.unwrap_or(instant);
        let server_timestamp =
            time_field(img, &["ServerTimestamp", "serverTimestamp"])?.unwrap_or(instant);
        let fragment_number = field(img, &["FragmentNumber", "fragmentNumber"])
            .map(|f| f.as_str().map(str::to_owned).unwrap_or_else(|| f.to_string()))
            .unwrap_or_default();
        let dim = |names: &[&str]| {
            field(img, names).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok())
        };
        let (width, height) = match (dim(&["Width", "width"]), dim(&["Height", "height"])) {
            (Some(w), Some(h)) => (w, h),
            _ => image_size(&bytes).unwrap_or((0, 0)),
        };
        items.push(Item::Image(Exported {
            instant,
            producer_timestamp,
            server_timestamp,
            fragment_number,
            bytes,
            width,
            height,
        }));
    }
    let next = field(v, &["NextToken", "nextToken"]).and_then(Value::as_str).map(str::to_owned);
    Ok(Page { items, next })
}

fn store_image(args: &ExportArgs, img: Exported) -> Result<(), ExportError> {
    let file = image_file_name(&args.stream, img.instant, args.format.extension());
    write_atomic(&args.out, &file, &img.bytes).map_err(io_err(&args.out.join(&file)))?;
    let line = ManifestLine {
        stream: args.stream.clone(),
        instant: img.instant,
        timestamps: args.timestamps.into(),
        producer_timestamp: img.producer_timestamp,
        server_timestamp: img.server_timestamp,
        fragment_number: img.fragment_number,
        file,
        width: img.width,
        height: img.height,
        format: args.format.name().to_owned(),
    };
    append_manifest(&args.out, &line).map_err(io_err(&args.out.join("manifest.jsonl")))
}

/// Width and height from a PNG's IHDR or a JPEG's SOF marker.
pub fn image_size(b: &[u8]) -> Option<(u32, u32)> {
    let be16 = |i: usize| -> Option<u32> {
        Some(u32::from(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?])))
    };
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        let w = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?);
        let h = u32::from_be_bytes(b.get(20..24)?.try_into().ok()?);
        return Some((w, h));
    }
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            i += 1;
            continue;
        }
        let marker = b[i + 1];
        if marker == 0xFF || marker == 0x01 || (0xD0..=0xD9).contains(&marker) {
            i += 2;
            continue;
        }
        let len = usize::try_from(be16(i + 2)?).ok()?;
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            return Some((be16(i + 7)?, be16(i + 5)?));
        }
        i += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepts_the_usual_spellings() {
        assert_eq!(parse_every("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_every("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_every("250").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_every("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_every("0.5s").unwrap(), Duration::from_millis(500));
        for bad in ["", "s", "1x", "0s", "-1s", "48h"] {
            assert!(parse_every(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_size_reads_png_and_jpeg_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&360u32.to_be_bytes());
        assert_eq!(image_size(&png), Some((640, 360)));
        // SOI, APP0 (len 4), SOF0 (len 11): precision, height 360, width 640.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x01,
            0x68, 0x02, 0x80, 0x01, 0x01, 0x11, 0x00,
        ];
        assert_eq!(image_size(&jpeg), Some((640, 360)));
        assert_eq!(image_size(b"GIF89a"), None);
        assert_eq!(image_size(&[0xFF, 0xD8, 0xFF]), None);
    }

    #[test]
    fn a_torn_manifest_line_is_cut_and_other_streams_refused() {
        let dir = tempfile::tempdir().unwrap();
        let line = ManifestLine {
            stream: "cam".into(),
            instant: Timestamp::from_millis(1000),
            timestamps: TimestampKind::Producer,
            producer_timestamp: Timestamp::from_millis(990),
            server_timestamp: Timestamp::from_millis(1500),
            fragment_number: "3".into(),
            file: "cam_x.jpg".into(),
            width: 1,
            height: 1,
            format: "jpeg".into(),
        };
        std::fs::write(dir.path().join("cam_x.jpg"), b"x").unwrap();
        append_manifest(dir.path(), &line).unwrap();
        let path = dir.path().join("manifest.jsonl");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"stream\":\"cam\",\"ins");
        std::fs::write(&path, &text).unwrap();
        let got = read_manifest(dir.path(), "cam").unwrap();
        assert_eq!(got, HashSet::from([1_000_000]));
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("}\n"));
        assert!(read_manifest(dir.path(), "other").is_err());
    }
}

//! Where generated images go: a directory (files named by stream and sampling instant, written
//! atomically, plus a JSON-lines manifest) or an HTTP webhook (a bounded queue drained by a
//! delivery task that retries with exponential backoff and full jitter).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::status::Status;
use crate::auth::outbound::Outbound;
use crate::clock::Timestamp;
use crate::config::ImageGenerationConfig;
use crate::frames::Image;
use crate::metrics::{Metrics, StreamLabel};

/// One line of `manifest.jsonl` (the directory destination and `sluice frames export` share it).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestLine {
    pub stream: String,
    /// The sampling instant, on the clock named by `timestamps`.
    pub instant: Timestamp,
    pub timestamps: crate::clock::TimestampKind,
    /// The frame's producer and server timestamps.
    pub producer_timestamp: Timestamp,
    pub server_timestamp: Timestamp,
    pub fragment_number: String,
    /// File name, relative to the manifest's directory.
    pub file: String,
    pub width: u32,
    pub height: u32,
    pub format: String,
}

/// A timestamp in a form safe in file names on every filesystem: RFC 3339 with `:` → `-`
/// (`2026-11-21T10-00-01.000Z`); sorts in time order.
pub fn file_safe_timestamp(t: Timestamp) -> String {
    t.to_rfc3339().replace(':', "-")
}

/// `<stream>_<instant>.<ext>`.
pub fn image_file_name(stream: &str, instant: Timestamp, extension: &str) -> String {
    format!("{stream}_{}.{extension}", file_safe_timestamp(instant))
}

/// Writes `bytes` to `dir/name` atomically: a hidden temporary file, then a rename, so a reader
/// never sees half an image.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.flush()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Appends one JSON line to `dir/manifest.jsonl` in a single write.
pub fn append_manifest(dir: &Path, line: &ManifestLine) -> std::io::Result<()> {
    let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
    text.push('\n');
    let mut f =
        std::fs::OpenOptions::new().create(true).append(true).open(dir.join("manifest.jsonl"))?;
    f.write_all(text.as_bytes())
}

/// The directory destination of one stream: `<path>/<stream>/`.
#[derive(Debug, Clone)]
pub struct DirectoryDestination {
    dir: PathBuf,
}

impl DirectoryDestination {
    pub fn new(root: &Path, stream: &crate::name::StreamName) -> Self {
        DirectoryDestination { dir: root.join(stream.as_path_component()) }
    }

    /// Writes the image, then its manifest line; returns the file name. Blocking file I/O: call
    /// it from a blocking thread.
    pub fn store(&self, image: &Image, line: &ManifestLine) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        write_atomic(&self.dir, &line.file, &image.bytes)?;
        append_manifest(&self.dir, line)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// An image on its way to a webhook.
pub struct Delivery {
    pub image: Image,
    pub line: ManifestLine,
}

/// Shared by every stream's webhook: the HTTP client, the cap on requests in flight, the retry
/// policy.
pub struct WebhookShared {
    pub client: reqwest::Client,
    /// Requests in flight across all streams (`max_concurrent_webhooks`).
    pub permits: Arc<Semaphore>,
    pub config: ImageGenerationConfig,
}

impl WebhookShared {
    /// `outbound` limits where webhooks may connect, at every request (`crate::auth::outbound`):
    /// names resolve only to allowed addresses, and redirects are not followed (a webhook that
    /// answers 3xx has failed), so a receiver cannot send Sluice on to a loopback service.
    pub fn new(config: &ImageGenerationConfig, outbound: Outbound) -> Self {
        let client = reqwest::Client::builder()
            .timeout(config.webhook_timeout_ms)
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(outbound))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        WebhookShared {
            client,
            permits: Arc::new(Semaphore::new(config.max_concurrent_webhooks)),
            config: config.clone(),
        }
    }

    /// Backoff before retry number `retry` (1-based): full jitter over an exponentially growing
    /// cap (`initial · 2^(retry-1)`, at most `max`).
    pub fn backoff(&self, retry: u32) -> Duration {
        let c = &self.config;
        let cap = c
            .webhook_initial_backoff_ms
            .saturating_mul(1u32 << retry.saturating_sub(1).min(31))
            .min(c.webhook_max_backoff_ms);
        let cap_ms = cap.as_millis() as u64;
        let jitter = getrandom::u64().unwrap_or(u64::MAX / 2);
        Duration::from_millis(if cap_ms == 0 { 0 } else { jitter % (cap_ms + 1) })
    }
}

/// The webhook destination of one stream: a bounded queue and the task that drains it.
pub struct WebhookDestination {
    /// Bounded (`webhook_queue`): `try_send` never waits; a full queue drops the image (counted).
    tx: mpsc::Sender<Delivery>,
}

impl WebhookDestination {
    /// Starts the delivery task; it ends when `stop` is cancelled or the sender is dropped.
    pub fn start(
        url: String,
        shared: Arc<WebhookShared>,
        metrics: Arc<Metrics>,
        status: Arc<Status>,
        stop: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(shared.config.webhook_queue);
        tokio::spawn(deliver_loop(rx, url, shared, metrics, status, stop));
        WebhookDestination { tx }
    }

    /// Queues an image; `false` if the queue is full (the caller counts the drop).
    pub fn offer(&self, d: Delivery) -> bool {
        self.tx.try_send(d).is_ok()
    }
}

async fn deliver_loop(
    mut rx: mpsc::Receiver<Delivery>,
    url: String,
    shared: Arc<WebhookShared>,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
    stop: CancellationToken,
) {
    loop {
        let d = tokio::select! {
            d = rx.recv() => match d { Some(d) => d, None => return },
            _ = stop.cancelled() => return,
        };
        let label = Metrics::stream(&d.line.stream);
        tokio::select! {
            _ = deliver(&d, &url, &shared, &metrics, &status, &label) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Tries one image until it is accepted or its attempts run out.
async fn deliver(
    d: &Delivery,
    url: &str,
    shared: &WebhookShared,
    metrics: &Metrics,
    status: &Status,
    label: &StreamLabel,
) {
    let g = &metrics.imagegen;
    let attempts = shared.config.webhook_max_attempts.max(1);
    for attempt in 1..=attempts {
        if attempt > 1 {
            g.webhook_retries.get_or_create(label).inc();
            status.note_retry();
            tokio::time::sleep(shared.backoff(attempt - 1)).await;
        }
        let result = {
            // Closed only if the semaphore is dropped, which never happens while tasks run.
            let Ok(_permit) = shared.permits.acquire().await else { return };
            post(d, url, &shared.client).await
        };
        match result {
            Ok(()) => {
                g.delivered.get_or_create(label).inc();
                status.note_delivered();
                return;
            }
            Err(e) => {
                g.webhook_failures.get_or_create(label).inc();
                let msg = format!("webhook {url}: attempt {attempt} of {attempts}: {e}");
                tracing::debug!(stream = %d.line.stream, error = %msg, "webhook delivery failed");
                status.note_webhook_failure(msg);
            }
        }
    }
    g.dropped.get_or_create(label).inc();
    status.note_dropped();
    tracing::warn!(
        stream = %d.line.stream,
        instant = %d.line.instant,
        attempts,
        "webhook delivery gave up; image dropped"
    );
}

async fn post(d: &Delivery, url: &str, client: &reqwest::Client) -> Result<(), String> {
    let l = &d.line;
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, d.image.format.mime())
        .header("x-sluice-stream", &l.stream)
        .header("x-sluice-instant", l.instant.to_rfc3339())
        .header("x-sluice-timestamps", clock_name(l.timestamps))
        .header("x-sluice-producer-timestamp", l.producer_timestamp.to_rfc3339())
        .header("x-sluice-server-timestamp", l.server_timestamp.to_rfc3339())
        .header("x-sluice-fragment-number", &l.fragment_number)
        .header("x-sluice-image-width", l.width.to_string())
        .header("x-sluice-image-height", l.height.to_string())
        .body(d.image.bytes.clone())
        .send()
        .await
        .map_err(|e| crate::error::error_chain(&e))?;
    let st = resp.status();
    // Drain the body so the connection can be reused.
    let _ = resp.bytes().await;
    if st.is_success() { Ok(()) } else { Err(format!("answered {st}")) }
}

pub fn clock_name(k: crate::clock::TimestampKind) -> &'static str {
    match k {
        crate::clock::TimestampKind::Producer => "producer",
        crate::clock::TimestampKind::Server => "server",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_sort_in_time_order() {
        let a = image_file_name("cam1", Timestamp::from_millis(1_795_000_000_000), "jpg");
        let b = image_file_name("cam1", Timestamp::from_millis(1_795_000_001_500), "jpg");
        assert!(!a.contains(':'));
        assert!(a < b);
        assert!(a.starts_with("cam1_20") && a.ends_with(".jpg"), "{a}");
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let cfg = ImageGenerationConfig {
            webhook_initial_backoff_ms: Duration::from_millis(100),
            webhook_max_backoff_ms: Duration::from_millis(1000),
            ..Default::default()
        };
        let w = WebhookShared::new(&cfg, Outbound::anywhere());
        for retry in 1..40 {
            let cap = (100u64 << (retry - 1).min(20)).min(1000);
            for _ in 0..20 {
                assert!(w.backoff(retry) <= Duration::from_millis(cap));
            }
        }
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "a.jpg", b"xyz").unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["a.jpg".to_string()]);
        assert_eq!(std::fs::read(dir.path().join("a.jpg")).unwrap(), b"xyz");
    }
}

//! What a stream's image generation has done since the server started, shown by
//! `GET /v1/streams/{name}` under `imageGeneration.status` (the totals since the process started
//! are also in `/metrics`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::clock::{SharedClock, Timestamp};

/// Counters and the last error of one stream's generator. Atomics for the counters; a std `Mutex`
/// for the error text and positions (never held across an `.await`).
pub struct Status {
    clock: SharedClock,
    generated: AtomicU64,
    delivered: AtomicU64,
    webhook_failures: AtomicU64,
    webhook_retries: AtomicU64,
    dropped: AtomicU64,
    skipped: AtomicU64,
    errors: AtomicU64,
    detail: Mutex<Detail>,
}

#[derive(Default, Clone)]
struct Detail {
    last_error: Option<String>,
    last_error_at: Option<Timestamp>,
    last_instant: Option<Timestamp>,
    next_instant: Option<Timestamp>,
}

/// The JSON view.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub images_generated: u64,
    pub images_delivered: u64,
    pub webhook_failures: u64,
    pub webhook_retries: u64,
    pub images_dropped: u64,
    pub instants_skipped: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    /// The last sampling instant an image was generated for.
    pub last_instant: Option<Timestamp>,
    /// The next sampling instant (the persisted cursor), once known.
    pub next_instant: Option<Timestamp>,
}

impl Status {
    pub fn new(clock: SharedClock) -> Self {
        Status {
            clock,
            generated: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            webhook_failures: AtomicU64::new(0),
            webhook_retries: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            detail: Mutex::new(Detail::default()),
        }
    }

    fn detail(&self) -> std::sync::MutexGuard<'_, Detail> {
        self.detail.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn note_generated(&self, instant: Timestamp) {
        self.generated.fetch_add(1, Ordering::Relaxed);
        self.detail().last_instant = Some(instant);
    }
    pub fn note_delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }
    pub fn note_retry(&self) {
        self.webhook_retries.fetch_add(1, Ordering::Relaxed);
    }
    pub fn note_webhook_failure(&self, error: String) {
        self.webhook_failures.fetch_add(1, Ordering::Relaxed);
        self.set_error(error);
    }
    pub fn note_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
    pub fn note_skipped(&self, n: u64) {
        self.skipped.fetch_add(n, Ordering::Relaxed);
    }
    pub fn note_error(&self, error: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.set_error(error);
    }
    pub fn set_next(&self, next: Option<Timestamp>) {
        self.detail().next_instant = next;
    }

    fn set_error(&self, error: String) {
        let mut d = self.detail();
        d.last_error = Some(error);
        d.last_error_at = Some(self.clock.now());
    }

    pub fn view(&self) -> StatusView {
        let d = self.detail().clone();
        StatusView {
            images_generated: self.generated.load(Ordering::Relaxed),
            images_delivered: self.delivered.load(Ordering::Relaxed),
            webhook_failures: self.webhook_failures.load(Ordering::Relaxed),
            webhook_retries: self.webhook_retries.load(Ordering::Relaxed),
            images_dropped: self.dropped.load(Ordering::Relaxed),
            instants_skipped: self.skipped.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            last_error: d.last_error,
            last_error_at: d.last_error_at,
            last_instant: d.last_instant,
            next_instant: d.next_instant,
        }
    }
}

//! The memory budget: one number (`[server] memory_limit`) that caps what Sluice's large, variable
//! buffers may hold together: the segment cache, producers' fragments being received, Kinesis
//! request bodies and GetRecords answers.
//!
//! Each holder takes a [`Reservation`] before it allocates and gives it back by dropping it. A
//! reservation that would take the total past the limit is refused, and the holder turns that
//! into its surface's "busy, retry" answer (an ingest ERROR ack, a 503 with `Retry-After`, a
//! shorter GetRecords answer), so load beyond the budget slows clients down instead of growing
//! the process until the kernel kills it. Small, fixed-size state (indexes, queues of a few
//! hundred entries, parsers) is not accounted; docs/config.md lists it part by part.
//!
//! Without a limit the budget still counts, so `/metrics` shows what each part holds.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::metrics::{KindLabel, Metrics};

/// The parts that reserve, as they appear in the `part` label of the memory metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    SegmentCache,
    Ingest,
    Kinesis,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::SegmentCache => "segment_cache",
            Part::Ingest => "ingest",
            Part::Kinesis => "kinesis",
        }
    }
}

pub struct MemoryBudget {
    limit: Option<usize>,
    used: AtomicUsize,
    metrics: Arc<Metrics>,
    /// Woken whenever bytes are given back, for holders that wait for room.
    released: Notify,
}

/// A reservation that did not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exhausted {
    pub part: Part,
    pub requested: usize,
    pub used: usize,
    pub limit: usize,
}

impl fmt::Display for Exhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server's memory budget is in use ({} of {} bytes held; {} more needed for {}); retry shortly",
            self.used,
            self.limit,
            self.requested,
            self.part.name()
        )
    }
}

impl std::error::Error for Exhausted {}

impl MemoryBudget {
    pub fn new(limit: Option<usize>, metrics: Arc<Metrics>) -> Arc<Self> {
        metrics.memory_limit.set(limit.map_or(0, |l| i64::try_from(l).unwrap_or(i64::MAX)));
        Arc::new(MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
            metrics,
            released: Notify::new(),
        })
    }

    /// A budget without a limit and with its own metrics, for tests and tools.
    pub fn unlimited() -> Arc<Self> {
        Self::new(None, Arc::new(Metrics::new()))
    }

    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// An empty reservation for `part`, to be grown with [`Reservation::resize`].
    pub fn empty(self: &Arc<Self>, part: Part) -> Reservation {
        Reservation { budget: self.clone(), part, bytes: 0 }
    }

    /// Reserves `bytes` for `part`, or says why not.
    pub fn reserve(self: &Arc<Self>, part: Part, bytes: usize) -> Result<Reservation, Exhausted> {
        let mut r = self.empty(part);
        r.resize(bytes)?;
        Ok(r)
    }

    /// Reserves as much of `wanted` as is free (possibly nothing).
    pub fn reserve_up_to(self: &Arc<Self>, part: Part, wanted: usize) -> Reservation {
        let mut r = self.empty(part);
        loop {
            let used = self.used();
            let free = self.limit.map_or(wanted, |l| l.saturating_sub(used)).min(wanted);
            if self.take(part, free, used).is_ok() {
                r.bytes = free;
                return r;
            }
        }
    }

    /// Moves `used` to `used + more` if that fits; `seen` is the value `more` was decided on.
    fn take(&self, part: Part, more: usize, seen: usize) -> Result<(), ()> {
        let next = seen.saturating_add(more);
        if self.limit.is_some_and(|l| next > l) {
            return Err(());
        }
        self.used
            .compare_exchange(seen, next, Ordering::AcqRel, Ordering::Acquire)
            .map_err(drop)?;
        self.gauge(part).inc_by(i64::try_from(more).unwrap_or(i64::MAX));
        Ok(())
    }

    fn grow(&self, part: Part, more: usize) -> Result<(), Exhausted> {
        loop {
            let used = self.used();
            if let Some(limit) = self.limit.filter(|&l| used.saturating_add(more) > l) {
                self.metrics.memory_refused.get_or_create(&label(part)).inc();
                return Err(Exhausted { part, requested: more, used, limit });
            }
            if self.take(part, more, used).is_ok() {
                return Ok(());
            }
        }
    }

    fn release(&self, part: Part, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        self.gauge(part).dec_by(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.released.notify_waiters();
    }

    fn gauge(&self, part: Part) -> prometheus_client::metrics::gauge::Gauge {
        self.metrics.memory_reserved.get_or_create(&label(part)).clone()
    }
}

fn label(part: Part) -> KindLabel {
    KindLabel { kind: part.name().to_owned() }
}

/// Bytes held against the budget until dropped.
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    part: Part,
    bytes: usize,
}

impl Reservation {
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Grows or shrinks the reservation to `bytes`. Shrinking always succeeds; growing fails,
    /// leaving the reservation as it was, when the budget has not enough left.
    pub fn resize(&mut self, bytes: usize) -> Result<(), Exhausted> {
        if bytes > self.bytes {
            self.budget.grow(self.part, bytes - self.bytes)?;
        } else {
            self.budget.release(self.part, self.bytes - bytes);
        }
        self.bytes = bytes;
        Ok(())
    }

    /// [`Reservation::resize`], waiting up to `patience` for other holders to give bytes back
    /// when the budget is in use (a producer's reading pauses, which slows it down through TCP,
    /// instead of failing at once).
    pub async fn resize_within(
        &mut self,
        bytes: usize,
        patience: Duration,
    ) -> Result<(), Exhausted> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let released = self.budget.clone();
            let notified = released.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.resize(bytes) {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => {
                    let _ = tokio::time::timeout_at(deadline, notified).await;
                }
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.part, self.bytes);
    }
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reservation({} bytes for {})", self.bytes, self.part.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_add_up_and_give_back() {
        let b = MemoryBudget::new(Some(100), Arc::new(Metrics::new()));
        let mut a = b.reserve(Part::Ingest, 60).unwrap();
        let refused = b.reserve(Part::Kinesis, 50).unwrap_err();
        assert_eq!((refused.used, refused.limit, refused.requested), (60, 100, 50));
        assert!(refused.to_string().contains("retry"));
        let c = b.reserve(Part::Kinesis, 40).unwrap();
        assert_eq!(b.used(), 100);
        assert!(a.resize(61).is_err(), "growing past the limit fails");
        assert_eq!(a.bytes(), 60, "and leaves the reservation as it was");
        a.resize(10).unwrap();
        assert_eq!(b.used(), 50);
        drop(c);
        drop(a);
        assert_eq!(b.used(), 0);
        let text = b.metrics.render();
        assert!(text.contains("sluice_memory_limit_bytes 100"), "{text}");
        assert!(text.contains("sluice_memory_refused_total{kind=\"kinesis\"} 1"), "{text}");
    }

    #[test]
    fn reserve_up_to_takes_what_is_free() {
        let b = MemoryBudget::new(Some(100), Arc::new(Metrics::new()));
        let _a = b.reserve(Part::SegmentCache, 70).unwrap();
        assert_eq!(b.reserve_up_to(Part::Kinesis, 50).bytes(), 30);
        let full = b.reserve_up_to(Part::Kinesis, 50);
        assert_eq!(full.bytes(), 30);
        assert_eq!(b.reserve_up_to(Part::Kinesis, 50).bytes(), 0);
        assert_eq!(MemoryBudget::unlimited().reserve_up_to(Part::Kinesis, 50).bytes(), 50);
    }

    #[tokio::test]
    async fn a_holder_waits_for_bytes_given_back() {
        let b = MemoryBudget::new(Some(100), Arc::new(Metrics::new()));
        let held = b.reserve(Part::Kinesis, 80).unwrap();
        let mut r = b.empty(Part::Ingest);
        let err = r.resize_within(50, Duration::from_millis(20)).await.unwrap_err();
        assert_eq!(err.requested, 50);
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(held);
        });
        r.resize_within(50, Duration::from_secs(60)).await.unwrap();
        assert_eq!(b.used(), 50);
        release.await.unwrap();
    }

    #[test]
    fn unlimited_still_counts() {
        let b = MemoryBudget::unlimited();
        let r = b.reserve(Part::Ingest, usize::MAX / 2).unwrap();
        assert_eq!(b.used(), usize::MAX / 2);
        drop(r);
        assert_eq!(b.used(), 0);
    }
}

//! The recorded-time overview of a stream for a time window, at any zoom: exact recorded ranges
//! and the gaps between them when the window holds few fragments, per-bucket coverage when it
//! holds many (a month of 1-second fragments is millions). Bucket mode never scans: each bucket
//! boundary is one binary search in the index (`Log::lower_bound`), and each non-empty bucket
//! reads two index entries, so the cost is O(buckets × log n) whatever the window. Served by
//! `api::timeline`.

use super::VideoStream;
use super::fragment::FragmentNumber;
use super::fragment::{FragmentInfo, TimestampKind};
use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// Windows holding at most this many fragments are answered exactly (one index read of the
/// window's entries); larger ones in buckets.
pub const MAX_EXACT_FRAGMENTS: u64 = 10_000;
/// Largest `buckets` a query may ask for.
pub const MAX_BUCKETS: usize = 2_000;

/// What to summarize.
#[derive(Debug, Clone, Copy)]
pub struct TimelineQuery {
    pub clock: TimestampKind,
    /// Window start; default: the stream's earliest fragment on `clock`.
    pub start: Option<Timestamp>,
    /// Window end; default: the end of the stream's latest fragment on `clock`.
    pub end: Option<Timestamp>,
    /// Buckets for a large window (1..=[`MAX_BUCKETS`]).
    pub buckets: usize,
    /// A hole longer than this between one fragment's end and the next one's start is a gap.
    pub gap_us: i64,
    /// `None`: exact when the window holds at most [`MAX_EXACT_FRAGMENTS`], else buckets.
    pub resolution: Option<Resolution>,
}

/// A recorded (or missing) span of time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub start: Timestamp,
    pub end: Timestamp,
    /// Fragments starting in the span (0 for gaps).
    pub fragments: u64,
}

/// One bucket of a large window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub start: Timestamp,
    pub end: Timestamp,
    /// Fragments starting in the bucket (exact: a difference of two index positions).
    pub fragments: u64,
    /// Share of the bucket covered by media, 0.0–1.0, estimated from the fragment count and the
    /// durations of the bucket's first and last fragments.
    pub coverage: f64,
}

/// How precise the answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// `ranges` and `gaps` are exact (within the gap threshold).
    Exact,
    /// `ranges` are runs of non-empty buckets; `buckets` carry the coverage.
    Buckets,
}

/// The answer: the window, what is recorded in it and what is not.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The window; `None` when the stream is empty and no bounds were given.
    pub window: Option<(Timestamp, Timestamp)>,
    pub resolution: Resolution,
    /// Fragments starting in the window (plus one that started before it and reaches into it).
    pub fragment_count: u64,
    pub ranges: Vec<Span>,
    pub gaps: Vec<Span>,
    pub buckets: Vec<Bucket>,
}

fn end_on(f: &FragmentInfo, clock: TimestampKind) -> Timestamp {
    f.time(clock).add_micros(i64::from(f.meta.duration_us))
}

/// The complement of `ranges` (sorted, disjoint) within `[start, end)`.
fn gaps_between(ranges: &[Span], start: Timestamp, end: Timestamp) -> Vec<Span> {
    let mut gaps = Vec::new();
    let mut cursor = start;
    for r in ranges {
        if r.start > cursor {
            gaps.push(Span { start: cursor, end: r.start, fragments: 0 });
        }
        cursor = cursor.max(r.end);
    }
    if end > cursor {
        gaps.push(Span { start: cursor, end, fragments: 0 });
    }
    gaps
}

/// Merges fragments (in order) into ranges, clipped to `[start, end)`: a fragment joins the
/// current range unless it starts more than `gap_us` after the range's end.
fn merge_ranges(
    frags: &[FragmentInfo],
    clock: TimestampKind,
    start: Timestamp,
    end: Timestamp,
    gap_us: i64,
) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for f in frags {
        let (fs, fe) = (f.time(clock).max(start), end_on(f, clock).min(end));
        if fe < fs {
            continue;
        }
        match out.last_mut() {
            Some(r) if fs.micros_since(r.end) <= gap_us => {
                r.end = r.end.max(fe);
                r.fragments += 1;
            }
            _ => out.push(Span { start: fs, end: fe, fragments: 1 }),
        }
    }
    out
}

impl VideoStream {
    /// The recorded ranges, gaps and (for large windows) bucket coverage of a window.
    pub fn timeline(&self, q: TimelineQuery) -> Result<Timeline> {
        if q.buckets == 0 || q.buckets > MAX_BUCKETS {
            return Err(Error::invalid(format!("buckets must be between 1 and {MAX_BUCKETS}")));
        }
        let stats = self.fragments.stats();
        let first = stats.first.map(|e| FragmentInfo::from_entry(&e));
        let last = stats.last.map(|e| FragmentInfo::from_entry(&e));
        let start = q.start.or(first.map(|f| f.time(q.clock)));
        let end = q.end.or(last.map(|f| end_on(&f, q.clock)));
        let (Some(start), Some(end)) = (start, end) else {
            return Ok(Timeline {
                window: None,
                resolution: Resolution::Exact,
                fragment_count: 0,
                ranges: Vec::new(),
                gaps: Vec::new(),
                buckets: Vec::new(),
            });
        };
        if end < start {
            return Err(Error::invalid(format!(
                "end {end} is before start {start}: give both, or an end after the stream's first fragment"
            )));
        }
        let key = q.clock.log_key();
        let mut lo = FragmentNumber::from(self.fragments.lower_bound(key, start)?);
        let hi = FragmentNumber::from(self.fragments.lower_bound(key, end)?);
        // A fragment that started before the window may still be playing at its start.
        if lo.offset() > stats.start
            && let Some(prev) = self.fragment(FragmentNumber(lo.0 - 1))?
            && end_on(&prev, q.clock) > start
        {
            lo = prev.number;
        }
        let count = hi.0.saturating_sub(lo.0);
        let exact = match q.resolution {
            None => count <= MAX_EXACT_FRAGMENTS,
            Some(Resolution::Buckets) => false,
            Some(Resolution::Exact) if count > MAX_EXACT_FRAGMENTS => {
                return Err(Error::invalid(format!(
                    "the window holds {count} fragments; exact answers are limited to {MAX_EXACT_FRAGMENTS}: narrow the window or ask for buckets"
                )));
            }
            Some(Resolution::Exact) => true,
        };
        if exact {
            let frags: Vec<FragmentInfo> = self
                .fragments
                .entries(lo.offset(), hi.offset(), count as usize)?
                .iter()
                .map(FragmentInfo::from_entry)
                .collect();
            let ranges = merge_ranges(&frags, q.clock, start, end, q.gap_us);
            let gaps = gaps_between(&ranges, start, end);
            return Ok(Timeline {
                window: Some((start, end)),
                resolution: Resolution::Exact,
                fragment_count: count,
                ranges,
                gaps,
                buckets: Vec::new(),
            });
        }
        let buckets = self.buckets(q, start, end)?;
        let mut ranges: Vec<Span> = Vec::new();
        for b in buckets.iter().filter(|b| b.fragments > 0) {
            match ranges.last_mut() {
                Some(r) if r.end == b.start => {
                    r.end = b.end;
                    r.fragments += b.fragments;
                }
                _ => ranges.push(Span { start: b.start, end: b.end, fragments: b.fragments }),
            }
        }
        let gaps = gaps_between(&ranges, start, end);
        Ok(Timeline {
            window: Some((start, end)),
            resolution: Resolution::Buckets,
            fragment_count: count,
            ranges,
            gaps,
            buckets,
        })
    }

    /// `q.buckets` equal buckets over `[start, end)`: N+1 binary searches, two entry reads per
    /// non-empty bucket.
    fn buckets(&self, q: TimelineQuery, start: Timestamp, end: Timestamp) -> Result<Vec<Bucket>> {
        let key = q.clock.log_key();
        let n = q.buckets as i64;
        let width = end.micros_since(start).max(1);
        let edge = |i: i64| -> Timestamp {
            // i * width / n without overflow for windows of centuries.
            let off = (i128::from(width) * i128::from(i) / i128::from(n)) as i64;
            start.add_micros(off)
        };
        let mut out = Vec::with_capacity(q.buckets);
        let mut lo = FragmentNumber::from(self.fragments.lower_bound(key, start)?);
        for i in 0..n {
            let (b0, b1) = (edge(i), edge(i + 1));
            let hi = if i + 1 == n {
                FragmentNumber::from(self.fragments.lower_bound(key, end)?)
            } else {
                FragmentNumber::from(self.fragments.lower_bound(key, b1)?)
            };
            let fragments = hi.0.saturating_sub(lo.0);
            let mut coverage = 0.0;
            if fragments > 0 {
                let a = self.fragment(lo)?;
                let z = self.fragment(FragmentNumber(hi.0 - 1))?;
                let durs: Vec<f64> =
                    [a, z].iter().flatten().map(|f| f64::from(f.meta.duration_us)).collect();
                if !durs.is_empty() {
                    let mean = durs.iter().sum::<f64>() / durs.len() as f64;
                    let bucket_us = b1.micros_since(b0).max(1) as f64;
                    coverage = (fragments as f64 * mean / bucket_us).clamp(0.0, 1.0);
                }
            }
            out.push(Bucket { start: b0, end: b1, fragments, coverage });
            lo = hi;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::fragment::FragmentMeta;

    fn frag(n: u64, start_ms: i64, dur_ms: u32) -> FragmentInfo {
        FragmentInfo {
            number: FragmentNumber(n),
            size: 100,
            producer_ts: Timestamp::from_millis(start_ms),
            server_ts: Timestamp::from_millis(start_ms),
            meta: FragmentMeta { duration_us: dur_ms * 1000, ..FragmentMeta::default() },
        }
    }

    fn ms(v: i64) -> Timestamp {
        Timestamp::from_millis(v)
    }

    #[test]
    fn merges_contiguous_fragments_and_splits_at_gaps() {
        let frags =
            [frag(0, 0, 1000), frag(1, 1000, 1000), frag(2, 5000, 1000), frag(3, 6010, 990)];
        let r = merge_ranges(&frags, TimestampKind::Producer, ms(0), ms(10_000), 50_000);
        assert_eq!(
            r,
            vec![
                Span { start: ms(0), end: ms(2000), fragments: 2 },
                Span { start: ms(5000), end: ms(7000), fragments: 2 },
            ]
        );
        let g = gaps_between(&r, ms(0), ms(10_000));
        assert_eq!(
            g,
            vec![
                Span { start: ms(2000), end: ms(5000), fragments: 0 },
                Span { start: ms(7000), end: ms(10_000), fragments: 0 },
            ]
        );
    }

    #[test]
    fn clips_ranges_to_the_window() {
        let frags = [frag(0, 0, 1000), frag(1, 1000, 1000)];
        let r = merge_ranges(&frags, TimestampKind::Producer, ms(500), ms(1500), 0);
        assert_eq!(r, vec![Span { start: ms(500), end: ms(1500), fragments: 2 }]);
        assert!(gaps_between(&r, ms(500), ms(1500)).is_empty());
    }

    #[test]
    fn a_window_without_media_is_one_gap() {
        assert_eq!(
            gaps_between(&[], ms(0), ms(10)),
            vec![Span { start: ms(0), end: ms(10), fragments: 0 }]
        );
    }
}

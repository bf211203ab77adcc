//! Playback queries over a stream's fragment index: fragment listing by either clock, and HLS
//! segments (runs of fragments from one segment start to the next) for on-demand ranges and for
//! the live window (with its parts, for low-latency HLS). Every query is a binary search plus a
//! walk over the k entries it returns.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::VideoStream;
use super::fragment::FragmentNumber;
use super::fragment::{FragmentInfo, TimestampKind};
use crate::clock::Timestamp;
use crate::error::Result;

/// Upper bound on fragments walked back to find a segment start (a GOP longer than this many
/// fragments is cut into segments that do not start with a keyframe).
pub const MAX_SEGMENT_FRAGMENTS: usize = 600;

/// A run of fragments served as one HLS media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRef {
    pub first: FragmentNumber,
    pub last: FragmentNumber,
    pub segment: u32,
    pub discontinuity: u32,
    /// The first fragment starts a discontinuity (new producer session or init segment).
    pub discontinuity_start: bool,
    pub keyframe: bool,
    pub init_id: u32,
    pub producer_ts: Timestamp,
    pub server_ts: Timestamp,
    pub duration_us: u64,
    pub bytes: u64,
    pub fragment_count: u32,
}

impl SegmentRef {
    pub fn start(&self, clock: TimestampKind) -> Timestamp {
        match clock {
            TimestampKind::Producer => self.producer_ts,
            TimestampKind::Server => self.server_ts,
        }
    }
    pub fn end(&self, clock: TimestampKind) -> Timestamp {
        self.start(clock).add_micros(i64::try_from(self.duration_us).unwrap_or(i64::MAX))
    }
}

/// Splits consecutive fragments into segments at every segment start and at every init change.
pub fn group_segments(frags: &[FragmentInfo]) -> Vec<SegmentRef> {
    let mut out: Vec<SegmentRef> = Vec::new();
    for f in frags {
        let joins = out.last().is_some_and(|s| {
            !f.meta.segment_start()
                && s.init_id == f.meta.init_id
                && s.last.0 + 1 == f.number.0
                && s.fragment_count < MAX_SEGMENT_FRAGMENTS as u32
        });
        if joins {
            if let Some(s) = out.last_mut() {
                s.last = f.number;
                s.duration_us += u64::from(f.meta.duration_us);
                s.bytes += u64::from(f.size);
                s.fragment_count += 1;
            }
        } else {
            out.push(SegmentRef {
                first: f.number,
                last: f.number,
                segment: f.meta.segment,
                discontinuity: f.meta.discontinuity,
                discontinuity_start: f.meta.discontinuity_start(),
                keyframe: f.meta.keyframe(),
                init_id: f.meta.init_id,
                producer_ts: f.producer_ts,
                server_ts: f.server_ts,
                duration_us: u64::from(f.meta.duration_us),
                bytes: u64::from(f.size),
                fragment_count: 1,
            });
        }
    }
    out
}

/// The newest part of a stream, as `live.m3u8` shows it.
#[derive(Debug, Clone)]
pub struct LiveWindow {
    /// The newest complete segments, oldest first.
    pub segments: Vec<SegmentRef>,
    /// Low-latency only, while a producer is connected: the newest segment, still receiving
    /// parts (it is complete once the next segment starts).
    pub partial: Option<SegmentRef>,
    /// Low-latency only: every fragment of `segments` and `partial`, in order (the parts).
    pub fragments: Vec<FragmentInfo>,
    /// The stream's recent segments are made of several fragments: serve LL-HLS.
    pub low_latency: bool,
    /// The committed end when the window was read: the number the next fragment will get.
    pub end: FragmentNumber,
}

impl LiveWindow {
    /// The fragments (parts) of `seg`, which must be one of this window's segments.
    pub fn parts_of(&self, seg: &SegmentRef) -> &[FragmentInfo] {
        let from = self.fragments.partition_point(|f| f.number < seg.first);
        let to = self.fragments.partition_point(|f| f.number <= seg.last);
        self.fragments.get(from..to).unwrap_or(&[])
    }
}

/// The live playlists' EXT-X-TARGETDURATION and PART-TARGET, as served so far. A live playlist's
/// target duration must not change (RFC 8216 §6.2.1 and §4.3.3.1), and a part target that shrank
/// would no longer bound parts a client already holds, so both only ever rise: to the first
/// complete segment's, then to any longer one. Atomics: raised by concurrent playlist requests.
#[derive(Debug, Default)]
pub struct LiveTargets {
    target_s: AtomicU64,
    part_target_us: AtomicU32,
}

impl LiveTargets {
    /// Raises the targets to at least these and returns what to serve.
    pub fn raise(&self, target_s: u64, part_target_us: u32) -> (u64, u32) {
        let t = self.target_s.fetch_max(target_s, Ordering::Relaxed).max(target_s);
        let p =
            self.part_target_us.fetch_max(part_target_us, Ordering::Relaxed).max(part_target_us);
        (t, p)
    }
}

/// A live-replay playlist's segments at one reload: see [`VideoStream::replay_segments`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaySegments {
    pub segments: Vec<SegmentRef>,
    /// Every segment of the range is listed: the playlist ends (EXT-X-ENDLIST).
    pub finished: bool,
}

/// How far past the instant a replay viewer has reached its segments are read, so that the
/// segment playing then and the next one are read whole (a GOP longer than this is cut).
const REPLAY_LOOKAHEAD_US: i64 = 120_000_000;

/// A page of fragments and where the next page starts.
#[derive(Debug, Clone)]
pub struct FragmentPage {
    pub fragments: Vec<FragmentInfo>,
    pub next: Option<FragmentNumber>,
}

impl VideoStream {
    /// The first fragment whose timestamp on `clock` is at or after `t` (the committed end if
    /// none is).
    pub fn first_at_or_after(&self, clock: TimestampKind, t: Timestamp) -> Result<FragmentNumber> {
        Ok(self.fragments.lower_bound(clock.log_key(), t)?.into())
    }

    /// The index entries of fragments `from..to`, at most `limit`.
    pub fn infos(
        &self,
        from: FragmentNumber,
        to: FragmentNumber,
        limit: usize,
    ) -> Result<Vec<FragmentInfo>> {
        Ok(self
            .fragments
            .entries(from.offset(), to.offset(), limit)?
            .iter()
            .map(FragmentInfo::from_entry)
            .collect())
    }

    /// Fragments with `start <= t <= end` on the chosen clock, in fragment-number order.
    pub fn list_fragments(
        &self,
        clock: TimestampKind,
        start: Option<Timestamp>,
        end: Option<Timestamp>,
        after: Option<FragmentNumber>,
        limit: usize,
    ) -> Result<FragmentPage> {
        let key = clock.log_key();
        let mut from = match start {
            Some(t) => FragmentNumber::from(self.fragments.lower_bound(key, t)?),
            None => self.first_retained(),
        };
        if let Some(a) = after {
            from = from.max(a.next());
        }
        let to = match end {
            Some(t) => FragmentNumber::from(self.fragments.lower_bound(key, t.add_micros(1))?),
            None => self.committed_end(),
        };
        let fragments = self.infos(from, to, limit.saturating_add(1))?;
        let (fragments, next) = if fragments.len() > limit {
            let page = fragments[..limit].to_vec();
            let next = page.last().map(|f| f.number);
            (page, next)
        } else {
            (fragments, None)
        };
        Ok(FragmentPage { fragments, next })
    }

    /// The offset of the segment start at or before `o` (walking back at most a GOP).
    pub fn segment_start_at_or_before(&self, o: FragmentNumber) -> Result<FragmentNumber> {
        let entries = self.fragments.entries_rev(o.next().offset(), MAX_SEGMENT_FRAGMENTS)?;
        for e in entries.iter().rev() {
            if FragmentInfo::from_entry(e).meta.segment_start() {
                return Ok(e.offset.into());
            }
        }
        Ok(entries.first().map_or(o, |e| e.offset.into()))
    }

    /// Whole segments covering `[start, end)` on the chosen clock: the first segment is the one
    /// playing at `start` (so playback can begin exactly there), the last one ends at the last
    /// fragment starting before `end`.
    pub fn segments_in_range(
        &self,
        clock: TimestampKind,
        start: Option<Timestamp>,
        end: Option<Timestamp>,
    ) -> Result<Vec<SegmentRef>> {
        let key = clock.log_key();
        let first_offset = self.first_retained();
        let mut from = match start {
            Some(t) => FragmentNumber::from(self.fragments.lower_bound(key, t)?),
            None => first_offset,
        };
        if let Some(t) = start {
            // The fragment before `from` may still be playing at `start`.
            if from > first_offset
                && let Some(prev) = self.fragment(FragmentNumber(from.0 - 1))?
            {
                let prev_end = prev.time(clock).add_micros(i64::from(prev.meta.duration_us));
                // Overlaps under a millisecond (the API's precision) do not count.
                if prev_end > t.add_micros(1000) {
                    from = prev.number;
                }
            }
        }
        let to = match end {
            Some(t) => FragmentNumber::from(self.fragments.lower_bound(key, t)?),
            None => self.committed_end(),
        };
        if from >= to {
            return Ok(Vec::new());
        }
        let from = self.segment_start_at_or_before(from)?.max(first_offset);
        let frags = self.infos(from, to, usize::MAX)?;
        Ok(group_segments(&frags))
    }

    /// The segments of a live-replay session of `[start, end)` whose viewer has reached the
    /// instant `reached`: every segment that starts by then, plus the next one as a lead for the
    /// player's buffer. Segments are only ever listed whole, and a later reload lists the same
    /// segments first, so the EVENT playlist only grows (RFC 8216 §6.2.1). Once `reached` passes
    /// `end`, or every segment left is listed and nothing more can arrive (the range's end is
    /// stored, or no producer is connected), the playlist is finished.
    pub fn replay_segments(
        &self,
        clock: TimestampKind,
        start: Timestamp,
        end: Option<Timestamp>,
        reached: Timestamp,
    ) -> Result<ReplaySegments> {
        if let Some(e) = end
            && reached >= e
        {
            let segments = self.segments_in_range(clock, Some(start), Some(e))?;
            return Ok(ReplaySegments { segments, finished: true });
        }
        let horizon = reached.add_micros(REPLAY_LOOKAHEAD_US);
        let (to, to_is_final) = match end {
            Some(e) if e <= horizon => (Some(e), true),
            _ => (Some(horizon), false),
        };
        let mut segs = self.segments_in_range(clock, Some(start), to)?;
        // The last segment read may be cut by the horizon, or still receiving fragments: it is
        // whole only when the read ended at the range's end, or at the end of a stream whose
        // producer has left.
        let data_end = self.fragments.stats().last.map(|e| FragmentInfo::from_entry(&e));
        let read_to_data_end =
            data_end.is_some_and(|l| segs.last().is_some_and(|s| s.last >= l.number));
        let last_whole = to_is_final || (read_to_data_end && !self.is_live());
        if !last_whole {
            segs.pop();
        }
        let shown = segs.iter().skip(1).take_while(|s| s.start(clock) <= reached).count() + 1;
        // Once every segment left is listed and nothing more can arrive for the range (its end is
        // stored already, or the producer has gone), the playlist ends: a player then plays to the
        // end instead of stalling for a reload that only adds EXT-X-ENDLIST.
        let data_passes_end = match (end, &data_end) {
            (Some(e), Some(l)) => l.time(clock) >= e,
            _ => false,
        };
        let nothing_more =
            (to_is_final && data_passes_end) || (read_to_data_end && !self.is_live());
        let finished = nothing_more && last_whole && shown + 1 >= segs.len();
        segs.truncate((shown + 1).min(segs.len()));
        Ok(ReplaySegments { segments: segs, finished })
    }

    /// The newest `count` complete segments. The newest segment is complete when the producer has
    /// gone, or when the session's fragments each start with a keyframe (one fragment per
    /// segment); otherwise it may still be receiving parts and is left out.
    pub fn live_segments(&self, count: usize) -> Result<Vec<SegmentRef>> {
        Ok(self.live_window(count, false)?.segments)
    }

    /// The live window: the newest `count` complete segments and, when `allow_low_latency` and
    /// the stream is low-latency (a recent segment has more than one fragment), the segment still
    /// being received and every fragment (part) of the window. See [`LiveWindow`].
    pub fn live_window(&self, count: usize, allow_low_latency: bool) -> Result<LiveWindow> {
        let end = self.committed_end();
        let mut want = count + 1;
        loop {
            let frags: Vec<FragmentInfo> = self
                .fragments
                .entries_rev(end.offset(), want.saturating_mul(8).max(16))?
                .iter()
                .map(FragmentInfo::from_entry)
                .collect();
            let got_all = frags.first().is_none_or(|f| f.number <= self.first_retained());
            let mut segs = group_segments(&frags);
            // The oldest group may be a partial segment (cut by the window): drop it unless it
            // really starts a segment.
            if segs.first().is_some_and(|s| {
                !self.fragment(s.first).ok().flatten().is_some_and(|f| f.meta.segment_start())
            }) && !got_all
            {
                segs.remove(0);
            }
            if segs.len() > count || got_all || want > 100_000 {
                let low_latency = allow_low_latency
                    && segs.iter().rev().take(count + 1).any(|s| s.fragment_count > 1);
                let mut partial = None;
                if let Some(last) = segs.last()
                    && self.is_live()
                {
                    if low_latency {
                        // A live low-latency segment gets parts until the next keyframe.
                        partial = segs.pop();
                    } else if !self.trailing_segment_complete(last)? {
                        segs.pop();
                    }
                }
                let skip = segs.len().saturating_sub(count);
                let segments = segs.split_off(skip);
                let fragments = if low_latency {
                    let first = segments.first().or(partial.as_ref()).map_or(end, |s| s.first);
                    frags.into_iter().filter(|f| f.number >= first).collect()
                } else {
                    Vec::new()
                };
                return Ok(LiveWindow { segments, partial, fragments, low_latency, end });
            }
            want *= 4;
        }
    }

    fn trailing_segment_complete(&self, seg: &SegmentRef) -> Result<bool> {
        // While a producer is live, a segment of one keyframe fragment whose predecessor was also
        // a one-fragment keyframe segment is complete: the producer fragments at keyframes. The
        // first fragment of a session cannot tell yet (its next fragment may be a part of the same
        // GOP), so its segment is complete only once that next fragment shows which.
        if seg.fragment_count != 1 || !seg.keyframe || seg.first.0 == 0 || seg.discontinuity_start {
            return Ok(false);
        }
        Ok(self
            .fragment(FragmentNumber(seg.first.0 - 1))?
            .is_none_or(|prev| prev.meta.segment_start() && prev.meta.keyframe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::fragment::{FLAG_KEYFRAME, FLAG_SEGMENT_START, FragmentMeta};

    fn frag(n: u64, flags: u8, init: u32) -> FragmentInfo {
        FragmentInfo {
            number: FragmentNumber(n),
            size: 100,
            producer_ts: Timestamp::from_millis(n as i64 * 200),
            server_ts: Timestamp::from_millis(n as i64 * 200),
            meta: FragmentMeta {
                flags,
                duration_us: 200_000,
                init_id: init,
                segment: 0,
                discontinuity: 0,
            },
        }
    }

    #[test]
    fn groups_parts_into_segments_at_keyframes_and_init_changes() {
        let k = FLAG_KEYFRAME | FLAG_SEGMENT_START;
        let frags = [frag(0, k, 0), frag(1, 0, 0), frag(2, 0, 0), frag(3, k, 0), frag(4, 0, 1)];
        let segs = group_segments(&frags);
        assert_eq!(segs.len(), 3);
        assert_eq!((segs[0].first.0, segs[0].last.0, segs[0].fragment_count), (0, 2, 3));
        assert_eq!(segs[0].duration_us, 600_000);
        assert_eq!((segs[1].first.0, segs[1].last.0), (3, 3));
        assert_eq!(segs[2].init_id, 1);
    }
}

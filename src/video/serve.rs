//! What playback surfaces read from a stream, behind one facade: served segments and parts
//! ([`VideoStream::segment`], cached, retention-checked, read off the async workers), the
//! stream's committed extent, and the one wait for new media ([`VideoStream::wait_for_media`])
//! that live playlists, blocking part requests and live tails share.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::VideoStream;
use super::cache::SegmentKey;
use super::fragment::FragmentInfo;
use super::fragment::FragmentNumber;
use crate::error::{Error, Result};

/// The version of each served format, in the ETag of everything served as immutable: bumped
/// when the bytes served under an unchanged URL change, so caches and players refetch.
/// `tests/golden.rs` fails when served bytes change under an unchanged ETag.
///
/// Segments and parts (2: decode times on the stream timeline).
const MEDIA_FORMAT: u32 = 2;
/// Init segments (2: B-frame video gets its start edit, see [`VideoStream::served_init`]).
const INIT_FORMAT: u32 = 2;
/// Fragments as stored (`/fragments/{n}/media`).
const STORED_FORMAT: u32 = 1;

/// Longest run of fragments one segment may span.
pub const MAX_SEGMENT_FRAGMENTS: u64 = 10_000;

/// How often a wait that watches the producer checks that it is still there.
const PRODUCER_CHECK: Duration = Duration::from_millis(250);

/// What ended a [`VideoStream::wait_for_media`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// New fragments are committed; the new end.
    Media(FragmentNumber),
    /// The producer left (only when asked to watch it): the segment in progress is complete.
    ProducerLeft,
    /// The stream was deleted or the server is shutting down.
    Closed,
    /// The deadline passed.
    Deadline,
}

impl VideoStream {
    /// One past the newest committed fragment.
    pub fn committed_end(&self) -> FragmentNumber {
        self.fragments.committed_end().into()
    }

    /// The oldest fragment retention has not deleted.
    pub fn first_retained(&self) -> FragmentNumber {
        self.fragments.start().into()
    }

    /// Runs `f` over the stream on the blocking pool: for queries that may read many index
    /// entries or records (ranges, replays, variant facts).
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&VideoStream) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let stream = self.clone();
        tokio::task::spawn_blocking(move || f(&stream))
            .await
            .map_err(|e| Error::internal(format!("stream read task: {e}")))?
    }

    /// The ETag of fragments `first..=last` as served: stable for the stream's life, versioned
    /// by the media format.
    pub fn segment_etag(&self, first: FragmentNumber, last: FragmentNumber) -> String {
        format!("\"m{MEDIA_FORMAT}-{}-{}-{}\"", self.id, first.0, last.0)
    }

    /// The ETag of init segment `id`.
    pub fn init_etag(&self, id: u32) -> String {
        format!("\"i{INIT_FORMAT}-{}-{id}\"", self.id)
    }

    /// Init segment `id` as served with its fragments (HLS, live tails, fMP4 clips): as stored,
    /// except that B-frame video without an edit list gets its start edit
    /// ([`crate::media::fmp4::with_start_edit`]), so players present the first picture at time 0
    /// instead of one or two frames in. The delay is the first picture's composition offset in
    /// the first retained fragment that uses this init (one encoder configuration keeps one
    /// delay). Cached per init once a fragment has decided it.
    pub fn served_init(&self, id: u32) -> Result<Option<Bytes>> {
        if let Some(b) = self.served_inits.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(Some(b.clone()));
        }
        let Some(stored) = self.init_bytes(id)? else { return Ok(None) };
        let Some(first) = self.first_fragment_of_init(id)? else { return Ok(Some(stored)) };
        let served = self.start_delay(id, first)?.map_or(stored.clone(), |(track, delay)| {
            crate::media::fmp4::with_start_edit(&stored, track, delay).map_or(stored, Bytes::from)
        });
        self.served_inits.lock().unwrap_or_else(|p| p.into_inner()).insert(id, served.clone());
        Ok(Some(served))
    }

    /// The video track and its first picture's composition offset in fragment `n`, if positive.
    fn start_delay(&self, id: u32, n: FragmentNumber) -> Result<Option<(u32, u64)>> {
        let (Some(init), Some((_, bytes))) = (self.init(id)?, self.read_fragment(n)?) else {
            return Ok(None);
        };
        let Some(video) = init.video() else { return Ok(None) };
        let Ok(tracks) = crate::media::fmp4::samples(&init, &bytes) else { return Ok(None) };
        let first = tracks
            .iter()
            .find(|t| t.track_id == video.track_id)
            .and_then(|t| t.samples.first())
            .map(|s| s.composition_offset);
        // More than a second of reordering delay is not B-frames: leave such media as it is.
        Ok(first
            .and_then(|d| u64::try_from(d).ok())
            .filter(|&d| d > 0 && d <= u64::from(video.timescale))
            .map(|d| (video.track_id, d)))
    }

    /// The first retained fragment that uses init `id`. Init ids never decrease along the
    /// stream (a new configuration gets a new, larger id), so this is a binary search.
    fn first_fragment_of_init(&self, id: u32) -> Result<Option<FragmentNumber>> {
        let (mut lo, mut hi) = (self.first_retained().0, self.committed_end().0);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let below = self
                .infos(FragmentNumber(mid), FragmentNumber(mid + 1), 1)?
                .first()
                .is_none_or(|f| f.meta.init_id < id);
            if below {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let found = self.infos(FragmentNumber(lo), FragmentNumber(lo + 1), 1)?;
        Ok(found.first().filter(|f| f.meta.init_id == id).map(|f| f.number))
    }

    /// The ETag of fragment `n` exactly as stored.
    pub fn stored_fragment_etag(&self, n: FragmentNumber) -> String {
        format!("\"f{STORED_FORMAT}-{}-{}\"", self.id, n.0)
    }

    /// Fragments `first..=last` as served (retimed onto the stream timeline), from the shared
    /// segment cache or the log. Deleted data is never served: a cached segment is checked
    /// against retention, and a missing fragment is a 404. Log reads run on the blocking pool.
    pub async fn segment(
        self: &Arc<Self>,
        first: FragmentNumber,
        last: FragmentNumber,
    ) -> Result<Vec<Bytes>> {
        if last < first {
            return Err(Error::not_found("a segment's last fragment is before its first"));
        }
        if last.0 - first.0 >= MAX_SEGMENT_FRAGMENTS {
            return Err(Error::invalid(format!(
                "a segment spans at most {MAX_SEGMENT_FRAGMENTS} fragments"
            )));
        }
        let key = SegmentKey { stream_id: self.id, first, last };
        if let Some(parts) = self.cache.get(&key)
            && first >= self.first_retained()
        {
            self.metrics.segment_cache_hits.inc();
            return Ok(parts);
        }
        self.metrics.segment_cache_misses.inc();
        let stream = self.clone();
        let parts = tokio::task::spawn_blocking(move || stream.read_served(first, last))
            .await
            .map_err(|e| Error::internal(format!("segment read task: {e}")))??;
        self.cache.insert(key, parts.clone());
        Ok(parts)
    }

    /// Reads fragments `first..=last` as served; 404 if any is missing (never stored, or deleted
    /// by retention).
    fn read_served(&self, first: FragmentNumber, last: FragmentNumber) -> Result<Vec<Bytes>> {
        let mut parts = Vec::with_capacity(usize::try_from(last.0 - first.0 + 1).unwrap_or(0) * 3);
        for n in first.0..=last.0 {
            match self.read_fragment_for_playback(FragmentNumber(n))? {
                Some((_, bytes)) => parts.extend(bytes),
                None => {
                    return Err(Error::not_found(format!(
                        "stream {} has no fragment {n} (not yet written, or deleted by retention)",
                        self.name
                    )));
                }
            }
        }
        Ok(parts)
    }

    /// Waits until the committed end moves past `seen`, the stream closes, `deadline` passes, or
    /// (with `watch_producer`) the stream has no producer. Woken by the log's committed-end
    /// watch, not by polling; only the producer check is periodic.
    pub async fn wait_for_media(
        &self,
        seen: FragmentNumber,
        deadline: Instant,
        watch_producer: bool,
    ) -> Wake {
        let mut rx = self.subscribe();
        let mut check = tokio::time::interval(PRODUCER_CHECK);
        loop {
            let end = *rx.borrow_and_update();
            if end > seen.offset() {
                return Wake::Media(end.into());
            }
            if watch_producer && !self.is_live() {
                return Wake::ProducerLeft;
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return Wake::Closed },
                _ = check.tick(), if watch_producer => {}
                _ = self.closed.cancelled() => return Wake::Closed,
                _ = tokio::time::sleep_until(deadline) => return Wake::Deadline,
            }
        }
    }

    /// Reads one fragment as it is served: with every track's decode time moved onto the
    /// stream timeline (see `media::timeline`). The stored bytes are unchanged; the
    /// result is slices of them. Falls back to the stored bytes if the moof cannot be retimed.
    pub fn read_fragment_for_playback(
        &self,
        n: FragmentNumber,
    ) -> Result<Option<(FragmentInfo, Vec<Bytes>)>> {
        let Some((info, bytes)) = self.read_fragment(n)? else { return Ok(None) };
        Ok(Some((info, self.retime(&info, bytes)?)))
    }

    fn retime(&self, info: &FragmentInfo, bytes: Bytes) -> Result<Vec<Bytes>> {
        use crate::media::timeline::{find_tfdts, retime, served_decode_time, session_shift_us};
        let Some(epoch) = self.timeline_epoch() else { return Ok(vec![bytes]) };
        let Some(init) = self.init(info.meta.init_id)? else { return Ok(vec![bytes]) };
        let Some(timing) = init.video().or_else(|| init.tracks.first()) else {
            return Ok(vec![bytes]);
        };
        let Ok(sites) = find_tfdts(&bytes) else { return Ok(vec![bytes]) };
        let Some(timing_site) = sites.iter().find(|s| s.track_id == timing.track_id) else {
            return Ok(vec![bytes]);
        };
        let shift_us = session_shift_us(
            info.producer_ts.as_micros(),
            timing_site.value,
            timing.timescale,
            epoch.as_micros(),
        );
        let parts = retime(&bytes, &sites, |site| {
            let scale = init
                .tracks
                .iter()
                .find(|t| t.track_id == site.track_id)
                .map_or(timing.timescale, |t| t.timescale);
            served_decode_time(site.value, scale, shift_us)
        });
        Ok(parts.unwrap_or_else(|| vec![bytes]))
    }
}

//! A bounded in-memory cache of served HLS segments (retimed fragment bytes), shared by all
//! streams. Live viewers all fetch the newest few segments, so most segment requests are for the
//! same bytes: a hit skips the log read, its CRC check and the retiming. Segments are immutable
//! for their key (stream id, first and last fragment), so there is nothing to invalidate except
//! by retention, which `VideoStream::segment` checks on every hit (`first >= log start`).
//!
//! Eviction is least-recently-used by a scan for the oldest entry: the cache holds tens of
//! segments (its byte budget over segment sizes of about a megabyte), so a scan is cheaper than a
//! linked list.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

use super::fragment::FragmentNumber;
use crate::catalog::VideoStreamId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentKey {
    pub stream_id: VideoStreamId,
    pub first: FragmentNumber,
    pub last: FragmentNumber,
}

struct Entry {
    parts: Vec<Bytes>,
    bytes: usize,
    used: u64,
}

struct State {
    entries: HashMap<SegmentKey, Entry>,
    bytes: usize,
    tick: u64,
}

/// See the module docs. A std `Mutex`: held only for map operations, never across I/O or `.await`.
pub struct SegmentCache {
    capacity: usize,
    state: Mutex<State>,
}

impl SegmentCache {
    /// A cache holding at most `capacity` bytes (0 disables it).
    pub fn new(capacity: usize) -> Self {
        SegmentCache {
            capacity,
            state: Mutex::new(State { entries: HashMap::new(), bytes: 0, tick: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &SegmentKey) -> Option<Vec<Bytes>> {
        let mut s = self.lock();
        s.tick += 1;
        let tick = s.tick;
        let e = s.entries.get_mut(key)?;
        e.used = tick;
        Some(e.parts.clone())
    }

    pub fn insert(&self, key: SegmentKey, parts: Vec<Bytes>) {
        let bytes: usize = parts.iter().map(Bytes::len).sum();
        if bytes > self.capacity / 4 {
            return; // never let one segment take most of the budget
        }
        let mut s = self.lock();
        s.tick += 1;
        let used = s.tick;
        if let Some(old) = s.entries.insert(key, Entry { parts, bytes, used }) {
            s.bytes -= old.bytes;
        }
        s.bytes += bytes;
        while s.bytes > self.capacity {
            let Some(oldest) = s.entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| *k) else {
                break;
            };
            if let Some(e) = s.entries.remove(&oldest) {
                s.bytes -= e.bytes;
            }
        }
    }

    /// Drops every entry of a stream (on deletion).
    pub fn forget_stream(&self, stream_id: VideoStreamId) {
        let mut s = self.lock();
        let mut freed = 0;
        s.entries.retain(|k, e| {
            let keep = k.stream_id != stream_id;
            if !keep {
                freed += e.bytes;
            }
            keep
        });
        s.bytes -= freed;
    }

    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(first: u64) -> SegmentKey {
        SegmentKey {
            stream_id: VideoStreamId(1),
            first: FragmentNumber(first),
            last: FragmentNumber(first),
        }
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let c = SegmentCache::new(400);
        c.insert(key(0), vec![Bytes::from(vec![0u8; 100])]);
        c.insert(key(1), vec![Bytes::from(vec![1u8; 100])]);
        c.insert(key(2), vec![Bytes::from(vec![2u8; 100])]);
        assert!(c.get(&key(0)).is_some()); // 0 is now the most recent
        c.insert(key(3), vec![Bytes::from(vec![3u8; 100])]);
        c.insert(key(4), vec![Bytes::from(vec![4u8; 100])]);
        assert!(c.bytes() <= 400);
        assert!(c.get(&key(1)).is_none(), "least recently used went first");
        assert!(c.get(&key(0)).is_some());
        assert!(c.get(&key(4)).is_some());
        c.forget_stream(VideoStreamId(1));
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn oversized_segments_and_zero_capacity_are_not_cached() {
        let c = SegmentCache::new(400);
        c.insert(key(0), vec![Bytes::from(vec![0u8; 101])]);
        assert!(c.get(&key(0)).is_none());
        let off = SegmentCache::new(0);
        off.insert(key(0), vec![Bytes::from_static(b"x")]);
        assert!(off.get(&key(0)).is_none());
    }
}

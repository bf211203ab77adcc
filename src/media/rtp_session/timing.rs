//! RTP time: 32-bit timestamps unwrapped to 64 bits, and decode times recovered from
//! presentation times.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Unwraps a 32-bit RTP timestamp into a 64-bit one (RFC 3550 §5.1: the clock wraps). Steps of
/// up to ±2³¹ ticks from the previous timestamp are taken as the shortest way around, so
/// B-frames (earlier timestamps) and the wrap both come out right.
#[derive(Debug, Default, Clone, Copy)]
pub struct RtpClock {
    last: Option<i64>,
}

impl RtpClock {
    pub fn extend(&mut self, ts: u32) -> i64 {
        let ext = match self.last {
            None => i64::from(ts),
            Some(last) => last + i64::from(ts.wrapping_sub(last as u32) as i32),
        };
        self.last = Some(ext);
        ext
    }
}

/// Derives decode times from presentation times for a stream with B-frames: frames enter in
/// decode order; once `depth` more frames have arrived, the oldest leaves with the smallest
/// presentation time seen so far as its decode time. Decode times are thus the sorted
/// presentation times, which is exact when the encoder reorders at most `depth` frames (more
/// yields a negative composition offset, still valid in a version-1 `trun`).
#[derive(Debug)]
pub struct ReorderWindow<T> {
    depth: usize,
    frames: VecDeque<(i64, T)>,
    pts: BinaryHeap<Reverse<i64>>,
    last_dts: Option<i64>,
}

impl<T> ReorderWindow<T> {
    pub fn new(depth: usize) -> Self {
        ReorderWindow { depth, frames: VecDeque::new(), pts: BinaryHeap::new(), last_dts: None }
    }

    /// Adds a frame (in decode order) with its presentation time; returns the frames whose
    /// decode time is now known, as `(dts, pts, frame)`.
    pub fn push(&mut self, pts: i64, frame: T) -> Vec<(i64, i64, T)> {
        self.frames.push_back((pts, frame));
        self.pts.push(Reverse(pts));
        let mut out = Vec::new();
        while self.frames.len() > self.depth {
            out.extend(self.pop());
        }
        out
    }

    /// Releases every frame (end of stream, or before a new configuration).
    pub fn drain(&mut self) -> Vec<(i64, i64, T)> {
        let mut out = Vec::new();
        while !self.frames.is_empty() {
            out.extend(self.pop());
        }
        out
    }

    pub fn set_depth(&mut self, depth: usize) {
        self.depth = depth;
    }

    fn pop(&mut self) -> Option<(i64, i64, T)> {
        let (pts, frame) = self.frames.pop_front()?;
        let min = self.pts.pop().map_or(pts, |Reverse(p)| p);
        // Strictly increasing: two pictures with one RTP timestamp (or a timestamp going back)
        // still get distinct decode times, as MP4 requires.
        let dts = self.last_dts.map_or(min, |l| min.max(l + 1));
        self.last_dts = Some(dts);
        Some((dts, pts, frame))
    }
}

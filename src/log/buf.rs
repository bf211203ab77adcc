//! Recycled read buffers for record payloads.
//!
//! A record is read with one pread into a buffer that the returned `Bytes` then owns. A fresh
//! `vec![0; n]` per read costs a zero-fill of `n` bytes that the pread immediately overwrites:
//! 8 % of the server's CPU when serving 1 MB HLS segments (`scripts/bench-segments.sh`). Instead,
//! buffers of 64 KiB and more come from a process-wide pool and go back to it when the last
//! `Bytes` referring to them is dropped. A recycled buffer is already initialised (with old
//! record bytes, which are overwritten before anyone sees them, and only the first `len` bytes
//! are ever exposed), so nothing is zeroed twice and no `unsafe` is needed.
//!
//! Sizes are rounded up to one of four classes per power of two (at most 25 % slack), and the
//! pool keeps at most [`POOL_MAX_BYTES`] of idle buffers; beyond that they are freed.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;

use super::lock;

/// Reads shorter than this use a plain zeroed `Vec` (the fill is cheap; pooling is not free).
const POOL_MIN: usize = 64 * 1024;
/// Idle bytes the pool keeps at most.
const POOL_MAX_BYTES: usize = 64 * 1024 * 1024;

struct Pool {
    /// Idle buffers by length (every buffer's `len` is its class size, fully initialised).
    free: BTreeMap<usize, Vec<Vec<u8>>>,
    idle_bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool { free: BTreeMap::new(), idle_bytes: 0 });

/// The class size for a read of `n >= POOL_MIN` bytes: `n` rounded up to a multiple of an
/// eighth of its next power of two (so one of four sizes in each `(2^k, 2^(k+1)]`).
fn class_size(n: usize) -> usize {
    let step = (n.next_power_of_two() / 8).max(1);
    n.div_ceil(step) * step
}

/// A buffer of at least `len` initialised bytes, to be filled and then frozen with [`freeze`].
pub(super) struct ReadBuf {
    buf: Vec<u8>,
    len: usize,
    pooled: bool,
}

impl ReadBuf {
    pub(super) fn new(len: usize) -> ReadBuf {
        if len < POOL_MIN {
            return ReadBuf { buf: vec![0u8; len], len, pooled: false };
        }
        let class = class_size(len);
        let recycled = {
            let mut p = lock(&POOL);
            let buf = p.free.get_mut(&class).and_then(Vec::pop);
            if buf.is_some() {
                p.idle_bytes -= class;
            }
            buf
        };
        let buf = recycled.unwrap_or_else(|| vec![0u8; class]);
        ReadBuf { buf, len, pooled: true }
    }

    /// The `len` bytes to fill.
    pub(super) fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    /// Shared, immutable bytes over the filled buffer; the buffer returns to the pool when the
    /// last clone or slice of the result is dropped.
    pub(super) fn freeze(self) -> Bytes {
        if !self.pooled {
            let mut v = self.buf;
            v.truncate(self.len);
            return Bytes::from(v);
        }
        Bytes::from_owner(Owned { buf: self.buf, len: self.len })
    }
}

/// The owner behind a pooled `Bytes`.
struct Owned {
    buf: Vec<u8>,
    len: usize,
}

impl AsRef<[u8]> for Owned {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let class = buf.len();
        let mut p = lock(&POOL);
        if p.idle_bytes + class <= POOL_MAX_BYTES {
            p.idle_bytes += class;
            p.free.entry(class).or_default().push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_have_at_most_a_quarter_of_slack() {
        for n in [POOL_MIN, POOL_MIN + 1, 100_000, 1 << 20, (1 << 20) + 1, 3_000_000, 50_000_000] {
            let c = class_size(n);
            assert!(c >= n && c - n <= n / 4, "{n} -> {c}");
        }
        assert_eq!(class_size(1 << 20), 1 << 20);
    }

    #[test]
    fn recycled_buffers_expose_only_their_own_bytes() {
        let mut a = ReadBuf::new(200_000);
        a.as_mut().fill(7);
        let a = a.freeze();
        assert_eq!(a.len(), 200_000);
        drop(a.slice(10..20));
        drop(a);
        // Same class: likely the recycled buffer (another test may race for it; either way the
        // contents must be what this read wrote).
        let mut b = ReadBuf::new(190_000);
        b.as_mut().fill(9);
        let b = b.freeze();
        assert_eq!(b.len(), 190_000);
        assert!(b.iter().all(|&x| x == 9));
        let mut small = ReadBuf::new(10);
        small.as_mut().copy_from_slice(b"0123456789");
        assert_eq!(small.freeze(), &b"0123456789"[..]);
    }
}

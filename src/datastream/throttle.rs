//! Per-shard throughput limits as token buckets on the injected clock: 1 MB/s and 1,000
//! records/s in, 2 MB/s and 5 GetRecords calls/s out by default (`[data_streams]` config).
//!
//! Each bucket holds at most one second of its rate and refills continuously. The read-bytes
//! bucket may go into debt: a GetRecords call is allowed while it holds any tokens and then pays
//! for what it returned, so one 10 MiB read throttles the shard's next ~4 seconds of reads, as in
//! Kinesis. Likewise a record larger than a second of the write rate (up to 10 MiB) is admitted
//! when the write bucket is full and repaid by the shard's next writes.

use crate::clock::Timestamp;

/// A token bucket: `rate` tokens per second, capacity `rate`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Timestamp,
}

impl TokenBucket {
    pub fn new(rate_per_sec: u64, now: Timestamp) -> TokenBucket {
        let rate = rate_per_sec as f64;
        TokenBucket { rate, tokens: rate, last: now }
    }

    fn refill(&mut self, now: Timestamp) {
        let elapsed = now.micros_since(self.last).max(0) as f64 / 1e6;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if now > self.last {
            self.last = now;
        }
    }

    /// Takes `n` tokens if the bucket holds them.
    pub fn try_take(&mut self, n: u64, now: Timestamp) -> bool {
        self.refill(now);
        let n = n as f64;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// True if the bucket holds any tokens (it may then be charged into debt).
    pub fn has_tokens(&mut self, now: Timestamp) -> bool {
        self.refill(now);
        self.tokens > 0.0
    }

    /// True if the bucket holds its full capacity (a second of its rate).
    pub fn is_full(&mut self, now: Timestamp) -> bool {
        self.refill(now);
        self.tokens >= self.rate
    }

    /// Takes `n` tokens unconditionally; the balance may go negative.
    pub fn charge(&mut self, n: u64, now: Timestamp) {
        self.refill(now);
        self.tokens -= n as f64;
    }

    /// Returns `n` tokens taken by a write that did not happen.
    pub fn refund(&mut self, n: u64) {
        self.tokens = (self.tokens + n as f64).min(self.rate);
    }
}

/// The configured rates (per shard, per second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub write_bytes: u64,
    pub write_records: u64,
    pub read_bytes: u64,
    pub read_calls: u64,
}

/// One shard's four buckets.
#[derive(Debug, Clone)]
pub struct ShardBuckets {
    write_bytes: TokenBucket,
    write_records: TokenBucket,
    read_bytes: TokenBucket,
    read_calls: TokenBucket,
}

impl ShardBuckets {
    pub fn new(r: Rates, now: Timestamp) -> ShardBuckets {
        ShardBuckets {
            write_bytes: TokenBucket::new(r.write_bytes, now),
            write_records: TokenBucket::new(r.write_records, now),
            read_bytes: TokenBucket::new(r.read_bytes, now),
            read_calls: TokenBucket::new(r.read_calls, now),
        }
    }

    /// Admits one record of `bytes` (data + partition key), or not. A record larger than a
    /// second of the byte rate (records up to 10 MiB against 1 MiB/s) is admitted when the
    /// bucket is full and leaves it in debt: the shard's next writes wait until it is repaid.
    pub fn admit_write(&mut self, bytes: u64, now: Timestamp) -> bool {
        if !self.write_records.try_take(1, now) {
            return false;
        }
        let large = bytes as f64 > self.write_bytes.rate;
        if large && self.write_bytes.is_full(now) {
            self.write_bytes.charge(bytes, now);
            return true;
        }
        if large || !self.write_bytes.try_take(bytes, now) {
            self.write_records.refund(1);
            return false;
        }
        true
    }

    /// Admits one GetRecords call, or not.
    pub fn admit_read(&mut self, now: Timestamp) -> bool {
        if !self.read_bytes.has_tokens(now) {
            return false;
        }
        self.read_calls.try_take(1, now)
    }

    /// Charges the bytes a GetRecords call returned.
    pub fn charge_read(&mut self, bytes: u64, now: Timestamp) {
        self.read_bytes.charge(bytes, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn rates() -> Rates {
        Rates { write_bytes: 1_000_000, write_records: 1000, read_bytes: 2_000_000, read_calls: 5 }
    }

    #[test]
    fn bucket_refills_with_the_clock() {
        let mut b = TokenBucket::new(10, T0);
        for _ in 0..10 {
            assert!(b.try_take(1, T0));
        }
        assert!(!b.try_take(1, T0));
        assert!(b.try_take(1, T0.add_micros(100_000)), "0.1 s refills one token");
        assert!(!b.try_take(1, T0.add_micros(100_000)));
        assert!(b.try_take(10, T0.add_micros(60_000_000)));
        assert!(!b.try_take(1, T0.add_micros(60_000_000)), "capacity is one second");
    }

    #[test]
    fn write_limits_records_and_bytes() {
        let mut s = ShardBuckets::new(rates(), T0);
        let admitted = (0..1500).filter(|_| s.admit_write(10, T0)).count();
        assert_eq!(admitted, 1000);
        let mut s = ShardBuckets::new(rates(), T0);
        assert!(s.admit_write(600_000, T0));
        assert!(!s.admit_write(600_000, T0));
        // The refused byte-heavy record did not use up a record token.
        let admitted = (0..1000).filter(|_| s.admit_write(1, T0)).count();
        assert_eq!(admitted, 999);
        assert!(s.admit_write(600_000, T0.add_micros(1_000_000)));
    }

    #[test]
    fn a_record_past_the_byte_rate_waits_for_a_full_bucket_then_borrows() {
        let mut s = ShardBuckets::new(rates(), T0);
        let ten_mib = 10 * 1024 * 1024;
        assert!(s.admit_write(ten_mib, T0), "a full bucket admits it");
        assert!(!s.admit_write(1, T0.add_micros(5_000_000)), "5 s later, still in debt");
        assert!(s.admit_write(1, T0.add_micros(10_000_000)), "repaid after ~9.5 s at 1 MiB/s");
        assert!(!s.admit_write(ten_mib, T0.add_micros(10_000_000)), "not full yet");
        assert!(s.admit_write(ten_mib, T0.add_micros(12_000_000)));
    }

    #[test]
    fn reads_limit_calls_and_go_into_byte_debt() {
        let mut s = ShardBuckets::new(rates(), T0);
        for _ in 0..5 {
            assert!(s.admit_read(T0));
        }
        assert!(!s.admit_read(T0));
        let mut s = ShardBuckets::new(rates(), T0);
        assert!(s.admit_read(T0));
        s.charge_read(10 * 1024 * 1024, T0);
        assert!(!s.admit_read(T0.add_micros(3_000_000)), "8.5 MB of debt at 2 MB/s");
        assert!(s.admit_read(T0.add_micros(5_000_000)));
    }
}

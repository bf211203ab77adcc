//! Benchmarks of the storage engine (`sluice::log`).
//!
//! - `list/1h_of_30d`: a 30-day log of 1-second records (2,592,000 records in 720 segments of one
//!   hour) is built once; each iteration lists a random one-hour window (two `lower_bound`s and
//!   one `entries` of 3,600 entries). Target: well under 10 ms.
//! - `list/open_30d`: reopening that log (recovery of 719 sealed segments and one tail).
//! - `append_always/*`: appends under `SyncPolicy::Always` (group commit), 1 MiB and 1 KB
//!   records, either one at a time (append + `wait_durable` each: one fdatasync per record) or
//!   in groups of appends followed by one `wait_durable` (what concurrent producers get).
//!   Reported as bytes/s of payload.
//!
//! Run with `cargo bench --bench log`. Files go to a temporary directory under `$TMPDIR` (set
//! it to put the log on the disk you want to measure). Total runtime is about a minute.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use sluice::clock::{ManualClock, SharedClock, SystemClock, Timestamp};
use sluice::log::{Log, LogConfig, NewRecord, Offset, Retention, SyncPolicy, TimeKey};

const T0: i64 = 1_700_000_000_000_000;
const DAYS_30: u64 = 30 * 24 * 3600;
const HOUR: u64 = 3600;
const PAYLOAD: usize = 16;
/// 56-byte frame header + payload.
const FRAME: u64 = 56 + PAYLOAD as u64;

fn secs(s: u64) -> Timestamp {
    Timestamp::from_micros(T0 + s as i64 * 1_000_000)
}

fn build_30_days(dir: &Path) -> Log {
    let clock: SharedClock = Arc::new(ManualClock::new(secs(0)));
    let config = LogConfig {
        // Exactly one hour of records per segment: 720 segments.
        segment_max_bytes: 32 + HOUR * FRAME,
        segment_max_age: Duration::from_secs(365 * 24 * 3600),
        sync: SyncPolicy::Never,
        before_sync: None,
        spare_segment: true,
        tier: None,
    };
    let log = Log::open(dir, config, clock).expect("open bench log");
    let started = Instant::now();
    let payload = Bytes::from_static(&[0x5a; PAYLOAD]);
    let batch = 400; // divides 3,600, so batches never straddle a rollover
    for first in (0..DAYS_30).step_by(batch) {
        let recs = (first..first + batch as u64)
            .map(|s| NewRecord {
                time: secs(s),
                arrival: secs(s).add_micros(250_000),
                meta: [1; 24],
                payload: payload.clone(),
            })
            .collect();
        log.append_batch(recs).expect("append");
    }
    let stats = log.stats();
    eprintln!(
        "built {} records in {} segments ({} MB) in {:.1?}",
        stats.records,
        stats.segments,
        stats.bytes / 1_000_000,
        started.elapsed()
    );
    log
}

/// xorshift64*: deterministic windows without a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn list_window(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = build_30_days(dir.path());
    let mut g = c.benchmark_group("list");
    g.sample_size(50).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(HOUR));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    g.bench_function("1h_of_30d", |b| {
        b.iter(|| {
            let start = rng.below(DAYS_30 - HOUR);
            let from = log.lower_bound(TimeKey::Time, secs(start)).expect("lower_bound");
            let to = log.lower_bound(TimeKey::Time, secs(start + HOUR)).expect("lower_bound");
            let entries = log.entries(from, to, 10_000).expect("entries");
            assert_eq!(entries.len() as u64, HOUR);
            black_box(entries)
        })
    });
    drop(log);
    g.sample_size(10);
    g.throughput(Throughput::Elements(DAYS_30));
    g.bench_function("open_30d", |b| {
        b.iter(|| {
            let clock: SharedClock = Arc::new(SystemClock);
            let config = LogConfig { sync: SyncPolicy::Never, ..LogConfig::default() };
            let log = Log::open(dir.path(), config, clock).expect("reopen");
            assert_eq!(log.committed_end(), Offset(DAYS_30));
            black_box(log)
        })
    });
    g.finish();
}

fn append_always(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut g = c.benchmark_group("append_always");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    for (name, size, group) in [
        ("1MiB/one_at_a_time", 1 << 20, 1),
        ("1MiB/groups_of_16", 1 << 20, 16),
        ("1KB/one_at_a_time", 1000, 1),
        ("1KB/groups_of_256", 1000, 256),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock: SharedClock = Arc::new(SystemClock);
        let config = LogConfig { segment_max_bytes: 64 << 20, ..LogConfig::default() };
        let log = Log::open(dir.path(), config, clock.clone()).expect("open");
        let payload = Bytes::from(vec![0xa5u8; size]);
        let keep = Retention { max_age: None, max_bytes: Some(256 << 20) };
        g.throughput(Throughput::Bytes((size * group) as u64));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let mut last = Offset(0);
                    for _ in 0..group {
                        let now = clock.now();
                        let rec = NewRecord {
                            time: now,
                            arrival: now,
                            meta: [0; 24],
                            payload: payload.clone(),
                        };
                        last = log.append(rec).expect("append");
                    }
                    rt.block_on(log.wait_durable(last)).expect("durable");
                    took += start.elapsed();
                    log.enforce_retention(&keep, clock.now()).expect("retention");
                }
                took
            })
        });
        eprintln!("{name}: {} fdatasyncs for {} records", log.syncs(), log.committed_end());
    }
    g.finish();
}

criterion_group!(benches, list_window, append_always);
criterion_main!(benches);

//! What a rollover costs the append that triggers it, with the next segment made ahead of need
//! (`LogConfig::spare_segment`, the default) and without (files created and synced on the append
//! path), side by side in one run on the same disk. `cargo bench --bench rollover`.
//!
//! Each append writes 8 KB under `SyncPolicy::Always` into 64 KiB segments (a rollover every
//! 8 appends) and waits for durability, as a producer does; the appends that rolled are timed
//! apart from the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice::clock::{SystemClock, Timestamp};
use sluice::log::{Log, LogConfig, META_LEN, NewRecord, SyncPolicy};

const APPENDS: i64 = 1600;

fn run(spare: bool, rt: &tokio::runtime::Runtime) -> (Vec<Duration>, Vec<Duration>) {
    // Under the build cache, on the machine's disk (a tmpfs /tmp would hide the syncs).
    let base = std::env::var_os("CARGO_TARGET_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    let config = LogConfig {
        segment_max_bytes: 64 * 1024,
        segment_max_age: Duration::from_secs(3600),
        sync: SyncPolicy::Always,
        before_sync: None,
        spare_segment: spare,
        tier: None,
    };
    let log = Log::open(dir.path(), config, Arc::new(SystemClock)).expect("open");
    let payload = Bytes::from(vec![7u8; 8000]);
    let (mut rolled, mut other) = (Vec::new(), Vec::new());
    for i in 0..APPENDS {
        let segments = log.stats().segments;
        let t = Timestamp::from_millis(i);
        let started = Instant::now();
        let offset = log
            .append(NewRecord {
                time: t,
                arrival: t,
                meta: [0; META_LEN],
                payload: payload.clone(),
            })
            .expect("append");
        let took = started.elapsed();
        if log.stats().segments != segments {
            rolled.push(took)
        } else {
            other.push(took)
        }
        rt.block_on(log.wait_durable(offset)).expect("durable");
        // A producer's pace, so the spare has time to be made, as it does in service.
        std::thread::sleep(Duration::from_millis(1));
    }
    rolled.sort();
    other.sort();
    (rolled, other)
}

fn pct(v: &[Duration], q: f64) -> Duration {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    println!("{:<40} {:>6} {:>10} {:>10} {:>10}", "append", "n", "p50", "p90", "p99");
    for spare in [true, false] {
        let (rolled, other) = run(spare, &rt);
        let label = if spare { "spare made ahead" } else { "files made on the append" };
        for (what, v) in [("rolled", &rolled), ("did not roll", &other)] {
            println!(
                "{:<40} {:>6} {:>10.0?} {:>10.0?} {:>10.0?}",
                format!("{label}: {what}"),
                v.len(),
                pct(v, 0.5),
                pct(v, 0.9),
                pct(v, 0.99)
            );
        }
    }
}

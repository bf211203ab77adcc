//! A deterministic "mini fuzz" of the reader and of [`samples`]: mutations of the fixtures
//! (bit flips, overwritten fields, truncations, insertions, random chunking) from a fixed seed.
//! It asserts no panic and the reader's invariants (checked by `read_all`); the real fuzzer is
//! `fuzz/fuzz_targets/fmp4_reader.rs`.

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use super::tests::{Rng, fixture, read_all};
use super::*;

const ITERATIONS: usize = 3000;

/// The fixture cut after its second fragment, and the byte ranges of its init and moof boxes
/// (where mutations are interesting; mdat bytes are opaque to the reader).
fn base_input(name: &str) -> (Vec<u8>, Vec<Range<usize>>) {
    let input = fixture(name);
    let mut structural = Vec::new();
    let mut at = 0;
    let mut fragments = 0;
    while at + 8 <= input.len() && fragments < 2 {
        let size = u32::from_be_bytes([input[at], input[at + 1], input[at + 2], input[at + 3]]);
        let size = size as usize;
        match &input[at + 4..at + 8] {
            b"ftyp" | b"moov" | b"moof" => structural.push(at..at + size),
            b"mdat" => fragments += 1,
            _ => {}
        }
        at += size;
    }
    (input[..at].to_vec(), structural)
}

fn mutate(rng: &mut Rng, input: &[u8], structural: &[Range<usize>]) -> Vec<u8> {
    let mut data = input.to_vec();
    let position = |rng: &mut Rng, len: usize| {
        if rng.range(0, 9) < 9 && !structural.is_empty() {
            let r = &structural[rng.range(0, structural.len() - 1)];
            rng.range(r.start, r.end - 1).min(len.saturating_sub(1))
        } else {
            rng.range(0, len.saturating_sub(1))
        }
    };
    for _ in 0..rng.range(1, 4) {
        if data.is_empty() {
            break;
        }
        let at = position(rng, data.len());
        match rng.range(0, 5) {
            0 | 1 => data[at] ^= 1 << rng.range(0, 7),
            2 => {
                const INTERESTING: [u32; 8] = [0, 1, 7, 8, 16, 0x7fff_ffff, 0x8000_0000, u32::MAX];
                let value = INTERESTING[rng.range(0, INTERESTING.len() - 1)].to_be_bytes();
                let end = (at + 4).min(data.len());
                data[at..end].copy_from_slice(&value[..end - at]);
            }
            3 => data.truncate(at),
            4 => {
                let n = rng.range(1, 16);
                let noise: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(at..at, noise);
            }
            _ => {
                let end = (at + rng.range(1, 16)).min(data.len());
                data.drain(at..end);
            }
        }
    }
    data
}

#[test]
fn mutated_fixtures_never_panic() {
    let bases: Vec<_> = [
        "h264.mp4",
        "h264-bframes.mp4",
        "h264-aac.mp4",
        "h265.mp4",
        "h264-parts.mp4",
        "h264-avc3-opus.mp4",
        "h265-hev1.mp4",
    ]
    .iter()
    .map(|name| base_input(name))
    .collect();
    let mut rng = Rng::new(0x5eed_f00d);
    let mut errors = 0;
    for iteration in 0..ITERATIONS {
        let (base, structural) = &bases[iteration % bases.len()];
        let data = mutate(&mut rng, base, structural);
        let max_chunk = [1 << 20, 4096, 64][rng.range(0, 2)];
        let mut chunk_rng = Rng::new(rng.next());
        let result = catch_unwind(AssertUnwindSafe(|| {
            let parsed = read_all(&data, || chunk_rng.range(1, max_chunk));
            for init in &parsed.inits {
                let _ = parse_init(init.bytes.clone());
                for fragment in &parsed.fragments {
                    let _ = samples(init, &fragment.bytes);
                }
            }
            if let Some(init) = parsed.inits.first() {
                // samples() on arbitrary bytes, too.
                let _ = samples(init, &data);
            }
            parsed.error.is_some()
        }));
        match result {
            Ok(failed) => errors += usize::from(failed),
            Err(panic) => {
                eprintln!("panic at iteration {iteration} ({} bytes)", data.len());
                resume_unwind(panic);
            }
        }
    }
    // Most mutations must be caught as errors, not silently accepted or ignored.
    assert!(errors > ITERATIONS / 3, "only {errors} of {ITERATIONS} mutations were errors");
}

//! Fuzzes `sluice::media::fmp4`: arbitrary bytes, pushed through `Fmp4Reader` in arbitrary
//! chunks, and every fragment it returns through `samples()`. It must never panic, and the
//! reader's accounting must hold (`position() + buffered()` = bytes pushed).
//!
//! The first byte of the input picks the chunking, so the fuzzer explores chunk boundaries too.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice::media::fmp4::{Fmp4Reader, Item, Limits, parse_init, samples};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let limits = Limits { max_fragment_bytes: 4 << 20, max_init_bytes: 1 << 20 };
    let mut reader = Fmp4Reader::new(limits);
    let mut init = None;
    let mut state = u32::from(seed) | 1;
    let mut at = 0;
    while at < stream.len() {
        // A small LCG seeded by the first byte: chunks of 1 to 4096 bytes.
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = if seed == 0 { stream.len() } else { 1 + (state >> 16) as usize % 4096 };
        let end = stream.len().min(at + n);
        reader.push(Bytes::copy_from_slice(&stream[at..end]));
        at = end;
        loop {
            match reader.next_item() {
                Ok(Some(Item::Init(segment))) => {
                    let reparsed = parse_init(segment.bytes.clone()).expect("an init re-parses");
                    assert_eq!(reparsed.tracks, segment.tracks);
                    init = Some(segment);
                }
                Ok(Some(Item::FragmentStarted { .. })) => {}
                Ok(Some(Item::Fragment(fragment))) => {
                    let init = init.as_ref().expect("a fragment follows an init");
                    // The reader validated the sample table; samples() must agree.
                    let tracks = samples(init, &fragment.bytes).expect("samples of a fragment");
                    for (summary, track) in fragment.tracks.iter().zip(&tracks) {
                        assert_eq!(summary.track_id, track.track_id);
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert_eq!(reader.position() + reader.buffered() as u64, at as u64);
    }
    let _ = reader.finish();
    if let Some(init) = &init {
        let _ = samples(init, stream);
    }
});

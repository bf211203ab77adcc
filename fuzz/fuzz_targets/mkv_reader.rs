//! Fuzzes `sluice::media::mkv` as PutMedia uses it: arbitrary bytes pushed through the Matroska
//! remuxer (which drives `MkvReader`) in arbitrary chunks, and every fragment it makes parsed back
//! with `samples()` under the init segment before it. It must never panic, every fragment it
//! makes must be well-formed fMP4, and its buffering must stay within what was pushed.
//!
//! The first byte of the input picks the chunking, so the fuzzer explores chunk boundaries too.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice::media::fmp4::{Item, samples};
use sluice::media::mkv::{MkvLimits, MkvRemuxer, Remuxed};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let limits = MkvLimits { max_header_bytes: 1 << 20, max_block_bytes: 4 << 20 };
    let mut remuxer = MkvRemuxer::new(limits, 4 << 20, 0);
    let mut init = None;
    let mut state = u32::from(seed) | 1;
    let mut at = 0;
    let mut check = |x: Remuxed, init: &mut Option<sluice::media::fmp4::InitSegment>| match x {
        Remuxed::Item(Item::Init(i)) => *init = Some(i),
        Remuxed::Cluster { fragment, .. } => {
            let init = init.as_ref().expect("a fragment follows an init");
            samples(init, &fragment.bytes).expect("a remuxed fragment parses");
        }
        _ => {}
    };
    while at < stream.len() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = if seed == 0 { stream.len() } else { 1 + (state >> 16) as usize % 4096 };
        let end = stream.len().min(at + n);
        remuxer.push(Bytes::copy_from_slice(&stream[at..end]));
        at = end;
        loop {
            match remuxer.next_remuxed() {
                Ok(Some(x)) => check(x, &mut init),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(remuxer.buffered() <= at);
    }
    if remuxer.finish().is_ok() {
        while let Ok(Some(x)) = remuxer.next_remuxed() {
            check(x, &mut init);
        }
    }
});

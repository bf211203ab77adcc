//! The session state machine, driven directly: unit tests and a seeded fuzz test.

use super::*;

use crate::media::fmp4::{Fmp4Reader, Item, Limits};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00,
    0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000 + ms)
}

fn video_only() -> Vec<TrackSpec> {
    vec![TrackSpec {
        codec: Codec::H264,
        clock_rate: 90_000,
        params: vec![Bytes::from_static(SPS), Bytes::from_static(PPS)],
    }]
}

fn idr() -> Vec<Bytes> {
    vec![Bytes::from_static(&[0x65, 0x88, 0x80, 0x40])]
}

fn p_frame() -> Vec<Bytes> {
    vec![Bytes::from_static(&[0x41, 0x9a, 0x02])]
}

/// Checks every output the way the store would see it: each init parses, each fragment's
/// bytes parse after its init to exactly the description given with them, and each track's
/// decode times never go backwards. Returns the fragments' descriptions.
fn check_outputs(outputs: &[Output]) -> Vec<Fragment> {
    let mut reader = Fmp4Reader::new(Limits::default());
    let mut seen_init = false;
    let mut last_end: std::collections::HashMap<u32, u64> = Default::default();
    let mut fragments = Vec::new();
    for o in outputs {
        match o {
            Output::Init(init) => {
                reader = Fmp4Reader::new(Limits::default());
                reader.push(init.bytes.clone());
                match reader.next_item().unwrap() {
                    Some(Item::Init(parsed)) => assert_eq!(&parsed, init),
                    other => panic!("not an init segment: {other:?}"),
                }
                seen_init = true;
            }
            Output::Fragment { fragment, .. } => {
                assert!(seen_init, "a fragment before any init segment");
                reader.push(fragment.bytes.clone());
                let parsed = loop {
                    match reader.next_item().unwrap() {
                        Some(Item::Fragment(f)) => break f,
                        Some(_) => continue,
                        None => panic!("the fragment is incomplete"),
                    }
                };
                assert_eq!(parsed.tracks, fragment.tracks, "described as parsed");
                for tf in &fragment.tracks {
                    let end = last_end.entry(tf.track_id).or_insert(0);
                    assert!(tf.base_decode_time >= *end, "decode time went backwards");
                    *end = tf.base_decode_time + tf.duration;
                }
                fragments.push(fragment.clone());
            }
        }
    }
    fragments
}

#[test]
fn cuts_fragments_at_keyframes_and_parts_at_part_duration() {
    let mut s = RtpSession::new(video_only(), Duration::from_millis(200), None).unwrap();
    let mut out = Vec::new();
    // 30 fps, a keyframe every 30 frames, for 60 frames.
    for i in 0..60u32 {
        let nalus = if i % 30 == 0 { idr() } else { p_frame() };
        out.extend(s.video(0, i * 3000, &nalus, t(i64::from(i) * 33)).unwrap());
    }
    out.extend(s.finish(t(2000)).unwrap());
    assert!(matches!(out[0], Output::Init(_)), "the init segment comes first");
    let frags = check_outputs(&out);
    // 200 ms parts of 6 frames: 5 parts per 1 s GOP, two GOPs.
    assert_eq!(frags.len(), 10, "{:?}", frags.iter().map(|f| f.tracks[0]).collect::<Vec<_>>());
    assert!(frags.iter().all(|f| f.tracks[0].sample_count == 6));
    let keyframes: Vec<bool> = frags.iter().map(|f| f.tracks[0].starts_with_sync).collect();
    assert_eq!(keyframes.iter().filter(|k| **k).count(), 2);
    assert!(keyframes[0] && keyframes[5]);
    // Contiguous: each part starts where the previous ended.
    for w in frags.windows(2) {
        let (a, b) = (w[0].tracks[0], w[1].tracks[0]);
        assert_eq!(a.base_decode_time + a.duration, b.base_decode_time);
    }
    assert_eq!(s.dropped_frames(), 0);
}

#[test]
fn frames_before_the_first_keyframe_are_dropped_and_counted() {
    let mut s = RtpSession::new(video_only(), Duration::from_millis(200), None).unwrap();
    for i in 0..5u32 {
        assert!(s.video(0, i * 3000, &p_frame(), t(0)).unwrap().is_empty());
    }
    assert_eq!(s.dropped_frames(), 5);
    assert!(s.needs_keyframe());
    s.video(0, 15_000, &idr(), t(0)).unwrap();
    assert!(!s.needs_keyframe());
    s.packet_loss(0);
    assert!(s.needs_keyframe(), "loss asks for a keyframe");
    assert!(s.video(0, 18_000, &p_frame(), t(0)).unwrap().is_empty());
    assert_eq!(s.dropped_frames(), 6, "frames after loss wait for the next keyframe");
}

#[test]
fn a_session_starts_after_what_the_stream_holds() {
    // The arrival clock says t(0), but the stream already holds media up to t(10_000).
    let mut s = RtpSession::new(video_only(), Duration::from_millis(200), Some(t(10_000))).unwrap();
    let mut out = Vec::new();
    for i in 0..10u32 {
        let nalus = if i == 0 { idr() } else { p_frame() };
        out.extend(s.video(0, 1_000 + i * 3000, &nalus, t(i64::from(i) * 33)).unwrap());
    }
    out.extend(s.finish(t(400)).unwrap());
    let frags = check_outputs(&out);
    let first = frags[0].tracks[0].base_decode_time as i128;
    let start_us = first * 1_000_000 / 90_000;
    assert!((start_us - i128::from(t(10_000).as_micros())).abs() <= 1, "{start_us}");
    assert_eq!(s.shift_us(), 10_000_000);
}

#[test]
fn bad_declarations_and_wrong_tracks_are_errors() {
    assert!(RtpSession::new(Vec::new(), Duration::from_millis(200), None).is_err());
    let two = [video_only(), video_only()].concat();
    assert!(RtpSession::new(two, Duration::from_millis(200), None).is_err());
    let aac = vec![TrackSpec {
        codec: Codec::Aac { config: Bytes::from_static(&[0xff]) },
        clock_rate: 48_000,
        params: Vec::new(),
    }];
    assert!(RtpSession::new(aac, Duration::from_millis(200), None).is_err());
    let mut s = RtpSession::new(video_only(), Duration::from_millis(200), None).unwrap();
    assert!(matches!(s.audio(0, 0, Bytes::from_static(b"x"), t(0)), Err(RtpError::WrongTrack(_))));
    assert!(matches!(s.video(3, 0, &idr(), t(0)), Err(RtpError::WrongTrack(_))));
}

/// Seeded random sessions: any mix of video and audio frames with jumping, wrapping and
/// repeated timestamps, garbage NAL units, sender reports and loss never panics, and all
/// that comes out is media the store can take (see `check_outputs`).
#[test]
fn random_sessions_never_panic_and_output_valid_media() {
    let mut fragments = 0;
    for seed in 0..200u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let tracks = vec![
            TrackSpec {
                codec: if rng.random_bool(0.5) { Codec::H264 } else { Codec::H265 },
                clock_rate: 90_000,
                params: if rng.random_bool(0.5) {
                    vec![Bytes::from_static(SPS), Bytes::from_static(PPS)]
                } else {
                    Vec::new()
                },
            },
            TrackSpec {
                codec: Codec::Opus { channels: 2 },
                clock_rate: 48_000,
                params: Vec::new(),
            },
        ];
        let part = Duration::from_millis(rng.random_range(20..1000));
        let mut s = RtpSession::new(tracks, part, Some(t(rng.random_range(0..5000)))).unwrap();
        let mut out = Vec::new();
        let (mut vts, mut ats) = (rng.random::<u32>(), rng.random::<u32>());
        let mut now = 0i64;
        for _ in 0..rng.random_range(1..300) {
            now += rng.random_range(0..50);
            match rng.random_range(0..10) {
                0..=4 => {
                    vts = vts.wrapping_add(match rng.random_range(0..10) {
                        0 => rng.random(),
                        1 => 0,
                        2 => 3000u32.wrapping_neg(),
                        _ => 3000,
                    });
                    let nalus: Vec<Bytes> = match rng.random_range(0..6) {
                        0 => {
                            vec![Bytes::from_static(SPS), Bytes::from_static(PPS), idr()[0].clone()]
                        }
                        1 => idr(),
                        2 => {
                            let n = rng.random_range(0..40);
                            vec![Bytes::from(
                                (0..n).map(|_| rng.random::<u8>()).collect::<Vec<_>>(),
                            )]
                        }
                        3 => Vec::new(),
                        _ => p_frame(),
                    };
                    if let Ok(o) = s.video(0, vts, &nalus, t(now)) {
                        out.extend(o);
                    }
                }
                5..=7 => {
                    ats = ats.wrapping_add(if rng.random_bool(0.9) { 960 } else { rng.random() });
                    let frame = Bytes::from(vec![0xfc; rng.random_range(0..20)]);
                    out.extend(s.audio(1, ats, frame, t(now)).unwrap());
                }
                8 => s.sender_report(
                    rng.random_range(0..3),
                    rng.random(),
                    t(now + rng.random_range(-100_000..100_000)),
                ),
                _ => s.packet_loss(rng.random_range(0..3)),
            }
        }
        out.extend(s.finish(t(now)).unwrap());
        fragments += check_outputs(&out).len();
    }
    // The sessions are not all refused: most of them store media.
    eprintln!("{fragments} fragments");
    assert!(fragments > 1000, "only {fragments} fragments from 200 sessions");
}

#[test]
fn rtp_clock_unwraps_forward_and_back() {
    let mut c = RtpClock::default();
    assert_eq!(c.extend(u32::MAX - 1000), i64::from(u32::MAX - 1000));
    // Wraps forward.
    assert_eq!(c.extend(2000), i64::from(u32::MAX) + 1 + 2000);
    // A B-frame slightly earlier, across the wrap again.
    assert_eq!(c.extend(u32::MAX - 10), i64::from(u32::MAX - 10));
    assert_eq!(c.extend(5000), i64::from(u32::MAX) + 1 + 5000);
    // Many wraps in steps of 2^30.
    let mut c = RtpClock::default();
    let mut ts = 0u32;
    let mut expect = 0i64;
    c.extend(0);
    for _ in 0..20 {
        ts = ts.wrapping_add(1 << 30);
        expect += 1 << 30;
        assert_eq!(c.extend(ts), expect);
    }
}

#[test]
fn reorder_window_gives_sorted_decode_times() {
    // Decode order I0 P3 B1 B2 P6 B4 B5 (presentation times in frames).
    let mut w = ReorderWindow::new(2);
    let mut out = Vec::new();
    for pts in [0, 3, 1, 2, 6, 4, 5] {
        out.extend(w.push(pts, ()));
    }
    out.extend(w.drain());
    let dts: Vec<i64> = out.iter().map(|o| o.0).collect();
    let pts: Vec<i64> = out.iter().map(|o| o.1).collect();
    assert_eq!(dts, vec![0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(pts, vec![0, 3, 1, 2, 6, 4, 5]);
    // Decode times always increase, even when the window is too shallow or two pictures
    // share a timestamp.
    let mut w = ReorderWindow::new(0);
    let mut last = i64::MIN;
    for pts in [0, 3, 1, 2, 6, 6, 4, 5] {
        for (dts, _, ()) in w.push(pts, ()) {
            assert!(dts > last, "{dts} after {last}");
            last = dts;
        }
    }
}

#[test]
fn ticks_and_durations() {
    assert_eq!(ticks_to_us(90_000, 90_000), 1_000_000);
    assert_eq!(ticks_to_us(-45_000, 90_000), -500_000);
    assert_eq!(duration_ticks(Duration::from_millis(200), 90_000), 18_000);
    assert_eq!(duration_ticks(Duration::from_millis(200), 48_000), 9_600);
}

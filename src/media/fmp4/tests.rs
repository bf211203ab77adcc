//! Tests of the fMP4 reader against the committed fixtures (made by ffmpeg, see
//! `fixtures/README.md`) and against hand-made malformed streams.

use bytes::Bytes;

use super::*;
use crate::media::codec::Codec;

/// A small deterministic PRNG (xorshift64*), so chunkings and mutations are reproducible.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

pub(super) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {path}: {e}"))
}

/// Everything a reader produced from one input.
#[derive(Default)]
pub(super) struct Parsed {
    pub inits: Vec<InitSegment>,
    pub fragments: Vec<Fragment>,
    /// The bytes of every item, in order (init and fragment bytes).
    pub emitted: Vec<u8>,
    pub error: Option<Fmp4Error>,
}

/// Pushes `input` in chunks whose sizes `chunk` chooses, pulling items after every push, and
/// checks the reader's invariants on the way.
pub(super) fn read_all(input: &[u8], mut chunk: impl FnMut() -> usize) -> Parsed {
    let mut reader = Fmp4Reader::new(Limits::default());
    let mut parsed = Parsed::default();
    let mut started: Option<u64> = None;
    let mut at = 0;
    while at < input.len() {
        let n = chunk().clamp(1, input.len() - at);
        reader.push(Bytes::copy_from_slice(&input[at..at + n]));
        at += n;
        loop {
            match reader.next_item() {
                Ok(None) => break,
                Ok(Some(Item::Init(init))) => {
                    assert_eq!(started, None, "init inside a fragment");
                    parsed.emitted.extend_from_slice(&init.bytes);
                    parsed.inits.push(init);
                }
                Ok(Some(Item::FragmentStarted { offset })) => {
                    assert_eq!(started, None, "two FragmentStarted without a Fragment");
                    assert!(!parsed.inits.is_empty());
                    started = Some(offset);
                }
                Ok(Some(Item::Fragment(fragment))) => {
                    assert_eq!(started.take(), Some(fragment.offset));
                    parsed.emitted.extend_from_slice(&fragment.bytes);
                    parsed.fragments.push(fragment);
                }
                Err(e) => {
                    assert_eq!(reader.next_item(), Err(e.clone()), "errors are sticky");
                    parsed.error = Some(e);
                    return parsed;
                }
            }
        }
        assert_eq!(reader.position() + reader.buffered() as u64, at as u64);
    }
    if let Err(e) = reader.finish() {
        parsed.error = Some(e);
    } else {
        assert_eq!(reader.position(), input.len() as u64);
        assert_eq!(started, None);
    }
    parsed
}

/// The input without the top-level boxes the reader skips (for ffmpeg's files: the mfra).
fn without_skipped_boxes(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let size = u32::from_be_bytes(input[at..at + 4].try_into().unwrap()) as usize;
        let kind = &input[at + 4..at + 8];
        assert_ne!(size, 1, "no largesize in fixtures");
        if [&b"ftyp"[..], b"moov", b"moof", b"mdat"].contains(&kind) {
            out.extend_from_slice(&input[at..at + size]);
        }
        at += size;
    }
    out
}

struct Expected {
    name: &'static str,
    fragments: usize,
    video_frames: u32,
    video_duration: u64,
    codecs: &'static str,
    /// Which fragments start with a keyframe.
    sync: fn(usize) -> bool,
}

const FIXTURES: &[Expected] = &[
    Expected {
        name: "h264.mp4",
        fragments: 6,
        video_frames: 180,
        video_duration: 180 * 512,
        codecs: "avc1.64001e",
        sync: |_| true,
    },
    Expected {
        name: "h264-bframes.mp4",
        fragments: 6,
        video_frames: 180,
        video_duration: 180 * 512,
        codecs: "avc1.64001e",
        sync: |_| true,
    },
    Expected {
        name: "h264-aac.mp4",
        fragments: 6,
        video_frames: 180,
        // ffmpeg stretches the first frame to 840 to line up with the audio priming.
        video_duration: 840 + 179 * 512,
        codecs: "avc1.64001e,mp4a.40.2",
        sync: |_| true,
    },
    Expected {
        name: "h265.mp4",
        fragments: 6,
        video_frames: 180,
        video_duration: 180 * 512,
        codecs: "hvc1.1.6.L63.90",
        sync: |_| true,
    },
    Expected {
        name: "h264-parts.mp4",
        fragments: 30,
        video_frames: 180,
        video_duration: 180 * 512,
        codecs: "avc1.64001e",
        // -g 60 at 30 fps with 200 ms fragments: a keyframe every tenth fragment.
        sync: |i| i % 10 == 0,
    },
    Expected {
        name: "h264-avc3-opus.mp4",
        fragments: 6,
        video_frames: 180,
        // As with AAC, ffmpeg stretches the first frame, here by the Opus pre-skip (312 / 48000 s).
        video_duration: 612 + 179 * 512,
        codecs: "avc3.64001e,opus",
        sync: |_| true,
    },
    Expected {
        name: "h265-hev1.mp4",
        fragments: 6,
        video_frames: 180,
        video_duration: 180 * 512,
        codecs: "hev1.1.6.L63.90",
        sync: |_| true,
    },
];

fn check_fixture(expected: &Expected, input: &[u8], parsed: &Parsed) {
    let name = expected.name;
    assert_eq!(parsed.error, None, "{name}");
    assert_eq!(parsed.inits.len(), 1, "{name}");
    let init = &parsed.inits[0];
    assert_eq!(init.codecs_attribute(), expected.codecs, "{name}");
    let video = init.video().expect("video track");
    assert_eq!((video.width, video.height, video.timescale), (640, 360, 15360), "{name}");
    assert_eq!(parsed.fragments.len(), expected.fragments, "{name}");
    let mut frames = 0;
    let mut duration = 0;
    let mut next_time = 0;
    for (i, fragment) in parsed.fragments.iter().enumerate() {
        let track = fragment.track(video.track_id).expect("video in every fragment");
        assert_eq!(track.base_decode_time, next_time, "{name} fragment {i}");
        assert_eq!(track.starts_with_sync, (expected.sync)(i), "{name} fragment {i}");
        frames += track.sample_count;
        duration += track.duration;
        next_time = track.base_decode_time + track.duration;
    }
    assert_eq!(frames, expected.video_frames, "{name}");
    assert_eq!(duration, expected.video_duration, "{name}");
    assert_eq!(parsed.emitted, without_skipped_boxes(input), "{name}");
}

#[test]
fn fixtures_parse_whole_and_in_random_chunks() {
    for expected in FIXTURES {
        let input = fixture(expected.name);
        check_fixture(expected, &input, &read_all(&input, || usize::MAX));
        let mut rng = Rng::new(7);
        check_fixture(expected, &input, &read_all(&input, || rng.range(1, 5000)));
        check_fixture(expected, &input, &read_all(&input, || rng.range(1, 200_000)));
    }
}

#[test]
fn fixture_parses_in_one_byte_chunks() {
    for expected in &FIXTURES[..2] {
        let input = fixture(expected.name);
        check_fixture(expected, &input, &read_all(&input, || 1));
    }
}

#[test]
fn track_info_of_audio_and_hevc() {
    let parsed = read_all(&fixture("h264-aac.mp4"), || usize::MAX);
    let init = &parsed.inits[0];
    let video = init.video().unwrap();
    assert_eq!((video.kind, &video.codec), (TrackKind::Video, &Codec::H264));
    let audio = init.audio().unwrap();
    assert_eq!(audio.codec, Codec::Aac);
    assert_eq!(audio.codec_string, "mp4a.40.2");
    assert_eq!((audio.sample_rate, audio.channels, audio.timescale), (48000, 1, 48000));
    let audio_frames: u32 = parsed
        .fragments
        .iter()
        .map(|f| f.track(audio.track_id).map_or(0, |t| t.sample_count))
        .sum();
    assert_eq!(audio_frames, 283, "ffprobe -count_packets");

    let init = &read_all(&fixture("h265.mp4"), || usize::MAX).inits[0];
    let video = init.video().unwrap();
    assert_eq!(video.codec, Codec::H265);
    assert_eq!(video.codec_string, "hvc1.1.6.L63.90");
    assert_eq!(parse_init(init.bytes.clone()).unwrap().tracks, init.tracks);
}

/// What `samples_of_in_band_fixtures` expects of one of the fixtures with avc3/hev1 sample
/// entries (values from ffprobe, see `fixtures/README.md`).
struct InBand {
    name: &'static str,
    video: (Codec, &'static str),
    audio: Option<(Codec, &'static str)>,
    /// ffprobe `nb_read_frames` and `duration_ts` of the video stream.
    video_frames: usize,
    video_duration: u64,
    /// ffprobe `nb_read_frames` and `duration_ts` of the audio stream.
    audio_frames: usize,
    audio_duration: u64,
    /// NAL unit types every keyframe carries in-band: SPS and PPS (H.264 types 7, 8), or VPS,
    /// SPS and PPS (H.265 types 32, 33, 34).
    parameter_sets: &'static [u8],
}

const IN_BAND: &[InBand] = &[
    InBand {
        name: "h264-avc3-opus.mp4",
        video: (Codec::H264, "avc3.64001e"),
        audio: Some((Codec::Opus, "opus")),
        video_frames: 180,
        video_duration: 92260, // 6.006510 s at 15360 Hz
        audio_frames: 301,
        audio_duration: 288_312, // 6.006500 s at 48000 Hz
        parameter_sets: &[7, 8],
    },
    InBand {
        name: "h265-hev1.mp4",
        video: (Codec::H265, "hev1.1.6.L63.90"),
        audio: None,
        video_frames: 180,
        video_duration: 92160, // 6.000000 s at 15360 Hz
        audio_frames: 0,
        audio_duration: 0,
        parameter_sets: &[32, 33, 34],
    },
];

/// The NAL unit types of a sample in the 4-byte length-prefixed form of both fixtures.
fn nal_types(sample: &[u8], hevc: bool) -> Vec<u8> {
    let mut types = Vec::new();
    let mut at = 0;
    while at + 5 <= sample.len() {
        let len = u32::from_be_bytes(sample[at..at + 4].try_into().unwrap()) as usize;
        let header = sample[at + 4];
        types.push(if hevc { (header >> 1) & 0x3f } else { header & 0x1f });
        at += 4 + len;
    }
    assert_eq!(at, sample.len(), "NAL lengths add up to the sample size");
    types
}

/// The avc3 (with Opus) and hev1 fixtures: track kinds, codecs and codec strings, and every
/// sample of every fragment, read in random chunks: counts and durations as ffprobe reports
/// them, a keyframe exactly every 30 frames, and the in-band parameter sets that distinguish
/// these sample entries from avc1/hvc1.
#[test]
fn avc3_opus_and_hev1_fixtures() {
    let mut rng = Rng::new(11);
    for expected in IN_BAND {
        let name = expected.name;
        let parsed = read_all(&fixture(name), || rng.range(1, 20_000));
        assert_eq!(parsed.error, None, "{name}");
        let init = &parsed.inits[0];
        let kinds: Vec<TrackKind> = init.tracks.iter().map(|t| t.kind).collect();
        let video = init.video().expect("video track");
        assert_eq!(
            (&video.codec, video.codec_string.as_str()),
            (&expected.video.0, expected.video.1)
        );
        match &expected.audio {
            Some((codec, string)) => {
                assert_eq!(kinds, [TrackKind::Video, TrackKind::Audio], "{name}");
                let audio = init.audio().unwrap();
                assert_eq!((&audio.codec, audio.codec_string.as_str()), (codec, *string));
                // The dOps says mono; the timescale is Opus's 48 kHz.
                assert_eq!((audio.sample_rate, audio.channels, audio.timescale), (48000, 1, 48000));
            }
            None => assert_eq!(kinds, [TrackKind::Video], "{name}"),
        }
        assert_eq!(parse_init(init.bytes.clone()).unwrap().tracks, init.tracks, "{name}");
        assert_eq!(parsed.fragments.len(), 6, "{name}");

        let hevc = video.codec == Codec::H265;
        let (mut video_samples, mut audio_samples) = (Vec::new(), Vec::new());
        for (i, fragment) in parsed.fragments.iter().enumerate() {
            let tracks = samples(init, &fragment.bytes)
                .unwrap_or_else(|e| panic!("{name} fragment {i}: {e}"));
            for track in tracks {
                let timing = fragment.track(track.track_id).unwrap();
                assert_eq!(track.samples.len(), timing.sample_count as usize, "{name} {i}");
                assert_eq!(track.samples[0].sync, timing.starts_with_sync, "{name} {i}");
                for sample in track.samples {
                    let bytes = &fragment.bytes[sample.range.clone()];
                    if track.track_id == video.track_id {
                        video_samples.push((sample, nal_types(bytes, hevc)));
                    } else {
                        audio_samples.push(sample);
                    }
                }
            }
        }
        assert_eq!(video_samples.len(), expected.video_frames, "{name}");
        assert_eq!(audio_samples.len(), expected.audio_frames, "{name}");
        let mut next = 0;
        for (i, (sample, types)) in video_samples.iter().enumerate() {
            assert_eq!(sample.decode_time, next, "{name} video sample {i}");
            next += u64::from(sample.duration);
            assert_eq!(sample.sync, i % 30 == 0, "{name} video sample {i}");
            for nal_type in expected.parameter_sets {
                assert_eq!(types.contains(nal_type), sample.sync, "{name} {i}: {types:?}");
            }
        }
        assert_eq!(next, expected.video_duration, "{name}");
        let mut next = 0;
        for (i, sample) in audio_samples.iter().enumerate() {
            assert_eq!(sample.decode_time, next, "{name} audio sample {i}");
            assert!(sample.sync, "{name} audio sample {i}");
            next += u64::from(sample.duration);
        }
        assert_eq!(next, expected.audio_duration, "{name}");
    }
}

/// `samples()` against `ffprobe -show_packets` (the `.packets.csv` files, see the README):
/// pts, dts, duration, size, file position and keyframe flag of every packet.
#[test]
fn samples_match_ffprobe_packets() {
    for name in ["h264-bframes", "h264-aac"] {
        let input = fixture(&format!("{name}.mp4"));
        let csv = String::from_utf8(fixture(&format!("{name}.packets.csv"))).unwrap();
        let parsed = read_all(&input, || usize::MAX);
        let init = &parsed.inits[0];
        let mut ours: Vec<(u32, Sample, u64)> = Vec::new();
        for fragment in &parsed.fragments {
            for track in samples(init, &fragment.bytes).unwrap() {
                for sample in track.samples {
                    ours.push((track.track_id, sample, fragment.offset));
                }
            }
        }
        // ffprobe lists packets in file order.
        ours.sort_by_key(|(_, s, offset)| offset + s.range.start as u64);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), ours.len(), "{name}");
        let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split(',').collect()).collect();
        let mut with_cts = 0;
        for (i, (line, (track_id, sample, offset))) in lines.iter().zip(&ours).enumerate() {
            let f = &rows[i];
            let context = format!("{name}: {line} vs track {track_id} {sample:?}");
            assert_eq!(f[0].parse::<u32>().unwrap() + 1, *track_id, "{context}");
            assert_eq!(f[1].parse::<u64>().unwrap(), sample.presentation_time(), "{context}");
            assert_eq!(f[2].parse::<u64>().unwrap(), sample.decode_time, "{context}");
            // ffprobe's duration field is not the stored one at the edges (it reports the
            // frame rate or the AAC frame size where ffmpeg stored 840 or 256 ticks); compare
            // the stored durations with ffprobe's decode-time steps instead, and the end of
            // the last sample with ffprobe's stream duration.
            let next_dts = rows[i + 1..].iter().find(|r| r[0] == f[0]).map(|r| r[2]);
            let end = match next_dts {
                Some(dts) => dts.parse::<u64>().unwrap(),
                None => stream_end(name, *track_id),
            };
            assert_eq!(end, sample.decode_time + u64::from(sample.duration), "{context}");
            assert_eq!(f[4].parse::<u32>().unwrap(), sample.size, "{context}");
            assert_eq!(f[5].parse::<u64>().unwrap(), offset + sample.range.start as u64);
            assert_eq!(f[6].starts_with('K'), sample.sync, "{context}");
            assert_eq!(sample.range.len(), sample.size as usize);
            with_cts += usize::from(sample.composition_offset != 0);
        }
        if name == "h264-bframes" {
            assert!(with_cts > 100, "B-frames give composition offsets");
        }
    }
}

/// `ffprobe -show_entries stream=duration` times the timescale.
fn stream_end(name: &str, track_id: u32) -> u64 {
    match (name, track_id) {
        ("h264-bframes", 1) => 92160, // 6.000000 s at 15360 Hz
        ("h264-aac", 1) => 92488,     // 6.021354 s at 15360 Hz
        ("h264-aac", 2) => 289_024,   // 6.021333 s at 48000 Hz
        _ => unreachable!(),
    }
}

fn header(size: u32, kind: &[u8; 4]) -> Vec<u8> {
    let mut v = size.to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v
}

/// The init segment and first fragment of h264.mp4, and where the fragment starts.
fn init_and_fragment() -> (Vec<u8>, Vec<u8>) {
    let input = without_skipped_boxes(&fixture("h264.mp4"));
    let parsed = read_all(&input, || usize::MAX);
    let init = parsed.inits[0].bytes.to_vec();
    (init, parsed.fragments[0].bytes.to_vec())
}

fn error_of(input: &[u8]) -> Fmp4Error {
    let mut rng = Rng::new(3);
    let whole = read_all(input, || usize::MAX).error.expect("an error");
    let chunked = read_all(input, || rng.range(1, 300)).error.expect("an error");
    assert_eq!(whole, chunked, "the error does not depend on chunking");
    whole
}

#[test]
fn garbage_at_start() {
    // A TLS ClientHello sent to the plain-HTTP port.
    let e = error_of(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
    assert!(matches!(e, Fmp4Error::InvalidBoxType { offset: 0, .. }), "{e}");
    assert!(e.to_string().contains("16 03 01 02 00 01 00 01 fc 03 03)"), "{e}");
    // Text has printable "box types", but absurd sizes.
    let e = error_of(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(matches!(e, Fmp4Error::BoxTooLarge { offset: 0, .. }), "{e}");
    assert!(e.to_string().contains("47 45 54 20 2f 20 48 54"), "{e}");
    let e = error_of(&[0, 0, 0, 4, b'f', b'r', b'e', b'e', 0, 0]);
    assert!(matches!(e, Fmp4Error::InvalidBoxSize { offset: 0, size: 4, .. }), "{e}");
}

#[test]
fn garbage_after_a_fragment_reports_its_offset() {
    let (init, fragment) = init_and_fragment();
    let mut input = [init.clone(), fragment.clone()].concat();
    input.extend_from_slice(&[0xff; 40]);
    let e = error_of(&input);
    assert_eq!(e.offset(), (init.len() + fragment.len()) as u64, "{e}");
    assert!(matches!(e, Fmp4Error::InvalidBoxType { .. }), "{e}");
    assert!(e.to_string().contains("ff ff ff ff"), "{e}");

    // Something other than mdat after a moof.
    let moof_len = u32::from_be_bytes(fragment[..4].try_into().unwrap()) as usize;
    let mut input = [init.clone(), fragment[..moof_len].to_vec()].concat();
    input.extend_from_slice(&header(8, b"free"));
    let e = error_of(&input);
    assert_eq!(e.offset(), (init.len() + moof_len) as u64, "{e}");
    assert_eq!(e.box_type(), Some(BoxType(*b"free")));
}

#[test]
fn truncated_input_fails_at_finish_after_the_complete_fragments() {
    let (init, fragment) = init_and_fragment();
    let input = [init.clone(), fragment.clone(), fragment[..1000].to_vec()].concat();
    let parsed = read_all(&input, || 777);
    assert_eq!(parsed.fragments.len(), 1);
    assert_eq!(
        parsed.error,
        Some(Fmp4Error::Truncated {
            offset: (init.len() + fragment.len()) as u64,
            kind: Some(BoxType::MOOF),
            received: 1000,
            declared: Some(fragment.len() as u64),
        })
    );
    let parsed = read_all(&[init.clone(), vec![0, 0, 1]].concat(), || 1);
    assert!(matches!(parsed.error, Some(Fmp4Error::Truncated { kind: None, .. })));
    let parsed = read_all(&init[..init.len() - 1], || 100);
    assert!(parsed.inits.is_empty());
    assert!(matches!(parsed.error, Some(Fmp4Error::Truncated { .. })));
}

#[test]
fn oversize_box_fails_on_its_header() {
    let (init, _) = init_and_fragment();
    let mut reader = Fmp4Reader::new(Limits { max_fragment_bytes: 1 << 20, ..Limits::default() });
    reader.push(Bytes::from(init.clone()));
    assert!(matches!(reader.next_item(), Ok(Some(Item::Init(_)))));
    // A moof that declares 2 MiB, with only its header sent.
    reader.push(Bytes::from(header(2 << 20, b"moof")));
    let e = reader.next_item().unwrap_err();
    assert_eq!(
        e,
        Fmp4Error::FragmentTooLarge {
            offset: init.len() as u64,
            size: 2 << 20,
            limit: 1 << 20,
            what: "moof alone",
        }
    );
    // A 64-bit size is read too.
    let mut big = header(1, b"moov");
    big.extend_from_slice(&(5u64 << 32).to_be_bytes());
    let e = error_of(&big);
    assert!(matches!(e, Fmp4Error::InitTooLarge { size, .. } if size == 5 << 32), "{e}");
    // An mdat that brings the fragment over the limit fails on the mdat header.
    let (init, fragment) = init_and_fragment();
    let moof_len = u32::from_be_bytes(fragment[..4].try_into().unwrap()) as usize;
    let mut reader = Fmp4Reader::new(Limits {
        max_fragment_bytes: fragment.len() as u64 - 1,
        ..Limits::default()
    });
    reader.push(Bytes::from([init, fragment[..moof_len + 8].to_vec()].concat()));
    assert!(matches!(reader.next_item(), Ok(Some(Item::Init(_)))));
    assert!(matches!(reader.next_item(), Ok(Some(Item::FragmentStarted { .. }))));
    assert!(matches!(reader.next_item(), Err(Fmp4Error::FragmentTooLarge { .. })));
}

#[test]
fn moof_before_moov_is_missing_init() {
    let (_, fragment) = init_and_fragment();
    let mut input = header(16, b"styp");
    input.extend_from_slice(b"cmfcmsdh");
    input.extend_from_slice(&fragment);
    assert_eq!(error_of(&input), Fmp4Error::MissingInit { offset: 16 });
}

#[test]
fn zero_size_box_is_rejected() {
    let (init, _) = init_and_fragment();
    let input = [init.clone(), header(0, b"mdat"), vec![1, 2, 3]].concat();
    let e = error_of(&input);
    assert!(matches!(e, Fmp4Error::UnboundedBox { .. }), "{e}");
    assert_eq!(e.offset(), init.len() as u64);
    assert!(e.to_string().contains("size 0"), "{e}");
}

#[test]
fn skipped_boxes_and_a_second_init() {
    let (init, fragment) = init_and_fragment();
    let free = [header(12, b"free"), vec![0; 4]].concat();
    let mut large_skip = header(1, b"skip");
    large_skip.extend_from_slice(&20u64.to_be_bytes());
    large_skip.extend_from_slice(&[9; 4]);
    let input = [
        free.clone(),
        init.clone(),
        large_skip,
        fragment.clone(),
        free.clone(),
        init.clone(),
        fragment.clone(),
    ]
    .concat();
    for chunk in [1, 13, usize::MAX] {
        let parsed = read_all(&input, || chunk);
        assert_eq!(parsed.error, None);
        assert_eq!(parsed.inits.len(), 2);
        assert_eq!(parsed.inits[1].bytes, parsed.inits[0].bytes, "ftyp kept with the moov");
        assert_eq!(parsed.fragments.len(), 2);
        assert_eq!(parsed.fragments[0].offset, (12 + init.len() + 20) as u64);
        assert_eq!(parsed.emitted, [&init[..], &fragment[..], &init[..], &fragment[..]].concat());
    }
    // A bare mdat (as in a non-fragmented MP4) is an error that says so.
    let e = error_of(&[init, header(16, b"mdat"), vec![0; 8]].concat());
    assert!(e.to_string().contains("non-fragmented"), "{e}");
}

#[test]
fn samples_reject_bad_data_offsets() {
    let parsed = read_all(&fixture("h264.mp4"), || usize::MAX);
    let init = &parsed.inits[0];
    let fragment = &parsed.fragments[0].bytes;
    // Cut the mdat short: its declared size no longer fits.
    assert!(matches!(
        samples(init, &fragment[..fragment.len() - 1]),
        Err(Fmp4Error::Truncated { .. })
    ));
    // Not a fragment at all.
    assert!(matches!(samples(init, &init.bytes), Err(Fmp4Error::UnexpectedBox { .. })));
}

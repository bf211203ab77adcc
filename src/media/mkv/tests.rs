//! The Matroska reader and remuxer against Matroska written from the fixtures (GetMedia's
//! documents: unknown-size Segments, a new EBML header per fragment, tags), variants of it
//! (unknown-size Clusters, `Void`, `BlockGroup`s, lacing, bad tracks), and a deterministic
//! mutation fuzz; the real fuzzer is `fuzz/fuzz_targets/mkv_reader.rs`.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use bytes::Bytes;

use super::ebml::{UNKNOWN_SIZE, put_id, put_size, read_header};
use super::*;
use crate::media::fmp4::tests::Rng;
use crate::media::fmp4::{Fmp4Reader, InitSegment, Item, Limits, samples};

const LIMITS: MkvLimits = MkvLimits { max_header_bytes: 1 << 20, max_block_bytes: 8 << 20 };

/// The fixture's init and fragments.
fn fmp4(name: &str) -> (InitSegment, Vec<Bytes>) {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut reader = Fmp4Reader::new(Limits::default());
    reader.push(Bytes::from(std::fs::read(path).unwrap()));
    let (mut init, mut fragments) = (None, Vec::new());
    while let Some(item) = reader.next_item().unwrap() {
        match item {
            Item::Init(i) => init = Some(i),
            Item::Fragment(f) => fragments.push(f.bytes),
            Item::FragmentStarted { .. } => {}
        }
    }
    (init.unwrap(), fragments)
}

/// The fixture as GetMedia writes it: one document per fragment, cluster timecodes from
/// `start_ms` on the fixture's own timeline.
fn documents(name: &str, start_ms: u64) -> Vec<u8> {
    let (init, fragments) = fmp4(name);
    let head = DocumentHead::new(tracks_of(&init).unwrap());
    let timing = init.video().or_else(|| init.tracks.first()).unwrap().clone();
    let mut out = Vec::new();
    for f in &fragments {
        let s = samples(&init, f).unwrap();
        let base = s.iter().find(|t| t.track_id == timing.track_id).unwrap().base_decode_time;
        let ms = base * 1000 / u64::from(timing.timescale);
        let tags = [("AWS_KINESISVIDEO_FRAGMENT_NUMBER", "1".to_owned())];
        let doc = FragmentDocument {
            fragment: f,
            samples: &s,
            start_ms: start_ms + ms,
            timing: (base, timing.timescale),
            before: &tags,
            after: &tags,
        };
        for p in fragment_document(&head, &doc) {
            out.extend_from_slice(&p);
        }
    }
    out
}

/// Every event of `data` pushed in chunks from `chunk`, the error that stopped it if any.
fn read_all(data: &[u8], mut chunk: impl FnMut() -> usize) -> (Vec<MkvEvent>, Option<MkvError>) {
    let mut reader = MkvReader::new(LIMITS);
    let mut events = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let end = data.len().min(at + chunk().max(1));
        reader.push(Bytes::copy_from_slice(&data[at..end]));
        at = end;
        loop {
            match reader.next_event() {
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
    }
    if let Err(e) = reader.finish() {
        return (events, Some(e));
    }
    while let Ok(Some(e)) = reader.next_event() {
        events.push(e);
    }
    (events, None)
}

/// Everything the remuxer gives for `data`, pushed whole, and the error that ended it.
fn remux_all(data: &[u8], origin_ns: i128) -> (Vec<Remuxed>, Option<RemuxError>) {
    let mut r = MkvRemuxer::new(LIMITS, 8 << 20, origin_ns);
    r.push(Bytes::copy_from_slice(data));
    let mut out = Vec::new();
    loop {
        match r.next_remuxed() {
            Ok(Some(x)) => out.push(x),
            Ok(None) => break,
            Err(e) => return (out, Some(e)),
        }
    }
    if let Err(e) = r.finish() {
        return (out, Some(e));
    }
    while let Ok(Some(x)) = r.next_remuxed() {
        out.push(x);
    }
    (out, None)
}

fn fragments_of(out: &[Remuxed]) -> Vec<&crate::media::fmp4::Fragment> {
    out.iter()
        .filter_map(|x| match x {
            Remuxed::Cluster { fragment, .. } => Some(fragment),
            _ => None,
        })
        .collect()
}

#[test]
fn documents_read_back_in_any_chunking() {
    let data = documents("h264-aac.mp4", 1_772_362_800_000);
    let (whole, error) = read_all(&data, || usize::MAX);
    assert_eq!(error, None);
    let mut rng = Rng::new(3);
    let (chunked, error) = read_all(&data, || rng.range(1, 50));
    assert_eq!(error, None);
    assert_eq!(whole, chunked);
    let (init, fragments) = fmp4("h264-aac.mp4");
    let tracks = whole.iter().filter(|e| matches!(e, MkvEvent::Tracks { .. })).count();
    assert_eq!(tracks, fragments.len(), "a Tracks per document");
    let blocks = whole.iter().filter(|e| matches!(e, MkvEvent::Block { .. })).count();
    let samples: usize = fragments
        .iter()
        .map(|f| samples(&init, f).unwrap().iter().map(|t| t.samples.len()).sum::<usize>())
        .sum();
    assert_eq!(blocks, samples);
    let started = whole.iter().filter(|e| matches!(e, MkvEvent::ClusterStarted { .. })).count();
    let ended = whole.iter().filter(|e| matches!(e, MkvEvent::ClusterEnded)).count();
    assert_eq!((started, ended), (fragments.len(), fragments.len()));
    let MkvEvent::Tracks { timestamp_scale_ns, tracks } = &whole[0] else { panic!("{whole:?}") };
    assert_eq!(*timestamp_scale_ns, 1_000_000);
    assert_eq!(tracks[0].codec_id, "V_MPEG4/ISO/AVC");
    assert_eq!((tracks[0].width, tracks[0].height), (640, 360));
    assert_eq!(tracks[1].codec_id, "A_AAC");
    assert_eq!(tracks[1].sample_rate, 48_000.0);
}

#[test]
fn remuxed_fragments_carry_every_sample_exactly() {
    for name in ["h264-aac.mp4", "h264-bframes.mp4", "h265.mp4", "h264-avc3-opus.mp4"] {
        let data = documents(name, 1_772_362_800_000);
        let (out, error) = remux_all(&data, 0);
        assert_eq!(error, None, "{name}");
        let (init, fragments) = fmp4(name);
        let got = fragments_of(&out);
        assert_eq!(got.len(), fragments.len(), "{name}");
        let Some(Remuxed::Item(Item::Init(new_init))) = out.first() else { panic!("{name}") };
        let inits = out.iter().filter(|x| matches!(x, Remuxed::Item(Item::Init(_)))).count();
        assert_eq!(inits, 1, "{name}: the same Tracks again is not a new init");
        for (mine, theirs) in got.iter().zip(&fragments) {
            let a = samples(new_init, &mine.bytes).unwrap();
            let b = samples(&init, theirs).unwrap();
            assert_eq!(a.len(), b.len(), "{name}: tracks");
            for (ta, tb) in a.iter().zip(&b) {
                assert_eq!(ta.samples.len(), tb.samples.len(), "{name}: samples");
                for (sa, sb) in ta.samples.iter().zip(&tb.samples) {
                    assert_eq!(&mine.bytes[sa.range.clone()], &theirs[sb.range.clone()]);
                    assert_eq!(sa.sync, sb.sync, "{name}: keyframes");
                    assert!(sa.composition_offset >= 0, "{name}: no negative offsets");
                }
                // Presentation order is kept.
                let order = |s: &[crate::media::fmp4::Sample]| {
                    let mut idx: Vec<usize> = (0..s.len()).collect();
                    idx.sort_by_key(|&i| s[i].presentation_time());
                    idx
                };
                assert_eq!(order(&ta.samples), order(&tb.samples), "{name}: presentation order");
            }
        }
        // Decode times never go back from one fragment to the next.
        let bases: Vec<u64> = got.iter().map(|f| f.tracks[0].base_decode_time).collect();
        assert!(bases.windows(2).all(|w| w[0] < w[1]), "{name}: {bases:?}");
    }
}

#[test]
fn relative_timecodes_start_at_the_origin_and_acks_keep_the_producers_timecodes() {
    let data = documents("h264.mp4", 0);
    let origin_ns = 1_772_362_800_000_000_000i128;
    let (out, error) = remux_all(&data, origin_ns);
    assert_eq!(error, None);
    let first = fragments_of(&out)[0];
    assert_eq!(first.tracks[0].base_decode_time, 1_772_362_800_000, "ms since the epoch");
    let timecodes: Vec<i64> = out
        .iter()
        .filter_map(|x| match x {
            Remuxed::Cluster { timecode_ms, .. } => Some(*timecode_ms),
            _ => None,
        })
        .collect();
    assert_eq!(timecodes[0], 0);
    assert!(timecodes.windows(2).all(|w| w[0] < w[1]));
}

/// `data` with every Cluster's size made unknown (its end is found by what follows it).
fn unknown_size_clusters(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    let cluster = [0x1F, 0x43, 0xB6, 0x75];
    while let Some(i) = data[at..].windows(4).position(|w| w == cluster) {
        let start = at + i;
        out.extend_from_slice(&data[at..start + 4]);
        let h = read_header(&data[start..], 0).unwrap().unwrap();
        out.extend_from_slice(&UNKNOWN_SIZE);
        at = start + h.len;
    }
    out.extend_from_slice(&data[at..]);
    out
}

#[test]
fn clusters_of_unknown_size_end_at_the_next_top_level_element_or_the_body() {
    let data = documents("h264-bframes.mp4", 1_000_000);
    let unknown = unknown_size_clusters(&data);
    assert!(unknown.len() > data.len());
    let (a, ea) = read_all(&data, || usize::MAX);
    let (b, eb) = read_all(&unknown, || 7);
    assert_eq!((ea, eb), (None, None));
    // The same events, but for where each Cluster starts (unknown sizes are longer).
    let without_offsets = |events: Vec<MkvEvent>| -> Vec<MkvEvent> {
        events
            .into_iter()
            .map(|e| match e {
                MkvEvent::ClusterStarted { timestamp, .. } => {
                    MkvEvent::ClusterStarted { offset: 0, timestamp }
                }
                other => other,
            })
            .collect()
    };
    assert!(without_offsets(a) == without_offsets(b), "the same events");
}

#[test]
fn void_elements_and_block_groups_are_read() {
    let (init, fragments) = fmp4("h264.mp4");
    let head = DocumentHead::new(tracks_of(&init).unwrap());
    let mut out = Vec::new();
    for p in &head.clone_head() {
        out.extend_from_slice(p);
    }
    // A Void before the cluster, then a cluster of BlockGroups: a keyframe (no ReferenceBlock)
    // and a frame that references it.
    put_id(&mut out, id::VOID);
    put_size(&mut out, 3);
    out.extend_from_slice(&[0, 0, 0]);
    let group = |keyframe: bool, rel: i16, frame: &[u8]| {
        let mut block = vec![0x81];
        block.extend_from_slice(&rel.to_be_bytes());
        block.push(0);
        block.extend_from_slice(frame);
        let mut body = Vec::new();
        ebml::put_bytes(&mut body, id::BLOCK, &block);
        if !keyframe {
            ebml::put_bytes(&mut body, id::REFERENCE_BLOCK, &[0xFF]);
        }
        let mut g = Vec::new();
        ebml::put_bytes(&mut g, id::BLOCK_GROUP, &body);
        g
    };
    let s = samples(&init, &fragments[0]).unwrap();
    let (k, p) = (&s[0].samples[0], &s[0].samples[1]);
    let mut cluster = Vec::new();
    ebml::put_uint(&mut cluster, id::TIMESTAMP, 5000);
    cluster.extend(group(true, 0, &fragments[0][k.range.clone()]));
    cluster.extend(group(false, 33, &fragments[0][p.range.clone()]));
    ebml::put_bytes(&mut out, id::CLUSTER, &cluster);
    let (events, error) = read_all(&out, || 5);
    assert_eq!(error, None);
    let blocks: Vec<(i64, bool)> = events
        .iter()
        .filter_map(|e| match e {
            MkvEvent::Block { time, keyframe, .. } => Some((*time, *keyframe)),
            _ => None,
        })
        .collect();
    assert_eq!(blocks, [(5000, true), (5033, false)]);
}

impl DocumentHead {
    /// The head alone (EBML header, Segment start, Info, Tracks), for hand-built documents.
    fn clone_head(&self) -> Vec<Bytes> {
        let doc = FragmentDocument {
            fragment: &Bytes::new(),
            samples: &[],
            start_ms: 0,
            timing: (0, 1),
            before: &[],
            after: &[],
        };
        fragment_document(self, &doc)
    }
}

/// Where the first SimpleBlock of `data` starts: after the first Cluster's header and its
/// Timestamp.
fn first_block(data: &[u8]) -> usize {
    let cluster = data.windows(4).position(|w| w == [0x1F, 0x43, 0xB6, 0x75]).unwrap();
    let h = read_header(&data[cluster..], 0).unwrap().unwrap();
    let timestamp = cluster + h.len;
    let t = read_header(&data[timestamp..], 0).unwrap().unwrap();
    assert_eq!(t.id, id::TIMESTAMP);
    let block = timestamp + t.len + t.size.unwrap() as usize;
    assert_eq!(data[block], 0xA3);
    block
}

#[test]
fn bad_clusters_are_refused_alone_and_bad_bytes_end_the_session() {
    let data = documents("h264.mp4", 1_000_000);
    // The first document's keyframe flag cleared: nothing decodable precedes it, refused; the
    // rest is stored.
    let mut no_key = data.clone();
    let first_block = first_block(&no_key);
    let h = read_header(&no_key[first_block..], 0).unwrap().unwrap();
    no_key[first_block + h.len + 3] &= 0x7F;
    let (out, error) = remux_all(&no_key, 0);
    assert_eq!(error, None);
    assert!(
        matches!(out[2], Remuxed::Refused(Refusal::Invalid, ref m) if m.contains("keyframe")),
        "{:?}",
        out[2]
    );
    assert_eq!(fragments_of(&out).len(), fmp4("h264.mp4").1.len() - 1);

    // A block of track 9, which the Tracks do not declare.
    let mut other_track = data.clone();
    other_track[first_block + h.len] = 0x89;
    let (out, _) = remux_all(&other_track, 0);
    assert!(out.iter().any(|x| matches!(x, Remuxed::Refused(Refusal::UnknownTrack, _))));

    // A laced block, a codec with no MP4 mapping, garbage: the session ends with the offset.
    let mut laced = data.clone();
    laced[first_block + h.len + 3] |= 0x02;
    assert!(matches!(remux_all(&laced, 0).1, Some(RemuxError::Mkv(MkvError::Invalid { .. }))));
    let mut vp9 = data.clone();
    let codec = vp9.windows(15).position(|w| w == b"V_MPEG4/ISO/AVC").unwrap();
    vp9[codec..codec + 15].copy_from_slice(b"V_VP9\0\0\0\0\0\0\0\0\0\0");
    match remux_all(&vp9, 0).1 {
        Some(RemuxError::Track { reason, .. }) => assert!(reason.contains("V_VP9"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let (_, e) = remux_all(b"\x1A\x45\xDF\xA3\x80\x00\x00", 0);
    assert!(matches!(e, Some(RemuxError::Mkv(_))), "{e:?}");
    let (_, e) = remux_all(b"not matroska at all", 0);
    assert!(matches!(e, Some(RemuxError::Mkv(MkvError::Invalid { offset: 0, .. }))), "{e:?}");

    // The body ending inside an element: an error at the end, nothing of the cut cluster.
    let last_cluster = data.windows(4).rposition(|w| w == [0x1F, 0x43, 0xB6, 0x75]).unwrap();
    let (out, e) = remux_all(&data[..last_cluster + 100], 0);
    assert!(e.is_some());
    assert_eq!(fragments_of(&out).len(), fmp4("h264.mp4").1.len() - 1);

    // A block over the limit.
    let mut small =
        MkvRemuxer::new(MkvLimits { max_header_bytes: 1 << 20, max_block_bytes: 1000 }, 1000, 0);
    small.push(Bytes::from(data.clone()));
    let mut error = None;
    while error.is_none() {
        match small.next_remuxed() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => error = Some(e),
        }
    }
    assert!(matches!(error, Some(RemuxError::Mkv(MkvError::TooLarge { .. }))), "{error:?}");
}

/// Mutations of the documents (bit flips, overwritten sizes, truncations, insertions, random
/// chunking) from a fixed seed: no panic, and most are errors.
#[test]
fn mutated_documents_never_panic() {
    const ITERATIONS: usize = 2000;
    let bases: Vec<Vec<u8>> =
        ["h264-aac.mp4", "h264-bframes.mp4", "h265.mp4", "h264-avc3-opus.mp4"]
            .iter()
            .map(|n| {
                let d = documents(n, 1_000_000);
                // Two documents are enough to exercise every element.
                let second =
                    d.windows(4).skip(1).position(|w| w == [0x1A, 0x45, 0xDF, 0xA3]).unwrap();
                let third = d[second + 2..]
                    .windows(4)
                    .position(|w| w == [0x1A, 0x45, 0xDF, 0xA3])
                    .map_or(d.len(), |p| second + 2 + p);
                d[..third].to_vec()
            })
            .collect();
    let mut rng = Rng::new(0x5eed_3c1f);
    let mut errors = 0;
    for iteration in 0..ITERATIONS {
        let base = &bases[iteration % bases.len()];
        let mut data = base.clone();
        for _ in 0..rng.range(1, 4) {
            if data.is_empty() {
                break;
            }
            // Mostly in the first 600 bytes of a document, where the structure is.
            let at = if rng.range(0, 3) > 0 {
                rng.range(0, 600.min(data.len() - 1))
            } else {
                rng.range(0, data.len() - 1)
            };
            match rng.range(0, 4) {
                0 | 1 => data[at] ^= 1 << rng.range(0, 7),
                2 => data.truncate(at),
                3 => {
                    let noise: Vec<u8> = (0..rng.range(1, 12)).map(|_| rng.next() as u8).collect();
                    data.splice(at..at, noise);
                }
                _ => {
                    let end = (at + rng.range(1, 12)).min(data.len());
                    data.drain(at..end);
                }
            }
        }
        let max_chunk = [1 << 20, 4096, 13][rng.range(0, 2)];
        let mut chunk_rng = Rng::new(rng.next());
        let result = catch_unwind(AssertUnwindSafe(|| {
            let (_, error) = read_all(&data, || chunk_rng.range(1, max_chunk));
            let (out, remux_error) = remux_all(&data, 0);
            // Whatever is produced is well-formed fMP4, under the init before it.
            let mut init = None;
            for x in &out {
                match x {
                    Remuxed::Item(Item::Init(i)) => init = Some(i),
                    Remuxed::Cluster { fragment, .. } => {
                        let init = init.expect("a fragment follows an init");
                        samples(init, &fragment.bytes).expect("a remuxed fragment parses");
                    }
                    _ => {}
                }
            }
            error.is_some() || remux_error.is_some()
        }));
        match result {
            Ok(failed) => errors += usize::from(failed),
            Err(panic) => {
                eprintln!("panic at iteration {iteration} ({} bytes)", data.len());
                resume_unwind(panic);
            }
        }
    }
    assert!(errors > ITERATIONS / 4, "only {errors} of {ITERATIONS} mutations were errors");
}

#[test]
fn tags_go_with_the_cluster_that_follows_them() {
    // GetMedia's documents tag each Cluster before (and after) it: every Cluster gets the tags
    // read since the one before it ended, nested SimpleTags included.
    let (out, error) = remux_all(&documents("h264.mp4", 0), 0);
    assert_eq!(error, None);
    let tags: Vec<&Vec<SimpleTag>> = out
        .iter()
        .filter_map(|x| match x {
            Remuxed::Cluster { tags, .. } => Some(tags),
            _ => None,
        })
        .collect();
    assert!(tags.len() > 2);
    let names = |t: &Vec<SimpleTag>| t.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(tags[0]), ["AWS_KINESISVIDEO_FRAGMENT_NUMBER"]);
    for t in &tags[1..] {
        assert_eq!(
            names(t),
            ["AWS_KINESISVIDEO_FRAGMENT_NUMBER"; 2],
            "after the one before, then its own"
        );
        assert_eq!(t[0].value, "1");
    }

    // A nested notification tag before a Cluster of unknown size.
    let mut nested = Vec::new();
    super::ebml::master(&mut nested, id::SIMPLE_TAG, |s| {
        super::ebml::put_str(s, id::TAG_NAME, "AWS_KINESISVIDEO_NOTIFICATION");
        super::ebml::master(s, id::SIMPLE_TAG, |k| {
            super::ebml::put_str(k, id::TAG_NAME, "Motion");
            super::ebml::put_str(k, id::TAG_STRING, "true");
        });
    });
    let mut element = Vec::new();
    super::ebml::master(&mut element, id::TAGS, |t| super::ebml::put_master(t, id::TAG, &nested));
    let data = unknown_size_clusters(&documents("h264.mp4", 0));
    let second = data.windows(4).enumerate().filter(|(_, w)| *w == [0x1F, 0x43, 0xB6, 0x75]).nth(1);
    let at = second.unwrap().0;
    let data = [&data[..at], &element[..], &data[at..]].concat();
    let (out, error) = remux_all(&data, 0);
    assert_eq!(error, None);
    let second = out.iter().filter_map(|x| match x {
        Remuxed::Cluster { tags, .. } => Some(tags),
        _ => None,
    });
    let t = second.clone().nth(1).unwrap().last().unwrap();
    assert_eq!(t.name, "AWS_KINESISVIDEO_NOTIFICATION");
    assert_eq!(
        t.children,
        [SimpleTag { name: "Motion".into(), value: "true".into(), children: vec![] }]
    );
    assert_eq!(second.count(), fmp4("h264.mp4").1.len(), "no Cluster lost");
}

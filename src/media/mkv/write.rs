//! Matroska out: each stored fragment as one self-contained Matroska document, the way Kinesis
//! Video Streams' GetMedia and GetMediaForFragmentList send a fragment ("chunk").
//!
//! A document is an EBML header and a Segment holding `Info` (timestamps in milliseconds),
//! `Tracks` (codec ids and private data from the init segment's sample entries), a `Tags` before
//! the media (fragment number, timestamps), the fragment's samples as `SimpleBlock`s in
//! `Cluster`s, and a `Tags` after them (what a consumer needs to resume: the continuation token,
//! how far behind it is). Concatenated documents are what a GetMedia body is; consumers such as
//! the AWS Python consumer library cut the body at each EBML header and decode every document
//! alone, which is why each one carries its own tracks.
//!
//! Samples are written zero-copy: the result is a list of [`Bytes`], small headers interleaved
//! with slices of the stored fragment. Video samples stay length-prefixed NAL units, which is
//! the Matroska form of `V_MPEG4/ISO/AVC` and `V_MPEGH/ISO/HEVC` as well. Samples of all tracks
//! are interleaved by decode time; block timestamps are presentation times. A fragment longer
//! than a block's reach (±32.767 s from its cluster) continues in a new cluster.
//! Pure: no I/O.

use bytes::Bytes;
use mp4_atom::Atom;

use super::ebml::{self, master, put_bytes, put_float, put_header, put_str, put_uint};
use super::id;
use crate::media::fmp4::{Fmp4Error, InitSegment, TrackKind, TrackSamples};

/// Timestamps in milliseconds, as Kinesis Video Streams writes them.
pub const TIMESTAMP_SCALE_NS: u64 = 1_000_000;

/// What Matroska asks of Opus tracks: 80 ms of pre-roll after a seek (RFC 9559 §A.26).
const OPUS_SEEK_PRE_ROLL_NS: u64 = 80_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MkvWriteError {
    #[error("the init segment does not decode: {0}")]
    Init(String),
    #[error("codec {0} has no Matroska mapping here (H.264, H.265, AAC and Opus do)")]
    Codec(String),
    #[error("the fragment does not parse: {0}")]
    Fragment(#[from] Fmp4Error),
}

/// One track as Matroska describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct MkvTrack {
    /// Matroska TrackNumber: 1, 2, … in the init's track order.
    pub number: u64,
    /// The MP4 track it comes from, and that track's timescale.
    pub mp4_track_id: u32,
    pub timescale: u32,
    pub kind: TrackKind,
    pub codec_id: &'static str,
    pub codec_private: Vec<u8>,
    pub width: u16,
    pub height: u16,
    pub sample_rate: u32,
    pub channels: u16,
    /// Opus: the decoder delay and the pre-roll after a seek, in nanoseconds.
    pub codec_delay_ns: u64,
    pub seek_pre_roll_ns: u64,
}

/// The Matroska tracks of an init segment: its video and audio tracks (other tracks, such as
/// timed metadata, are left out).
pub fn tracks_of(init: &InitSegment) -> Result<Vec<MkvTrack>, MkvWriteError> {
    let moov =
        crate::media::fmp4::moov_of(&init.bytes).map_err(|e| MkvWriteError::Init(e.to_string()))?;
    let mut out = Vec::new();
    for info in init.tracks.iter().filter(|t| t.kind != TrackKind::Other) {
        let trak =
            moov.trak.iter().find(|t| t.tkhd.track_id == info.track_id).ok_or_else(|| {
                MkvWriteError::Init(format!("no trak for track {}", info.track_id))
            })?;
        let entry = trak.mdia.minf.stbl.stsd.codecs.first().ok_or_else(|| {
            MkvWriteError::Init(format!("track {} has no sample entry", info.track_id))
        })?;
        let mut private = Vec::new();
        let config = |r: Result<(), mp4_atom::Error>| {
            r.map_err(|e| MkvWriteError::Init(format!("track {}: {e}", info.track_id)))
        };
        let (mut delay, mut pre_roll) = (0, 0);
        match entry {
            mp4_atom::Codec::Avc1(a) => config(a.avcc.encode_body(&mut private))?,
            mp4_atom::Codec::Avc3(a) => config(a.avcc.encode_body(&mut private))?,
            mp4_atom::Codec::Hvc1(h) => config(h.hvcc.encode_body(&mut private))?,
            mp4_atom::Codec::Hev1(h) => config(h.hvcc.encode_body(&mut private))?,
            mp4_atom::Codec::Mp4a(m) => {
                private = match m.esds.es_desc.dec_config.dec_specific.as_ref() {
                    Some(s) if !s.raw.is_empty() => s.raw.clone(),
                    Some(s) => audio_specific_config(s.profile, s.freq_index, s.chan_conf),
                    None => return Err(MkvWriteError::Codec(info.codec_string.clone())),
                };
            }
            mp4_atom::Codec::Opus(o) => {
                private = opus_head(&o.dops);
                delay = u64::from(o.dops.pre_skip) * 1_000_000_000 / 48_000;
                pre_roll = OPUS_SEEK_PRE_ROLL_NS;
            }
            _ => return Err(MkvWriteError::Codec(info.codec_string.clone())),
        }
        let codec_id = codec_id_of(entry);
        out.push(MkvTrack {
            number: out.len() as u64 + 1,
            mp4_track_id: info.track_id,
            timescale: info.timescale,
            kind: info.kind,
            codec_id,
            codec_private: private,
            width: info.width,
            height: info.height,
            sample_rate: info.sample_rate,
            channels: info.channels,
            codec_delay_ns: delay,
            seek_pre_roll_ns: pre_roll,
        });
    }
    Ok(out)
}

fn codec_id_of(entry: &mp4_atom::Codec) -> &'static str {
    match entry {
        mp4_atom::Codec::Avc1(_) | mp4_atom::Codec::Avc3(_) => "V_MPEG4/ISO/AVC",
        mp4_atom::Codec::Hvc1(_) | mp4_atom::Codec::Hev1(_) => "V_MPEGH/ISO/HEVC",
        mp4_atom::Codec::Mp4a(_) => "A_AAC",
        _ => "A_OPUS",
    }
}

/// A 2-byte AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) from its fields.
fn audio_specific_config(object_type: u8, freq_index: u8, channels: u8) -> Vec<u8> {
    let v = (u16::from(object_type & 0x1F) << 11)
        | (u16::from(freq_index & 0x0F) << 7)
        | (u16::from(channels & 0x0F) << 3);
    v.to_be_bytes().to_vec()
}

/// The Ogg Opus identification header (RFC 7845 §5.1) Matroska's `A_OPUS` CodecPrivate is,
/// from the ISOBMFF `dOps` box (whose fields are the same, big-endian).
fn opus_head(d: &mp4_atom::Dops) -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(d.output_channel_count);
    h.extend_from_slice(&d.pre_skip.to_le_bytes());
    h.extend_from_slice(&d.input_sample_rate.to_le_bytes());
    h.extend_from_slice(&d.output_gain.to_le_bytes());
    match &d.channel_mapping {
        None => h.push(0),
        Some(m) => {
            h.push(m.family);
            h.push(m.stream_count);
            h.push(m.coupled_count);
            h.extend_from_slice(&m.channel_mapping);
        }
    }
    h
}

/// The document's parts that depend only on the init: the EBML header with the Segment's start,
/// and the `Info` and `Tracks` elements. Built once per init and reused for every fragment.
#[derive(Debug, Clone)]
pub struct DocumentHead {
    ebml_header: Bytes,
    info_and_tracks: Bytes,
    pub tracks: Vec<MkvTrack>,
}

impl DocumentHead {
    pub fn new(tracks: Vec<MkvTrack>) -> DocumentHead {
        let mut header = Vec::new();
        master(&mut header, id::EBML, |b| {
            put_uint(b, id::EBML_VERSION, 1);
            put_uint(b, id::EBML_READ_VERSION, 1);
            put_uint(b, id::EBML_MAX_ID_LENGTH, 4);
            put_uint(b, id::EBML_MAX_SIZE_LENGTH, 8);
            put_str(b, id::DOC_TYPE, "matroska");
            put_uint(b, id::DOC_TYPE_VERSION, 4);
            put_uint(b, id::DOC_TYPE_READ_VERSION, 2);
        });
        // The Segment runs to the next document's EBML header: its size is unknown, as in the
        // documents Kinesis Video Streams streams out (and what lets a demuxer that reads the
        // body as one file, such as ffmpeg's, go on into the next document).
        ebml::put_id(&mut header, id::SEGMENT);
        header.extend_from_slice(&ebml::UNKNOWN_SIZE);
        let mut body = Vec::new();
        master(&mut body, id::INFO, |b| {
            put_uint(b, id::TIMESTAMP_SCALE, TIMESTAMP_SCALE_NS);
            put_str(b, id::MUXING_APP, "Sluice");
            put_str(b, id::WRITING_APP, "Sluice");
        });
        master(&mut body, id::TRACKS, |b| {
            for t in &tracks {
                master(b, id::TRACK_ENTRY, |e| track_entry(e, t));
            }
        });
        DocumentHead {
            ebml_header: Bytes::from(header),
            info_and_tracks: Bytes::from(body),
            tracks,
        }
    }
}

fn track_entry(e: &mut Vec<u8>, t: &MkvTrack) {
    put_uint(e, id::TRACK_NUMBER, t.number);
    put_uint(e, id::TRACK_UID, t.number);
    let video = t.kind == TrackKind::Video;
    put_uint(e, id::TRACK_TYPE, if video { 1 } else { 2 });
    put_uint(e, id::FLAG_LACING, 0);
    put_str(e, id::CODEC_ID, t.codec_id);
    if !t.codec_private.is_empty() {
        put_bytes(e, id::CODEC_PRIVATE, &t.codec_private);
    }
    if t.codec_delay_ns > 0 {
        put_uint(e, id::CODEC_DELAY, t.codec_delay_ns);
    }
    if t.seek_pre_roll_ns > 0 {
        put_uint(e, id::SEEK_PRE_ROLL, t.seek_pre_roll_ns);
    }
    if video {
        master(e, id::VIDEO, |v| {
            put_uint(v, id::PIXEL_WIDTH, u64::from(t.width));
            put_uint(v, id::PIXEL_HEIGHT, u64::from(t.height));
        });
    } else {
        master(e, id::AUDIO, |a| {
            put_float(a, id::SAMPLING_FREQUENCY, f64::from(t.sample_rate));
            put_uint(a, id::CHANNELS, u64::from(t.channels.max(1)));
        });
    }
}

/// A `Tags` element of one `Tag` (no targets: it applies to the whole document) with these
/// `SimpleTag` name/value pairs.
fn tags(out: &mut Vec<u8>, pairs: &[(&str, String)]) {
    if pairs.is_empty() {
        return;
    }
    master(out, id::TAGS, |t| {
        master(t, id::TAG, |tag| {
            master(tag, id::TARGETS, |_| {});
            for (name, value) in pairs {
                master(tag, id::SIMPLE_TAG, |s| {
                    put_str(s, id::TAG_NAME, name);
                    put_str(s, id::TAG_STRING, value);
                });
            }
        });
    });
}

/// One block to write: its track, presentation time in µs from the fragment's start, keyframe
/// flag, and where its bytes are in the fragment.
struct Block {
    track: u64,
    decode_us: i64,
    time_us: i64,
    key: bool,
    range: std::ops::Range<usize>,
}

/// What to write for one fragment.
pub struct FragmentDocument<'a> {
    /// The stored fragment (moof + mdat) and its samples (`media::fmp4::samples`).
    pub fragment: &'a Bytes,
    pub samples: &'a [TrackSamples],
    /// The fragment's start in milliseconds (the first cluster's timestamp), and the decode time
    /// and timescale of its timing track's first sample, which that start stands for.
    pub start_ms: u64,
    pub timing: (u64, u32),
    /// Tags before the media and after it.
    pub before: &'a [(&'a str, String)],
    pub after: &'a [(&'a str, String)],
}

/// Writes one fragment as a Matroska document: a list of byte slices to send in order.
pub fn fragment_document(head: &DocumentHead, doc: &FragmentDocument<'_>) -> Vec<Bytes> {
    let base_us = ticks_to_us(doc.timing.0, doc.timing.1);
    let mut blocks = Vec::new();
    for t in &head.tracks {
        let Some(ts) = doc.samples.iter().find(|s| s.track_id == t.mp4_track_id) else {
            continue;
        };
        for s in &ts.samples {
            blocks.push(Block {
                track: t.number,
                decode_us: ticks_to_us(s.decode_time, t.timescale) - base_us,
                time_us: ticks_to_us(s.presentation_time(), t.timescale) - base_us,
                key: s.sync || t.kind != TrackKind::Video,
                range: s.range.clone(),
            });
        }
    }
    // Interleaved by decode time; a stable sort keeps each track's own order.
    blocks.sort_by_key(|b| b.decode_us);

    // Clusters: the first at the fragment's start, a new one whenever a block's offset from its
    // cluster leaves the i16 range.
    let mut clusters: Vec<(i64, Vec<(Block, i16)>)> = vec![(0, Vec::new())];
    for b in blocks {
        let ms = round_div(b.time_us, 1000);
        let fits = clusters.last().and_then(|(c, _)| i16::try_from(ms - c).ok());
        match fits {
            Some(rel) => clusters.last_mut().expect("a cluster").1.push((b, rel)),
            None => clusters.push((ms, vec![(b, 0)])),
        }
    }

    clusters.retain(|(_, blocks)| !blocks.is_empty());

    let mut before = Vec::new();
    tags(&mut before, doc.before);
    let mut after = Vec::new();
    tags(&mut after, doc.after);
    let cluster_bodies: Vec<(Vec<u8>, u64)> = clusters
        .iter()
        .map(|(c, blocks)| {
            let mut head = Vec::new();
            let tc = (doc.start_ms as i64 + c).max(0) as u64;
            put_uint(&mut head, id::TIMESTAMP, tc);
            let payload: u64 = blocks.iter().map(|(b, _)| block_len(b.range.len() as u64)).sum();
            (head, payload)
        })
        .collect();
    let cluster_sizes: Vec<u64> = cluster_bodies.iter().map(|(h, p)| h.len() as u64 + p).collect();

    let mut parts = vec![head.ebml_header.clone(), head.info_and_tracks.clone()];
    let mut pending = Vec::new();
    pending.extend_from_slice(&before);
    for (((_, blocks), (cluster_head, _)), size) in
        clusters.iter().zip(&cluster_bodies).zip(&cluster_sizes)
    {
        put_header(&mut pending, id::CLUSTER, *size);
        pending.extend_from_slice(cluster_head);
        for (b, rel) in blocks {
            let len = b.range.len() as u64;
            put_header(&mut pending, id::SIMPLE_BLOCK, 4 + len);
            ebml::put_size(&mut pending, b.track);
            pending.extend_from_slice(&rel.to_be_bytes());
            pending.push(if b.key { 0x80 } else { 0x00 });
            parts.push(Bytes::from(std::mem::take(&mut pending)));
            parts.push(doc.fragment.slice(b.range.clone()));
        }
    }
    pending.extend_from_slice(&after);
    if !pending.is_empty() {
        parts.push(Bytes::from(pending));
    }
    parts
}

/// A SimpleBlock's whole length with a one-byte track number (tracks 1–126).
fn block_len(data: u64) -> u64 {
    let body = 4 + data;
    1 + vint_len(body) + body
}

fn vint_len(v: u64) -> u64 {
    let mut out = Vec::new();
    ebml::put_size(&mut out, v);
    out.len() as u64
}

fn ticks_to_us(ticks: u64, timescale: u32) -> i64 {
    (i128::from(ticks) * 1_000_000 / i128::from(timescale.max(1))) as i64
}

fn round_div(v: i64, d: i64) -> i64 {
    (v as f64 / d as f64).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::fmp4::{Fmp4Reader, Item, Limits, Sample, samples};
    use crate::media::mkv::ebml::{read_header, read_str, read_uint};

    /// The init and fragments of a fixture, as ingest parses them.
    fn fixture(name: &str) -> (InitSegment, Vec<Bytes>) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
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

    /// An element as the walk below sees it: depth, ID, and data (masters: empty).
    type Seen = (usize, u32, Vec<u8>);

    /// Walks a document: masters are entered (the Segment's unknown size runs to the end).
    fn walk(buf: &[u8]) -> Vec<Seen> {
        const MASTERS: &[u32] = &[
            id::EBML,
            id::SEGMENT,
            id::INFO,
            id::TRACKS,
            id::TRACK_ENTRY,
            id::VIDEO,
            id::AUDIO,
            id::CLUSTER,
            id::TAGS,
            id::TAG,
            id::TARGETS,
            id::SIMPLE_TAG,
        ];
        fn go(buf: &[u8], depth: usize, out: &mut Vec<Seen>) {
            let mut at = 0;
            while at < buf.len() {
                let h = read_header(&buf[at..], at as u64).unwrap().expect("complete header");
                let size = h.size.map_or(buf.len() - at - h.len, |s| s as usize);
                let data = &buf[at + h.len..at + h.len + size];
                if MASTERS.contains(&h.id) {
                    out.push((depth, h.id, Vec::new()));
                    go(data, depth + 1, out);
                } else {
                    out.push((depth, h.id, data.to_vec()));
                }
                at += h.len + size;
            }
        }
        let mut out = Vec::new();
        go(buf, 0, &mut out);
        out
    }

    fn concat(parts: &[Bytes]) -> Vec<u8> {
        parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    #[test]
    fn a_fragment_is_a_document_with_tracks_tags_and_every_sample() {
        let (init, fragments) = fixture("h264-aac.mp4");
        let head = DocumentHead::new(tracks_of(&init).unwrap());
        assert_eq!(head.tracks.len(), 2);
        assert_eq!(head.tracks[0].codec_id, "V_MPEG4/ISO/AVC");
        assert_eq!(head.tracks[0].codec_private[0], 1, "an AVCDecoderConfigurationRecord");
        assert_eq!(head.tracks[1].codec_id, "A_AAC");
        let fragment = &fragments[1];
        let s = samples(&init, fragment).unwrap();
        let video = init.video().unwrap();
        let base = s.iter().find(|t| t.track_id == video.track_id).unwrap().base_decode_time;
        let before = [("AWS_KINESISVIDEO_FRAGMENT_NUMBER", "7".to_owned())];
        let after = [("AWS_KINESISVIDEO_CONTINUATION_TOKEN", "8".to_owned())];
        let doc = FragmentDocument {
            fragment,
            samples: &s,
            start_ms: 1_772_362_801_000,
            timing: (base, video.timescale),
            before: &before,
            after: &after,
        };
        let parts = fragment_document(&head, &doc);
        // Zero-copy: every sample is a slice of the fragment itself.
        let total: usize = s.iter().map(|t| t.samples.len()).sum();
        let slices = parts
            .iter()
            .filter(|p| {
                let (start, end) =
                    (fragment.as_ptr() as usize, fragment.as_ptr() as usize + fragment.len());
                (start..end).contains(&(p.as_ptr() as usize)) && !p.is_empty()
            })
            .count();
        assert_eq!(slices, total);

        let seen = walk(&concat(&parts));
        let top: Vec<u32> = seen.iter().filter(|e| e.0 == 0).map(|e| e.1).collect();
        assert_eq!(top, [id::EBML, id::SEGMENT]);
        let level1: Vec<u32> = seen.iter().filter(|e| e.0 == 1).map(|e| e.1).collect();
        assert_eq!(level1[..3], [id::EBML_VERSION, id::EBML_READ_VERSION, id::EBML_MAX_ID_LENGTH]);
        let in_segment: Vec<u32> = {
            let at = seen.iter().position(|e| e.1 == id::SEGMENT).unwrap();
            seen[at + 1..].iter().filter(|e| e.0 == 1).map(|e| e.1).collect()
        };
        assert_eq!(in_segment, [id::INFO, id::TRACKS, id::TAGS, id::CLUSTER, id::TAGS]);
        let strings: Vec<String> =
            seen.iter().filter(|e| e.1 == id::TAG_STRING).map(|e| read_str(&e.2)).collect();
        assert_eq!(strings, ["7", "8"]);
        let tc = seen.iter().find(|e| e.1 == id::TIMESTAMP).unwrap();
        assert_eq!(read_uint(&tc.2, id::TIMESTAMP, 0).unwrap(), 1_772_362_801_000);

        // Every sample is a block, with its bytes; video keyframes flagged; times ascend per
        // track in presentation order once sorted (B-frame-free here: in order).
        let blocks: Vec<&Vec<u8>> =
            seen.iter().filter(|e| e.1 == id::SIMPLE_BLOCK).map(|e| &e.2).collect();
        assert_eq!(blocks.len(), total);
        let first_video = blocks.iter().find(|b| b[0] == 0x81).unwrap();
        assert_eq!(first_video[3], 0x80, "the fragment starts on a keyframe");
        let vs = &s.iter().find(|t| t.track_id == video.track_id).unwrap().samples;
        assert_eq!(&first_video[4..], &fragment[vs[0].range.clone()]);
        let mut last = i16::MIN;
        for b in blocks.iter().filter(|b| b[0] == 0x81) {
            let t = i16::from_be_bytes([b[1], b[2]]);
            assert!(t > last, "video block times ascend: {t} after {last}");
            last = t;
        }
        assert!((960..=1000).contains(&last), "the last video frame about 1 s in: {last}");
    }

    #[test]
    fn b_frames_keep_decode_order_with_presentation_times() {
        let (init, fragments) = fixture("h264-bframes.mp4");
        let head = DocumentHead::new(tracks_of(&init).unwrap());
        let fragment = &fragments[0];
        let s = samples(&init, fragment).unwrap();
        let video = init.video().unwrap();
        let doc = FragmentDocument {
            fragment,
            samples: &s,
            start_ms: 0,
            timing: (s[0].base_decode_time, video.timescale),
            before: &[],
            after: &[],
        };
        let seen = walk(&concat(&fragment_document(&head, &doc)));
        let times: Vec<i16> = seen
            .iter()
            .filter(|e| e.1 == id::SIMPLE_BLOCK)
            .map(|e| i16::from_be_bytes([e.2[1], e.2[2]]))
            .collect();
        assert_eq!(times.len(), s[0].samples.len());
        assert_eq!(times[0], 67, "the first picture is presented two frames after its decode");
        assert!(
            times.windows(2).any(|w| w[1] < w[0]),
            "B-frames are presented before later P-frames"
        );
        let mut sorted = times.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), times.len(), "every picture has its own time");
    }

    #[test]
    fn a_fragment_longer_than_a_block_reaches_continues_in_new_clusters() {
        // 100 one-second samples of a 1 kHz track: 100 s, past ±32.767 s of one cluster.
        let track = MkvTrack {
            number: 1,
            mp4_track_id: 1,
            timescale: 1000,
            kind: TrackKind::Video,
            codec_id: "V_MPEG4/ISO/AVC",
            codec_private: vec![1],
            width: 16,
            height: 16,
            sample_rate: 0,
            channels: 0,
            codec_delay_ns: 0,
            seek_pre_roll_ns: 0,
        };
        let head = DocumentHead::new(vec![track]);
        let fragment = Bytes::from(vec![7u8; 100]);
        let samples = vec![TrackSamples {
            track_id: 1,
            base_decode_time: 5_000,
            samples: (0..100)
                .map(|i| Sample {
                    decode_time: 5_000 + i * 1000,
                    composition_offset: 0,
                    duration: 1000,
                    size: 1,
                    range: i as usize..i as usize + 1,
                    flags: 0,
                    sync: i == 0,
                })
                .collect(),
        }];
        let doc = FragmentDocument {
            fragment: &fragment,
            samples: &samples,
            start_ms: 1_000_000,
            timing: (5_000, 1000),
            before: &[],
            after: &[],
        };
        let seen = walk(&concat(&fragment_document(&head, &doc)));
        let clusters: Vec<u64> = seen
            .iter()
            .filter(|e| e.1 == id::TIMESTAMP)
            .map(|e| read_uint(&e.2, id::TIMESTAMP, 0).unwrap())
            .collect();
        assert_eq!(clusters, [1_000_000, 1_033_000, 1_066_000, 1_099_000]);
        let mut absolute = Vec::new();
        let mut cluster = 0;
        for e in &seen {
            if e.1 == id::TIMESTAMP {
                cluster = read_uint(&e.2, id::TIMESTAMP, 0).unwrap() as i64;
            } else if e.1 == id::SIMPLE_BLOCK {
                absolute.push(cluster + i64::from(i16::from_be_bytes([e.2[1], e.2[2]])));
            }
        }
        let want: Vec<i64> = (0..100).map(|i| 1_000_000 + i * 1000).collect();
        assert_eq!(absolute, want);
    }
}

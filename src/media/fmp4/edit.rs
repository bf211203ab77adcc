//! The start edit of served init segments (ISO/IEC 14496-12 §8.6.5 `edts`, §8.6.6 `elst`).
//!
//! Video with B-frames is decoded before it is presented: the first picture of every keyframe
//! group carries a composition offset of one or two frames, so its presentation time is that much
//! after its decode time. An encoder's timeline starts the first *picture* at zero; a muxer that
//! cannot write negative decode times shifts decode times up and records the shift as an edit list
//! whose `media_time` is the first picture's composition offset (what ffmpeg writes into a
//! progressive MP4). Fragmented producers often leave that edit out, and then every player sees a
//! presentation that starts one or two frames late — a gap at time 0 that MSE players (hls.js,
//! Shaka) stall on and seek over, skipping the first pictures.
//!
//! [`with_start_edit`] puts the edit back into an init segment as CMAF writes it (ISO/IEC 23000-19
//! §7.5.13: one entry, `segment_duration` 0 for a fragmented track, `media_time` the first
//! picture's composition offset, rate 1), byte-exactly otherwise: the `edts` box is inserted after
//! the track's `tkhd` and the sizes of its `trak` and the `moov` grow by its length. Pure: no I/O.

/// Length of the inserted `edts` box: its header, and an `elst` of one version-0 entry.
const EDTS_LEN: usize = 8 + 28;

/// `init` with an edit list on track `track_id` whose one edit presents the media from
/// `media_time` (in the track's timescale). `None` when the init already has an edit list on that
/// track (a producer's own edits are kept as they are), has no such track, `media_time` does not
/// fit a version-0 edit, or the boxes are not plain 32-bit-sized boxes this rewrite understands.
pub fn with_start_edit(init: &[u8], track_id: u32, media_time: u64) -> Option<Vec<u8>> {
    let media_time = i32::try_from(media_time).ok().filter(|&t| t > 0)?;
    let moov = children(init, 0, init.len())?.into_iter().find(|b| &b.kind == b"moov")?;
    let trak = children(init, moov.body, moov.end)?
        .into_iter()
        .find(|b| &b.kind == b"trak" && tkhd_track_id(init, b) == Some(track_id))?;
    let boxes = children(init, trak.body, trak.end)?;
    if boxes.iter().any(|b| &b.kind == b"edts") {
        return None;
    }
    let tkhd = boxes.iter().find(|b| &b.kind == b"tkhd")?;
    let grow = |size_at: usize, out: &mut [u8]| -> Option<()> {
        let size = u32::from_be_bytes(out.get(size_at..size_at + 4)?.try_into().ok()?);
        let grown = size.checked_add(EDTS_LEN as u32)?;
        out[size_at..size_at + 4].copy_from_slice(&grown.to_be_bytes());
        Some(())
    };
    let mut out = Vec::with_capacity(init.len() + EDTS_LEN);
    out.extend_from_slice(&init[..tkhd.end]);
    out.extend_from_slice(&(EDTS_LEN as u32).to_be_bytes());
    out.extend_from_slice(b"edts");
    out.extend_from_slice(&28u32.to_be_bytes());
    out.extend_from_slice(b"elst");
    out.extend_from_slice(&0u32.to_be_bytes()); // version 0, no flags
    out.extend_from_slice(&1u32.to_be_bytes()); // entry_count
    out.extend_from_slice(&0u32.to_be_bytes()); // segment_duration: to the end of the media
    out.extend_from_slice(&media_time.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // media_rate_integer
    out.extend_from_slice(&0u16.to_be_bytes()); // media_rate_fraction
    out.extend_from_slice(&init[tkhd.end..]);
    grow(moov.start, &mut out)?;
    grow(trak.start, &mut out)?;
    Some(out)
}

struct Child {
    kind: [u8; 4],
    start: usize,
    body: usize,
    end: usize,
}

/// The boxes in `buf[from..to]`; `None` if one is malformed or not 32-bit sized (size 0 or 1).
fn children(buf: &[u8], from: usize, to: usize) -> Option<Vec<Child>> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        let h = buf.get(at..at + 8)?;
        let size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if size < 8 {
            return None;
        }
        let end = at.checked_add(size).filter(|&e| e <= to)?;
        out.push(Child { kind: [h[4], h[5], h[6], h[7]], start: at, body: at + 8, end });
        at = end;
    }
    Some(out)
}

/// The track id in the `tkhd` of `trak` (§8.3.2: after the times, 32- or 64-bit by version).
fn tkhd_track_id(buf: &[u8], trak: &Child) -> Option<u32> {
    let tkhd = children(buf, trak.body, trak.end)?.into_iter().find(|b| &b.kind == b"tkhd")?;
    let at = tkhd.body + if *buf.get(tkhd.body)? == 1 { 20 } else { 12 };
    Some(u32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::fmp4::parse_init;
    use bytes::Bytes;

    fn fixture_init(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
        let file = std::fs::read(path).unwrap();
        let moov_end = children(&file, 0, file.len())
            .unwrap()
            .iter()
            .find(|b| &b.kind == b"moov")
            .unwrap()
            .end;
        file[..moov_end].to_vec()
    }

    #[test]
    fn the_edit_is_inserted_after_tkhd_and_sizes_grow() {
        let init = fixture_init("h264-bframes.mp4");
        let video = parse_init(Bytes::from(init.clone())).unwrap().video().unwrap().track_id;
        let out = with_start_edit(&init, video, 1024).unwrap();
        assert_eq!(out.len(), init.len() + EDTS_LEN);
        // Still a valid init with the same tracks, and the edit reads back.
        let parsed = parse_init(Bytes::from(out.clone())).unwrap();
        assert_eq!(parsed.tracks, parse_init(Bytes::from(init.clone())).unwrap().tracks);
        let at = out.windows(4).position(|w| w == b"elst").unwrap();
        assert_eq!(&out[at + 8..at + 12], &1u32.to_be_bytes());
        assert_eq!(&out[at + 16..at + 20], &1024i32.to_be_bytes());
        // A second pass finds the edit and leaves the init alone.
        assert_eq!(with_start_edit(&out, video, 1024), None);
    }

    #[test]
    fn nothing_to_do_or_not_understood_is_none() {
        let init = fixture_init("h264-aac.mp4");
        let video = parse_init(Bytes::from(init.clone())).unwrap().video().unwrap().track_id;
        assert_eq!(with_start_edit(&init, video, 0), None);
        assert_eq!(with_start_edit(&init, 999, 512), None);
        assert_eq!(with_start_edit(&init, video, u64::from(u32::MAX)), None);
        assert_eq!(with_start_edit(&init[..init.len() - 3], video, 512), None);
        assert_eq!(with_start_edit(b"", video, 512), None);
        // The audio track of the same init takes an edit of its own.
        let audio = parse_init(Bytes::from(init.clone())).unwrap().audio().unwrap().track_id;
        assert!(with_start_edit(&init, audio, 512).is_some());
    }
}

//! Retiming stored fragments onto the stream's served timeline.
//!
//! Producers' decode times restart with every session (and differ between producers), so the
//! stored bytes alone do not form one timeline. When Sluice serves fragments (HLS segments and
//! parts, the live tail, fMP4 clips) it rewrites each track's `tfdt` (ISO/IEC 14496-12 §8.8.12,
//! the track fragment's base media decode time) so that decode time = producer timestamp minus the
//! stream's timeline epoch (the producer timestamp of its first fragment), in the track's
//! timescale. Every player and `ffmpeg -c copy` then sees one continuous timeline across
//! reconnects and restarts, with real gaps as gaps; wall-clock time is carried by
//! EXT-X-PROGRAM-DATE-TIME, not by media time.
//!
//! Why stream-relative and not wall-clock media time: at wall-clock magnitudes (≈1.8×10⁹ s) a
//! double has a resolution of about 0.24 µs, so a player's `tfdt / timescale` in seconds and a
//! browser's truncation to microseconds can place a keyframe 1 µs before where the exact
//! arithmetic puts it, and the browser drops the keyframe and its GOP. Stream-relative times stay
//! small, where the double path never lands early ([`double_lands_early`] is the check the tests
//! run over every served value).
//!
//! The shift is constant per producer session: it is computed from the session's base (producer
//! timestamp minus the timing track's decode time, which the writer keeps exact per session) and
//! rounded to a whole tick once, so consecutive fragments of a session stay exactly contiguous.
//!
//! The rewrite is zero-copy: the fragment's `Bytes` are split around each 4- or 8-byte tfdt
//! value and the new value is spliced in, so the served length is unchanged. The stored bytes are
//! never modified. Pure: no I/O.

use bytes::Bytes;

/// One `tfdt` in a fragment: which track, where its value sits, how wide it is, and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TfdtSite {
    pub track_id: u32,
    /// Byte offset of the value within the fragment.
    pub value_offset: usize,
    /// 0: 32-bit value; 1: 64-bit value.
    pub version: u8,
    pub value: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimelineError {
    #[error("malformed box at byte {offset} of the fragment: {what}")]
    Malformed { offset: usize, what: &'static str },
    #[error("the fragment does not start with a moof box")]
    NoMoof,
}

struct BoxHeader {
    kind: [u8; 4],
    start: usize,
    body: usize,
    end: usize,
}

/// Reads the box header at `pos` within `limit`.
fn header(buf: &[u8], pos: usize, limit: usize) -> Result<BoxHeader, TimelineError> {
    let bad = |what| TimelineError::Malformed { offset: pos, what };
    let h = buf.get(pos..pos + 8).ok_or(bad("truncated box header"))?;
    let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let kind = [h[4], h[5], h[6], h[7]];
    let (size, body) = match size32 {
        0 => ((limit - pos) as u64, pos + 8),
        1 => {
            let l = buf.get(pos + 8..pos + 16).ok_or(bad("truncated largesize"))?;
            let mut v = [0u8; 8];
            v.copy_from_slice(l);
            (u64::from_be_bytes(v), pos + 16)
        }
        n => (u64::from(n), pos + 8),
    };
    let end =
        usize::try_from(size).ok().and_then(|s| pos.checked_add(s)).ok_or(bad("size overflows"))?;
    if end > limit || end < body {
        return Err(bad("box size outside its parent"));
    }
    Ok(BoxHeader { kind, start: pos, body, end })
}

/// Finds every traf's track id and tfdt in the fragment's first moof.
pub fn find_tfdts(fragment: &[u8]) -> Result<Vec<TfdtSite>, TimelineError> {
    let moof = header(fragment, 0, fragment.len())?;
    if &moof.kind != b"moof" {
        return Err(TimelineError::NoMoof);
    }
    let mut sites = Vec::new();
    let mut pos = moof.body;
    while pos < moof.end {
        let b = header(fragment, pos, moof.end)?;
        if &b.kind == b"traf" {
            let mut track_id = None;
            let mut tfdt = None;
            let mut p = b.body;
            while p < b.end {
                let c = header(fragment, p, b.end)?;
                let bad = |what| TimelineError::Malformed { offset: c.start, what };
                match &c.kind {
                    b"tfhd" => {
                        let v = fragment.get(c.body + 4..c.body + 8).ok_or(bad("short tfhd"))?;
                        track_id = Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
                    }
                    b"tfdt" => {
                        let version = *fragment.get(c.body).ok_or(bad("short tfdt"))?;
                        let at = c.body + 4;
                        let value = match version {
                            0 => {
                                let v = fragment.get(at..at + 4).ok_or(bad("short tfdt"))?;
                                u64::from(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
                            }
                            1 => {
                                let v = fragment.get(at..at + 8).ok_or(bad("short tfdt"))?;
                                let mut a = [0u8; 8];
                                a.copy_from_slice(v);
                                u64::from_be_bytes(a)
                            }
                            _ => return Err(bad("unknown tfdt version")),
                        };
                        tfdt = Some((at, version, value));
                    }
                    _ => {}
                }
                p = c.end;
            }
            if let (Some(track_id), Some((value_offset, version, value))) = (track_id, tfdt) {
                sites.push(TfdtSite { track_id, value_offset, version, value });
            }
        }
        pos = b.end;
    }
    Ok(sites)
}

/// The fragment with each site's value replaced by `new_value(site)`, as slices of the original
/// plus the new values. `None` if a new value does not fit a 32-bit (version 0) tfdt.
pub fn retime(
    fragment: &Bytes,
    sites: &[TfdtSite],
    mut new_value: impl FnMut(&TfdtSite) -> u64,
) -> Option<Vec<Bytes>> {
    let mut sorted: Vec<&TfdtSite> = sites.iter().collect();
    sorted.sort_by_key(|s| s.value_offset);
    let mut parts = Vec::with_capacity(sorted.len() * 2 + 1);
    let mut pos = 0;
    for s in sorted {
        let v = new_value(s);
        let encoded = match s.version {
            0 => Bytes::copy_from_slice(&u32::try_from(v).ok()?.to_be_bytes()),
            _ => Bytes::copy_from_slice(&v.to_be_bytes()),
        };
        if s.value_offset < pos || s.value_offset + encoded.len() > fragment.len() {
            return None;
        }
        parts.push(fragment.slice(pos..s.value_offset));
        pos = s.value_offset + encoded.len();
        parts.push(encoded);
    }
    parts.push(fragment.slice(pos..));
    Some(parts)
}

/// The decode time, in `timescale` units, of a track whose fragment starts at `decode` when the
/// fragment's timing track (decode `timing_decode` at `timing_scale`) is placed at `producer_us`
/// microseconds since the epoch. All tracks move by the same wall-clock shift, so they stay in
/// sync; the shift is rounded to the nearest tick.
pub fn shifted_decode_time(
    decode: u64,
    timescale: u32,
    timing_decode: u64,
    timing_scale: u32,
    producer_us: i64,
) -> u64 {
    if timescale == 0 || timing_scale == 0 {
        return decode;
    }
    let timing_us = i128::from(timing_decode) * 1_000_000 / i128::from(timing_scale);
    let shift_us = i128::from(producer_us) - timing_us;
    let ts = i128::from(timescale);
    let shift_ticks = (shift_us * ts + shift_us.signum() * 500_000) / 1_000_000;
    let v = i128::from(decode) + shift_ticks;
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

/// Microseconds in `value` ticks of `timescale`, rounded down (the writer's and Chromium's rule).
pub fn ticks_to_micros(value: u64, timescale: u32) -> i128 {
    if timescale == 0 {
        return 0;
    }
    i128::from(value) * 1_000_000 / i128::from(timescale)
}

/// A session's shift onto the stream timeline, in microseconds: where its timing track's decode
/// time 0 lands. `producer_us` is a fragment's producer timestamp, `timing_decode` its timing
/// track's stored decode time at `timing_scale`, `epoch_us` the stream's timeline epoch. Constant
/// for every fragment of a session (the writer derives producer timestamps as session base +
/// `ticks_to_micros(decode)`).
pub fn session_shift_us(
    producer_us: i64,
    timing_decode: u64,
    timing_scale: u32,
    epoch_us: i64,
) -> i128 {
    i128::from(producer_us) - ticks_to_micros(timing_decode, timing_scale) - i128::from(epoch_us)
}

/// A stored decode time moved by `shift_us`, rounded to the nearest tick of `timescale` (the
/// rounding depends only on the shift, so a session's fragments stay contiguous). Never below 0.
pub fn served_decode_time(decode: u64, timescale: u32, shift_us: i128) -> u64 {
    let ticks = (shift_us * i128::from(timescale) + 500_000).div_euclid(1_000_000);
    let v = i128::from(decode) + ticks;
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

/// Whether a player that computes `decode / timescale` in double-precision seconds and a browser
/// that truncates that to microseconds would place `decode` earlier than the exact microsecond
/// (`floor(decode × 10⁶ / timescale)`). A sample placed early by a microsecond can fall before the
/// buffer start and be dropped with its GOP; served timelines must never do this.
pub fn double_lands_early(decode: u64, timescale: u32) -> bool {
    if timescale == 0 {
        return false;
    }
    let double_us = ((decode as f64 / f64::from(timescale)) * 1e6).trunc();
    double_us > ticks_to_micros(decode, timescale) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// moof { mfhd, traf { tfhd(track 1), tfdt v1 = 3000 }, traf { tfhd(track 2), tfdt v0 = 7 } } mdat
    fn fragment() -> Vec<u8> {
        fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
            let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
            v.extend_from_slice(kind);
            v.extend_from_slice(body);
            v
        }
        let mfhd = bx(b"mfhd", &[0, 0, 0, 0, 0, 0, 0, 1]);
        let traf1 = bx(
            b"traf",
            &[
                bx(b"tfhd", &[0, 2, 0, 0, 0, 0, 0, 1]),
                bx(b"tfdt", &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b, 0xb8]),
            ]
            .concat(),
        );
        let traf2 = bx(
            b"traf",
            &[bx(b"tfhd", &[0, 2, 0, 0, 0, 0, 0, 2]), bx(b"tfdt", &[0, 0, 0, 0, 0, 0, 0, 7])]
                .concat(),
        );
        let moof = bx(b"moof", &[mfhd, traf1, traf2].concat());
        [moof, bx(b"mdat", b"media")].concat()
    }

    #[test]
    fn finds_and_rewrites_every_tfdt() {
        let f = Bytes::from(fragment());
        let sites = find_tfdts(&f).unwrap();
        assert_eq!(sites.len(), 2);
        assert_eq!((sites[0].track_id, sites[0].version, sites[0].value), (1, 1, 3000));
        assert_eq!((sites[1].track_id, sites[1].version, sites[1].value), (2, 0, 7));
        let parts = retime(&f, &sites, |s| s.value + 100).unwrap();
        let out: Vec<u8> = parts.concat();
        assert_eq!(out.len(), f.len());
        let again = find_tfdts(&out).unwrap();
        assert_eq!((again[0].value, again[1].value), (3100, 107));
        // A value too large for a version-0 tfdt is refused, not truncated.
        assert!(retime(&f, &sites, |_| u64::from(u32::MAX) + 1).is_none());
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(find_tfdts(b"\0\0\0\x08mdat").unwrap_err(), TimelineError::NoMoof);
        let mut f = fragment();
        f.truncate(30);
        assert!(find_tfdts(&f).is_err());
        for n in 0..fragment().len() {
            let _ = find_tfdts(&fragment()[..n]);
        }
    }

    #[test]
    fn shifts_tracks_together() {
        // Video at 15360 Hz, decode 15360 (1 s); placed at epoch second 100.
        let v = shifted_decode_time(15360, 15360, 15360, 15360, 100_000_000);
        assert_eq!(v, 100 * 15360);
        // Audio at 48 kHz, decode 48000 (1 s) in the same fragment: also at second 100.
        let a = shifted_decode_time(48000, 48000, 15360, 15360, 100_000_000);
        assert_eq!(a, 100 * 48000);
        // Consecutive fragments stay exactly one fragment apart.
        let v2 = shifted_decode_time(2 * 15360, 15360, 2 * 15360, 15360, 101_000_000);
        assert_eq!(v2 - v, 15360);
    }

    /// A session of ffmpeg-like fragments (30 fps at 15360 Hz, 1 s each) with AAC at 48 kHz,
    /// anchored at a sub-millisecond producer timestamp: every fragment's served decode time is
    /// exactly contiguous with the previous one, and audio lands on the same instant as video.
    #[test]
    fn a_session_is_contiguous_on_the_stream_timeline() {
        let epoch_us = 1_796_605_200_015_000; // 2026-12-07T01:00:00.015Z
        let base_us = epoch_us + 3_600_000_123; // a reconnect one hour and 123 µs later
        let mut prev_end = None;
        for k in 0..100u64 {
            let (decode_v, decode_a) = (k * 15360, k * 48000);
            let producer_us = base_us + (ticks_to_micros(decode_v, 15360) as i64);
            let shift = session_shift_us(producer_us, decode_v, 15360, epoch_us);
            assert_eq!(shift, 3_600_000_123);
            let v = served_decode_time(decode_v, 15360, shift);
            let a = served_decode_time(decode_a, 48000, shift);
            if let Some(end) = prev_end {
                assert_eq!(v, end, "fragment {k} is not contiguous");
            }
            prev_end = Some(v + 15360);
            let (v_us, a_us) = (ticks_to_micros(v, 15360), ticks_to_micros(a, 48000));
            assert!((v_us - a_us).abs() <= 66, "audio {a_us} µs vs video {v_us} µs");
        }
    }

    /// The regression behind moving off wall-clock media time: at wall-clock magnitudes the
    /// double path places some decode times a microsecond early; on the stream timeline (a year of
    /// timeline, every common video timescale) it never does. Past 2⁵¹/D µs, with D the timescale's
    /// denominator against microseconds (48 at 15360 Hz: about 18 months), it can again.
    #[test]
    fn served_decode_times_never_land_early_in_double_arithmetic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x51u64);
        const ONE_YEAR_S: u64 = 365 * 86_400;
        for timescale in [1000u32, 600, 12_800, 15_360, 16_000, 24_000, 30_000, 48_000, 90_000] {
            let mut early_at_wall_clock = 0;
            for _ in 0..20_000 {
                let producer_us = rng.random_range(0..ONE_YEAR_S * 1_000_000) as i64;
                let decode = rng.random_range(0..u64::from(timescale) * 3600);
                let shift = session_shift_us(producer_us, decode, timescale, 0);
                let served = served_decode_time(decode, timescale, shift);
                assert!(
                    !double_lands_early(served, timescale),
                    "decode {served} at {timescale} Hz lands early in double arithmetic"
                );
                let wall = u64::try_from(
                    (i128::from(1_796_605_200_000_000 + producer_us) * i128::from(timescale))
                        / 1_000_000,
                )
                .unwrap();
                early_at_wall_clock += usize::from(double_lands_early(wall, timescale));
            }
            // The check itself can fail: wall-clock decode times do land early.
            if ![1000, 600, 16_000, 24_000, 30_000].contains(&timescale) {
                assert!(early_at_wall_clock > 0, "{timescale} Hz: no early case at wall clock");
            }
        }
        // The case from the diagnosis: the first keyframe of a push anchored at …01:00:00.015Z.
        let shift = session_shift_us(1_796_605_200_015_000, 0, 15_360, 1_796_605_200_015_000);
        assert_eq!(served_decode_time(0, 15_360, shift), 0);
    }
}

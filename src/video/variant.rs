//! What a multivariant playlist says about a stream's media (RFC 8216 §4.3.4.2): peak and average
//! bit rate, codecs, resolution and frame rate, measured from the stored init segments and the
//! fragment index of the segments a playlist will list. Read once per multivariant request; the
//! media playlists themselves never read media.

use super::VideoStream;
use super::fragment::FragmentNumber;
use super::playback::SegmentRef;
use crate::error::Result;
use crate::media::fmp4::samples;

/// Segments measured for a multivariant playlist: enough for the peak of a long range's start,
/// bounded so an entry point over months of video stays a cheap request.
pub const MEASURED_SEGMENTS: usize = 1000;

/// The EXT-X-STREAM-INF facts of a run of segments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VariantFacts {
    /// The highest segment bit rate, bits per second.
    pub peak_bps: u64,
    /// Total bits over total duration.
    pub average_bps: Option<u64>,
    /// RFC 6381 codec strings of every init segment the run uses, in order of first use, each
    /// once: a player must be able to decode all of them.
    pub codecs: Vec<String>,
    pub resolution: Option<(u16, u16)>,
    pub frame_rate: Option<f64>,
}

impl VideoStream {
    /// The multivariant facts of `segs` (the first [`MEASURED_SEGMENTS`] of them).
    pub fn variant_facts(&self, segs: &[SegmentRef]) -> Result<VariantFacts> {
        let segs = &segs[..segs.len().min(MEASURED_SEGMENTS)];
        let mut facts = VariantFacts::default();
        let (mut bits, mut micros) = (0u128, 0u128);
        for s in segs.iter().filter(|s| s.duration_us > 0) {
            let bps = u128::from(s.bytes) * 8 * 1_000_000 / u128::from(s.duration_us);
            facts.peak_bps = facts.peak_bps.max(u64::try_from(bps).unwrap_or(u64::MAX));
            bits += u128::from(s.bytes) * 8;
            micros += u128::from(s.duration_us);
        }
        facts.average_bps =
            (bits * 1_000_000).checked_div(micros).and_then(|b| u64::try_from(b).ok());
        let mut inits: Vec<u32> = Vec::new();
        for s in segs {
            if !inits.contains(&s.init_id) {
                inits.push(s.init_id);
            }
        }
        for id in &inits {
            let Some(init) = self.init(*id)? else { continue };
            for c in init.codecs_attribute().split(',').filter(|c| !c.is_empty()) {
                if !facts.codecs.iter().any(|have| have == c) {
                    facts.codecs.push(c.to_owned());
                }
            }
            if facts.resolution.is_none() {
                facts.resolution = init.video().map(|v| (v.width, v.height));
            }
        }
        facts.frame_rate = match segs.first() {
            Some(s) => self.frame_rate(s.first)?,
            None => None,
        };
        Ok(facts)
    }

    /// The video frame rate of fragment `n`: its video samples over their duration.
    fn frame_rate(&self, n: FragmentNumber) -> Result<Option<f64>> {
        let Some((info, bytes)) = self.read_fragment(n)? else { return Ok(None) };
        let Some(init) = self.init(info.meta.init_id)? else { return Ok(None) };
        let Some(video) = init.video() else { return Ok(None) };
        let Ok(tracks) = samples(&init, &bytes) else { return Ok(None) };
        let Some(t) = tracks.iter().find(|t| t.track_id == video.track_id) else {
            return Ok(None);
        };
        let ticks: u64 = t.samples.iter().map(|s| u64::from(s.duration)).sum();
        if ticks == 0 || video.timescale == 0 {
            return Ok(None);
        }
        let fps = t.samples.len() as f64 * f64::from(video.timescale) / ticks as f64;
        // Rates like 29.97 keep their decimals; 30.0003 from rounding in the source is 30.
        let rounded = (fps * 1000.0).round() / 1000.0;
        Ok(Some(if (rounded - rounded.round()).abs() < 0.01 { rounded.round() } else { rounded }))
    }
}

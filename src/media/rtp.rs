//! RTP packets (RFC 3550 §5.1) and their payload formats, as RTSP publishers and WebRTC (WHIP)
//! publishers send them: H.264 (RFC 6184: single NAL unit, STAP-A, FU-A), H.265 (RFC 7798:
//! single, AP, FU; no DONL), AAC (RFC 3640 `mpeg4-generic`, AU headers) and Opus (RFC 7587: one
//! packet per RTP packet).
//!
//! Sans-I/O: bytes in, access units out. Malformed payloads are errors for the caller to count;
//! a gap in sequence numbers ([`Depacketizer::sequence`]) drops the access unit it belonged to.

use bytes::{Buf, Bytes, BytesMut};

use crate::clock::Timestamp;

/// The fixed RTP header fields Sluice uses, and the payload.
#[derive(Debug, Clone)]
pub struct RtpPacket {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Bytes,
}

/// Parses an RTP packet: version 2, CSRCs and header extension skipped, padding removed.
pub fn parse_rtp(mut pkt: Bytes) -> Result<RtpPacket, &'static str> {
    if pkt.len() < 12 {
        return Err("RTP packet shorter than its 12-byte header");
    }
    let b0 = pkt[0];
    if b0 >> 6 != 2 {
        return Err("not RTP version 2");
    }
    let padding = b0 & 0x20 != 0;
    let extension = b0 & 0x10 != 0;
    let csrc = usize::from(b0 & 0x0f);
    let marker = pkt[1] & 0x80 != 0;
    let payload_type = pkt[1] & 0x7f;
    let sequence = u16::from_be_bytes([pkt[2], pkt[3]]);
    let timestamp = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
    let ssrc = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]);
    let mut start = 12 + 4 * csrc;
    if extension {
        let ext = pkt.get(start + 2..start + 4).ok_or("RTP header extension truncated")?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let mut end = pkt.len();
    if padding {
        let pad = usize::from(pkt[end - 1]);
        if pad == 0 || pad > end {
            return Err("RTP padding longer than the packet");
        }
        end -= pad;
    }
    if start > end {
        return Err("RTP header longer than the packet");
    }
    pkt.truncate(end);
    pkt.advance(start);
    Ok(RtpPacket { payload_type, marker, sequence, timestamp, ssrc, payload: pkt })
}

/// A depacketized unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    /// One picture: its NAL units without start codes.
    Video { timestamp: u32, nalus: Vec<Bytes> },
    /// One audio frame.
    Audio { timestamp: u32, frame: Bytes },
}

/// RFC 3640 AU-header sizes from the SDP `fmtp` (`sizeLength`, `indexLength`,
/// `indexDeltaLength`); AAC-hbr is 13/3/3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacFormat {
    pub size_length: u32,
    pub index_length: u32,
    pub index_delta_length: u32,
    /// Samples per frame (1024 for AAC-LC), to time the frames of one packet.
    pub frame_length: u32,
}

#[derive(Debug)]
enum Kind {
    H264,
    H265,
    Aac(AacFormat),
    Opus,
}

/// Turns one track's RTP packets into [`Unit`]s.
#[derive(Debug)]
pub struct Depacketizer {
    kind: Kind,
    /// NAL units of the picture being received, and its timestamp.
    nalus: Vec<Bytes>,
    timestamp: Option<u32>,
    /// A fragmented NAL unit (FU-A / FU) or AAC frame being reassembled.
    fragment: Option<BytesMut>,
    /// A packet of this picture was lost: drop it when it completes.
    corrupt: bool,
    /// The last sequence number seen ([`Depacketizer::sequence`]).
    last_seq: Option<u16>,
}

/// Where a packet stands in the sequence ([`Depacketizer::sequence`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequence {
    /// The next packet.
    InOrder,
    /// Packets are missing before this one; it is still used.
    Lost,
    /// A duplicate, or older than one already seen: drop it.
    Stale,
}

impl Depacketizer {
    pub fn h264() -> Self {
        Self::new(Kind::H264)
    }
    pub fn h265() -> Self {
        Self::new(Kind::H265)
    }
    pub fn aac(format: AacFormat) -> Self {
        Self::new(Kind::Aac(format))
    }
    pub fn opus() -> Self {
        Self::new(Kind::Opus)
    }
    fn new(kind: Kind) -> Self {
        Depacketizer {
            kind,
            nalus: Vec::new(),
            timestamp: None,
            fragment: None,
            corrupt: false,
            last_seq: None,
        }
    }

    /// Checks a packet's sequence number against the previous one, before [`Depacketizer::push`]:
    /// a duplicate or late packet is [`Sequence::Stale`] (drop it); a gap is [`Sequence::Lost`]
    /// (the unit being assembled is dropped; ask the sender for a keyframe).
    pub fn sequence(&mut self, seq: u16) -> Sequence {
        let verdict = match self.last_seq {
            None => Sequence::InOrder,
            Some(last) => match seq.wrapping_sub(last) {
                1 => Sequence::InOrder,
                step if step == 0 || step > 0x8000 => return Sequence::Stale,
                _ => {
                    self.lost();
                    Sequence::Lost
                }
            },
        };
        self.last_seq = Some(seq);
        verdict
    }

    /// Packets were lost before the next one: the unit being assembled is dropped.
    pub fn lost(&mut self) {
        self.fragment = None;
        self.corrupt = true;
    }

    /// Takes one packet; appends completed units to `out`.
    pub fn push(&mut self, pkt: RtpPacket, out: &mut Vec<Unit>) -> Result<(), String> {
        match self.kind {
            Kind::Opus => {
                self.corrupt = false;
                if !pkt.payload.is_empty() {
                    out.push(Unit::Audio { timestamp: pkt.timestamp, frame: pkt.payload });
                }
                Ok(())
            }
            Kind::Aac(f) => self.push_aac(f, pkt, out),
            Kind::H264 | Kind::H265 => {
                if pkt.payload.is_empty() {
                    // Padding only (bandwidth probes, RFC 3550 §5.1): no media, no damage.
                    return Ok(());
                }
                if self.timestamp.is_some_and(|t| t != pkt.timestamp) {
                    // A new picture started without the previous one's marker bit.
                    self.emit(out);
                }
                self.timestamp = Some(pkt.timestamp);
                let marker = pkt.marker;
                let r = if matches!(self.kind, Kind::H264) {
                    self.push_h264(pkt.payload)
                } else {
                    self.push_h265(pkt.payload)
                };
                if r.is_err() {
                    self.corrupt = true;
                }
                if marker {
                    self.emit(out);
                }
                r
            }
        }
    }

    fn emit(&mut self, out: &mut Vec<Unit>) {
        let nalus = std::mem::take(&mut self.nalus);
        let timestamp = self.timestamp.take();
        self.fragment = None;
        if std::mem::take(&mut self.corrupt) {
            return;
        }
        if let Some(timestamp) = timestamp
            && !nalus.is_empty()
        {
            out.push(Unit::Video { timestamp, nalus });
        }
    }

    fn push_nal(&mut self, nal: Bytes) -> Result<(), String> {
        if self.nalus.len() >= 1024 {
            return Err("more than 1024 NAL units in one picture".into());
        }
        self.nalus.push(nal);
        Ok(())
    }

    /// RFC 6184 §5.6–5.8.
    fn push_h264(&mut self, mut p: Bytes) -> Result<(), String> {
        let Some(&h) = p.first() else { return Err("empty H.264 payload".into()) };
        match h & 0x1f {
            1..=23 => self.push_nal(p),
            24 => {
                p.advance(1);
                self.aggregation(p)
            }
            28 => {
                let Some(&fu) = p.get(1) else { return Err("FU-A without its header".into()) };
                let header = (h & 0xe0) | (fu & 0x1f);
                p.advance(2);
                self.fragmented(fu & 0x80 != 0, fu & 0x40 != 0, &[header], p)
            }
            t => Err(format!("unsupported H.264 packetization type {t}")),
        }
    }

    /// RFC 7798 §4.4.
    fn push_h265(&mut self, mut p: Bytes) -> Result<(), String> {
        if p.len() < 3 {
            return Err("H.265 payload shorter than 3 bytes".into());
        }
        match (p[0] >> 1) & 0x3f {
            0..=47 => self.push_nal(p),
            48 => {
                p.advance(2);
                self.aggregation(p)
            }
            49 => {
                let fu = p[2];
                let header = [(p[0] & 0x81) | ((fu & 0x3f) << 1), p[1]];
                p.advance(3);
                self.fragmented(fu & 0x80 != 0, fu & 0x40 != 0, &header, p)
            }
            t => Err(format!("unsupported H.265 packetization type {t}")),
        }
    }

    /// STAP-A / AP: 16-bit sizes, each followed by a NAL unit.
    fn aggregation(&mut self, mut p: Bytes) -> Result<(), String> {
        while p.len() >= 2 {
            let size = usize::from(p.get_u16());
            if size == 0 || size > p.len() {
                return Err(format!("aggregation unit of {size} bytes with {} left", p.len()));
            }
            let nal = p.split_to(size);
            self.push_nal(nal)?;
        }
        Ok(())
    }

    /// FU-A / FU: the NAL header is rebuilt from the first fragment.
    fn fragmented(
        &mut self,
        start: bool,
        end: bool,
        header: &[u8],
        data: Bytes,
    ) -> Result<(), String> {
        if start {
            let mut buf = BytesMut::with_capacity(header.len() + data.len() * 4);
            buf.extend_from_slice(header);
            buf.extend_from_slice(&data);
            self.fragment = Some(buf);
        } else {
            let Some(buf) = self.fragment.as_mut() else {
                return Err("a fragment without its start (lost packet)".into());
            };
            if buf.len() + data.len() > 16 << 20 {
                self.fragment = None;
                return Err("a fragmented NAL unit over 16 MiB".into());
            }
            buf.extend_from_slice(&data);
        }
        if end && let Some(buf) = self.fragment.take() {
            self.push_nal(buf.freeze())?;
        }
        Ok(())
    }

    /// RFC 3640 §3.2/3.3: AU-headers-length (bits), AU headers, then the AUs.
    fn push_aac(
        &mut self,
        f: AacFormat,
        pkt: RtpPacket,
        out: &mut Vec<Unit>,
    ) -> Result<(), String> {
        let mut p = pkt.payload;
        if p.len() < 2 {
            return Err("AAC payload shorter than its AU-headers-length".into());
        }
        let header_bits = usize::from(p.get_u16());
        let header_bytes = header_bits.div_ceil(8);
        if header_bytes > p.len() {
            return Err("AAC AU headers longer than the payload".into());
        }
        let headers = p.split_to(header_bytes);
        let per = (f.size_length + f.index_length) as usize;
        if per == 0 || f.size_length == 0 {
            return Err("AAC sizeLength is 0".into());
        }
        let count = header_bits / per;
        let mut sizes = Vec::with_capacity(count);
        let mut bit = 0usize;
        let read = |bit: &mut usize, n: u32| -> u32 {
            let mut v = 0u32;
            for _ in 0..n {
                let byte = headers.get(*bit / 8).copied().unwrap_or(0);
                v = (v << 1) | u32::from((byte >> (7 - (*bit % 8))) & 1);
                *bit += 1;
            }
            v
        };
        for i in 0..count {
            let size = read(&mut bit, f.size_length) as usize;
            read(&mut bit, if i == 0 { f.index_length } else { f.index_delta_length });
            sizes.push(size);
        }
        if let Some(mut buf) = self.fragment.take() {
            // The continuation of a fragmented AU (one AU header, the marker on the last part).
            if self.corrupt {
                self.corrupt = !pkt.marker;
                return Ok(());
            }
            buf.extend_from_slice(&p);
            if pkt.marker {
                let ts = self.timestamp.take().unwrap_or(pkt.timestamp);
                out.push(Unit::Audio { timestamp: ts, frame: buf.freeze() });
            } else {
                self.fragment = Some(buf);
            }
            return Ok(());
        }
        self.corrupt = false;
        if sizes.len() == 1 && sizes[0] > p.len() {
            // The first part of a fragmented AU.
            if pkt.marker {
                return Err("AAC AU larger than its packet with the marker bit set".into());
            }
            self.timestamp = Some(pkt.timestamp);
            self.fragment = Some(BytesMut::from(&p[..]));
            return Ok(());
        }
        let mut ts = pkt.timestamp;
        for size in sizes {
            if size > p.len() {
                return Err(format!("AAC AU of {size} bytes with {} left", p.len()));
            }
            let frame = p.split_to(size);
            out.push(Unit::Audio { timestamp: ts, frame });
            ts = ts.wrapping_add(f.frame_length);
        }
        Ok(())
    }
}

/// The RTP timestamp and NTP time of the first sender report (RFC 3550 §6.4.1) in a compound
/// RTCP packet.
pub fn rtcp_sender_report(mut data: &[u8]) -> Option<(u32, Timestamp)> {
    while data.len() >= 4 {
        let len = (usize::from(u16::from_be_bytes([data[2], data[3]])) + 1) * 4;
        if data[0] >> 6 != 2 || len > data.len() {
            return None;
        }
        if data[1] == 200 && len >= 28 {
            let word =
                |i: usize| u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
            let (msw, lsw, rtp) = (word(8), word(12), word(16));
            // NTP counts from 1900; Unix from 1970.
            let secs = i64::from(msw) - 2_208_988_800;
            let micros = (u64::from(lsw) * 1_000_000) >> 32;
            return Some((rtp, Timestamp::from_micros(secs * 1_000_000 + micros as i64)));
        }
        data = &data[len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_report_ntp_to_unix() {
        let mut sr = vec![0x80, 200, 0, 6];
        sr.extend_from_slice(&1u32.to_be_bytes()); // SSRC
        sr.extend_from_slice(&(2_208_988_800u32 + 1_000).to_be_bytes()); // NTP seconds
        sr.extend_from_slice(&(1u32 << 31).to_be_bytes()); // .5 s
        sr.extend_from_slice(&90_000u32.to_be_bytes());
        sr.extend_from_slice(&[0; 8]);
        let (rtp, ntp) = rtcp_sender_report(&sr).unwrap();
        assert_eq!(rtp, 90_000);
        assert_eq!(ntp, Timestamp::from_micros(1_000_500_000));
        assert!(rtcp_sender_report(&sr[..10]).is_none());
        assert!(rtcp_sender_report(&[0xff; 40]).is_none());
        assert!(rtcp_sender_report(&[]).is_none());
    }

    fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, payload: &[u8]) -> Bytes {
        let mut v = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&ts.to_be_bytes());
        v.extend_from_slice(&7u32.to_be_bytes());
        v.extend_from_slice(payload);
        Bytes::from(v)
    }

    fn h264_packet(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> RtpPacket {
        parse_rtp(rtp(96, marker, seq, ts, payload)).unwrap()
    }

    #[test]
    fn sequence_gaps_drop_the_unit_and_stale_packets_are_refused() {
        let mut d = Depacketizer::h264();
        let mut out = Vec::new();
        assert_eq!(d.sequence(65_534), Sequence::InOrder);
        d.push(h264_packet(65_534, 100, false, &[0x7c, 0x85, 1]), &mut out).unwrap();
        assert_eq!(d.sequence(65_534), Sequence::Stale, "a duplicate");
        // 65535 is lost: the FU-A picture in progress is dropped, not emitted damaged.
        assert_eq!(d.sequence(0), Sequence::Lost, "the gap across the wrap");
        let _ = d.push(h264_packet(0, 100, true, &[0x7c, 0x45, 3]), &mut out);
        assert_eq!(d.sequence(1), Sequence::InOrder);
        d.push(h264_packet(1, 200, true, &[0x65, 1]), &mut out).unwrap();
        assert_eq!(d.sequence(1), Sequence::Stale);
        assert_eq!(d.sequence(2), Sequence::InOrder);
        d.push(h264_packet(2, 300, true, &[0x41, 2]), &mut out).unwrap();
        let stamps: Vec<u32> = out
            .iter()
            .map(|u| match u {
                Unit::Video { timestamp, .. } => *timestamp,
                Unit::Audio { timestamp, .. } => *timestamp,
            })
            .collect();
        assert!(!stamps.contains(&100), "the damaged picture was emitted: {stamps:?}");
        assert!(stamps.contains(&200), "{stamps:?}");
    }

    #[test]
    fn malformed_h264_payloads_are_errors_not_panics() {
        let cases: [&[u8]; 8] = [
            &[],
            &[24],
            &[24, 0],
            &[24, 0, 5, 1],
            &[24, 0, 0, 0xaa],
            &[28],
            &[28, 0x05, 1],
            &[0xff, 0xff],
        ];
        let mut d = Depacketizer::h264();
        let mut out = Vec::new();
        for (i, c) in cases.iter().enumerate() {
            let _ = d.push(h264_packet(i as u16, 1, true, c), &mut out);
        }
    }

    fn push(d: &mut Depacketizer, pkt: Bytes) -> Vec<Unit> {
        let mut out = Vec::new();
        let _ = d.push(parse_rtp(pkt).unwrap(), &mut out);
        out
    }

    #[test]
    fn rtp_header_parsing() {
        let p = parse_rtp(rtp(96, true, 9, 1234, &[1, 2, 3])).unwrap();
        assert_eq!((p.payload_type, p.marker, p.sequence, p.timestamp), (96, true, 9, 1234));
        assert_eq!(&p.payload[..], &[1, 2, 3]);
        assert!(parse_rtp(Bytes::from_static(&[0x80, 96, 0])).is_err());
        assert!(parse_rtp(Bytes::from_static(&[0x40; 12])).is_err());
        // Padding longer than the packet, extension past the end, CSRCs past the end.
        let mut bad = rtp(96, false, 1, 1, &[0, 0, 0, 200]).to_vec();
        bad[0] |= 0x20;
        assert!(parse_rtp(Bytes::from(bad)).is_err());
        let mut bad = rtp(96, false, 1, 1, &[]).to_vec();
        bad[0] |= 0x10;
        assert!(parse_rtp(Bytes::from(bad)).is_err());
        let mut bad = rtp(96, false, 1, 1, &[]).to_vec();
        bad[0] |= 0x0f;
        assert!(parse_rtp(Bytes::from(bad)).is_err());
    }

    #[test]
    fn h264_single_stap_fu() {
        let mut d = Depacketizer::h264();
        // STAP-A with SPS + PPS, then an IDR in three FU-A fragments.
        assert!(
            push(&mut d, rtp(96, false, 1, 3000, &[24, 0, 2, 0x67, 1, 0, 2, 0x68, 2])).is_empty()
        );
        assert!(push(&mut d, rtp(96, false, 2, 3000, &[0x7c, 0x85, 0xaa])).is_empty());
        assert!(push(&mut d, rtp(96, false, 3, 3000, &[0x7c, 0x05, 0xbb])).is_empty());
        let out = push(&mut d, rtp(96, true, 4, 3000, &[0x7c, 0x45, 0xcc]));
        assert_eq!(
            out,
            vec![Unit::Video {
                timestamp: 3000,
                nalus: vec![
                    Bytes::from_static(&[0x67, 1]),
                    Bytes::from_static(&[0x68, 2]),
                    Bytes::from_static(&[0x65, 0xaa, 0xbb, 0xcc]),
                ],
            }]
        );
        // A single NAL unit picture.
        let out = push(&mut d, rtp(96, true, 5, 6000, &[0x41, 9]));
        assert_eq!(
            out,
            vec![Unit::Video { timestamp: 6000, nalus: vec![Bytes::from_static(&[0x41, 9])] }]
        );
        // A lost middle fragment drops the picture.
        push(&mut d, rtp(96, false, 6, 9000, &[0x7c, 0x81, 1]));
        d.lost();
        assert!(push(&mut d, rtp(96, true, 8, 9000, &[0x7c, 0x41, 3])).is_empty());
        // The next picture is fine.
        assert_eq!(push(&mut d, rtp(96, true, 9, 12000, &[0x41, 9])).len(), 1);
    }

    #[test]
    fn h264_garbage_is_an_error_not_a_panic() {
        let mut d = Depacketizer::h264();
        let mut out = Vec::new();
        for payload in [&[][..], &[24, 0, 9, 1], &[28], &[25, 1, 2], &[24, 0]] {
            let _ = d.push(parse_rtp(rtp(96, true, 1, 1, payload)).unwrap(), &mut out);
        }
        assert!(d.push(parse_rtp(rtp(96, true, 1, 1, &[24, 0, 9, 1])).unwrap(), &mut out).is_err());
    }

    #[test]
    fn h265_ap_and_fu() {
        let mut d = Depacketizer::h265();
        // AP (type 48) with VPS and SPS.
        let out =
            push(&mut d, rtp(96, false, 1, 90, &[0x60, 1, 0, 3, 0x40, 1, 7, 0, 3, 0x42, 1, 8]));
        assert!(out.is_empty());
        // FU (type 49) carrying an IDR_W_RADL (19).
        push(&mut d, rtp(96, false, 2, 90, &[0x62, 1, 0x80 | 19, 0xaa]));
        let out = push(&mut d, rtp(96, true, 3, 90, &[0x62, 1, 0x40 | 19, 0xbb]));
        let Unit::Video { nalus, .. } = &out[0] else { panic!() };
        assert_eq!(nalus.len(), 3);
        assert_eq!(&nalus[2][..], &[19 << 1, 1, 0xaa, 0xbb]);
    }

    #[test]
    fn aac_hbr_several_aus() {
        let f = AacFormat {
            size_length: 13,
            index_length: 3,
            index_delta_length: 3,
            frame_length: 1024,
        };
        let mut d = Depacketizer::aac(f);
        // Two AU headers (16 bits each): sizes 2 and 3.
        let payload = [0, 32, 0, 2 << 3, 0, 3 << 3, 1, 2, 3, 4, 5];
        let out = push(&mut d, rtp(97, true, 1, 1000, &payload));
        assert_eq!(
            out,
            vec![
                Unit::Audio { timestamp: 1000, frame: Bytes::from_static(&[1, 2]) },
                Unit::Audio { timestamp: 2024, frame: Bytes::from_static(&[3, 4, 5]) },
            ]
        );
        // Headers claiming more than the payload.
        let mut out = Vec::new();
        assert!(
            d.push(parse_rtp(rtp(97, true, 2, 1, &[0, 32, 0xff, 0xff, 0, 8])).unwrap(), &mut out)
                .is_err()
        );
    }

    /// Random packets (a fixed-seed generator, biased towards valid headers) through every
    /// depacketizer, the SDP parser, the SR parser and the parameter-set parsers: errors, never
    /// panics.
    #[test]
    fn random_input_never_panics() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let aac = AacFormat {
            size_length: 13,
            index_length: 3,
            index_delta_length: 3,
            frame_length: 1024,
        };
        let mut ds = [
            Depacketizer::h264(),
            Depacketizer::h265(),
            Depacketizer::aac(aac),
            Depacketizer::opus(),
        ];
        let mut out = Vec::new();
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len >= 12 && next() % 4 != 0 {
                p[0] = 0x80 | (p[0] & 0x3f);
            }
            if let Ok(pkt) = parse_rtp(Bytes::from(p.clone())) {
                for d in &mut ds {
                    let _ = d.push(pkt.clone(), &mut out);
                }
            }
            if next() % 16 == 0 {
                ds[(next() % 4) as usize].lost();
            }
            out.clear();
            let _ = rtcp_sender_report(&p);
            let _ = crate::media::sdp::parse(&p);
            let _ = crate::media::param_sets::aac_config(Bytes::from(p.clone()));
            if p.len() > 2 {
                let _ = crate::media::param_sets::h264_params(&p, &p);
                let mut sps = p.clone();
                sps[0] = 0x42;
                let _ = crate::media::param_sets::h265_params(&[0x40, 1, 0], &sps, &[0x44, 1, 0]);
            }
        }
    }
}

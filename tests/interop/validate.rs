//! A strict HLS playlist validator, written for the interop tests from RFC 8216 and 8216bis: one
//! playlist at a time ([`check`]) and a sequence of reloads of one URL ([`Reloads`]). Every rule
//! it enforces names its section. It reads playlists as text, independently of the renderer.

use std::collections::HashMap;

/// One parsed media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Seg {
    pub msn: u64,
    pub dsn: u64,
    pub uri: String,
    pub duration: f64,
    pub pdt_ms: Option<i64>,
    pub discontinuity: bool,
    pub map: Option<String>,
}

/// What one media playlist says.
#[derive(Debug, Clone, Default)]
pub struct Media {
    pub target: u64,
    pub part_target: Option<f64>,
    pub media_sequence: u64,
    pub playlist_type: Option<String>,
    pub end_list: bool,
    pub skipped: u64,
    pub segments: Vec<Seg>,
}

/// A multivariant playlist's variants: (attributes, uri).
pub type Variants = Vec<(HashMap<String, String>, String)>;

pub enum Playlist {
    Media(Media),
    Multivariant(Variants),
}

fn attrs(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else { break };
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (&q[..end], q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.insert(k.trim().to_owned(), v.to_owned());
        rest = next.strip_prefix(',').unwrap_or(next);
    }
    out
}

fn pdt_ms(s: &str) -> i64 {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("§4.4.4.6: bad PROGRAM-DATE-TIME {s:?}: {e}"));
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Checks one playlist against the rules that hold for it alone; panics naming the rule.
pub fn check(text: &str) -> Playlist {
    let ctx = |msg: String| format!("{msg}\n--- playlist ---\n{text}");
    assert!(text.starts_with("#EXTM3U\n"), "{}", ctx("§4.4.1.1: must start with #EXTM3U".into()));
    let version: u32 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-VERSION:"))
        .map(|v| v.parse().expect("EXT-X-VERSION is an integer"))
        .unwrap_or_else(|| {
            panic!("{}", ctx("§4.4.1.2: EXT-X-VERSION is required (features need 7)".into()))
        });
    if text.contains("#EXT-X-STREAM-INF") {
        let mut variants = Vec::new();
        let mut lines = text.lines();
        while let Some(l) = lines.next() {
            if let Some(a) = l.strip_prefix("#EXT-X-STREAM-INF:") {
                let a = attrs(a);
                let uri =
                    lines.next().expect("§4.4.6.2: a URI follows EXT-X-STREAM-INF").to_owned();
                let bw: u64 = a
                    .get("BANDWIDTH")
                    .and_then(|b| b.parse().ok())
                    .unwrap_or_else(|| panic!("{}", ctx("§4.4.6.2: BANDWIDTH is required".into())));
                if let Some(avg) = a.get("AVERAGE-BANDWIDTH") {
                    let avg: u64 = avg.parse().expect("AVERAGE-BANDWIDTH is an integer");
                    assert!(
                        avg <= bw,
                        "{}",
                        ctx("§4.4.6.2: AVERAGE-BANDWIDTH above BANDWIDTH".into())
                    );
                }
                for required in ["CODECS", "RESOLUTION", "FRAME-RATE", "AVERAGE-BANDWIDTH"] {
                    assert!(
                        a.contains_key(required),
                        "{}",
                        ctx(format!("§4.4.6.2 (SHOULD, and Safari needs CODECS): no {required}"))
                    );
                }
                variants.push((a, uri));
            }
        }
        assert!(!variants.is_empty());
        return Playlist::Multivariant(variants);
    }
    let mut m = Media::default();
    let mut msn = None;
    let mut dsn = 0u64;
    let mut target = None;
    let mut pending_disc = false;
    let mut pending_pdt = None;
    let mut pending_dur = None;
    let mut map: Option<String> = None;
    let mut has_parts = false;
    let mut uris = std::collections::HashSet::new();
    let mut max_part = 0f64;
    let mut hold_back = None;
    let mut can_skip = None;
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("#EXT-X-TARGETDURATION:") {
            target = Some(v.parse::<u64>().expect("§4.4.3.1: TARGETDURATION is a decimal-integer"));
        } else if let Some(v) = l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            assert!(
                m.segments.is_empty(),
                "{}",
                ctx("§4.4.3.2: MEDIA-SEQUENCE after a segment".into())
            );
            msn = Some(v.parse::<u64>().expect("MEDIA-SEQUENCE"));
        } else if let Some(v) = l.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
            dsn = v.parse().expect("DISCONTINUITY-SEQUENCE");
        } else if let Some(v) = l.strip_prefix("#EXT-X-PLAYLIST-TYPE:") {
            m.playlist_type = Some(v.to_owned());
        } else if l == "#EXT-X-ENDLIST" {
            m.end_list = true;
        } else if l == "#EXT-X-DISCONTINUITY" {
            pending_disc = true;
        } else if let Some(v) = l.strip_prefix("#EXT-X-MAP:") {
            map = attrs(v).get("URI").cloned();
        } else if let Some(v) = l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pending_pdt = Some(pdt_ms(v));
        } else if let Some(v) = l.strip_prefix("#EXTINF:") {
            let d = v.split(',').next().unwrap_or("");
            pending_dur = Some(d.parse::<f64>().expect("§4.4.4.1: EXTINF duration"));
        } else if let Some(v) = l.strip_prefix("#EXT-X-PART-INF:") {
            m.part_target = attrs(v).get("PART-TARGET").map(|p| p.parse().expect("PART-TARGET"));
        } else if let Some(v) = l.strip_prefix("#EXT-X-SERVER-CONTROL:") {
            let a = attrs(v);
            hold_back = a.get("PART-HOLD-BACK").map(|p| p.parse::<f64>().expect("PART-HOLD-BACK"));
            can_skip = a.get("CAN-SKIP-UNTIL").map(|p| p.parse::<f64>().expect("CAN-SKIP-UNTIL"));
        } else if let Some(v) = l.strip_prefix("#EXT-X-PART:") {
            has_parts = true;
            let a = attrs(v);
            max_part = max_part.max(a["DURATION"].parse::<f64>().expect("part DURATION"));
        } else if let Some(v) = l.strip_prefix("#EXT-X-SKIP:") {
            m.skipped = attrs(v)["SKIPPED-SEGMENTS"].parse().expect("SKIPPED-SEGMENTS");
            let need = if v.contains("RECENTLY-REMOVED-DATERANGES") { 10 } else { 9 };
            assert!(
                version >= need,
                "{}",
                ctx(format!("§7: EXT-X-SKIP here needs version {need}"))
            );
        } else if !l.starts_with('#') && !l.is_empty() {
            let n = msn.unwrap_or(0) + m.skipped + m.segments.len() as u64;
            if pending_disc {
                dsn += 1;
            }
            assert!(map.is_some(), "{}", ctx("§4.4.4.5: fMP4 segments need an EXT-X-MAP".into()));
            assert!(uris.insert(l.to_owned()), "{}", ctx(format!("segment {l} is listed twice")));
            m.segments.push(Seg {
                msn: n,
                dsn,
                uri: l.to_owned(),
                duration: pending_dur
                    .take()
                    .unwrap_or_else(|| panic!("{}", ctx(format!("§4.4.4.1: {l} has no EXTINF")))),
                pdt_ms: pending_pdt.take(),
                discontinuity: std::mem::take(&mut pending_disc),
                map: map.clone(),
            });
        }
    }
    if msn.is_none() {
        msn = Some(0);
    }
    m.media_sequence = msn.unwrap_or(0);
    m.target = target
        .unwrap_or_else(|| panic!("{}", ctx("§4.4.3.1: EXT-X-TARGETDURATION is required".into())));
    assert!(version >= 6, "{}", ctx("§7: EXT-X-MAP in a media playlist needs version 6".into()));
    for s in &m.segments {
        assert!(
            s.duration.round() as u64 <= m.target,
            "{}",
            ctx(format!(
                "§4.4.3.1: EXTINF {} of {} rounds above TARGETDURATION {}",
                s.duration, s.uri, m.target
            ))
        );
    }
    assert_eq!(
        has_parts,
        m.part_target.is_some(),
        "{}",
        ctx("§4.4.3.7: EXT-X-PART needs EXT-X-PART-INF".into())
    );
    if let Some(pt) = m.part_target {
        assert!(
            max_part <= pt + 1e-9,
            "{}",
            ctx(format!("§4.4.4.9: a part of {max_part} s exceeds PART-TARGET {pt}"))
        );
        let hb = hold_back.unwrap_or_else(|| {
            panic!("{}", ctx("§4.4.3.8: PART-HOLD-BACK is required with parts".into()))
        });
        assert!(hb >= 2.0 * pt, "{}", ctx("§4.4.3.8: PART-HOLD-BACK under 2 × PART-TARGET".into()));
    }
    if let Some(cs) = can_skip {
        assert!(
            cs >= 6.0 * m.target as f64,
            "{}",
            ctx("§4.4.3.8: CAN-SKIP-UNTIL under 6 target durations".into())
        );
    }
    // §4.4.4.6 / §6.2.1: program date times advance with media time between discontinuities.
    for w in m.segments.windows(2) {
        if let (Some(a), Some(b), false) = (w[0].pdt_ms, w[1].pdt_ms, w[1].discontinuity) {
            let expected = a as f64 + w[0].duration * 1000.0;
            assert!(
                (b as f64 - expected).abs() <= 2.0,
                "{}",
                ctx(format!(
                    "PDT of {} is {b}, but {} + its EXTINF is {expected}",
                    w[1].uri, w[0].uri
                ))
            );
        }
    }
    if m.playlist_type.as_deref() == Some("VOD") {
        assert!(m.end_list, "{}", ctx("§4.4.3.5: a VOD playlist ends with EXT-X-ENDLIST".into()));
    }
    Playlist::Media(m)
}

/// Checks one playlist and returns it as a media playlist (panics on a multivariant one).
pub fn media(text: &str) -> Media {
    match check(text) {
        Playlist::Media(m) => m,
        Playlist::Multivariant(_) => panic!("expected a media playlist:\n{text}"),
    }
}

/// The rules between successive reloads of one media playlist URL (RFC 8216 §6.2.1, §6.2.2).
#[derive(Default)]
pub struct Reloads {
    seen: HashMap<u64, Seg>,
    target: Option<u64>,
    part_target: Option<Option<f64>>,
    last_msn: u64,
    ended: Option<String>,
    event_first: Option<u64>,
    pub count: usize,
}

impl Reloads {
    pub fn push(&mut self, text: &str) -> Media {
        let m = media(text);
        let ctx = |msg: String| format!("reload {}: {msg}\n--- playlist ---\n{text}", self.count);
        if let Some(prev) = &self.ended {
            assert_eq!(prev, text, "§6.2.1: a playlist with EXT-X-ENDLIST must not change");
        }
        if let Some(t) = self.target {
            assert_eq!(
                t,
                m.target,
                "{}",
                ctx(format!("§6.2.1: EXT-X-TARGETDURATION must not change (was {t})"))
            );
        }
        if let Some(pt) = self.part_target {
            assert_eq!(pt, m.part_target, "{}", ctx("PART-TARGET changed between reloads".into()));
        }
        assert!(
            m.media_sequence >= self.last_msn,
            "{}",
            ctx("§6.2.1: MEDIA-SEQUENCE went backwards".into())
        );
        if m.playlist_type.as_deref() == Some("EVENT") {
            let first = *self.event_first.get_or_insert(m.media_sequence);
            assert_eq!(
                first,
                m.media_sequence,
                "{}",
                ctx("§4.4.3.5: an EVENT playlist only appends".into())
            );
        }
        for s in &m.segments {
            if let Some(old) = self.seen.get(&s.msn) {
                assert_eq!(
                    (&old.uri, old.dsn, old.duration.to_bits(), old.pdt_ms),
                    (&s.uri, s.dsn, s.duration.to_bits(), s.pdt_ms),
                    "{}",
                    ctx(format!("§6.2.1: media sequence {} changed between reloads", s.msn))
                );
            }
        }
        if self.count > 0 && m.playlist_type.as_deref() == Some("EVENT") {
            // Everything listed before is still listed, in place.
            for (n, old) in &self.seen {
                assert!(
                    m.segments.iter().any(|s| s.msn == *n && s.uri == old.uri),
                    "{}",
                    ctx(format!("§6.2.1: segment {n} was removed"))
                );
            }
        }
        for s in &m.segments {
            self.seen.insert(s.msn, s.clone());
        }
        self.target = Some(m.target);
        self.part_target = Some(m.part_target);
        self.last_msn = m.media_sequence;
        if m.end_list {
            self.ended = Some(text.to_owned());
        }
        self.count += 1;
        m
    }
}

#[test]
fn validator_catches_what_it_is_for() {
    let ok = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MAP:URI=\"i.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z\n#EXTINF:1.00000,\na.m4s\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:01.000Z\n#EXTINF:1.00000,\nb.m4s\n";
    media(ok);
    let fails = |t: String| std::panic::catch_unwind(|| media(&t)).is_err();
    assert!(fails(ok.replace("b.m4s", "a.m4s")), "duplicate URI");
    assert!(fails(ok.replace("00:00:01.000Z", "00:00:00.500Z")), "PDT behind EXTINF");
    assert!(fails(ok.replace("#EXTINF:1.00000,\nb", "#EXTINF:1.60000,\nb")), "EXTINF over target");
    let mut r = Reloads::default();
    r.push(ok);
    let rewritten = ok.replace("b.m4s", "c.m4s");
    assert!(
        std::panic::catch_unwind(move || {
            let mut r2 = Reloads::default();
            r2.push(ok);
            r2.push(&rewritten);
        })
        .is_err(),
        "a rewritten entry"
    );
    assert!(
        std::panic::catch_unwind(|| {
            let mut r2 = Reloads::default();
            r2.push(ok);
            r2.push(&ok.replace("TARGETDURATION:1", "TARGETDURATION:2"));
        })
        .is_err(),
        "a changed target duration"
    );
}

//! Matroska in: the incremental, sans-I/O reader of what Kinesis Video Streams producers send to
//! PutMedia (kvssink, the C/C++/Java producer SDKs), and of what `ffmpeg -f matroska` and
//! GStreamer's `matroskamux streamable=true` write: an EBML header, a Segment (usually of unknown
//! size), `Info`, `Tracks`, then Clusters (of known or unknown size) of `SimpleBlock`s or
//! `BlockGroup`s, for as long as the producer likes — with a new EBML header and Segment whenever
//! the producer restarts its stream inside one connection.
//!
//! Push byte chunks of any size ([`MkvReader::push`]) and pull [`MkvEvent`]s
//! ([`MkvReader::next_event`]); at the end of the body, [`MkvReader::finish`] ends a Cluster of
//! unknown size. Elements the reader does not need (`SeekHead`, `Cues`, `Chapters`, `Void`, …)
//! are skipped as they stream past, never buffered; what it needs whole (`Info`, `Tracks`,
//! `Tags`, one block) is bounded by [`MkvLimits`] (a `Tags` element past the limit is skipped:
//! producers' tags are small, and media must not be refused for one). Block data is handed out as [`Bytes`] slices
//! of the received chunks. Errors carry the byte offset in the producer's stream. Pure: no I/O.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use super::ebml::{EbmlError, Header, read_float, read_header, read_str, read_uint};
use super::id;

/// Bounds on what the reader holds whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MkvLimits {
    /// The largest `Info`, `Tracks` or EBML header element.
    pub max_header_bytes: usize,
    /// The largest single block (`SimpleBlock` or `BlockGroup`).
    pub max_block_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MkvError {
    #[error("{0}")]
    Ebml(#[from] EbmlError),
    #[error("byte {offset}: {reason}")]
    Invalid { offset: u64, reason: String },
    #[error("byte {offset}: {what} of {size} bytes is larger than the limit of {max} bytes")]
    TooLarge { offset: u64, what: &'static str, size: u64, max: usize },
}

impl MkvError {
    fn invalid(offset: u64, reason: impl Into<String>) -> MkvError {
        MkvError::Invalid { offset, reason: reason.into() }
    }
}

/// One track of a `Tracks` element.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackEntry {
    pub number: u64,
    /// 1 video, 2 audio, others as Matroska numbers them.
    pub kind: u64,
    pub codec_id: String,
    pub codec_private: Bytes,
    pub width: u64,
    pub height: u64,
    pub sample_rate: f64,
    pub channels: u64,
    /// `DefaultDuration`, in nanoseconds.
    pub default_duration_ns: Option<u64>,
}

/// One `SimpleTag`: its `TagName`, its `TagString` (empty for a `TagBinary` or none), and the
/// `SimpleTag`s nested in it (KVS's notification tag carries its payload so).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimpleTag {
    pub name: String,
    pub value: String,
    pub children: Vec<SimpleTag>,
}

/// How deep `SimpleTag`s nest before the rest is ignored.
const MAX_TAG_DEPTH: usize = 4;

/// What the reader found.
#[derive(Debug, Clone, PartialEq)]
pub enum MkvEvent {
    /// A Segment-level `Tags` element: the `SimpleTag`s of all its `Tag`s, in order.
    Tags(Vec<SimpleTag>),
    /// A complete `Tracks` element, with the Segment's timestamp scale (ns per tick).
    Tracks { timestamp_scale_ns: u64, tracks: Vec<TrackEntry> },
    /// A Cluster's first bytes arrived (`offset`); its timestamp is known from `Timestamp`.
    ClusterStarted { offset: u64, timestamp: u64 },
    /// One frame: its track, its presentation time in ticks (cluster timestamp + the block's
    /// offset), whether it is a keyframe, its bytes.
    Block { track: u64, time: i64, keyframe: bool, data: Bytes },
    /// The Cluster ended: its known size was reached, or the next Cluster, another top-level
    /// element, a new EBML header or the end of the body followed it.
    ClusterEnded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Before an EBML header or a Segment.
    Top,
    /// Inside a Segment, ending at `end` (exclusive stream offset) if its size is known.
    Segment { end: Option<u64> },
    /// Inside a Cluster of the Segment.
    Cluster { end: Option<u64>, segment_end: Option<u64>, timestamp: Option<u64>, start: u64 },
}

/// The incremental Matroska reader.
pub struct MkvReader {
    limits: MkvLimits,
    buf: BytesMut,
    /// The stream offset of `buf[0]`.
    pos: u64,
    /// Bytes of a skipped element still to come.
    skip: u64,
    level: Level,
    timestamp_scale_ns: u64,
    seen_tracks: bool,
    events: VecDeque<MkvEvent>,
}

/// Elements that sit directly in a Segment: one of them inside a Cluster of unknown size ends it.
const SEGMENT_CHILDREN: &[u32] = &[
    id::SEEK_HEAD,
    id::INFO,
    id::TRACKS,
    id::CLUSTER,
    id::CUES,
    id::TAGS,
    0x1043_A770, // Chapters
    0x1941_A469, // Attachments
];

impl MkvReader {
    pub fn new(limits: MkvLimits) -> MkvReader {
        MkvReader {
            limits,
            buf: BytesMut::new(),
            pos: 0,
            skip: 0,
            level: Level::Top,
            timestamp_scale_ns: 1_000_000,
            seen_tracks: false,
            events: VecDeque::new(),
        }
    }

    pub fn push(&mut self, chunk: Bytes) {
        self.buf.extend_from_slice(&chunk);
    }

    /// Bytes received and not yet handed out or skipped.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The end of the body: a Cluster of unknown size ends here. Bytes left inside an element
    /// are an error (the body ended mid-element).
    pub fn finish(&mut self) -> Result<(), MkvError> {
        self.drop_skipped();
        if !self.buf.is_empty() || self.skip > 0 {
            return Err(MkvError::invalid(self.pos, "the body ended inside an element"));
        }
        if let Level::Cluster { end, .. } = self.level {
            if end.is_some_and(|e| e > self.pos) {
                return Err(MkvError::invalid(self.pos, "the body ended inside a Cluster"));
            }
            self.events.push_back(MkvEvent::ClusterEnded);
            self.level = Level::Top;
        }
        Ok(())
    }

    fn drop_skipped(&mut self) {
        let n = usize::try_from(self.skip).unwrap_or(usize::MAX).min(self.buf.len());
        self.buf.advance(n);
        self.pos += n as u64;
        self.skip -= n as u64;
    }

    fn consume(&mut self, n: usize) -> Bytes {
        self.pos += n as u64;
        self.buf.split_to(n).freeze()
    }

    /// The next event, or `None` until more bytes arrive.
    pub fn next_event(&mut self) -> Result<Option<MkvEvent>, MkvError> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            self.drop_skipped();
            if self.skip > 0 {
                return Ok(None);
            }
            // Containers of known size end where their size says.
            match self.level {
                Level::Cluster { end: Some(e), segment_end, .. } if self.pos >= e => {
                    self.level = Level::Segment { end: segment_end };
                    return Ok(Some(MkvEvent::ClusterEnded));
                }
                Level::Segment { end: Some(e) } if self.pos >= e => {
                    self.level = Level::Top;
                    continue;
                }
                _ => {}
            }
            let Some(h) = read_header(&self.buf, self.pos)? else { return Ok(None) };
            if !self.step(h)? {
                return Ok(None);
            }
        }
    }

    /// The element whose whole is needed, if it has arrived: its data after the header.
    fn whole(
        &mut self,
        h: Header,
        max: usize,
        what: &'static str,
    ) -> Result<Option<Bytes>, MkvError> {
        let size =
            h.size.ok_or_else(|| MkvError::invalid(self.pos, format!("{what} of unknown size")))?;
        if size > max as u64 {
            return Err(MkvError::TooLarge { offset: self.pos, what, size, max });
        }
        let total = h.len + size as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        self.consume(h.len);
        Ok(Some(self.consume(size as usize)))
    }

    /// Skips an element of known size (one of unknown size cannot be skipped).
    fn skip_element(&mut self, h: Header) -> Result<(), MkvError> {
        let size = h.size.ok_or_else(|| {
            MkvError::invalid(
                self.pos,
                format!(
                    "element {:#X} has an unknown size where only a Segment or a Cluster may",
                    h.id
                ),
            )
        })?;
        self.consume(h.len);
        self.skip = size;
        Ok(())
    }

    /// Handles the element whose header is `h`. `Ok(false)`: more bytes are needed.
    fn step(&mut self, h: Header) -> Result<bool, MkvError> {
        let at = self.pos;
        match self.level {
            Level::Top => match h.id {
                id::EBML => {
                    let Some(data) = self.whole(h, self.limits.max_header_bytes, "EBML header")?
                    else {
                        return Ok(false);
                    };
                    check_doc_type(&data, at + h.len as u64)?;
                }
                id::SEGMENT => {
                    self.consume(h.len);
                    self.level = Level::Segment { end: h.size.map(|s| self.pos + s) };
                    self.timestamp_scale_ns = 1_000_000;
                }
                id::VOID | id::CRC32 => self.skip_element(h)?,
                other => {
                    return Err(MkvError::invalid(
                        at,
                        format!("element {other:#X} where an EBML header or a Segment must be"),
                    ));
                }
            },
            Level::Segment { end } => match h.id {
                id::EBML | id::SEGMENT => self.level = Level::Top,
                id::INFO => {
                    let Some(data) = self.whole(h, self.limits.max_header_bytes, "Info")? else {
                        return Ok(false);
                    };
                    self.timestamp_scale_ns = info_scale(&data, at + h.len as u64)?;
                }
                id::TRACKS => {
                    let Some(data) = self.whole(h, self.limits.max_header_bytes, "Tracks")? else {
                        return Ok(false);
                    };
                    let tracks = track_entries(&data, at + h.len as u64)?;
                    self.seen_tracks = true;
                    self.events.push_back(MkvEvent::Tracks {
                        timestamp_scale_ns: self.timestamp_scale_ns,
                        tracks,
                    });
                }
                id::CLUSTER => {
                    if !self.seen_tracks {
                        return Err(MkvError::invalid(at, "a Cluster before any Tracks"));
                    }
                    self.consume(h.len);
                    self.level = Level::Cluster {
                        end: h.size.map(|s| self.pos + s),
                        segment_end: end,
                        timestamp: None,
                        start: at,
                    };
                }
                id::TAGS if h.size.is_some_and(|s| s <= self.limits.max_header_bytes as u64) => {
                    let Some(data) = self.whole(h, self.limits.max_header_bytes, "Tags")? else {
                        return Ok(false);
                    };
                    let tags = simple_tags(&data, at + h.len as u64)?;
                    if !tags.is_empty() {
                        self.events.push_back(MkvEvent::Tags(tags));
                    }
                }
                id::SIMPLE_BLOCK | id::BLOCK_GROUP | id::TIMESTAMP => {
                    return Err(MkvError::invalid(
                        at,
                        format!("element {:#X} outside a Cluster", h.id),
                    ));
                }
                _ => self.skip_element(h)?,
            },
            Level::Cluster { end, segment_end, timestamp, start } => {
                let ends_cluster = h.id == id::EBML || h.id == id::SEGMENT;
                if ends_cluster || SEGMENT_CHILDREN.contains(&h.id) {
                    if end.is_some() {
                        return Err(MkvError::invalid(
                            at,
                            format!("element {:#X} inside a Cluster of known size", h.id),
                        ));
                    }
                    self.level = Level::Segment { end: segment_end };
                    self.events.push_back(MkvEvent::ClusterEnded);
                    return Ok(true);
                }
                match h.id {
                    id::TIMESTAMP => {
                        let Some(data) = self.whole(h, 8, "Cluster Timestamp")? else {
                            return Ok(false);
                        };
                        if timestamp.is_some() {
                            return Err(MkvError::invalid(at, "a second Cluster Timestamp"));
                        }
                        let t = read_uint(&data, id::TIMESTAMP, at)?;
                        self.level = Level::Cluster { end, segment_end, timestamp: Some(t), start };
                        self.events
                            .push_back(MkvEvent::ClusterStarted { offset: start, timestamp: t });
                    }
                    id::SIMPLE_BLOCK | id::BLOCK_GROUP => {
                        let Some(t) = timestamp else {
                            return Err(MkvError::invalid(
                                at,
                                "a block before its Cluster's Timestamp",
                            ));
                        };
                        let what =
                            if h.id == id::SIMPLE_BLOCK { "SimpleBlock" } else { "BlockGroup" };
                        let Some(data) = self.whole(h, self.limits.max_block_bytes, what)? else {
                            return Ok(false);
                        };
                        let body = at + h.len as u64;
                        let event = if h.id == id::SIMPLE_BLOCK {
                            block(data, t, None, body)?
                        } else {
                            block_group(data, t, body)?
                        };
                        self.events.push_back(event);
                    }
                    _ => self.skip_element(h)?,
                }
            }
        }
        Ok(true)
    }
}

/// The EBML header's DocType must be `matroska` or `webm` (absent means `matroska`).
fn check_doc_type(data: &[u8], offset: u64) -> Result<(), MkvError> {
    for (h, value, at) in children(data, offset)? {
        if h.id == id::DOC_TYPE {
            let t = read_str(&value);
            if t != "matroska" && t != "webm" {
                return Err(MkvError::invalid(
                    at,
                    format!("DocType {t:?} is not matroska or webm"),
                ));
            }
        }
    }
    Ok(())
}

/// The `SimpleTag`s of a `Tags` element's `Tag`s.
fn simple_tags(data: &[u8], offset: u64) -> Result<Vec<SimpleTag>, MkvError> {
    let mut out = Vec::new();
    for (h, tag, at) in children(data, offset)? {
        if h.id != id::TAG {
            continue;
        }
        for (h, simple, at) in children(&tag, at + h.len as u64)? {
            if h.id == id::SIMPLE_TAG {
                out.push(simple_tag(&simple, at + h.len as u64, 1)?);
            }
        }
    }
    Ok(out)
}

fn simple_tag(data: &[u8], offset: u64, depth: usize) -> Result<SimpleTag, MkvError> {
    let mut t = SimpleTag::default();
    for (h, v, at) in children(data, offset)? {
        match h.id {
            id::TAG_NAME => t.name = read_str(&v),
            id::TAG_STRING => t.value = read_str(&v),
            id::SIMPLE_TAG if depth < MAX_TAG_DEPTH => {
                t.children.push(simple_tag(&v, at + h.len as u64, depth + 1)?)
            }
            _ => {}
        }
    }
    Ok(t)
}

/// The child elements of a master held whole: (header, data, offset of the element).
fn children(data: &[u8], offset: u64) -> Result<Vec<(Header, Bytes, u64)>, MkvError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        let here = offset + at as u64;
        let h = read_header(&data[at..], here)?
            .ok_or_else(|| MkvError::invalid(here, "an element cut off by its parent's end"))?;
        let size = h.size.ok_or_else(|| MkvError::invalid(here, "an element of unknown size"))?;
        let end = (at + h.len)
            .checked_add(usize::try_from(size).unwrap_or(usize::MAX))
            .filter(|&e| e <= data.len())
            .ok_or_else(|| MkvError::invalid(here, "an element larger than its parent"))?;
        out.push((h, Bytes::copy_from_slice(&data[at + h.len..end]), here));
        at = end;
    }
    Ok(out)
}

/// `Info`'s TimestampScale (nanoseconds per tick; 1,000,000 when absent).
fn info_scale(data: &[u8], offset: u64) -> Result<u64, MkvError> {
    let mut scale = 1_000_000;
    for (h, value, at) in children(data, offset)? {
        if h.id == id::TIMESTAMP_SCALE {
            scale = read_uint(&value, h.id, at)?;
            if scale == 0 {
                return Err(MkvError::invalid(at, "TimestampScale 0"));
            }
        }
    }
    Ok(scale)
}

fn track_entries(data: &[u8], offset: u64) -> Result<Vec<TrackEntry>, MkvError> {
    let mut out: Vec<TrackEntry> = Vec::new();
    for (h, entry, at) in children(data, offset)? {
        if h.id != id::TRACK_ENTRY {
            continue;
        }
        let mut t = TrackEntry {
            number: 0,
            kind: 0,
            codec_id: String::new(),
            codec_private: Bytes::new(),
            width: 0,
            height: 0,
            sample_rate: 8000.0,
            channels: 1,
            default_duration_ns: None,
        };
        for (h, v, at) in children(&entry, at + h.len as u64)? {
            match h.id {
                id::TRACK_NUMBER => t.number = read_uint(&v, h.id, at)?,
                id::TRACK_TYPE => t.kind = read_uint(&v, h.id, at)?,
                id::CODEC_ID => t.codec_id = read_str(&v),
                id::CODEC_PRIVATE => t.codec_private = v,
                id::DEFAULT_DURATION => t.default_duration_ns = Some(read_uint(&v, h.id, at)?),
                id::VIDEO => {
                    for (h, v, at) in children(&v, at + h.len as u64)? {
                        match h.id {
                            id::PIXEL_WIDTH => t.width = read_uint(&v, h.id, at)?,
                            id::PIXEL_HEIGHT => t.height = read_uint(&v, h.id, at)?,
                            _ => {}
                        }
                    }
                }
                id::AUDIO => {
                    for (h, v, at) in children(&v, at + h.len as u64)? {
                        match h.id {
                            id::SAMPLING_FREQUENCY => t.sample_rate = read_float(&v, h.id, at)?,
                            id::CHANNELS => t.channels = read_uint(&v, h.id, at)?,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if t.number == 0 || t.number > 126 {
            return Err(MkvError::invalid(
                at,
                format!("TrackNumber {} (1–126 are taken)", t.number),
            ));
        }
        if out.iter().any(|o| o.number == t.number) {
            return Err(MkvError::invalid(at, format!("TrackNumber {} appears twice", t.number)));
        }
        out.push(t);
    }
    if out.is_empty() {
        return Err(MkvError::invalid(offset, "Tracks has no TrackEntry"));
    }
    Ok(out)
}

/// A `SimpleBlock` (or a `BlockGroup`'s `Block`, whose keyframe flag is given): track number,
/// 16-bit signed time offset from the Cluster, flags, frame. Laced blocks are refused.
fn block(
    data: Bytes,
    cluster: u64,
    keyframe: Option<bool>,
    offset: u64,
) -> Result<MkvEvent, MkvError> {
    let first = *data.first().ok_or_else(|| MkvError::invalid(offset, "an empty block"))?;
    let len = first.leading_zeros() as usize + 1;
    if first == 0 || len > 8 || data.len() < len + 3 {
        return Err(MkvError::invalid(offset, "a block too short for its header"));
    }
    let rel = i16::from_be_bytes([data[len], data[len + 1]]);
    let flags = data[len + 2];
    if flags & 0x06 != 0 {
        return Err(MkvError::invalid(
            offset,
            "laced blocks are not supported (write one frame per block)",
        ));
    }
    let time = i64::try_from(cluster)
        .map_err(|_| MkvError::invalid(offset, "a Cluster Timestamp beyond 2^63"))?
        .checked_add(i64::from(rel))
        .ok_or_else(|| MkvError::invalid(offset, "a block time beyond 2^63"))?;
    let frame = data.slice(len + 3..);
    if frame.is_empty() {
        return Err(MkvError::invalid(offset, "a block without a frame"));
    }
    Ok(MkvEvent::Block {
        track: vint_value(&data[..len]),
        time,
        keyframe: keyframe.unwrap_or(flags & 0x80 != 0),
        data: frame,
    })
}

/// The value of a complete VINT (its marker bit removed).
fn vint_value(bytes: &[u8]) -> u64 {
    let len = bytes.len();
    let v = bytes.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
    v & ((1u64 << (7 * len)) - 1)
}

/// A `BlockGroup`: its `Block`, a keyframe unless it has a `ReferenceBlock`.
fn block_group(data: Bytes, cluster: u64, offset: u64) -> Result<MkvEvent, MkvError> {
    let mut frame = None;
    let mut referenced = false;
    for (h, v, at) in children(&data, offset)? {
        match h.id {
            id::BLOCK => frame = Some((v, at + h.len as u64)),
            id::REFERENCE_BLOCK => referenced = true,
            _ => {}
        }
    }
    let (v, at) = frame.ok_or_else(|| MkvError::invalid(offset, "a BlockGroup without a Block"))?;
    block(v, cluster, Some(!referenced), at)
}

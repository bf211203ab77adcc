//! The incremental fMP4 reader: push chunks, pull [`Item`]s.
//!
//! Top-level box headers (ISO/IEC 14496-12 §4.2: 32-bit size, type, optional 64-bit
//! largesize) are read by hand, so a box whose declared size exceeds a limit is refused as soon
//! as its header arrives, and an `mdat` is never decoded, only delimited. Incoming chunks are
//! appended to one [`BytesMut`]; a complete init segment or fragment is split off and frozen,
//! so its bytes are copied once, from the chunk into the buffer, and never again.
//!
//! Accepted stream shape: `ftyp`? `moov` (`moof` `mdat`)*, with further `moov`s (new init
//! segments) allowed between fragments, and other top-level boxes (`styp`, `sidx`, `prft`,
//! `emsg`, `free`, `skip`, `mfra`, `udta`, `uuid`, `meta`, …) skipped without buffering them.

use bytes::{Buf, Bytes, BytesMut};
use mp4_atom::Moof;

use super::error::{BoxType, Fmp4Error, HexBytes};
use super::fragment::{decode_moof, summarize};
use super::init::decode_moov;
use super::{Fragment, InitSegment, Item, Limits, TrackFragment, TrackInfo};

/// A parsed top-level box header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BoxHeader {
    pub kind: BoxType,
    /// The whole box, header included.
    pub size: u64,
    /// 8, or 16 with a largesize.
    pub header_len: u64,
}

pub(crate) enum HeaderParse {
    Complete(BoxHeader),
    Incomplete,
}

/// Parses the box header at the start of `bytes`, which is at `offset` in the stream.
pub(crate) fn parse_header(bytes: &[u8], offset: u64) -> Result<HeaderParse, Fmp4Error> {
    let (Some(size), Some(kind)) = (bytes.get(0..4), bytes.get(4..8)) else {
        return Ok(HeaderParse::Incomplete);
    };
    let size32 = u32::from_be_bytes([size[0], size[1], size[2], size[3]]);
    let kind = BoxType([kind[0], kind[1], kind[2], kind[3]]);
    let head = || HexBytes::of(bytes);
    if !kind.is_printable() {
        return Err(Fmp4Error::InvalidBoxType { offset, head: head() });
    }
    let (size, header_len) = match size32 {
        0 => {
            return Err(Fmp4Error::UnboundedBox { offset, kind, head: head() });
        }
        1 => {
            let Some(large) = bytes.get(8..16) else {
                return Ok(HeaderParse::Incomplete);
            };
            let mut be = [0u8; 8];
            be.copy_from_slice(large);
            (u64::from_be_bytes(be), 16)
        }
        n => (u64::from(n), 8),
    };
    if size < header_len {
        return Err(Fmp4Error::InvalidBoxSize {
            offset,
            kind,
            size,
            min: header_len,
            head: head(),
        });
    }
    Ok(HeaderParse::Complete(BoxHeader { kind, size, header_len }))
}

/// What handling a top-level box header achieved.
enum Progress {
    Emit(Item),
    Continue,
    NeedMore,
}

/// Where the reader is in the stream. Unless skipping, the box being read starts at `buf[0]`
/// (for fragments: the moof).
#[derive(Debug)]
enum State {
    /// Expecting a top-level box header.
    Top,
    /// Discarding the rest of a box that is not kept.
    Skip { offset: u64, kind: BoxType, size: u64, remaining: u64 },
    /// A moof header has been seen (and announced); waiting for the whole moof.
    Moof { moof_size: usize },
    /// The moof is decoded; waiting for the mdat header right after it.
    AwaitMdat { moof: Box<Moof>, moof_size: usize },
    /// Waiting for the rest of the mdat.
    Mdat { total: usize, tracks: Vec<TrackFragment> },
    /// The stream is unreadable; the error repeats.
    Failed(Fmp4Error),
}

/// An incremental, sans-I/O reader of a producer's fMP4 stream (see the [module docs](self)).
///
/// ```
/// use bytes::Bytes;
/// use sluice::media::fmp4::{Fmp4Reader, Item, Limits};
///
/// let mut reader = Fmp4Reader::new(Limits::default());
/// reader.push(Bytes::from_static(b"\0\0\0\x10free\0\0\0\0\0\0\0\0"));
/// assert_eq!(reader.next_item(), Ok(None)); // skipped; needs more bytes
/// assert_eq!(reader.position(), 16);
/// assert_eq!(reader.finish(), Ok(()));
/// ```
#[derive(Debug)]
pub struct Fmp4Reader {
    limits: Limits,
    /// Unconsumed bytes; `buf[0]` is at stream position `pos`.
    buf: BytesMut,
    pos: u64,
    state: State,
    /// A complete ftyp waiting for its moov, with its stream position.
    ftyp: Option<(u64, Bytes)>,
    /// The tracks of the latest init segment.
    tracks: Option<Vec<TrackInfo>>,
}

impl Fmp4Reader {
    pub fn new(limits: Limits) -> Self {
        Fmp4Reader {
            limits,
            buf: BytesMut::new(),
            pos: 0,
            state: State::Top,
            ftyp: None,
            tracks: None,
        }
    }

    /// Appends the next bytes of the stream (any chunking, down to single bytes).
    pub fn push(&mut self, chunk: Bytes) {
        if let State::Failed(_) = self.state {
            return;
        }
        self.buf.extend_from_slice(&chunk);
    }

    /// Bytes of the stream consumed so far (emitted as items or skipped); the next unconsumed
    /// byte is at this position. `position() + buffered()` is the number of bytes pushed.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Bytes pushed but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The tracks of the latest init segment, once one has been read.
    pub fn tracks(&self) -> Option<&[TrackInfo]> {
        self.tracks.as_deref()
    }

    /// At the end of the input (after [`next_item`](Self::next_item) returned `Ok(None)`):
    /// `Ok` if the stream ended between boxes, [`Fmp4Error::Truncated`] if it ended inside one.
    /// Every complete fragment before the truncation has already been returned.
    pub fn finish(&self) -> Result<(), Fmp4Error> {
        let received = self.buf.len() as u64;
        let truncated = |kind, declared| {
            Err(Fmp4Error::Truncated { offset: self.pos, kind, received, declared })
        };
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            State::Top if self.buf.is_empty() => Ok(()),
            State::Top => match parse_header(&self.buf, self.pos) {
                Ok(HeaderParse::Complete(h)) => truncated(Some(h.kind), Some(h.size)),
                Ok(HeaderParse::Incomplete) => truncated(None, None),
                Err(e) => Err(e),
            },
            State::Skip { offset, kind, size, remaining } => Err(Fmp4Error::Truncated {
                offset: *offset,
                kind: Some(*kind),
                received: size - remaining,
                declared: Some(*size),
            }),
            State::Moof { .. } | State::AwaitMdat { .. } => truncated(Some(BoxType::MOOF), None),
            State::Mdat { total, .. } => truncated(Some(BoxType::MOOF), Some(*total as u64)),
        }
    }

    /// The next item, `Ok(None)` if more bytes are needed. After an error, the same error is
    /// returned forever.
    pub fn next_item(&mut self) -> Result<Option<Item>, Fmp4Error> {
        match self.step() {
            Err(e) => {
                self.state = State::Failed(e.clone());
                self.buf = BytesMut::new();
                Err(e)
            }
            ok => ok,
        }
    }

    fn step(&mut self) -> Result<Option<Item>, Fmp4Error> {
        loop {
            match &mut self.state {
                State::Failed(e) => return Err(e.clone()),
                State::Skip { remaining, .. } => {
                    let n = usize::try_from(*remaining).unwrap_or(usize::MAX).min(self.buf.len());
                    self.buf.advance(n);
                    self.pos += n as u64;
                    *remaining -= n as u64;
                    if *remaining > 0 {
                        return Ok(None);
                    }
                    self.state = State::Top;
                }
                State::Top => {
                    let header = match parse_header(&self.buf, self.pos)? {
                        HeaderParse::Complete(header) => header,
                        HeaderParse::Incomplete => return Ok(None),
                    };
                    match self.top_level(header)? {
                        Progress::Emit(item) => return Ok(Some(item)),
                        Progress::NeedMore => return Ok(None),
                        Progress::Continue => {}
                    }
                }
                State::Moof { moof_size } => {
                    let moof_size = *moof_size;
                    if self.buf.len() < moof_size {
                        return Ok(None);
                    }
                    let moof = decode_moof(&self.buf[..moof_size], self.pos)?;
                    self.state = State::AwaitMdat { moof: Box::new(moof), moof_size };
                }
                State::AwaitMdat { moof, moof_size } => {
                    let moof_size = *moof_size;
                    let at = self.pos + moof_size as u64;
                    let rest = &self.buf[moof_size..];
                    let header = match parse_header(rest, at)? {
                        HeaderParse::Complete(header) => header,
                        HeaderParse::Incomplete => return Ok(None),
                    };
                    if header.kind != BoxType::MDAT {
                        return Err(Fmp4Error::UnexpectedBox {
                            offset: at,
                            kind: header.kind,
                            expected: "a moof must be followed directly by its mdat",
                            head: HexBytes::of(rest),
                        });
                    }
                    let total = (moof_size as u64).saturating_add(header.size);
                    let total = fragment_size(&self.limits, self.pos, total, "moof + mdat")?;
                    let payload = moof_size as u64 + header.header_len..total as u64;
                    let tracks = self.tracks.as_deref().unwrap_or_default();
                    let tracks = summarize(moof, self.pos, payload, tracks)?;
                    // Grow the buffer once to the fragment's size (at most the limit), so the
                    // frozen fragment does not pin a doubled allocation.
                    self.buf.reserve(total.saturating_sub(self.buf.len()));
                    self.state = State::Mdat { total, tracks };
                }
                State::Mdat { total, tracks } => {
                    if self.buf.len() < *total {
                        return Ok(None);
                    }
                    let fragment = Fragment {
                        bytes: self.buf.split_to(*total).freeze(),
                        offset: self.pos,
                        tracks: std::mem::take(tracks),
                    };
                    self.pos += *total as u64;
                    self.state = State::Top;
                    return Ok(Some(Item::Fragment(fragment)));
                }
            }
        }
    }

    /// Handles a top-level box whose header is complete (in state `Top`).
    fn top_level(&mut self, header: BoxHeader) -> Result<Progress, Fmp4Error> {
        let offset = self.pos;
        match header.kind {
            BoxType::FTYP => {
                let size = self.init_size(header.size)?;
                if self.buf.len() < size {
                    return Ok(Progress::NeedMore);
                }
                self.ftyp = Some((offset, self.buf.split_to(size).freeze()));
                self.pos += size as u64;
                Ok(Progress::Continue)
            }
            BoxType::MOOV => {
                let ftyp_len = self.ftyp.as_ref().map_or(0, |(_, f)| f.len());
                let init_size = header.size.saturating_add(ftyp_len as u64);
                let size = self.init_size(init_size)? - ftyp_len;
                if self.buf.len() < size {
                    return Ok(Progress::NeedMore);
                }
                let tracks = decode_moov(&self.buf[..size], offset)?;
                let moov = self.buf.split_to(size).freeze();
                self.pos += size as u64;
                let bytes = match self.ftyp.take() {
                    None => moov,
                    Some((_, ftyp)) => {
                        let mut init = BytesMut::with_capacity(ftyp.len() + moov.len());
                        init.extend_from_slice(&ftyp);
                        init.extend_from_slice(&moov);
                        init.freeze()
                    }
                };
                self.tracks = Some(tracks.clone());
                Ok(Progress::Emit(Item::Init(InitSegment { bytes, tracks })))
            }
            BoxType::MOOF => {
                if self.tracks.is_none() {
                    return Err(Fmp4Error::MissingInit { offset });
                }
                let moof_size = fragment_size(&self.limits, offset, header.size, "moof alone")?;
                // An ftyp not followed by a moov is not part of any init segment.
                self.ftyp = None;
                self.state = State::Moof { moof_size };
                Ok(Progress::Emit(Item::FragmentStarted { offset }))
            }
            BoxType::MDAT => Err(Fmp4Error::UnexpectedBox {
                offset,
                kind: header.kind,
                expected: "an mdat must directly follow its moof (is this a non-fragmented \
                           MP4? ffmpeg: -movflags frag_keyframe+empty_moov+default_base_moof)",
                head: HexBytes::of(&self.buf),
            }),
            kind => {
                if header.size > self.limits.max_fragment_bytes {
                    return Err(Fmp4Error::BoxTooLarge {
                        offset,
                        kind,
                        size: header.size,
                        limit: self.limits.max_fragment_bytes,
                        head: HexBytes::of(&self.buf),
                    });
                }
                self.state =
                    State::Skip { offset, kind, size: header.size, remaining: header.size };
                Ok(Progress::Continue)
            }
        }
    }

    /// Checks the declared size of the init segment (ftyp + moov) against the limit.
    fn init_size(&self, size: u64) -> Result<usize, Fmp4Error> {
        let offset = self.ftyp.as_ref().map_or(self.pos, |(at, _)| *at);
        match usize::try_from(size) {
            Ok(n) if size <= self.limits.max_init_bytes => Ok(n),
            _ => Err(Fmp4Error::InitTooLarge { offset, size, limit: self.limits.max_init_bytes }),
        }
    }
}

/// Checks the declared size of (part of) the fragment at `offset` against the limit.
fn fragment_size(
    limits: &Limits,
    offset: u64,
    size: u64,
    what: &'static str,
) -> Result<usize, Fmp4Error> {
    match usize::try_from(size) {
        Ok(n) if size <= limits.max_fragment_bytes => Ok(n),
        _ => Err(Fmp4Error::FragmentTooLarge {
            offset,
            size,
            limit: limits.max_fragment_bytes,
            what,
        }),
    }
}

//! The errors of the fMP4 reader: each names the byte offset in the producer's stream, the box
//! type when known, and the first bytes of the offending box as hex, because the message goes
//! back to the producer (the ERROR acknowledgement of the ingest) and must let them find the
//! problem in their own output.

use std::fmt;

/// A box type (four-character code), displayed as text with non-printable bytes escaped.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BoxType(pub [u8; 4]);

impl BoxType {
    pub(crate) const FTYP: BoxType = BoxType(*b"ftyp");
    pub(crate) const MOOV: BoxType = BoxType(*b"moov");
    pub(crate) const MOOF: BoxType = BoxType(*b"moof");
    pub(crate) const MDAT: BoxType = BoxType(*b"mdat");

    /// Whether all four bytes are printable ASCII, as every registered box type is.
    pub fn is_printable(&self) -> bool {
        self.0.iter().all(|b| (0x20..0x7f).contains(b))
    }
}

impl fmt::Display for BoxType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::media::codec::printable_fourcc(&self.0))
    }
}

impl fmt::Debug for BoxType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BoxType({self})")
    }
}

/// Up to the first [`HexBytes::MAX`] bytes of a box, shown as space-separated hex.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct HexBytes(Vec<u8>);

impl HexBytes {
    /// How many bytes an error quotes.
    pub const MAX: usize = 16;

    /// Quotes the start of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        HexBytes(bytes[..bytes.len().min(Self::MAX)].to_vec())
    }

    /// The quoted bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HexBytes({self})")
    }
}

/// Why a producer's fMP4 stream cannot be read. Offsets are byte positions in the stream as
/// pushed (for [`super::samples`], positions within the fragment bytes).
///
/// After an error the stream cannot be resynchronised: an [`super::Fmp4Reader`] keeps returning
/// the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fmp4Error {
    /// The bytes where a box header should start do not have a printable four-character type.
    #[error(
        "not an MP4 box at byte {offset}: the box type is not four printable ASCII characters \
         (first bytes: {head})"
    )]
    InvalidBoxType { offset: u64, head: HexBytes },

    /// A box header declares a size smaller than the header itself.
    #[error(
        "'{kind}' box at byte {offset} declares a size of {size} bytes, less than its \
         {min}-byte header (first bytes: {head})"
    )]
    InvalidBoxSize { offset: u64, kind: BoxType, size: u64, min: u64, head: HexBytes },

    /// A box header has size 0 ("extends to the end of the file"), which has no end in a live
    /// stream.
    #[error(
        "'{kind}' box at byte {offset} has size 0 (\"extends to end of file\"), which a live \
         stream cannot use: write fragmented MP4 (ffmpeg: -movflags \
         frag_keyframe+empty_moov+default_base_moof) (first bytes: {head})"
    )]
    UnboundedBox { offset: u64, kind: BoxType, head: HexBytes },

    /// A fragment (moof + mdat) declares more bytes than the configured limit.
    #[error(
        "fragment at byte {offset} declares {size} bytes ({what}), over the limit of {limit} \
         bytes: make fragments shorter"
    )]
    FragmentTooLarge { offset: u64, size: u64, limit: u64, what: &'static str },

    /// A top-level box that is skipped declares more bytes than a fragment may have: the
    /// stream is most likely not MP4 at all.
    #[error(
        "'{kind}' box at byte {offset} declares {size} bytes, more than the {limit} bytes any \
         top-level box may have: is this an MP4 stream? (first bytes: {head})"
    )]
    BoxTooLarge { offset: u64, kind: BoxType, size: u64, limit: u64, head: HexBytes },

    /// The init segment (ftyp + moov) declares more bytes than the configured limit.
    #[error("init segment at byte {offset} declares {size} bytes, over the limit of {limit} bytes")]
    InitTooLarge { offset: u64, size: u64, limit: u64 },

    /// A moof arrived before any moov: the stream must start with its init segment.
    #[error(
        "moof at byte {offset} arrived before any moov: the stream must start with its init \
         segment (ftyp + moov)"
    )]
    MissingInit { offset: u64 },

    /// A top-level box appeared where it is not allowed (an mdat without its moof, or anything
    /// but an mdat right after a moof).
    #[error("unexpected '{kind}' box at byte {offset}: {expected} (first bytes: {head})")]
    UnexpectedBox { offset: u64, kind: BoxType, expected: &'static str, head: HexBytes },

    /// mp4-atom could not decode a moov or moof.
    #[error("cannot decode the '{kind}' box at byte {offset}: {reason} (first bytes: {head})")]
    Decode { offset: u64, kind: BoxType, reason: String, head: HexBytes },

    /// A moov or moof decodes but its content is unusable (missing tfdt, unknown track, sample
    /// data outside the mdat, …).
    #[error("invalid '{kind}' box at byte {offset}: {reason}")]
    Invalid { offset: u64, kind: BoxType, reason: String },

    /// The input ended inside a box.
    #[error(
        "stream ended inside {} at byte {offset}: {received} of {} bytes received",
        describe_truncated(.kind),
        .declared.map_or_else(|| "at least 8".to_owned(), |d| d.to_string())
    )]
    Truncated { offset: u64, kind: Option<BoxType>, received: u64, declared: Option<u64> },
}

fn describe_truncated(kind: &Option<BoxType>) -> String {
    match kind {
        Some(kind) if *kind == BoxType::MOOF => "the fragment (moof + mdat) starting".to_owned(),
        Some(kind) => format!("the '{kind}' box"),
        None => "a box header".to_owned(),
    }
}

impl Fmp4Error {
    /// The byte offset the error points at.
    pub fn offset(&self) -> u64 {
        match self {
            Fmp4Error::InvalidBoxType { offset, .. }
            | Fmp4Error::InvalidBoxSize { offset, .. }
            | Fmp4Error::UnboundedBox { offset, .. }
            | Fmp4Error::FragmentTooLarge { offset, .. }
            | Fmp4Error::BoxTooLarge { offset, .. }
            | Fmp4Error::InitTooLarge { offset, .. }
            | Fmp4Error::MissingInit { offset }
            | Fmp4Error::UnexpectedBox { offset, .. }
            | Fmp4Error::Decode { offset, .. }
            | Fmp4Error::Invalid { offset, .. }
            | Fmp4Error::Truncated { offset, .. } => *offset,
        }
    }

    /// The box type the error is about, when known.
    pub fn box_type(&self) -> Option<BoxType> {
        match self {
            Fmp4Error::InvalidBoxSize { kind, .. }
            | Fmp4Error::BoxTooLarge { kind, .. }
            | Fmp4Error::UnboundedBox { kind, .. }
            | Fmp4Error::UnexpectedBox { kind, .. }
            | Fmp4Error::Decode { kind, .. }
            | Fmp4Error::Invalid { kind, .. } => Some(*kind),
            Fmp4Error::FragmentTooLarge { .. } | Fmp4Error::MissingInit { .. } => {
                Some(BoxType::MOOF)
            }
            Fmp4Error::Truncated { kind, .. } => *kind,
            Fmp4Error::InvalidBoxType { .. } | Fmp4Error::InitTooLarge { .. } => None,
        }
    }

    pub(crate) fn invalid(offset: u64, kind: BoxType, reason: impl Into<String>) -> Self {
        Fmp4Error::Invalid { offset, kind, reason: reason.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_offset_type_and_bytes() {
        let e = Fmp4Error::InvalidBoxType {
            offset: 1234,
            head: HexBytes::of(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]),
        };
        assert_eq!(
            e.to_string(),
            "not an MP4 box at byte 1234: the box type is not four printable ASCII characters \
             (first bytes: de ad be ef 00 01 02 03)"
        );
        let e = Fmp4Error::Truncated {
            offset: 10,
            kind: Some(BoxType::MOOF),
            received: 5,
            declared: Some(100),
        };
        assert_eq!(
            e.to_string(),
            "stream ended inside the fragment (moof + mdat) starting at byte 10: 5 of 100 bytes \
             received"
        );
        let e = Fmp4Error::Truncated { offset: 10, kind: None, received: 3, declared: None };
        assert_eq!(
            e.to_string(),
            "stream ended inside a box header at byte 10: 3 of at least 8 bytes received"
        );
        assert_eq!(HexBytes::of(&[7; 40]).as_bytes().len(), 16);
    }
}

//! EBML (RFC 8794) element encoding: the variable-size integers of element sizes (§4), and
//! elements of the types Matroska uses (unsigned and signed integers, floats, strings, binary,
//! masters). Writers append to a `Vec<u8>`; a master's size is known once its children are built,
//! so masters are written from their encoded body. Pure: no I/O.

/// The largest size an 8-byte VINT carries (all ones is reserved for "unknown").
pub const MAX_SIZE: u64 = (1 << 56) - 2;

/// Appends `size` as the shortest VINT that holds it (RFC 8794 §4.1); a value whose shortest
/// form would be all ones takes one byte more, since all ones means "unknown size".
pub fn put_size(out: &mut Vec<u8>, size: u64) {
    let mut len = 1;
    while len < 8 && size >= (1u64 << (7 * len)) - 1 {
        len += 1;
    }
    put_size_len(out, size, len);
}

/// Appends `size` as a VINT of exactly `len` bytes (1–8); `size` must fit.
pub fn put_size_len(out: &mut Vec<u8>, size: u64, len: usize) {
    debug_assert!((1..=8).contains(&len) && size < (1u64 << (7 * len)) - 1);
    let marked = size | (1u64 << (7 * len));
    out.extend_from_slice(&marked.to_be_bytes()[8 - len..]);
}

/// The unknown size of a master whose end is not known when it starts (RFC 8794 §6.2).
pub const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// Appends an element ID: IDs are written with their marker bits, as the specifications list
/// them (`0x1A45DFA3`), in as many bytes as they have.
pub fn put_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// An element header: ID and size.
pub fn put_header(out: &mut Vec<u8>, id: u32, size: u64) {
    put_id(out, id);
    put_size(out, size);
}

/// An unsigned integer element, in the fewest bytes (0 is one zero byte).
pub fn put_uint(out: &mut Vec<u8>, id: u32, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    put_header(out, id, (8 - skip) as u64);
    out.extend_from_slice(&bytes[skip..]);
}

/// A 64-bit float element.
pub fn put_float(out: &mut Vec<u8>, id: u32, v: f64) {
    put_header(out, id, 8);
    out.extend_from_slice(&v.to_be_bytes());
}

/// A string (ASCII or UTF-8) element.
pub fn put_str(out: &mut Vec<u8>, id: u32, v: &str) {
    put_bytes(out, id, v.as_bytes());
}

/// A binary element.
pub fn put_bytes(out: &mut Vec<u8>, id: u32, v: &[u8]) {
    put_header(out, id, v.len() as u64);
    out.extend_from_slice(v);
}

/// A master element around `body` (its encoded children).
pub fn put_master(out: &mut Vec<u8>, id: u32, body: &[u8]) {
    put_bytes(out, id, body);
}

/// Builds a master's body with `f` and appends the master.
pub fn master(out: &mut Vec<u8>, id: u32, f: impl FnOnce(&mut Vec<u8>)) {
    let mut body = Vec::new();
    f(&mut body);
    put_master(out, id, &body);
}

/// Why bytes are not EBML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EbmlError {
    #[error("byte {offset}: a variable-size integer cannot start with 0x00")]
    BadVint { offset: u64 },
    #[error("byte {offset}: an element ID longer than 4 bytes")]
    LongId { offset: u64 },
    #[error("byte {offset}: element {id:#X} of {size} bytes, more than its type allows ({max})")]
    TooLong { offset: u64, id: u32, size: u64, max: u64 },
}

/// An element's header: its ID (with marker bits), its data size (`None`: unknown), and the
/// header's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u32,
    pub size: Option<u64>,
    pub len: usize,
}

/// The VINT at the start of `buf`: its length in bytes and its value with the marker removed;
/// `Ok(None)` when `buf` ends before it does. `offset` is `buf`'s position, for errors.
fn vint(buf: &[u8], offset: u64) -> Result<Option<(usize, u64)>, EbmlError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    if first == 0 {
        return Err(EbmlError::BadVint { offset });
    }
    let len = first.leading_zeros() as usize + 1;
    let Some(bytes) = buf.get(..len) else { return Ok(None) };
    let mut v = u64::from(first) & (0xFF >> len);
    for &b in &bytes[1..] {
        v = (v << 8) | u64::from(b);
    }
    Ok(Some((len, v)))
}

/// The element header at the start of `buf` (`Ok(None)`: more bytes needed). `offset` is `buf`'s
/// position in the stream, for errors.
pub fn read_header(buf: &[u8], offset: u64) -> Result<Option<Header>, EbmlError> {
    let Some((id_len, _)) = vint(buf, offset)? else { return Ok(None) };
    if id_len > 4 {
        return Err(EbmlError::LongId { offset });
    }
    let id = buf[..id_len].iter().fold(0u32, |a, &b| (a << 8) | u32::from(b));
    let Some((size_len, size)) = vint(&buf[id_len..], offset + id_len as u64)? else {
        return Ok(None);
    };
    let unknown = size == (1u64 << (7 * size_len)) - 1;
    Ok(Some(Header { id, size: (!unknown).then_some(size), len: id_len + size_len }))
}

/// An unsigned integer element's value (0–8 bytes, big-endian).
pub fn read_uint(data: &[u8], id: u32, offset: u64) -> Result<u64, EbmlError> {
    if data.len() > 8 {
        return Err(EbmlError::TooLong { offset, id, size: data.len() as u64, max: 8 });
    }
    Ok(data.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
}

/// A float element's value (0, 4 or 8 bytes).
pub fn read_float(data: &[u8], id: u32, offset: u64) -> Result<f64, EbmlError> {
    match data.len() {
        0 => Ok(0.0),
        4 => Ok(f64::from(f32::from_be_bytes(data.try_into().expect("4 bytes")))),
        8 => Ok(f64::from_be_bytes(data.try_into().expect("8 bytes"))),
        n => Err(EbmlError::TooLong { offset, id, size: n as u64, max: 8 }),
    }
}

/// A string element's value: up to the first zero byte (EBML pads strings with zeros).
pub fn read_str(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_the_shortest_form_that_is_not_all_ones() {
        let enc = |v: u64| {
            let mut out = Vec::new();
            put_size(&mut out, v);
            out
        };
        assert_eq!(enc(0), [0x80]);
        assert_eq!(enc(126), [0xFE]);
        // 127 in one byte would be all ones ("unknown"): two bytes.
        assert_eq!(enc(127), [0x40, 0x7F]);
        assert_eq!(enc(16_382), [0x7F, 0xFE]);
        assert_eq!(enc(16_383), [0x20, 0x3F, 0xFF]);
        assert_eq!(enc(MAX_SIZE).len(), 8);
        for v in [0, 1, 126, 127, 128, 16_383, 1 << 20, 1 << 40, MAX_SIZE] {
            let mut buf = Vec::new();
            put_header(&mut buf, 0x1F43_B675, v);
            let h = read_header(&buf, 0).unwrap().unwrap();
            assert_eq!((h.id, h.size, h.len), (0x1F43_B675, Some(v), buf.len()), "{v}");
        }
    }

    #[test]
    fn ids_keep_their_width_and_unknown_sizes_read_as_none() {
        let mut out = Vec::new();
        put_id(&mut out, 0xA3);
        put_id(&mut out, 0x4286);
        put_id(&mut out, 0x2AD7B1);
        put_id(&mut out, 0x1A45_DFA3);
        assert_eq!(out, [0xA3, 0x42, 0x86, 0x2A, 0xD7, 0xB1, 0x1A, 0x45, 0xDF, 0xA3]);
        let mut seg = vec![0x18, 0x53, 0x80, 0x67];
        seg.extend_from_slice(&UNKNOWN_SIZE);
        let h = read_header(&seg, 0).unwrap().unwrap();
        assert_eq!((h.id, h.size, h.len), (0x1853_8067, None, 12));
        // An ID whose size has not arrived yet.
        assert_eq!(read_header(&[0xFF], 0), Ok(None));
    }

    #[test]
    fn truncated_and_invalid_headers() {
        assert_eq!(read_header(&[], 0), Ok(None));
        assert_eq!(read_header(&[0x1A, 0x45], 0), Ok(None));
        assert_eq!(read_header(&[0xA3], 0), Ok(None));
        assert_eq!(read_header(&[0x00, 0x81], 7), Err(EbmlError::BadVint { offset: 7 }));
        assert_eq!(read_header(&[0xA3, 0x00], 0), Err(EbmlError::BadVint { offset: 1 }));
        assert_eq!(read_header(&[0x08, 1, 2, 3, 4, 0x81], 0), Err(EbmlError::LongId { offset: 0 }));
    }

    #[test]
    fn values_round_trip() {
        for v in [0u64, 1, 255, 256, 1_000_000, u64::MAX] {
            let mut out = Vec::new();
            put_uint(&mut out, 0xE7, v);
            let h = read_header(&out, 0).unwrap().unwrap();
            assert_eq!(read_uint(&out[h.len..], 0xE7, 0), Ok(v));
        }
        let mut out = Vec::new();
        put_float(&mut out, 0xB5, 48_000.0);
        assert_eq!(read_float(&out[2..], 0xB5, 0), Ok(48_000.0));
        assert_eq!(read_float(&44_100f32.to_be_bytes(), 0xB5, 0), Ok(44_100.0));
        assert!(read_float(&[0; 3], 0xB5, 0).is_err());
        assert!(read_uint(&[0; 9], 0xE7, 0).is_err());
        assert_eq!(read_str(b"A_AAC\0\0"), "A_AAC");
    }
}

//! Object bodies: records compressed as they arrive, in the format the destination asks for —
//! gzip, Snappy's framing format, Hadoop's Snappy blocks, a ZIP archive of one entry, or zstd
//! (a Sluice extension). Writing into memory cannot fail, so the writers' I/O results are not
//! errors here. (Parquet objects are `super::convert`'s.)

use std::io::Write;

use super::spec::Compression;

/// Hadoop's Snappy codec compresses in blocks of this many bytes (its default buffer size).
const HADOOP_SNAPPY_BLOCK: usize = 256 * 1024;

/// `data` in Hadoop's block format of Snappy: per block, the uncompressed length (u32, big
/// endian), then the compressed length and the raw Snappy block.
pub fn hadoop_snappy(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 2 + 16);
    let mut encoder = snap::raw::Encoder::new();
    for block in data.chunks(HADOOP_SNAPPY_BLOCK) {
        let compressed = encoder.compress_vec(block).unwrap_or_default();
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
        out.extend_from_slice(&compressed);
    }
    out
}

/// `data` as a ZIP archive holding one deflated entry called `entry`.
pub fn zip_of(entry: &str, data: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::with_capacity(data.len() / 3)));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(data.len() as u64 >= u32::MAX as u64);
    let written = zip.start_file(entry, options).and_then(|()| Ok(zip.write_all(data)?));
    if let Err(e) = written {
        tracing::error!(error = %e, "writing a ZIP archive in memory");
    }
    zip.finish().map(std::io::Cursor::into_inner).unwrap_or_default()
}

/// One object's body as it is filled.
pub enum Encoder {
    Plain(Vec<u8>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Snappy(Box<snap::write::FrameEncoder<Vec<u8>>>),
    Zstd(Box<zstd::stream::write::Encoder<'static, Vec<u8>>>),
    /// Hadoop's block format and ZIP are written whole at the end, from the plain bytes.
    HadoopSnappy(Vec<u8>),
    Zip(Vec<u8>),
}

impl Encoder {
    pub fn new(c: Compression) -> Encoder {
        match c {
            Compression::Uncompressed => Encoder::Plain(Vec::new()),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::fast(),
            )),
            Compression::Snappy => {
                Encoder::Snappy(Box::new(snap::write::FrameEncoder::new(Vec::new())))
            }
            Compression::HadoopSnappy => Encoder::HadoopSnappy(Vec::new()),
            Compression::Zip => Encoder::Zip(Vec::new()),
            Compression::Zstd => match zstd::stream::write::Encoder::new(Vec::new(), 3) {
                Ok(z) => Encoder::Zstd(Box::new(z)),
                // Only an allocation failure in the zstd context: keep the records plain.
                Err(_) => Encoder::Plain(Vec::new()),
            },
        }
    }

    pub fn write(&mut self, data: &[u8]) {
        match self {
            Encoder::Plain(v) | Encoder::HadoopSnappy(v) | Encoder::Zip(v) => {
                v.extend_from_slice(data)
            }
            Encoder::Snappy(f) => {
                let _ = f.write_all(data);
            }
            Encoder::Gzip(g) => {
                let _ = g.write_all(data);
            }
            Encoder::Zstd(z) => {
                let _ = z.write_all(data);
            }
        }
    }

    /// The finished body; `entry` names a ZIP archive's one entry.
    pub fn finish(self, entry: &str) -> Vec<u8> {
        match self {
            Encoder::Plain(v) => v,
            Encoder::Gzip(g) => g.finish().unwrap_or_default(),
            Encoder::Snappy(f) => f.into_inner().unwrap_or_default(),
            Encoder::Zstd(z) => z.finish().unwrap_or_default(),
            Encoder::HadoopSnappy(v) => hadoop_snappy(&v),
            Encoder::Zip(v) => zip_of(entry, &v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compression_reads_back() {
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for c in [
            Compression::Uncompressed,
            Compression::Gzip,
            Compression::Snappy,
            Compression::HadoopSnappy,
            Compression::Zip,
            Compression::Zstd,
        ] {
            let mut e = Encoder::new(c);
            e.write(&data[..1000]);
            e.write(&data[1000..]);
            let body = e.finish("entry");
            let back = match c {
                Compression::Uncompressed => body.clone(),
                Compression::Gzip => {
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(
                        &mut flate2::read::GzDecoder::new(&body[..]),
                        &mut out,
                    )
                    .unwrap();
                    out
                }
                Compression::Snappy => {
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(
                        &mut snap::read::FrameDecoder::new(&body[..]),
                        &mut out,
                    )
                    .unwrap();
                    out
                }
                Compression::HadoopSnappy => {
                    let (mut out, mut at) = (Vec::new(), 0);
                    while at < body.len() {
                        let n =
                            u32::from_be_bytes(body[at + 4..at + 8].try_into().unwrap()) as usize;
                        out.extend(
                            snap::raw::Decoder::new()
                                .decompress_vec(&body[at + 8..at + 8 + n])
                                .unwrap(),
                        );
                        at += 8 + n;
                    }
                    out
                }
                Compression::Zip => {
                    let mut z = zip::ZipArchive::new(std::io::Cursor::new(&body)).unwrap();
                    assert_eq!(z.len(), 1);
                    let mut f = z.by_index(0).unwrap();
                    assert_eq!(f.name().unwrap(), "entry");
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(&mut f, &mut out).unwrap();
                    out
                }
                Compression::Zstd => zstd::stream::decode_all(&body[..]).unwrap(),
            };
            assert_eq!(back, data, "{c:?}");
        }
    }
}

//! One segment: a `.log` file of record frames and its dense `.idx` file, both named by the
//! segment's first offset (`{base:020}.log`, `{base:020}.idx`).
//!
//! This module owns positioned I/O on the two files (pread/pwrite, so readers never share a file
//! cursor with the writer), the binary search over a sealed segment's index *on disk* (so a long
//! history does not live in RAM), and reading and verifying one record. The byte layout is in
//! [`super::format`]; which segments exist and which records are visible is decided in
//! [`super`] (`State`); the writer that appends to the active segment is in [`super::write`].
//!
//! Segment files are held as `Arc<SegmentFiles>`: retention removes a segment from the in-memory
//! list and then unlinks its files, and a reader that cloned the `Arc` before that still reads
//! through its open descriptors.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::buf::ReadBuf;
use super::format::{
    self, FILE_HEADER_LEN, FRAME_HEADER_LEN, IDX_MAGIC, INDEX_ENTRY_LEN, LOG_MAGIC, Slot,
};
use super::{IndexEntry, LogError, Offset, Record, TimeKey};
use crate::clock::Timestamp;

/// File name of the `.log` file of the segment starting at `base`.
pub(super) fn log_path(dir: &Path, base: Offset) -> PathBuf {
    dir.join(format!("{:020}.log", base.0))
}

/// File name of the `.idx` file of the segment starting at `base`.
pub(super) fn idx_path(dir: &Path, base: Offset) -> PathBuf {
    dir.join(format!("{:020}.idx", base.0))
}

/// Parses `{base:020}.log` into its base offset.
pub(super) fn parse_log_name(name: &str) -> Option<Offset> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Offset)
}

/// Builds the error for an I/O failure on `path`.
pub(super) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LogError {
    let path = path.to_path_buf();
    move |source| LogError::Io { op, path, source }
}

/// Opens `dir` and fsyncs it, so that file creations and unlinks in it are durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync directory", dir))
}

/// A segment's `.log`: the local file, or (tiered, `super::tier`) its object in the bucket.
#[derive(Debug)]
pub(super) enum LogBody {
    Local(File),
    Remote(RemoteLog),
}

/// A `.log` in the bucket, read by byte range.
#[derive(Debug)]
pub(super) struct RemoteLog {
    pub tier: std::sync::Arc<dyn super::tier::Tier>,
    pub key: String,
    pub len: u64,
}

impl LogBody {
    /// The local file; writes and recovery only ever touch local segments.
    pub fn file(&self) -> io::Result<&File> {
        match self {
            LogBody::Local(f) => Ok(f),
            LogBody::Remote(r) => {
                Err(io::Error::other(format!("segment {} is in the bucket", r.key)))
            }
        }
    }

    pub fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        match self {
            LogBody::Local(f) => f.read_exact_at(buf, pos),
            LogBody::Remote(r) => {
                let end = pos + buf.len() as u64;
                if end > r.len {
                    return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
                }
                let got = r.tier.read_range(&r.key, pos..end)?;
                if got.len() != buf.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} gave {} bytes of {pos}..{end}", r.key, got.len()),
                    ));
                }
                buf.copy_from_slice(&got);
                Ok(())
            }
        }
    }

    pub fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.file()?.write_all_at(buf, pos)
    }

    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.file()?.set_len(len)
    }

    pub fn sync_data(&self) -> io::Result<()> {
        match self {
            LogBody::Local(f) => f.sync_data(),
            LogBody::Remote(_) => Ok(()),
        }
    }
}

/// The two open files of one segment.
#[derive(Debug)]
pub(super) struct SegmentFiles {
    pub base: Offset,
    pub log: LogBody,
    pub idx: File,
    pub log_path: PathBuf,
    pub idx_path: PathBuf,
    /// Set once the segment is in the bucket (`super::tier`).
    pub tiered: std::sync::Mutex<Option<super::tier::Marker>>,
}

/// The base offset a spare segment's headers name until it is promoted (no real segment starts
/// there: offsets never reach it).
pub(super) const SPARE_BASE: Offset = Offset(u64::MAX);

/// File names of the spare segment (see [`SegmentFiles::create_spare`]).
pub(super) const SPARE_LOG: &str = "spare.log";
pub(super) const SPARE_IDX: &str = "spare.idx";

impl SegmentFiles {
    /// Creates both files of a new, empty segment, writes their headers and fsyncs them. The
    /// caller fsyncs the directory.
    pub fn create(dir: &Path, base: Offset) -> Result<SegmentFiles, LogError> {
        Self::create_at(log_path(dir, base), idx_path(dir, base), base)
    }

    /// Creates the spare: both files of the next segment, made ahead of need (off the append
    /// path) under temporary names, their headers naming [`SPARE_BASE`], fsynced with the
    /// directory. A rollover then only renames it ([`SegmentFiles::promote`]). Recovery removes a
    /// spare it finds.
    pub fn create_spare(dir: &Path) -> Result<SegmentFiles, LogError> {
        let files = Self::create_at(dir.join(SPARE_LOG), dir.join(SPARE_IDX), SPARE_BASE)?;
        sync_dir(dir)?;
        Ok(files)
    }

    /// Makes the spare the segment starting at `base`: headers naming `base`, then the segment's
    /// file names (the index first, as `create` does). The caller fsyncs the directory. Until the
    /// files' next fdatasync the `.log` header may still read as a spare's on disk; recovery
    /// rewrites it (only the newest segment can be in that state: a segment is fdatasynced when
    /// it is sealed).
    pub fn promote(self, dir: &Path, base: Offset) -> Result<SegmentFiles, LogError> {
        let (log_path, idx_path) = (log_path(dir, base), idx_path(dir, base));
        self.idx
            .write_all_at(&format::encode_file_header(IDX_MAGIC, base), 0)
            .map_err(io_err("write header", &self.idx_path))?;
        self.log
            .write_all_at(&format::encode_file_header(LOG_MAGIC, base), 0)
            .map_err(io_err("write header", &self.log_path))?;
        std::fs::rename(&self.idx_path, &idx_path).map_err(io_err("rename", &idx_path))?;
        std::fs::rename(&self.log_path, &log_path).map_err(io_err("rename", &log_path))?;
        let LogBody::Local(log) = self.log else {
            return Err(io_err("promote", &log_path)(io::Error::other("a spare is always local")));
        };
        Ok(SegmentFiles::local(base, log, self.idx, log_path, idx_path))
    }

    fn create_at(
        log_path: PathBuf,
        idx_path: PathBuf,
        base: Offset,
    ) -> Result<SegmentFiles, LogError> {
        let create = |path: &Path, magic| -> Result<File, LogError> {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .map_err(io_err("create", path))?;
            f.write_all_at(&format::encode_file_header(magic, base), 0)
                .map_err(io_err("write header", path))?;
            f.sync_all().map_err(io_err("fsync", path))?;
            Ok(f)
        };
        // The index first: recovery treats a `.log` without a valid `.idx` as "rebuild the
        // index", while an `.idx` without a `.log` is simply ignored and removed.
        let idx = create(&idx_path, IDX_MAGIC)?;
        let log = create(&log_path, LOG_MAGIC)?;
        Ok(SegmentFiles::local(base, log, idx, log_path, idx_path))
    }

    /// Opens the files of an existing segment for reading and writing. A missing `.idx` is
    /// created empty (recovery then rebuilds it from the `.log`).
    pub fn open(dir: &Path, base: Offset) -> Result<SegmentFiles, LogError> {
        let log_path = log_path(dir, base);
        let idx_path = idx_path(dir, base);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(io_err("open", &log_path))?;
        let idx = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&idx_path)
            .map_err(io_err("open", &idx_path))?;
        Ok(SegmentFiles::local(base, log, idx, log_path, idx_path))
    }

    fn local(
        base: Offset,
        log: File,
        idx: File,
        log_path: PathBuf,
        idx_path: PathBuf,
    ) -> SegmentFiles {
        SegmentFiles {
            base,
            log: LogBody::Local(log),
            idx,
            log_path,
            idx_path,
            tiered: std::sync::Mutex::new(None),
        }
    }

    /// Opens an evicted segment: its local `.idx`, and its `.log` in the bucket as `marker` says.
    pub fn open_remote(
        dir: &Path,
        base: Offset,
        marker: super::tier::Marker,
        tier: std::sync::Arc<dyn super::tier::Tier>,
    ) -> Result<SegmentFiles, LogError> {
        let idx_path = idx_path(dir, base);
        let idx =
            OpenOptions::new().read(true).open(&idx_path).map_err(io_err("open", &idx_path))?;
        let log = LogBody::Remote(RemoteLog { tier, key: marker.key.clone(), len: marker.log_len });
        Ok(SegmentFiles {
            base,
            log,
            idx,
            log_path: log_path(dir, base),
            idx_path,
            tiered: std::sync::Mutex::new(Some(marker)),
        })
    }

    /// The same segment with its `.log` in the bucket (eviction).
    pub fn to_remote(
        &self,
        tier: std::sync::Arc<dyn super::tier::Tier>,
        marker: super::tier::Marker,
    ) -> Result<SegmentFiles, LogError> {
        let idx = self.idx.try_clone().map_err(io_err("open", &self.idx_path))?;
        let log = LogBody::Remote(RemoteLog { tier, key: marker.key.clone(), len: marker.log_len });
        Ok(SegmentFiles {
            base: self.base,
            log,
            idx,
            log_path: self.log_path.clone(),
            idx_path: self.idx_path.clone(),
            tiered: std::sync::Mutex::new(Some(marker)),
        })
    }

    pub fn is_remote(&self) -> bool {
        matches!(self.log, LogBody::Remote(_))
    }

    pub fn marker(&self) -> Option<super::tier::Marker> {
        self.tiered.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn uploaded(&self) -> bool {
        self.marker().is_some()
    }

    pub fn set_uploaded(&self, marker: super::tier::Marker) {
        *self.tiered.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(marker);
    }

    /// fdatasync of both files: the data first, then the index that points into it.
    pub fn sync_data(&self) -> Result<(), LogError> {
        self.log.sync_data().map_err(io_err("fdatasync", &self.log_path))?;
        self.idx.sync_data().map_err(io_err("fdatasync", &self.idx_path))
    }

    fn corrupt(
        &self,
        path: &Path,
        offset: Option<Offset>,
        position: u64,
        reason: String,
    ) -> LogError {
        LogError::Corrupt { path: path.to_path_buf(), offset, position, reason }
    }

    /// Reads `n` consecutive index entries starting at the `rel`-th record of the segment, with
    /// one pread, verifying each entry's checksum and offset.
    pub fn read_slots(&self, rel: u64, n: usize) -> Result<Vec<Slot>, LogError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let position = FILE_HEADER_LEN + rel * INDEX_ENTRY_LEN as u64;
        let mut buf = vec![0u8; n * INDEX_ENTRY_LEN];
        self.idx.read_exact_at(&mut buf, position).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                self.corrupt(
                    &self.idx_path,
                    Some(Offset(self.base.0 + rel)),
                    position,
                    format!("index is shorter than the {n} entries expected"),
                )
            } else {
                LogError::Io { op: "read index", path: self.idx_path.clone(), source }
            }
        })?;
        let mut out = Vec::with_capacity(n);
        for (i, chunk) in buf.chunks_exact(INDEX_ENTRY_LEN).enumerate() {
            let expected = Offset(self.base.0 + rel + i as u64);
            let at = position + (i * INDEX_ENTRY_LEN) as u64;
            match format::decode_index_entry(chunk) {
                Some(slot) if slot.entry.offset == expected => out.push(slot),
                Some(slot) => {
                    return Err(self.corrupt(
                        &self.idx_path,
                        Some(expected),
                        at,
                        format!("index entry names offset {}", slot.entry.offset),
                    ));
                }
                None => {
                    return Err(self.corrupt(
                        &self.idx_path,
                        Some(expected),
                        at,
                        format!("index entry checksum mismatch ({})", format::hex_prefix(chunk)),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Reads the `rel`-th index entry of the segment.
    pub fn read_slot(&self, rel: u64) -> Result<Slot, LogError> {
        let mut v = self.read_slots(rel, 1)?;
        v.pop().ok_or_else(|| {
            self.corrupt(&self.idx_path, Some(Offset(self.base.0 + rel)), 0, "no entry".into())
        })
    }

    /// Binary search of the on-disk index of a segment holding `count` records: the relative
    /// position of the first record whose `key` is `>= t` (`count` if none). One pread per probe.
    pub fn lower_bound(&self, count: u64, key: TimeKey, t: Timestamp) -> Result<u64, LogError> {
        let (mut lo, mut hi) = (0u64, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if key.of(&self.read_slot(mid)?.entry) < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Reads the record `slot` points at with one pread (into a recycled buffer, see
    /// [`super::buf`]) and verifies it against its CRC and against the index entry.
    pub fn read_record(&self, slot: &Slot) -> Result<Record, LogError> {
        let want = slot.entry;
        let total = FRAME_HEADER_LEN + want.len as usize;
        let mut read = ReadBuf::new(total);
        let buf = read.as_mut();
        self.log.read_exact_at(buf, slot.position).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                self.corrupt(
                    &self.log_path,
                    Some(want.offset),
                    slot.position,
                    "record extends past the end of the file".into(),
                )
            } else {
                LogError::Io { op: "read record", path: self.log_path.clone(), source }
            }
        })?;
        let mut header = [0u8; FRAME_HEADER_LEN];
        header.copy_from_slice(&buf[..FRAME_HEADER_LEN]);
        let decoded = format::decode_frame_header(&header);
        if decoded.crc != format::frame_crc(&header, &buf[FRAME_HEADER_LEN..]) {
            return Err(self.corrupt(
                &self.log_path,
                Some(want.offset),
                slot.position,
                format!("record checksum mismatch (header {})", format::hex_prefix(&header)),
            ));
        }
        if decoded.entry != want {
            return Err(self.corrupt(
                &self.log_path,
                Some(want.offset),
                slot.position,
                format!("record header {:?} does not match its index entry", decoded.entry),
            ));
        }
        let payload = read.freeze().slice(FRAME_HEADER_LEN..);
        Ok(Record { entry: want, payload })
    }
}

/// What the in-memory segment list knows about one segment: enough to pick the segment for an
/// offset or a time without touching its files.
#[derive(Debug, Clone)]
pub(super) struct Segment {
    pub files: std::sync::Arc<SegmentFiles>,
    /// Records written to the segment (for the active segment this includes records not yet
    /// committed; readers clamp with the committed end).
    pub count: u64,
    pub first: Option<IndexEntry>,
    pub last: Option<IndexEntry>,
    /// Current length of the `.log` file.
    pub log_bytes: u64,
    /// Current length of the `.idx` file.
    pub idx_bytes: u64,
}

impl Segment {
    pub fn base(&self) -> Offset {
        self.files.base
    }

    /// One past the last offset written to this segment.
    pub fn end(&self) -> Offset {
        Offset(self.files.base.0 + self.count)
    }

    /// Bytes on disk (both files).
    pub fn bytes(&self) -> u64 {
        self.log_bytes + self.idx_bytes
    }

    /// An empty segment over freshly created files.
    pub fn empty(files: std::sync::Arc<SegmentFiles>) -> Segment {
        Segment {
            files,
            count: 0,
            first: None,
            last: None,
            log_bytes: FILE_HEADER_LEN,
            idx_bytes: FILE_HEADER_LEN,
        }
    }

    /// Accounts for one more record written at the end of the segment.
    pub fn push(&mut self, slot: &Slot) {
        if self.first.is_none() {
            self.first = Some(slot.entry);
        }
        self.last = Some(slot.entry);
        self.count += 1;
        self.log_bytes = slot.end();
        self.idx_bytes += INDEX_ENTRY_LEN as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        let p = log_path(Path::new("/x"), Offset(12));
        assert_eq!(p, Path::new("/x/00000000000000000012.log"));
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(parse_log_name(name), Some(Offset(12)));
        assert_eq!(parse_log_name("12.log"), None);
        assert_eq!(parse_log_name("0000000000000000001x.log"), None);
        assert_eq!(parse_log_name("00000000000000000012.idx"), None);
    }
}

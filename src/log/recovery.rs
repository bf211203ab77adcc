//! Opening a log directory: from the files on disk to the in-memory [`State`].
//!
//! - An empty (or missing) directory becomes an empty log whose first segment starts at 0.
//! - Sealed segments (all but the newest) are trusted when their `.idx` agrees with their `.log`
//!   (valid headers, the first entry at the start of the data, the last entry ending exactly at
//!   the end of the file, and the next segment starting where this one ends). Otherwise the index
//!   is rebuilt by scanning the `.log` and verifying every record's CRC.
//! - The newest segment is always scanned record by record. A torn or corrupt tail (a crash in
//!   the middle of a write) is truncated with a warning saying how many bytes were dropped, and
//!   its index is cut back and completed to match, so no record is ever listed but unreadable.
//!   It is then fdatasynced, so whatever is visible after a restart is durable.
//! - Segments must be contiguous; a hole (a segment file removed by hand, or damage in the middle
//!   of a sealed segment) is refused with [`LogError::Corrupt`] rather than silently skipped.
//!
//! The next offset survives retention because the newest segment is never deleted: retention
//! replaces an expired active segment by a new empty one first (see [`super::retention`]).

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::format::{
    self, FILE_HEADER_LEN, FRAME_HEADER_LEN, IDX_MAGIC, INDEX_ENTRY_LEN, LOG_MAGIC, Slot,
};
use super::segment::{self, Segment, SegmentFiles, io_err};
use super::tier::TierTarget;
use super::{IndexEntry, LogError, Offset, State};

/// Reads the directory and returns the recovered state.
pub(super) fn recover(dir: &Path, tier: Option<&TierTarget>) -> Result<State, LogError> {
    std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let mut bases = Vec::new();
    let mut idx_only = Vec::new();
    let mut markers = Vec::new();
    let mut dir_changed = false;
    for dirent in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
        let name = dirent.map_err(io_err("list", dir))?.file_name();
        let name = name.to_string_lossy();
        if name == segment::SPARE_LOG || name == segment::SPARE_IDX {
            // A spare made ahead of need and never used: made again when needed.
            let path = dir.join(name.as_ref());
            std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
            dir_changed = true;
        } else if let Some(base) = segment::parse_log_name(&name) {
            bases.push(base);
        } else if let Some(stem) = name.strip_suffix(".remote") {
            if let Some(base) = segment::parse_log_name(&format!("{stem}.log")) {
                markers.push(base);
            }
        } else if name.ends_with(".remote.tmp") {
            // A marker being written at a crash: the segment is uploaded again.
            let path = dir.join(name.as_ref());
            std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
            dir_changed = true;
        } else if let Some(stem) = name.strip_suffix(".idx") {
            idx_only.push(stem.to_owned());
        }
    }
    // Evicted segments: an `.idx` and a marker, the `.log` in the bucket.
    let mut remote = std::collections::BTreeSet::new();
    for &base in &markers {
        let has_idx =
            idx_only.iter().any(|s| segment::parse_log_name(&format!("{s}.log")) == Some(base));
        if !bases.contains(&base) && has_idx {
            remote.insert(base);
            bases.push(base);
        }
    }
    bases.sort_unstable();

    // An `.idx` without its `.log`: a crash between creating the two, or between unlinking them.
    for stem in idx_only {
        if segment::parse_log_name(&format!("{stem}.log")).is_some_and(|b| !bases.contains(&b)) {
            let path = dir.join(format!("{stem}.idx"));
            tracing::warn!(path = %path.display(), "removing an index without its log file");
            std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
            dir_changed = true;
        }
    }

    let Some((&last_base, sealed_bases)) = bases.split_last() else {
        let files = Arc::new(SegmentFiles::create(dir, Offset(0))?);
        segment::sync_dir(dir)?;
        return Ok(state_from(Vec::new(), Segment::empty(files), Vec::new()));
    };

    if remote.contains(&last_base) {
        return Err(corrupt(
            &segment::log_path(dir, last_base),
            None,
            0,
            "the newest segment is in the bucket only (its .log is missing)",
        ));
    }
    let mut sealed = Vec::with_capacity(sealed_bases.len());
    for (i, &base) in sealed_bases.iter().enumerate() {
        let next = bases[i + 1];
        if remote.contains(&base) {
            sealed.push(recover_remote(dir, base, next, tier)?);
            continue;
        }
        let files = Arc::new(SegmentFiles::open(dir, base)?);
        if markers.contains(&base)
            && let Some(m) = super::tier::read_marker(dir, base)?
        {
            files.set_uploaded(m);
        }
        let seg = recover_sealed(files, next)?;
        if seg.count == 0 {
            // A leftover empty segment (a crash right after rollover or retention): drop it.
            let f = &seg.files;
            tracing::warn!(path = %f.log_path.display(), "removing an empty sealed segment");
            std::fs::remove_file(&f.log_path).map_err(io_err("remove", &f.log_path))?;
            std::fs::remove_file(&f.idx_path).map_err(io_err("remove", &f.idx_path))?;
            dir_changed = true;
            continue;
        }
        sealed.push(seg);
    }

    let files = Arc::new(SegmentFiles::open(dir, last_base)?);
    let (active, slots) = recover_tail(files)?;
    if dir_changed {
        segment::sync_dir(dir)?;
    }
    tracing::debug!(dir = %dir.display(), segments = sealed.len() + 1, end = %active.end(), "log recovered");
    Ok(state_from(sealed, active, slots))
}

/// An evicted segment: its local index, trusted as a sealed one's against the length the marker
/// gives its `.log` in the bucket.
fn recover_remote(
    dir: &Path,
    base: Offset,
    next: Offset,
    tier: Option<&TierTarget>,
) -> Result<Segment, LogError> {
    let path = segment::idx_path(dir, base);
    let marker = super::tier::read_marker(dir, base)?
        .ok_or_else(|| corrupt(&path, Some(base), 0, "the tier marker vanished"))?;
    let t: Arc<dyn super::tier::Tier> = match tier {
        Some(t) => t.tier.clone(),
        None => Arc::new(super::tier::NoTier),
    };
    let log_len = marker.log_len;
    let files = Arc::new(SegmentFiles::open_remote(dir, base, marker, t)?);
    let idx_len = file_len(&files.idx, &files.idx_path)?;
    let expected = next.0.saturating_sub(base.0);
    trusted_index(&files, log_len, idx_len, expected).ok_or_else(|| {
        corrupt(&path, Some(base), 0, "the index of a segment in the bucket does not match it")
    })
}

fn state_from(sealed: Vec<Segment>, active: Segment, active_slots: Vec<Slot>) -> State {
    let end = active.end();
    State { sealed, active, active_slots, written: end, committed: end, durable: end }
}

fn corrupt(
    path: &Path,
    offset: Option<Offset>,
    position: u64,
    reason: impl Into<String>,
) -> LogError {
    LogError::Corrupt { path: path.to_path_buf(), offset, position, reason: reason.into() }
}

/// The `.log` file of a local segment (recovery never scans one in the bucket).
fn local(files: &SegmentFiles) -> Result<&File, LogError> {
    files.log.file().map_err(io_err("open", &files.log_path))
}

fn file_len(file: &File, path: &Path) -> Result<u64, LogError> {
    file.metadata().map(|m| m.len()).map_err(io_err("stat", path))
}

/// Reads and checks the header of a `.log` (`idx == false`) or `.idx` file.
fn check_header(files: &SegmentFiles, idx: bool) -> Result<(), String> {
    let magic = if idx { IDX_MAGIC } else { LOG_MAGIC };
    let mut h = [0u8; FILE_HEADER_LEN as usize];
    let read =
        if idx { files.idx.read_exact_at(&mut h, 0) } else { files.log.read_exact_at(&mut h, 0) };
    read.map_err(|e| format!("cannot read the file header: {e}"))?;
    match format::decode_file_header(&h, magic) {
        Ok(base) if base == files.base => Ok(()),
        Ok(base) => Err(format!("header names base offset {base}, file name {}", files.base)),
        Err(e) => Err(format!("{e} ({})", format::hex_prefix(&h))),
    }
}

/// A sealed segment, trusted if its index is consistent, else re-indexed from its `.log`.
fn recover_sealed(files: Arc<SegmentFiles>, next: Offset) -> Result<Segment, LogError> {
    let log_len = file_len(local(&files)?, &files.log_path)?;
    let idx_len = file_len(&files.idx, &files.idx_path)?;
    check_header(&files, false).map_err(|r| corrupt(&files.log_path, None, 0, r))?;
    let expected = next.0.checked_sub(files.base.0).ok_or_else(|| {
        corrupt(&files.log_path, None, 0, format!("segment overlaps the next one at {next}"))
    })?;

    if let Some(seg) = trusted_index(&files, log_len, idx_len, expected) {
        return Ok(seg);
    }
    tracing::warn!(path = %files.idx_path.display(), "index inconsistent with its log; rebuilding it");
    let scan = scan(&files, log_len)?;
    if scan.slots.len() as u64 != expected {
        return Err(corrupt(
            &files.log_path,
            Some(Offset(files.base.0 + scan.slots.len() as u64)),
            scan.good_len,
            format!(
                "sealed segment holds {} valid records but the next segment starts at {next}{}",
                scan.slots.len(),
                scan.stopped.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
        ));
    }
    if scan.good_len < log_len {
        // Bytes after the last record no offset refers to.
        tracing::warn!(path = %files.log_path.display(), dropped_bytes = log_len - scan.good_len,
            "truncating unreferenced bytes at the end of a sealed segment");
        files.log.set_len(scan.good_len).map_err(io_err("truncate", &files.log_path))?;
    }
    write_index(&files, &[], &scan.slots)?;
    files.sync_data()?;
    Ok(segment_from(files, &scan.slots, scan.good_len))
}

/// The segment summary if the index can be trusted as it is.
fn trusted_index(
    files: &Arc<SegmentFiles>,
    log_len: u64,
    idx_len: u64,
    expected: u64,
) -> Option<Segment> {
    check_header(files, true).ok()?;
    let body = idx_len.checked_sub(FILE_HEADER_LEN)?;
    if body % INDEX_ENTRY_LEN as u64 != 0 || body / INDEX_ENTRY_LEN as u64 != expected {
        return None;
    }
    if expected == 0 {
        return (log_len == FILE_HEADER_LEN).then(|| Segment::empty(files.clone()));
    }
    let first = files.read_slot(0).ok()?;
    let last = files.read_slot(expected - 1).ok()?;
    if first.position != FILE_HEADER_LEN || last.end() != log_len {
        return None;
    }
    Some(Segment {
        files: files.clone(),
        count: expected,
        first: Some(first.entry),
        last: Some(last.entry),
        log_bytes: log_len,
        idx_bytes: idx_len,
    })
}

/// The newest segment: verified record by record, torn tail truncated, index made to match.
fn recover_tail(files: Arc<SegmentFiles>) -> Result<(Segment, Vec<Slot>), LogError> {
    let log_len = file_len(local(&files)?, &files.log_path)?;
    if log_len < FILE_HEADER_LEN {
        // Crashed while creating the segment: nothing was ever appended to it.
        tracing::warn!(path = %files.log_path.display(), "re-initialising a segment torn at creation");
        let header = format::encode_file_header(LOG_MAGIC, files.base);
        files.log.set_len(0).map_err(io_err("truncate", &files.log_path))?;
        files.log.write_all_at(&header, 0).map_err(io_err("write header", &files.log_path))?;
    } else {
        let mut h = [0u8; FILE_HEADER_LEN as usize];
        files.log.read_exact_at(&mut h, 0).map_err(io_err("read header", &files.log_path))?;
        if format::decode_file_header(&h, LOG_MAGIC) == Ok(segment::SPARE_BASE) {
            // A promoted spare whose new header had not reached the disk yet.
            tracing::warn!(path = %files.log_path.display(), "completing a segment promoted at a crash");
            let header = format::encode_file_header(LOG_MAGIC, files.base);
            files.log.write_all_at(&header, 0).map_err(io_err("write header", &files.log_path))?;
        }
        check_header(&files, false).map_err(|r| corrupt(&files.log_path, None, 0, r))?;
    }
    let log_len = log_len.max(FILE_HEADER_LEN);
    let scan = scan(&files, log_len)?;
    if scan.good_len < log_len {
        tracing::warn!(
            path = %files.log_path.display(),
            dropped_bytes = log_len - scan.good_len,
            position = scan.good_len,
            reason = scan.stopped.as_deref().unwrap_or(""),
            "truncating a torn or corrupt tail"
        );
        files.log.set_len(scan.good_len).map_err(io_err("truncate", &files.log_path))?;
    }
    let existing = read_existing_index(&files)?;
    write_index(&files, &existing, &scan.slots)?;
    files.sync_data()?;
    let seg = segment_from(files, &scan.slots, scan.good_len);
    Ok((seg, scan.slots))
}

fn segment_from(files: Arc<SegmentFiles>, slots: &[Slot], log_len: u64) -> Segment {
    let mut seg = Segment::empty(files);
    for s in slots {
        seg.push(s);
    }
    seg.log_bytes = log_len;
    seg
}

/// The valid entries at the start of the current `.idx` (empty if its header is bad).
fn read_existing_index(files: &SegmentFiles) -> Result<Vec<Slot>, LogError> {
    if check_header(files, true).is_err() {
        return Ok(Vec::new());
    }
    let mut buf = Vec::new();
    let mut r = &files.idx;
    r.seek(SeekFrom::Start(FILE_HEADER_LEN)).map_err(io_err("seek", &files.idx_path))?;
    r.read_to_end(&mut buf).map_err(io_err("read index", &files.idx_path))?;
    Ok(buf.chunks_exact(INDEX_ENTRY_LEN).map_while(format::decode_index_entry).collect())
}

/// Makes the `.idx` hold exactly `slots`, keeping the prefix that `existing` already has right.
fn write_index(files: &SegmentFiles, existing: &[Slot], slots: &[Slot]) -> Result<(), LogError> {
    let keep = existing.iter().zip(slots).take_while(|(a, b)| a == b).count();
    let path = &files.idx_path;
    if keep == 0 {
        let header = format::encode_file_header(IDX_MAGIC, files.base);
        files.idx.write_all_at(&header, 0).map_err(io_err("write header", path))?;
    }
    let at = FILE_HEADER_LEN + (keep * INDEX_ENTRY_LEN) as u64;
    files.idx.set_len(at).map_err(io_err("truncate", path))?;
    let mut buf = Vec::with_capacity((slots.len() - keep) * INDEX_ENTRY_LEN);
    for s in &slots[keep..] {
        buf.extend_from_slice(&format::encode_index_entry(s));
    }
    if keep < slots.len() {
        tracing::info!(path = %path.display(), entries = slots.len() - keep, "rewriting index entries");
    }
    files.idx.write_all_at(&buf, at).map_err(io_err("write index", path))
}

/// Result of scanning a `.log` file.
struct Scan {
    slots: Vec<Slot>,
    /// End of the last valid record.
    good_len: u64,
    /// Why the scan stopped before the end of the file, if it did.
    stopped: Option<String>,
}

/// Reads every record of a `.log` from the start, verifying framing, offsets, time order and
/// CRC, and stops at the first one that fails.
fn scan(files: &SegmentFiles, log_len: u64) -> Result<Scan, LogError> {
    let path = &files.log_path;
    let mut file = local(files)?;
    file.seek(SeekFrom::Start(FILE_HEADER_LEN)).map_err(io_err("seek", path))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut slots: Vec<Slot> = Vec::new();
    let mut pos = FILE_HEADER_LEN;
    let mut chunk = vec![0u8; 64 * 1024];
    let stop =
        |slots: Vec<Slot>, pos, why: String| Ok(Scan { slots, good_len: pos, stopped: Some(why) });
    while pos < log_len {
        if log_len - pos < FRAME_HEADER_LEN as u64 {
            return stop(slots, pos, format!("{} bytes of a partial frame header", log_len - pos));
        }
        let mut h = [0u8; FRAME_HEADER_LEN];
        r.read_exact(&mut h).map_err(io_err("read", path))?;
        let frame = format::decode_frame_header(&h);
        let e: IndexEntry = frame.entry;
        let end = pos + FRAME_HEADER_LEN as u64 + u64::from(e.len);
        let expected = Offset(files.base.0 + slots.len() as u64);
        if end > log_len {
            return stop(slots, pos, format!("frame of {} bytes runs past the end", e.len));
        }
        if e.offset != expected {
            return stop(
                slots,
                pos,
                format!("frame names offset {} instead of {expected}", e.offset),
            );
        }
        if let Some(prev) = slots.last()
            && (e.time < prev.entry.time || e.arrival < prev.entry.arrival)
        {
            return stop(slots, pos, "timestamps go backwards".into());
        }
        // Stream the payload through the CRC: a 50 MB fragment needs no 50 MB buffer.
        let mut crc = crc32c::crc32c(&h[0..4]);
        crc = crc32c::crc32c_append(crc, &h[8..]);
        let mut left = e.len as usize;
        while left > 0 {
            let n = left.min(chunk.len());
            r.read_exact(&mut chunk[..n]).map_err(|err| match err.kind() {
                io::ErrorKind::UnexpectedEof => {
                    corrupt(path, Some(expected), pos, "file shrank during recovery")
                }
                _ => LogError::Io { op: "read", path: path.clone(), source: err },
            })?;
            crc = crc32c::crc32c_append(crc, &chunk[..n]);
            left -= n;
        }
        if crc != frame.crc {
            return stop(slots, pos, format!("checksum mismatch at offset {expected}"));
        }
        slots.push(Slot { entry: e, position: pos });
        pos = end;
    }
    Ok(Scan { slots, good_len: pos, stopped: None })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use super::{FILE_HEADER_LEN, FRAME_HEADER_LEN, FileExt, segment};
    use std::fs::OpenOptions;

    fn payload(i: i64) -> Vec<u8> {
        format!("record number {i} with some bytes").into_bytes()
    }

    fn check_all(log: &Log, n: u64) -> anyhow::Result<()> {
        assert_eq!(log.committed_end(), Offset(n));
        for i in 0..n {
            let r = log.read(Offset(i))?.ok_or_else(|| anyhow::anyhow!("offset {i} missing"))?;
            assert_eq!(r.payload, payload(i as i64));
        }
        assert_eq!(log.entries(Offset(0), Offset(u64::MAX), usize::MAX)?.len() as u64, n);
        Ok(())
    }

    #[test]
    fn restart_continues_offsets() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        let cfg = || LogConfig { segment_max_bytes: 400, ..config(SyncPolicy::Never) };
        {
            let log = open(dir.path(), cfg(), &clock);
            for i in 0..10 {
                log.append(rec(i, &payload(i)))?;
            }
        }
        let log = open(dir.path(), cfg(), &clock);
        check_all(&log, 10)?;
        assert!(log.stats().segments > 2);
        // Time order is enforced across the restart too.
        assert!(log.append(rec(3, b"late")).is_err());
        assert_eq!(log.append(rec(10, &payload(10)))?, Offset(10));
        drop(log);
        check_all(&open(dir.path(), cfg(), &clock), 11)
    }

    #[test]
    fn empty_directory_is_an_empty_log() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a/b");
        let log = open(&path, config(SyncPolicy::Never), &clock());
        assert_eq!((log.start(), log.committed_end()), (Offset(0), Offset(0)));
        drop(log);
        let log = open(&path, config(SyncPolicy::Never), &clock());
        assert_eq!(log.append(rec(0, b"x"))?, Offset(0));
        Ok(())
    }

    /// Three records in one segment, then the file cut at every byte of the last frame.
    #[test]
    fn torn_final_record_is_truncated_at_every_byte() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        let src = dir.path().join("src");
        {
            let log = open(&src, config(SyncPolicy::Never), &clock);
            for i in 0..3 {
                log.append(rec(i, &payload(i)))?;
            }
        }
        let log_file = segment::log_path(&src, Offset(0));
        let full = std::fs::read(&log_file)?;
        let idx_full = std::fs::read(segment::idx_path(&src, Offset(0)))?;
        let last_start = full.len() - (FRAME_HEADER_LEN + payload(2).len());
        for cut in last_start..full.len() {
            let d = dir.path().join(format!("cut{cut}"));
            std::fs::create_dir(&d)?;
            std::fs::write(segment::log_path(&d, Offset(0)), &full[..cut])?;
            // The index may or may not have been written before the crash.
            std::fs::write(segment::idx_path(&d, Offset(0)), &idx_full)?;
            let log = open(&d, config(SyncPolicy::Never), &clock);
            check_all(&log, 2)?;
            assert_eq!(
                std::fs::metadata(segment::log_path(&d, Offset(0)))?.len(),
                last_start as u64
            );
            assert_eq!(log.append(rec(2, &payload(2)))?, Offset(2));
            drop(log);
            check_all(&open(&d, config(SyncPolicy::Never), &clock), 3)?;
        }
        Ok(())
    }

    #[test]
    fn corrupt_byte_in_the_tail_truncates_from_that_record() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        {
            let log = open(dir.path(), config(SyncPolicy::Never), &clock);
            for i in 0..5 {
                log.append(rec(i, &payload(i)))?;
            }
        }
        let frame = (FRAME_HEADER_LEN + payload(0).len()) as u64;
        let f = OpenOptions::new().write(true).open(segment::log_path(dir.path(), Offset(0)))?;
        // A byte in the payload of record 3.
        f.write_all_at(b"!", FILE_HEADER_LEN + 3 * frame + 60)?;
        drop(f);
        let log = open(dir.path(), config(SyncPolicy::Never), &clock);
        check_all(&log, 3)?;
        Ok(())
    }

    #[test]
    fn corrupt_byte_in_a_sealed_segment_is_reported_on_read() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        let cfg = || LogConfig { segment_max_bytes: 300, ..config(SyncPolicy::Never) };
        {
            let log = open(dir.path(), cfg(), &clock);
            for i in 0..10 {
                log.append(rec(i, &payload(i)))?;
            }
        }
        let f = OpenOptions::new().write(true).open(segment::log_path(dir.path(), Offset(0)))?;
        f.write_all_at(b"!", FILE_HEADER_LEN + 70)?;
        drop(f);
        let log = open(dir.path(), cfg(), &clock);
        let err = log.read(Offset(0)).err();
        assert!(
            matches!(err, Some(LogError::Corrupt { offset: Some(Offset(0)), position: 32, .. })),
            "{err:?}"
        );
        assert!(log.read(Offset(1))?.is_some());
        Ok(())
    }

    #[test]
    fn damaged_sealed_index_is_rebuilt() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        let cfg = || LogConfig { segment_max_bytes: 300, ..config(SyncPolicy::Never) };
        {
            let log = open(dir.path(), cfg(), &clock);
            for i in 0..10 {
                log.append(rec(i, &payload(i)))?;
            }
        }
        let idx = segment::idx_path(dir.path(), Offset(0));
        let len = std::fs::metadata(&idx)?.len();
        OpenOptions::new().write(true).open(&idx)?.set_len(len - 10)?;
        std::fs::remove_file(segment::idx_path(dir.path(), Offset(3)))?;
        check_all(&open(dir.path(), cfg(), &clock), 10)?;
        assert_eq!(std::fs::metadata(&idx)?.len(), len);
        Ok(())
    }

    #[test]
    fn hole_in_the_segments_is_refused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        let cfg = || LogConfig { segment_max_bytes: 300, ..config(SyncPolicy::Never) };
        {
            let log = open(dir.path(), cfg(), &clock);
            for i in 0..10 {
                log.append(rec(i, &payload(i)))?;
            }
        }
        std::fs::remove_file(segment::log_path(dir.path(), Offset(3)))?;
        let err = Log::open(dir.path(), cfg(), clock.clone()).err();
        assert!(matches!(err, Some(LogError::Corrupt { .. })), "{err:?}");
        Ok(())
    }

    #[test]
    fn orphans_from_a_crash_during_rollover_are_cleaned() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        {
            let log = open(dir.path(), config(SyncPolicy::Never), &clock);
            for i in 0..3 {
                log.append(rec(i, &payload(i)))?;
            }
        }
        // The next segment's index was created but its log was not, or only partly.
        std::fs::write(segment::idx_path(dir.path(), Offset(3)), b"")?;
        let log = open(dir.path(), config(SyncPolicy::Never), &clock);
        check_all(&log, 3)?;
        assert!(!segment::idx_path(dir.path(), Offset(3)).exists());
        drop(log);
        std::fs::write(segment::log_path(dir.path(), Offset(3)), b"SLUI")?;
        let log = open(dir.path(), config(SyncPolicy::Never), &clock);
        check_all(&log, 3)?;
        assert_eq!(log.append(rec(3, &payload(3)))?, Offset(3));
        Ok(())
    }
}

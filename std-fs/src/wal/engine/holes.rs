//! Declaring skipped damage lost: the segments whose damage recovery
//! skipped are rewritten with a hole frame (format v2) in place of each
//! damaged span, so that the log opens in every recovery mode.

use std::path::Path;

use nori_wal_core::Lsn;
use nori_wal_core::format::v2::{self, FramesCrc};
use nori_wal_core::format::{AnyHeader, EpochKey, Seal, Version};

use super::{Inner, Result, Shared};
use crate::fs::{File, Fs, OpenMode};
use crate::wal::error::Error;
use crate::wal::recovery::{SegMeta, Skip};
use crate::wal::segment;

/// What [`Wal::declare_lost`](crate::blocking::Wal::declare_lost) did.
///
/// ```
/// use nori_wal::wal::Declared;
/// let nothing = Declared::default();
/// assert_eq!((nothing.holes, nothing.segments_rewritten, nothing.left_damaged), (0, 0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Declared {
    /// LSNs declared lost, in hole frames.
    pub holes: u64,
    /// Segment files rewritten with holes.
    pub segments_rewritten: u32,
    /// Segment files removed: files whose header was damaged, which
    /// recovery had skipped whole (their LSNs are in the hole at the end of
    /// the segment before them).
    pub files_removed: u32,
    /// Segments whose skipped damage stays as it is: format version 1 has
    /// no hole frame. The log still needs `RecoveryMode::SkipDamaged` to
    /// open while they hold it.
    pub left_damaged: u32,
}

/// The most bytes copied through memory at a time.
const CHUNK: usize = 1 << 20;

impl<S: Fs> Shared<S> {
    /// See [`Wal::declare_lost`](crate::blocking::Wal::declare_lost).
    pub(super) fn declare_lost(&self, inner: &mut Inner<S::File>) -> Result<Declared> {
        let mut declared = Declared::default();
        let dropped = self.dropped_files(inner)?;
        if inner.skips.is_empty() && dropped.is_empty() {
            return Ok(declared);
        }
        // When the newest segment is rewritten, appends go on in a new one.
        if inner.active.as_ref().is_some_and(|a| inner.skips.iter().any(|s| s.base == a.base)) {
            self.seal(inner)?;
            inner.active = None;
        }
        let last = inner.segments.len().saturating_sub(1);
        let mut rewritten = Vec::new();
        for (i, seg) in inner.segments.iter().enumerate() {
            if !inner.skips.iter().any(|s| s.base == seg.base) {
                continue;
            }
            if seg.version != Version::V2 {
                declared.left_damaged += 1;
                continue;
            }
            let end = if i == last { inner.next_lsn } else { inner.segments[i + 1].base };
            declared.holes += self.rewrite(seg, &inner.skips, end, i < last)?;
            declared.segments_rewritten += 1;
            rewritten.push(seg.base);
        }
        inner.skips.retain(|s| !rewritten.contains(&s.base));
        // Files recovery skipped whole. Below the first segment, the log
        // now starts at that segment, recorded before they go.
        let first = inner.segments.first().map_or(inner.next_lsn, |s| s.base);
        if dropped.iter().any(|(base, _)| *base < first) && inner.log_start < first {
            inner.log_start = first;
            self.record_start(first)?;
        }
        // A file skipped whole goes when the segment before it was
        // rewritten (its hole holds the file's LSNs), or it was below the
        // log's new start.
        for (base, path) in &dropped {
            let before = inner.segments.iter().rfind(|s| s.base < *base).map(|s| s.base);
            if before.is_none_or(|b| rewritten.contains(&b)) {
                self.fs.remove(path).map_err(|e| Error::io("remove", path, e))?;
                declared.files_removed += 1;
            } else {
                declared.left_damaged += 1;
            }
        }
        self.fs.sync_dir(self.dir()).map_err(|e| Error::io("sync", self.dir(), e))?;
        trace!(info, holes = declared.holes, segments = declared.segments_rewritten, "damage declared lost");
        Ok(declared)
    }

    /// Segment files in the directory that the log does not hold, below its
    /// newest segment: files recovery skipped for a damaged header.
    fn dropped_files(&self, inner: &Inner<S::File>) -> Result<Vec<(Lsn, std::path::PathBuf)>> {
        let Some(newest) = inner.segments.last().map(|s| s.base) else { return Ok(Vec::new()) };
        let names = self.fs.list(self.dir()).map_err(|e| Error::io("list", self.dir(), e))?;
        Ok(names
            .iter()
            .filter_map(|name| segment::parse_name(name).map(|base| (base, self.dir().join(name))))
            .filter(|(base, _)| *base < newest && !inner.segments.iter().any(|s| s.base == *base))
            .collect())
    }

    /// Rewrites the segment `seg`, whose records end at `end`, with a hole
    /// in place of each span `skips` skips: its valid frames are copied as
    /// they are (a v2 frame is bound to its LSN, not to its place), written
    /// under a temporary name, sealed when `sealed`, synced and renamed over
    /// the file. Returns the LSNs declared lost.
    fn rewrite(&self, seg: &SegMeta, skips: &[Skip], end: Lsn, sealed: bool) -> Result<u64> {
        let path = &seg.path;
        let file = self.fs.open(path, OpenMode::Read).map_err(|e| Error::io("open", path, e))?;
        let header = match segment::peek_header(&file).map_err(|e| Error::io("read", path, e))? {
            Ok(h) => h,
            Err(_) => return Err(Error::Internal { what: "a segment with skipped damage lost its header" }),
        };
        let len = file.size().map_err(|e| Error::io("size", path, e))?;
        // The spans to copy, and the hole after each: walked first.
        let mut buffer = vec![0u8; 64 << 10];
        let plan = segment::read_segment(&file, path, len, header, &mut buffer, false, |reader| {
            let (mut pos, mut lsn) = (header.frames_offset, seg.base);
            let mut plan = Vec::new();
            loop {
                let stop = reader.walk(Some((pos, lsn)), None)?;
                let skip = Skip::at(skips, seg.base, stop.pos).filter(|s| s.lsn >= stop.lsn);
                plan.push((pos, stop.pos, stop.lsn, skip.map_or(0, |s| s.lsn - stop.lsn)));
                match skip {
                    Some(s) if s.to != u64::MAX => (pos, lsn) = (s.to, s.lsn),
                    _ => return Ok(plan),
                }
            }
        })?;
        let holes: u64 = plan.iter().map(|p| p.3).sum();
        // The copy: the frames, holes, then zeros (the header's size, or
        // larger when the holes do not fit where the damage was).
        let copied: u64 = plan.iter().map(|&(from, to, ..)| to - from).sum();
        let hole_len = (v2::FRAME_HEADER_LEN + nori_wal_core::format::HOLE_PAYLOAD_LEN) as u64;
        let needed = header.frames_offset + copied + hole_len * plan.len() as u64 + v2::SEAL_LEN as u64;
        let size = seg.size.max(needed);
        let new_header = v2::SegmentHeader::new(seg.epoch, seg.base, 1)
            .and_then(|h| h.sized(size))
            .map_err(Error::Encode)?
            .preallocated(header.preallocated);
        let tmp = segment::cut_name(path);
        let _ = self.fs.remove(&tmp);
        let out = self.fs.open(&tmp, OpenMode::CreateNew).map_err(|e| Error::io("create", &tmp, e))?;
        let written = (|| {
            out.set_mode(self.config.file_mode).map_err(|e| Error::io("set the modes of", &tmp, e))?;
            if header.preallocated {
                out.allocate(size).map_err(|e| Error::io("allocate", &tmp, e))?;
            }
            let mut bytes = vec![0u8; new_header.len()];
            new_header.encode(&mut bytes).map_err(Error::Encode)?;
            out.write_all_at(&bytes, 0).map_err(|e| Error::io("write", &tmp, e))?;
            let (key, mut at) = (EpochKey::new(seg.epoch), header.frames_offset);
            let mut chunk = vec![0u8; CHUNK];
            for &(from, to, lsn, lost) in &plan {
                let mut p = from;
                while p < to {
                    let n = ((to - p) as usize).min(CHUNK);
                    crate::fs::read_exact_at(&file, &mut chunk[..n], p)
                        .map_err(|e| Error::io("read", path, e))?;
                    out.write_all_at(&chunk[..n], at).map_err(|e| Error::io("write", &tmp, e))?;
                    (p, at) = (p + n as u64, at + n as u64);
                }
                let mut left = lost;
                let mut first = lsn;
                while left > 0 {
                    let count = u32::try_from(left).unwrap_or(u32::MAX);
                    let hole = v2::EncodedFrame::hole(count).map_err(Error::Encode)?;
                    let mut frame = [0u8; 16];
                    let n = hole.write_to(&mut frame, &key, first).map_err(Error::Encode)?;
                    out.write_all_at(&frame[..n], at).map_err(|e| Error::io("write", &tmp, e))?;
                    at += n as u64;
                    (left, first) = (left - u64::from(count), first + u64::from(count));
                }
            }
            self.check_rewrite(&out, &tmp, seg, end, sealed)?;
            out.sync_data().map_err(|e| Error::io("sync", &tmp, e))
        })();
        if let Err(e) = written {
            drop(out);
            let _ = self.fs.remove(&tmp);
            return Err(e);
        }
        drop(file);
        self.fs.rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e))?;
        self.fs.sync_dir(self.dir()).map_err(|e| Error::io("sync", self.dir(), e))?;
        Ok(holes)
    }

    /// Walks the rewritten copy `out`: its frames must now run unbroken to
    /// `end`. Writes its seal when `sealed` (another segment follows).
    fn check_rewrite(&self, out: &S::File, tmp: &Path, seg: &SegMeta, end: Lsn, sealed: bool) -> Result<()> {
        let len = out.size().map_err(|e| Error::io("size", tmp, e))?;
        let header: AnyHeader = match segment::peek_header(out).map_err(|e| Error::io("read", tmp, e))? {
            Ok(h) => h,
            Err(_) => {
                return Err(Error::Internal { what: "a rewritten segment's header does not read back" });
            }
        };
        let mut buffer = vec![0u8; 64 << 10];
        let stop = segment::read_segment(out, tmp, len, header, &mut buffer, false, |r| r.walk(None, None))?;
        if stop.lsn != end {
            return Err(Error::Internal { what: "a segment rewritten with holes does not reach its end" });
        }
        if sealed {
            let frames_crc: FramesCrc = stop.frames_crc;
            let records = u32::try_from(end - seg.base)
                .map_err(|_| Error::Internal { what: "a segment holds more than 2^32 LSNs" })?;
            let mut bytes = [0u8; v2::SEAL_LEN];
            let seal = v2::EncodedFrame::seal(Seal { records, frames_crc: frames_crc.value() });
            seal.write_to(&mut bytes, &EpochKey::new(seg.epoch), seg.base).map_err(Error::Encode)?;
            let at = segment::frames_end(Version::V2, segment::size_of(&header));
            out.write_all_at(&bytes, at).map_err(|e| Error::io("seal", tmp, e))?;
        }
        Ok(())
    }
}

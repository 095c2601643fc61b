//! Reclaim (`truncate_before`), the suffix cut (`truncate_from`) and
//! starting over (`restart_at`), each in an exclusive turn of the group
//! commit.

use std::sync::Arc;

use nori_wal_core::Lsn;
use nori_wal_core::ring::segment::Damage;

use super::{Inner, Result, Shared, lock};
use crate::fs::{File, Fs, OpenMode};
use crate::wal::error::{Corruption, Error};
use crate::wal::recovery::{SegMeta, Skip};
use crate::wal::segment;

impl<S: Fs> Shared<S> {
    /// Runs `op` under the append lock in an exclusive turn (no sync under
    /// way), so that the durable point cannot move behind its back.
    pub(super) fn exclusive<T>(&self, op: impl FnOnce(&Self, &mut Inner<S::File>) -> Result<T>) -> Result<T> {
        self.commit.exclusive(|| {
            let mut inner = lock(&self.inner);
            self.check_poison().and_then(|()| op(self, &mut inner))
        })
    }

    pub(super) fn truncate_before(&self, inner: &mut Inner<S::File>, lsn: Lsn) -> Result<()> {
        let (first, next) = (inner.log_start, inner.next_lsn);
        if lsn > next {
            return Err(Error::LsnOutOfRange { lsn, first, next });
        }
        if lsn <= first {
            return Ok(());
        }
        // No crash may bring back a log that ends below its own start: the
        // records below it are durable, or the newest segment (created
        // durably) starts at or after it, so that recovery finds the start
        // there and keeps the log from it (empty if nothing after it
        // survived).
        let covered = inner.active.as_ref().is_some_and(|a| a.base >= lsn);
        if self.commit.durable_end() < lsn && !covered {
            self.flush(inner)?;
            let sealed = std::mem::take(&mut inner.unsynced);
            self.sync_sealed(&sealed)?;
            if let Some(active) = inner.active.as_ref() {
                self.sync_file(&active.file, &active.path)?;
            }
            self.commit.advance(inner.next_lsn)?;
        }
        // Then the new start, in the lock file: a small write and sync that
        // needs no room in a segment (a full disk) and leaves the active
        // segment's unsynced data alone.
        self.record_start(lsn)?;
        inner.log_start = lsn;
        trace!(info, lsn, "truncated before");
        // Then delete the files wholly below it, oldest first. A crash in
        // between leaves files that recovery removes.
        let keep_from = inner.segments.iter().rposition(|s| s.base <= lsn).unwrap_or(0);
        let doomed: Vec<SegMeta> = inner.segments.drain(..keep_from).collect();
        inner.skips.retain(|s| s.lsn >= lsn);
        inner.unsynced.retain(|s| !doomed.iter().any(|d| d.path == s.path));
        for seg in &doomed {
            self.fs.remove(&seg.path).map_err(|e| Error::io("remove", &seg.path, e))?;
        }
        if !doomed.is_empty() {
            self.fs.sync_dir(self.dir()).map_err(|e| Error::io("sync", self.dir(), e))?;
        }
        Ok(())
    }

    /// Drops every record at and after `keep`.
    pub(super) fn truncate_from(&self, inner: &mut Inner<S::File>, keep: Lsn) -> Result<()> {
        let (first, next) = (inner.log_start, inner.next_lsn);
        if keep < first || keep > next {
            return Err(Error::LsnOutOfRange { lsn: keep, first, next });
        }
        if keep == next {
            return Ok(());
        }
        self.flush(inner)?;
        // Where the cut falls, found before anything changes (it may fall
        // inside a batch): the frame of `keep` in the last segment starting
        // below it.
        let cut = match inner.segments.iter().rposition(|s| s.base < keep) {
            Some(i) => {
                let seg = inner.segments[i].clone();
                let file = match inner.active.as_ref().filter(|a| a.path == seg.path) {
                    Some(active) => Arc::clone(&active.file),
                    None => Arc::new(
                        self.fs
                            .open(&seg.path, OpenMode::ReadWrite)
                            .map_err(|e| Error::io("open", &seg.path, e))?,
                    ),
                };
                let pos = self.frame_of(&*file, &seg, keep, &inner.skips)?;
                Some((seg, file, pos))
            }
            None => None,
        };
        // The files about to go may hold the only record of the log's start.
        if inner.log_start > 0 {
            self.record_start(inner.log_start)?;
        }
        // Files starting at or after the cut go, newest first, each durably,
        // so that a crash leaves a log that is a prefix of this one.
        inner.active = None;
        while let Some(seg) = inner.segments.pop_if(|s| s.base >= keep) {
            self.fs.remove(&seg.path).map_err(|e| self.poison(Error::io("remove", &seg.path, e)))?;
            self.fs.sync_dir(self.dir()).map_err(|e| self.poison(Error::io("sync", self.dir(), e)))?;
        }
        if let Some((seg, file, pos)) = cut {
            self.write_cut_copy(&seg, &*file, pos).map_err(|e| self.poison(e))?;
        }
        inner.skips.retain(|s| s.lsn < keep);
        // Files past the cut are gone and the cut file's copy was synced.
        inner.unsynced.retain(|s| s.end <= keep);
        trace!(info, keep, "truncated from");
        inner.next_lsn = keep;
        inner.buf.clear();
        self.commit.lower_to(keep);
        Ok(())
    }

    /// Drops every record and starts the log over at `lsn`, at or above
    /// the next LSN. In this order, each step durable before the next, so
    /// that a crash leaves the log as it was, or empty at the next LSN or
    /// at `lsn`, never anything else: the records are made durable (as a
    /// reclaim does: recovery never finds a log ending below its start);
    /// the new start goes into the lock file; a new segment is created at
    /// `lsn` (recovery finds the start there); the old files are removed,
    /// oldest first.
    pub(super) fn restart_at(&self, inner: &mut Inner<S::File>, lsn: Lsn) -> Result<()> {
        let (first, next) = (inner.log_start, inner.next_lsn);
        if lsn < next {
            return Err(Error::LsnOutOfRange { lsn, first, next });
        }
        if lsn == next {
            return self.truncate_before(inner, lsn);
        }
        if self.commit.durable_end() < next {
            self.flush(inner)?;
            let sealed = std::mem::take(&mut inner.unsynced);
            self.sync_sealed(&sealed)?;
            if let Some(active) = inner.active.as_ref() {
                self.sync_file(&active.file, &active.path)?;
            }
            self.commit.advance(next)?;
        }
        self.flush(inner)?;
        self.record_start(lsn)?;
        let old = std::mem::take(&mut inner.segments);
        inner.active = None;
        inner.unsynced.clear();
        inner.skips.clear();
        inner.next_lsn = lsn;
        inner.log_start = lsn;
        self.start_segment(inner).map_err(|e| self.poison(e))?;
        self.commit.advance(lsn)?;
        trace!(info, lsn, "restarted");
        for seg in &old {
            self.fs.remove(&seg.path).map_err(|e| self.poison(Error::io("remove", &seg.path, e)))?;
        }
        self.fs.sync_dir(self.dir()).map_err(|e| self.poison(Error::io("sync", self.dir(), e)))
    }

    /// Replaces the segment file `seg` by a copy of its first `pos` bytes:
    /// written and synced under a temporary name, renamed over the file, the
    /// directory synced. The file itself is never shrunk, so a reader's map
    /// of it stays whole (and a crash leaves the old file or the new one).
    fn write_cut_copy(&self, seg: &SegMeta, file: &S::File, pos: u64) -> Result<()> {
        let tmp = segment::cut_name(&seg.path);
        match self.fs.remove(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &tmp, e)),
        }
        let out = self.fs.open(&tmp, OpenMode::CreateNew).map_err(|e| Error::io("create", &tmp, e))?;
        out.set_mode(self.config.file_mode).map_err(|e| Error::io("set the modes of", &tmp, e))?;
        // A segment whose header says it was made at full size stays so:
        // recovery takes a shorter one for damage.
        if seg.preallocated {
            out.allocate(seg.size).map_err(|e| Error::io("allocate", &tmp, e))?;
        }
        let mut buf = vec![0u8; (1 << 20).min(pos as usize)];
        let mut at = 0;
        while at < pos {
            let n = ((pos - at) as usize).min(buf.len());
            crate::fs::read_exact_at(file, &mut buf[..n], at).map_err(|e| Error::io("read", &seg.path, e))?;
            out.write_all_at(&buf[..n], at).map_err(|e| Error::io("write", &tmp, e))?;
            at += n as u64;
        }
        out.sync_data().map_err(|e| Error::io("sync", &tmp, e))?;
        self.fs.rename(&tmp, &seg.path).map_err(|e| Error::io("rename", &tmp, e))?;
        self.fs.sync_dir(self.dir()).map_err(|e| Error::io("sync", self.dir(), e))
    }

    /// Records the log's start in the lock file, durably; a failure poisons.
    pub(super) fn record_start(&self, log_start: Lsn) -> Result<()> {
        let seq = self.start_seq.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1;
        segment::write_start(&self.lock_file, seq, log_start).map_err(|e| {
            self.poison(Error::io("record the log start in", self.dir().join(segment::LOCK_FILE), e))
        })
    }

    /// The offset of the frame starting at `lsn` in the segment `seg`,
    /// walked past the damage recovery skipped.
    fn frame_of(&self, file: &S::File, seg: &SegMeta, lsn: Lsn, skips: &[Skip]) -> Result<u64> {
        let header = match segment::peek_header(file).map_err(|e| Error::io("read", &seg.path, e))? {
            Ok(header) => header,
            Err(_) => {
                let c =
                    Corruption { segment: seg.path.clone(), offset: 0, lsn, damage: Damage::MissingSegment };
                return Err(Error::Corrupt(c));
            }
        };
        let mut buffer = vec![0u8; 64 << 10];
        let len = file.size().map_err(|e| Error::io("size", &seg.path, e))?;
        segment::read_segment(file, &seg.path, len, header, &mut buffer, true, |reader| {
            let mut from = None;
            loop {
                let stop = reader.walk(from, Some(lsn))?;
                let damage = match stop.damage {
                    None => return Ok(Ok(stop.pos)),
                    Some(Damage::LsnMismatch { found }) if found == stop.lsn => {
                        return Ok(Err(Error::InsideBatch { lsn: lsn - 1 }));
                    }
                    Some(damage) => damage,
                };
                match Skip::at(skips, seg.base, stop.pos) {
                    Some(skip) if skip.lsn <= lsn => from = Some((skip.to, skip.lsn)),
                    _ => {
                        let c =
                            Corruption { segment: seg.path.clone(), offset: stop.pos, lsn: stop.lsn, damage };
                        return Ok(Err(Error::Corrupt(c)));
                    }
                }
            }
        })?
    }
}

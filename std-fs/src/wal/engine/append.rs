//! The append path: the write buffer, the active segment (started,
//! marked, sealed), flushing, and a group-commit turn's sync.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use nori_wal_core::format::v2::{self, FramesCrc};
use nori_wal_core::format::{
    Compression, EncodedFrame, EpochKey, FrameKind, Mark, Seal, Version, frame_len_of,
};
use nori_wal_core::{EncodeError, Lsn, Record};

use super::{Result, Shared, lock};
use crate::fs::{File, Fs};
use crate::wal::config::FsyncPolicy;
use crate::wal::error::Error;
use crate::wal::recovery::{SegMeta, Skip};
use crate::wal::segment;

/// The segment being appended to.
pub(crate) struct Active<F> {
    pub(super) file: Arc<F>,
    pub(super) path: PathBuf,
    pub(super) key: EpochKey,
    pub(super) base: Lsn,
    /// The segment's format version.
    pub(super) version: Version,
    /// Where its frames must end (before the seal slot, in version 2).
    pub(super) end: u64,
    /// The checksum of its frames' CRCs so far, for its seal (version 2);
    /// `None` when it is not known (a segment recovered past damage).
    pub(super) frames_crc: Option<SealSum>,
    /// Offset of the next frame (buffered bytes included).
    pub(super) pos: u64,
    /// Offset at which the write buffer's bytes belong.
    pub(super) written: u64,
    /// `durable_end` recorded by the last mark (or implied by the header).
    pub(super) marked_durable: Lsn,
    pub(super) created: Instant,
}

impl<F> Active<F> {
    /// Whether `len` more bytes fit, holding LSNs up to `end` (the LSN
    /// offsets of a segment are 32-bit).
    fn takes(&self, len: u64, end: Lsn) -> bool {
        self.pos + len <= self.end && end - self.base <= u64::from(u32::MAX)
    }

    /// Whether a frame whose payload is `payload` bytes long, ending at
    /// `end`, goes in as it is: it fits, and no mark of the durable point
    /// `durable` is due before it.
    #[inline]
    fn fits_now(&self, payload: u64, end: Lsn, durable: Lsn) -> bool {
        self.marked_durable >= durable && self.takes(frame_len_of(self.version, payload), end)
    }

    /// The bytes a frame whose payload is `payload` bytes long takes here,
    /// with the mark of the durable point `durable` before it if one is
    /// due; and whether one is.
    fn len_with_mark(&self, payload: u64, durable: Lsn) -> (u64, bool) {
        let needs_mark = self.marked_durable < durable;
        let mark_len = if needs_mark { segment::mark_frame_len(self.version) } else { 0 };
        (mark_len + frame_len_of(self.version, payload), needs_mark)
    }
}

/// The LSNs or epochs are spent. A function, so that the error is made only
/// when it is returned (`ok_or(Error::Exhausted)` made and dropped one on
/// every append).
#[cold]
fn exhausted() -> Error {
    Error::Exhausted
}

/// Whether an append can go in without blocking
/// ([`Shared::appends_now`]).
enum Now {
    /// It must wait (a segment to seal or start, a full buffer with no
    /// spare one).
    No,
    /// As it is.
    Yes,
    /// After a mark of the durable point, which it has room for.
    AfterMark,
}

/// A sealed segment not yet synced: the next sync syncs it first.
pub(super) struct Sealed<F> {
    pub(super) file: Arc<F>,
    pub(super) path: PathBuf,
    /// The LSN after its last record.
    pub(super) end: Lsn,
    /// Its seal (version 2), written once a sync has made its frames
    /// durable: the bytes and where they go.
    pub(super) seal: Option<([u8; v2::SEAL_LEN], u64)>,
}

/// State under the append lock.
pub(crate) struct Inner<F> {
    pub(crate) segments: Vec<SegMeta>,
    pub(super) active: Option<Active<F>>,
    pub(crate) next_lsn: Lsn,
    pub(crate) log_start: Lsn,
    pub(super) max_epoch: u64,
    pub(super) buf: Vec<u8>,
    pub(crate) skips: Vec<Skip>,
    /// Sealed segments whose files were not synced since they were
    /// written, oldest first.
    pub(super) unsynced: Vec<Sealed<F>>,
    /// Bytes written to segment files since open.
    pub(super) bytes_written: u64,
    /// Segment files created since open.
    pub(super) segments_created: u64,
    /// LSN at open, to count appends.
    pub(super) opened_at: Lsn,
}

/// Whether an append may block: wait for the append lock, create or seal a
/// segment, write the buffer to its file, or wait for a spare buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// It may (the blocking API, the blocking pool).
    Block,
    /// It may not (an async task): it appends only when nothing of that is
    /// needed, and otherwise appends nothing and says so.
    #[cfg_attr(
        not(feature = "async"),
        expect(dead_code, reason = "only the async API appends without blocking")
    )]
    Never,
}

impl<S: Fs> Shared<S> {
    /// Encodes a frame of `what`, whose payload is `payload_len` bytes
    /// long and holds `count` LSNs, into the write buffer, in the active
    /// segment's format version; returns its first LSN, or `None` when
    /// `wait` is [`Wait::Never`] and appending would block (nothing was
    /// appended).
    #[inline]
    pub(super) fn append_frame(
        &self,
        payload_len: u64,
        count: u32,
        wait: Wait,
        what: Payload<'_>,
    ) -> Result<Option<Lsn>> {
        let len = frame_len_of(self.config.format, payload_len);
        let max = self.max_frame_len();
        if len > max {
            return Err(Error::RecordTooLarge { len, max });
        }
        let mut inner = match wait {
            Wait::Block => lock(&self.inner),
            Wait::Never => match self.inner.try_lock() {
                Ok(inner) => inner,
                Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            },
        };
        self.check_poison()?;
        let lsn = inner.next_lsn;
        let end = lsn.checked_add(u64::from(count)).ok_or_else(exhausted)?;
        let durable = self.commit.durable_end();
        match wait {
            Wait::Block => self.reserve(&mut inner, payload_len, end, durable)?,
            Wait::Never => match self.appends_now(&inner, payload_len, end, durable) {
                Now::No => return Ok(None),
                Now::AfterMark => self.write_mark(&mut inner, durable),
                Now::Yes => {}
            },
        }
        let inner = &mut *inner;
        let Some(active) = inner.active.as_mut() else {
            return Err(self.no_active_segment());
        };
        // Nothing was buffered: the WAL goes on after a record it refuses.
        let start = inner.buf.len();
        what.encode(&mut inner.buf, active.version, &active.key, active.base, lsn).map_err(Error::Encode)?;
        let len = inner.buf.len() - start;
        if let Some(frames) = active.frames_crc.as_mut() {
            frames.add(segment::crc_field(&inner.buf[start..], len - payload_len as usize));
        }
        active.pos += len as u64;
        inner.next_lsn = end;
        if inner.buf.len() >= self.config.write_buffer {
            self.write_out(inner)?;
        }
        Ok(Some(lsn))
    }

    /// Whether a frame whose payload is `payload` bytes long, ending at LSN
    /// `end`, can be appended without blocking: it fits the active segment,
    /// after the mark of the durable point `durable` if one is due, and if
    /// it fills the write buffer, a spare one is waiting (only appends,
    /// under this lock, take spares: the hand-off will not wait).
    fn appends_now(&self, inner: &Inner<S::File>, payload: u64, end: Lsn, durable: Lsn) -> Now {
        let Some(active) = inner.active.as_ref() else { return Now::No };
        let (len, needs_mark) = active.len_with_mark(payload, durable);
        let fills = inner.buf.len() as u64 + len >= self.config.write_buffer as u64;
        if !active.takes(len, end)
            || (fills && !self.behind.as_ref().is_some_and(|behind| behind.has_spare()))
        {
            Now::No
        } else if needs_mark {
            Now::AfterMark
        } else {
            Now::Yes
        }
    }

    #[cold]
    fn no_active_segment(&self) -> Error {
        self.poison(Error::Internal { what: "no active segment after making room for a frame" })
    }

    /// Hands the full write buffer to the write-behind thread (waiting for
    /// a spare one), or writes it here when there is none. Once poisoned
    /// the writer writes nothing more, and the next call reports it.
    fn write_out(&self, inner: &mut Inner<S::File>) -> Result<()> {
        let Some(behind) = &self.behind else { return self.flush(inner) };
        let Some(active) = inner.active.as_mut() else { return self.flush(inner) };
        let (at, len) = (active.written, inner.buf.len() as u64);
        behind.hand_off(&mut inner.buf, Arc::clone(&active.file), active.path.clone(), at);
        active.written += len;
        inner.bytes_written += len;
        Ok(())
    }

    /// Waits until the write-behind thread has written every buffer handed
    /// to it. Called under the append lock, so none is added meanwhile.
    fn wait_written(&self) -> Result<()> {
        if let Some(behind) = &self.behind {
            behind.wait_idle();
            self.check_poison()?;
        }
        Ok(())
    }

    /// The write-behind thread: writes the buffers handed to it, in order;
    /// a failure poisons the WAL (the next call reports it).
    pub(super) fn write_behind(&self) {
        let Some(behind) = &self.behind else { return };
        behind.run(|job| {
            if !self.commit.is_poisoned()
                && let Err(e) = job.file.write_all_at(&job.bytes, job.at)
            {
                self.poison(Error::io("write", &job.path, e));
            }
        });
    }

    /// What the policy asks after an append ending at `end`.
    pub(crate) fn after_append(&self, end: Lsn) -> Result<()> {
        match self.config.fsync {
            // Alone, the caller leads its sync itself (no hand-off); while
            // a sync runs, it asks the sync thread (which runs under
            // `Always`) for the next one and parks until a sync covers it.
            FsyncPolicy::Always => {
                self.commit.sync_or_ask(end, || self.lead_sync(), Some(&|| self.timer.request_sync()))
            }
            FsyncPolicy::Batch(_) => {
                self.timer.mark_dirty();
                Ok(())
            }
            FsyncPolicy::Os => Ok(()),
        }
    }

    /// Makes room in the active segment for a frame whose payload is
    /// `payload` bytes long and whose LSNs end at `end` (and the mark that
    /// must precede it), rotating when there is none. The common case, room
    /// and no mark due, is inline.
    #[inline]
    fn reserve(&self, inner: &mut Inner<S::File>, payload: u64, end: Lsn, durable: Lsn) -> Result<()> {
        match &inner.active {
            Some(active) if active.fits_now(payload, end, durable) => Ok(()),
            _ => self.make_room(inner, payload, end, durable),
        }
    }

    /// [`reserve`](Self::reserve) when a segment must start, or be sealed,
    /// or a mark is due.
    #[cold]
    fn make_room(&self, inner: &mut Inner<S::File>, payload: u64, end: Lsn, durable: Lsn) -> Result<()> {
        loop {
            let Some(active) = inner.active.as_ref() else {
                self.start_segment(inner)?;
                continue;
            };
            let (len, needs_mark) = active.len_with_mark(payload, durable);
            if active.takes(len, end) {
                if needs_mark {
                    self.write_mark(inner, durable);
                }
                return Ok(());
            }
            self.seal(inner)?;
        }
    }

    /// Buffers a mark of the durable point and the log's start.
    fn write_mark(&self, inner: &mut Inner<S::File>, durable: Lsn) {
        let mark = Mark { durable_end: durable, log_start: inner.log_start };
        let next = inner.next_lsn;
        if let Some(active) = inner.active.as_mut() {
            let crc =
                segment::encode_mark(&mut inner.buf, active.version, &active.key, active.base, next, mark);
            if let Some(frames) = active.frames_crc.as_mut() {
                frames.add(crc);
            }
            active.pos += segment::mark_frame_len(active.version);
            active.marked_durable = durable;
        }
    }

    /// At close, with every record durable: a mark saying so, synced, so
    /// that recovery tells later damage to these records from a tail that
    /// was never synced.
    pub(super) fn mark_closed(&self) -> Result<()> {
        let mut inner = lock(&self.inner);
        self.check_poison()?;
        let durable = self.commit.durable_end();
        let Some(active) = inner.active.as_ref() else { return Ok(()) };
        let room = active.pos + segment::mark_frame_len(active.version) <= active.end;
        if active.marked_durable >= durable || durable < inner.next_lsn || !room {
            return Ok(());
        }
        self.write_mark(&mut inner, durable);
        self.flush(&mut inner)?;
        if let Some(active) = inner.active.as_ref() {
            self.sync_file(&active.file, &active.path)?;
        }
        Ok(())
    }

    /// Writes the buffered bytes to the active file; a failure poisons.
    pub(crate) fn flush(&self, inner: &mut Inner<S::File>) -> Result<()> {
        self.wait_written()?;
        if inner.buf.is_empty() {
            return Ok(());
        }
        let Some(active) = inner.active.as_mut() else {
            inner.buf.clear();
            return Ok(());
        };
        if let Err(e) = active.file.write_all_at(&inner.buf, active.written) {
            return Err(self.poison(Error::io("write", &active.path, e)));
        }
        active.written += inner.buf.len() as u64;
        inner.bytes_written += inner.buf.len() as u64;
        inner.buf.clear();
        Ok(())
    }

    /// Ends the active segment: its bytes are written out, and the next
    /// sync syncs it (sealing does not wait for the disk; the next
    /// segment's first mark says how far the log was durable, so recovery
    /// knows an unsynced tail from damage). A version 2 segment's seal is
    /// written once its frames are durable: here when they already are,
    /// else by the sync that makes them so.
    pub(super) fn seal(&self, inner: &mut Inner<S::File>) -> Result<()> {
        let Some(active) = inner.active.as_ref() else { return Ok(()) };
        let opening = segment::frames_offset(active.version) + segment::mark_frame_len(active.version);
        if active.pos == opening && inner.next_lsn == active.base {
            return Ok(());
        }
        self.flush(inner)?;
        self.counters.rotated();
        trace!(debug, next_lsn = inner.next_lsn, "segment sealed");
        if let Some(active) = inner.active.take() {
            let seal = seal_of(&active, inner.next_lsn);
            let sealed = Sealed { file: active.file, path: active.path, end: inner.next_lsn, seal };
            if self.commit.durable_end() < inner.next_lsn {
                inner.unsynced.push(sealed);
            } else {
                self.write_seal(&sealed)?;
            }
        }
        Ok(())
    }

    /// Writes the seal of a segment whose frames are durable. It is not
    /// synced: a seal lost in a crash leaves the segment unsealed, which
    /// recovery takes as it is (its frames are each checked).
    fn write_seal(&self, sealed: &Sealed<S::File>) -> Result<()> {
        let Some((bytes, at)) = &sealed.seal else { return Ok(()) };
        sealed.file.write_all_at(bytes, *at).map_err(|e| self.poison(Error::io("seal", &sealed.path, e)))
    }

    /// Syncs the sealed segments not yet synced, oldest first (under the
    /// append lock, or with the list taken out of it).
    pub(super) fn sync_sealed(&self, sealed: &[Sealed<S::File>]) -> Result<()> {
        sealed.iter().try_for_each(|s| {
            self.sync_file(&s.file, &s.path)?;
            self.write_seal(s)
        })
    }

    /// `fdatasync` of a segment file, counted; a failure poisons.
    pub(super) fn sync_file(&self, file: &S::File, path: &Path) -> Result<()> {
        self.counters.time_sync(|| file.sync_data()).map_err(|e| self.poison(Error::io("sync", path, e)))
    }

    /// Creates the next segment file, starting at the next LSN, in the
    /// configured format version.
    pub(super) fn start_segment(&self, inner: &mut Inner<S::File>) -> Result<()> {
        let version = self.config.format;
        let epoch = segment::next_epoch(inner.max_epoch, version).ok_or_else(exhausted)?;
        let size = self.config.segment_size;
        let new = segment::NewSegment {
            version,
            epoch,
            base_lsn: inner.next_lsn,
            log_start: inner.log_start.min(inner.next_lsn),
            size,
            preallocate: self.config.preallocate,
        };
        // Its first frame records how far the log is durable: the older
        // segments' bytes past that point may be lost in a crash.
        let durable = self.commit.durable_end();
        let mark = Mark { durable_end: durable, log_start: new.log_start };
        // A failure here (a full disk) leaves nothing behind and appends nothing.
        let (file, path, header, mark_crc) =
            segment::create(&self.fs, self.dir(), &new, mark, self.config.file_mode)?;
        trace!(debug, base_lsn = new.base_lsn, epoch, "segment created");
        inner.max_epoch = epoch;
        inner.segments_created += 1;
        let opening = header.frames_offset + segment::mark_frame_len(version);
        inner.bytes_written += opening;
        inner.segments.push(SegMeta {
            base: new.base_lsn,
            epoch,
            size,
            path: path.clone(),
            version,
            preallocated: header.preallocated,
        });
        // A seal (version 2) covers the CRC of every frame, this mark's first.
        let frames_crc = (version == Version::V2).then(|| {
            let mut frames = SealSum::new(FramesCrc::default());
            frames.add(mark_crc);
            frames
        });
        inner.active = Some(Active {
            file: Arc::new(file),
            path,
            key: EpochKey::new(epoch),
            base: new.base_lsn,
            version,
            end: segment::frames_end(version, size),
            frames_crc,
            pos: opening,
            written: opening,
            marked_durable: durable,
            created: Instant::now(),
        });
        Ok(())
    }

    /// Returns once every LSN below `end` is durable: a turn of the group
    /// commit, whose leader writes out the buffer under the append lock and
    /// syncs outside it.
    pub(crate) fn sync_until(&self, end: Lsn) -> Result<()> {
        self.commit.sync_until(end, || self.lead_sync())
    }

    /// Waits, without leading a sync, until every LSN below `end` is durable
    /// (the batch timer, or another thread, syncs).
    pub(crate) fn wait_passive(&self, end: Lsn) -> Result<()> {
        Ok(self.commit.wait_passive(end)?)
    }

    /// A turn's sync: writes out the buffer under the append lock, then
    /// syncs the sealed segments not yet synced and the active one outside
    /// it. Returns the LSN below which records are durable.
    fn lead_sync(&self) -> Result<Lsn> {
        // No waiting for more appends first: what arrives during this sync
        // is covered by the next one, which starts as soon as this ends.
        let (sealed, file, flushed) = {
            let mut inner = lock(&self.inner);
            self.check_poison()?;
            self.flush(&mut inner)?;
            let sealed: Vec<Sealed<S::File>> = inner
                .unsynced
                .iter()
                .map(|s| Sealed { file: Arc::clone(&s.file), path: s.path.clone(), end: s.end, seal: s.seal })
                .collect();
            let file = inner.active.as_ref().map(|a| (Arc::clone(&a.file), a.path.clone()));
            (sealed, file, inner.next_lsn)
        };
        // Waiters arriving from here on know whether this sync covers them.
        self.commit.cover(flushed);
        self.sync_sealed(&sealed)?;
        if let Some((file, path)) = file {
            self.sync_file(&file, &path)?;
        }
        if !sealed.is_empty() {
            lock(&self.inner).unsynced.retain(|s| s.end > flushed);
        }
        Ok(flushed)
    }
}

/// What a frame holds: the file WAL encodes it in the active segment's
/// format version.
#[derive(Clone, Copy)]
pub(super) enum Payload<'r> {
    /// One record.
    Record(&'r Record<'r>),
    /// An atomic batch.
    Batch(&'r [Record<'r>]),
    /// One record's body, compressed.
    Compressed { kind: FrameKind, codec: Compression, body_len: u32, data: &'r [u8] },
}

impl Payload<'_> {
    /// Appends the frame to `out`, in a segment of `version`, epoch `key`
    /// and base LSN `base`, at LSN `lsn`.
    #[inline]
    fn encode(
        self,
        out: &mut Vec<u8>,
        version: Version,
        key: &EpochKey,
        base: Lsn,
        lsn: Lsn,
    ) -> std::result::Result<(), EncodeError> {
        // Checked by `takes`: the LSNs of a segment span at most 2^32.
        let off = (lsn - base) as u32;
        match (version, self) {
            (Version::V1, Self::Record(r)) => EncodedFrame::record(*key, off, r)?.append_to(out),
            (Version::V1, Self::Batch(rs)) => EncodedFrame::batch(*key, off, rs)?.append_to(out),
            (Version::V1, Self::Compressed { kind, codec, body_len, data }) => {
                EncodedFrame::compressed(*key, off, kind, codec, body_len, 1, data)?.append_to(out);
            }
            (Version::V2, Self::Record(r)) => v2::EncodedFrame::record(r)?.append_to(out, key, lsn),
            (Version::V2, Self::Batch(rs)) => v2::EncodedFrame::batch(rs)?.append_to(out, key, lsn),
            (Version::V2, Self::Compressed { kind, codec, body_len, data }) => {
                v2::EncodedFrame::compressed(kind, codec, body_len, 1, data)?.append_to(out, key, lsn);
            }
        }
        Ok(())
    }
}

/// The seal of `active`, whose records end at `end` (version 2, with the
/// checksum of every frame known), and where it goes.
fn seal_of<F>(active: &Active<F>, end: Lsn) -> Option<([u8; v2::SEAL_LEN], u64)> {
    if active.version != Version::V2 {
        return None;
    }
    let frames_crc = active.frames_crc.as_ref()?.value();
    let records = u32::try_from(end - active.base).ok()?;
    let mut bytes = [0u8; v2::SEAL_LEN];
    v2::EncodedFrame::seal(Seal { records, frames_crc })
        .write_to(&mut bytes, &active.key, active.base)
        .ok()?;
    Some((bytes, active.end))
}

/// The checksum a version 2 seal records, kept as frames are appended:
/// their CRCs gathered 16 at a time and added in one CRC pass (one pass
/// per frame cost a one-record `Os` append up to a fifth of its speed).
#[derive(Debug, Clone, Copy)]
pub(super) struct SealSum {
    frames: FramesCrc,
    pending: [u8; 64],
    len: usize,
}

impl SealSum {
    /// Goes on from `frames`, the checksum of the frames so far.
    pub(super) const fn new(frames: FramesCrc) -> Self {
        Self { frames, pending: [0; 64], len: 0 }
    }

    /// Adds the next frame's CRC.
    #[inline]
    fn add(&mut self, crc: u32) {
        self.pending[self.len..self.len + 4].copy_from_slice(&crc.to_le_bytes());
        self.len += 4;
        if self.len == self.pending.len() {
            self.frames.add_bytes(&self.pending);
            self.len = 0;
        }
    }

    /// The checksum of every frame added.
    fn value(&self) -> u32 {
        let mut frames = self.frames;
        frames.add_bytes(&self.pending[..self.len]);
        frames.value()
    }
}

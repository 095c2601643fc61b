//! Reading the log from an LSN, across segment files.

use nori_wal_core::format::v2::{self, check_run};
use nori_wal_core::format::{
    BATCH_ENTRIES_AT, Body, EpochKey, FrameKind, Malformed, Version, decode_frame_in, frame_header_len,
    frame_len_in, frame_len_of, record_at,
};
use nori_wal_core::ring::Entry;
use nori_wal_core::ring::segment::Damage;
use nori_wal_core::{DecodeError, Lsn, Record};

use super::compress;
use super::error::{Corruption, Error};
use super::recovery::{SegMeta, Skip};
use std::sync::Arc;

use crate::fs::{File, Fs, Map, OpenMode, read_exact_at};

/// Where the payload of the current frame is.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// In the segment's map, from this offset.
    Map(usize),
    /// In `buf`, after the frame header (of this length).
    Buf(usize),
    /// In `plain`, decompressed.
    Plain,
}

/// The payload of the current frame, wherever it is held (empty if it is
/// not where `cur` says: the parse then reports damage).
fn payload_of<'a>(cur: &Current, map: Option<&'a Map>, buf: &'a [u8], plain: &'a [u8]) -> &'a [u8] {
    match cur.source {
        Source::Map(start) => map.and_then(|m| m.bytes().get(start..start + cur.len)).unwrap_or_default(),
        Source::Buf(at) => buf.get(at..at + cur.len).unwrap_or_default(),
        Source::Plain => plain,
    }
}

/// The frame whose records are being returned.
#[derive(Debug, Clone, Copy)]
struct Current {
    kind: FrameKind,
    source: Source,
    /// Payload length.
    len: usize,
    /// LSN of the frame's first record.
    first: Lsn,
    count: u32,
    /// Index of the next record to return.
    next: u32,
    /// For a batch, the payload offset of the next record's entry.
    entry_at: usize,
    /// Where the frame ends in its segment (where damage in its payload is
    /// reported).
    end: u64,
}

/// A frame holding records that a run checked ahead in the map.
#[derive(Debug, Clone, Copy)]
struct Ahead {
    /// Where its payload starts in the map.
    start: usize,
    /// LSN of its first record.
    first: Lsn,
    /// Payload length.
    len: u32,
    count: u32,
    kind: FrameKind,
}

impl Ahead {
    /// The frame as the one whose records are returned.
    const fn current(self) -> Current {
        let end = (self.start + self.len as usize) as u64;
        Current {
            kind: self.kind,
            source: Source::Map(self.start),
            len: self.len as usize,
            first: self.first,
            count: self.count,
            next: 0,
            entry_at: BATCH_ENTRIES_AT,
            end,
        }
    }
}

/// Frames longer than this are checked one at a time: a long frame keeps
/// the CPU's CRC unit busy on its own.
const RUN_FRAME_MAX: usize = 4096;

/// Frames checked ahead at most, per run.
const AHEAD_MAX: usize = 64;

/// Where an iterator that has read nothing yet starts (see `Iter::at`).
struct Start<S: Fs> {
    files: std::collections::VecDeque<S::File>,
    segments: Vec<SegMeta>,
    active_end: Option<u64>,
    skips: Vec<Skip>,
    index: usize,
    pos: u64,
    at: Lsn,
    lsn: Lsn,
    end: Lsn,
}

/// ```
/// use nori_wal::blocking::Wal;
/// use nori_wal::{Record, WalConfig};
/// # let dir = std::env::temp_dir().join(format!("nori-wal-iter-doc-{}", std::process::id()));
/// let (wal, _) = Wal::open(WalConfig::new(&dir))?;
/// wal.append_batch(&[Record::put(b"a", b"1"), Record::put(b"b", b"2")])?;
/// let mut iter = wal.iter_from(1)?;
/// let entry = iter.try_next()?.unwrap();
/// assert_eq!((entry.lsn, entry.record.key()), (1, Some(&b"b"[..])));
/// assert!(iter.try_next()?.is_none());
/// # drop(iter); drop(wal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Reads records in LSN order from a [`Wal`](super::Wal); see
/// [`Wal::iter_from`](super::Wal::iter_from). Each record borrows the
/// iterator's buffer until the next call.
pub struct Iter<S: Fs> {
    segments: Vec<SegMeta>,
    /// The files of `segments[index..]`, opened when the iterator was made:
    /// a segment reclaimed meanwhile stays readable.
    files: std::collections::VecDeque<S::File>,
    /// Where the newest segment's written frames end, when it is active.
    active_end: Option<u64>,
    skips: Vec<Skip>,
    /// Index in `segments` of the segment being read.
    index: usize,
    file: Option<S::File>,
    /// The map of the segment being read, where the file system maps.
    map: Option<Arc<Map>>,
    /// How far the segment being read may be read: the file's end (a
    /// file cut short ends there), or the active segment's written end.
    file_end: u64,
    pos: u64,
    /// The LSN expected at `pos`.
    at: Lsn,
    /// The next LSN to return.
    lsn: Lsn,
    /// The LSN the log ended at when the iterator was made.
    end: Lsn,
    buf: Vec<u8>,
    /// The decompressed payload of the current frame.
    plain: Vec<u8>,
    current: Option<Current>,
    /// The current segment's epoch, prepared for checking its frames.
    key: EpochKey,
    /// Frames holding records that a run checked ahead in the map
    /// (`pos` and `at` are past them), returned from `ahead_next` on.
    ahead: Vec<Ahead>,
    ahead_next: usize,
}

impl<S: Fs> std::fmt::Debug for Iter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter").field("lsn", &self.lsn).field("end", &self.end).finish_non_exhaustive()
    }
}

type Result<T> = std::result::Result<T, Error>;

impl<S: Fs> Iter<S> {
    /// The map of the segment being read, if it is mapped: records the
    /// iterator returns from it lie in it, and stay valid while it is held.
    #[cfg(feature = "async")]
    pub(crate) const fn map(&self) -> Option<&Arc<Map>> {
        self.map.as_ref()
    }

    /// An iterator from `lsn` over `segments`, opening the files of those
    /// that may hold it or what follows.
    pub(crate) fn new(
        fs: &S,
        segments: Vec<SegMeta>,
        active_end: Option<u64>,
        lsn: Lsn,
        end: Lsn,
        skips: Vec<Skip>,
    ) -> Result<Self> {
        // The segment holding `lsn`: a search by base LSN.
        let index = segments.partition_point(|s| s.base <= lsn).saturating_sub(1);
        let at = segments.get(index).map_or(lsn, |s| s.base);
        let files = segments
            .iter()
            .skip(index)
            .map(|seg| fs.open(&seg.path, OpenMode::Read).map_err(|e| Error::io("open", &seg.path, e)))
            .collect::<Result<_>>()?;
        let pos = segments.get(index).map_or(0, SegMeta::frames_offset);
        Ok(Self::at(Start { files, segments, active_end, skips, index, pos, at, lsn, end }))
    }

    /// An iterator that has read nothing yet, at `from.pos` in segment
    /// `from.index` (expecting `from.at` there), returning `from.lsn` up
    /// to `from.end`.
    fn at(from: Start<S>) -> Self {
        let Start { files, segments, active_end, skips, index, pos, at, lsn, end } = from;
        Self {
            files,
            segments,
            active_end,
            skips,
            index,
            file: None,
            map: None,
            file_end: 0,
            pos,
            at,
            lsn,
            end,
            buf: Vec::new(),
            plain: Vec::new(),
            current: None,
            key: EpochKey::new(0),
            ahead: Vec::new(),
            ahead_next: 0,
        }
    }

    /// The next record, or `None` at the end of the log as it was when the
    /// iterator was made.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] for damage met on the way; [`Error::Io`]. Segments
    /// reclaimed or truncated while the iterator lives stay readable to it:
    /// it sees the log as it was when it was made.
    #[inline]
    pub fn try_next(&mut self) -> Result<Option<Entry<'_>>> {
        // The common case first: a frame of one record that a run checked
        // ahead, holding the next LSN to return.
        if let Some(&next) = self.ahead.get(self.ahead_next)
            && next.count == 1
            && next.first == self.lsn
            && self.lsn < self.end
            && self.current.is_none_or(|cur| cur.next >= cur.count)
        {
            self.ahead_next += 1;
            let bytes = self.map.as_ref().map_or(&[][..], |m| m.bytes());
            let payload = bytes.get(next.start..next.start + next.len as usize).unwrap_or_default();
            return match record_at(next.kind, payload, BATCH_ENTRIES_AT) {
                Ok((record, _)) => {
                    self.current = None;
                    self.lsn += 1;
                    Ok(Some(Entry { lsn: next.first, record }))
                }
                Err(e) => {
                    // Reported again by the next call, as below.
                    let cur = next.current();
                    self.current = Some(cur);
                    Err(self.corrupt_in(&cur, cur.first, Damage::Frame(e)))
                }
            };
        }
        // The next record of a batch being returned.
        if let Some(cur) = self.current.as_mut()
            && cur.next < cur.count
            && cur.first + u64::from(cur.next) == self.lsn
            && self.lsn < self.end
        {
            let payload = payload_of(cur, self.map.as_deref(), &self.buf, &self.plain);
            let lsn = self.lsn;
            return match record_at(cur.kind, payload, cur.entry_at) {
                Ok((record, entry_at)) => {
                    cur.next += 1;
                    cur.entry_at = entry_at;
                    self.lsn += 1;
                    Ok(Some(Entry { lsn, record }))
                }
                Err(e) => {
                    let cur = *cur;
                    Err(self.corrupt_in(&cur, lsn, Damage::Frame(e)))
                }
            };
        }
        self.next_slow()
    }

    /// Splits off the segments after the one this iterator starts in,
    /// before its first read: this iterator then ends where the next
    /// segment begins, and the one returned reads from there on to the end
    /// this one had, with the files it opened (a segment reclaimed
    /// meanwhile stays readable to it). `None` when nothing lies past this
    /// segment, or once reading has started.
    #[cfg(feature = "async")]
    pub(crate) fn split_rest(&mut self) -> Option<Self> {
        if self.file.is_some() || self.current.is_some() || self.ahead_next < self.ahead.len() {
            return None;
        }
        let next = self.segments.get(self.index + 1)?;
        let (base, pos) = (next.base, next.frames_offset());
        if base >= self.end || self.files.len() < 2 {
            return None;
        }
        let files = self.files.split_off(1);
        // This iterator keeps its segment and the next one's base (where
        // it ends); the rest keeps the whole list.
        let mine = vec![self.segments[self.index].clone(), next.clone()];
        let segments = std::mem::replace(&mut self.segments, mine);
        let rest = Self::at(Start {
            files,
            segments,
            active_end: self.active_end,
            skips: self.skips.clone(),
            index: self.index + 1,
            pos,
            at: base,
            lsn: self.lsn.max(base),
            end: self.end,
        });
        self.index = 0;
        self.end = base;
        Some(rest)
    }

    /// Moves into `into` the rest of a batch being returned from the map,
    /// then the records of single-record frames that a run checked ahead
    /// in the map, in order while they hold the next LSNs to return (at
    /// most `max`), as [`try_next`](Self::try_next) would return them: lent
    /// from the map, which `into` holds. Leaves everything else (frames
    /// outside a map, the start of a batch, a record whose layout does not
    /// parse, which `try_next` then reports) to `try_next`. How many were
    /// moved.
    #[cfg(feature = "async")]
    pub(crate) fn take_ahead(&mut self, into: &mut crate::packed::Packed, max: usize) -> usize {
        let Some(map) = self.map.as_ref() else { return 0 };
        let bytes = map.bytes();
        let (mut taken, mut source) = (0, None);
        // First the rest of a batch being returned from the map.
        if let Some(cur) = self.current.as_mut()
            && cur.next < cur.count
        {
            let Source::Map(start) = cur.source else { return 0 };
            let Some(payload) = bytes.get(start..start + cur.len) else { return 0 };
            while taken < max
                && cur.next < cur.count
                && cur.first + u64::from(cur.next) == self.lsn
                && self.lsn < self.end
                && let Ok((record, entry_at)) = record_at(cur.kind, payload, cur.entry_at)
            {
                let source = *source.get_or_insert_with(|| into.hold(map));
                into.push_lent(self.lsn, &record, source, payload, start);
                cur.next += 1;
                cur.entry_at = entry_at;
                self.lsn += 1;
                taken += 1;
            }
            if cur.next < cur.count {
                return taken;
            }
        }
        while taken < max
            && let Some(&next) = self.ahead.get(self.ahead_next)
            && next.count == 1
            && next.first == self.lsn
            && self.lsn < self.end
            && let Some(payload) = bytes.get(next.start..next.start + next.len as usize)
            && let Ok((record, _)) = record_at(next.kind, payload, BATCH_ENTRIES_AT)
        {
            let source = *source.get_or_insert_with(|| into.hold(map));
            into.push_lent(next.first, &record, source, payload, next.start);
            self.ahead_next += 1;
            self.lsn += 1;
            taken += 1;
        }
        if taken > 0 {
            self.current = None;
        }
        taken
    }

    /// [`try_next`](Self::try_next) past the common case: finds the next
    /// record to return, skipping those below the LSN asked for, loading
    /// frames as needed.
    #[inline(never)]
    fn next_slow(&mut self) -> Result<Option<Entry<'_>>> {
        loop {
            if self.lsn >= self.end {
                return Ok(None);
            }
            match self.current {
                Some(cur) if cur.next < cur.count => {
                    if cur.first + u64::from(cur.next) >= self.lsn {
                        break;
                    }
                    // A batch's entries are walked to the one asked for; a
                    // frame of one record below it is stepped over unread.
                    let entry_at = if cur.kind == FrameKind::Batch { self.entry(&cur)?.1 } else { cur.len };
                    self.current = Some(Current { next: cur.next + 1, entry_at, ..cur });
                }
                _ => {
                    self.current = None;
                    self.next_frame()?;
                }
            }
        }
        let Some(cur) = self.current else { return Ok(None) };
        let lsn = cur.first + u64::from(cur.next);
        let payload = payload_of(&cur, self.map.as_deref(), &self.buf, &self.plain);
        let (record, entry_at) = match record_at(cur.kind, payload, cur.entry_at) {
            Ok(entry) => entry,
            Err(e) => return Err(self.corrupt_in(&cur, lsn, Damage::Frame(e))),
        };
        self.current = Some(Current { next: cur.next + 1, entry_at, ..cur });
        self.lsn = lsn + 1;
        Ok(Some(Entry { lsn, record }))
    }

    /// The record `cur` points at, and the offset of the entry after it.
    fn entry(&self, cur: &Current) -> Result<(Record<'_>, usize)> {
        let payload = payload_of(cur, self.map.as_deref(), &self.buf, &self.plain);
        let lsn = cur.first + u64::from(cur.next);
        record_at(cur.kind, payload, cur.entry_at).map_err(|e| self.corrupt_in(cur, lsn, Damage::Frame(e)))
    }

    /// Damage in the payload of `cur`, where `lsn` was expected.
    fn corrupt_in(&self, cur: &Current, lsn: Lsn, damage: Damage) -> Error {
        let path = self.segments.get(self.index).map(|s| s.path.clone()).unwrap_or_default();
        Error::Corrupt(Corruption { segment: path, offset: cur.end, lsn, damage })
    }

    fn corrupt(&self, damage: Damage) -> Error {
        self.corrupt_at(self.at, damage)
    }

    /// Damage at the current position, where `lsn` was expected.
    fn corrupt_at(&self, lsn: Lsn, damage: Damage) -> Error {
        let path = self.segments.get(self.index).map(|s| s.path.clone()).unwrap_or_default();
        Error::Corrupt(Corruption { segment: path, offset: self.pos, lsn, damage })
    }

    /// Loads the next frame holding records into the buffer.
    fn next_frame(&mut self) -> Result<()> {
        loop {
            if let Some(&next) = self.ahead.get(self.ahead_next) {
                self.ahead_next += 1;
                self.current = Some(next.current());
                return Ok(());
            }
            let Some(seg) = self.segments.get(self.index) else {
                return Err(self.corrupt(Damage::MissingSegment));
            };
            let last = self.index + 1 == self.segments.len();
            let seg_end = if last { None } else { self.segments.get(self.index + 1).map(|s| s.base) };
            if seg_end.is_some_and(|e| self.at >= e) || last && self.active_end.is_some_and(|e| self.pos >= e)
            {
                if last {
                    return Err(
                        self.corrupt(Damage::Frame(DecodeError::Truncated { needed: 1, available: 0 }))
                    );
                }
                // The next segment (after a skipped gap, LSNs jump).
                self.index += 1;
                self.file = None;
                self.map = None;
                self.pos = self.segments[self.index].frames_offset();
                self.at = self.segments[self.index].base;
                self.lsn = self.lsn.max(self.at);
                if self.lsn >= self.end {
                    // Nothing more to return (an iterator split off at
                    // this segment holds no file for it).
                    return Ok(());
                }
                continue;
            }
            if self.file.is_none() {
                let Some(file) = self.files.pop_front() else {
                    return Err(self.corrupt(Damage::MissingSegment));
                };
                // Map what the reader may read: the written end of the
                // active segment, or the whole of a sealed one.
                let limit = if last { self.active_end.unwrap_or(seg.size) } else { seg.size };
                let len = file.size().map_err(|e| Error::io("size", &seg.path, e))?.min(limit);
                self.map = file.map(len).map_err(|e| Error::io("map", &seg.path, e))?.map(Arc::new);
                self.file = Some(file);
                self.file_end = len;
            }
            if self.key.epoch() != seg.epoch {
                self.key = EpochKey::new(seg.epoch);
            }
            if self.run_ahead() {
                continue;
            }
            match self.load()? {
                Ok(()) => return Ok(()),
                Err(damage) => {
                    let base = self.segments[self.index].base;
                    match Skip::at(&self.skips, base, self.pos) {
                        Some(skip) => {
                            self.pos = skip.to;
                            self.at = skip.lsn;
                            self.lsn = self.lsn.max(skip.lsn);
                        }
                        None => return Err(self.corrupt(damage)),
                    }
                }
            }
        }
    }

    /// Checks the frames at `pos` many at a time, where the segment is
    /// mapped and in format v2 (see [`check_run`]): steps over padding,
    /// marks and records below the LSN asked for, and queues the frames
    /// holding the records after it in `ahead`. Stops before the first
    /// frame it cannot take (long, compressed, a hole, damaged), which
    /// [`load`](Self::load) then reads. Whether it took any frame.
    fn run_ahead(&mut self) -> bool {
        let seg = &self.segments[self.index];
        let Some(map) = self.map.as_ref().filter(|_| seg.version == Version::V2) else { return false };
        let end = seg.frames_end().min(self.file_end);
        let Some(bytes) = usize::try_from(end).ok().and_then(|end| map.bytes().get(self.pos as usize..end))
        else {
            return false;
        };
        self.ahead.clear();
        self.ahead_next = 0;
        let (from, until, base) = (self.lsn, self.end, self.pos as usize);
        let ahead = &mut self.ahead;
        let (taken, at) = check_run(bytes, &self.key, self.at, RUN_FRAME_MAX, |frame| {
            let (kind, count) = (frame.header.kind(), frame.count);
            if ahead.len() == AHEAD_MAX || frame.lsn >= until {
                return false;
            }
            match kind {
                FrameKind::Put | FrameKind::Delete | FrameKind::Raw => {}
                FrameKind::Padding => return true,
                // A batch is checked whole before any of its records is
                // returned, as `load` does.
                FrameKind::Mark | FrameKind::Batch => match Body::parse(kind, frame.payload) {
                    Ok(Body::Mark(_)) => return true,
                    Ok(body) if body.record_count() == count && count > 0 => {}
                    _ => return false,
                },
                _ => return false,
            }
            if frame.lsn.saturating_add(u64::from(count)) > from {
                let start = base + frame.at + v2::FRAME_HEADER_LEN;
                let len = frame.header.payload_len();
                ahead.push(Ahead { start, first: frame.lsn, len, count, kind });
            }
            true
        });
        self.pos += taken as u64;
        self.at = at;
        taken > 0
    }

    /// Reads and checks the frame at `pos`; steps over padding and marks.
    /// A frame is checked here again (its header decoded once, one CRC
    /// pass), whatever recovery checked: the mapped bytes may have been
    /// dropped by the kernel and read back since.
    fn load(&mut self) -> Result<std::result::Result<(), Damage>> {
        let seg = &self.segments[self.index];
        let (version, base, size) = (seg.version, seg.base, seg.size);
        let end = seg.frames_end().min(self.file_end);
        // The shortest header, and the most of one read to learn a length.
        let needed = frame_len_of(version, 0);
        let available = end.saturating_sub(self.pos);
        if available < needed {
            return Ok(Err(Damage::Frame(DecodeError::Truncated { needed, available })));
        }
        let header_len = (frame_header_len(version) as u64).min(available);
        let path = &seg.path;
        let at = self.pos as usize;
        let key = self.key;
        // The frame's bytes: borrowed from the map, or read into `buf`.
        let (decoded, source) = match (&self.map, &self.file) {
            (Some(map), _) if (map.bytes().len() as u64) >= self.pos + header_len => {
                let bytes = &map.bytes()[at..map.bytes().len().min(end as usize)];
                match decode_frame_in(version, bytes, &key, base, self.at) {
                    Ok(frame) => (frame, Source::Map(at + frame.header_len())),
                    Err(e) => return Ok(Err(Damage::Frame(e))),
                }
            }
            (_, Some(file)) => {
                self.buf.resize(header_len as usize, 0);
                read_exact_at(file, &mut self.buf, self.pos).map_err(|e| Error::io("read", path, e))?;
                let len = match frame_len_in(version, &self.buf, &key) {
                    Ok(len) => len,
                    Err(e) => return Ok(Err(Damage::Frame(e))),
                };
                if len as u64 > available {
                    let frame_len = len as u64;
                    return Ok(Err(Damage::Frame(DecodeError::LengthOutOfBounds { frame_len, available })));
                }
                let have = self.buf.len();
                self.buf.resize(len, 0);
                if len > have {
                    read_exact_at(file, &mut self.buf[have..], self.pos + have as u64)
                        .map_err(|e| Error::io("read", path, e))?;
                }
                match decode_frame_in(version, &self.buf, &key, base, self.at) {
                    Ok(frame) => (frame, Source::Buf(frame.header_len())),
                    Err(e) => return Ok(Err(Damage::Frame(e))),
                }
            }
            (_, None) => return Ok(Err(Damage::MissingSegment)),
        };
        let (kind, len, first) = (decoded.kind(), decoded.len(), decoded.first_lsn());
        let payload_len = len - decoded.header_len();
        let (count, source, payload_len) = match decoded.compressed() {
            Err(e) => return Ok(Err(Damage::Frame(e))),
            // A single record is parsed once, when it is returned (a
            // broken layout is reported there, at its LSN); a batch is
            // checked whole here, before any of its records is returned.
            Ok(None) if matches!(kind, FrameKind::Put | FrameKind::Delete | FrameKind::Raw) => {
                (1, source, payload_len)
            }
            Ok(None) => match decoded.body() {
                // Declared lost (a repaired log): its LSNs are stepped over.
                Ok(Body::Hole { count }) => {
                    self.pos += len as u64;
                    self.at = first + u64::from(count);
                    self.lsn = self.lsn.max(self.at);
                    return Ok(Ok(()));
                }
                Ok(Body::Seal(_)) => {
                    let reason = Malformed::MisplacedFrame;
                    return Ok(Err(Damage::Frame(DecodeError::MalformedBody { reason })));
                }
                Ok(body) => (body.record_count(), source, payload_len),
                Err(e) => return Ok(Err(Damage::Frame(e))),
            },
            Ok(Some(packed)) => {
                // Bounded by the segment: a hostile length cannot make the
                // reader allocate more than a segment holds.
                let plain_len = packed.uncompressed_len as usize;
                if plain_len as u64 > size {
                    let reason = Malformed::UncompressedTooLarge;
                    return Ok(Err(Damage::Frame(DecodeError::MalformedBody { reason })));
                }
                if let Err(e) = compress::decompress(packed.codec, packed.data, plain_len, &mut self.plain) {
                    return Ok(Err(Damage::Frame(e)));
                }
                match Body::parse(kind, &self.plain) {
                    Ok(body) => (body.record_count(), Source::Plain, plain_len),
                    Err(e) => return Ok(Err(Damage::Frame(e))),
                }
            }
        };
        if count > 0 && first != self.at {
            return Ok(Err(Damage::LsnMismatch { found: first }));
        }
        self.pos += len as u64;
        if count > 0 {
            self.at = first + u64::from(count);
            self.current = Some(Current {
                kind,
                source,
                len: payload_len,
                first,
                count,
                next: 0,
                entry_at: BATCH_ENTRIES_AT,
                end: self.pos,
            });
        }
        Ok(Ok(()))
    }
}

//! The ring log's writer: the write buffer, frames and marks, padding to the
//! program unit, programs and syncs, and poisoning on failure.

use super::error::{Broken, Step};
use super::layout::{Seg, mark_frame_len};
use super::{Error, Placed, RingLog};
use crate::device::{BlockDevice, Op, check_access};
#[cfg(feature = "v1")]
use crate::format::EncodedFrame;
use crate::format::{EncodeError, EpochKey, FRAME_HEADER_LEN, Mark, Seal, Version, v2};
use crate::ring::WriteBuffer;
use crate::{Lsn, Record};

/// A frame to write into the active segment, in its format version.
pub(super) enum Out<'a> {
    #[cfg(feature = "v1")]
    V1(EncodedFrame<'a>),
    /// A v2 frame, with the epoch and the LSN it is bound to.
    V2(v2::EncodedFrame<'a>, EpochKey, Lsn),
}

impl<'a> Out<'a> {
    /// The frame of `record`, at LSN `lsn` of `seg`.
    pub(super) fn record(seg: &Seg, lsn: Lsn, record: &'a Record<'a>) -> Result<Self, EncodeError> {
        Ok(match seg.version {
            #[cfg(feature = "v1")]
            Version::V1 => Self::V1(EncodedFrame::record(seg.key, lsn_offset(seg.base_lsn, lsn), record)?),
            #[cfg(not(feature = "v1"))]
            Version::V1 => return Err(EncodeError::VersionNotBuilt),
            Version::V2 if Version::V2.built() => Self::V2(v2::EncodedFrame::record(record)?, seg.key, lsn),
            Version::V2 => return Err(EncodeError::VersionNotBuilt),
        })
    }

    /// The frame of a batch whose first LSN is `first`.
    pub(super) fn batch(seg: &Seg, first: Lsn, records: &'a [Record<'a>]) -> Result<Self, EncodeError> {
        Ok(match seg.version {
            #[cfg(feature = "v1")]
            Version::V1 => Self::V1(EncodedFrame::batch(seg.key, lsn_offset(seg.base_lsn, first), records)?),
            #[cfg(not(feature = "v1"))]
            Version::V1 => return Err(EncodeError::VersionNotBuilt),
            Version::V2 if Version::V2.built() => Self::V2(v2::EncodedFrame::batch(records)?, seg.key, first),
            Version::V2 => return Err(EncodeError::VersionNotBuilt),
        })
    }

    /// A mark, bound to (or, in v1, at the offset of) the next LSN.
    pub(super) fn mark(seg: &Seg, next: Lsn, mark: Mark) -> Self {
        #[cfg(feature = "v1")]
        if seg.version == Version::V1 {
            return Self::V1(EncodedFrame::mark(seg.key, lsn_offset(seg.base_lsn, next), mark));
        }
        Self::V2(v2::EncodedFrame::mark(mark), seg.key, next)
    }

    /// Calls `f` with the payload's bytes, in pieces.
    fn for_each_payload_piece(&self, f: impl FnMut(&[u8])) {
        match self {
            #[cfg(feature = "v1")]
            Self::V1(frame) => frame.for_each_payload_piece(f),
            Self::V2(frame, ..) => frame.for_each_payload_piece(f),
        }
    }

    #[cfg(feature = "std")]
    pub(super) fn len(&self) -> usize {
        match self {
            #[cfg(feature = "v1")]
            Self::V1(frame) => frame.len(),
            Self::V2(frame, ..) => frame.len(),
        }
    }
}

/// The length of the frame of a payload of `body_len` bytes in `version`.
pub(super) const fn frame_len(version: Version, body_len: u64) -> u64 {
    let header = match version {
        Version::V1 => FRAME_HEADER_LEN,
        Version::V2 if body_len > v2::SHORT_MAX as u64 => v2::LONG_FRAME_HEADER_LEN,
        Version::V2 => v2::FRAME_HEADER_LEN,
    };
    body_len.saturating_add(header as u64)
}

/// The LSN offset of `lsn` in a segment of base LSN `base_lsn` (format v1;
/// checked by `reserve`).
#[cfg(feature = "v1")]
const fn lsn_offset(base_lsn: Lsn, lsn: Lsn) -> u32 {
    (lsn - base_lsn) as u32
}

impl<D: BlockDevice, B: WriteBuffer> RingLog<'_, D, B> {
    pub(super) fn check_usable(&mut self) -> Step<()> {
        if self.state.poisoned { Err(self.fault.raise(Error::Poisoned)) } else { Ok(()) }
    }

    /// Poisons the log for a broken invariant.
    #[cold]
    pub(super) fn broken(&mut self, what: Broken) -> super::error::Failed {
        self.state.poisoned = true;
        self.fault.internal(what)
    }

    /// Poisons the log and keeps `error` for the public method.
    #[cold]
    pub(super) fn poison(&mut self, error: Error<D::Error>) -> super::error::Failed {
        self.state.poisoned = true;
        self.fault.raise(error)
    }

    pub(super) fn has_unsynced_bytes(&self) -> bool {
        self.state.active.as_ref().is_some_and(|a| a.pos > a.buf_start)
    }

    /// Makes sure the active segment has room for a frame of `frame_len`
    /// bytes holding `count` LSNs (and the mark that must precede it),
    /// rotating when it has not. Returns where the frame goes: the active
    /// segment's epoch key and base LSN.
    pub(super) fn reserve(&mut self, frame_len: u64, count: u32) -> Step<Placed> {
        let max = self.layout.max_frame_len();
        if frame_len > max {
            return Err(self.fault.raise(Error::RecordTooLarge { len: frame_len, max }));
        }
        loop {
            let Some(active) = &self.state.active else {
                self.start_segment()?;
                continue;
            };
            // On a device that may reorder writes, the first frame after a
            // completed sync is preceded by a mark of how far it got.
            let needs_mark =
                !self.device.writes_persist_in_order() && active.marked_durable < self.state.durable_end;
            let mark_len = if needs_mark { mark_frame_len(active.seg.version) } else { 0 };
            let fits = active.pos + mark_len + frame_len + self.layout.tail_reserve()
                <= active.seg.frames_end(self.layout.segment_size);
            let offset_fits =
                (self.state.next_lsn - active.seg.base_lsn + u64::from(count)) <= u64::from(u32::MAX);
            if fits && offset_fits {
                if mark_len > 0 {
                    self.write_mark()?;
                }
                return match &self.state.active {
                    Some(active) => Ok(Placed { seg: active.seg }),
                    None => Err(self.broken(Broken::NoActiveAfterMark)),
                };
            }
            self.seal_active()?;
        }
    }

    /// The length of the mark due before the next frame in `active` (0 if
    /// none), and whether a frame of `frame_len` bytes holding `count` LSNs
    /// fits there after it. On a device that may reorder writes, the first
    /// frame after a completed sync is preceded by a mark of how far it got.
    /// [`reserve`](Self::reserve) computes the same inline: calling this
    /// from there cost a firmware image of format v1 226 bytes of flash.
    #[cfg(feature = "std")]
    fn room(&self, active: &super::Active, frame_len: u64, count: u32) -> (u64, bool) {
        let needs_mark =
            !self.device.writes_persist_in_order() && active.marked_durable < self.state.durable_end;
        let mark_len = if needs_mark { mark_frame_len(active.seg.version) } else { 0 };
        let fits = active.pos + mark_len + frame_len + self.layout.tail_reserve()
            <= active.seg.frames_end(self.layout.segment_size);
        let offset_fits =
            (self.state.next_lsn - active.seg.base_lsn + u64::from(count)) <= u64::from(u32::MAX);
        (mark_len, fits && offset_fits)
    }

    /// Whether a frame of `frame_len` bytes holding `count` LSNs (and the
    /// mark due before it) goes into the write buffer's free space and the
    /// active segment, so that appending it programs nothing: no segment to
    /// start or seal, no full buffer to program. With `std` such a frame is
    /// written in place ([`write_frame`](Self::write_frame)).
    #[cfg(feature = "std")]
    pub(super) fn fits_buffered(&self, frame_len: u64, count: u32) -> bool {
        self.buffered_mark(frame_len, count).is_some()
    }

    /// The length of the mark due before a frame of `frame_len` bytes
    /// holding `count` LSNs (0 if none) when both go into the write
    /// buffer's free space and the active segment; `None` when they do not
    /// ([`fits_buffered`](Self::fits_buffered)).
    #[cfg(feature = "std")]
    fn buffered_mark(&self, frame_len: u64, count: u32) -> Option<u64> {
        let active = self.state.active.as_ref()?;
        let (mark_len, in_segment) = self.room(active, frame_len, count);
        // Each frame is written in place only when it leaves the buffer not
        // full (`write_frame`).
        let used = active.pos - active.buf_start;
        let in_buffer = used + mark_len + frame_len < self.buffer.as_ref().len() as u64;
        (in_segment && in_buffer && frame_len <= self.layout.max_frame_len()).then_some(mark_len)
    }

    /// Appends `record` in one step when its frame is a short format v2
    /// frame that goes into the write buffer's free space with no mark due
    /// before it ([`buffered_mark`](Self::buffered_mark) is `Some(0)`): the
    /// frame is written in place and nothing is programmed. `None`
    /// otherwise, with the log unchanged; the general path then appends it,
    /// with the same bytes. Most appends of a stream take this path.
    #[cfg(feature = "std")]
    #[inline]
    pub(super) fn append_in_buffer(&mut self, record: &Record<'_>) -> Option<Lsn> {
        let lsn = self.state.next_lsn;
        let v2 = Version::V2.built() && self.state.active.as_ref()?.seg.version == Version::V2;
        if self.state.poisoned || lsn == Lsn::MAX || !v2 {
            return None;
        }
        let frame_len = frame_len(Version::V2, crate::format::body::record_body_len(record));
        if self.buffered_mark(frame_len, 1)? != 0 {
            return None;
        }
        let active = self.state.active.as_mut()?;
        let at = (active.pos - active.buf_start) as usize;
        let (len, crc) =
            v2::write_short_record(self.buffer.as_mut().get_mut(at..)?, record, &active.seg.key, lsn)?;
        active.frames_crc.add(crc);
        active.pos += len as u64;
        self.state.next_lsn = lsn + 1;
        Some(lsn)
    }

    /// Writes a mark of the current durable point and start.
    pub(super) fn write_mark(&mut self) -> Step<()> {
        let Some(active) = &self.state.active else { return Ok(()) };
        let mark = Mark { durable_end: self.state.durable_end, log_start: self.state.log_start };
        let frame = Out::mark(&active.seg, self.state.next_lsn, mark);
        self.write_frame(&frame)?;
        if let Some(active) = self.state.active.as_mut() {
            active.marked_durable = self.state.durable_end;
        }
        Ok(())
    }

    /// Copies a frame into the write buffer, programming the buffer each
    /// time it fills.
    pub(super) fn write_frame(&mut self, frame: &Out<'_>) -> Step<()> {
        // The common case: the frame fits in the buffer's free space (and
        // leaves it not full, which would call for programming): written in
        // place, its checks computed in one pass over the bytes written.
        // With the CPU's CRC instructions (`std`) that is 1.6x as fast as
        // streaming it. Without `std` every frame is streamed: the code
        // would cost a firmware image 376 bytes of flash, for a gain that
        // the portable CRC's per-byte cost makes smaller. The bytes written
        // are the same.
        #[cfg(feature = "std")]
        if let Some(active) = self.state.active.as_mut() {
            let at = (active.pos - active.buf_start) as usize;
            if let Some(free) = self.buffer.as_mut().get_mut(at..)
                && frame.len() < free.len()
            {
                match frame {
                    #[cfg(feature = "v1")]
                    Out::V1(frame) => {
                        self.fault.lift(frame.write_to(free))?;
                    }
                    Out::V2(frame, key, lsn) => {
                        self.fault.lift(frame.write_to(free, key, *lsn))?;
                        active.frames_crc.add(stored_crc(free));
                    }
                }
                active.pos += frame.len() as u64;
                return Ok(());
            }
        }
        // Streamed: the header (its checks take a pass over the payload),
        // then the payload in pieces.
        let mut header = [0u8; FRAME_HEADER_LEN];
        let len = match frame {
            #[cfg(feature = "v1")]
            Out::V1(frame) => {
                header = frame.header();
                FRAME_HEADER_LEN
            }
            Out::V2(frame, key, lsn) if Version::V2.built() => {
                let (h, hl) = frame.header(key, *lsn);
                header[..hl].copy_from_slice(&h[..hl]);
                if let Some(active) = self.state.active.as_mut() {
                    active.frames_crc.add(stored_crc(&h));
                }
                hl
            }
            Out::V2(..) => return Err(self.broken(Broken::Unexplained)),
        };
        self.write_bytes(&header[..len])?;
        let mut result = Ok(());
        frame.for_each_payload_piece(|piece| {
            if result.is_ok() {
                result = self.write_bytes(piece);
            }
        });
        result
    }

    fn write_bytes(&mut self, mut bytes: &[u8]) -> Step<()> {
        let Some(active) = &self.state.active else {
            return Err(self.broken(Broken::WriteWithoutActive));
        };
        let (abs, mut pos, mut buf_start) = (active.seg.abs, active.pos, active.buf_start);
        while !bytes.is_empty() {
            let at = (pos - buf_start) as usize;
            let n = bytes.len().min(self.buffer.as_ref().len() - at);
            self.buffer.as_mut()[at..at + n].copy_from_slice(&bytes[..n]);
            pos += n as u64;
            bytes = &bytes[n..];
            if at + n == self.buffer.as_ref().len() {
                let len = self.buffer.as_ref().len();
                self.program(abs + buf_start, len)?;
                buf_start += len as u64;
            }
        }
        if let Some(active) = &mut self.state.active {
            (active.pos, active.buf_start) = (pos, buf_start);
        }
        Ok(())
    }

    /// Programs `buffer[..len]` at device offset `at`; a failure poisons.
    fn program(&mut self, at: u64, len: usize) -> Step<()> {
        let result =
            check_access(&self.device.geometry(), self.device.capacity(), Op::Program, at, len as u64)
                .map_err(Error::Access)
                .and_then(|()| self.device.program(at, &self.buffer.as_ref()[..len]).map_err(Error::Device));
        result.map_err(|e| self.poison(e))
    }

    pub(super) fn device_sync(&mut self) -> Step<()> {
        self.device.sync().map_err(|e| self.poison(Error::Device(e)))
    }

    /// Programs everything buffered, padding to the next program-unit
    /// boundary first, so that no unit is ever programmed twice.
    pub(super) fn flush_padded(&mut self) -> Step<()> {
        let Some(active) = &self.state.active else { return Ok(()) };
        let pu = u64::from(self.layout.program_unit);
        let partial = active.pos & (pu - 1);
        let v2 = Version::V2.built() && active.seg.version == Version::V2;
        if partial != 0 && v2 && self.layout.erase_value.is_none() {
            // Without erase, a padding frame to the boundary: space after
            // the frames may hold data of an earlier lap, so the padding
            // tells damage to the last frame from never-written space.
            let mut pad = pu - partial;
            while pad < v2::FRAME_HEADER_LEN as u64 {
                pad += pu;
            }
            let frame = self.fault.lift(v2::EncodedFrame::padding(pad as usize))?;
            self.write_frame(&Out::V2(frame, active.seg.key, self.state.next_lsn))?;
        } else if partial != 0 && v2 {
            // Fill to the boundary with the erase value (FORMAT.md section
            // v2.4): erased space after it is never-written space.
            let fill = [self.layout.erase_value.unwrap_or(0); 64];
            let mut left = (pu - partial) as usize;
            while left > 0 {
                let n = left.min(fill.len());
                self.write_bytes(&fill[..n])?;
                left -= n;
            }
        } else if partial != 0 {
            #[cfg(feature = "v1")]
            {
                let mut pad = pu - partial;
                while pad < FRAME_HEADER_LEN as u64 {
                    pad += pu;
                }
                let frame = EncodedFrame::padding(
                    active.seg.key,
                    lsn_offset(active.seg.base_lsn, self.state.next_lsn),
                    pad as usize,
                );
                let frame = self.fault.lift(frame)?;
                self.write_frame(&Out::V1(frame))?;
            }
        }
        let Some(active) = &self.state.active else {
            return Err(self.broken(Broken::FlushWithoutActive));
        };
        let (at, pos) = (active.seg.abs + active.buf_start, active.pos);
        let len = (pos - active.buf_start) as usize;
        if len > 0 {
            self.program(at, len)?;
            if let Some(active) = &mut self.state.active {
                active.buf_start = pos;
            }
        }
        Ok(())
    }

    /// Flushes and syncs; the durable point moves to every appended record.
    pub(super) fn sync_now(&mut self) -> Step<()> {
        self.flush_padded()?;
        self.device_sync()?;
        self.state.durable_end = self.state.next_lsn;
        Ok(())
    }

    /// Ends the active segment: everything in it becomes durable, so that
    /// every segment but the newest is always whole on the medium.
    /// In format v2 the seal is programmed after that sync (the next sync
    /// makes it durable): a seal that checks out always speaks of frames
    /// that were durable before it. A crash may leave it blank or torn.
    pub(super) fn seal_active(&mut self) -> Step<()> {
        self.sync_now()?;
        if let Some(active) = self.state.active
            && Version::V2.built()
            && active.seg.version == Version::V2
        {
            self.write_seal(&active.seg, active.frames_crc.value())?;
        }
        self.state.active = None;
        Ok(())
    }

    /// Programs format v2's seal into the seal slot of `seg` (FORMAT.md
    /// section v2.6): its record count and the CRC of its frames' CRCs,
    /// bound to its base LSN. Called with the buffer flushed and synced.
    fn write_seal(&mut self, seg: &Seg, frames_crc: u32) -> Step<()> {
        let records = self.state.next_lsn - seg.base_lsn;
        let Ok(records) = u32::try_from(records) else {
            return Err(self.broken(Broken::SegmentOverfull));
        };
        let slot_len = (self.layout.segment_size - seg.frames_end(self.layout.segment_size)) as usize;
        let fill = self.layout.erase_value.unwrap_or(0);
        let buffer = self.buffer.as_mut();
        let Some(slot) = buffer.get_mut(..slot_len) else {
            return Err(self.broken(Broken::SegmentOverfull));
        };
        slot.fill(fill);
        // The header and the 8-byte payload (the seal slot is at least 16
        // bytes, the seal's length).
        let seal = v2::EncodedFrame::seal(Seal { records, frames_crc });
        let (header, hl) = seal.header(&seg.key, seg.base_lsn);
        slot[..hl].copy_from_slice(&header[..hl]);
        let mut at = hl;
        seal.for_each_payload_piece(|piece| {
            slot[at..at + piece.len()].copy_from_slice(piece);
            at += piece.len();
        });
        self.program(seg.abs + seg.frames_end(self.layout.segment_size), slot_len)
    }
}

/// The CRC field of the v2 frame at the start of `frame`.
fn stored_crc(frame: &[u8]) -> u32 {
    let hl = if frame[0] & 0x40 != 0 { v2::LONG_FRAME_HEADER_LEN } else { v2::FRAME_HEADER_LEN };
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&frame[hl - 4..hl]);
    u32::from_le_bytes(crc)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use crate::ring::{RingConfig, RingLog};
    use crate::{Geometry, RamDevice, Record};

    /// `append_buffered` appends only what programs nothing, leaves the
    /// log unchanged otherwise, and reports a poisoned log and an empty
    /// batch as `append` and `append_batch` do.
    #[cfg(feature = "std")]
    #[test]
    fn buffered_appends_program_nothing_and_report_what_append_reports() {
        let geometry = Geometry::block(512).unwrap();
        let mut ram = RamDevice::new(vec![0u8; 16 * 4096], geometry).unwrap();
        let mut buffer = [0u8; 1024];
        let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(16384), &mut buffer).unwrap();
        assert_eq!(log.append_buffered(&Record::raw(b"a")).unwrap(), None, "no segment started yet");
        assert_eq!(log.next_lsn(), 0);
        log.append(&Record::raw(b"a")).unwrap();
        let mut appended = 1;
        // Fill the buffer with buffered appends until one would program it.
        while let Some(lsn) = log.append_buffered(&Record::raw(&[7; 100])).unwrap() {
            assert_eq!(lsn, appended);
            appended += 1;
        }
        assert!(appended > 2, "some fit: {appended}");
        assert_eq!(log.next_lsn(), appended, "the refused one was not appended");
        assert!(log.append_batch_buffered(&[]).is_err(), "an empty batch is an error");
        log.sync_failed();
        assert!(log.append_buffered(&Record::raw(b"b")).is_err(), "poisoned");
        assert!(log.append_batch_buffered(&[Record::raw(b"b")]).is_err(), "poisoned");
    }

    /// Records of every size from 0 to 299 bytes through a 1 KiB write
    /// buffer, whose end many frames cross: with `std` the frames that fit
    /// are written whole and the others streamed, without it every frame is
    /// streamed (`cargo test -p nori-wal-core --no-default-features`). Both
    /// read back the same after a reopen.
    #[test]
    fn records_of_every_size_read_back_after_a_reopen() {
        let geometry = Geometry::block(512).unwrap();
        let mut ram = RamDevice::new(vec![0u8; 64 * 4096], geometry).unwrap();
        let mut buffer = [0u8; 1024];
        let payloads: Vec<Vec<u8>> =
            (0..300usize).map(|n| (0..n).map(|i| (i * 7 + n) as u8).collect()).collect();
        {
            let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(16384), &mut buffer).unwrap();
            for (i, payload) in payloads.iter().enumerate() {
                assert_eq!(log.append(&Record::raw(payload)).unwrap(), i as u64);
                if i % 37 == 0 {
                    log.sync().unwrap();
                }
            }
            log.sync().unwrap();
        }
        let (mut log, info) = RingLog::open(&mut ram, RingConfig::new(16384), &mut buffer).unwrap();
        assert_eq!(info.records, payloads.len() as u64);
        let mut read = [0u8; 1024];
        let mut iter = log.iter_from(0, &mut read).unwrap();
        let mut n = 0;
        while let Some(entry) = iter.try_next().unwrap() {
            assert_eq!(entry.lsn, n as u64);
            assert_eq!(entry.record.raw_payload(), Some(&payloads[n][..]));
            n += 1;
        }
        assert_eq!(n, payloads.len());
    }
}

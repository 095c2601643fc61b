//! The ring log's writer: the write buffer, frames and marks, padding to the
//! program unit, programs and syncs, and poisoning on failure.

use super::error::{Broken, Step};
use super::layout::MARK_FRAME_LEN;
use super::{Error, Placed, RingLog, lsn_offset};
use crate::device::{BlockDevice, Op, check_access};
use crate::format::{EncodedFrame, FRAME_HEADER_LEN, Mark};
use crate::ring::WriteBuffer;

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
            let mark_len = if needs_mark { MARK_FRAME_LEN } else { 0 };
            let fits =
                active.pos + mark_len + frame_len + self.layout.tail_reserve() <= self.layout.segment_size;
            let offset_fits =
                (self.state.next_lsn - active.seg.base_lsn + u64::from(count)) <= u64::from(u32::MAX);
            if fits && offset_fits {
                if mark_len > 0 {
                    self.write_mark()?;
                }
                return match &self.state.active {
                    Some(active) => Ok(Placed { key: active.seg.key, base_lsn: active.seg.base_lsn }),
                    None => Err(self.broken(Broken::NoActiveAfterMark)),
                };
            }
            self.seal_active()?;
        }
    }

    /// Writes a mark of the current durable point and start.
    pub(super) fn write_mark(&mut self) -> Step<()> {
        let Some(active) = &self.state.active else { return Ok(()) };
        let mark = Mark { durable_end: self.state.durable_end, log_start: self.state.log_start };
        let frame =
            EncodedFrame::mark(active.seg.key, lsn_offset(active.seg.base_lsn, self.state.next_lsn), mark);
        self.write_frame(&frame)?;
        if let Some(active) = self.state.active.as_mut() {
            active.marked_durable = self.state.durable_end;
        }
        Ok(())
    }

    /// Copies a frame into the write buffer, programming the buffer each
    /// time it fills.
    pub(super) fn write_frame(&mut self, frame: &EncodedFrame<'_>) -> Step<()> {
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
                self.fault.lift(frame.write_to(free))?;
                active.pos += frame.len() as u64;
                return Ok(());
            }
        }
        self.write_bytes(&frame.header())?;
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
        if partial != 0 {
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
            self.write_frame(&frame)?;
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
    pub(super) fn seal_active(&mut self) -> Step<()> {
        self.sync_now()?;
        self.state.active = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use crate::ring::{RingConfig, RingLog};
    use crate::{Geometry, RamDevice, Record};

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

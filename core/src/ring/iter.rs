//! Reading the log from an LSN.

use super::error::{Broken, Corruption, Damage, Error, Failed, Step};
use super::layout::Seg;
use super::scan::Reader;
use super::window::{Overlay, Window};
use super::{RecoveryMode, RingLog};
use crate::device::BlockDevice;
use crate::format::{Compression, FrameKind, record_at};
use crate::ring::WriteBuffer;
use crate::{Lsn, Record};

/// A record read back, with its LSN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Entry<'a> {
    /// The record's LSN.
    pub lsn: Lsn,
    /// The record, borrowing the iterator's buffer.
    pub record: Record<'a>,
}

/// The frame whose records are being returned.
#[derive(Debug, Clone, Copy)]
struct Current {
    pos: u64,
    len: u64,
    kind: FrameKind,
    /// Length of the frame's header.
    header_len: usize,
    /// LSN of the next record of the frame.
    lsn: Lsn,
    /// Records of the frame not yet returned.
    left: u32,
    /// Offset in the payload of the next batch entry.
    entry_at: usize,
}

/// Reads records in LSN order from a [`RingLog`]; see
/// [`RingLog::iter_from`]. Not a `std` iterator: each record borrows the
/// iterator's buffer until the next call.
pub struct Iter<'r, 'b, D: BlockDevice, B: WriteBuffer = &'b mut [u8]> {
    log: &'r mut RingLog<'b, D, B>,
    window: Window<'r>,
    seg: Seg,
    /// The LSN at which the current segment ends (the next one's base);
    /// `None` for the newest.
    seg_end: Option<Lsn>,
    pos: u64,
    /// The LSN the frame at `pos` is expected to start at (format v2 checks
    /// it there).
    pos_lsn: Lsn,
    /// The next LSN to return.
    lsn: Lsn,
    current: Option<Current>,
}

impl<D: BlockDevice> core::fmt::Debug for Iter<'_, '_, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Iter").field("lsn", &self.lsn).field("pos", &self.pos).finish_non_exhaustive()
    }
}

type Result<T, E> = core::result::Result<T, Error<E>>;

/// The bytes of the active segment still in the write buffer, to lay over
/// what the device holds.
fn unwritten<'a>(active: Option<&super::Active>, buffer: &'a [u8]) -> Overlay<'a> {
    match active {
        Some(a) => {
            Overlay { start: a.seg.abs + a.buf_start, bytes: &buffer[..(a.pos - a.buf_start) as usize] }
        }
        None => Overlay::NONE,
    }
}

impl<'r, 'b, D: BlockDevice, B: WriteBuffer> Iter<'r, 'b, D, B> {
    pub(crate) fn new(
        log: &'r mut RingLog<'b, D, B>,
        lsn: Lsn,
        buffer: &'r mut [u8],
    ) -> Result<Self, D::Error> {
        let (first, next) = (log.state.log_start, log.state.next_lsn);
        if lsn < first || lsn > next {
            return Err(Error::LsnOutOfRange { lsn, first, next });
        }
        super::layout::check_buffer(&log.device.geometry(), buffer.len())?;
        let mut iter = Self {
            log,
            window: Window::new(buffer),
            seg: Seg::probe(0, 0),
            seg_end: None,
            pos: 0,
            pos_lsn: 0,
            lsn,
            current: None,
        };
        if lsn < next {
            let step = iter.seek(lsn);
            iter.log.fault.out(step)?;
        }
        Ok(iter)
    }

    /// Positions the iterator at the segment that holds `lsn`.
    #[inline(never)]
    fn seek(&mut self, lsn: Lsn) -> Step<()> {
        let Some(oldest) = self.log.state.oldest else {
            return Err(self.log.fault.internal(Broken::RecordsWithoutSegment));
        };
        let slots = self.log.layout.slots;
        let count = (self.log.state.newest + slots - oldest) % slots + 1;
        // Bases increase in ring order from the oldest: binary search.
        let (mut lo, mut hi) = (0, count - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let slot = (oldest + mid) % slots;
            if self.segment(slot)?.base_lsn <= lsn { lo = mid } else { hi = mid - 1 }
        }
        self.enter((oldest + lo) % slots)
    }

    /// The header of a segment the log holds, as a [`Seg`].
    fn segment(&mut self, slot: u32) -> Step<Seg> {
        if let Some(active) = self.log.state.active.as_ref().filter(|a| a.seg.slot == slot) {
            return Ok(active.seg);
        }
        let h = reader(self.log, &mut self.window).held_header(slot)?;
        Ok(Seg::new(slot, self.log.layout.offset(slot), &h, self.log.layout.segment_size))
    }

    fn enter(&mut self, slot: u32) -> Step<()> {
        self.seg = self.segment(slot)?;
        (self.pos, self.pos_lsn) = (self.seg.frames_offset(), self.seg.base_lsn);
        self.seg_end = if slot == self.log.state.newest {
            None
        } else {
            Some(self.segment(self.log.layout.next(slot))?.base_lsn)
        };
        self.current = None;
        Ok(())
    }

    /// The next record, or `None` past the last one appended.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] for damage found while reading (in
    /// [`RecoveryMode::SkipDamaged`] damaged records are skipped instead),
    /// [`Error::BufferTooSmall`] for a frame larger than the buffer, or a
    /// device error.
    pub fn try_next(&mut self) -> Result<Option<Entry<'_>>, D::Error> {
        let current = match self.next_step() {
            Ok(Some(current)) => current,
            Ok(None) => return Ok(None),
            Err(Failed) => return Err(self.log.fault.take()),
        };
        self.record_at(&current).map(|record| Some(Entry { lsn: current.lsn, record }))
    }

    /// Moves to the next record; returns the frame that holds it, with the
    /// record's LSN and entry offset.
    fn next_step(&mut self) -> Step<Option<Current>> {
        loop {
            if self.lsn >= self.log.state.next_lsn {
                return Ok(None);
            }
            if let Some(current) = self.current.filter(|c| c.left > 0) {
                let entry_at = self.next_entry_at(&current)?;
                self.current =
                    Some(Current { lsn: current.lsn + 1, left: current.left - 1, entry_at, ..current });
                if current.lsn < self.lsn {
                    continue;
                }
                self.lsn = current.lsn + 1;
                return Ok(Some(current));
            }
            if self.seg_end == Some(self.lsn) {
                let next = self.log.layout.next(self.seg.slot);
                self.enter(next)?;
                continue;
            }
            self.advance()?;
        }
    }

    /// Reads the frame at the current position and makes it current.
    fn advance(&mut self) -> Step<()> {
        let pos = self.pos;
        let found = match reader(self.log, &mut self.window).frame_at(&self.seg, pos, self.pos_lsn)? {
            Ok(found) => found,
            Err(damage) => return self.damaged(damage),
        };
        let len = found.frame_len as u64;
        if found.count > 0 && found.lsn + u64::from(found.count) <= self.lsn {
            // Entirely before the LSN asked for.
        } else if found.count > 0 {
            if found.lsn > self.lsn {
                return self.damaged(Damage::LsnMismatch { found: found.lsn });
            }
            // A ring holds no holes (a repair cannot rewrite a slot in place).
            if found.compression != Compression::None || found.kind == FrameKind::Hole {
                return self.damaged(Damage::Unsupported);
            }
            if len > self.window.max_span(self.log.layout.read_unit) {
                let available = self.window.max_span(1);
                return Err(self.log.fault.raise(Error::BufferTooSmall { needed: len, available }));
            }
            let entry_at = if found.kind == FrameKind::Batch { 4 } else { 0 };
            self.current = Some(Current {
                pos,
                len,
                kind: found.kind,
                header_len: found.header_len,
                lsn: found.lsn,
                left: found.count,
                entry_at,
            });
        }
        self.pos = pos + len;
        self.pos_lsn = found.lsn.saturating_add(u64::from(found.count));
        Ok(())
    }

    /// Damage at the current position: an error, or in `SkipDamaged` a jump
    /// to the next valid frame.
    #[inline(never)]
    fn damaged(&mut self, damage: Damage) -> Step<()> {
        if self.log.config.recovery != RecoveryMode::SkipDamaged {
            let corruption =
                Corruption { segment: self.seg.slot, offset: self.seg.abs + self.pos, lsn: self.lsn, damage };
            return Err(self.log.fault.corrupt(corruption));
        }
        let (from, lsn) = (self.pos, self.lsn);
        let known = self.pos_lsn;
        match reader(self.log, &mut self.window).next_valid(&self.seg, from, known, lsn)? {
            Some((pos, found_lsn)) if self.seg_end.is_none_or(|end| found_lsn < end) => {
                (self.pos, self.pos_lsn) = (pos, found_lsn);
                self.lsn = found_lsn;
            }
            _ => match self.seg_end {
                Some(end) => self.lsn = end,
                None => self.lsn = self.log.state.next_lsn,
            },
        }
        Ok(())
    }

    /// Where the entry after the current one of a batch starts.
    fn next_entry_at(&mut self, current: &Current) -> Step<usize> {
        if current.kind != FrameKind::Batch {
            return Ok(0);
        }
        let frame = reader(self.log, &mut self.window).into_bytes(self.seg.abs, current.pos, current.len)?;
        match record_at(current.kind, &frame[current.header_len..], current.entry_at) {
            Ok((_, next)) => Ok(next),
            Err(e) => Err(self.log.fault.raise(malformed(&self.seg, current, e))),
        }
    }

    /// The record of `current` at its entry offset, borrowed from the window.
    fn record_at(&mut self, current: &Current) -> Result<Record<'_>, D::Error> {
        let seg = &self.seg;
        let log = &mut *self.log;
        let reader = Reader {
            device: &mut log.device,
            overlay: unwritten(log.state.active.as_ref(), log.buffer.as_ref()),
            window: &mut self.window,
            layout: log.layout,
            fault: &mut log.fault,
        };
        let Ok(frame) = reader.into_bytes(seg.abs, current.pos, current.len) else {
            return Err(log.fault.take());
        };
        match record_at(current.kind, &frame[current.header_len..], current.entry_at) {
            Ok((record, _)) => Ok(record),
            Err(e) => Err(malformed(seg, current, e)),
        }
    }
}

/// A reader of the log's device through `window`, with the log's unwritten
/// bytes laid over it.
fn reader<'s, 'w, 'b, D: BlockDevice, B: WriteBuffer>(
    log: &'s mut RingLog<'b, D, B>,
    window: &'s mut Window<'w>,
) -> Reader<'s, 's, 'w, D> {
    let overlay = unwritten(log.state.active.as_ref(), log.buffer.as_ref());
    Reader { device: &mut log.device, overlay, window, layout: log.layout, fault: &mut log.fault }
}

/// The error for a checked frame whose records do not parse.
#[cold]
fn malformed<E>(seg: &Seg, current: &Current, error: crate::DecodeError) -> Error<E> {
    Error::Corrupt(Corruption {
        segment: seg.slot,
        offset: seg.abs + current.pos,
        lsn: current.lsn,
        damage: Damage::Frame(error),
    })
}

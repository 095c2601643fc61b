//! The ring log's slots: which segments the log holds, starting a new one
//! (erased and checked blank first), and reading their headers.

use super::error::{Broken, Step};
use super::layout::Seg;
use super::scan::Reader;
use super::window::{Overlay, Window};
use super::writer::Out;
use super::{Active, Error, FullPolicy, RingLog};
use crate::Lsn;
use crate::device::{BlockDevice, Op, check_access};
#[cfg(feature = "v1")]
use crate::format::SegmentHeader;
use crate::format::{AnyHeader, Mark, Version, v2};
use crate::ring::WriteBuffer;

impl<D: BlockDevice, B: WriteBuffer> RingLog<'_, D, B> {
    /// The oldest segment that still holds LSNs at or above the log's
    /// start; the newest is always kept. Needs an empty write buffer.
    pub(super) fn first_retained(&mut self) -> Step<Option<u32>> {
        let Some(mut oldest) = self.state.oldest else { return Ok(None) };
        while oldest != self.state.newest {
            let after = self.layout.next(oldest);
            if self.read_header(after)?.base_lsn > self.state.log_start {
                break;
            }
            oldest = after;
        }
        Ok(Some(oldest))
    }

    /// Starts a segment in the free slot after the newest, dropping the
    /// oldest segment first when the ring would have no free slot left.
    /// Called with no active segment (so an empty write buffer).
    #[inline(never)]
    pub(super) fn start_segment(&mut self) -> Step<()> {
        if self.state.active.is_some() {
            return Err(self.broken(Broken::ActiveAtStart));
        }
        let (slot, mut oldest) = match self.first_retained()? {
            None => (0, 0),
            Some(oldest) => {
                let slot = self.layout.next(self.state.newest);
                // The newest is wholly below the start: the new segment is alone.
                let alone = oldest == self.state.newest && self.state.next_lsn <= self.state.log_start;
                (slot, if alone { slot } else { oldest })
            }
        };
        let mut log_start = self.state.log_start;
        if oldest != slot && self.layout.next(slot) == oldest {
            // Taking this slot would leave none free.
            match self.config.when_full {
                FullPolicy::Error => return Err(self.fault.raise(Error::Full)),
                FullPolicy::OverwriteOldest => {
                    let after = self.layout.next(oldest);
                    let end =
                        if after == slot { self.state.next_lsn } else { self.read_header(after)?.base_lsn };
                    log_start = log_start.max(end);
                    oldest = after;
                }
            }
        }
        self.prepare_slot(slot)?;
        let Some(epoch) = self.state.max_epoch.checked_add(1) else {
            return Err(self.fault.raise(Error::Exhausted));
        };
        let base_lsn = self.state.next_lsn;
        // A segment opens with a mark of the log's start and durable point,
        // except in format v2 on media that keep write order, where the
        // chain of segments before it already says where the log starts
        // (its first frame then comes in the same program as its header).
        let marked = !Version::V2.built()
            || self.layout.version == Version::V1
            || !self.device.writes_persist_in_order()
            || log_start > self.chain_floor(slot, epoch, base_lsn)?;
        // Checked as it is encoded.
        let (segment_size, program_unit) = (self.layout.segment_size, self.layout.program_unit);
        let frames_offset = self.layout.frames_offset as usize;
        self.buffer.as_mut()[..frames_offset].fill(0);
        let out = &mut self.buffer.as_mut()[..frames_offset];
        let header: AnyHeader = match self.layout.version {
            #[cfg(not(feature = "v1"))]
            Version::V1 => return Err(self.fault.raise(Error::Encode(crate::EncodeError::VersionNotBuilt))),
            #[cfg(feature = "v1")]
            Version::V1 => {
                let header = SegmentHeader { epoch, base_lsn, log_start, segment_size, program_unit };
                self.fault.lift(header.encode(out))?;
                header.into()
            }
            Version::V2 if !Version::V2.built() => {
                return Err(self.fault.raise(Error::Encode(crate::EncodeError::VersionNotBuilt)));
            }
            Version::V2 => {
                // Every slot is erased (or its old frames made stale by the
                // new epoch) before any record goes in: preallocated. The
                // size is recorded where there is no erase (see
                // `layout::header_len`).
                let header = self.fault.lift(v2::SegmentHeader::new(epoch, base_lsn, program_unit))?;
                let header = match self.layout.erase_value {
                    Some(_) => header.bound(segment_size),
                    None => self.fault.lift(header.sized(segment_size))?,
                }
                .preallocated(true);
                self.fault.lift(header.encode(out))?;
                header.into()
            }
        };
        let seg = Seg::new(slot, self.layout.offset(slot), &header, segment_size);
        self.state.active = Some(Active {
            seg,
            pos: frames_offset as u64,
            buf_start: 0,
            marked_durable: self.state.durable_end,
            frames_crc: v2::FramesCrc::default(),
        });
        self.state.max_epoch = epoch;
        self.state.newest = slot;
        self.state.oldest = Some(oldest);
        self.state.log_start = log_start;
        if !marked {
            return Ok(());
        }
        let mark = Mark { durable_end: self.state.durable_end, log_start };
        let frame = Out::mark(&seg, base_lsn, mark);
        self.write_frame(&frame)
    }

    /// The base LSN of the oldest segment a recovery would find chained
    /// before a new segment in `slot` (of `epoch`, from `base_lsn`): where it
    /// would take the log to start without a mark. Kept from one segment to
    /// the next; read from the headers the first time.
    fn chain_floor(&mut self, slot: u32, epoch: u64, base_lsn: Lsn) -> Step<Lsn> {
        let after = self.layout.next(slot);
        let floor = match self.state.floor {
            // The chain of the newest, less the slot after the new one.
            super::NO_SLOT => {
                let (mut oldest, mut epoch, mut base) = (slot, epoch, base_lsn);
                loop {
                    let prev = self.layout.prev(oldest);
                    if prev == after || prev == slot {
                        break;
                    }
                    match self.peek_header(prev)? {
                        Some(h) if h.epoch < epoch && h.base_lsn <= base => {
                            (oldest, epoch, base) = (prev, h.epoch, h.base_lsn);
                        }
                        _ => break,
                    }
                }
                (oldest, base)
            }
            oldest if oldest == after && oldest == self.state.newest => (slot, base_lsn),
            oldest if oldest == after => {
                let next = self.layout.next(oldest);
                (next, self.read_header(next)?.base_lsn)
            }
            oldest => (oldest, self.read_header(oldest)?.base_lsn),
        };
        self.state.floor = floor.0;
        Ok(floor.1)
    }

    /// Erases a slot (on media that need it) and checks that it reads back
    /// blank, so that no unit is programmed that is not erased.
    #[inline(never)]
    fn prepare_slot(&mut self, slot: u32) -> Step<()> {
        let Some(erased) = self.layout.erase_value else { return Ok(()) };
        let abs = self.layout.offset(slot);
        let size = self.layout.segment_size;
        let checked = check_access(&self.device.geometry(), self.device.capacity(), Op::Erase, abs, size);
        if let Err(e) = checked {
            return Err(self.poison(Error::Access(e)));
        }
        if let Err(e) = self.device.erase(abs, size) {
            self.state.poisoned = true;
            return Err(self.fault.device(e));
        }
        let mut at = 0;
        while at < size {
            let n = (size - at).min(self.buffer.as_ref().len() as u64) as usize;
            if let Err(e) = self.device.read(abs + at, &mut self.buffer.as_mut()[..n]) {
                return Err(self.fault.device(e));
            }
            if self.buffer.as_ref()[..n].iter().any(|&b| b != erased) {
                return Err(self.poison(Error::EraseFailed { slot }));
            }
            at += n as u64;
        }
        Ok(())
    }

    /// Reads the header in `slot` if it is a valid one, through the write
    /// buffer, which must hold nothing unwritten.
    fn peek_header(&mut self, slot: u32) -> Step<Option<AnyHeader>> {
        Ok(self.with_reader(|reader| reader.header(slot))?.ok())
    }

    /// Reads the header of a sealed segment the log holds, through the write
    /// buffer, which must hold nothing unwritten.
    #[inline(never)]
    fn read_header(&mut self, slot: u32) -> Step<AnyHeader> {
        self.with_reader(|reader| reader.held_header(slot))
    }

    /// Runs `read` on a reader of the device through the write buffer,
    /// which must hold nothing unwritten.
    fn with_reader<T>(&mut self, read: impl FnOnce(&mut Reader<'_, '_, '_, D>) -> Step<T>) -> Step<T> {
        if self.has_unsynced_bytes() {
            return Err(self.broken(Broken::HeaderReadWhileBuffered));
        }
        let mut window = Window::new(self.buffer.as_mut());
        let mut reader = Reader {
            device: &mut self.device,
            overlay: Overlay::NONE,
            window: &mut window,
            layout: self.layout,
            fault: &mut self.fault,
        };
        read(&mut reader)
    }
}

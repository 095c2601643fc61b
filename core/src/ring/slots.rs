//! The ring log's slots: which segments the log holds, starting a new one
//! (erased and checked blank first), and reading their headers.

use super::error::{Broken, Step};
use super::layout::Seg;
use super::scan::Reader;
use super::window::{Overlay, Window};
use super::writer::Out;
use super::{Active, Error, FullPolicy, RingLog};
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
                // new epoch) before any record goes in: preallocated.
                // The size is recorded: a ring opened with another segment
                // size is refused with a clear error.
                let header = self.fault.lift(v2::SegmentHeader::new(epoch, base_lsn, program_unit))?;
                let header = self.fault.lift(header.sized(segment_size))?.preallocated(true);
                self.fault.lift(header.encode(out))?;
                header.into()
            }
        };
        let seg = Seg::new(slot, self.layout.offset(slot), &header, log_start, segment_size);
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
        // Every segment opens with a mark.
        let mark = Mark { durable_end: self.state.durable_end, log_start };
        let frame = Out::mark(&seg, base_lsn, mark);
        self.write_frame(&frame)
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

    /// Reads the header of a sealed segment the log holds, through the write
    /// buffer, which must hold nothing unwritten.
    #[inline(never)]
    fn read_header(&mut self, slot: u32) -> Step<AnyHeader> {
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
        reader.held_header(slot).map(|head| head.h)
    }
}

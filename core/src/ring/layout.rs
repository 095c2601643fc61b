//! How a device is cut into segments.

use super::config::{ConfigError, RingConfig};
use crate::Geometry;
use crate::Lsn;
use crate::align::{align_up, div, is_aligned};
use crate::format::{EpochKey, FRAME_HEADER_LEN, MARK_PAYLOAD_LEN, SEGMENT_HEADER_LEN};

/// Length of a mark frame.
pub(crate) const MARK_FRAME_LEN: u64 = (FRAME_HEADER_LEN + MARK_PAYLOAD_LEN) as u64;

/// The smallest buffer a ring log takes, whatever the geometry.
pub const MIN_BUFFER_LEN: usize = 512;

/// The segments of a device, derived once from the geometry and the
/// configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) segment_size: u64,
    pub(crate) slots: u32,
    pub(crate) program_unit: u32,
    pub(crate) read_unit: u32,
    pub(crate) erase_value: Option<u8>,
    pub(crate) frames_offset: u64,
    /// Whether the space was never used before the segment (a new file):
    /// then bytes that are neither blank nor a frame were written by this
    /// segment (a torn or damaged frame), never left from an earlier use.
    pub(crate) fresh: bool,
}

impl Layout {
    pub(crate) fn new(
        geometry: Geometry,
        capacity: u64,
        config: &RingConfig,
        buffer_len: usize,
    ) -> Result<Self, ConfigError> {
        let segment_size = config.segment_size;
        let erase_unit = geometry.erase_unit();
        if segment_size == 0 || !is_aligned(segment_size, u64::from(erase_unit)) {
            return Err(ConfigError::SegmentNotAligned { segment_size, erase_unit });
        }
        let pu = u64::from(geometry.program_unit());
        let frames_offset = align_up(SEGMENT_HEADER_LEN as u64, pu);
        let layout = Self {
            segment_size,
            slots: 0,
            program_unit: geometry.program_unit(),
            read_unit: geometry.read_unit(),
            erase_value: geometry.erase_value(),
            frames_offset,
            fresh: false,
        };
        // Room for the first mark, the tail reserve and a 64-byte frame.
        let min = frames_offset + MARK_FRAME_LEN + layout.tail_reserve() + 64;
        let min = align_up(min, u64::from(erase_unit));
        if segment_size < min {
            return Err(ConfigError::SegmentTooSmall { segment_size, min });
        }
        let segments = div(capacity, segment_size);
        if segments < 2 {
            return Err(ConfigError::TooFewSegments { segments });
        }
        check_buffer(&geometry, buffer_len)?;
        Ok(Self { slots: u32::try_from(segments).unwrap_or(u32::MAX), ..layout })
    }

    /// Bytes kept free at the end of the active segment after every frame:
    /// room for a mark and the padding of a final sync.
    pub(crate) const fn tail_reserve(&self) -> u64 {
        MARK_FRAME_LEN + FRAME_HEADER_LEN as u64 + self.program_unit as u64
    }

    /// The largest frame a segment takes.
    pub(crate) const fn max_frame_len(&self) -> u64 {
        self.segment_size - self.frames_offset - 2 * MARK_FRAME_LEN - self.tail_reserve()
    }

    pub(crate) const fn offset(&self, slot: u32) -> u64 {
        slot as u64 * self.segment_size
    }

    pub(crate) const fn next(&self, slot: u32) -> u32 {
        if slot + 1 == self.slots { 0 } else { slot + 1 }
    }

    pub(crate) const fn prev(&self, slot: u32) -> u32 {
        if slot == 0 { self.slots - 1 } else { slot - 1 }
    }

    /// Length of a read covering a segment header, in whole read units.
    pub(crate) const fn header_read_len(&self) -> u64 {
        let unit = self.read_unit as u64;
        align_up(crate::format::MAX_SEGMENT_HEADER_LEN as u64, unit)
    }
}

/// Checks a caller's buffer (write or read) against the device's units: a
/// multiple of the read and program units, at least [`MIN_BUFFER_LEN`]
/// bytes and two units.
#[inline]
pub(crate) fn check_buffer(geometry: &Geometry, len: usize) -> Result<(), ConfigError> {
    let unit = geometry.io_unit();
    let min = MIN_BUFFER_LEN.max(2 * unit as usize);
    if len < min || !len.is_multiple_of(unit as usize) {
        return Err(ConfigError::BadBuffer { len, unit, min });
    }
    Ok(())
}

/// A segment being read: where it is and what its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seg {
    pub(crate) slot: u32,
    /// Device offset of the segment.
    pub(crate) abs: u64,
    /// The segment's epoch, prepared for checking frames.
    pub(crate) key: EpochKey,
    pub(crate) base_lsn: Lsn,
    pub(crate) log_start: Lsn,
}

impl Seg {
    pub(crate) fn new(slot: u32, abs: u64, epoch: u64, base_lsn: Lsn, log_start: Lsn) -> Self {
        Self { slot, abs, key: EpochKey::new(epoch), base_lsn, log_start }
    }

    /// A segment whose header is yet to be read.
    pub(crate) fn probe(slot: u32, abs: u64) -> Self {
        Self::new(slot, abs, 0, 0, 0)
    }

    pub(crate) const fn epoch(&self) -> u64 {
        self.key.epoch()
    }
}

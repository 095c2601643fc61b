//! How a device is cut into segments.

use super::config::{ConfigError, RingConfig};
use crate::Geometry;
use crate::Lsn;
use crate::align::{align_up, div, is_aligned};
use crate::format::{
    AnyHeader, EpochKey, FRAME_HEADER_LEN, MARK_PAYLOAD_LEN, SEGMENT_HEADER_LEN, Version, v2,
};

/// Length of a mark frame in format v1.
pub(crate) const MARK_FRAME_LEN: u64 = (FRAME_HEADER_LEN + MARK_PAYLOAD_LEN) as u64;

/// Length of a mark frame in `version`.
pub(crate) const fn mark_frame_len(version: Version) -> u64 {
    match version {
        Version::V1 => MARK_FRAME_LEN,
        Version::V2 => (v2::FRAME_HEADER_LEN + MARK_PAYLOAD_LEN) as u64,
    }
}

/// Length of the segment header a ring writes in `version` on a medium
/// whose erase value is `erase_value`: in v2 the segment size is recorded
/// where there is no erase (disks, partitions); on flash the header's CRC
/// binds it without recording it, to cost no more flash than a store that
/// records none. Either way a ring opened with another segment size finds
/// out.
pub(crate) const fn header_len(version: Version, erase_value: Option<u8>) -> usize {
    match version {
        Version::V1 => SEGMENT_HEADER_LEN,
        Version::V2 if erase_value.is_some() => v2::HEADER_LEN,
        Version::V2 => v2::SIZED_HEADER_LEN,
    }
}

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
    /// The format version new segments are written in.
    pub(crate) version: Version,
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
        let version = config.format;
        if !version.built() {
            return Err(ConfigError::VersionNotBuilt { version });
        }
        let max_epoch = match version {
            Version::V2 => crate::format::v2::MAX_EPOCH,
            _ => u64::MAX,
        };
        if config.first_epoch == 0 || config.first_epoch > max_epoch {
            return Err(ConfigError::FirstEpoch { epoch: config.first_epoch, max: max_epoch });
        }
        let frames_offset = align_up(header_len(version, geometry.erase_value()) as u64, pu);
        let layout = Self {
            segment_size,
            slots: 0,
            program_unit: geometry.program_unit(),
            read_unit: geometry.read_unit(),
            erase_value: geometry.erase_value(),
            frames_offset,
            version,
            fresh: false,
        };
        // Room for the first mark, the tail reserve, the seal and a 64-byte frame.
        let min = frames_offset
            + mark_frame_len(version)
            + layout.tail_reserve()
            + (segment_size - layout.frames_end())
            + 64;
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

    /// Bytes kept free before the end of the frames of the active segment
    /// after every frame: in v1 room for a mark and the padding of a final
    /// sync; in v2 room for the padding of a final sync where there is no
    /// erase, and none on erased media (fill always fits in the unit the
    /// frames end in, and the frames end on a unit boundary).
    pub(crate) const fn tail_reserve(&self) -> u64 {
        match self.written_version() {
            Version::V1 => MARK_FRAME_LEN + FRAME_HEADER_LEN as u64 + self.program_unit as u64,
            Version::V2 if self.erase_value.is_some() => 0,
            Version::V2 => v2::FRAME_HEADER_LEN as u64 + self.program_unit as u64,
        }
    }

    /// Where the frames of a segment written now end: before the seal slot
    /// in v2.
    pub(crate) const fn frames_end(&self) -> u64 {
        match self.written_version() {
            Version::V1 => self.segment_size,
            Version::V2 => self.segment_size - align_up(v2::SEAL_LEN as u64, self.program_unit as u64),
        }
    }

    /// The largest frame a segment takes.
    pub(crate) const fn max_frame_len(&self) -> u64 {
        self.frames_end()
            - self.frames_offset
            - 2 * mark_frame_len(self.written_version())
            - self.tail_reserve()
    }

    /// The version new segments are written in (told to the compiler: a
    /// build holds one version, or both).
    const fn written_version(&self) -> Version {
        if !Version::V2.built() {
            Version::V1
        } else if !Version::V1.built() {
            Version::V2
        } else {
            self.version
        }
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
    /// Segment offset of the first frame.
    pub(crate) frames_offset: u32,
    /// Length of the seal slot at the segment's end, where the frames end
    /// (v2; 0 in v1). Small fields first: the log keeps one `Seg` in its
    /// fixed state.
    seal_len: u32,
    /// The segment's format version.
    pub(crate) version: Version,
    /// Device offset of the segment.
    pub(crate) abs: u64,
    /// The segment's epoch, prepared for checking frames.
    pub(crate) key: EpochKey,
    pub(crate) base_lsn: Lsn,
}

impl Seg {
    /// The segment of `slot` at `abs` whose header is `h`, in a segment of
    /// `segment_size` bytes.
    pub(crate) fn new(slot: u32, abs: u64, h: &AnyHeader, segment_size: u64) -> Self {
        Self {
            slot,
            frames_offset: h.frames_offset as u32,
            seal_len: (segment_size - h.frames_end(segment_size)) as u32,
            version: h.version,
            abs,
            key: EpochKey::new(h.epoch),
            base_lsn: h.base_lsn,
        }
    }

    /// Segment offset of the first frame.
    pub(crate) const fn frames_offset(&self) -> u64 {
        self.frames_offset as u64
    }

    /// Segment offset where the frames end in a segment of `segment_size`
    /// bytes (v2: the seal slot's start).
    pub(crate) const fn frames_end(&self, segment_size: u64) -> u64 {
        segment_size - self.seal_len as u64
    }

    /// The segment of `version` that a damaged header in `slot` may have
    /// headed: of `epoch`, its records from `base_lsn` on.
    pub(crate) fn unheaded(
        slot: u32,
        abs: u64,
        layout: &Layout,
        version: Version,
        epoch: u64,
        base_lsn: Lsn,
    ) -> Self {
        let header_len = header_len(version, layout.erase_value);
        let h = AnyHeader {
            version,
            epoch,
            base_lsn,
            log_start: Some(0),
            segment_size: Some(layout.segment_size),
            program_unit: layout.program_unit,
            frames_offset: align_up(header_len as u64, u64::from(layout.program_unit)),
            preallocated: false,
        };
        Self::new(slot, abs, &h, layout.segment_size)
    }

    /// The segment with its frames ending at `frames_end`, on a device of
    /// `capacity` bytes (a segment file not yet written to its end).
    pub(crate) const fn ending_at(mut self, frames_end: u64, capacity: u64) -> Self {
        self.seal_len = (capacity - frames_end) as u32;
        self
    }

    /// A segment whose header is yet to be read.
    pub(crate) fn probe(slot: u32, abs: u64) -> Self {
        Self {
            slot,
            frames_offset: 0,
            seal_len: 0,
            version: Version::V1,
            abs,
            key: EpochKey::new(0),
            base_lsn: 0,
        }
    }

    pub(crate) const fn epoch(&self) -> u64 {
        self.key.epoch()
    }
}

//! The segment header: written once at the start of every segment.

use super::segment_offsets as off;
use super::{
    DecodeError, EncodeError, FORMAT_VERSION, FRAME_HEADER_LEN, HeaderField, MAX_SEGMENT_HEADER_LEN,
    SEGMENT_HEADER_LEN, SEGMENT_MAGIC, le_u16, le_u32, le_u64, uniform_fill,
};
use crate::crc::crc32c;
use crate::geometry::MAX_PROGRAM_UNIT;

/// The header at offset 0 of every segment.
///
/// The epoch names this use of the segment's space: it is mixed into every
/// frame's checksum, so frames left from an earlier use (an earlier lap of a
/// ring, a recycled file) never validate under the new header.
///
/// ```
/// use nori_wal_core::format::SegmentHeader;
///
/// let header = SegmentHeader::new(3, 500, 1 << 20, 256).unwrap();
/// let mut buf = [0u8; 56];
/// header.encode(&mut buf).unwrap();
/// assert_eq!(SegmentHeader::decode(&buf), Ok(header));
/// // Frames start at the first program-unit boundary after the header.
/// assert_eq!(header.frames_offset(), 256);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SegmentHeader {
    /// The segment epoch: unique per use of the space, increasing, never 0.
    pub epoch: u64,
    /// The LSN of the segment's first record.
    pub base_lsn: u64,
    /// The log's first retained LSN when the segment was started: segments
    /// wholly below it were reclaimed. Defaults to `base_lsn` in
    /// [`SegmentHeader::new`]; a log sets it with
    /// [`with_log_start`](Self::with_log_start).
    pub log_start: u64,
    /// The size of the segment in bytes, header included.
    pub segment_size: u64,
    /// The program unit the segment is written with.
    pub program_unit: u32,
}

impl SegmentHeader {
    /// A checked header.
    ///
    /// # Errors
    ///
    /// [`EncodeError::InvalidSegmentHeader`] when the epoch is zero, the
    /// program unit is not a power of two up to 64 KiB, or the segment size
    /// is not a multiple of the program unit with room for the header and
    /// one frame header.
    pub const fn new(
        epoch: u64,
        base_lsn: u64,
        segment_size: u64,
        program_unit: u32,
    ) -> Result<Self, EncodeError> {
        let header = Self { epoch, base_lsn, log_start: base_lsn, segment_size, program_unit };
        match header.invalid_field() {
            None => Ok(header),
            Some(field) => Err(EncodeError::InvalidSegmentHeader { field }),
        }
    }

    /// The same header with `log_start` set.
    ///
    /// # Errors
    ///
    /// [`EncodeError::InvalidSegmentHeader`] when `log_start` is above
    /// `base_lsn`: the log cannot start after the segment's first record.
    pub const fn with_log_start(self, log_start: u64) -> Result<Self, EncodeError> {
        let header = Self { log_start, ..self };
        match header.invalid_field() {
            None => Ok(header),
            Some(field) => Err(EncodeError::InvalidSegmentHeader { field }),
        }
    }

    /// The first field that holds an impossible value, if any.
    const fn invalid_field(&self) -> Option<HeaderField> {
        if self.epoch == 0 {
            return Some(HeaderField::Epoch);
        }
        if self.log_start > self.base_lsn {
            return Some(HeaderField::LogStart);
        }
        if !self.program_unit.is_power_of_two() || self.program_unit > MAX_PROGRAM_UNIT {
            return Some(HeaderField::ProgramUnit);
        }
        let min = self.frames_offset() + FRAME_HEADER_LEN as u64;
        // The program unit is a power of two (checked above): a mask, not a division.
        if self.segment_size < min || !crate::align::is_aligned(self.segment_size, self.program_unit as u64) {
            return Some(HeaderField::SegmentSize);
        }
        None
    }

    /// Where the first frame starts: the header length rounded up to the
    /// program unit. The bytes between the header and this offset are zero.
    #[must_use]
    pub const fn frames_offset(&self) -> u64 {
        let unit = self.program_unit as u64;
        crate::align::align_up(SEGMENT_HEADER_LEN as u64, unit)
    }

    /// Encodes the header into the first [`SEGMENT_HEADER_LEN`] bytes of `out`.
    /// Returns the number of bytes written.
    ///
    /// # Errors
    ///
    /// [`EncodeError::InvalidSegmentHeader`] for impossible fields (the
    /// fields are public, so they are checked again here), or
    /// [`EncodeError::BufferTooSmall`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        if let Some(field) = self.invalid_field() {
            return Err(EncodeError::InvalidSegmentHeader { field });
        }
        let Some(h) = out.first_chunk_mut::<SEGMENT_HEADER_LEN>() else {
            return Err(EncodeError::BufferTooSmall {
                needed: SEGMENT_HEADER_LEN as u64,
                available: out.len() as u64,
            });
        };
        h[off::MAGIC].copy_from_slice(&SEGMENT_MAGIC);
        h[off::VERSION].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[off::HEADER_LEN].copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
        h[off::FLAGS].copy_from_slice(&0u32.to_le_bytes());
        h[off::EPOCH].copy_from_slice(&self.epoch.to_le_bytes());
        h[off::BASE_LSN].copy_from_slice(&self.base_lsn.to_le_bytes());
        h[off::LOG_START].copy_from_slice(&self.log_start.to_le_bytes());
        h[off::SEGMENT_SIZE].copy_from_slice(&self.segment_size.to_le_bytes());
        h[off::PROGRAM_UNIT].copy_from_slice(&self.program_unit.to_le_bytes());
        let crc = crc32c(&h[..off::CRC.start]);
        h[off::CRC].copy_from_slice(&crc.to_le_bytes());
        Ok(SEGMENT_HEADER_LEN)
    }

    /// Decodes and checks the header at the start of `bytes`.
    ///
    /// The checks run in an order that keeps each answer honest: blank
    /// space, then the magic, then the header length (which every version
    /// keeps at the same offset), then the CRC over that length, and only
    /// then the version. A torn or damaged header is therefore never
    /// mistaken for one from a newer version, and a newer one is refused
    /// with [`DecodeError::UnsupportedVersion`].
    ///
    /// # Errors
    ///
    /// [`DecodeError::Blank`], [`DecodeError::NotASegment`],
    /// [`DecodeError::Truncated`], [`DecodeError::BadSegmentChecksum`],
    /// [`DecodeError::UnsupportedVersion`] or
    /// [`DecodeError::InvalidSegmentHeader`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let Some(fixed) = bytes.first_chunk::<{ off::HEADER_LEN.end }>() else {
            return Err(truncated(off::HEADER_LEN.end, bytes.len()));
        };
        if let Some(fill) = uniform_fill(fixed) {
            return Err(DecodeError::Blank { fill });
        }
        if fixed[off::MAGIC] != SEGMENT_MAGIC {
            return Err(DecodeError::NotASegment);
        }
        let header_len = usize::from(le_u16(fixed, off::HEADER_LEN));
        if !(SEGMENT_HEADER_LEN..=MAX_SEGMENT_HEADER_LEN).contains(&header_len) {
            return Err(DecodeError::InvalidSegmentHeader { field: HeaderField::HeaderLen });
        }
        let Some(h) = bytes.get(..header_len) else {
            return Err(truncated(header_len, bytes.len()));
        };
        let (covered, crc) = h.split_at(header_len - 4);
        let stored = le_u32(crc, 0..4);
        let computed = crc32c(covered);
        if stored != computed {
            return Err(DecodeError::BadSegmentChecksum { stored, computed });
        }
        let version = le_u16(h, off::VERSION);
        if version != FORMAT_VERSION {
            return Err(if version > FORMAT_VERSION {
                DecodeError::UnsupportedVersion { found: version, supported: FORMAT_VERSION }
            } else {
                DecodeError::InvalidSegmentHeader { field: HeaderField::Version }
            });
        }
        if header_len != SEGMENT_HEADER_LEN {
            return Err(DecodeError::InvalidSegmentHeader { field: HeaderField::HeaderLen });
        }
        if le_u32(h, off::FLAGS) != 0 {
            return Err(DecodeError::InvalidSegmentHeader { field: HeaderField::Flags });
        }
        let header = Self {
            epoch: le_u64(h, off::EPOCH),
            base_lsn: le_u64(h, off::BASE_LSN),
            log_start: le_u64(h, off::LOG_START),
            segment_size: le_u64(h, off::SEGMENT_SIZE),
            program_unit: le_u32(h, off::PROGRAM_UNIT),
        };
        match header.invalid_field() {
            None => Ok(header),
            Some(field) => Err(DecodeError::InvalidSegmentHeader { field }),
        }
    }
}

const fn truncated(needed: usize, available: usize) -> DecodeError {
    DecodeError::Truncated { needed: needed as u64, available: available as u64 }
}

//! Format v2: the 24-byte segment header, 8-byte record frames bound to
//! their LSN, seals and holes (FORMAT.md, "Format version 2"). No I/O, no
//! allocation.
//!
//! ```text
//!  segment header (24 bytes; 32 with SIZED)
//!  0       4   5   6                       12                      20      24
//!  +-------+---+---+-----------------------+-----------------------+-------+
//!  | magic |ver|geo| epoch (u48)           | base_lsn              | crc   |
//!  +-------+---+---+-----------------------+-----------------------+-------+
//!
//!  frame, short form (payload up to 65 535 bytes)   long form (kind bit 6)
//!  0    1    2         4         8                  0    1    2         6         10
//!  +----+----+---------+---------+---------+        +----+----+---------+---------+---------+
//!  |kind|inv | len u16 | crc u32 | payload |        |kind|inv | len u32 | crc u32 | payload |
//!  +----+----+---------+---------+---------+        +----+----+---------+---------+---------+
//!  crc = CRC32C(epoch_le64 ‖ lsn_le64 ‖ header bytes before crc ‖ payload)
//! ```
//!
//! A frame's LSN is not stored: a reader checks each frame under the LSN it
//! expects there (the LSN of the frame's first record, or of the next record
//! for a frame that holds none).
//!
//! ```
//! use nori_wal_core::format::v2::{self, SegmentHeader};
//! use nori_wal_core::format::{Body, EpochKey};
//! use nori_wal_core::Record;
//!
//! let header = SegmentHeader::new(7, 1000, 4).unwrap();
//! let mut segment = [0xFFu8; 4096];
//! header.encode(&mut segment).unwrap();
//! let key = EpochKey::new(header.epoch);
//! let mut at = header.frames_offset();
//! at += v2::EncodedFrame::record(&Record::put(b"k", b"v")).unwrap().write_to(&mut segment[at..], &key, 1000).unwrap();
//! at += v2::EncodedFrame::record(&Record::raw(b"x")).unwrap().write_to(&mut segment[at..], &key, 1001).unwrap();
//!
//! // Read it back: each frame checks out only under its own LSN.
//! let header = SegmentHeader::decode(&segment).unwrap();
//! let mut pos = header.frames_offset();
//! let mut lsn = header.base_lsn;
//! let mut seen = Vec::new();
//! loop {
//!     match v2::decode_frame(&segment[pos..], &key, lsn) {
//!         Ok(frame) => {
//!             for record in frame.records().unwrap() {
//!                 seen.push((lsn, format!("{record:?}")));
//!                 lsn += 1;
//!             }
//!             pos += frame.len();
//!         }
//!         Err(e) if e.is_blank() => break, // erased space: the end of what was written
//!         Err(e) => panic!("damaged: {e}"),
//!     }
//! }
//! assert_eq!(seen, [(1000, r#"Put { key: "k", value: "v" }"#.to_string()), (1001, r#"Raw("x")"#.to_string())]);
//! // The same bytes under another LSN do not check out.
//! assert!(v2::decode_frame(&segment[header.frames_offset()..], &key, 999).is_err());
//! ```

use super::body::{self, Body, HOLE_PAYLOAD_LEN, MARK_PAYLOAD_LEN, Mark, Records, SEAL_PAYLOAD_LEN, Seal};
use super::frame::Source;
use super::{
    Compression, DecodeError, EncodeError, EpochKey, FrameKind, HeaderField, le_u16, le_u32, le_u64,
    uniform_fill,
};
use crate::Lsn;
use crate::Record;
use crate::align::{align_up, is_aligned};
use crate::crc::{crc32c, crc32c_append};

/// The magic of a v2 segment header: its first 4 bytes.
pub const MAGIC: [u8; 4] = *b"NWAL";

/// The version byte of a v2 segment header.
pub const VERSION: u8 = 2;

/// Length of a segment header without the segment size.
pub const HEADER_LEN: usize = 24;

/// Length of a segment header with the segment size (flag `SIZED`).
pub const SIZED_HEADER_LEN: usize = 32;

/// Length of a short frame header (payloads up to [`SHORT_MAX`] bytes).
pub const FRAME_HEADER_LEN: usize = 8;

/// Length of a long frame header.
pub const LONG_FRAME_HEADER_LEN: usize = 10;

/// The largest payload of a short frame.
pub const SHORT_MAX: u32 = 0xFFFF;

/// The largest payload of any frame: a frame is always shorter than 2 GiB.
pub const MAX_PAYLOAD_LEN: u32 = (1 << 31) - 1 - LONG_FRAME_HEADER_LEN as u32;

/// Length of a seal frame (it sits in the last `round_up(16, unit)` bytes
/// of a segment).
pub const SEAL_LEN: usize = FRAME_HEADER_LEN + SEAL_PAYLOAD_LEN;

/// The largest segment epoch (48 bits).
pub const MAX_EPOCH: u64 = (1 << 48) - 1;

/// Geometry byte: the program unit's log2 in bits 0–4.
const PU_MASK: u8 = 0b1_1111;
/// Geometry byte: the header holds the segment size.
const SIZED: u8 = 1 << 5;
/// Geometry byte: the segment was at full size, header durable, before any
/// record went in.
const PREALLOCATED: u8 = 1 << 6;
/// Kind byte: the long form (a u32 length).
const LONG: u8 = 1 << 6;

/// A format v2 segment header.
///
/// ```
/// use nori_wal_core::format::v2::SegmentHeader;
/// let header = SegmentHeader::new(3, 500, 4096).unwrap().sized(1 << 20).unwrap().preallocated(true);
/// let mut bytes = [0u8; 64];
/// let n = header.encode(&mut bytes).unwrap();
/// assert_eq!(n, 32);
/// assert_eq!(SegmentHeader::decode(&bytes).unwrap(), header);
/// assert_eq!(header.frames_offset(), 4096);
/// assert_eq!(header.seal_offset(1 << 20), (1 << 20) - 4096);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SegmentHeader {
    /// The segment epoch: 1 to [`MAX_EPOCH`].
    pub epoch: u64,
    /// The LSN of the segment's first record.
    pub base_lsn: Lsn,
    /// The program unit the segment is written with: a power of two, 1 to
    /// 65 536.
    pub program_unit: u32,
    /// The segment's size, when the header records it (segment files).
    pub segment_size: Option<u64>,
    /// The segment was at full size, with its header durable, before any
    /// record went into it.
    pub preallocated: bool,
    /// A segment size the header's CRC binds without recording it (ring
    /// slots on flash): the header checks out only under that size.
    pub bound_size: Option<u64>,
}

impl SegmentHeader {
    /// A header without a recorded size, not marked preallocated.
    ///
    /// # Errors
    ///
    /// [`EncodeError::InvalidSegmentHeader`] for an epoch of 0 or above
    /// [`MAX_EPOCH`], or a program unit that is not a power of two up to
    /// 65 536.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// let header = SegmentHeader::new(1, 0, 4).unwrap();
    /// assert_eq!((header.len(), header.segment_size), (24, None));
    /// assert!(SegmentHeader::new(0, 0, 4).is_err()); // epoch 0
    /// ```
    pub const fn new(epoch: u64, base_lsn: Lsn, program_unit: u32) -> Result<Self, EncodeError> {
        if epoch == 0 || epoch > MAX_EPOCH {
            return Err(EncodeError::InvalidSegmentHeader { field: HeaderField::Epoch });
        }
        if !program_unit.is_power_of_two() || program_unit > 65_536 {
            return Err(EncodeError::InvalidSegmentHeader { field: HeaderField::ProgramUnit });
        }
        Ok(Self { epoch, base_lsn, program_unit, segment_size: None, preallocated: false, bound_size: None })
    }

    /// The same header, its CRC bound to `segment_size` without recording
    /// it (FORMAT.md section v2.2): a reader checks it under the segment
    /// size it expects ([`decode_bound`](Self::decode_bound)), and a reader
    /// that expects another size finds no header. For a header that
    /// records its size, the size recorded is what counts.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::SegmentHeader;
    /// let header = SegmentHeader::new(1, 0, 4).unwrap().bound(4096);
    /// let mut bytes = [0u8; 24];
    /// header.encode(&mut bytes).unwrap();
    /// assert_eq!(SegmentHeader::decode_bound(&bytes, 4096), Ok(header));
    /// assert!(SegmentHeader::decode_bound(&bytes, 8192).is_err());
    /// assert!(SegmentHeader::decode(&bytes).is_err(), "the size is part of the check");
    /// ```
    #[must_use]
    pub const fn bound(mut self, segment_size: u64) -> Self {
        self.bound_size = Some(segment_size);
        self
    }

    /// The same header recording `segment_size`.
    ///
    /// # Errors
    ///
    /// [`EncodeError::InvalidSegmentHeader`] when the size is not a multiple
    /// of the program unit or leaves no room for the header, one frame
    /// header and the seal slot.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// let header = SegmentHeader::new(1, 0, 1).unwrap().sized(64 << 20).unwrap();
    /// assert_eq!((header.len(), header.segment_size), (32, Some(64 << 20)));
    /// assert!(SegmentHeader::new(1, 0, 4096).unwrap().sized(4096).is_err()); // no room
    /// ```
    pub const fn sized(mut self, segment_size: u64) -> Result<Self, EncodeError> {
        self.segment_size = Some(segment_size);
        if !size_fits(segment_size, self.program_unit, SIZED_HEADER_LEN) {
            return Err(EncodeError::InvalidSegmentHeader { field: HeaderField::SegmentSize });
        }
        Ok(self)
    }

    /// The same header, marked preallocated or not.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// assert!(SegmentHeader::new(1, 0, 1).unwrap().preallocated(true).preallocated);
    /// ```
    #[must_use]
    pub const fn preallocated(mut self, on: bool) -> Self {
        self.preallocated = on;
        self
    }

    /// The header's length: [`HEADER_LEN`], or [`SIZED_HEADER_LEN`] with a
    /// recorded size.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// assert_eq!(SegmentHeader::new(1, 0, 4).unwrap().len(), v2::HEADER_LEN);
    /// ```
    #[must_use]
    #[allow(clippy::len_without_is_empty, reason = "a header is never empty")]
    pub const fn len(&self) -> usize {
        if self.segment_size.is_some() { SIZED_HEADER_LEN } else { HEADER_LEN }
    }

    /// Where the frames start: the header's length rounded up to the
    /// program unit.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// assert_eq!(SegmentHeader::new(1, 0, 4).unwrap().frames_offset(), 24);
    /// assert_eq!(SegmentHeader::new(1, 0, 512).unwrap().frames_offset(), 512);
    /// ```
    #[must_use]
    pub const fn frames_offset(&self) -> usize {
        align_up(self.len() as u64, self.program_unit as u64) as usize
    }

    /// Where the seal slot of a segment of `segment_size` bytes starts: the
    /// frames end there.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// // A 4 KiB flash sector: frames end 16 bytes before the end.
    /// assert_eq!(SegmentHeader::new(1, 0, 4).unwrap().seal_offset(4096), 4080);
    /// ```
    #[must_use]
    pub const fn seal_offset(&self, segment_size: u64) -> u64 {
        segment_size.saturating_sub(align_up(SEAL_LEN as u64, self.program_unit as u64))
    }

    /// Writes the header at the start of `out`; returns its length.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BufferTooSmall`]; `out` is then unchanged.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// let mut bytes = [0u8; 24];
    /// assert_eq!(SegmentHeader::new(1, 0, 4).unwrap().encode(&mut bytes), Ok(24));
    /// assert_eq!(&bytes[..4], b"NWAL");
    /// ```
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let len = self.len();
        let Some(h) = out.get_mut(..len) else {
            return Err(EncodeError::BufferTooSmall { needed: len as u64, available: out.len() as u64 });
        };
        h[..4].copy_from_slice(&MAGIC);
        h[4] = VERSION;
        let mut geometry = self.program_unit.trailing_zeros() as u8;
        if self.segment_size.is_some() {
            geometry |= SIZED;
        }
        if self.preallocated {
            geometry |= PREALLOCATED;
        }
        h[5] = geometry;
        h[6..12].copy_from_slice(&self.epoch.to_le_bytes()[..6]);
        h[12..20].copy_from_slice(&self.base_lsn.to_le_bytes());
        if let Some(size) = self.segment_size {
            h[20..28].copy_from_slice(&size.to_le_bytes());
        }
        let crc = header_crc(&h[..len - 4], self.bound_size.filter(|_| self.segment_size.is_none()));
        h[len - 4..].copy_from_slice(&crc.to_le_bytes());
        Ok(len)
    }

    /// [`decode`](Self::decode) for a reader that expects segments of
    /// `segment_size` bytes: a header that does not record its size checks
    /// out bound to that size (see [`bound`](Self::bound)), or unbound.
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode).
    ///
    /// ```
    /// # use nori_wal_core::format::v2::SegmentHeader;
    /// let mut bytes = [0u8; 24];
    /// SegmentHeader::new(1, 7, 4).unwrap().encode(&mut bytes).unwrap(); // unbound
    /// assert_eq!(SegmentHeader::decode_bound(&bytes, 4096).unwrap().base_lsn, 7);
    /// ```
    pub fn decode_bound(bytes: &[u8], segment_size: u64) -> Result<Self, DecodeError> {
        Self::decode_with(bytes, Some(segment_size))
    }

    /// Decodes and checks the header at the start of `bytes`.
    ///
    /// # Errors
    ///
    /// - [`DecodeError::Truncated`]: fewer bytes than the header needs;
    /// - [`DecodeError::Blank`]: the first 24 bytes all hold one value;
    /// - [`DecodeError::NotASegment`]: another magic (version 1's included:
    ///   read it with [`format::SegmentHeader`](super::SegmentHeader));
    /// - [`DecodeError::UnsupportedVersion`]: a version byte other than 2;
    /// - [`DecodeError::BadSegmentChecksum`]: the CRC fails;
    /// - [`DecodeError::InvalidSegmentHeader`]: a field holds an impossible
    ///   value.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// # use nori_wal_core::DecodeError;
    /// let mut bytes = [0u8; 24];
    /// SegmentHeader::new(9, 100, 4).unwrap().encode(&mut bytes).unwrap();
    /// assert_eq!(SegmentHeader::decode(&bytes).unwrap().base_lsn, 100);
    /// assert_eq!(SegmentHeader::decode(&[0xFF; 24]), Err(DecodeError::Blank { fill: 0xFF }));
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with(bytes, None)
    }

    fn decode_with(bytes: &[u8], expected_size: Option<u64>) -> Result<Self, DecodeError> {
        let Some(h) = bytes.first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::Truncated { needed: HEADER_LEN as u64, available: bytes.len() as u64 });
        };
        if let Some(fill) = uniform_fill(h) {
            return Err(DecodeError::Blank { fill });
        }
        if h[..4] != MAGIC {
            return Err(DecodeError::NotASegment);
        }
        let geometry = h[5];
        let len = if geometry & SIZED != 0 { SIZED_HEADER_LEN } else { HEADER_LEN };
        let Some(h) = bytes.get(..len) else {
            return Err(DecodeError::Truncated { needed: len as u64, available: bytes.len() as u64 });
        };
        // The CRC first: a header torn or damaged after its magic is
        // damage (or a rotation a crash cut), never a newer version.
        let stored = le_u32(h, len - 4..len);
        let computed = crc32c(&h[..len - 4]);
        // Unsized, it may be bound to the size the reader expects.
        let bound = match expected_size {
            Some(size) if stored != computed && len == HEADER_LEN => {
                (crc32c_append(computed, &size.to_le_bytes()) == stored).then_some(size)
            }
            _ => None,
        };
        if stored != computed && bound.is_none() {
            return Err(DecodeError::BadSegmentChecksum { stored, computed });
        }
        if h[4] != VERSION {
            return Err(if h[4] > VERSION {
                DecodeError::UnsupportedVersion { found: u16::from(h[4]), supported: u16::from(VERSION) }
            } else {
                DecodeError::InvalidSegmentHeader { field: HeaderField::Version }
            });
        }
        let invalid = |field| Err(DecodeError::InvalidSegmentHeader { field });
        if geometry & 0x80 != 0 {
            return invalid(HeaderField::Flags);
        }
        let pu_log2 = geometry & PU_MASK;
        if pu_log2 > 16 {
            return invalid(HeaderField::ProgramUnit);
        }
        let program_unit = 1u32 << pu_log2;
        let mut epoch = [0u8; 8];
        epoch[..6].copy_from_slice(&h[6..12]);
        let epoch = u64::from_le_bytes(epoch);
        if epoch == 0 {
            return invalid(HeaderField::Epoch);
        }
        let base_lsn = le_u64(h, 12..20);
        let segment_size = if len == SIZED_HEADER_LEN {
            let size = le_u64(h, 20..28);
            if !size_fits(size, program_unit, SIZED_HEADER_LEN) {
                return invalid(HeaderField::SegmentSize);
            }
            Some(size)
        } else {
            None
        };
        if let Some(size) = bound
            && !size_fits(size, program_unit, HEADER_LEN)
        {
            return invalid(HeaderField::SegmentSize);
        }
        let preallocated = geometry & PREALLOCATED != 0;
        Ok(Self { epoch, base_lsn, program_unit, segment_size, preallocated, bound_size: bound })
    }
}

/// A header's CRC: over its bytes before the CRC field, then, for a header
/// bound to a segment size it does not record, that size (8 bytes, little
/// endian).
fn header_crc(covered: &[u8], bound_size: Option<u64>) -> u32 {
    let crc = crc32c(covered);
    match bound_size {
        Some(size) => crc32c_append(crc, &size.to_le_bytes()),
        None => crc,
    }
}

/// Whether a segment of `size` bytes written with `unit` holds a header of
/// `header_len`, one frame header and the seal slot.
const fn size_fits(size: u64, unit: u32, header_len: usize) -> bool {
    let unit = unit as u64;
    let needed = align_up(header_len as u64, unit)
        + align_up(FRAME_HEADER_LEN as u64, unit)
        + align_up(SEAL_LEN as u64, unit);
    is_aligned(size, unit) && size >= needed
}

/// Packs a v2 kind byte.
const fn kind_byte(kind: FrameKind, compression: Compression, long: bool) -> u8 {
    kind.code() | (compression.code() << 4) | if long { LONG } else { 0 }
}

/// A frame header that passed the structural checks (complement, kind,
/// length form); its CRC is checked with [`verify`](Self::verify).
///
/// ```
/// use nori_wal_core::format::v2::{EncodedFrame, FrameHeader};
/// use nori_wal_core::format::EpochKey;
/// use nori_wal_core::Record;
/// let mut buf = [0u8; 10];
/// EncodedFrame::record(&Record::raw(b"hi")).unwrap().write_to(&mut buf, &EpochKey::new(1), 0).unwrap();
/// let header = FrameHeader::decode(&buf).unwrap();
/// assert_eq!(header.frame_len(), 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FrameHeader {
    kind: FrameKind,
    compression: Compression,
    long: bool,
    payload_len: u32,
    stored_crc: u32,
}

impl FrameHeader {
    /// Decodes the frame header at the start of `bytes` without its CRC.
    ///
    /// # Errors
    ///
    /// - [`DecodeError::Truncated`]: fewer bytes than the header;
    /// - [`DecodeError::Blank`]: 8 bytes of one value;
    /// - [`DecodeError::BadHeader`]: the complement fails;
    /// - [`DecodeError::UnknownKind`]: a kind v2 does not define, or a long
    ///   frame whose length fits the short form;
    /// - [`DecodeError::LengthOutOfBounds`]: a length above
    ///   [`MAX_PAYLOAD_LEN`].
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// # let key = EpochKey::new(1);
    /// # let record = Record::raw(b"abc");
    /// # let mut buf = [0u8; 11];
    /// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
    /// # use nori_wal_core::DecodeError;
    /// let header = FrameHeader::decode(&buf).unwrap();
    /// assert_eq!((header.kind(), header.frame_len()), (FrameKind::Raw, 11));
    /// assert_eq!(FrameHeader::decode(&[0u8; 8]), Err(DecodeError::Blank { fill: 0 }));
    /// ```
    #[cfg_attr(feature = "std", inline)]
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let Some(h) = bytes.first_chunk::<FRAME_HEADER_LEN>() else {
            return Err(DecodeError::Truncated {
                needed: FRAME_HEADER_LEN as u64,
                available: bytes.len() as u64,
            });
        };
        let kind = h[0];
        if kind != !h[1] {
            // Uniform bytes always land here (no byte equals its complement).
            return Err(match uniform_fill(h) {
                Some(fill) => DecodeError::Blank { fill },
                None => DecodeError::BadHeader,
            });
        }
        // The kind byte's fields, checked one by one: bit 7 clear, a
        // defined type and codec, and the long form or a codec only for
        // types that hold records (FORMAT.md section v2.3.1).
        let long = kind & LONG != 0;
        let (Some(frame_kind), Some(compression)) =
            (FrameKind::from_code_v2(kind & 0x0F), Compression::from_code((kind >> 4) & 0b11))
        else {
            return Err(DecodeError::UnknownKind { byte: kind });
        };
        if kind & 0x80 != 0 || (!frame_kind.holds_records() && (long || kind & 0x30 != 0)) {
            return Err(DecodeError::UnknownKind { byte: kind });
        }
        let (payload_len, stored_crc) = if long {
            let Some(h) = bytes.first_chunk::<LONG_FRAME_HEADER_LEN>() else {
                return Err(DecodeError::Truncated {
                    needed: LONG_FRAME_HEADER_LEN as u64,
                    available: bytes.len() as u64,
                });
            };
            let len = le_u32(h, 2..6);
            if len <= SHORT_MAX {
                return Err(DecodeError::UnknownKind { byte: kind });
            }
            if len > MAX_PAYLOAD_LEN {
                return Err(DecodeError::LengthOutOfBounds {
                    frame_len: LONG_FRAME_HEADER_LEN as u64 + u64::from(len),
                    available: LONG_FRAME_HEADER_LEN as u64 + u64::from(MAX_PAYLOAD_LEN),
                });
            }
            (len, le_u32(h, 6..10))
        } else {
            (u32::from(le_u16(h, 2..4)), le_u32(h, 4..8))
        };
        Ok(Self { kind: frame_kind, compression, long, payload_len, stored_crc })
    }

    /// What the frame holds.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// # let key = EpochKey::new(1);
    /// # let record = Record::raw(b"abc");
    /// # let mut buf = [0u8; 11];
    /// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
    /// assert_eq!(FrameHeader::decode(&buf).unwrap().kind(), FrameKind::Raw);
    /// ```
    #[must_use]
    pub const fn kind(&self) -> FrameKind {
        self.kind
    }

    /// How the payload is compressed.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// # let key = EpochKey::new(1);
    /// # let record = Record::raw(b"abc");
    /// # let mut buf = [0u8; 11];
    /// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
    /// assert_eq!(FrameHeader::decode(&buf).unwrap().compression(), Compression::None);
    /// ```
    #[must_use]
    pub const fn compression(&self) -> Compression {
        self.compression
    }

    /// The payload length in bytes.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// # let key = EpochKey::new(1);
    /// # let record = Record::raw(b"abc");
    /// # let mut buf = [0u8; 11];
    /// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
    /// assert_eq!(FrameHeader::decode(&buf).unwrap().payload_len(), 3);
    /// ```
    #[must_use]
    pub const fn payload_len(&self) -> u32 {
        self.payload_len
    }

    /// The header's length: [`FRAME_HEADER_LEN`] or
    /// [`LONG_FRAME_HEADER_LEN`].
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// # let key = EpochKey::new(1);
    /// # let record = Record::raw(b"abc");
    /// # let mut buf = [0u8; 11];
    /// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
    /// assert_eq!(FrameHeader::decode(&buf).unwrap().header_len(), v2::FRAME_HEADER_LEN);
    /// ```
    #[must_use]
    pub const fn header_len(&self) -> usize {
        if self.long { LONG_FRAME_HEADER_LEN } else { FRAME_HEADER_LEN }
    }

    /// The whole frame's length, header included.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// # let key = EpochKey::new(1);
    /// # let record = Record::raw(b"abc");
    /// # let mut buf = [0u8; 11];
    /// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
    /// assert_eq!(FrameHeader::decode(&buf).unwrap().frame_len(), 11);
    /// ```
    #[must_use]
    pub const fn frame_len(&self) -> usize {
        self.header_len() + self.payload_len as usize
    }

    /// The CRC stored in the frame (what a seal's
    /// [`FramesCrc`] is computed over).
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// # let key = EpochKey::new(1);
    /// # let record = Record::raw(b"abc");
    /// # let mut buf = [0u8; 11];
    /// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
    /// let header = FrameHeader::decode(&buf).unwrap();
    /// assert_eq!(header.stored_crc().to_le_bytes(), buf[4..8]);
    /// ```
    #[must_use]
    pub const fn stored_crc(&self) -> u32 {
        self.stored_crc
    }

    /// Checks the whole frame (header included, exactly
    /// [`frame_len`](Self::frame_len) bytes) under the segment's epoch and
    /// the frame's bound LSN.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Truncated`] for a slice of another length;
    /// [`DecodeError::BadChecksum`] when the CRC fails: the frame is torn,
    /// damaged, of another epoch, or not at `lsn`.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// # let key = EpochKey::new(1);
    /// # let record = Record::raw(b"abc");
    /// # let mut buf = [0u8; 11];
    /// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
    /// let header = FrameHeader::decode(&buf).unwrap();
    /// assert!(header.verify(&key, 5, &buf).is_ok());
    /// assert!(header.verify(&key, 6, &buf).is_err()); // another LSN
    /// ```
    pub fn verify(&self, key: &EpochKey, lsn: Lsn, frame: &[u8]) -> Result<(), DecodeError> {
        if frame.len() != self.frame_len() {
            return Err(DecodeError::Truncated {
                needed: self.frame_len() as u64,
                available: frame.len() as u64,
            });
        }
        let hl = self.header_len();
        let crc = prefix_crc(key.crc, lsn, frame, hl - 4);
        let computed = crc32c_append(crc, &frame[hl..]);
        if computed != self.stored_crc {
            return Err(DecodeError::BadChecksum { stored: self.stored_crc, computed });
        }
        Ok(())
    }
}

/// A checked v2 frame borrowed from the bytes it was decoded from.
///
/// ```
/// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
/// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
/// # use nori_wal_core::Record;
/// # let key = EpochKey::new(1);
/// # let record = Record::raw(b"abc");
/// # let mut buf = [0u8; 11];
/// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
/// let frame: v2::Frame<'_> = v2::decode_frame(&buf, &key, 5).unwrap();
/// assert_eq!(frame.payload(), b"abc");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    header: FrameHeader,
    bytes: &'a [u8],
}

/// Decodes and checks the frame at the start of `bytes` (which end where
/// the segment's frames end: at its seal slot) under the segment's epoch
/// and the LSN the reader expects there.
///
/// # Errors
///
/// As [`FrameHeader::decode`] and [`FrameHeader::verify`], and
/// [`DecodeError::LengthOutOfBounds`] for a frame running past `bytes`.
///
/// ```
/// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
/// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
/// # use nori_wal_core::Record;
/// # let key = EpochKey::new(1);
/// # let record = Record::raw(b"abc");
/// # let mut buf = [0u8; 11];
/// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
/// assert!(v2::decode_frame(&buf, &key, 5).is_ok());
/// assert!(v2::decode_frame(&buf, &EpochKey::new(2), 5).is_err()); // another epoch
/// ```
pub fn decode_frame<'a>(bytes: &'a [u8], key: &EpochKey, lsn: Lsn) -> Result<Frame<'a>, DecodeError> {
    let header = FrameHeader::decode(bytes)?;
    let Some(frame) = bytes.get(..header.frame_len()) else {
        return Err(DecodeError::LengthOutOfBounds {
            frame_len: header.frame_len() as u64,
            available: bytes.len() as u64,
        });
    };
    header.verify(key, lsn, frame)?;
    Ok(Frame { header, bytes: frame })
}

/// A frame [`check_run`] checked: short form, uncompressed, its CRC good
/// under the LSN it was expected at.
///
/// ```
/// use nori_wal_core::format::v2::{self, EncodedFrame};
/// use nori_wal_core::format::{EpochKey, FrameKind};
/// use nori_wal_core::Record;
/// let key = EpochKey::new(1);
/// let mut bytes = [0u8; 16];
/// let n = EncodedFrame::record(&Record::raw(b"hello")).unwrap().write_to(&mut bytes, &key, 40).unwrap();
/// let mut kinds = Vec::new();
/// v2::check_run(&bytes[..n], &key, 40, 512, |frame: &v2::RunFrame<'_>| {
///     kinds.push((frame.at, frame.header.kind(), frame.lsn, frame.count, frame.payload.to_vec()));
///     true
/// });
/// assert_eq!(kinds, [(0, FrameKind::Raw, 40, 1, b"hello".to_vec())]);
/// ```
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy)]
pub struct RunFrame<'a> {
    /// Where the frame starts in the bytes walked.
    pub at: usize,
    /// Its header.
    pub header: FrameHeader,
    /// The LSN it is bound to: its first record's, or the next record's
    /// for a frame that holds none.
    pub lsn: Lsn,
    /// How many LSNs it takes: 1 for a record, 0 for padding and marks,
    /// a batch's count as its payload states it (not yet checked against
    /// its entries: see [`Body::parse`]).
    pub count: u32,
    /// Its payload.
    pub payload: &'a [u8],
}

/// Checks the frames at the start of `bytes` (which end where the
/// segment's frames end) while they are short (at most `max_len` bytes,
/// header included), uncompressed and hold records, padding or a mark:
/// three at a time, their CRCs computed interleaved where the CPU has a
/// CRC32C instruction, so that a reader of many small frames does not wait
/// for one frame's CRC chain after another. The first frame is expected at
/// `lsn`; each next one at the LSN after the one before.
///
/// Hands each frame that checks out to `take`, in order, and stops before
/// the first that does not (or is anything else, or runs past `bytes`), or
/// when `take` returns `false` (the frame then counts as not taken). A
/// reader goes on frame by frame from there, and reports what it finds.
/// Returns where the frames taken end in `bytes`, and the LSN expected
/// there.
///
/// ```
/// use nori_wal_core::format::v2::{self, EncodedFrame};
/// use nori_wal_core::format::EpochKey;
/// use nori_wal_core::Record;
/// let key = EpochKey::new(3);
/// let mut bytes = [0u8; 64];
/// let mut at = 0;
/// for (i, payload) in [&b"ab"[..], b"cde", b"f", b"gh"].iter().enumerate() {
///     at += EncodedFrame::record(&Record::raw(payload)).unwrap().write_to(&mut bytes[at..], &key, 10 + i as u64).unwrap();
/// }
/// bytes[at - 1] ^= 1; // the fourth frame damaged
/// let mut seen = Vec::new();
/// let (end, lsn) = v2::check_run(&bytes[..at], &key, 10, 512, |frame| {
///     seen.push((frame.lsn, frame.payload.to_vec()));
///     true
/// });
/// assert_eq!(seen, [(10, b"ab".to_vec()), (11, b"cde".to_vec()), (12, b"f".to_vec())]);
/// assert_eq!((end, lsn), (at - 10, 13));
/// ```
#[cfg(feature = "std")]
pub fn check_run<'a>(
    bytes: &'a [u8],
    key: &EpochKey,
    lsn: Lsn,
    max_len: usize,
    mut take: impl FnMut(&RunFrame<'a>) -> bool,
) -> (usize, Lsn) {
    let (mut at, mut lsn) = (0usize, lsn);
    loop {
        // Up to three short frames whose headers are well formed, with the
        // LSN each is expected at (from the counts of the ones before). The
        // kind byte of such a frame holds its type alone (no codec, not
        // long): the few values a run takes are matched whole.
        let mut frames: [Option<RunFrame<'a>>; 3] = [None; 3];
        let mut heads = [0u32; 3];
        // The CRC's inputs, filled as the headers are read and passed by
        // reference: rebuilt from `frames` and passed by value, they were
        // stored and reloaded at different widths, a stall on every three
        // frames (BENCHMARKS.md).
        let mut lsns = [0u64; 3];
        let mut data: [&[u8]; 3] = [&[]; 3];
        let (mut p, mut l) = (at, lsn);
        for (((slot, head), bound), held) in frames.iter_mut().zip(&mut heads).zip(&mut lsns).zip(&mut data) {
            let Some(h) = bytes.get(p..).and_then(<[u8]>::first_chunk::<FRAME_HEADER_LEN>) else { break };
            let [code, check, len_lo, len_hi, c0, c1, c2, c3] = *h;
            let len = FRAME_HEADER_LEN + usize::from(u16::from_le_bytes([len_lo, len_hi]));
            if code != !check || len > max_len {
                break;
            }
            let Some(payload) = bytes.get(p + FRAME_HEADER_LEN..p + len) else { break };
            let (kind, count) = match code {
                1 => (FrameKind::Put, 1),
                2 => (FrameKind::Delete, 1),
                3 => (FrameKind::Raw, 1),
                4 => match payload.first_chunk::<4>() {
                    Some(c) => (FrameKind::Batch, u32::from_le_bytes(*c)),
                    None => break,
                },
                5 => (FrameKind::Padding, 0),
                6 => (FrameKind::Mark, 0),
                _ => break,
            };
            let header = FrameHeader {
                kind,
                compression: Compression::None,
                long: false,
                payload_len: (len - FRAME_HEADER_LEN) as u32,
                stored_crc: u32::from_le_bytes([c0, c1, c2, c3]),
            };
            *slot = Some(RunFrame { at: p, header, lsn: l, count, payload });
            *head = u32::from_le_bytes([code, check, len_lo, len_hi]);
            *bound = l;
            *held = payload;
            p += len;
            l = l.saturating_add(u64::from(count));
        }
        if frames[0].is_none() {
            return (at, lsn);
        }
        // Each CRC over the bound LSN and the header's first 4 bytes (the
        // CRC field follows them), then over the payload: three frames
        // interleaved.
        let computed = crate::crc::crc32c_frames_3(key.crc, &lsns, &heads, &data);
        for (frame, computed) in frames.iter().zip(computed) {
            let Some(frame) = frame else { return (at, lsn) };
            if computed != frame.header.stored_crc || !take(frame) {
                return (at, lsn);
            }
            at = frame.at + frame.header.frame_len();
            lsn = frame.lsn.saturating_add(u64::from(frame.count));
        }
    }
}

impl<'a> Frame<'a> {
    /// The frame's header.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// # let key = EpochKey::new(1);
    /// # let record = Record::raw(b"abc");
    /// # let mut buf = [0u8; 11];
    /// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
    /// assert_eq!(v2::decode_frame(&buf, &key, 5).unwrap().header().kind(), FrameKind::Raw);
    /// ```
    #[must_use]
    pub const fn header(&self) -> FrameHeader {
        self.header
    }

    /// The whole frame's length, header included.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// # let key = EpochKey::new(1);
    /// # let record = Record::raw(b"abc");
    /// # let mut buf = [0u8; 11];
    /// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
    /// assert_eq!(v2::decode_frame(&buf, &key, 5).unwrap().len(), 11);
    /// ```
    #[must_use]
    #[allow(clippy::len_without_is_empty, reason = "a frame is never empty")]
    pub const fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The payload bytes (compressed for a compressed frame).
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// # let key = EpochKey::new(1);
    /// # let record = Record::raw(b"abc");
    /// # let mut buf = [0u8; 11];
    /// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
    /// assert_eq!(v2::decode_frame(&buf, &key, 5).unwrap().payload(), b"abc");
    /// ```
    #[must_use]
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header.header_len()..]
    }

    /// The body of an uncompressed frame.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Compressed`] for a compressed frame;
    /// [`DecodeError::MalformedBody`] for a broken layout.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// # let key = EpochKey::new(1);
    /// # let record = Record::raw(b"abc");
    /// # let mut buf = [0u8; 11];
    /// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
    /// assert_eq!(v2::decode_frame(&buf, &key, 5).unwrap().body(), Ok(Body::Record(Record::raw(b"abc"))));
    /// ```
    pub fn body(&self) -> Result<Body<'a>, DecodeError> {
        body_of(self.header.kind, self.header.compression, self.payload())
    }

    /// The records of an uncompressed frame, in LSN order (none for
    /// padding, marks, holes and seals).
    ///
    /// # Errors
    ///
    /// As [`body`](Self::body).
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// # let key = EpochKey::new(1);
    /// # let record = Record::raw(b"abc");
    /// # let mut buf = [0u8; 11];
    /// # EncodedFrame::record(&record).unwrap().write_to(&mut buf, &key, 5).unwrap();
    /// assert_eq!(v2::decode_frame(&buf, &key, 5).unwrap().records().unwrap().count(), 1);
    /// ```
    pub fn records(&self) -> Result<Records<'a>, DecodeError> {
        self.body().map(|b| b.records())
    }
}

/// The body of a frame of `kind` whose payload, stored in `compression`,
/// is `payload`: version 1's kinds, holes and seals.
pub(super) fn body_of(
    kind: FrameKind,
    compression: Compression,
    payload: &[u8],
) -> Result<Body<'_>, DecodeError> {
    if compression != Compression::None {
        return Err(DecodeError::Compressed { codec: compression });
    }
    match kind {
        FrameKind::Hole => body::parse_hole(payload).map(|count| Body::Hole { count }),
        FrameKind::Seal => Seal::parse(payload).map(Body::Seal),
        kind => Body::parse(kind, payload),
    }
}

/// The running checksum a seal records: CRC32C of the `crc` fields of a
/// segment's frames, in order, each as 4 little-endian bytes.
///
/// ```
/// use nori_wal_core::format::v2::FramesCrc;
/// let mut frames = FramesCrc::default();
/// frames.add(0x1234_5678);
/// frames.add(0x9ABC_DEF0);
/// assert_eq!(frames.value(), nori_wal_core::crc::crc32c(&[0x78, 0x56, 0x34, 0x12, 0xF0, 0xDE, 0xBC, 0x9A]));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FramesCrc(u32);

impl FramesCrc {
    /// Adds the next frame's stored CRC.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::FramesCrc;
    /// let mut frames = FramesCrc::default();
    /// frames.add(7);
    /// assert_ne!(frames, FramesCrc::default());
    /// ```
    pub fn add(&mut self, frame_crc: u32) {
        self.0 = crc32c_append(self.0, &frame_crc.to_le_bytes());
    }

    /// Adds several frames' CRCs at once: `crcs` holds them in order, each
    /// as 4 little-endian bytes (one CRC pass instead of one per frame: a
    /// writer may gather them and add them in runs).
    ///
    /// ```
    /// # use nori_wal_core::format::v2::FramesCrc;
    /// let (mut one, mut all) = (FramesCrc::default(), FramesCrc::default());
    /// one.add(7);
    /// one.add(9);
    /// all.add_bytes(&[7, 0, 0, 0, 9, 0, 0, 0]);
    /// assert_eq!(one, all);
    /// ```
    pub fn add_bytes(&mut self, crcs: &[u8]) {
        self.0 = crc32c_append(self.0, crcs);
    }

    /// The checksum of the frames added so far.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::FramesCrc;
    /// assert_eq!(FramesCrc::default().value(), 0);
    /// ```
    #[must_use]
    pub const fn value(&self) -> u32 {
        self.0
    }
}

/// A frame to write: its kind and payload, sealed with its CRC when
/// written under an epoch and a bound LSN.
///
/// ```
/// use nori_wal_core::format::v2::{self, EncodedFrame};
/// use nori_wal_core::format::EpochKey;
/// use nori_wal_core::Record;
///
/// let key = EpochKey::new(9);
/// let record = Record::raw(&[7; 16]);
/// let frame = EncodedFrame::record(&record).unwrap();
/// assert_eq!(frame.len(), 24); // 8-byte header
/// let mut buf = [0u8; 24];
/// frame.write_to(&mut buf, &key, 42).unwrap();
/// assert!(v2::decode_frame(&buf, &key, 42).is_ok());
/// assert!(v2::decode_frame(&buf, &key, 43).is_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct EncodedFrame<'a> {
    kind: u8,
    payload_len: u32,
    source: Source<'a>,
}

fn checked_len(payload_len: u64) -> Result<u32, EncodeError> {
    if payload_len > u64::from(MAX_PAYLOAD_LEN) {
        return Err(EncodeError::PayloadTooLarge { len: payload_len, max: u64::from(MAX_PAYLOAD_LEN) });
    }
    Ok(payload_len as u32)
}

impl<'a> EncodedFrame<'a> {
    #[cfg_attr(feature = "std", inline)]
    fn new(kind: FrameKind, compression: Compression, payload_len: u32, source: Source<'a>) -> Self {
        let long = payload_len > SHORT_MAX;
        Self { kind: kind_byte(kind, compression, long), payload_len, source }
    }

    /// The frame that stores `record` alone (bound to its LSN).
    ///
    /// # Errors
    ///
    /// [`EncodeError::PayloadTooLarge`].
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// let record = Record::put(b"k", b"v");
    /// assert_eq!(EncodedFrame::record(&record).unwrap().len(), 8 + 4 + 2);
    /// ```
    #[cfg_attr(feature = "std", inline)]
    pub fn record(record: &'a Record<'a>) -> Result<Self, EncodeError> {
        let len = checked_len(body::record_body_len(record))?;
        Ok(Self::new(body::record_kind(record), Compression::None, len, Source::Record(record)))
    }

    /// The frame that stores `records` as one atomic batch (bound to the
    /// first one's LSN).
    ///
    /// # Errors
    ///
    /// [`EncodeError::EmptyBatch`], [`EncodeError::LsnOverflow`] (more
    /// than `u32::MAX` records) or [`EncodeError::PayloadTooLarge`].
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// let records = [Record::raw(b"a"), Record::raw(b"b")];
    /// let frame = EncodedFrame::batch(&records).unwrap();
    /// let mut buf = vec![0u8; frame.len()];
    /// frame.write_to(&mut buf, &EpochKey::new(1), 0).unwrap();
    /// assert_eq!(v2::decode_frame(&buf, &EpochKey::new(1), 0).unwrap().records().unwrap().count(), 2);
    /// ```
    pub fn batch(records: &'a [Record<'a>]) -> Result<Self, EncodeError> {
        if records.is_empty() {
            return Err(EncodeError::EmptyBatch);
        }
        u32::try_from(records.len()).map_err(|_| EncodeError::LsnOverflow)?;
        let len = checked_len(body::batch_body_len(records))?;
        Ok(Self::new(FrameKind::Batch, Compression::None, len, Source::Batch(records)))
    }

    /// A padding frame of exactly `frame_len` bytes, 8 to 65 543 (bound to
    /// the next record's LSN).
    ///
    /// # Errors
    ///
    /// [`EncodeError::PaddingTooShort`] below 8 bytes,
    /// [`EncodeError::PayloadTooLarge`] above.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// assert_eq!(EncodedFrame::padding(12).unwrap().len(), 12);
    /// assert!(EncodedFrame::padding(7).is_err());
    /// ```
    pub fn padding(frame_len: usize) -> Result<Self, EncodeError> {
        let Some(body_len) = frame_len.checked_sub(FRAME_HEADER_LEN) else {
            return Err(EncodeError::PaddingTooShort { len: frame_len as u64 });
        };
        if body_len > SHORT_MAX as usize {
            return Err(EncodeError::PayloadTooLarge { len: body_len as u64, max: u64::from(SHORT_MAX) });
        }
        Ok(Self::new(FrameKind::Padding, Compression::None, body_len as u32, Source::Zeros))
    }

    /// A mark (bound to the next record's LSN).
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// assert_eq!(EncodedFrame::mark(Mark { durable_end: 5, log_start: 0 }).len(), 24);
    /// ```
    #[must_use]
    pub fn mark(mark: Mark) -> Self {
        let source = Source::Fixed(mark.to_bytes(), MARK_PAYLOAD_LEN as u8);
        Self::new(FrameKind::Mark, Compression::None, MARK_PAYLOAD_LEN as u32, source)
    }

    /// A hole declaring `count` LSNs lost (bound to the first of them).
    ///
    /// # Errors
    ///
    /// [`EncodeError::EmptyBatch`] for a count of zero.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// assert_eq!(EncodedFrame::hole(10).unwrap().len(), 12);
    /// assert!(EncodedFrame::hole(0).is_err());
    /// ```
    pub fn hole(count: u32) -> Result<Self, EncodeError> {
        if count == 0 {
            return Err(EncodeError::EmptyBatch);
        }
        let mut bytes = [0u8; MARK_PAYLOAD_LEN];
        bytes[..HOLE_PAYLOAD_LEN].copy_from_slice(&count.to_le_bytes());
        Ok(Self::new(
            FrameKind::Hole,
            Compression::None,
            HOLE_PAYLOAD_LEN as u32,
            Source::Fixed(bytes, HOLE_PAYLOAD_LEN as u8),
        ))
    }

    /// A seal (bound to the segment's base LSN); it is written in the
    /// segment's seal slot ([`SegmentHeader::seal_offset`]).
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// assert_eq!(EncodedFrame::seal(Seal { records: 3, frames_crc: 9 }).len(), v2::SEAL_LEN);
    /// ```
    #[must_use]
    pub fn seal(seal: Seal) -> Self {
        let mut bytes = [0u8; MARK_PAYLOAD_LEN];
        bytes[..SEAL_PAYLOAD_LEN].copy_from_slice(&seal.to_bytes());
        Self::new(
            FrameKind::Seal,
            Compression::None,
            SEAL_PAYLOAD_LEN as u32,
            Source::Fixed(bytes, SEAL_PAYLOAD_LEN as u8),
        )
    }

    /// A frame whose payload the caller compressed: `compressed` holds the
    /// body of `kind` (`record_count` records, `uncompressed_len` bytes
    /// once decompressed) in `codec`'s format.
    ///
    /// # Errors
    ///
    /// [`EncodeError::InvalidUncompressedLen`], [`EncodeError::EmptyBatch`]
    /// (no records, or a kind that holds none) or
    /// [`EncodeError::PayloadTooLarge`].
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// let frame = EncodedFrame::compressed(FrameKind::Raw, Compression::Lz4, 100, 1, b"lz4 bytes").unwrap();
    /// assert_eq!(frame.len(), 8 + 4 + 9);
    /// ```
    pub fn compressed(
        kind: FrameKind,
        codec: Compression,
        uncompressed_len: u32,
        record_count: u32,
        compressed: &'a [u8],
    ) -> Result<Self, EncodeError> {
        if uncompressed_len > MAX_PAYLOAD_LEN {
            return Err(EncodeError::InvalidUncompressedLen);
        }
        if record_count == 0 || !kind.holds_records() {
            return Err(EncodeError::EmptyBatch);
        }
        let len = checked_len(4 + compressed.len() as u64)?;
        Ok(Self::new(kind, codec, len, Source::Compressed(uncompressed_len.to_le_bytes(), compressed)))
    }

    /// The whole frame's length, header included.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// let payload = vec![0u8; 70_000];
    /// let record = Record::raw(&payload);
    /// assert_eq!(EncodedFrame::record(&record).unwrap().len(), 10 + 70_000); // the long form
    /// ```
    #[must_use]
    #[allow(clippy::len_without_is_empty, reason = "a frame is never empty")]
    pub const fn len(&self) -> usize {
        self.header_len() + self.payload_len as usize
    }

    #[cfg_attr(feature = "std", inline)]
    const fn header_len(&self) -> usize {
        if self.kind & LONG != 0 { LONG_FRAME_HEADER_LEN } else { FRAME_HEADER_LEN }
    }

    /// The frame's header, checked under `key`'s epoch and bound to `lsn`,
    /// and its length (the first [`FRAME_HEADER_LEN`] or
    /// [`LONG_FRAME_HEADER_LEN`] bytes): for a writer that streams the
    /// payload after it (see [`for_each_payload_piece`](Self::for_each_payload_piece)).
    /// The CRC takes one pass over the payload.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::EncodedFrame;
    /// # use nori_wal_core::format::EpochKey;
    /// # use nori_wal_core::Record;
    /// let record = Record::raw(b"xyz");
    /// let frame = EncodedFrame::record(&record).unwrap();
    /// let (key, mut whole) = (EpochKey::new(1), [0u8; 11]);
    /// frame.write_to(&mut whole, &key, 5).unwrap();
    /// let (header, len) = frame.header(&key, 5);
    /// let mut streamed = header[..len].to_vec();
    /// frame.for_each_payload_piece(|piece| streamed.extend_from_slice(piece));
    /// assert_eq!(streamed, whole);
    /// ```
    #[must_use]
    pub fn header(&self, key: &EpochKey, lsn: Lsn) -> ([u8; LONG_FRAME_HEADER_LEN], usize) {
        let (mut h, hl) = self.header_fields();
        let mut crc = prefix_crc(key.crc, lsn, &h, hl - 4);
        self.source.feed(self.payload_len, &mut |piece| crc = crc32c_append(crc, piece));
        h[hl - 4..hl].copy_from_slice(&crc.to_le_bytes());
        (h, hl)
    }

    /// The header's bytes before the CRC (kind, complement, length), in an
    /// array of the long form's length, and the header's length.
    #[cfg_attr(feature = "std", inline)]
    fn header_fields(&self) -> ([u8; LONG_FRAME_HEADER_LEN], usize) {
        let hl = self.header_len();
        let mut h = [0u8; LONG_FRAME_HEADER_LEN];
        h[0] = self.kind;
        h[1] = !self.kind;
        if hl == LONG_FRAME_HEADER_LEN {
            h[2..6].copy_from_slice(&self.payload_len.to_le_bytes());
        } else {
            h[2..4].copy_from_slice(&(self.payload_len as u16).to_le_bytes());
        }
        (h, hl)
    }

    /// Calls `f` with the payload's bytes, in order, in pieces.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::EncodedFrame;
    /// # use nori_wal_core::Record;
    /// let record = Record::put(b"k", b"v");
    /// let mut n = 0;
    /// EncodedFrame::record(&record).unwrap().for_each_payload_piece(|piece| n += piece.len());
    /// assert_eq!(n, 4 + 1 + 1);
    /// ```
    pub fn for_each_payload_piece(&self, mut f: impl FnMut(&[u8])) {
        self.source.feed(self.payload_len, &mut f);
    }

    /// Appends the whole frame to `out`, checked under `key`'s epoch and
    /// bound to `lsn`: the payload is copied once and the CRC takes one
    /// pass over the copy.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame};
    /// # use nori_wal_core::format::EpochKey;
    /// # use nori_wal_core::Record;
    /// let record = Record::raw(b"event");
    /// let mut log = vec![0xAA; 3];
    /// EncodedFrame::record(&record).unwrap().append_to(&mut log, &EpochKey::new(1), 7);
    /// assert!(v2::decode_frame(&log[3..], &EpochKey::new(1), 7).is_ok());
    /// ```
    #[cfg(feature = "std")]
    #[inline]
    pub fn append_to(&self, out: &mut std::vec::Vec<u8>, key: &EpochKey, lsn: Lsn) {
        let start = out.len();
        let (fields, hl) = self.header_fields();
        out.reserve(LONG_FRAME_HEADER_LEN + self.payload_len as usize);
        // Ten bytes copied (no call for a copy of variable length), then
        // cut to the header's length.
        out.extend_from_slice(&fields);
        out.truncate(start + hl);
        self.source.feed(self.payload_len, &mut |piece| out.extend_from_slice(piece));
        let crc = prefix_crc(key.crc, lsn, &fields, hl - 4);
        let crc = crc32c_append(crc, &out[start + hl..]);
        out[start + hl - 4..start + hl].copy_from_slice(&crc.to_le_bytes());
    }

    /// Writes the whole frame at the start of `out`, checked under `key`'s
    /// epoch and bound to `lsn`. Returns its length.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BufferTooSmall`]; `out` is then unchanged.
    ///
    /// ```
    /// # use nori_wal_core::format::v2::{self, EncodedFrame, FrameHeader, SegmentHeader};
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Compression, Body, Mark, Seal};
    /// # use nori_wal_core::Record;
    /// let record = Record::raw(b"x");
    /// let mut buf = [0u8; 9];
    /// assert_eq!(EncodedFrame::record(&record).unwrap().write_to(&mut buf, &EpochKey::new(1), 0), Ok(9));
    /// assert!(EncodedFrame::record(&record).unwrap().write_to(&mut buf[..8], &EpochKey::new(1), 0).is_err());
    /// ```
    pub fn write_to(&self, out: &mut [u8], key: &EpochKey, lsn: Lsn) -> Result<usize, EncodeError> {
        let len = self.len();
        let Some(frame) = out.get_mut(..len) else {
            return Err(EncodeError::BufferTooSmall { needed: len as u64, available: out.len() as u64 });
        };
        let (fields, hl) = self.header_fields();
        let (h, mut rest) = frame.split_at_mut(hl);
        h.copy_from_slice(&fields[..hl]);
        let mut crc = prefix_crc(key.crc, lsn, h, hl - 4);
        self.source.feed(self.payload_len, &mut |piece| {
            let (dst, after) = core::mem::take(&mut rest).split_at_mut(piece.len());
            dst.copy_from_slice(piece);
            crc = crc32c_append(crc, piece);
            rest = after;
        });
        h[hl - 4..].copy_from_slice(&crc.to_le_bytes());
        Ok(len)
    }
}

/// Writes the short frame of `record` stored alone at the start of `out`,
/// bound to `lsn` under `key`, and returns its length and its CRC; `None`
/// (with `out` unchanged) when the payload takes the long form or `out` is
/// too short. The bytes are those of [`EncodedFrame::record`] and
/// [`EncodedFrame::write_to`]; a raw record or a delete (one piece) is
/// written in one pass without the general encoder's steps, a put (three
/// pieces) through them. The ring log's append takes it for each record
/// that fits its write buffer.
#[cfg(feature = "std")]
#[inline]
pub(crate) fn write_short_record(
    out: &mut [u8],
    record: &Record<'_>,
    key: &EpochKey,
    lsn: Lsn,
) -> Option<(usize, u32)> {
    let body_len = body::record_body_len(record);
    if body_len > u64::from(SHORT_MAX) {
        return None;
    }
    let len = FRAME_HEADER_LEN + body_len as usize;
    let frame = out.get_mut(..len)?;
    let (Record::Raw(bytes) | Record::Delete { key: bytes }) = record else {
        EncodedFrame::record(record).ok()?.write_to(frame, key, lsn).ok()?;
        return Some((len, u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]])));
    };
    let (h, rest) = frame.split_at_mut(FRAME_HEADER_LEN);
    let kind = kind_byte(body::record_kind(record), Compression::None, false);
    h[0] = kind;
    h[1] = !kind;
    h[2..4].copy_from_slice(&(body_len as u16).to_le_bytes());
    rest.copy_from_slice(bytes);
    let crc = crc32c_append(prefix_crc(key.crc, lsn, h, FRAME_HEADER_LEN - 4), bytes);
    h[4..].copy_from_slice(&crc.to_le_bytes());
    Some((len, crc))
}

/// A linear map on 32-bit CRC registers over GF(2): column `i` is the image
/// of bit `i`.
type Matrix = [u32; 32];

/// The raw CRC32C register after `bytes`, from register `register` (no
/// initial or final inversion: the map is linear in the register and the
/// bytes together).
fn raw(register: u32, bytes: &[u8]) -> u32 {
    !crc32c_append(!register, bytes)
}

fn apply(m: &Matrix, v: u32) -> u32 {
    let mut out = 0;
    let mut bits = v;
    while bits != 0 {
        let i = bits.trailing_zeros();
        out ^= m[i as usize];
        bits &= bits - 1;
    }
    out
}

fn compose(a: &Matrix, b: &Matrix) -> Matrix {
    core::array::from_fn(|i| apply(a, b[i]))
}

/// The map of a register through `n` zero bytes.
fn zeros_map(mut n: u64) -> Matrix {
    let mut power: Matrix = core::array::from_fn(|i| raw(1 << i, &[0]));
    let mut result: Matrix = core::array::from_fn(|i| 1 << i);
    while n > 0 {
        if n & 1 == 1 {
            result = compose(&power, &result);
        }
        power = compose(&power, &power);
        n >>= 1;
    }
    result
}

/// The `x` with `m · x = v`, when `m` is invertible.
fn solve(m: &Matrix, v: u32) -> Option<u32> {
    // Rows of the augmented system: coefficients in bits 0..32 of the low
    // word, the right-hand side in the high word's bit 0.
    let mut rows: [(u32, u32); 32] = core::array::from_fn(|j| {
        let coefficients = (0..32).fold(0u32, |acc, i| acc | (((m[i] >> j) & 1) << i));
        (coefficients, (v >> j) & 1)
    });
    for col in 0..32 {
        let pivot = (col..32).find(|&r| rows[r].0 >> col & 1 == 1)?;
        rows.swap(col, pivot);
        let (pc, pv) = rows[col];
        for (r, row) in rows.iter_mut().enumerate() {
            if r != col && row.0 >> col & 1 == 1 {
                row.0 ^= pc;
                row.1 ^= pv;
            }
        }
    }
    Some(rows.iter().enumerate().fold(0, |acc, (i, row)| acc | (row.1 << i)))
}

/// The LSN in `range` under which `frame` (exactly one frame, its header
/// structurally valid) checks out, if there is one: what a reader that
/// lost its place after damage uses to find the frames that follow
/// (FORMAT.md section v2.3). The CRC is affine in the bound LSN, and the
/// LSN's low half enters through an invertible map: for each value of the
/// high half the range allows, one solve gives the only low half that can
/// check out. The range should be narrow (what the damaged span allows);
/// a range that spans more than four values of the high half is refused.
///
/// ```
/// use nori_wal_core::format::v2::{self, EncodedFrame};
/// use nori_wal_core::format::EpochKey;
/// use nori_wal_core::Record;
///
/// let key = EpochKey::new(3);
/// let mut frame = [0u8; 13];
/// EncodedFrame::record(&Record::raw(b"hello")).unwrap().write_to(&mut frame, &key, 123_456).unwrap();
/// assert_eq!(v2::solve_lsn(&key, &frame, 100_000..200_000), Some(123_456));
/// assert_eq!(v2::solve_lsn(&key, &frame, 0..100_000), None);
/// ```
#[must_use]
pub fn solve_lsn(key: &EpochKey, frame: &[u8], range: core::ops::Range<Lsn>) -> Option<Lsn> {
    let header = FrameHeader::decode(frame).ok()?;
    if frame.len() != header.frame_len() || range.is_empty() {
        return None;
    }
    let (first_hi, last_hi) = (range.start >> 32, (range.end - 1) >> 32);
    if last_hi - first_hi >= 4 {
        return None;
    }
    let hl = header.header_len();
    let rest = raw(raw(0, &frame[..hl - 4]), &frame[hl..]);
    let mut found = None;
    solve_candidates(key, &header, rest, first_hi..=last_hi, &mut |lsn| {
        if range.contains(&lsn) && header.verify(key, lsn, frame).is_ok() {
            found = Some(lsn);
        }
        found.is_none()
    });
    found
}

/// The CRC after the epoch's state `key_crc`, the bound `lsn` and `fields`,
/// the header bytes before the CRC field (4, or 6 in the long form), in one
/// pass over 12 or 14 bytes.
/// Without `std` (the table-driven CRC, no call to save), two passes: the
/// smaller code on a firmware image.
/// `head` starts with the header, `n` its bytes before the CRC field.
#[inline]
fn prefix_crc(key_crc: u32, lsn: Lsn, head: &[u8], n: usize) -> u32 {
    if cfg!(feature = "std") {
        const MOST: usize = LONG_FRAME_HEADER_LEN - 4;
        let mut prefix = [0u8; 8 + MOST];
        prefix[..8].copy_from_slice(&lsn.to_le_bytes());
        // A fixed-size copy (no call) where the bytes are there.
        match head.first_chunk::<MOST>() {
            Some(first) => prefix[8..].copy_from_slice(first),
            None => prefix[8..8 + n].copy_from_slice(&head[..n]),
        }
        crc32c_append(key_crc, &prefix[..8 + n.min(MOST)])
    } else {
        crc32c_append(crc32c_append(key_crc, &lsn.to_le_bytes()), &head[..n])
    }
}

/// A frame's CRC so far, after the epoch, the bound `lsn` and the header
/// bytes before the CRC field (`header` holds at least those): a reader
/// streaming a frame too long for its buffer continues it over the payload.
pub(crate) fn crc_start(key: &EpochKey, lsn: Lsn, header: &FrameHeader, bytes: &[u8]) -> u32 {
    prefix_crc(key.crc, lsn, bytes, header.header_len() - 4)
}

/// The seal at the start of a segment's seal slot `slot`, checked under the
/// segment's epoch and base LSN (a reader's one use of it: no general frame
/// decoder needed).
pub(crate) fn decode_seal(slot: &[u8], key: &EpochKey, base_lsn: Lsn) -> Result<Seal, DecodeError> {
    let header = FrameHeader::decode(slot)?;
    if header.kind != FrameKind::Seal {
        return Err(DecodeError::MalformedBody { reason: super::Malformed::MisplacedFrame });
    }
    let Some(frame) = slot.get(..header.frame_len()) else {
        return Err(DecodeError::LengthOutOfBounds {
            frame_len: header.frame_len() as u64,
            available: slot.len() as u64,
        });
    };
    let computed = crc32c_append(crc_start(key, base_lsn, &header, frame), &frame[FRAME_HEADER_LEN..]);
    if computed != header.stored_crc {
        return Err(DecodeError::BadChecksum { stored: header.stored_crc, computed });
    }
    Seal::parse(&frame[FRAME_HEADER_LEN..])
}

/// The CRC register after `bytes`, from `register`, without the
/// pre- and post-inversion: what a reader streaming a frame too long for
/// its buffer accumulates for [`solve_streamed`].
pub(crate) fn raw_crc(register: u32, bytes: &[u8]) -> u32 {
    raw(register, bytes)
}

/// [`solve_lsn`] for a frame read in pieces: `rest` is [`raw_crc`] from 0
/// over the header bytes before the CRC and then the payload. The LSN
/// returned is the only one in `range` that can check out; the caller
/// checks the frame under it.
pub(crate) fn solve_streamed(
    key: &EpochKey,
    header: &FrameHeader,
    rest: u32,
    range: core::ops::Range<Lsn>,
) -> Option<Lsn> {
    if range.is_empty() {
        return None;
    }
    let (first_hi, last_hi) = (range.start >> 32, (range.end - 1) >> 32);
    if last_hi - first_hi >= 4 {
        return None;
    }
    let mut found = None;
    solve_candidates(key, header, rest, first_hi..=last_hi, &mut |lsn| {
        if range.contains(&lsn) {
            found = Some(lsn);
        }
        found.is_none()
    });
    found
}

/// Calls `each` with the one LSN per value of the high half in `his` under
/// which a frame whose header is `header` and whose other bytes give
/// `rest` can check out, until it returns `false`.
fn solve_candidates(
    key: &EpochKey,
    header: &FrameHeader,
    rest: u32,
    his: core::ops::RangeInclusive<u64>,
    each: &mut dyn FnMut(Lsn) -> bool,
) {
    // The register the CRC ends in, and what the bytes after the LSN add to
    // it from a zero register.
    let end = !header.stored_crc;
    let Some(after_lsn) = solve(&zeros_map((header.frame_len() - 4) as u64), end ^ rest) else { return };
    // The epoch's register carried through the LSN's 8 bytes, and the
    // LSN's own part.
    let want = after_lsn ^ raw(!key.crc, &[0; 8]);
    let shift4 = zeros_map(4);
    let low: Matrix = core::array::from_fn(|i| raw(0, &(1u32 << i).to_le_bytes()));
    for hi in his {
        let hi_part = raw(0, &(hi << 32).to_le_bytes());
        let Some(low_register) = solve(&shift4, want ^ hi_part) else { continue };
        let Some(lo) = solve(&low, low_register) else { continue };
        if !each((hi << 32) | u64::from(lo)) {
            return;
        }
    }
}

/// Where the frames resume after damage: the first frame
/// [`find_after_damage`] accepts, and its LSN.
///
/// ```
/// # use nori_wal_core::format::v2::Resumed;
/// let resumed = Resumed { offset: 56, lsn: 12 };
/// assert_eq!(resumed.lsn, 12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Resumed {
    /// Its offset in the bytes searched.
    pub offset: usize,
    /// Its bound LSN: LSNs from the damage's up to this one were lost.
    pub lsn: Lsn,
}

/// The smallest number of bytes per LSN a frame can take (a batch entry of
/// an empty raw record): at most one LSN per this many bytes skipped.
const MIN_BYTES_PER_LSN: u64 = 5;
/// A candidate with no frame after it is accepted only after a span this
/// short (FORMAT.md section v2.3).
const LAST_FRAME_SPAN: usize = 1 << 10;

/// Finds the first frame after damage. `bytes` are a segment's frames, from
/// its frames offset (a program-unit boundary) to its seal slot; the damage
/// begins at `damaged_at` (the frame that failed), where LSN `from` was
/// expected; `end` is the segment's end LSN when a seal or the next segment
/// gives it, and `unit` the program unit (fill bytes reach its
/// boundaries). The offset found is in `bytes`.
///
/// A candidate is a position where a structurally valid header starts and
/// an LSN the damage allows there ([`solve_lsn`]): from `from` to one LSN
/// per 5 bytes skipped (the densest frames, batches of empty records), or
/// to `end` when it is given (a sealed segment, whose holes may take any
/// number of LSNs). It is accepted only if the frame after it validates
/// under the next LSN (and the one after that, when the span and the range
/// of LSNs are so wide that one would leave the odds above 2^-40), or if it
/// is the last frame before blank space or the end and the span before it
/// is at most 1 KiB. So the odds
/// that damage yields a phantom record stay below 2^-40 (FORMAT.md). The
/// cost is one CRC pass over each candidate frame; most positions of
/// random bytes fail the header's structural checks first.
///
/// ```
/// use nori_wal_core::format::v2::{self, EncodedFrame, Resumed};
/// use nori_wal_core::format::EpochKey;
/// use nori_wal_core::Record;
///
/// let key = EpochKey::new(5);
/// let mut segment = vec![0xFFu8; 256];
/// let mut at = 0;
/// for lsn in 10..16 {
///     let payload = [lsn as u8; 20];
///     let record = Record::raw(&payload);
///     at += EncodedFrame::record(&record).unwrap().write_to(&mut segment[at..], &key, lsn).unwrap();
/// }
/// // Damage the first two frames (28 bytes each).
/// segment[3] ^= 0x10;
/// segment[40] ^= 0x01;
/// assert_eq!(
///     v2::find_after_damage(&segment, 0, &key, 10, None, 1),
///     Some(Resumed { offset: 56, lsn: 12 })
/// );
/// ```
#[must_use]
pub fn find_after_damage(
    bytes: &[u8],
    damaged_at: usize,
    key: &EpochKey,
    from: Lsn,
    end: Option<Lsn>,
    unit: u32,
) -> Option<Resumed> {
    for offset in damaged_at..bytes.len() {
        let rest = &bytes[offset..];
        let skipped = (offset - damaged_at) as u64;
        let Ok(header) = FrameHeader::decode(rest) else { continue };
        let Some(frame) = rest.get(..header.frame_len()) else { continue };
        // The LSNs the damage allows here.
        let most = match end {
            Some(end) => end.saturating_add(1),
            None => from.saturating_add(skipped / MIN_BYTES_PER_LSN + 1),
        };
        let Some(lsn) = solve_lsn(key, frame, from..most) else { continue };
        // Candidate pairs tried: at most the span times the widest range.
        // Each confirmation multiplies the odds of a phantom by 2^-43.
        let pairs = ((bytes.len() - damaged_at) as u128) * u128::from(most.saturating_sub(from));
        let needed = if pairs < 1 << 46 { 1 } else { 2 };
        if confirmed(bytes, key, offset, lsn, unit, needed, skipped) {
            return Some(Resumed { offset, lsn });
        }
    }
    None
}

/// Whether `needed` frames validate after the frame at `offset` (bound to
/// `lsn`), or it is the last frame after a short span.
fn confirmed(
    bytes: &[u8],
    key: &EpochKey,
    offset: usize,
    lsn: Lsn,
    unit: u32,
    needed: usize,
    skipped: u64,
) -> bool {
    let (mut at, mut lsn, mut validated) = (offset, lsn, 0);
    loop {
        let Ok(frame) = decode_frame(&bytes[at..], key, lsn) else { return false };
        let after = at + frame.len();
        let next = match frame.body() {
            Ok(body) => {
                let next_lsn = lsn + u64::from(body.lsn_count());
                next_frame(bytes, key, after, unit, next_lsn..next_lsn + 1)
            }
            // A compressed frame's count is in its compressed body: the
            // next frame's LSN is solved for instead.
            Err(DecodeError::Compressed { .. }) => {
                next_frame(bytes, key, after, unit, lsn + 1..lsn + 2 + frame.payload().len() as u64)
            }
            Err(_) => return false,
        };
        let Some((next_at, next_lsn)) = next else {
            // Nothing valid after it: accepted only as the last frame, before
            // blank space or the end, after a short span.
            let end = skip_fill(bytes, after, unit);
            return validated == 0
                && skipped <= LAST_FRAME_SPAN as u64
                && (end >= bytes.len() || is_blank_at(bytes, end));
        };
        validated += 1;
        if validated == needed {
            return true;
        }
        (at, lsn) = (next_at, next_lsn);
    }
}

/// The frame that follows at `after` (or, past fill bytes, at the next
/// unit boundary) under an LSN in `lsns`: its offset and LSN.
fn next_frame(
    bytes: &[u8],
    key: &EpochKey,
    after: usize,
    unit: u32,
    lsns: core::ops::Range<Lsn>,
) -> Option<(usize, Lsn)> {
    let at_fill = skip_fill(bytes, after, unit);
    [after, at_fill].into_iter().take(if at_fill == after { 1 } else { 2 }).find_map(|at| {
        let rest = bytes.get(at..)?;
        let header = FrameHeader::decode(rest).ok()?;
        let frame = rest.get(..header.frame_len())?;
        let lsn = if lsns.end - lsns.start == 1 {
            header.verify(key, lsns.start, frame).ok().map(|()| lsns.start)?
        } else {
            solve_lsn(key, frame, lsns.clone())?
        };
        Some((at, lsn))
    })
}

/// The offset after fill bytes at `at`: if `at` is off a unit boundary and
/// every byte from it to the boundary holds one value, the boundary; else
/// `at`. A reader tries a frame at `at` first: fill is what it finds there
/// when no frame checks out (FORMAT.md section v2.4).
///
/// ```
/// # use nori_wal_core::format::v2;
/// let bytes = [1, 2, 3, 0xFF, 9, 9, 9, 9];
/// assert_eq!(v2::skip_fill(&bytes, 3, 4), 4); // one fill byte to the boundary
/// assert_eq!(v2::skip_fill(&bytes, 4, 4), 4); // on a boundary: nothing to skip
/// ```
#[must_use]
pub fn skip_fill(bytes: &[u8], at: usize, unit: u32) -> usize {
    let unit = unit as usize;
    if unit <= 1 || at.is_multiple_of(unit) || at >= bytes.len() {
        return at;
    }
    let boundary = (at / unit + 1) * unit;
    match bytes.get(at..boundary.min(bytes.len())) {
        Some(fill) if uniform_fill(fill).is_some() => boundary,
        _ => at,
    }
}

/// Whether the frame header at `at` is blank (8 bytes of one value) or cut
/// short by the end of `bytes`.
fn is_blank_at(bytes: &[u8], at: usize) -> bool {
    match bytes.get(at..at + FRAME_HEADER_LEN) {
        Some(h) => uniform_fill(h).is_some(),
        None => true,
    }
}

#[cfg(test)]
mod decode_tests {
    extern crate std;
    use std::vec::Vec;

    use super::{EncodedFrame, SEAL_LEN, SegmentHeader, decode_seal};
    use crate::format::{AnyHeader, DecodeError, EpochKey, Seal, Version};

    /// The one-pass writer of a short record frame writes the bytes the
    /// general encoder writes, for every record kind and payload length up
    /// to the short form's limit; it writes nothing for a long payload or a
    /// buffer too short.
    #[cfg(feature = "std")]
    #[test]
    fn a_short_record_written_in_one_pass_is_the_encoders_frame() {
        use crate::Record;
        let key = EpochKey::new(0x1234_5678);
        let bytes: Vec<u8> = (0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let lens = [0usize, 1, 7, 8, 9, 127, 128, 129, 4096, 65_531, 65_535, 65_536, 69_999];
        for (i, &len) in lens.iter().enumerate() {
            let k = &bytes[..len.min(5)];
            let put_value = &bytes[..len.saturating_sub(4 + k.len())];
            let records =
                [Record::raw(&bytes[..len]), Record::delete(&bytes[..len]), Record::put(k, put_value)];
            for record in &records {
                let lsn = 1_000_000_007 * i as u64;
                let encoder = EncodedFrame::record(record).unwrap();
                let mut expected = Vec::new();
                encoder.append_to(&mut expected, &key, lsn);
                let mut out = std::vec![0xA5u8; expected.len() + 3];
                let written = super::write_short_record(&mut out, record, &key, lsn);
                if encoder.len() - super::FRAME_HEADER_LEN > super::SHORT_MAX as usize {
                    assert_eq!(written, None, "a long payload of {len} bytes");
                    assert!(out.iter().all(|&b| b == 0xA5), "nothing written for a long payload");
                    continue;
                }
                let stored = u32::from_le_bytes(expected[4..8].try_into().unwrap());
                assert_eq!(written, Some((expected.len(), stored)), "{record:?} of {len} bytes");
                assert_eq!(&out[..expected.len()], &expected[..], "{len} bytes");
                assert!(out[expected.len()..].iter().all(|&b| b == 0xA5), "nothing written after the frame");
                let mut short = std::vec![0xA5u8; expected.len() - 1];
                assert_eq!(super::write_short_record(&mut short, record, &key, lsn), None);
                assert!(short.iter().all(|&b| b == 0xA5), "nothing written into a buffer too short");
            }
        }
    }

    /// Untrusted bytes where frames should be: runs of one value, garbage,
    /// and frames cut anywhere. A run takes no frame it was not given whole
    /// and checked, and stops where the frame-by-frame walk must look.
    #[cfg(feature = "std")]
    #[test]
    fn a_run_takes_nothing_of_one_value_garbage_or_a_torn_frame() {
        let key = EpochKey::new(5);
        let garbage: Vec<u8> = (0..600u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let runs = [[0u8; 600].to_vec(), [0xFF; 600].to_vec(), [0x5A; 600].to_vec(), garbage];
        for bytes in &runs {
            let mut took = 0;
            assert_eq!(
                super::check_run(bytes, &key, 10, 512, |_| {
                    took += 1;
                    true
                }),
                (0, 10)
            );
            assert_eq!(took, 0);
        }
        let records =
            [crate::Record::raw(b"first"), crate::Record::raw(b"second"), crate::Record::raw(b"third")];
        let mut written = Vec::new();
        for (i, record) in records.iter().enumerate() {
            EncodedFrame::record(record).unwrap().append_to(&mut written, &key, 10 + i as u64);
        }
        let second_end = written.len() - (super::FRAME_HEADER_LEN + 5);
        for cut in 0..=written.len() {
            for fill in [0u8, 0xFF] {
                let mut bytes = written[..cut].to_vec();
                bytes.resize(written.len(), fill);
                let (end, lsn) = super::check_run(&bytes, &key, 10, 512, |_| true);
                let whole = if cut >= written.len() {
                    3
                } else if cut >= second_end {
                    2
                } else {
                    usize::from(cut >= 13)
                };
                assert_eq!(lsn, 10 + whole as u64, "cut at {cut}, fill {fill:#x}");
                assert!(end <= cut, "cut at {cut}: a run ends within what was written");
            }
        }
    }

    /// Untrusted bytes where a seal or a bound header should be: runs of one
    /// value (zeros, 0xFF, any other), garbage, and each written one cut
    /// anywhere (the rest erased or zeroed) never decode as anything but
    /// what was written.
    #[test]
    fn seals_and_bound_headers_refuse_what_was_not_written_whole() {
        let key = EpochKey::new(9);
        let mut seal = [0u8; SEAL_LEN];
        EncodedFrame::seal(Seal { records: 7, frames_crc: 0xABCD }).write_to(&mut seal, &key, 100).unwrap();
        assert_eq!(decode_seal(&seal, &key, 100), Ok(Seal { records: 7, frames_crc: 0xABCD }));
        assert!(decode_seal(&seal, &key, 101).is_err(), "bound to the base LSN");
        assert!(decode_seal(&seal, &EpochKey::new(10), 100).is_err(), "bound to the epoch");
        let mut header = [0u8; 24];
        SegmentHeader::new(9, 100, 8).unwrap().bound(4096).encode(&mut header).unwrap();
        // (A build without the `v2` feature refuses it by name.)
        match AnyHeader::decode_in(&header, 4096) {
            Ok(h) => assert!(Version::V2.built() && h.segment_size == Some(4096)),
            Err(e) => assert!(!Version::V2.built() && e == DecodeError::VersionNotBuilt { found: 2 }, "{e}"),
        }
        let mut inputs: Vec<Vec<u8>> = (0..=255u8).map(|b| std::vec![b; 32]).collect();
        let mut x = 0x9E37_79B9_u32;
        for _ in 0..2000 {
            inputs.push(
                (0..32)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        x as u8
                    })
                    .collect(),
            );
        }
        for cut in 0..SEAL_LEN {
            for fill in [0x00, 0xFF] {
                let mut torn = std::vec![fill; 32];
                torn[..cut].copy_from_slice(&seal[..cut]);
                // (A cut before bytes that already held the fill leaves
                // the whole seal: not torn.)
                if torn[..SEAL_LEN] != seal {
                    inputs.push(torn);
                }
            }
        }
        for cut in 0..header.len() {
            for fill in [0x00, 0xFF] {
                let mut torn = std::vec![fill; 32];
                torn[..cut].copy_from_slice(&header[..cut]);
                if torn[..header.len()] != header {
                    inputs.push(torn);
                }
            }
        }
        for input in &inputs {
            assert!(decode_seal(input, &key, 100).is_err(), "a seal from {input:02x?}");
            assert!(SegmentHeader::decode_bound(input, 4096).is_err(), "a header from {input:02x?}");
            assert!(AnyHeader::decode_in(input, 4096).is_err(), "a header from {input:02x?}");
        }
        // Blank space says so (a seal slot never written).
        assert!(matches!(decode_seal(&[0xFF; SEAL_LEN], &key, 100), Err(DecodeError::Blank { fill: 0xFF })));
        assert!(matches!(decode_seal(&[0x00; SEAL_LEN], &key, 100), Err(DecodeError::Blank { fill: 0x00 })));
    }
}

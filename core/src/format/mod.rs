//! Format v1: segment headers and record frames, encoded into and decoded
//! from caller-provided byte slices. No I/O, no allocation.
//!
//! `FORMAT.md` at the root of the repository is the specification; the
//! diagrams and offsets below are derived from it.
//!
//! # Segment header (56 bytes, at offset 0 of every segment)
//!
//! ```text
//!  0               8       10      12      16              24              32
//!  +---------------+-------+-------+-------+---------------+---------------+
//!  | magic         |version|hdr_len| flags | epoch         | base_lsn      |
//!  +---------------+-------+-------+-------+---------------+---------------+
//!  32              40              48      52      56
//!  | log_start     | segment_size  | pu    | crc   |
//!  +---------------+---------------+-------+-------+
//! ```
//!
//! # Record frame (16-byte header, then the payload)
//!
//! ```text
//!  0        4        8        12   13   14     16
//!  +--------+--------+--------+----+----+------+-------------------+
//!  | crc    | len    | lsn_off|kind|!kind| hchk | payload (len B)   |
//!  +--------+--------+--------+----+----+------+-------------------+
//!  crc  = CRC32C(epoch_le64 ‖ bytes 4..16 ‖ payload)
//!  hchk = low 16 bits of CRC32C(epoch_le64 ‖ bytes 4..14)
//! ```
//!
//! # Example
//!
//! ```
//! use nori_wal_core::format::{self, Frame, SegmentHeader};
//! use nori_wal_core::Record;
//!
//! let header = SegmentHeader::new(7, 1000, 64 * 1024, 8).unwrap();
//! let mut segment = [0xFFu8; 256];
//! header.encode(&mut segment).unwrap();
//! let mut at = header.frames_offset() as usize; // frames start at a program-unit boundary
//!
//! at += format::encode_record(&mut segment[at..], header.epoch, 0, &Record::put(b"k", b"v")).unwrap();
//! at += format::encode_batch(&mut segment[at..], header.epoch, 1, &[Record::delete(b"k"), Record::raw(b"x")]).unwrap();
//!
//! // Read it back.
//! let header = SegmentHeader::decode(&segment).unwrap();
//! let mut pos = header.frames_offset() as usize;
//! let mut seen = Vec::new();
//! loop {
//!     match format::decode_frame(&segment[pos..], header.epoch) {
//!         Ok(frame) => {
//!             let mut lsn = header.base_lsn + u64::from(frame.header().lsn_offset());
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
//! assert_eq!(seen.len(), 3);
//! assert_eq!(seen[2], (1002, r#"Raw("x")"#.to_string()));
//! ```

mod any;
pub(crate) mod body;
mod error;
mod frame;
mod segment_header;
pub mod v2;

#[cfg(feature = "lz4")]
pub mod lz4;

pub use any::{AnyFrame, decode_frame_in, frame_header_len, frame_len_in, frame_len_of};
pub use body::{
    BATCH_ENTRIES_AT, BatchRecords, Body, HOLE_PAYLOAD_LEN, MARK_PAYLOAD_LEN, Mark, Records,
    SEAL_PAYLOAD_LEN, Seal, batch_entry_at, record_at, record_kind,
};
pub use error::{DecodeError, EncodeError, HeaderField, Malformed};
pub use frame::{
    Compressed, EncodedFrame, EpochKey, Frame, FrameHeader, PayloadCheck, batch_frame_len, decode_frame,
    decode_frame_with, encode_batch, encode_compressed, encode_mark, encode_padding, encode_record,
    record_frame_len,
};
pub use segment_header::SegmentHeader;

use core::fmt;

/// Format version 1's number, as its segment headers store it (the
/// version this module's v1 codec writes and reads).
pub const FORMAT_VERSION: u16 = 1;

/// The newest format version this crate reads (and writes by default).
pub const NEWEST_VERSION: u16 = 2;

/// The segment magic: the first 8 bytes of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"NORIWAL\0";

/// Length of a v1 segment header.
pub const SEGMENT_HEADER_LEN: usize = 56;

/// The largest header length any version may declare; bounds what a reader
/// reads before it can check a header.
pub const MAX_SEGMENT_HEADER_LEN: usize = 256;

/// Length of a record frame header.
pub const FRAME_HEADER_LEN: usize = 16;

/// The largest payload of one frame: a frame (header and payload) is always
/// shorter than 2 GiB, so its length fits a `usize` on 32-bit targets too.
pub const MAX_PAYLOAD_LEN: u32 = (1 << 31) - 1 - FRAME_HEADER_LEN as u32;

/// Byte offsets of the segment header fields (see the diagram above).
pub mod segment_offsets {
    use core::ops::Range;
    /// `magic`: [`SEGMENT_MAGIC`](super::SEGMENT_MAGIC).
    pub const MAGIC: Range<usize> = 0..8;
    /// `version`: u16, the format version.
    pub const VERSION: Range<usize> = 8..10;
    /// `header_len`: u16, the length of this header including its CRC.
    pub const HEADER_LEN: Range<usize> = 10..12;
    /// `flags`: u32, zero in v1.
    pub const FLAGS: Range<usize> = 12..16;
    /// `epoch`: u64, the segment epoch (never zero).
    pub const EPOCH: Range<usize> = 16..24;
    /// `base_lsn`: u64, the LSN of the segment's first record.
    pub const BASE_LSN: Range<usize> = 24..32;
    /// `log_start`: u64, the log's first retained LSN when the segment was started.
    pub const LOG_START: Range<usize> = 32..40;
    /// `segment_size`: u64, the size of the segment in bytes.
    pub const SEGMENT_SIZE: Range<usize> = 40..48;
    /// `program_unit`: u32, the program unit the segment was written with.
    pub const PROGRAM_UNIT: Range<usize> = 48..52;
    /// `crc`: u32, CRC32C of bytes `0..header_len - 4`.
    pub const CRC: Range<usize> = 52..56;
}

/// Byte offsets of the record frame header fields (see the diagram above).
pub mod frame_offsets {
    use core::ops::Range;
    /// `crc`: u32, CRC32C of the epoch, header bytes 4..16 and the payload.
    pub const CRC: Range<usize> = 0..4;
    /// `len`: u32, the payload length.
    pub const LEN: Range<usize> = 4..8;
    /// `lsn_offset`: u32, the frame's first LSN minus the segment's base LSN.
    pub const LSN_OFFSET: Range<usize> = 8..12;
    /// `kind`: u8, record type, compression and reserved bits.
    pub const KIND: usize = 12;
    /// `kind_inv`: u8, the bitwise complement of `kind`.
    pub const KIND_INV: usize = 13;
    /// `header_check`: u16, low half of CRC32C(epoch ‖ bytes 4..14).
    pub const HEADER_CHECK: Range<usize> = 14..16;
}

/// A format version a log writes its new segments in.
///
/// Every reader reads both; the version is a writer's choice, so that a
/// deployment can roll back to a build that reads only version 1 (write
/// [`Version::V1`] and let the version 2 segments be reclaimed first).
///
/// ```
/// use nori_wal_core::format::Version;
/// assert_eq!(Version::default(), Version::V2);
/// assert_eq!(Version::V1.number(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Version {
    /// Format version 1: 16-byte frame headers, 56-byte segment headers.
    V1,
    /// Format version 2 (the default): 8-byte frame headers bound to their
    /// LSN, 24-byte segment headers, seals.
    V2,
}

impl Default for Version {
    /// [`Version::newest_built`]: version 2, unless the build leaves it out.
    fn default() -> Self {
        Self::newest_built()
    }
}

impl Version {
    /// Whether this build reads and writes the version (the cargo features
    /// `v1` and `v2` of `nori-wal-core`; a build with neither holds
    /// version 2).
    ///
    /// ```
    /// # use nori_wal_core::format::Version;
    /// let either = Version::V1.built() || Version::V2.built();
    /// assert!(either);
    /// ```
    #[must_use]
    pub const fn built(self) -> bool {
        match self {
            Self::V1 => cfg!(feature = "v1"),
            // A build that names neither version reads and writes version 2.
            Self::V2 => cfg!(feature = "v2") || !cfg!(feature = "v1"),
        }
    }

    /// The newest version this build writes: the default for new segments.
    ///
    /// ```
    /// # use nori_wal_core::format::Version;
    /// assert!(Version::newest_built().built());
    /// ```
    #[must_use]
    pub const fn newest_built() -> Self {
        if Self::V2.built() { Self::V2 } else { Self::V1 }
    }

    /// The version's number, as segment headers store it.
    ///
    /// ```
    /// assert_eq!(nori_wal_core::format::Version::V2.number(), 2);
    /// ```
    #[must_use]
    pub const fn number(self) -> u16 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "format version {}", self.number())
    }
}

/// A segment header of either version, decoded: what a reader needs to
/// walk the segment's frames.
///
/// ```
/// use nori_wal_core::format::{AnyHeader, SegmentHeader, Version, v2};
/// let mut bytes = [0u8; 64];
/// SegmentHeader::new(3, 10, 4096, 4).unwrap().encode(&mut bytes).unwrap();
/// let h = AnyHeader::decode(&bytes).unwrap();
/// assert_eq!((h.version, h.epoch, h.base_lsn, h.frames_offset), (Version::V1, 3, 10, 56));
/// v2::SegmentHeader::new(3, 10, 4).unwrap().encode(&mut bytes).unwrap();
/// let h = AnyHeader::decode(&bytes).unwrap();
/// assert_eq!((h.version, h.frames_offset, h.segment_size), (Version::V2, 24, None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct AnyHeader {
    /// The segment's format version.
    pub version: Version,
    /// The segment epoch.
    pub epoch: u64,
    /// The LSN of the segment's first record.
    pub base_lsn: u64,
    /// Version 1's `log_start`; `None` in version 2, which keeps it in the
    /// segment's opening mark.
    pub log_start: Option<u64>,
    /// The segment's size, when the header records it (always in version
    /// 1) or its check binds it (version 2, [`v2::SegmentHeader::bound`]).
    pub segment_size: Option<u64>,
    /// The program unit the segment was written with.
    pub program_unit: u32,
    /// Where the frames start.
    pub frames_offset: u64,
    /// Version 2's `PREALLOCATED` flag (false in version 1).
    pub preallocated: bool,
}

impl AnyHeader {
    /// Decodes a segment header of either version: version 2's magic
    /// (`NWAL`) or version 1's (`NORIWAL\0`).
    ///
    /// # Errors
    ///
    /// What [`SegmentHeader::decode`] or [`v2::SegmentHeader::decode`]
    /// reports.
    ///
    /// ```
    /// use nori_wal_core::format::{AnyHeader, DecodeError};
    /// assert_eq!(AnyHeader::decode(&[0xFF; 64]), Err(DecodeError::Blank { fill: 0xFF }));
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with(bytes, None)
    }

    /// [`decode`](Self::decode) for a reader that expects segments of
    /// `segment_size` bytes: a version 2 header that does not record its
    /// size may be bound to it ([`v2::SegmentHeader::bound`]).
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode).
    ///
    /// ```
    /// use nori_wal_core::format::{AnyHeader, v2};
    /// let mut bytes = [0u8; 64];
    /// v2::SegmentHeader::new(3, 10, 4).unwrap().bound(4096).encode(&mut bytes).unwrap();
    /// assert_eq!(AnyHeader::decode_in(&bytes, 4096).unwrap().segment_size, Some(4096));
    /// assert!(AnyHeader::decode_in(&bytes, 2048).is_err());
    /// ```
    pub fn decode_in(bytes: &[u8], segment_size: u64) -> Result<Self, DecodeError> {
        Self::decode_with(bytes, Some(segment_size))
    }

    fn decode_with(bytes: &[u8], segment_size: Option<u64>) -> Result<Self, DecodeError> {
        if bytes.get(..4) == Some(&v2::MAGIC[..]) {
            if !Version::V2.built() {
                return Err(DecodeError::VersionNotBuilt { found: Version::V2.number() });
            }
            let h = match segment_size {
                Some(size) => v2::SegmentHeader::decode_bound(bytes, size)?,
                None => v2::SegmentHeader::decode(bytes)?,
            };
            return Ok(Self::from(h));
        }
        #[cfg(feature = "v1")]
        return SegmentHeader::decode(bytes).map(Self::from);
        #[cfg(not(feature = "v1"))]
        match bytes.get(..8) {
            Some(magic) if magic == SEGMENT_MAGIC => {
                Err(DecodeError::VersionNotBuilt { found: FORMAT_VERSION })
            }
            _ => SegmentHeader::decode(bytes).map(Self::from),
        }
    }

    /// Where the frames end: the seal slot's start in version 2, the
    /// segment's end in version 1.
    ///
    /// ```
    /// use nori_wal_core::format::{AnyHeader, v2};
    /// let h = AnyHeader::from(v2::SegmentHeader::new(1, 0, 4).unwrap());
    /// assert_eq!(h.frames_end(4096), 4080);
    /// ```
    #[must_use]
    pub const fn frames_end(&self, segment_size: u64) -> u64 {
        match self.version {
            _ if !Version::V2.built() => segment_size,
            Version::V1 => segment_size,
            Version::V2 => segment_size
                .saturating_sub(crate::align::align_up(v2::SEAL_LEN as u64, self.program_unit as u64)),
        }
    }
}

impl From<SegmentHeader> for AnyHeader {
    fn from(h: SegmentHeader) -> Self {
        Self {
            version: Version::V1,
            epoch: h.epoch,
            base_lsn: h.base_lsn,
            log_start: Some(h.log_start),
            segment_size: Some(h.segment_size),
            program_unit: h.program_unit,
            frames_offset: h.frames_offset(),
            preallocated: false,
        }
    }
}

impl From<v2::SegmentHeader> for AnyHeader {
    fn from(h: v2::SegmentHeader) -> Self {
        Self {
            version: Version::V2,
            epoch: h.epoch,
            base_lsn: h.base_lsn,
            log_start: None,
            segment_size: h.segment_size.or(h.bound_size),
            program_unit: h.program_unit,
            frames_offset: h.frames_offset() as u64,
            preallocated: h.preallocated,
        }
    }
}

/// What a frame holds: bits 0–3 of the kind byte.
///
/// ```
/// use nori_wal_core::format::{decode_frame, encode_record, FrameKind};
/// use nori_wal_core::Record;
/// let mut buf = [0u8; 64];
/// let n = encode_record(&mut buf, 1, 0, &Record::delete(b"k")).unwrap();
/// assert_eq!(decode_frame(&buf[..n], 1).unwrap().header().kind(), FrameKind::Delete);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FrameKind {
    /// One [`Record::Put`](crate::Record::Put).
    Put,
    /// One [`Record::Delete`](crate::Record::Delete).
    Delete,
    /// One [`Record::Raw`](crate::Record::Raw).
    Raw,
    /// An atomic batch of one or more records.
    Batch,
    /// Filler up to a program-unit boundary; holds no record.
    Padding,
    /// Log metadata: how far the log was durable and where it starts
    /// ([`Mark`]); holds no record.
    Mark,
    /// A declared range of lost LSNs (format v2 only).
    Hole,
    /// A segment's seal (format v2 only).
    Seal,
}

impl FrameKind {
    const fn code(self) -> u8 {
        match self {
            Self::Put => 1,
            Self::Delete => 2,
            Self::Raw => 3,
            Self::Batch => 4,
            Self::Padding => 5,
            Self::Mark => 6,
            Self::Hole => 7,
            Self::Seal => 8,
        }
    }

    /// The kind of a type code of format v1 (1 to 6).
    const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Put),
            2 => Some(Self::Delete),
            3 => Some(Self::Raw),
            4 => Some(Self::Batch),
            5 => Some(Self::Padding),
            6 => Some(Self::Mark),
            _ => None,
        }
    }

    /// The kind of a type code of format v2 (1 to 8).
    const fn from_code_v2(code: u8) -> Option<Self> {
        match code {
            7 => Some(Self::Hole),
            8 => Some(Self::Seal),
            _ => Self::from_code(code),
        }
    }

    /// Whether frames of this kind hold records (and may be compressed).
    const fn holds_records(self) -> bool {
        matches!(self, Self::Put | Self::Delete | Self::Raw | Self::Batch)
    }
}

/// How a frame's payload is compressed: bits 4–5 of the kind byte.
///
/// ```
/// use nori_wal_core::format::{decode_frame, encode_record, Compression};
/// use nori_wal_core::Record;
/// let mut buf = [0u8; 64];
/// let n = encode_record(&mut buf, 1, 0, &Record::raw(b"plain")).unwrap();
/// assert_eq!(decode_frame(&buf[..n], 1).unwrap().header().compression(), Compression::None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Compression {
    /// Stored as is.
    None,
    /// LZ4 block format.
    Lz4,
    /// Zstandard frame format.
    Zstd,
}

impl Compression {
    const fn code(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Lz4 => 1,
            Self::Zstd => 2,
        }
    }

    const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::None),
            1 => Some(Self::Lz4),
            2 => Some(Self::Zstd),
            _ => None,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "no compression",
            Self::Lz4 => "LZ4",
            Self::Zstd => "Zstd",
        })
    }
}

/// Packs a kind byte: type in bits 0–3, compression in bits 4–5, bits 6–7 zero.
const fn kind_byte(kind: FrameKind, compression: Compression) -> u8 {
    kind.code() | (compression.code() << 4)
}

/// Unpacks a kind byte; `None` for anything format v1 does not define.
const fn parse_kind_byte(byte: u8) -> Option<(FrameKind, Compression)> {
    if byte & 0b1100_0000 != 0 {
        return None;
    }
    let Some(kind) = FrameKind::from_code(byte & 0x0F) else {
        return None;
    };
    let Some(compression) = Compression::from_code((byte >> 4) & 0b11) else {
        return None;
    };
    if matches!(kind, FrameKind::Padding | FrameKind::Mark) && !matches!(compression, Compression::None) {
        return None;
    }
    Some((kind, compression))
}

/// `Some(b)` when every byte of `bytes` is `b` (and `bytes` is not empty).
pub(crate) fn uniform_fill(bytes: &[u8]) -> Option<u8> {
    let (&first, rest) = bytes.split_first()?;
    rest.iter().all(|&b| b == first).then_some(first)
}

#[cfg_attr(feature = "std", inline)]
fn le_u16(bytes: &[u8], at: core::ops::Range<usize>) -> u16 {
    let mut raw = [0u8; 2];
    raw.copy_from_slice(&bytes[at]);
    u16::from_le_bytes(raw)
}

#[cfg_attr(feature = "std", inline)]
fn le_u32(bytes: &[u8], at: core::ops::Range<usize>) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&bytes[at]);
    u32::from_le_bytes(raw)
}

#[cfg_attr(feature = "std", inline)]
fn le_u64(bytes: &[u8], at: core::ops::Range<usize>) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at]);
    u64::from_le_bytes(raw)
}

//! Errors of the codec.

use core::fmt;

use super::Compression;

/// Why bytes read from a medium do not decode. Every byte read from a medium
/// is untrusted: each of these is a normal outcome, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is shorter than the structure being decoded. For a frame
    /// header this means fewer than 16 bytes were given.
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes given.
        available: u64,
    },
    /// Every byte holds the same value: erased flash (`0xFF`), zeroed or
    /// preallocated space. No frame or header was ever written here.
    Blank {
        /// The value every byte holds.
        fill: u8,
    },
    /// The frame header fails its own check (kind complement or the 16-bit
    /// header check): a torn write, garbage, or damage.
    BadHeader,
    /// The frame header checks out but names a record type, compression
    /// codec or reserved bit that format v1 does not define.
    UnknownKind {
        /// The kind byte found.
        byte: u8,
    },
    /// The frame header checks out but its length runs past the bytes that
    /// remain in the segment.
    LengthOutOfBounds {
        /// The length of the whole frame, header included.
        frame_len: u64,
        /// Bytes left to the end of the segment.
        available: u64,
    },
    /// The frame's CRC32C does not match its header and payload: torn,
    /// damaged, or written under another segment epoch (stale).
    BadChecksum {
        /// The CRC stored in the frame.
        stored: u32,
        /// The CRC computed over the bytes read.
        computed: u32,
    },
    /// The checksum holds but the payload's structure is invalid: a writer
    /// that does not follow the format.
    MalformedBody {
        /// What is wrong.
        reason: Malformed,
    },
    /// The frame is compressed: decompress [`Frame::compressed`](super::Frame::compressed)
    /// and parse the result with [`Body::parse`](super::Body::parse).
    Compressed {
        /// The codec the frame is compressed with.
        codec: Compression,
    },
    /// The bytes do not start with the segment magic: not a nori-wal segment.
    NotASegment,
    /// The segment header's CRC32C does not match: torn or damaged.
    BadSegmentChecksum {
        /// The CRC stored in the header.
        stored: u32,
        /// The CRC computed over the bytes read.
        computed: u32,
    },
    /// The segment was written by a newer (or unknown) format version.
    UnsupportedVersion {
        /// The version in the segment header.
        found: u16,
        /// The newest version this reader supports.
        supported: u16,
    },
    /// The segment header checks out but a field holds an impossible value.
    InvalidSegmentHeader {
        /// The field at fault.
        field: HeaderField,
    },
    /// The segment is in a format version this build leaves out (without
    /// `nori-wal-core`'s feature `v1` or `v2`).
    VersionNotBuilt {
        /// The version in the segment header.
        found: u16,
    },
}

/// What is wrong with a frame payload whose checksum holds: the reason of
/// [`DecodeError::MalformedBody`].
///
/// A code rather than a message, so that firmware that never prints an
/// error carries no text for it; [`Display`](fmt::Display) gives the text.
///
/// ```
/// use nori_wal_core::format::{Body, FrameKind, Malformed};
/// use nori_wal_core::DecodeError;
///
/// // A batch payload of four zero bytes: a count of zero records.
/// let err = Body::parse(FrameKind::Batch, &[0; 4]).unwrap_err();
/// assert_eq!(err, DecodeError::MalformedBody { reason: Malformed::EmptyBatch });
/// assert_eq!(Malformed::EmptyBatch.to_string(), "batch of zero records");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Malformed {
    /// A mark's payload is not 16 bytes.
    MarkLength,
    /// A hole's payload is not 4 bytes (format v2).
    HoleLength,
    /// A hole of zero LSNs (format v2).
    EmptyHole,
    /// A format v2 segment whose first frame is not the opening mark its
    /// log writes there, or a seal found among the frames.
    MisplacedFrame,
    /// A seal whose record count or frames checksum is not the segment's
    /// (format v2).
    SealMismatch,
    /// A seal's payload is not 8 bytes (format v2).
    SealLength,
    /// A batch payload is shorter than its 4-byte record count.
    BatchCountCut,
    /// A batch's count is zero.
    EmptyBatch,
    /// A batch holds more entries than its count says.
    ExtraEntries,
    /// A batch holds fewer entries than its count says.
    MissingEntries,
    /// A batch entry was asked for past the end of the payload.
    EntryPastPayload,
    /// A batch entry's 5-byte header is cut short.
    EntryHeaderCut,
    /// A batch entry's length runs past the batch.
    EntryTooLong,
    /// A batch entry's type byte names no record type.
    EntryType,
    /// A put is shorter than its 4-byte key length.
    PutKeyLengthCut,
    /// A put's key length runs past the record.
    PutKeyTooLong,
    /// The frame's kind does not hold a record (padding, a mark, or a
    /// batch where one record was expected).
    NotARecord,
    /// A compressed payload is shorter than its 4-byte uncompressed length.
    CompressedLengthCut,
    /// A compressed frame's uncompressed length is above the largest
    /// payload (or above what the segment can hold).
    UncompressedTooLarge,
    /// The LZ4 data decodes to fewer bytes than its recorded length.
    Lz4Short,
    /// The bytes are not LZ4 data.
    Lz4Invalid,
    /// The bytes are not Zstd data, or not of their recorded length.
    ZstdInvalid,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MarkLength => "mark payload is not 16 bytes",
            Self::HoleLength => "hole payload is not 4 bytes",
            Self::EmptyHole => "hole of zero LSNs",
            Self::MisplacedFrame => {
                "a frame where its kind never goes (no opening mark, or a seal among the frames)"
            }
            Self::SealMismatch => {
                "the seal's record count or frames checksum differs from the segment's frames"
            }
            Self::SealLength => "seal payload is not 8 bytes",
            Self::BatchCountCut => "batch shorter than its count",
            Self::EmptyBatch => "batch of zero records",
            Self::ExtraEntries => "batch holds more entries than its count",
            Self::MissingEntries => "batch holds fewer entries than its count",
            Self::EntryPastPayload => "batch entry past the payload",
            Self::EntryHeaderCut => "batch entry header cut short",
            Self::EntryTooLong => "batch entry longer than the batch",
            Self::EntryType => "batch entry of an invalid type",
            Self::PutKeyLengthCut => "put shorter than its key length",
            Self::PutKeyTooLong => "put key longer than the record",
            Self::NotARecord => "not a single-record kind",
            Self::CompressedLengthCut => "compressed payload shorter than its length",
            Self::UncompressedTooLarge => "uncompressed length above the maximum",
            Self::Lz4Short => "LZ4 data shorter than its recorded length",
            Self::Lz4Invalid => "invalid LZ4 data",
            Self::ZstdInvalid => "invalid Zstd data, or not of its recorded length",
        })
    }
}

/// A field of the segment header: the one at fault in
/// [`DecodeError::InvalidSegmentHeader`] and
/// [`EncodeError::InvalidSegmentHeader`]. [`Display`](fmt::Display) gives
/// the field's name as FORMAT.md spells it.
///
/// ```
/// use nori_wal_core::format::HeaderField;
///
/// assert_eq!(HeaderField::ProgramUnit.to_string(), "program_unit");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HeaderField {
    /// `version`: the format version.
    Version,
    /// `header_len`: the header's length.
    HeaderLen,
    /// `flags`: reserved, zero in format v1.
    Flags,
    /// `epoch`: the segment's epoch, never zero.
    Epoch,
    /// `log_start`: the log's first LSN, at most the segment's base LSN.
    LogStart,
    /// `program_unit`: a power of two up to the format's largest.
    ProgramUnit,
    /// `segment_size`: a multiple of the program unit that holds a frame.
    SegmentSize,
}

impl fmt::Display for HeaderField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Version => "version",
            Self::HeaderLen => "header_len",
            Self::Flags => "flags",
            Self::Epoch => "epoch",
            Self::LogStart => "log_start",
            Self::ProgramUnit => "program_unit",
            Self::SegmentSize => "segment_size",
        })
    }
}

impl DecodeError {
    /// Whether the bytes were simply never written (erased or zeroed space),
    /// as opposed to written and then damaged or torn.
    #[must_use]
    pub const fn is_blank(&self) -> bool {
        matches!(self, Self::Blank { .. })
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { needed, available } => {
                write!(f, "truncated input: {needed} bytes needed, {available} available")
            }
            Self::Blank { fill } => {
                write!(f, "blank space (every byte is {fill:#04x}): nothing was written here")
            }
            Self::BadHeader => f.write_str("frame header check failed: torn write, garbage or damage"),
            Self::UnknownKind { byte } => {
                write!(f, "frame kind byte {byte:#04x} is not defined by format v{}", super::FORMAT_VERSION)
            }
            Self::LengthOutOfBounds { frame_len, available } => write!(
                f,
                "frame of {frame_len} bytes runs past the end of the segment ({available} bytes left)"
            ),
            Self::BadChecksum { stored, computed } => write!(
                f,
                "frame checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): \
                 torn, damaged, or left from an earlier use of this space"
            ),
            Self::MalformedBody { reason } => {
                write!(f, "malformed frame payload under a valid checksum: {reason}")
            }
            Self::Compressed { codec } => write!(
                f,
                "frame payload is compressed with {codec}: decompress Frame::compressed() and parse with Body::parse"
            ),
            Self::NotASegment => f.write_str("not a nori-wal segment: the magic bytes are missing"),
            Self::BadSegmentChecksum { stored, computed } => write!(
                f,
                "segment header checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): torn or damaged"
            ),
            Self::UnsupportedVersion { found, supported } => write!(
                f,
                "segment written in format version {found}; this reader supports up to version {supported}: \
                 upgrade nori-wal to read it"
            ),
            Self::InvalidSegmentHeader { field } => {
                write!(f, "segment header has an impossible value in field `{field}`")
            }
            Self::VersionNotBuilt { found } => write!(
                f,
                "segment written in format version {found}, which this build does not read: enable \
                 nori-wal-core's `v{found}` feature"
            ),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a structure could not be encoded. These are caller errors: nothing
/// was written to the output past what the caller can see in `Ok` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The payload exceeds [`MAX_PAYLOAD_LEN`](super::MAX_PAYLOAD_LEN).
    PayloadTooLarge {
        /// The payload length.
        len: u64,
        /// The largest payload allowed.
        max: u64,
    },
    /// A batch must hold at least one record.
    EmptyBatch,
    /// The frame's LSN offset plus its record count overflows.
    LsnOverflow,
    /// A padding frame must be at least a frame header long.
    PaddingTooShort {
        /// The length asked for.
        len: u64,
    },
    /// A segment header field holds an impossible value.
    InvalidSegmentHeader {
        /// The field at fault.
        field: HeaderField,
    },
    /// The uncompressed length given for a compressed frame is impossible.
    InvalidUncompressedLen,
    /// Writing a format version was asked of a build without it
    /// (`nori-wal-core`'s features `v1` and `v2`).
    VersionNotBuilt,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooSmall { needed, available } => {
                write!(f, "output buffer too small: {needed} bytes needed, {available} available")
            }
            Self::PayloadTooLarge { len, max } => {
                write!(f, "record too large: payload of {len} bytes, the format allows at most {max}")
            }
            Self::EmptyBatch => f.write_str("a batch must hold at least one record"),
            Self::LsnOverflow => {
                f.write_str("LSN overflow: the frame's LSN offset plus its record count exceeds u32")
            }
            Self::PaddingTooShort { len } => write!(
                f,
                "padding of {len} bytes is shorter than a frame header ({} bytes)",
                super::FRAME_HEADER_LEN
            ),
            Self::InvalidSegmentHeader { field } => {
                write!(f, "segment header field `{field}` holds an impossible value")
            }
            Self::InvalidUncompressedLen => {
                f.write_str("uncompressed length of a compressed frame exceeds the maximum payload length")
            }
            Self::VersionNotBuilt => f.write_str(
                "this format version is not in this build: enable nori-wal-core's feature `v1` or `v2`",
            ),
        }
    }
}

impl core::error::Error for EncodeError {}

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
        reason: &'static str,
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
        field: &'static str,
    },
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
        field: &'static str,
    },
    /// The uncompressed length given for a compressed frame is impossible.
    InvalidUncompressedLen,
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
        }
    }
}

impl core::error::Error for EncodeError {}

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
use super::{Compression, DecodeError, EncodeError, EpochKey, FrameKind, HeaderField, uniform_fill};
use crate::Lsn;
use crate::Record;
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
}

impl SegmentHeader {
    /// A header without a recorded size, not marked preallocated.
    ///
    /// # Errors
    ///
    /// [`EncodeError::InvalidSegmentHeader`] for an epoch of 0 or above
    /// [`MAX_EPOCH`], or a program unit that is not a power of two up to
    /// 65 536.
    pub const fn new(epoch: u64, base_lsn: Lsn, program_unit: u32) -> Result<Self, EncodeError> {
        if epoch == 0 || epoch > MAX_EPOCH {
            return Err(EncodeError::InvalidSegmentHeader { field: HeaderField::Epoch });
        }
        if !program_unit.is_power_of_two() || program_unit > 65_536 {
            return Err(EncodeError::InvalidSegmentHeader { field: HeaderField::ProgramUnit });
        }
        Ok(Self { epoch, base_lsn, program_unit, segment_size: None, preallocated: false })
    }

    /// The same header recording `segment_size`.
    ///
    /// # Errors
    ///
    /// [`EncodeError::InvalidSegmentHeader`] when the size is not a multiple
    /// of the program unit or leaves no room for the header, one frame
    /// header and the seal slot.
    pub const fn sized(mut self, segment_size: u64) -> Result<Self, EncodeError> {
        self.segment_size = Some(segment_size);
        if !size_fits(segment_size, self.program_unit, SIZED_HEADER_LEN) {
            return Err(EncodeError::InvalidSegmentHeader { field: HeaderField::SegmentSize });
        }
        Ok(self)
    }

    /// The same header, marked preallocated or not.
    #[must_use]
    pub const fn preallocated(mut self, on: bool) -> Self {
        self.preallocated = on;
        self
    }

    /// The header's length: [`HEADER_LEN`], or [`SIZED_HEADER_LEN`] with a
    /// recorded size.
    #[must_use]
    #[allow(clippy::len_without_is_empty, reason = "a header is never empty")]
    pub const fn len(&self) -> usize {
        if self.segment_size.is_some() { SIZED_HEADER_LEN } else { HEADER_LEN }
    }

    /// Where the frames start: the header's length rounded up to the
    /// program unit.
    #[must_use]
    pub const fn frames_offset(&self) -> usize {
        round_up(self.len() as u64, self.program_unit) as usize
    }

    /// Where the seal slot of a segment of `segment_size` bytes starts: the
    /// frames end there.
    #[must_use]
    pub const fn seal_offset(&self, segment_size: u64) -> u64 {
        segment_size.saturating_sub(round_up(SEAL_LEN as u64, self.program_unit))
    }

    /// Writes the header at the start of `out`; returns its length.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BufferTooSmall`]; `out` is then unchanged.
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
        let crc = crc32c(&h[..len - 4]);
        h[len - 4..].copy_from_slice(&crc.to_le_bytes());
        Ok(len)
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
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let Some(h) = bytes.first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::Truncated { needed: HEADER_LEN as u64, available: bytes.len() as u64 });
        };
        if let Some(fill) = uniform_fill(h) {
            return Err(DecodeError::Blank { fill });
        }
        if h[..4] != MAGIC {
            return Err(DecodeError::NotASegment);
        }
        if h[4] != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: u16::from(h[4]),
                supported: u16::from(VERSION),
            });
        }
        let geometry = h[5];
        let len = if geometry & SIZED != 0 { SIZED_HEADER_LEN } else { HEADER_LEN };
        let Some(h) = bytes.get(..len) else {
            return Err(DecodeError::Truncated { needed: len as u64, available: bytes.len() as u64 });
        };
        let stored = le_u32(&h[len - 4..]);
        let computed = crc32c(&h[..len - 4]);
        if stored != computed {
            return Err(DecodeError::BadSegmentChecksum { stored, computed });
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
        let base_lsn = le_u64(&h[12..20]);
        let segment_size = if len == SIZED_HEADER_LEN {
            let size = le_u64(&h[20..28]);
            if !size_fits(size, program_unit, SIZED_HEADER_LEN) {
                return invalid(HeaderField::SegmentSize);
            }
            Some(size)
        } else {
            None
        };
        Ok(Self { epoch, base_lsn, program_unit, segment_size, preallocated: geometry & PREALLOCATED != 0 })
    }
}

/// Whether a segment of `size` bytes written with `unit` holds a header of
/// `header_len`, one frame header and the seal slot.
const fn size_fits(size: u64, unit: u32, header_len: usize) -> bool {
    let needed = round_up(header_len as u64, unit)
        + round_up(FRAME_HEADER_LEN as u64, unit)
        + round_up(SEAL_LEN as u64, unit);
    size.is_multiple_of(unit as u64) && size >= needed
}

const fn round_up(n: u64, unit: u32) -> u64 {
    n.div_ceil(unit as u64) * unit as u64
}

fn le_u32(b: &[u8]) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&b[..4]);
    u32::from_le_bytes(raw)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&b[..8]);
    u64::from_le_bytes(raw)
}

/// Packs a v2 kind byte.
const fn kind_byte(kind: FrameKind, compression: Compression, long: bool) -> u8 {
    kind.code() | (compression.code() << 4) | if long { LONG } else { 0 }
}

/// Unpacks a v2 kind byte: `None` for anything v2 does not define.
const fn parse_kind_byte(byte: u8) -> Option<(FrameKind, Compression, bool)> {
    if byte & 0x80 != 0 {
        return None;
    }
    let Some(kind) = FrameKind::from_code_v2(byte & 0x0F) else {
        return None;
    };
    let Some(compression) = Compression::from_code((byte >> 4) & 0b11) else {
        return None;
    };
    let long = byte & LONG != 0;
    if !kind.holds_records() && (long || !matches!(compression, Compression::None)) {
        return None;
    }
    Some((kind, compression, long))
}

/// A frame header that passed the structural checks (complement, kind,
/// length form); its CRC is checked with [`verify`](Self::verify).
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
        let (frame_kind, compression, long) =
            parse_kind_byte(kind).ok_or(DecodeError::UnknownKind { byte: kind })?;
        let (payload_len, stored_crc) = if long {
            let Some(h) = bytes.first_chunk::<LONG_FRAME_HEADER_LEN>() else {
                return Err(DecodeError::Truncated {
                    needed: LONG_FRAME_HEADER_LEN as u64,
                    available: bytes.len() as u64,
                });
            };
            let len = le_u32(&h[2..6]);
            if len <= SHORT_MAX {
                return Err(DecodeError::UnknownKind { byte: kind });
            }
            if len > MAX_PAYLOAD_LEN {
                return Err(DecodeError::LengthOutOfBounds {
                    frame_len: LONG_FRAME_HEADER_LEN as u64 + u64::from(len),
                    available: LONG_FRAME_HEADER_LEN as u64 + u64::from(MAX_PAYLOAD_LEN),
                });
            }
            (len, le_u32(&h[6..10]))
        } else {
            (u32::from(u16::from_le_bytes([h[2], h[3]])), le_u32(&h[4..8]))
        };
        Ok(Self { kind: frame_kind, compression, long, payload_len, stored_crc })
    }

    /// What the frame holds.
    #[must_use]
    pub const fn kind(&self) -> FrameKind {
        self.kind
    }

    /// How the payload is compressed.
    #[must_use]
    pub const fn compression(&self) -> Compression {
        self.compression
    }

    /// The payload length in bytes.
    #[must_use]
    pub const fn payload_len(&self) -> u32 {
        self.payload_len
    }

    /// The header's length: [`FRAME_HEADER_LEN`] or
    /// [`LONG_FRAME_HEADER_LEN`].
    #[must_use]
    pub const fn header_len(&self) -> usize {
        if self.long { LONG_FRAME_HEADER_LEN } else { FRAME_HEADER_LEN }
    }

    /// The whole frame's length, header included.
    #[must_use]
    pub const fn frame_len(&self) -> usize {
        self.header_len() + self.payload_len as usize
    }

    /// The CRC stored in the frame (what a seal's
    /// [`FramesCrc`] is computed over).
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
    pub fn verify(&self, key: &EpochKey, lsn: Lsn, frame: &[u8]) -> Result<(), DecodeError> {
        if frame.len() != self.frame_len() {
            return Err(DecodeError::Truncated {
                needed: self.frame_len() as u64,
                available: frame.len() as u64,
            });
        }
        let hl = self.header_len();
        let crc = crc32c_append(crc32c_append(key.crc, &lsn.to_le_bytes()), &frame[..hl - 4]);
        let computed = crc32c_append(crc, &frame[hl..]);
        if computed != self.stored_crc {
            return Err(DecodeError::BadChecksum { stored: self.stored_crc, computed });
        }
        Ok(())
    }
}

/// A checked v2 frame borrowed from the bytes it was decoded from.
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

impl<'a> Frame<'a> {
    /// The frame's header.
    #[must_use]
    pub const fn header(&self) -> FrameHeader {
        self.header
    }

    /// The whole frame's length, header included.
    #[must_use]
    #[allow(clippy::len_without_is_empty, reason = "a frame is never empty")]
    pub const fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The payload bytes (compressed for a compressed frame).
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
    pub fn body(&self) -> Result<Body<'a>, DecodeError> {
        if self.header.compression != Compression::None {
            return Err(DecodeError::Compressed { codec: self.header.compression });
        }
        Body::parse(self.header.kind, self.payload())
    }

    /// The records of an uncompressed frame, in LSN order (none for
    /// padding, marks, holes and seals).
    ///
    /// # Errors
    ///
    /// As [`body`](Self::body).
    pub fn records(&self) -> Result<Records<'a>, DecodeError> {
        self.body().map(|b| b.records())
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
    pub fn add(&mut self, frame_crc: u32) {
        self.0 = crc32c_append(self.0, &frame_crc.to_le_bytes());
    }

    /// The checksum of the frames added so far.
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

#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    Record(&'a Record<'a>),
    Batch(&'a [Record<'a>]),
    Zeros,
    Bytes([u8; MARK_PAYLOAD_LEN], usize),
    Compressed([u8; 4], &'a [u8]),
}

/// Zeros to feed padding from.
static ZEROS: [u8; 64] = [0; 64];

impl Source<'_> {
    fn feed(&self, payload_len: u32, f: &mut dyn FnMut(&[u8])) {
        match self {
            Self::Record(record) => body::record_pieces(record, f),
            Self::Batch(records) => body::batch_pieces(records, f),
            Self::Zeros => {
                let mut left = payload_len as usize;
                while left > 0 {
                    let n = left.min(ZEROS.len());
                    f(&ZEROS[..n]);
                    left -= n;
                }
            }
            Self::Bytes(bytes, n) => f(&bytes[..*n]),
            Self::Compressed(len, data) => {
                f(len);
                f(data);
            }
        }
    }
}

fn checked_len(payload_len: u64) -> Result<u32, EncodeError> {
    if payload_len > u64::from(MAX_PAYLOAD_LEN) {
        return Err(EncodeError::PayloadTooLarge { len: payload_len, max: u64::from(MAX_PAYLOAD_LEN) });
    }
    Ok(payload_len as u32)
}

impl<'a> EncodedFrame<'a> {
    fn new(kind: FrameKind, compression: Compression, payload_len: u32, source: Source<'a>) -> Self {
        let long = payload_len > SHORT_MAX;
        Self { kind: kind_byte(kind, compression, long), payload_len, source }
    }

    /// The frame that stores `record` alone (bound to its LSN).
    ///
    /// # Errors
    ///
    /// [`EncodeError::PayloadTooLarge`].
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
    #[must_use]
    pub fn mark(mark: Mark) -> Self {
        let source = Source::Bytes(mark.to_bytes(), MARK_PAYLOAD_LEN);
        Self::new(FrameKind::Mark, Compression::None, MARK_PAYLOAD_LEN as u32, source)
    }

    /// A hole declaring `count` LSNs lost (bound to the first of them).
    ///
    /// # Errors
    ///
    /// [`EncodeError::EmptyBatch`] for a count of zero.
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
            Source::Bytes(bytes, HOLE_PAYLOAD_LEN),
        ))
    }

    /// A seal (bound to the segment's base LSN); it is written in the
    /// segment's seal slot ([`SegmentHeader::seal_offset`]).
    #[must_use]
    pub fn seal(seal: Seal) -> Self {
        let mut bytes = [0u8; MARK_PAYLOAD_LEN];
        bytes[..SEAL_PAYLOAD_LEN].copy_from_slice(&seal.to_bytes());
        Self::new(
            FrameKind::Seal,
            Compression::None,
            SEAL_PAYLOAD_LEN as u32,
            Source::Bytes(bytes, SEAL_PAYLOAD_LEN),
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
    #[must_use]
    #[allow(clippy::len_without_is_empty, reason = "a frame is never empty")]
    pub const fn len(&self) -> usize {
        self.header_len() + self.payload_len as usize
    }

    const fn header_len(&self) -> usize {
        if self.kind & LONG != 0 { LONG_FRAME_HEADER_LEN } else { FRAME_HEADER_LEN }
    }

    /// Writes the whole frame at the start of `out`, checked under `key`'s
    /// epoch and bound to `lsn`. Returns its length.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BufferTooSmall`]; `out` is then unchanged.
    pub fn write_to(&self, out: &mut [u8], key: &EpochKey, lsn: Lsn) -> Result<usize, EncodeError> {
        let len = self.len();
        let Some(frame) = out.get_mut(..len) else {
            return Err(EncodeError::BufferTooSmall { needed: len as u64, available: out.len() as u64 });
        };
        let hl = self.header_len();
        let (h, mut rest) = frame.split_at_mut(hl);
        h[0] = self.kind;
        h[1] = !self.kind;
        if hl == LONG_FRAME_HEADER_LEN {
            h[2..6].copy_from_slice(&self.payload_len.to_le_bytes());
        } else {
            h[2..4].copy_from_slice(&(self.payload_len as u16).to_le_bytes());
        }
        let mut crc = crc32c_append(crc32c_append(key.crc, &lsn.to_le_bytes()), &h[..hl - 4]);
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

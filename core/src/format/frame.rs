//! Record frames: encode into and decode from byte slices.

use super::body::{self, Body, MARK_PAYLOAD_LEN, Mark, Records};
use super::frame_offsets as off;
use super::{
    Compression, DecodeError, EncodeError, FRAME_HEADER_LEN, FrameKind, MAX_PAYLOAD_LEN, Malformed,
    kind_byte, le_u16, le_u32, parse_kind_byte, uniform_fill,
};
use crate::Record;
use crate::crc::crc32c_append;

/// The CRC state after the epoch: every frame check starts here.
fn epoch_crc(epoch: u64) -> u32 {
    crc32c_append(0, &epoch.to_le_bytes())
}

/// A segment epoch prepared for checking many frames: the CRC of the epoch,
/// computed once instead of once per frame.
///
/// ```
/// use nori_wal_core::format::{EpochKey, FrameHeader};
/// let key = EpochKey::new(7);
/// assert_eq!(key.epoch(), 7);
/// assert!(FrameHeader::decode_with(&[0xFF; 16], &key).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EpochKey {
    epoch: u64,
    pub(super) crc: u32,
}

impl EpochKey {
    /// The key of `epoch`.
    #[must_use]
    pub fn new(epoch: u64) -> Self {
        Self { epoch, crc: epoch_crc(epoch) }
    }

    /// The epoch.
    #[must_use]
    pub const fn epoch(&self) -> u64 {
        self.epoch
    }
}

impl From<u64> for EpochKey {
    fn from(epoch: u64) -> Self {
        Self::new(epoch)
    }
}

/// A checked frame header: the frame's kind, length and LSN offset.
///
/// Decoding a header checks the kind complement and the 16-bit header check,
/// so that the length can be trusted enough to bound a read (it is still
/// checked against the segment end). The payload is checked afterwards with
/// [`FrameHeader::verify_payload`] or, in pieces, with
/// [`FrameHeader::payload_check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FrameHeader {
    kind: FrameKind,
    compression: Compression,
    payload_len: u32,
    lsn_offset: u32,
    stored_crc: u32,
    /// CRC32C of the epoch and header bytes 4..14 (the header check's CRC).
    check_crc: u32,
    /// Header bytes 14..16, where the frame CRC continues.
    check_bytes: [u8; 2],
}

impl FrameHeader {
    /// Decodes and checks the frame header at the start of `bytes` for a
    /// segment of epoch `epoch`. Only the first [`FRAME_HEADER_LEN`] bytes are
    /// read.
    ///
    /// # Errors
    ///
    /// - [`DecodeError::Truncated`]: fewer than 16 bytes;
    /// - [`DecodeError::Blank`]: 16 identical bytes (erased or zeroed space);
    /// - [`DecodeError::BadHeader`]: the complement or header check fails;
    /// - [`DecodeError::UnknownKind`]: a kind byte v1 does not define;
    /// - [`DecodeError::LengthOutOfBounds`]: a length above [`MAX_PAYLOAD_LEN`].
    pub fn decode(bytes: &[u8], epoch: u64) -> Result<Self, DecodeError> {
        Self::decode_with(bytes, &EpochKey::new(epoch))
    }

    /// [`decode`](Self::decode) with the epoch's CRC computed once, for
    /// readers that check many frames of one segment.
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode).
    pub fn decode_with(bytes: &[u8], key: &EpochKey) -> Result<Self, DecodeError> {
        let Some(h) = bytes.first_chunk::<FRAME_HEADER_LEN>() else {
            return Err(DecodeError::Truncated {
                needed: FRAME_HEADER_LEN as u64,
                available: bytes.len() as u64,
            });
        };
        let kind = h[off::KIND];
        if kind != !h[off::KIND_INV] {
            // Uniform bytes always land here (no byte equals its complement).
            return Err(match uniform_fill(h) {
                Some(fill) => DecodeError::Blank { fill },
                None => DecodeError::BadHeader,
            });
        }
        let check_crc = crc32c_append(key.crc, &h[off::LEN.start..off::HEADER_CHECK.start]);
        if le_u16(h, off::HEADER_CHECK) != check_crc as u16 {
            return Err(DecodeError::BadHeader);
        }
        let (kind, compression) = parse_kind_byte(kind).ok_or(DecodeError::UnknownKind { byte: kind })?;
        let payload_len = le_u32(h, off::LEN);
        if payload_len > MAX_PAYLOAD_LEN {
            return Err(DecodeError::LengthOutOfBounds {
                frame_len: FRAME_HEADER_LEN as u64 + u64::from(payload_len),
                available: FRAME_HEADER_LEN as u64 + u64::from(MAX_PAYLOAD_LEN),
            });
        }
        Ok(Self {
            kind,
            compression,
            payload_len,
            lsn_offset: le_u32(h, off::LSN_OFFSET),
            stored_crc: le_u32(h, off::CRC),
            check_crc,
            check_bytes: [h[off::HEADER_CHECK.start], h[off::HEADER_CHECK.start + 1]],
        })
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

    /// The whole frame's length in bytes, header included (below 2 GiB).
    #[must_use]
    pub const fn frame_len(&self) -> usize {
        FRAME_HEADER_LEN + self.payload_len as usize
    }

    /// The frame's first LSN minus the segment's base LSN. A padding frame
    /// carries the offset of the next record.
    #[must_use]
    pub const fn lsn_offset(&self) -> u32 {
        self.lsn_offset
    }

    /// Checks the whole payload at once.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Truncated`] when `payload` is not exactly
    /// [`payload_len`](Self::payload_len) long; [`DecodeError::BadChecksum`]
    /// when the CRC does not match.
    pub fn verify_payload(&self, payload: &[u8]) -> Result<(), DecodeError> {
        if payload.len() as u64 != u64::from(self.payload_len) {
            return Err(DecodeError::Truncated {
                needed: u64::from(self.payload_len),
                available: payload.len() as u64,
            });
        }
        let mut check = self.payload_check();
        check.update(payload);
        check.finish()
    }

    /// Checks a whole frame held in one slice (header included, exactly
    /// [`frame_len`](Self::frame_len) bytes): one CRC pass over bytes 14 on.
    ///
    /// # Errors
    ///
    /// As [`verify_payload`](Self::verify_payload).
    pub fn verify_frame(&self, frame: &[u8]) -> Result<(), DecodeError> {
        if frame.len() != self.frame_len() {
            return Err(DecodeError::Truncated {
                needed: self.frame_len() as u64,
                available: frame.len() as u64,
            });
        }
        let computed =
            crc32c_append(self.check_crc, frame.get(off::HEADER_CHECK.start..).unwrap_or_default());
        if computed != self.stored_crc {
            return Err(DecodeError::BadChecksum { stored: self.stored_crc, computed });
        }
        Ok(())
    }

    /// The CRC the frame check continues from (after the header check's
    /// bytes) and the CRC stored in the frame: for readers that check
    /// several frames at once.
    #[cfg(all(feature = "std", feature = "v1"))]
    pub(crate) const fn crc_parts(&self) -> (u32, u32) {
        (self.check_crc, self.stored_crc)
    }

    /// Starts a payload check that takes the payload in pieces, for readers
    /// that stream a large frame through a small buffer.
    #[must_use]
    pub fn payload_check(&self) -> PayloadCheck {
        let crc = crc32c_append(self.check_crc, &self.check_bytes);
        PayloadCheck { crc, stored: self.stored_crc, left: self.payload_len as u64 }
    }
}

/// A frame payload check in progress; see [`FrameHeader::payload_check`].
#[derive(Debug, Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PayloadCheck {
    crc: u32,
    stored: u32,
    left: u64,
}

impl PayloadCheck {
    /// Feeds the next piece of the payload. Bytes beyond the payload length
    /// make [`finish`](Self::finish) fail.
    pub fn update(&mut self, piece: &[u8]) {
        self.crc = crc32c_append(self.crc, piece);
        self.left = self.left.wrapping_sub(piece.len() as u64);
    }

    /// Ends the check.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Truncated`] when the pieces did not add up to the
    /// payload length; [`DecodeError::BadChecksum`] when the CRC does not
    /// match.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.left != 0 {
            return Err(DecodeError::Truncated { needed: 0, available: self.left });
        }
        if self.crc != self.stored {
            return Err(DecodeError::BadChecksum { stored: self.stored, computed: self.crc });
        }
        Ok(())
    }
}

/// A checked frame borrowed from a byte slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Frame<'a> {
    header: FrameHeader,
    payload: &'a [u8],
}

/// Decodes and checks the whole frame at the start of `bytes`, the bytes from
/// the frame's offset to the end of the segment, for a segment of epoch
/// `epoch`.
///
/// # Errors
///
/// Those of [`FrameHeader::decode`], then
/// [`DecodeError::LengthOutOfBounds`] when the frame runs past `bytes`, and
/// [`DecodeError::BadChecksum`] when the CRC does not match.
///
/// ```
/// use nori_wal_core::{format, Record};
/// let mut buf = [0u8; 64];
/// let n = format::encode_record(&mut buf, 1, 0, &Record::put(b"k", b"v")).unwrap();
/// let frame = format::decode_frame(&buf[..n], 1).unwrap();
/// assert_eq!(frame.len(), n);
/// assert_eq!(frame.records().unwrap().next(), Some(Record::put(b"k", b"v")));
/// // The same bytes under another epoch never validate.
/// assert!(format::decode_frame(&buf[..n], 2).is_err());
/// ```
pub fn decode_frame(bytes: &[u8], epoch: u64) -> Result<Frame<'_>, DecodeError> {
    decode_frame_with(bytes, &EpochKey::new(epoch))
}

/// [`decode_frame`] with the epoch's CRC computed once, for readers that
/// check many frames of one segment: one header decode and one CRC pass per
/// frame.
///
/// # Errors
///
/// As [`decode_frame`].
///
/// ```
/// use nori_wal_core::format::{self, EpochKey};
/// use nori_wal_core::Record;
/// let key = EpochKey::new(4);
/// let mut buf = [0u8; 64];
/// let n = format::encode_record(&mut buf, 4, 0, &Record::raw(b"x")).unwrap();
/// assert_eq!(format::decode_frame_with(&buf, &key).unwrap().len(), n);
/// ```
#[cfg_attr(feature = "std", inline)]
pub fn decode_frame_with<'a>(bytes: &'a [u8], key: &EpochKey) -> Result<Frame<'a>, DecodeError> {
    let header = FrameHeader::decode_with(bytes, key)?;
    let Some(payload) = bytes.get(FRAME_HEADER_LEN..header.frame_len()) else {
        return Err(DecodeError::LengthOutOfBounds {
            frame_len: header.frame_len() as u64,
            available: bytes.len() as u64,
        });
    };
    header.verify_frame(&bytes[..header.frame_len()])?;
    Ok(Frame { header, payload })
}

impl<'a> Frame<'a> {
    /// The frame's header.
    #[must_use]
    pub const fn header(&self) -> &FrameHeader {
        &self.header
    }

    /// The whole frame's length in bytes: where the next frame starts.
    #[must_use]
    #[allow(clippy::len_without_is_empty, reason = "a frame is never empty: it has a 16-byte header")]
    pub const fn len(&self) -> usize {
        self.header.frame_len()
    }

    /// The payload as stored (compressed or not).
    #[must_use]
    pub const fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// For a compressed frame: the codec, the uncompressed length and the
    /// compressed bytes. `Ok(None)` for an uncompressed frame.
    ///
    /// # Errors
    ///
    /// [`DecodeError::MalformedBody`] when the payload is too short to hold
    /// the uncompressed length, or the length exceeds the maximum.
    pub fn compressed(&self) -> Result<Option<Compressed<'a>>, DecodeError> {
        split_compressed(self.header.compression, self.payload)
    }

    /// The decoded body of an uncompressed frame.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Compressed`] for a compressed frame;
    /// [`DecodeError::MalformedBody`] when the payload's layout is invalid.
    pub fn body(&self) -> Result<Body<'a>, DecodeError> {
        if self.header.compression != Compression::None {
            return Err(DecodeError::Compressed { codec: self.header.compression });
        }
        Body::parse(self.header.kind, self.payload)
    }

    /// The records of an uncompressed frame, in LSN order (none for padding).
    ///
    /// # Errors
    ///
    /// As [`body`](Self::body).
    pub fn records(&self) -> Result<Records<'a>, DecodeError> {
        self.body().map(|body| body.records())
    }
}

/// The payload of a compressed frame, split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Compressed<'a> {
    /// The codec.
    pub codec: Compression,
    /// The length of the body once decompressed: at most
    /// [`MAX_PAYLOAD_LEN`], so a decompressor can be bounded by it.
    pub uncompressed_len: u32,
    /// The compressed bytes.
    pub data: &'a [u8],
}

/// The parts of a payload stored in `codec` (`None` for one stored plain):
/// the uncompressed length, checked against the maximum, then the bytes.
/// The same layout in both format versions.
pub(super) fn split_compressed(
    codec: Compression,
    payload: &[u8],
) -> Result<Option<Compressed<'_>>, DecodeError> {
    if codec == Compression::None {
        return Ok(None);
    }
    let Some((len, data)) = payload.split_first_chunk::<4>() else {
        return Err(DecodeError::MalformedBody { reason: Malformed::CompressedLengthCut });
    };
    let len = u32::from_le_bytes(*len);
    if len > MAX_PAYLOAD_LEN {
        return Err(DecodeError::MalformedBody { reason: Malformed::UncompressedTooLarge });
    }
    Ok(Some(Compressed { codec, uncompressed_len: len, data }))
}

/// Length of the frame that stores `record` alone.
#[must_use]
pub const fn record_frame_len(record: &Record<'_>) -> u64 {
    FRAME_HEADER_LEN as u64 + body::record_body_len(record)
}

/// Length of the frame that stores `records` as one batch.
#[must_use]
pub fn batch_frame_len(records: &[Record<'_>]) -> u64 {
    (FRAME_HEADER_LEN as u64).saturating_add(body::batch_body_len(records))
}

/// A frame ready to be written: its header fields and the source of its
/// payload, which is streamed rather than copied into one buffer.
///
/// A log's append path uses it to program a frame of any size through a
/// small write buffer ([`header`](Self::header), then the payload pieces);
/// [`write_to`](Self::write_to) and the `encode_*` functions write it into a
/// slice, computing its checks in one pass over the bytes written.
///
/// ```
/// use nori_wal_core::{format, Record};
///
/// let record = Record::put(b"k", b"value");
/// let frame = format::EncodedFrame::record(1, 0, &record).unwrap();
/// let mut bytes = Vec::new();
/// bytes.extend_from_slice(&frame.header());
/// frame.for_each_payload_piece(|piece| bytes.extend_from_slice(piece));
/// assert_eq!(bytes.len(), frame.len());
/// assert!(format::decode_frame(&bytes, 1).is_ok());
///
/// let mut slice = [0u8; 64];
/// let n = frame.write_to(&mut slice).unwrap();
/// assert_eq!(&slice[..n], &bytes[..]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct EncodedFrame<'a> {
    /// The header with its length, LSN offset and kind bytes; the CRC and
    /// the header check are filled in when the frame is written.
    fields: [u8; FRAME_HEADER_LEN],
    key_crc: u32,
    payload_len: u32,
    source: Source<'a>,
}

/// Where a frame's payload comes from, fed to the encoder piece by piece
/// (shared by both format versions).
#[derive(Debug, Clone, Copy)]
pub(super) enum Source<'a> {
    Record(&'a Record<'a>),
    Batch(&'a [Record<'a>]),
    Zeros,
    /// A fixed payload: a mark's 16 bytes, or (format v2) a hole's or a
    /// seal's first bytes of these.
    Fixed([u8; MARK_PAYLOAD_LEN], u8),
    Compressed([u8; 4], &'a [u8]),
}

/// Zeros to feed padding from.
static ZEROS: [u8; 64] = [0; 64];

impl<'a> Source<'a> {
    pub(super) fn feed(&self, payload_len: u32, f: &mut dyn FnMut(&[u8])) {
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
            Self::Fixed(bytes, len) => f(&bytes[..usize::from(*len)]),
            Self::Compressed(len, data) => {
                f(len);
                f(data);
            }
        }
    }
}

impl<'a> EncodedFrame<'a> {
    /// A frame whose payload `source` feeds, of `payload_len` bytes
    /// (checked by [`checked_len`]); its checks are computed when written.
    #[cfg_attr(feature = "std", inline)]
    fn new(
        key: EpochKey,
        lsn_offset: u32,
        kind: FrameKind,
        compression: Compression,
        payload_len: u32,
        source: Source<'a>,
    ) -> Self {
        let mut h = [0u8; FRAME_HEADER_LEN];
        h[off::LEN].copy_from_slice(&payload_len.to_le_bytes());
        h[off::LSN_OFFSET].copy_from_slice(&lsn_offset.to_le_bytes());
        let kind = kind_byte(kind, compression);
        h[off::KIND] = kind;
        h[off::KIND_INV] = !kind;
        Self { fields: h, key_crc: key.crc, payload_len, source }
    }

    /// The frame that stores `record` alone, for a segment of epoch `epoch`,
    /// at LSN offset `lsn_offset` from the segment's base LSN.
    ///
    /// # Errors
    ///
    /// [`EncodeError::PayloadTooLarge`].
    #[cfg_attr(feature = "std", inline)]
    pub fn record(
        epoch: impl Into<EpochKey>,
        lsn_offset: u32,
        record: &'a Record<'a>,
    ) -> Result<Self, EncodeError> {
        let kind = body::record_kind(record);
        let len = checked_len(body::record_body_len(record))?;
        Ok(Self::new(epoch.into(), lsn_offset, kind, Compression::None, len, Source::Record(record)))
    }

    /// The frame that stores `records` as one atomic batch (LSN offsets
    /// `lsn_offset .. lsn_offset + records.len()`).
    ///
    /// # Errors
    ///
    /// [`EncodeError::EmptyBatch`], [`EncodeError::LsnOverflow`] or
    /// [`EncodeError::PayloadTooLarge`].
    pub fn batch(
        epoch: impl Into<EpochKey>,
        lsn_offset: u32,
        records: &'a [Record<'a>],
    ) -> Result<Self, EncodeError> {
        if records.is_empty() {
            return Err(EncodeError::EmptyBatch);
        }
        let count = u32::try_from(records.len()).map_err(|_| EncodeError::LsnOverflow)?;
        lsn_offset.checked_add(count - 1).ok_or(EncodeError::LsnOverflow)?;
        let len = checked_len(body::batch_body_len(records))?;
        Ok(Self::new(
            epoch.into(),
            lsn_offset,
            FrameKind::Batch,
            Compression::None,
            len,
            Source::Batch(records),
        ))
    }

    /// A padding frame of exactly `frame_len` bytes (at least
    /// [`FRAME_HEADER_LEN`]) carrying the LSN offset of the next record.
    ///
    /// # Errors
    ///
    /// [`EncodeError::PaddingTooShort`] or [`EncodeError::PayloadTooLarge`].
    pub fn padding(
        epoch: impl Into<EpochKey>,
        lsn_offset: u32,
        frame_len: usize,
    ) -> Result<Self, EncodeError> {
        let Some(body_len) = frame_len.checked_sub(FRAME_HEADER_LEN) else {
            return Err(EncodeError::PaddingTooShort { len: frame_len as u64 });
        };
        let len = checked_len(body_len as u64)?;
        Ok(Self::new(epoch.into(), lsn_offset, FrameKind::Padding, Compression::None, len, Source::Zeros))
    }

    /// A mark frame carrying the LSN offset of the next record.
    #[must_use]
    pub fn mark(epoch: impl Into<EpochKey>, lsn_offset: u32, mark: Mark) -> Self {
        let source = Source::Fixed(mark.to_bytes(), MARK_PAYLOAD_LEN as u8);
        Self::new(
            epoch.into(),
            lsn_offset,
            FrameKind::Mark,
            Compression::None,
            MARK_PAYLOAD_LEN as u32,
            source,
        )
    }

    /// A frame whose payload the caller has compressed; see
    /// [`encode_compressed`].
    ///
    /// # Errors
    ///
    /// As [`encode_compressed`], but for the buffer size.
    pub fn compressed(
        epoch: impl Into<EpochKey>,
        lsn_offset: u32,
        kind: FrameKind,
        codec: Compression,
        uncompressed_len: u32,
        record_count: u32,
        compressed: &'a [u8],
    ) -> Result<Self, EncodeError> {
        if uncompressed_len > MAX_PAYLOAD_LEN {
            return Err(EncodeError::InvalidUncompressedLen);
        }
        if record_count == 0 || matches!(kind, FrameKind::Padding | FrameKind::Mark) {
            return Err(EncodeError::EmptyBatch);
        }
        lsn_offset.checked_add(record_count - 1).ok_or(EncodeError::LsnOverflow)?;
        let source = Source::Compressed(uncompressed_len.to_le_bytes(), compressed);
        let len = checked_len(4 + compressed.len() as u64)?;
        Ok(Self::new(epoch.into(), lsn_offset, kind, codec, len, source))
    }

    /// The sealed frame header (its CRC covers the payload, which this
    /// reads once through the payload pieces).
    #[must_use]
    #[cfg_attr(feature = "std", inline)]
    pub fn header(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut h = self.fields;
        let check_crc = check_crc(self.key_crc, &h);
        h[off::HEADER_CHECK].copy_from_slice(&(check_crc as u16).to_le_bytes());
        let mut crc = crc32c_append(check_crc, &h[off::HEADER_CHECK]);
        self.source.feed(self.payload_len, &mut |piece| crc = crc32c_append(crc, piece));
        h[off::CRC].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The whole frame's length, header included.
    #[must_use]
    #[allow(clippy::len_without_is_empty, reason = "a frame is never empty: it has a 16-byte header")]
    pub const fn len(&self) -> usize {
        FRAME_HEADER_LEN + self.payload_len as usize
    }

    /// Feeds the payload to `f`, piece by piece, in order.
    pub fn for_each_payload_piece(&self, mut f: impl FnMut(&[u8])) {
        self.source.feed(self.payload_len, &mut f);
    }

    /// Writes the whole frame at the start of `out`. Returns its length.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BufferTooSmall`]; `out` is then left unchanged.
    pub fn write_to(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let len = self.len();
        let Some(frame) = out.get_mut(..len) else {
            return Err(EncodeError::BufferTooSmall { needed: len as u64, available: out.len() as u64 });
        };
        let (h, mut rest) = frame.split_at_mut(FRAME_HEADER_LEN);
        h.copy_from_slice(&self.fields);
        self.for_each_payload_piece(|piece| {
            let (dst, after) = core::mem::take(&mut rest).split_at_mut(piece.len());
            dst.copy_from_slice(piece);
            rest = after;
        });
        seal_in_place(self.key_crc, &self.fields, frame);
        Ok(len)
    }

    /// Appends the whole frame to `out`, computing its checks over the
    /// bytes appended (one pass, while they are in the cache).
    ///
    /// ```
    /// use nori_wal_core::{format, Record};
    ///
    /// let record = Record::raw(b"event");
    /// let mut log = vec![0xAA; 3];
    /// format::EncodedFrame::record(1, 0, &record).unwrap().append_to(&mut log);
    /// assert!(format::decode_frame(&log[3..], 1).is_ok());
    /// ```
    #[cfg(feature = "std")]
    #[inline]
    pub fn append_to(&self, out: &mut std::vec::Vec<u8>) {
        let start = out.len();
        out.reserve(self.len());
        out.extend_from_slice(&self.fields);
        self.for_each_payload_piece(|piece| out.extend_from_slice(piece));
        seal_in_place(self.key_crc, &self.fields, &mut out[start..]);
    }
}

/// Eight-byte aligned bytes.
#[cfg(feature = "std")]
#[repr(align(8))]
struct Aligned([u8; 16]);

/// The CRC behind the header check of a frame with header `fields`: the
/// epoch's CRC continued over the length, LSN offset and kind bytes. With
/// `std` they are copied to an aligned start first: the CPU's CRC32C
/// instructions take eight bytes at a time from one (a 13% faster `Os`
/// append, measured); the portable CRC has no use for it.
#[cfg_attr(feature = "std", inline)]
fn check_crc(key_crc: u32, fields: &[u8; FRAME_HEADER_LEN]) -> u32 {
    let checked = &fields[off::LEN.start..off::HEADER_CHECK.start];
    #[cfg(feature = "std")]
    {
        let mut aligned = Aligned([0; 16]);
        aligned.0[..checked.len()].copy_from_slice(checked);
        crc32c_append(key_crc, &aligned.0[..checked.len()])
    }
    #[cfg(not(feature = "std"))]
    crc32c_append(key_crc, checked)
}

/// Fills in the CRC and the header check of `frame`, whose header `fields`
/// and payload are in place.
#[cfg_attr(feature = "std", inline)]
fn seal_in_place(key_crc: u32, fields: &[u8; FRAME_HEADER_LEN], frame: &mut [u8]) {
    let check_crc = check_crc(key_crc, fields);
    frame[off::HEADER_CHECK].copy_from_slice(&(check_crc as u16).to_le_bytes());
    let crc = crc32c_append(check_crc, &frame[off::HEADER_CHECK.start..]);
    frame[off::CRC].copy_from_slice(&crc.to_le_bytes());
}

/// A payload length, if the format allows it.
fn checked_len(payload_len: u64) -> Result<u32, EncodeError> {
    if payload_len > u64::from(MAX_PAYLOAD_LEN) {
        return Err(EncodeError::PayloadTooLarge { len: payload_len, max: u64::from(MAX_PAYLOAD_LEN) });
    }
    Ok(payload_len as u32)
}

/// Encodes `record` alone as a frame at the start of `out`, for a segment of
/// epoch `epoch`, at LSN offset `lsn_offset` from the segment's base LSN.
/// Returns the frame length.
///
/// # Errors
///
/// [`EncodeError::PayloadTooLarge`] or [`EncodeError::BufferTooSmall`];
/// `out` is left unchanged on error.
pub fn encode_record(
    out: &mut [u8],
    epoch: u64,
    lsn_offset: u32,
    record: &Record<'_>,
) -> Result<usize, EncodeError> {
    EncodedFrame::record(epoch, lsn_offset, record)?.write_to(out)
}

/// Encodes `records` as one atomic batch frame (LSNs `lsn_offset ..
/// lsn_offset + records.len()`). Returns the frame length.
///
/// # Errors
///
/// [`EncodeError::EmptyBatch`], [`EncodeError::LsnOverflow`],
/// [`EncodeError::PayloadTooLarge`] or [`EncodeError::BufferTooSmall`].
pub fn encode_batch(
    out: &mut [u8],
    epoch: u64,
    lsn_offset: u32,
    records: &[Record<'_>],
) -> Result<usize, EncodeError> {
    EncodedFrame::batch(epoch, lsn_offset, records)?.write_to(out)
}

/// Encodes a padding frame of exactly `frame_len` bytes (at least
/// [`FRAME_HEADER_LEN`]) carrying the LSN offset of the next record.
///
/// # Errors
///
/// [`EncodeError::PaddingTooShort`], [`EncodeError::PayloadTooLarge`] or
/// [`EncodeError::BufferTooSmall`].
pub fn encode_padding(
    out: &mut [u8],
    epoch: u64,
    lsn_offset: u32,
    frame_len: usize,
) -> Result<usize, EncodeError> {
    EncodedFrame::padding(epoch, lsn_offset, frame_len)?.write_to(out)
}

/// Encodes a mark frame (log metadata, no record) carrying the LSN offset of
/// the next record. Returns the frame length (32).
///
/// # Errors
///
/// [`EncodeError::BufferTooSmall`].
pub fn encode_mark(out: &mut [u8], epoch: u64, lsn_offset: u32, mark: Mark) -> Result<usize, EncodeError> {
    EncodedFrame::mark(epoch, lsn_offset, mark).write_to(out)
}

/// Encodes a frame whose payload the caller has compressed: `compressed` is
/// the codec's output for an uncompressed body of `uncompressed_len` bytes
/// and kind `kind` (a single-record kind or [`FrameKind::Batch`]);
/// `record_count` is the number of records in that body.
///
/// # Errors
///
/// [`EncodeError::InvalidUncompressedLen`], [`EncodeError::EmptyBatch`] for
/// a zero count or a padding or mark kind, [`EncodeError::LsnOverflow`],
/// [`EncodeError::PayloadTooLarge`] or [`EncodeError::BufferTooSmall`].
#[allow(clippy::too_many_arguments, reason = "mirrors the frame fields one to one")]
pub fn encode_compressed(
    out: &mut [u8],
    epoch: u64,
    lsn_offset: u32,
    kind: FrameKind,
    codec: Compression,
    uncompressed_len: u32,
    record_count: u32,
    compressed: &[u8],
) -> Result<usize, EncodeError> {
    EncodedFrame::compressed(epoch, lsn_offset, kind, codec, uncompressed_len, record_count, compressed)?
        .write_to(out)
}

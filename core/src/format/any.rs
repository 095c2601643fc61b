//! Frames of either format version, for readers of logs whose segments may
//! be of both (a log written by a build that wrote version 1 and continued
//! by one that writes version 2).

#[cfg(feature = "v1")]
use super::frame;
use super::{Body, Compressed, Compression, DecodeError, EpochKey, FrameKind, Version, v2};
use crate::Lsn;

/// A checked frame of either version, borrowed from the bytes it was
/// decoded from (see [`decode_frame_in`]).
///
/// ```
/// use nori_wal_core::format::{EpochKey, FrameKind, Version, decode_frame_in, v2};
/// use nori_wal_core::Record;
/// let (key, record) = (EpochKey::new(9), Record::raw(b"abc"));
/// let mut bytes = [0u8; 11];
/// v2::EncodedFrame::record(&record).unwrap().write_to(&mut bytes, &key, 40).unwrap();
/// let frame = decode_frame_in(Version::V2, &bytes, &key, 32, 40).unwrap();
/// assert_eq!((frame.kind(), frame.first_lsn(), frame.payload()), (FrameKind::Raw, 40, &b"abc"[..]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnyFrame<'a> {
    kind: FrameKind,
    compression: Compression,
    header_len: usize,
    bytes: &'a [u8],
    first_lsn: Lsn,
}

/// Decodes and checks the frame at the start of `bytes` (which end where
/// the segment's frames end) in a segment of `version`, epoch `key` and
/// base LSN `base_lsn`, where the reader expects the LSN `lsn`.
///
/// A version 2 frame is checked under `lsn` (it is bound to it and stores
/// none); a version 1 frame records its own LSN, which
/// [`first_lsn`](AnyFrame::first_lsn) returns for the caller to compare.
///
/// # Errors
///
/// What the version's `decode_frame` reports; [`DecodeError::VersionNotBuilt`]
/// for a version this build does not read.
///
/// ```
/// use nori_wal_core::format::{self, EpochKey, Version, decode_frame_in};
/// use nori_wal_core::Record;
/// let mut bytes = [0u8; 32];
/// let n = format::encode_record(&mut bytes, 9, 3, &Record::raw(b"x")).unwrap();
/// let frame = decode_frame_in(Version::V1, &bytes[..n], &EpochKey::new(9), 100, 103).unwrap();
/// assert_eq!(frame.first_lsn(), 103); // base 100 + the offset 3 the frame records
/// assert!(decode_frame_in(Version::V2, &bytes[..n], &EpochKey::new(9), 100, 103).is_err());
/// ```
pub fn decode_frame_in<'a>(
    version: Version,
    bytes: &'a [u8],
    key: &EpochKey,
    base_lsn: Lsn,
    lsn: Lsn,
) -> Result<AnyFrame<'a>, DecodeError> {
    match version {
        #[cfg(feature = "v1")]
        Version::V1 => {
            let _ = lsn;
            let f = frame::decode_frame_with(bytes, key)?;
            let h = f.header();
            Ok(AnyFrame {
                kind: h.kind(),
                compression: h.compression(),
                header_len: super::FRAME_HEADER_LEN,
                bytes: &bytes[..f.len()],
                first_lsn: base_lsn.saturating_add(u64::from(h.lsn_offset())),
            })
        }
        Version::V2 if Version::V2.built() => {
            let _ = base_lsn;
            let f = v2::decode_frame(bytes, key, lsn)?;
            let h = f.header();
            Ok(AnyFrame {
                kind: h.kind(),
                compression: h.compression(),
                header_len: h.header_len(),
                bytes: &bytes[..f.len()],
                first_lsn: lsn,
            })
        }
        v => Err(DecodeError::VersionNotBuilt { found: v.number() }),
    }
}

/// The length of the frame whose header starts `bytes`, in a segment of
/// `version` and epoch `key`, before its payload is read: for a reader
/// that reads a frame's header first, then the rest. `bytes` holds at
/// least [`frame_header_len`]`(version)` bytes (fewer at a segment's end).
/// Version 1 checks the header's own check here; version 2 only its form
/// (its CRC covers the whole frame).
///
/// # Errors
///
/// What the version's `FrameHeader::decode` reports.
///
/// ```
/// use nori_wal_core::format::{EpochKey, Version, frame_len_in, v2};
/// use nori_wal_core::Record;
/// let mut bytes = [0u8; 13];
/// v2::EncodedFrame::record(&Record::raw(b"hello")).unwrap().write_to(&mut bytes, &EpochKey::new(1), 0).unwrap();
/// assert_eq!(frame_len_in(Version::V2, &bytes[..10], &EpochKey::new(1)), Ok(13));
/// assert!(frame_len_in(Version::V2, &[0u8; 10], &EpochKey::new(1)).is_err());
/// ```
pub fn frame_len_in(version: Version, bytes: &[u8], key: &EpochKey) -> Result<usize, DecodeError> {
    match version {
        #[cfg(feature = "v1")]
        Version::V1 => frame::FrameHeader::decode_with(bytes, key).map(|h| h.frame_len()),
        Version::V2 if Version::V2.built() => {
            let _ = key;
            v2::FrameHeader::decode(bytes).map(|h| h.frame_len())
        }
        v => Err(DecodeError::VersionNotBuilt { found: v.number() }),
    }
}

/// The most header bytes a reader needs to learn a frame's length in
/// `version` ([`frame_len_in`]): 16 in version 1, 10 in version 2 (8 for
/// payloads up to 64 KiB).
///
/// ```
/// use nori_wal_core::format::{Version, frame_header_len};
/// assert_eq!((frame_header_len(Version::V1), frame_header_len(Version::V2)), (16, 10));
/// ```
#[must_use]
pub const fn frame_header_len(version: Version) -> usize {
    match version {
        Version::V1 => super::FRAME_HEADER_LEN,
        Version::V2 => v2::LONG_FRAME_HEADER_LEN,
    }
}

/// The length of a frame of `version` whose payload is `payload_len`
/// bytes long.
///
/// ```
/// use nori_wal_core::format::{Version, frame_len_of};
/// assert_eq!(frame_len_of(Version::V1, 128), 144);
/// assert_eq!(frame_len_of(Version::V2, 128), 136);
/// assert_eq!(frame_len_of(Version::V2, 70_000), 70_010);
/// ```
#[must_use]
pub const fn frame_len_of(version: Version, payload_len: u64) -> u64 {
    let header = match version {
        Version::V1 => super::FRAME_HEADER_LEN,
        Version::V2 if payload_len > v2::SHORT_MAX as u64 => v2::LONG_FRAME_HEADER_LEN,
        Version::V2 => v2::FRAME_HEADER_LEN,
    };
    payload_len.saturating_add(header as u64)
}

impl<'a> AnyFrame<'a> {
    /// The frame's kind (of its body once decompressed).
    ///
    /// ```
    /// # use nori_wal_core::format::{EpochKey, FrameKind, Version, decode_frame_in, v2};
    /// # use nori_wal_core::Record;
    /// # let (key, record) = (EpochKey::new(9), Record::raw(b"abc"));
    /// # let mut bytes = [0u8; 11];
    /// # v2::EncodedFrame::record(&record).unwrap().write_to(&mut bytes, &key, 40).unwrap();
    /// let frame = decode_frame_in(Version::V2, &bytes, &key, 32, 40).unwrap();
    /// assert_eq!(frame.kind(), FrameKind::Raw);
    /// ```
    #[must_use]
    pub const fn kind(&self) -> FrameKind {
        self.kind
    }

    /// The codec the payload is stored in.
    ///
    /// ```
    /// # use nori_wal_core::format::{Compression, EpochKey, Version, decode_frame_in, v2};
    /// # use nori_wal_core::Record;
    /// # let (key, record) = (EpochKey::new(9), Record::raw(b"abc"));
    /// # let mut bytes = [0u8; 11];
    /// # v2::EncodedFrame::record(&record).unwrap().write_to(&mut bytes, &key, 40).unwrap();
    /// assert_eq!(decode_frame_in(Version::V2, &bytes, &key, 32, 40).unwrap().compression(), Compression::None);
    /// ```
    #[must_use]
    pub const fn compression(&self) -> Compression {
        self.compression
    }

    /// The whole frame's length: where the next frame starts.
    ///
    /// ```
    /// # use nori_wal_core::format::{EpochKey, Version, decode_frame_in, v2};
    /// # use nori_wal_core::Record;
    /// # let (key, record) = (EpochKey::new(9), Record::raw(b"abc"));
    /// # let mut bytes = [0u8; 11];
    /// # v2::EncodedFrame::record(&record).unwrap().write_to(&mut bytes, &key, 40).unwrap();
    /// assert_eq!(decode_frame_in(Version::V2, &bytes, &key, 32, 40).unwrap().len(), 11);
    /// ```
    #[must_use]
    #[allow(clippy::len_without_is_empty, reason = "a frame is never empty")]
    pub const fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The header's length: where the payload starts in the frame.
    ///
    /// ```
    /// # use nori_wal_core::format::{EpochKey, Version, decode_frame_in, v2};
    /// # use nori_wal_core::Record;
    /// # let (key, record) = (EpochKey::new(9), Record::raw(b"abc"));
    /// # let mut bytes = [0u8; 11];
    /// # v2::EncodedFrame::record(&record).unwrap().write_to(&mut bytes, &key, 40).unwrap();
    /// assert_eq!(decode_frame_in(Version::V2, &bytes, &key, 32, 40).unwrap().header_len(), 8);
    /// ```
    #[must_use]
    pub const fn header_len(&self) -> usize {
        self.header_len
    }

    /// The LSN of the frame's first record: the one it was checked under
    /// (version 2), or the one its header records (version 1).
    ///
    /// ```
    /// # use nori_wal_core::format::{EpochKey, Version, decode_frame_in, v2};
    /// # use nori_wal_core::Record;
    /// # let (key, record) = (EpochKey::new(9), Record::raw(b"abc"));
    /// # let mut bytes = [0u8; 11];
    /// # v2::EncodedFrame::record(&record).unwrap().write_to(&mut bytes, &key, 40).unwrap();
    /// assert_eq!(decode_frame_in(Version::V2, &bytes, &key, 32, 40).unwrap().first_lsn(), 40);
    /// ```
    #[must_use]
    pub const fn first_lsn(&self) -> Lsn {
        self.first_lsn
    }

    /// The payload as stored (compressed or not).
    ///
    /// ```
    /// # use nori_wal_core::format::{EpochKey, Version, decode_frame_in, v2};
    /// # use nori_wal_core::Record;
    /// # let (key, record) = (EpochKey::new(9), Record::raw(b"abc"));
    /// # let mut bytes = [0u8; 11];
    /// # v2::EncodedFrame::record(&record).unwrap().write_to(&mut bytes, &key, 40).unwrap();
    /// assert_eq!(decode_frame_in(Version::V2, &bytes, &key, 32, 40).unwrap().payload(), b"abc");
    /// ```
    #[must_use]
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len..]
    }

    /// For a compressed frame: the codec, the uncompressed length and the
    /// compressed bytes; `Ok(None)` for a frame stored plain.
    ///
    /// # Errors
    ///
    /// [`DecodeError::MalformedBody`] when the payload cannot hold the
    /// uncompressed length, or the length is above the maximum.
    ///
    /// ```
    /// # use nori_wal_core::format::{EpochKey, Version, decode_frame_in, v2};
    /// # use nori_wal_core::Record;
    /// # let (key, record) = (EpochKey::new(9), Record::raw(b"abc"));
    /// # let mut bytes = [0u8; 11];
    /// # v2::EncodedFrame::record(&record).unwrap().write_to(&mut bytes, &key, 40).unwrap();
    /// assert_eq!(decode_frame_in(Version::V2, &bytes, &key, 32, 40).unwrap().compressed(), Ok(None));
    /// ```
    pub fn compressed(&self) -> Result<Option<Compressed<'a>>, DecodeError> {
        super::frame::split_compressed(self.compression, self.payload())
    }

    /// The body of a frame stored plain.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Compressed`] for a compressed frame;
    /// [`DecodeError::MalformedBody`] for a broken layout.
    ///
    /// ```
    /// # use nori_wal_core::format::{Body, EpochKey, Version, decode_frame_in, v2};
    /// # use nori_wal_core::Record;
    /// # let (key, record) = (EpochKey::new(9), Record::raw(b"abc"));
    /// # let mut bytes = [0u8; 11];
    /// # v2::EncodedFrame::record(&record).unwrap().write_to(&mut bytes, &key, 40).unwrap();
    /// let frame = decode_frame_in(Version::V2, &bytes, &key, 32, 40).unwrap();
    /// assert_eq!(frame.body(), Ok(Body::Record(Record::raw(b"abc"))));
    /// ```
    pub fn body(&self) -> Result<Body<'a>, DecodeError> {
        v2::body_of(self.kind, self.compression, self.payload())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Record;

    /// A valid frame of `version` for `payload`, in a segment of epoch
    /// `key` and base LSN 10, at LSN 12.
    fn frame(version: Version, key: &EpochKey, payload: &[u8]) -> ([u8; 64], usize) {
        let record = Record::raw(payload);
        let mut bytes = [0u8; 64];
        let n = match version {
            #[cfg(feature = "v1")]
            Version::V1 => crate::format::encode_record(&mut bytes, key.epoch(), 2, &record).unwrap(),
            _ => v2::EncodedFrame::record(&record).unwrap().write_to(&mut bytes, key, 12).unwrap(),
        };
        (bytes, n)
    }

    fn versions() -> impl Iterator<Item = Version> {
        [Version::V1, Version::V2].into_iter().filter(|v| v.built())
    }

    #[test]
    fn runs_of_one_byte_and_garbage_never_decode() {
        let key = EpochKey::new(7);
        let mut garbage = [0u8; 256];
        let mut x = 0x9E37_79B9_u32;
        for b in &mut garbage {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        for version in versions() {
            for fill in [0x00u8, 0xFF, 0xA5] {
                let bytes = [fill; 64];
                assert!(decode_frame_in(version, &bytes, &key, 10, 12).is_err(), "{version} {fill:#x}");
                assert!(frame_len_in(version, &bytes, &key).is_err(), "{version} {fill:#x}");
            }
            for at in 0..garbage.len() {
                // Whatever a length claims, nothing past the bytes is read.
                let _ = frame_len_in(version, &garbage[at..], &key);
                assert!(decode_frame_in(version, &garbage[at..], &key, 10, 12).is_err(), "{version} at {at}");
            }
        }
    }

    #[test]
    fn a_torn_frame_never_decodes_and_a_whole_one_only_where_it_belongs() {
        let key = EpochKey::new(7);
        for version in versions() {
            let (bytes, n) = frame(version, &key, b"a record of some length");
            let whole = decode_frame_in(version, &bytes[..n], &key, 10, 12).unwrap();
            assert_eq!(
                (whole.len(), whole.first_lsn(), whole.payload()),
                (n, 12, &b"a record of some length"[..])
            );
            assert_eq!(frame_len_in(version, &bytes[..frame_header_len(version).min(n)], &key), Ok(n));
            for cut in 0..n {
                // Cut short, then nothing, zeros or 0xFF where the rest was.
                assert!(
                    decode_frame_in(version, &bytes[..cut], &key, 10, 12).is_err(),
                    "{version} cut {cut}"
                );
                for fill in [0x00u8, 0xFF] {
                    let mut torn = bytes;
                    torn[cut..n].fill(fill);
                    if torn[..n] != bytes[..n] {
                        assert!(
                            decode_frame_in(version, &torn[..n], &key, 10, 12).is_err(),
                            "{version} {cut}"
                        );
                    }
                }
            }
            // Another epoch, or (v2) another LSN: not this frame.
            assert!(decode_frame_in(version, &bytes[..n], &EpochKey::new(8), 10, 12).is_err());
            if version == Version::V2 {
                assert!(decode_frame_in(version, &bytes[..n], &key, 10, 13).is_err());
            }
        }
    }
}

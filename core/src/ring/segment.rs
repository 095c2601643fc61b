//! The segment layer: walking the frames of one segment, looking at what
//! lies after the point where they stop, and deciding how the segment ends.
//! The ring log's recovery and [`SegmentReader`] (for a segment that is a
//! device of its own, such as a segment file) share this code.

use super::decision::RecoveryCase;
use super::error::{Error, Fault, Step};
use super::layout::{Layout, Seg};
use super::scan::Reader;
use super::window::{Overlay, Window};
use crate::Lsn;
use crate::device::BlockDevice;
use crate::format::v2::FramesCrc;
use crate::format::{AnyHeader, DecodeError, FrameKind, Malformed, SegmentHeader};

pub use super::error::Damage;

type Result<T, E> = core::result::Result<T, Error<E>>;

/// Where a walk over the frames of a segment stopped.
///
/// ```
/// # use nori_wal_core::ring::segment::*;
/// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
/// # let mut buffer = [0u8; 512];
/// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
/// let stop = segment.walk(None, None).unwrap();
/// assert_eq!((stop.pos, stop.lsn), (end as u64, 103));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stop {
    /// Segment offset of the stop.
    pub pos: u64,
    /// The LSN expected there: every LSN below it was found.
    pub lsn: Lsn,
    /// Why the walk stopped; `None` when it reached the LSN it was told to
    /// stop at.
    pub damage: Option<Damage>,
    /// The highest `log_start` among the marks walked over (0 if none).
    pub log_start: Lsn,
    /// The highest `durable_end` among the marks walked over (0 if none).
    pub durable_end: Lsn,
    /// Format v2: the CRC of the CRCs of the frames walked over, as a seal
    /// holds it (from the walk's start).
    pub frames_crc: FramesCrc,
    /// LSNs that the hole frames walked over declare lost (format v2: a
    /// repaired log); they are among the LSNs below `lsn`, and no record
    /// holds them.
    pub holes: u64,
}

/// What lies after a [`Stop`].
///
/// ```
/// # use nori_wal_core::ring::segment::*;
/// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
/// # let mut buffer = [0u8; 512];
/// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
/// let stop = segment.walk(None, None).unwrap();
/// let ahead = segment.look_ahead(&stop).unwrap();
/// assert!(ahead.first_valid.is_none() && ahead.durable_claim.is_none());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Ahead {
    /// The first valid frame after the stop that holds records at or past
    /// the stop's LSN (or a mark claiming such records durable): its
    /// position and LSN.
    pub first_valid: Option<(u64, Lsn)>,
    /// The highest `durable_end` among the valid marks after the stop.
    pub durable_claim: Option<Lsn>,
    /// End of the furthest valid frame after the stop.
    pub furthest_end: Option<u64>,
    /// Whether every byte from the stop to the segment end is the erase value.
    pub blank_to_end: bool,
    /// On erased media, the end of the last byte that is not erased.
    pub last_written: Option<u64>,
    /// The highest LSN end (first LSN plus records) of the valid frames
    /// after the stop.
    pub reach: Option<Lsn>,
    /// Whether the segment (format v2) holds a seal: it was closed, and
    /// nothing may be appended to it.
    pub sealed: bool,
}

impl Ahead {
    /// Whether appends may go on after the stop: the segment is not sealed
    /// (format v2), and after the stop everything is erased (media erased
    /// to `erase_value`) or nothing of the segment's epoch lies (media
    /// without erase).
    pub(crate) const fn free_after(&self, erase_value: Option<u8>) -> bool {
        !self.sealed
            && match erase_value {
                Some(_) => self.blank_to_end,
                None => self.furthest_end.is_none() && self.first_valid.is_none(),
            }
    }

    /// Bytes after a cut at `pos` that were written: up to the last
    /// programmed byte on erased media, else up to the end of the last
    /// frame of the epoch found.
    ///
    /// ```
    /// # use nori_wal_core::ring::segment::*;
    /// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
    /// # let mut buffer = [0u8; 512];
    /// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
    /// let stop = segment.walk(None, None).unwrap();
    /// let ahead = segment.look_ahead(&stop).unwrap();
    /// assert_eq!(ahead.written_after(stop.pos), 0, "nothing after the frames");
    /// ```
    #[must_use]
    pub fn written_after(&self, pos: u64) -> u64 {
        let end = self.last_written.unwrap_or(0).max(self.furthest_end.unwrap_or(0));
        end.saturating_sub(pos)
    }
}

/// Walks the frames of `seg` from `pos`, expecting `lsn`, until damage or
/// until `stop_at` is reached.
pub(crate) fn scan<D: BlockDevice>(
    reader: &mut Reader<'_, '_, '_, D>,
    seg: &Seg,
    pos: u64,
    lsn: Lsn,
    stop_at: Option<Lsn>,
) -> Step<Stop> {
    scan_with(reader, seg, pos, lsn, stop_at, FramesCrc::default())
}

/// [`scan`], adding the frames' CRCs to `frames_crc` (the CRCs of the
/// frames before `pos`).
pub(crate) fn scan_with<D: BlockDevice>(
    reader: &mut Reader<'_, '_, '_, D>,
    seg: &Seg,
    mut pos: u64,
    mut lsn: Lsn,
    stop_at: Option<Lsn>,
    mut frames_crc: FramesCrc,
) -> Step<Stop> {
    let (mut log_start, mut durable_end, mut holes) = (0, 0, 0);
    let damage = loop {
        // With `std`, frames in place are walked three at a time first.
        #[cfg(feature = "std")]
        {
            let run = reader.run_in_place(seg, pos, lsn, stop_at, &mut frames_crc);
            (pos, lsn) = (run.pos, run.lsn);
            log_start = log_start.max(run.log_start);
            durable_end = durable_end.max(run.durable_end);
        }
        if stop_at == Some(lsn) {
            break None;
        }
        let found = match reader.frame_at(seg, pos, lsn)? {
            Ok(found) => found,
            Err(damage) => break Some(damage),
        };
        let end = found.lsn.saturating_add(u64::from(found.count));
        if found.lsn != lsn || stop_at.is_some_and(|s| end > s) {
            break Some(Damage::LsnMismatch { found: found.lsn });
        }
        if let Some(mark) = found.mark {
            log_start = log_start.max(mark.log_start);
            durable_end = durable_end.max(mark.durable_end);
        }
        if found.kind == FrameKind::Hole {
            holes += u64::from(found.count);
        }
        if crate::format::Version::V2.built() && found.header_len > 0 {
            frames_crc.add(found.crc);
        }
        lsn = end;
        pos += found.frame_len as u64;
    };
    Ok(Stop { pos, lsn, damage, log_start, durable_end, frames_crc, holes })
}

/// Checks the seal of a format v2 segment that another follows (whose
/// next LSN is `end`), when its frames were walked whole up to `stop`:
/// the frames without records after `stop` are walked too, then the seal
/// must hold the segment's record count and its frames' checksum. A blank
/// seal slot is a segment a crash left unsealed; a seal that does not
/// decode is damage only for `strict` (a crash may tear it; the frames
/// were each checked). `None` when it holds; else the damage.
pub(crate) fn check_seal<D: BlockDevice>(
    reader: &mut Reader<'_, '_, '_, D>,
    seg: &Seg,
    stop: &Stop,
    end: Lsn,
    strict: bool,
) -> Step<Option<Damage>> {
    if !crate::format::Version::V2.built() || seg.version != crate::format::Version::V2 {
        return Ok(None);
    }
    let size = reader.layout.segment_size;
    let slot = reader.bytes(
        seg,
        seg.frames_end(reader.layout.segment_size),
        size - seg.frames_end(reader.layout.segment_size),
    )?;
    let seal = match crate::format::v2::decode_seal(slot, &seg.key, seg.base_lsn) {
        Ok(seal) => seal,
        // Blank: never sealed (a crash came first).
        Err(DecodeError::Blank { .. }) => return Ok(None),
        // Torn by a crash while it was programmed, or damaged: the frames
        // were each checked, so nothing is lost; `Strict` reports it.
        Err(e) => return Ok(strict.then_some(Damage::Frame(e))),
    };
    let tail = scan_with(reader, seg, stop.pos, stop.lsn, None, stop.frames_crc)?;
    let holds = tail.lsn == end
        && u64::from(seal.records) == end - seg.base_lsn
        && seal.frames_crc == tail.frames_crc.value();
    Ok((!holds).then_some(Damage::Frame(DecodeError::MalformedBody { reason: Malformed::SealMismatch })))
}

/// Looks at every offset after a stop at `stop` (expecting `lsn`) in `seg`
/// for valid frames of its epoch.
#[inline(never)]
pub(crate) fn look_ahead<D: BlockDevice>(
    reader: &mut Reader<'_, '_, '_, D>,
    seg: &Seg,
    stop: u64,
    lsn: Lsn,
) -> Step<Ahead> {
    let layout = reader.layout;
    let size = layout.segment_size;
    let mut ahead = Ahead::default();
    if crate::format::Version::V2.built()
        && seg.version == crate::format::Version::V2
        && seg.frames_end(reader.layout.segment_size) < size
    {
        let slot = reader.bytes(
            seg,
            seg.frames_end(reader.layout.segment_size),
            size - seg.frames_end(reader.layout.segment_size),
        )?;
        ahead.sealed = crate::format::v2::decode_seal(slot, &seg.key, seg.base_lsn).is_ok();
    }
    let erased = layout.erase_value;
    // Is everything from the stop to the end blank? On erased media, where
    // does the last programmed byte lie?
    let mut at = stop;
    let span = reader.window.max_span(layout.read_unit).max(1);
    ahead.blank_to_end = erased.is_some();
    while at < size {
        let n = (size - at).min(span);
        let bytes = reader.bytes(seg, at, n)?;
        if let Some(e) = erased
            && let Some(last) = bytes.iter().rposition(|&b| b != e)
        {
            ahead.blank_to_end = false;
            ahead.last_written = Some(at + last as u64 + 1);
        }
        at += n;
        if erased.is_none() {
            break;
        }
    }
    if ahead.blank_to_end {
        return Ok(ahead);
    }
    reader.scan_ahead(seg, stop, lsn, &mut |q, found| {
        if found.lsn >= lsn && ahead.first_valid.is_none() && found.count > 0 {
            ahead.first_valid = Some((q, found.lsn));
        }
        if let Some(mark) = found.mark {
            ahead.durable_claim = Some(ahead.durable_claim.unwrap_or(0).max(mark.durable_end));
            if ahead.first_valid.is_none() && mark.durable_end > lsn {
                // A mark past the damage: records resume at its LSN offset.
                ahead.first_valid = Some((q, found.lsn));
            }
        }
        ahead.furthest_end = Some(q + found.frame_len as u64);
        let end = found.lsn.saturating_add(u64::from(found.count));
        ahead.reach = Some(ahead.reach.map_or(end, |r| r.max(end)));
        true
    })?;
    Ok(ahead)
}

/// The decision-table row for damage that stopped the walk of the newest
/// segment at `lsn`, given what lies after it. `ordered`: whether the device
/// keeps writes in order.
pub(crate) fn classify(
    layout: &Layout,
    version: crate::format::Version,
    ordered: bool,
    damage: &Damage,
    ahead: &Ahead,
    lsn: Lsn,
) -> RecoveryCase {
    if ahead.durable_claim.is_some_and(|claim| claim > lsn) {
        return RecoveryCase::DurableDamage;
    }
    // On a device that keeps writes in order, a valid frame after the damage
    // was written after it, so the damaged bytes had been written whole:
    // durable damage, never an interrupted write.
    if ordered && (ahead.first_valid.is_some() || ahead.furthest_end.is_some()) {
        return RecoveryCase::DurableDamage;
    }
    // A valid frame of this epoch after the damage (records, or only a
    // padding or mark frame) proves the damaged bytes were written in this
    // epoch: never "never written".
    if ahead.first_valid.is_some() || ahead.furthest_end.is_some() {
        return RecoveryCase::InFlight;
    }
    let never_written = match damage {
        // The end of the segment.
        Damage::Frame(DecodeError::Truncated { .. }) => true,
        // Blank: erased flash, or any uniform fill where there is no erase.
        Damage::Frame(DecodeError::Blank { fill }) => match layout.erase_value {
            Some(erased) => *fill == erased,
            None => true,
        },
        // A header that does not check on a medium without erase is older
        // data (or a torn header): it was never part of this epoch. Where
        // the space is fresh there is no older data: it is a torn tail.
        Damage::Frame(DecodeError::BadHeader) => layout.erase_value.is_none() && !layout.fresh,
        // Format v2 has no header check keyed to the epoch: a frame of an
        // earlier use of the space fails only its CRC, as a torn frame
        // does. With nothing valid after it, where the space may hold older
        // data, it is taken as never written in this epoch (v1's rule for a
        // header that does not check); nothing durable is lost either way,
        // since a durable frame after it, or a mark, would have been found.
        Damage::Frame(
            DecodeError::BadChecksum { .. }
            | DecodeError::UnknownKind { .. }
            | DecodeError::LengthOutOfBounds { .. }
            | DecodeError::MalformedBody { .. },
        ) if version == crate::format::Version::V2 => layout.erase_value.is_none() && !layout.fresh,
        _ => false,
    };
    if never_written { RecoveryCase::Clean } else { RecoveryCase::TornTail }
}

/// A checked frame, as [`SegmentReader::frame_at`] returns it.
///
/// ```
/// # use nori_wal_core::ring::segment::*;
/// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
/// # let mut buffer = [0u8; 512];
/// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
/// let info = segment.frame_at(56, 100).unwrap().unwrap();
/// assert_eq!(info.frame_len, 19);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct FrameInfo {
    /// What the frame holds.
    pub kind: FrameKind,
    /// Length of the whole frame, header included.
    pub frame_len: usize,
    /// The frame's first LSN.
    pub lsn: Lsn,
    /// Records (and LSNs) it holds: 0 for padding and marks.
    pub count: u32,
}

/// Why a device holds no readable segment.
///
/// ```
/// # use nori_wal_core::ring::segment::*;
/// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
/// # let mut buffer = [0u8; 512];
/// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
/// drop(segment);
/// # use nori_wal_core::{Geometry, RamDevice};
/// let mut blank = RamDevice::new(vec![0u8; 4096], Geometry::block(1).unwrap()).unwrap();
/// let none = SegmentReader::open(&mut blank, &mut buffer, WriteOrder::AnyOrder);
/// assert!(matches!(none, Err(OpenError::NoSegment(HeaderError::Invalid(_)))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HeaderError {
    /// The header does not decode (blank, damaged or never written).
    Invalid(DecodeError),
    /// The segment was written by a newer format version.
    UnsupportedVersion {
        /// The version found.
        found: u16,
    },
    /// The header's segment size differs from the device's size.
    SizeMismatch {
        /// The size the header gives.
        header: u64,
        /// The device's capacity.
        device: u64,
    },
}

/// Why [`SegmentReader::open`] gives no reader.
///
/// ```
/// # use nori_wal_core::ring::segment::*;
/// # use nori_wal_core::{Geometry, RamDevice};
/// let mut blank = RamDevice::new(vec![0xFFu8; 4096], Geometry::block(1).unwrap()).unwrap();
/// let mut buffer = [0u8; 512];
/// match SegmentReader::open(&mut blank, &mut buffer, WriteOrder::AnyOrder) {
///     Err(OpenError::NoSegment(why)) => println!("no segment here: {why:?}"),
///     Err(OpenError::Read(e)) => println!("cannot read: {e}"),
///     Ok(_) => unreachable!("erased bytes hold no header"),
///     Err(e) => println!("{e}"),
/// }
/// ```
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum OpenError<E> {
    /// The device holds no readable segment.
    NoSegment(HeaderError),
    /// The header could not be read (or the buffer does not fit the device).
    Read(Error<E>),
}

impl<E> From<Error<E>> for OpenError<E> {
    fn from(e: Error<E>) -> Self {
        Self::Read(e)
    }
}

impl<E: core::fmt::Display> core::fmt::Display for OpenError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoSegment(HeaderError::Invalid(e)) => write!(f, "no segment header: {e}"),
            Self::NoSegment(HeaderError::UnsupportedVersion { found }) => write!(
                f,
                "the segment is in format version {found}; this nori-wal reads up to {}: upgrade it",
                crate::format::NEWEST_VERSION
            ),
            Self::NoSegment(HeaderError::SizeMismatch { header, device }) => {
                write!(f, "the segment header says {header} bytes, the device holds {device}")
            }
            Self::Read(e) => write!(f, "{e}"),
        }
    }
}

impl<E: crate::DeviceError> core::error::Error for OpenError<E> {}

/// Whether a device keeps writes in order until a sync (see
/// [`BlockDevice::writes_persist_in_order`]): it decides how damage followed
/// by valid frames is classified.
///
/// ```
/// use nori_wal_core::ring::segment::WriteOrder;
/// use nori_wal_core::{BlockDevice, Geometry, RamDevice};
/// // A RAM device makes no promise of order (it stands in for any medium).
/// let device = RamDevice::new([0u8; 4096], Geometry::block(1).unwrap()).unwrap();
/// assert_eq!(WriteOrder::of(&device), WriteOrder::AnyOrder);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WriteOrder {
    /// Writes reach the medium in the order they were made (NOR flash).
    InOrder,
    /// Writes may reach the medium in any order until a sync (files, disks).
    AnyOrder,
}

impl WriteOrder {
    /// What `device` says of itself.
    ///
    /// ```
    /// use nori_wal_core::ring::segment::WriteOrder;
    /// use nori_wal_core::{Geometry, RamDevice};
    /// let device = RamDevice::new([0u8; 512], Geometry::block(1).unwrap()).unwrap();
    /// assert_eq!(WriteOrder::of(&device), WriteOrder::AnyOrder);
    /// ```
    #[must_use]
    pub fn of<D: BlockDevice>(device: &D) -> Self {
        if device.writes_persist_in_order() { Self::InOrder } else { Self::AnyOrder }
    }
}

/// For the docs' examples (not part of the API, exempt from semver): a
/// 4 KiB segment of epoch 7 whose three 3-byte records start at LSN 100,
/// its header, and the offset after its last frame.
///
/// ```
/// let (_device, header, end) = nori_wal_core::ring::segment::doc_example();
/// assert_eq!((header.base_lsn, header.epoch), (100, 7));
/// assert!(end > 0);
/// ```
#[doc(hidden)]
#[must_use]
pub fn doc_example() -> (crate::RamDevice<[u8; 4096]>, SegmentHeader, usize) {
    let mut bytes = [0u8; 4096];
    let header = SegmentHeader::new(7, 100, 4096, 1).unwrap_or_else(|_| unreachable!("a valid header"));
    let mut end = header.encode(&mut bytes).unwrap_or_else(|_| unreachable!("room for the header"));
    for i in 0..3u32 {
        let record = crate::Record::raw(b"abc");
        let frame = crate::format::EncodedFrame::record(crate::format::EpochKey::new(7), i, &record)
            .unwrap_or_else(|_| unreachable!("a small record"));
        end += frame.write_to(&mut bytes[end..]).unwrap_or_else(|_| unreachable!("room for the frame"));
    }
    let geometry = crate::Geometry::block(1).unwrap_or_else(|_| unreachable!("one-byte units are valid"));
    let device = crate::RamDevice::new(bytes, geometry).unwrap_or_else(|_| unreachable!("a 4 KiB device"));
    (device, header, end)
}

/// One segment that is a whole device of its own (a segment file): reads
/// its header, walks its frames, and says how it ends, with the same code as
/// the ring log's recovery.
///
/// Reads go through the caller's buffer (a multiple of the read unit, at
/// least [`MIN_BUFFER_LEN`](super::MIN_BUFFER_LEN) bytes): memory stays
/// bounded whatever the segment's size.
///
/// ```
/// use nori_wal_core::format::{EncodedFrame, EpochKey, SegmentHeader};
/// use nori_wal_core::ring::segment::{Classified, SegmentReader, WriteOrder};
/// use nori_wal_core::{Geometry, RamDevice, Record};
///
/// // A 4 KiB segment of epoch 7 whose records start at LSN 100.
/// let mut bytes = vec![0u8; 4096];
/// let header = SegmentHeader::new(7, 100, 4096, 1).unwrap();
/// let mut at = header.encode(&mut bytes).unwrap();
/// for (i, value) in [&b"a"[..], b"b"].into_iter().enumerate() {
///     let record = Record::raw(value);
///     let frame = EncodedFrame::record(EpochKey::new(7), i as u32, &record).unwrap();
///     at += frame.write_to(&mut bytes[at..]).unwrap();
/// }
/// let mut device = RamDevice::new(bytes, Geometry::block(1).unwrap()).unwrap();
/// let mut buffer = [0u8; 512];
/// let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
/// let stop = segment.walk(None, None).unwrap();
/// assert_eq!((stop.pos, stop.lsn), (at as u64, 102));
/// let end = segment.classify_end(&stop).unwrap();
/// assert!(matches!(end, Classified::Clean { free_after: true }));
/// ```
pub struct SegmentReader<'d, 'w, D: BlockDevice> {
    device: &'d mut D,
    window: Window<'w>,
    layout: Layout,
    /// Whether the device keeps writes in order (the caller says).
    order: WriteOrder,
    seg: Seg,
    header: AnyHeader,
    fault: Fault<D::Error>,
}

impl<D: BlockDevice> core::fmt::Debug for SegmentReader<'_, '_, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SegmentReader").field("header", &self.header).finish_non_exhaustive()
    }
}

/// How the newest segment of a log ends, from [`SegmentReader::classify_end`].
///
/// ```
/// # use nori_wal_core::ring::segment::*;
/// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
/// # let mut buffer = [0u8; 512];
/// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
/// let stop = segment.walk(None, None).unwrap();
/// match segment.classify_end(&stop).unwrap() {
///     Classified::Clean { .. } => println!("ends in blank space"),
///     other => println!("ends in {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Classified {
    /// The frames end in never-written space: nothing to cut.
    Clean {
        /// Whether appends may continue at the stop: everything after it
        /// is erased (erased media), or holds nothing of this segment's
        /// epoch (media without erase).
        free_after: bool,
    },
    /// A torn frame ends the segment, with nothing valid after it.
    TornTail {
        /// Bytes after the stop that had been written.
        discarded: u64,
    },
    /// Damage with valid frames after it that no mark claims durable: a
    /// tail in flight at a crash, on a device that may reorder writes.
    InFlight {
        /// Bytes after the stop that had been written.
        discarded: u64,
    },
    /// Damage in the durable region: a later mark claims records past it
    /// durable, or (on a device that keeps write order) a valid frame
    /// follows it.
    DurableDamage {
        /// What lies after the damage.
        ahead: Ahead,
    },
}

impl<'d, 'w, D: BlockDevice> SegmentReader<'d, 'w, D> {
    /// Reads the segment header at offset 0 of `device`. `order` says
    /// whether the device keeps writes in order until a sync; it decides
    /// how damage followed by valid frames is classified.
    ///
    /// # Errors
    ///
    /// [`OpenError::NoSegment`] when the device holds no readable segment;
    /// [`OpenError::Read`] with [`Error::Config`] for a buffer of the wrong
    /// size, or [`Error::Device`] when a read fails.
    ///
    /// ```
    /// # use nori_wal_core::ring::segment::*;
    /// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
    /// # let mut buffer = [0u8; 512];
    /// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
    /// // (made above:) let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder)?;
    /// assert_eq!(segment.header().base_lsn, 100);
    /// ```
    pub fn open(
        device: &'d mut D,
        buffer: &'w mut [u8],
        order: WriteOrder,
    ) -> core::result::Result<Self, OpenError<D::Error>> {
        super::layout::check_buffer(&device.geometry(), buffer.len()).map_err(Error::Config)?;
        let capacity = device.capacity();
        let layout = Self::layout_of(device, 0);
        let mut window = Window::new(buffer);
        let mut fault = Fault::new();
        let decoded = {
            let mut reader = Reader {
                device: &mut *device,
                overlay: Overlay::NONE,
                window: &mut window,
                layout,
                fault: &mut fault,
            };
            reader.header(0)
        };
        let decoded = fault.out(decoded)?;
        let head = match decoded {
            Ok(h) => h,
            Err(DecodeError::UnsupportedVersion { found, .. }) => {
                return Err(OpenError::NoSegment(HeaderError::UnsupportedVersion { found }));
            }
            Err(e) => return Err(OpenError::NoSegment(HeaderError::Invalid(e))),
        };
        let segment_size = head.segment_size.unwrap_or(capacity);
        if segment_size != capacity {
            let mismatch = HeaderError::SizeMismatch { header: segment_size, device: capacity };
            return Err(OpenError::NoSegment(mismatch));
        }
        let layout = Layout { frames_offset: head.frames_offset, ..layout };
        let seg = Seg::new(0, 0, &head, capacity);
        let header = AnyHeader { segment_size: Some(segment_size), ..head };
        Ok(Self { device, window, layout, order, seg, header, fault })
    }

    /// A reader of a segment whose header is known (read before, or the one
    /// a segment with a damaged header would have had); the device's bytes
    /// at offset 0 are not read. The device may be shorter than the
    /// segment the header describes (a file not yet written to its end):
    /// the frames then end where the device does, or where the header's
    /// segment puts them, whichever comes first.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a buffer of the wrong size or a header whose
    /// segment size is below the device's capacity.
    ///
    /// ```
    /// # use nori_wal_core::ring::segment::*;
    /// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
    /// # let mut buffer = [0u8; 512];
    /// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
    /// drop(segment);
    /// let mut again = SegmentReader::with_header(&mut device, &mut buffer, WriteOrder::AnyOrder, header).unwrap();
    /// assert_eq!(again.walk(None, None).unwrap().lsn, 103);
    /// ```
    pub fn with_header(
        device: &'d mut D,
        buffer: &'w mut [u8],
        order: WriteOrder,
        header: impl Into<AnyHeader>,
    ) -> Result<Self, D::Error> {
        let header = header.into();
        super::layout::check_buffer(&device.geometry(), buffer.len())?;
        let capacity = device.capacity();
        let size = header.segment_size.unwrap_or(capacity);
        if size < capacity || header.frames_offset > capacity {
            return Err(Error::Config(super::ConfigError::LayoutMismatch {
                found_segment_size: size,
                found_program_unit: header.program_unit,
            }));
        }
        let layout = Self::layout_of(device, header.frames_offset);
        let seg = Seg::new(0, 0, &header, size).ending_at(header.frames_end(size).min(capacity), capacity);
        Ok(Self { device, window: Window::new(buffer), layout, order, seg, header, fault: Fault::new() })
    }

    fn layout_of(device: &D, frames_offset: u64) -> Layout {
        let geometry = device.geometry();
        Layout {
            segment_size: device.capacity(),
            slots: 1,
            program_unit: geometry.program_unit(),
            read_unit: geometry.read_unit(),
            erase_value: geometry.erase_value(),
            frames_offset,
            version: crate::format::Version::V1,
            fresh: false,
        }
    }

    /// Declares the segment's space fresh: never used before it (a newly
    /// created, zero-filled file). Bytes after the frames that are neither
    /// blank nor a frame are then a torn tail, not data left from an
    /// earlier use, and [`classify_end`](Self::classify_end) says so.
    ///
    /// ```
    /// # use nori_wal_core::ring::segment::*;
    /// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
    /// # let mut buffer = [0u8; 512];
    /// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
    /// let mut fresh = segment.fresh(); // a new file: garbage after the frames is a torn tail
    /// assert_eq!(fresh.walk(None, None).unwrap().lsn, 103);
    /// ```
    #[must_use]
    pub fn fresh(mut self) -> Self {
        self.layout.fresh = true;
        self
    }

    /// The segment's header.
    ///
    /// ```
    /// # use nori_wal_core::ring::segment::*;
    /// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
    /// # let mut buffer = [0u8; 512];
    /// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
    /// assert_eq!((segment.header().epoch, segment.header().base_lsn), (7, 100));
    /// ```
    #[must_use]
    pub const fn header(&self) -> &AnyHeader {
        &self.header
    }

    fn reader(&mut self) -> Reader<'_, '_, 'w, D> {
        Reader {
            device: &mut *self.device,
            overlay: Overlay::NONE,
            window: &mut self.window,
            layout: self.layout,
            fault: &mut self.fault,
        }
    }

    /// Walks the frames from `from` (a position and the LSN expected
    /// there; the first frame when `None`) until damage, the end of the
    /// segment, or the LSN `stop_at`.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when a read fails.
    ///
    /// ```
    /// # use nori_wal_core::ring::segment::*;
    /// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
    /// # let mut buffer = [0u8; 512];
    /// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
    /// let stop = segment.walk(None, Some(102)).unwrap(); // stop at LSN 102
    /// assert_eq!((stop.lsn, stop.damage), (102, None));
    /// let end = segment.walk(None, None).unwrap(); // to the end
    /// assert_eq!(end.lsn, 103);
    /// assert!(end.damage.is_some(), "blank space ends the walk");
    /// ```
    pub fn walk(&mut self, from: Option<(u64, Lsn)>, stop_at: Option<Lsn>) -> Result<Stop, D::Error> {
        let (pos, lsn) = from.unwrap_or((self.layout.frames_offset, self.seg.base_lsn));
        let seg = self.seg;
        let step = scan(&mut self.reader(), &seg, pos, lsn, stop_at);
        self.fault.out(step)
    }

    /// Looks at everything after `stop` for valid frames of this segment.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when a read fails.
    ///
    /// ```
    /// # use nori_wal_core::ring::segment::*;
    /// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
    /// # let mut buffer = [0u8; 512];
    /// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
    /// let stop = segment.walk(None, None).unwrap();
    /// let ahead = segment.look_ahead(&stop).unwrap();
    /// assert_eq!(ahead.first_valid, None);
    /// ```
    pub fn look_ahead(&mut self, stop: &Stop) -> Result<Ahead, D::Error> {
        let seg = self.seg;
        let step = look_ahead(&mut self.reader(), &seg, stop.pos, stop.lsn);
        self.fault.out(step)
    }

    /// Checks the seal of a format v2 segment whose frames were walked
    /// whole up to `stop`, and that another segment follows at LSN `end`:
    /// the seal must hold the segment's record count and its frames'
    /// checksum. `None` when it holds, when the segment is of version 1, or
    /// when its seal slot is blank or lies past the device's end (a crash
    /// came before the seal); a seal that does not decode is damage only
    /// for `strict` (a crash may tear it, and the frames were each
    /// checked).
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when a read fails.
    ///
    /// ```
    /// # use nori_wal_core::ring::segment::*;
    /// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
    /// # let mut buffer = [0u8; 512];
    /// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
    /// let stop = segment.walk(None, None).unwrap();
    /// assert_eq!(segment.check_seal(&stop, 103, true).unwrap(), None, "version 1: no seal");
    /// ```
    pub fn check_seal(&mut self, stop: &Stop, end: Lsn, strict: bool) -> Result<Option<Damage>, D::Error> {
        if self.header.segment_size != Some(self.layout.segment_size) {
            return Ok(None);
        }
        let seg = self.seg;
        let step = check_seal(&mut self.reader(), &seg, stop, end, strict);
        self.fault.out(step)
    }

    /// How the segment ends at `stop`, when it is the newest of its log:
    /// the decision the ring log's recovery takes for its newest segment.
    /// A stop without damage is [`Classified::Clean`].
    /// Stops at an erased-media position that is not a program-unit
    /// boundary must not be appended at, whatever `free_after` says.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when a read fails.
    ///
    /// ```
    /// # use nori_wal_core::ring::segment::*;
    /// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
    /// # let mut buffer = [0u8; 512];
    /// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
    /// let stop = segment.walk(None, None).unwrap();
    /// assert!(matches!(segment.classify_end(&stop).unwrap(), Classified::Clean { free_after: true }));
    /// ```
    pub fn classify_end(&mut self, stop: &Stop) -> Result<Classified, D::Error> {
        let ahead = self.look_ahead(stop)?;
        let free_after = ahead.free_after(self.layout.erase_value);
        let Some(damage) = stop.damage else { return Ok(Classified::Clean { free_after }) };
        let (version, ordered) = (self.seg.version, self.order == WriteOrder::InOrder);
        Ok(match classify(&self.layout, version, ordered, &damage, &ahead, stop.lsn) {
            RecoveryCase::Clean => Classified::Clean { free_after },
            RecoveryCase::TornTail => Classified::TornTail { discarded: ahead.written_after(stop.pos) },
            RecoveryCase::InFlight => Classified::InFlight { discarded: ahead.written_after(stop.pos) },
            _ => Classified::DurableDamage { ahead },
        })
    }

    /// Decodes and checks the frame at `pos`, where the LSN `lsn` is
    /// expected (format v2 checks the frame under it; v1 reads its own);
    /// `Ok(Err(_))` for damage.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when a read fails.
    ///
    /// ```
    /// # use nori_wal_core::ring::segment::*;
    /// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
    /// # let mut buffer = [0u8; 512];
    /// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
    /// let info = segment.frame_at(56, 100).unwrap().unwrap();
    /// assert_eq!((info.lsn, info.count), (100, 1));
    /// assert!(segment.frame_at(57, 100).unwrap().is_err(), "not a frame there");
    /// ```
    pub fn frame_at(
        &mut self,
        pos: u64,
        lsn: Lsn,
    ) -> Result<core::result::Result<FrameInfo, Damage>, D::Error> {
        let seg = self.seg;
        let step = self.reader().frame_at(&seg, pos, lsn);
        Ok(self.fault.out(step)?.map(|f| FrameInfo {
            kind: f.kind,
            frame_len: f.frame_len,
            lsn: f.lsn,
            count: f.count,
        }))
    }

    /// The bytes `[pos, pos + len)` of the segment, through the buffer
    /// (or in place where the device lends them).
    ///
    /// # Errors
    ///
    /// [`Error::BufferTooSmall`] when the range does not fit the buffer;
    /// [`Error::Device`] when a read fails.
    ///
    /// ```
    /// # use nori_wal_core::ring::segment::*;
    /// # let (mut device, header, end) = nori_wal_core::ring::segment::doc_example();
    /// # let mut buffer = [0u8; 512];
    /// # let mut segment = SegmentReader::open(&mut device, &mut buffer, WriteOrder::AnyOrder).unwrap();
    /// assert_eq!(&segment.bytes(0, 8).unwrap()[..], b"NORIWAL\0");
    /// ```
    pub fn bytes(&mut self, pos: u64, len: u64) -> Result<&[u8], D::Error> {
        let seg = self.seg;
        let mut fault = Fault::new();
        let reader = Reader {
            device: &mut *self.device,
            overlay: Overlay::NONE,
            window: &mut self.window,
            layout: self.layout,
            fault: &mut fault,
        };
        reader.into_bytes(seg.abs, pos, len).map_err(|_| fault.take())
    }
}

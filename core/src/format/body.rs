//! Frame bodies: how records are laid out inside an (uncompressed) payload.
//!
//! ```text
//! Put     key_len u32 ‖ key ‖ value
//! Delete  key
//! Raw     bytes
//! Batch   count u32 ‖ count × (type u8 ‖ body_len u32 ‖ body)   type ∈ {Put, Delete, Raw}
//! Padding zeros (ignored)
//! Mark    durable_end u64 ‖ log_start u64
//! ```

use super::{DecodeError, FrameKind, Malformed};
use crate::Record;

/// Bytes of a batch entry's own header: type u8 and body length u32.
const ENTRY_HEADER_LEN: usize = 5;

/// The decoded body of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Body<'a> {
    /// One record.
    Record(Record<'a>),
    /// An atomic batch of one or more records, in LSN order.
    Batch(BatchRecords<'a>),
    /// Padding: no record.
    Padding,
    /// Log metadata: no record.
    Mark(Mark),
    /// A declared range of lost LSNs (format v2): `count` LSNs from the
    /// frame's own, no record.
    Hole {
        /// How many LSNs were lost (at least 1).
        count: u32,
    },
    /// A segment's seal (format v2): no record.
    Seal(Seal),
}

/// Length of a hole frame's payload (format v2).
pub const HOLE_PAYLOAD_LEN: usize = 4;

/// Length of a seal frame's payload (format v2).
pub const SEAL_PAYLOAD_LEN: usize = 8;

/// What a sealed segment holds (format v2, FORMAT.md section v2.6): the
/// LSNs its frames take and a checksum of its frames' CRC fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Seal {
    /// LSNs the segment's frames take (holes included): the next segment
    /// starts at `base_lsn + records`.
    pub records: u32,
    /// CRC32C of the `crc` fields of the segment's frames, in order
    /// (see [`FramesCrc`](super::v2::FramesCrc)).
    pub frames_crc: u32,
}

impl Seal {
    pub(super) fn to_bytes(self) -> [u8; SEAL_PAYLOAD_LEN] {
        let mut out = [0u8; SEAL_PAYLOAD_LEN];
        out[..4].copy_from_slice(&self.records.to_le_bytes());
        out[4..].copy_from_slice(&self.frames_crc.to_le_bytes());
        out
    }

    pub(super) fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let Ok(bytes) = <&[u8; SEAL_PAYLOAD_LEN]>::try_from(bytes) else {
            return Err(malformed(Malformed::SealLength));
        };
        let (records, crc) = bytes.split_at(4);
        let mut a = [0u8; 4];
        let mut b = [0u8; 4];
        a.copy_from_slice(records);
        b.copy_from_slice(crc);
        Ok(Self { records: u32::from_le_bytes(a), frames_crc: u32::from_le_bytes(b) })
    }
}

/// Parses a hole's payload: its count, at least 1.
pub(crate) fn parse_hole(bytes: &[u8]) -> Result<u32, DecodeError> {
    let Ok(bytes) = <[u8; HOLE_PAYLOAD_LEN]>::try_from(bytes) else {
        return Err(malformed(Malformed::HoleLength));
    };
    match u32::from_le_bytes(bytes) {
        0 => Err(malformed(Malformed::EmptyHole)),
        count => Ok(count),
    }
}

/// Length of a mark frame's payload.
pub const MARK_PAYLOAD_LEN: usize = 16;

/// Log metadata written by a log between records; takes no LSN.
///
/// A writer puts a mark at the start of every segment and, on media that may
/// reorder writes, after a sync completes ahead of the next records, so that
/// recovery knows which LSNs were already durable (damage below
/// `durable_end` is never a torn tail) and where the log starts after a
/// reclaim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Mark {
    /// Every LSN below this one was durable when the mark was written.
    pub durable_end: u64,
    /// The first LSN the log retains; everything below it is reclaimed.
    pub log_start: u64,
}

impl Mark {
    pub(super) fn to_bytes(self) -> [u8; MARK_PAYLOAD_LEN] {
        let mut out = [0u8; MARK_PAYLOAD_LEN];
        out[..8].copy_from_slice(&self.durable_end.to_le_bytes());
        out[8..].copy_from_slice(&self.log_start.to_le_bytes());
        out
    }

    fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let Ok(bytes) = <&[u8; MARK_PAYLOAD_LEN]>::try_from(bytes) else {
            return Err(malformed(Malformed::MarkLength));
        };
        let (durable_end, log_start) = bytes.split_at(8);
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(durable_end);
        b.copy_from_slice(log_start);
        Ok(Self { durable_end: u64::from_le_bytes(a), log_start: u64::from_le_bytes(b) })
    }
}

impl<'a> Body<'a> {
    /// Parses an uncompressed body of the given kind. Use it directly on the
    /// decompressed bytes of a compressed frame.
    ///
    /// # Errors
    ///
    /// [`DecodeError::MalformedBody`] when the bytes do not have the layout
    /// the kind requires. A batch is checked whole before it is returned, so
    /// iterating it never fails.
    #[inline]
    pub fn parse(kind: FrameKind, bytes: &'a [u8]) -> Result<Self, DecodeError> {
        match kind {
            FrameKind::Padding => Ok(Self::Padding),
            FrameKind::Mark => Mark::parse(bytes).map(Self::Mark),
            // Format v2's own kinds are parsed by its frames
            // (`v2::Frame::body`), never from a decompressed payload.
            FrameKind::Hole | FrameKind::Seal => Err(malformed(Malformed::NotARecord)),
            FrameKind::Batch => BatchRecords::parse(bytes).map(Self::Batch),
            FrameKind::Put | FrameKind::Delete | FrameKind::Raw => {
                parse_record(kind, bytes).map(Self::Record)
            }
        }
    }

    /// How many records (and LSNs) the body holds. A hole holds none
    /// (see [`lsn_count`](Self::lsn_count)).
    #[must_use]
    pub fn record_count(&self) -> u32 {
        match self {
            Self::Record(_) => 1,
            Self::Batch(batch) => batch.remaining,
            Self::Padding | Self::Mark(_) | Self::Hole { .. } | Self::Seal(_) => 0,
        }
    }

    /// How many LSNs the body takes: its records, or a hole's count.
    #[must_use]
    pub fn lsn_count(&self) -> u32 {
        match self {
            Self::Hole { count } => *count,
            _ => self.record_count(),
        }
    }

    /// The records of the body, in LSN order.
    #[must_use]
    pub fn records(&self) -> Records<'a> {
        match self {
            Self::Record(record) => Records(RecordsInner::One(Some(*record))),
            Self::Batch(batch) => Records(RecordsInner::Batch(batch.clone())),
            Self::Padding | Self::Mark(_) | Self::Hole { .. } | Self::Seal(_) => {
                Records(RecordsInner::One(None))
            }
        }
    }
}

/// The records of a frame body, in LSN order.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Records<'a>(RecordsInner<'a>);

#[derive(Debug, Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum RecordsInner<'a> {
    One(Option<Record<'a>>),
    Batch(BatchRecords<'a>),
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        match &mut self.0 {
            RecordsInner::One(record) => record.take(),
            RecordsInner::Batch(batch) => batch.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.0 {
            RecordsInner::One(record) => usize::from(record.is_some()),
            RecordsInner::Batch(batch) => batch.remaining as usize,
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Records<'_> {}

/// The records of a batch, checked whole at parse time, yielded in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BatchRecords<'a> {
    remaining: u32,
    entries: &'a [u8],
}

impl<'a> BatchRecords<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let (count, entries) = split_u32(bytes).ok_or(malformed(Malformed::BatchCountCut))?;
        if count == 0 {
            return Err(malformed(Malformed::EmptyBatch));
        }
        // Walk every entry once so that iteration cannot fail later. Each
        // entry takes at least ENTRY_HEADER_LEN bytes, so the loop is bounded
        // by the payload, whatever the count says.
        let (mut at, mut seen) = (0usize, 0u32);
        while at < entries.len() {
            at = entry_end(entries, at)?;
            if seen == count {
                return Err(malformed(Malformed::ExtraEntries));
            }
            // Below `count`, so it cannot overflow.
            seen += 1;
        }
        if seen != count {
            return Err(malformed(Malformed::MissingEntries));
        }
        Ok(Self { remaining: count, entries })
    }

    /// How many records are left.
    #[must_use]
    pub fn len(&self) -> usize {
        self.remaining as usize
    }

    /// Whether no record is left.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl<'a> Iterator for BatchRecords<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.remaining == 0 {
            return None;
        }
        // Checked in `parse`; an error here cannot happen, and ends the
        // iteration rather than panicking.
        let Ok((record, rest)) = split_entry(self.entries) else {
            self.remaining = 0;
            return None;
        };
        self.entries = rest;
        self.remaining -= 1;
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

impl ExactSizeIterator for BatchRecords<'_> {}

const fn malformed(reason: Malformed) -> DecodeError {
    DecodeError::MalformedBody { reason }
}

fn split_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head), rest))
}

/// The batch entry at byte `at` of a batch payload (the first is at
/// [`BATCH_ENTRIES_AT`]) and the offset of the one after it: a cursor for
/// readers that return a batch's records one call at a time.
///
/// # Errors
///
/// [`DecodeError::MalformedBody`] when no whole entry starts at `at`.
pub fn batch_entry_at(payload: &[u8], at: usize) -> Result<(Record<'_>, usize), DecodeError> {
    let bytes = payload.get(at..).ok_or(malformed(Malformed::EntryPastPayload))?;
    let (record, rest) = split_entry(bytes)?;
    Ok((record, payload.len() - rest.len()))
}

/// The record at byte `at` of the payload of a record-holding frame of
/// `kind`, and the offset after it: for a batch, the entry at `at` (as
/// [`batch_entry_at`]); for a single-record frame, its one record (`at` is
/// not used, and the offset after it is the payload's end). A cursor for
/// readers that return a frame's records one call at a time, whatever its
/// kind.
///
/// ```
/// use nori_wal_core::format::{BATCH_ENTRIES_AT, FrameKind, record_at};
/// use nori_wal_core::Record;
///
/// // A delete of key "k" stored alone: the payload is the key.
/// assert_eq!(record_at(FrameKind::Delete, b"k", 0), Ok((Record::delete(b"k"), 1)));
/// // A batch of one raw record "ab": count 1, then the entry's type (3, raw),
/// // length and bytes.
/// let batch = [1, 0, 0, 0, 3, 2, 0, 0, 0, b'a', b'b'];
/// assert_eq!(record_at(FrameKind::Batch, &batch, BATCH_ENTRIES_AT), Ok((Record::raw(b"ab"), 11)));
/// ```
///
/// # Errors
///
/// [`DecodeError::MalformedBody`] when no whole record lies there, or the
/// kind holds no record.
pub fn record_at(kind: FrameKind, payload: &[u8], at: usize) -> Result<(Record<'_>, usize), DecodeError> {
    if kind == FrameKind::Batch {
        return batch_entry_at(payload, at);
    }
    Ok((parse_record(kind, payload)?, payload.len()))
}

/// Where the first entry of a batch payload starts (after its count).
pub const BATCH_ENTRIES_AT: usize = 4;

/// Where the batch entry at `at` of `entries` ends, once it is found
/// whole and well formed: what [`split_entry`] checks, with the same
/// errors, without making the record.
fn entry_end(entries: &[u8], at: usize) -> Result<usize, DecodeError> {
    let Some(&[tag, l0, l1, l2, l3]) = entries.get(at..).and_then(<[u8]>::first_chunk::<ENTRY_HEADER_LEN>)
    else {
        return Err(malformed(Malformed::EntryHeaderCut));
    };
    let body = at + ENTRY_HEADER_LEN;
    let len = usize::try_from(u32::from_le_bytes([l0, l1, l2, l3]))
        .map_err(|_| malformed(Malformed::EntryTooLong))?;
    if len > entries.len() - body {
        return Err(malformed(Malformed::EntryTooLong));
    }
    match FrameKind::from_code(tag) {
        Some(FrameKind::Put) => {
            let Some(key_len) = entries.get(body..body + len).and_then(<[u8]>::first_chunk::<4>) else {
                return Err(malformed(Malformed::PutKeyLengthCut));
            };
            let key_len = usize::try_from(u32::from_le_bytes(*key_len))
                .map_err(|_| malformed(Malformed::PutKeyTooLong))?;
            if key_len > len - 4 {
                return Err(malformed(Malformed::PutKeyTooLong));
            }
        }
        Some(FrameKind::Delete | FrameKind::Raw) => {}
        _ => return Err(malformed(Malformed::EntryType)),
    }
    Ok(body + len)
}

/// Splits one batch entry off the front of `bytes`.
pub(crate) fn split_entry(bytes: &[u8]) -> Result<(Record<'_>, &[u8]), DecodeError> {
    let (&tag, rest) = bytes.split_first().ok_or(malformed(Malformed::EntryHeaderCut))?;
    let (len, rest) = split_u32(rest).ok_or(malformed(Malformed::EntryHeaderCut))?;
    let len = usize::try_from(len).map_err(|_| malformed(Malformed::EntryTooLong))?;
    if len > rest.len() {
        return Err(malformed(Malformed::EntryTooLong));
    }
    let (body, rest) = rest.split_at(len);
    let kind = match FrameKind::from_code(tag) {
        Some(kind @ (FrameKind::Put | FrameKind::Delete | FrameKind::Raw)) => kind,
        _ => return Err(malformed(Malformed::EntryType)),
    };
    Ok((parse_record(kind, body)?, rest))
}

fn parse_record(kind: FrameKind, bytes: &[u8]) -> Result<Record<'_>, DecodeError> {
    match kind {
        FrameKind::Put => {
            let (key_len, rest) = split_u32(bytes).ok_or(malformed(Malformed::PutKeyLengthCut))?;
            let key_len = usize::try_from(key_len).map_err(|_| malformed(Malformed::PutKeyTooLong))?;
            if key_len > rest.len() {
                return Err(malformed(Malformed::PutKeyTooLong));
            }
            let (key, value) = rest.split_at(key_len);
            Ok(Record::put(key, value))
        }
        FrameKind::Delete => Ok(Record::delete(bytes)),
        FrameKind::Raw => Ok(Record::raw(bytes)),
        FrameKind::Batch | FrameKind::Padding | FrameKind::Mark | FrameKind::Hole | FrameKind::Seal => {
            Err(malformed(Malformed::NotARecord))
        }
    }
}

/// The frame kind that stores `record` alone.
#[must_use]
pub const fn record_kind(record: &Record<'_>) -> FrameKind {
    match record {
        Record::Put { .. } => FrameKind::Put,
        Record::Delete { .. } => FrameKind::Delete,
        Record::Raw(_) => FrameKind::Raw,
    }
}

/// Length of the body of `record` stored alone.
pub(crate) const fn record_body_len(record: &Record<'_>) -> u64 {
    match record {
        Record::Put { key, value } => 4 + key.len() as u64 + value.len() as u64,
        Record::Delete { key } => key.len() as u64,
        Record::Raw(payload) => payload.len() as u64,
    }
}

/// Length of the body of a batch of `records`.
pub(crate) fn batch_body_len(records: &[Record<'_>]) -> u64 {
    records.iter().fold(4, |acc, r| acc.saturating_add(ENTRY_HEADER_LEN as u64 + record_body_len(r)))
}

/// Feeds the body of `record` stored alone to `f`, piece by piece.
pub(super) fn record_pieces(record: &Record<'_>, f: &mut dyn FnMut(&[u8])) {
    match record {
        Record::Put { key, value } => {
            // Fits: the caller bounded the whole payload by MAX_PAYLOAD_LEN.
            f(&(key.len() as u32).to_le_bytes());
            f(key);
            f(value);
        }
        Record::Delete { key: bytes } | Record::Raw(bytes) => f(bytes),
    }
}

/// Feeds the body of a batch of `records` to `f`, piece by piece.
pub(super) fn batch_pieces(records: &[Record<'_>], f: &mut dyn FnMut(&[u8])) {
    f(&(records.len() as u32).to_le_bytes());
    for record in records {
        let mut head = [0u8; ENTRY_HEADER_LEN];
        head[0] = record_kind(record).code();
        head[1..].copy_from_slice(&(record_body_len(record) as u32).to_le_bytes());
        f(&head);
        record_pieces(record, f);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    /// The walk that checks a batch at parse time, entry by entry as
    /// iteration splits them: what [`entry_end`] must agree with.
    fn walk_by_split(entries: &[u8], count: u32) -> Result<(), DecodeError> {
        let (mut rest, mut seen) = (entries, 0u32);
        while !rest.is_empty() {
            rest = split_entry(rest)?.1;
            if seen == count {
                return Err(malformed(Malformed::ExtraEntries));
            }
            seen += 1;
        }
        if seen == count { Ok(()) } else { Err(malformed(Malformed::MissingEntries)) }
    }

    /// Batches well formed, torn anywhere (the rest missing, zeros or
    /// erased), with any byte changed to values that matter (types,
    /// lengths), runs of zeros, 0xFF and another value, and garbage: the
    /// parse and the walk by split agree on every one, error reason
    /// included.
    #[test]
    fn the_batch_check_agrees_with_splitting_every_entry() {
        let mut batch: Vec<u8> = 3u32.to_le_bytes().to_vec();
        batch.extend_from_slice(&[1, 9, 0, 0, 0, 2, 0, 0, 0, b'k', b'1', b'v', b'v', b'v']);
        batch.extend_from_slice(&[2, 2, 0, 0, 0, b'k', b'2']);
        batch.extend_from_slice(&[3, 3, 0, 0, 0, b'a', b'b', b'c']);
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut cases: Vec<Vec<u8>> = Vec::new();
        // Torn: the batch cut anywhere, the rest never written (nothing,
        // zeros or erased bytes after the cut).
        for cut in 4..=batch.len() {
            cases.push(batch[..cut].to_vec());
            for fill in [0u8, 0xFF] {
                let mut torn = batch[..cut].to_vec();
                torn.resize(batch.len(), fill);
                cases.push(torn);
            }
        }
        // Runs of one value, after a count that asks for entries.
        for fill in [0u8, 0xFF, 0x5A] {
            for len in [1, 4, 5, 9, 64] {
                let mut run = 2u32.to_le_bytes().to_vec();
                run.resize(4 + len, fill);
                cases.push(run);
                cases.push([fill].repeat(4 + len));
            }
        }
        for at in 0..batch.len() {
            for value in [0u8, 1, 2, 3, 4, 5, 7, 8, 9, 0x80, 0xFF] {
                let mut case = batch.clone();
                case[at] = value;
                cases.push(case);
            }
        }
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = 4 + (x % 40) as usize;
            let mut case: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8 % 12).collect();
            case[..4].copy_from_slice(&((x >> 40) as u32 % 5).to_le_bytes());
            cases.push(case);
        }
        for case in &cases {
            let (count, entries) = split_u32(case).unwrap();
            let expected = if count == 0 {
                Err(malformed(Malformed::EmptyBatch))
            } else {
                walk_by_split(entries, count)
            };
            assert_eq!(BatchRecords::parse(case).map(|_| ()), expected, "{case:?}");
        }
    }
}

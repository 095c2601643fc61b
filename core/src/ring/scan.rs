//! Walking the frames of one segment: the one reader that recovery and
//! iteration share.

use super::Error;
use super::error::{Broken, Damage, Failed, Fault, Step};
use super::layout::{Layout, Seg};
use super::window::{Overlay, Window};
use crate::Lsn;
use crate::device::BlockDevice;
use crate::format::{
    AnyHeader, Body, Compression, DecodeError, FrameKind, Malformed, Mark, Version, uniform_fill, v2,
};
#[cfg(feature = "v1")]
use crate::format::{FRAME_HEADER_LEN, FrameHeader};
// A frame's CRC continues from its header check at the header-check field
// (as `FrameHeader::verify_frame` does).
#[cfg(all(feature = "std", feature = "v1"))]
use crate::format::frame_offsets::HEADER_CHECK;

/// The device bytes `[at, at + len)` of a segment that ends at `end`: in
/// place when the device holds its bytes in memory and the unwritten
/// buffer (`overlay`) does not cover the range, else through the window.
#[cfg_attr(feature = "std", inline)]
fn read_bytes<'a, D: BlockDevice>(
    device: &'a mut D,
    window: &'a mut Window<'_>,
    fault: &mut Fault<D::Error>,
    overlay: Overlay<'a>,
    at: u64,
    len: u64,
    end: u64,
) -> Step<&'a [u8]> {
    let overlay_end = overlay.start + overlay.bytes.len() as u64;
    let clear = overlay.bytes.is_empty() || at + len <= overlay.start || at >= overlay_end;
    // Asked twice (once to decide, once to borrow for `'a`): the borrow
    // checker does not let a conditional return of a borrow be followed by
    // another use. A device that never lends (flash) drops the branch.
    if clear && at + len <= end && device.bytes_in_place(at, len).is_some() {
        let device: &'a D = device;
        return device.bytes_in_place(at, len).ok_or_else(|| fault.internal(Broken::InPlaceRefused));
    }
    window.get(device, fault, overlay, at, len, end)
}

/// Frames longer than this are left to the frame-by-frame walk: one long
/// frame keeps the CPU's CRC unit busy on its own.
#[cfg(feature = "std")]
const RUN_FRAME_MAX: usize = 512;

/// How far [`Reader::run_in_place`] walked, and the marks it met.
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    pub(crate) pos: u64,
    pub(crate) lsn: Lsn,
    pub(crate) log_start: Lsn,
    pub(crate) durable_end: Lsn,
}

/// The index of the first byte of `bytes` that is not `fill`: eight bytes
/// compared at a time (a newest segment's never-written tail is scanned for
/// the end of its run of zeros or erased bytes: up to a whole segment).
/// (Without `std`, byte by byte: smaller in a firmware image.)
#[cfg(not(feature = "std"))]
fn first_other(bytes: &[u8], fill: u8) -> Option<usize> {
    bytes.iter().position(|&b| b != fill)
}

#[cfg(feature = "std")]
fn first_other(bytes: &[u8], fill: u8) -> Option<usize> {
    let word = u64::from_ne_bytes([fill; 8]);
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for w in &mut words {
        if u64::from_ne_bytes(w.try_into().unwrap_or([!fill; 8])) != word {
            return w.iter().position(|&b| b != fill).map(|i| at + i);
        }
        at += 8;
    }
    words.remainder().iter().position(|&b| b != fill).map(|i| at + i)
}

/// Lowest number of payload bytes per LSN (a batch entry of an empty
/// record): bounds the LSNs a span of damaged bytes can have held.
const MIN_BYTES_PER_LSN: u64 = 5;

/// A candidate frame with nothing valid after it is accepted after a span
/// of damage at most this long (FORMAT.md section v2.3).
const LAST_FRAME_SPAN: u64 = 1 << 10;

/// A checked frame found at a position (or, in format v2, fill up to a
/// program-unit boundary: a `Padding` of header length 0).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    pub(crate) kind: FrameKind,
    pub(crate) compression: Compression,
    /// Length of the frame's header (0 for fill).
    pub(crate) header_len: usize,
    /// Length of the whole frame.
    pub(crate) frame_len: usize,
    /// The frame's stored CRC (format v2's seal covers it; 0 for fill and
    /// in v1).
    pub(crate) crc: u32,
    /// The frame's first LSN (v2: the LSN it is bound to).
    pub(crate) lsn: Lsn,
    /// Records (and LSNs) it holds.
    pub(crate) count: u32,
    /// The mark it carries, for a mark frame.
    pub(crate) mark: Option<Mark>,
}

/// The device, the overlay and the window, borrowed together for reading.
pub(crate) struct Reader<'a, 'f, 'w, D: BlockDevice> {
    pub(crate) device: &'a mut D,
    pub(crate) overlay: Overlay<'a>,
    pub(crate) window: &'a mut Window<'w>,
    pub(crate) layout: Layout,
    /// Where a failed read leaves its error.
    pub(crate) fault: &'f mut Fault<D::Error>,
}

impl<'a, D: BlockDevice> Reader<'a, '_, '_, D> {
    /// The bytes `[pos, pos + len)` of segment `seg`.
    pub(crate) fn bytes(&mut self, seg: &Seg, pos: u64, len: u64) -> Step<&[u8]> {
        self.bytes_at(seg.abs, pos, len)
    }

    /// The bytes `[pos, pos + len)` of the segment at device offset `abs`.
    /// (Through the parts it needs, not a reborrowed reader: a copy of the
    /// whole layout per frame was left in the recovery scan's hot loop.)
    pub(crate) fn bytes_at(&mut self, abs: u64, pos: u64, len: u64) -> Step<&[u8]> {
        let end = abs + self.layout.segment_size;
        read_bytes(&mut *self.device, &mut *self.window, self.fault, self.overlay, abs + pos, len, end)
    }

    /// Keeps `error` and returns the failure to pass up.
    pub(crate) fn fail(&mut self, error: Error<D::Error>) -> Failed {
        self.fault.raise(error)
    }

    /// Reads and decodes the header of the segment in `slot` (of either
    /// version). A v2 header counts only with the frame after it, which a
    /// log writes in the same program: a crash that tore that program left
    /// no segment (as a torn v1 header), and a first frame that is a mark
    /// gives the log's start (in the header's `log_start`, which stays
    /// `None` for a v2 segment that opens without a mark).
    #[inline(never)]
    pub(crate) fn header(&mut self, slot: u32) -> Step<Result<AnyHeader, DecodeError>> {
        let size = self.layout.segment_size;
        let len = self.layout.header_read_len().min(size);
        let abs = self.layout.offset(slot);
        let h = match AnyHeader::decode_in(self.bytes_at(abs, 0, len)?, size) {
            Ok(h) => h,
            Err(e) => return Ok(Err(e)),
        };
        if h.log_start.is_some() {
            return Ok(Ok(h));
        }
        if !Version::V2.built() {
            return Ok(Err(DecodeError::VersionNotBuilt { found: Version::V2.number() }));
        }
        let seg = Seg::new(slot, abs, &h, size);
        Ok(match self.frame_v2(&seg, h.frames_offset, h.base_lsn)? {
            Ok(first) if first.kind != FrameKind::Hole => {
                Ok(AnyHeader { log_start: first.mark.map(|m| m.log_start), ..h })
            }
            Ok(_) => Err(DecodeError::MalformedBody { reason: Malformed::MisplacedFrame }),
            Err(Damage::Frame(e)) => Err(e),
            Err(_) => Err(DecodeError::MalformedBody { reason: Malformed::MisplacedFrame }),
        })
    }

    /// The header of a segment the log holds, where damage is an error.
    pub(crate) fn held_header(&mut self, slot: u32) -> Step<AnyHeader> {
        match self.header(slot)? {
            Ok(header) => Ok(header),
            Err(e) => {
                let (offset, damage) = (self.layout.offset(slot), Damage::Frame(e));
                Err(self.fault.corrupt(super::Corruption { segment: slot, offset, lsn: 0, damage }))
            }
        }
    }

    /// [`bytes`](Self::bytes), borrowing for as long as the reader's own
    /// borrows last (for records handed out of the iterator).
    #[cfg_attr(feature = "std", inline)]
    pub(crate) fn into_bytes(self, abs: u64, pos: u64, len: u64) -> Step<&'a [u8]> {
        let end = abs + self.layout.segment_size;
        read_bytes(self.device, self.window, self.fault, self.overlay, abs + pos, len, end)
    }

    /// Walks the frames of `seg` from `pos` (expecting `lsn`) while they are
    /// short, whole, valid and in place on the device, three at a time
    /// with their CRCs computed interleaved: where a frame-by-frame walk
    /// ([`frame_at`](Self::frame_at)) would spend most of its time waiting
    /// for one frame's CRC chain. Stops before the first frame that is
    /// anything else (long, compressed, damaged, not the LSN expected, past
    /// `stop_at`, not in place) and returns how far it got, for the
    /// frame-by-frame walk to take over there and report what it finds.
    #[cfg(feature = "std")]
    pub(crate) fn run_in_place(
        &mut self,
        seg: &Seg,
        pos: u64,
        lsn: Lsn,
        stop_at: Option<Lsn>,
        frames_crc: &mut crate::format::v2::FramesCrc,
    ) -> Run {
        match seg.version {
            Version::V2 if Version::V2.built() => self.run_in_place_v2(seg, pos, lsn, stop_at, frames_crc),
            #[cfg(feature = "v1")]
            Version::V1 => self.run_in_place_v1(seg, pos, lsn, stop_at),
            _ => Run { pos, lsn, log_start: 0, durable_end: 0 },
        }
    }

    /// [`run_in_place`](Self::run_in_place) in a format v2 segment: each
    /// frame's CRC starts from its epoch, the LSN expected there and its
    /// header, and runs over its payload, three frames interleaved. The
    /// LSNs of the second and third frames follow from the counts of the
    /// ones before (a batch's count is read before its CRC is checked, and
    /// checked with it). The frames' CRCs go into `frames_crc`.
    #[cfg(feature = "std")]
    fn run_in_place_v2(
        &mut self,
        seg: &Seg,
        pos: u64,
        lsn: Lsn,
        stop_at: Option<Lsn>,
        frames_crc: &mut crate::format::v2::FramesCrc,
    ) -> Run {
        let mut run = Run { pos, lsn, log_start: 0, durable_end: 0 };
        let end = seg.frames_end(self.layout.segment_size);
        if !self.overlay.bytes.is_empty() || pos >= end {
            return run;
        }
        let device: &D = self.device;
        let Some(bytes) = device.bytes_in_place(seg.abs + pos, end - pos) else { return run };
        // The CRCs of the frames taken, for the seal's check, gathered.
        let (mut crcs, mut gathered) = ([0u8; 64], 0);
        let (at, _) = v2::check_run(bytes, &seg.key, lsn, RUN_FRAME_MAX, |frame| {
            if stop_at == Some(frame.lsn) {
                return false;
            }
            if let kind @ (FrameKind::Batch | FrameKind::Mark) = frame.header.kind() {
                match Body::parse(kind, frame.payload) {
                    Ok(Body::Mark(mark)) => {
                        run.log_start = run.log_start.max(mark.log_start);
                        run.durable_end = run.durable_end.max(mark.durable_end);
                    }
                    Ok(body) if body.record_count() == frame.count && frame.count > 0 => {}
                    _ => return false,
                }
            }
            let next = frame.lsn.saturating_add(u64::from(frame.count));
            if stop_at.is_some_and(|s| next > s) {
                return false;
            }
            if gathered == crcs.len() {
                frames_crc.add_bytes(&crcs);
                gathered = 0;
            }
            crcs[gathered..gathered + 4].copy_from_slice(&frame.header.stored_crc().to_le_bytes());
            gathered += 4;
            run.lsn = next;
            true
        });
        frames_crc.add_bytes(&crcs[..gathered]);
        run.pos = pos + at as u64;
        run
    }

    /// [`run_in_place`](Self::run_in_place) in a format v1 segment.
    #[cfg(all(feature = "std", feature = "v1"))]
    fn run_in_place_v1(&mut self, seg: &Seg, pos: u64, lsn: Lsn, stop_at: Option<Lsn>) -> Run {
        let mut run = Run { pos, lsn, log_start: 0, durable_end: 0 };
        let size = self.layout.segment_size;
        if !self.overlay.bytes.is_empty() || pos >= size {
            return run;
        }
        let device: &D = self.device;
        let Some(bytes) = device.bytes_in_place(seg.abs + pos, size - pos) else { return run };
        let mut at = 0usize;
        loop {
            // Up to three short frames whose headers check out.
            let mut frames: [(usize, Option<FrameHeader>); 3] = [(0, None); 3];
            let mut p = at;
            for slot in &mut frames {
                let Some(h) = bytes.get(p..p + FRAME_HEADER_LEN) else { break };
                let Ok(header) = FrameHeader::decode_with(h, &seg.key) else { break };
                let len = header.frame_len();
                if len > RUN_FRAME_MAX || p + len > bytes.len() || header.compression() != Compression::None {
                    break;
                }
                *slot = (p, Some(header));
                p += len;
            }
            if frames[0].1.is_none() {
                return run;
            }
            let parts = frames.map(|(_, h)| h.map_or((0, 0), |h| h.crc_parts()));
            let data =
                frames.map(|(p, h)| h.map_or(&[][..], |h| &bytes[p + HEADER_CHECK.start..p + h.frame_len()]));
            let computed = crate::crc::crc32c_append_3(parts.map(|(check, _)| check), data);
            for (k, (p, header)) in frames.into_iter().enumerate() {
                let Some(header) = header else { return run };
                if computed[k] != parts[k].1 || stop_at == Some(run.lsn) {
                    return run;
                }
                let first = seg.base_lsn.saturating_add(u64::from(header.lsn_offset()));
                if first != run.lsn {
                    return run;
                }
                let payload = &bytes[p + FRAME_HEADER_LEN..p + header.frame_len()];
                let count = match header.kind() {
                    FrameKind::Put | FrameKind::Delete | FrameKind::Raw => 1,
                    FrameKind::Padding => 0,
                    kind @ (FrameKind::Batch | FrameKind::Mark) => match Body::parse(kind, payload) {
                        Ok(Body::Mark(mark)) => {
                            run.log_start = run.log_start.max(mark.log_start);
                            run.durable_end = run.durable_end.max(mark.durable_end);
                            0
                        }
                        Ok(body) if body.record_count() > 0 => body.record_count(),
                        _ => return run,
                    },
                    _ => return run,
                };
                let end = first.saturating_add(u64::from(count));
                if stop_at.is_some_and(|s| end > s) {
                    return run;
                }
                run.lsn = end;
                run.pos = pos + (p + header.frame_len()) as u64;
                at = p + header.frame_len();
            }
        }
    }

    /// Decodes and checks the frame at `pos` of `seg`, where the LSN `lsn`
    /// is expected (format v2 checks the frame under it; v1 reads the
    /// frame's own).
    pub(crate) fn frame_at(&mut self, seg: &Seg, pos: u64, lsn: Lsn) -> Step<Result<Found, Damage>> {
        match seg.version {
            #[cfg(feature = "v1")]
            Version::V1 => self.frame_at_v1(seg, pos),
            // Never met: without the feature a v1 header is refused.
            #[cfg(not(feature = "v1"))]
            Version::V1 => Ok(Err(Damage::Unsupported)),
            Version::V2 if Version::V2.built() => self.frame_at_v2(seg, pos, lsn),
            Version::V2 => Ok(Err(Damage::Unsupported)),
        }
    }

    /// [`frame_at`](Self::frame_at) for a format v1 segment.
    #[cfg(feature = "v1")]
    fn frame_at_v1(&mut self, seg: &Seg, pos: u64) -> Step<Result<Found, Damage>> {
        let seg_size = self.layout.segment_size;
        let left = seg_size.saturating_sub(pos);
        if left < FRAME_HEADER_LEN as u64 {
            let truncated = DecodeError::Truncated { needed: FRAME_HEADER_LEN as u64, available: left };
            return Ok(Err(Damage::Frame(truncated)));
        }
        let key = seg.key;
        let header = match FrameHeader::decode_with(self.bytes(seg, pos, FRAME_HEADER_LEN as u64)?, &key) {
            Ok(header) => header,
            Err(e) => return Ok(Err(Damage::Frame(e))),
        };
        let frame_len = header.frame_len() as u64;
        if frame_len > left {
            return Ok(Err(Damage::Frame(DecodeError::LengthOutOfBounds { frame_len, available: left })));
        }
        // The checksum, a window at a time: one piece for a frame the
        // window holds.
        let span = self.window.max_span(self.layout.read_unit);
        let payload_at = pos + FRAME_HEADER_LEN as u64;
        // With `std`, a frame the window holds is checked in one CRC pass
        // from the header check on (one call instead of two, and one look
        // at the bytes); without it every frame is streamed, which saves a
        // firmware image the second path (about 150 bytes of flash).
        #[cfg(feature = "std")]
        let whole_checked = frame_len <= span;
        #[cfg(not(feature = "std"))]
        let whole_checked = false;
        if whole_checked {
            if let Err(e) = header.verify_frame(self.bytes(seg, pos, frame_len)?) {
                return Ok(Err(Damage::Frame(e)));
            }
        } else {
            let mut check = header.payload_check();
            let mut at = payload_at;
            while at < pos + frame_len {
                let n = (pos + frame_len - at).min(span);
                check.update(self.bytes(seg, at, n)?);
                at += n;
            }
            if let Err(e) = check.finish() {
                return Ok(Err(Damage::Frame(e)));
            }
        }
        let payload_len = frame_len - FRAME_HEADER_LEN as u64;
        let (kind, compression) = (header.kind(), header.compression());
        let (count, mark) =
            match self.frame_body(seg, kind, compression, payload_at, payload_len, frame_len <= span)? {
                Ok(body) => body,
                Err(damage) => return Ok(Err(damage)),
            };
        let lsn = seg.base_lsn.saturating_add(u64::from(header.lsn_offset()));
        Ok(Ok(Found {
            kind: header.kind(),
            compression: header.compression(),
            header_len: FRAME_HEADER_LEN,
            frame_len: header.frame_len(),
            crc: 0,
            lsn,
            count,
            mark,
        }))
    }

    /// [`frame_at`](Self::frame_at) for a format v2 segment: a frame bound
    /// to `lsn`, or fill up to the next program-unit boundary (FORMAT.md
    /// section v2.4).
    fn frame_at_v2(&mut self, seg: &Seg, pos: u64, lsn: Lsn) -> Step<Result<Found, Damage>> {
        let damage = match self.frame_v2(seg, pos, lsn)? {
            Ok(found) => return Ok(Ok(found)),
            Err(damage) => damage,
        };
        let unit = u64::from(self.layout.program_unit);
        if unit > 1 && !pos.is_multiple_of(unit) {
            let boundary = (pos / unit + 1) * unit;
            if boundary <= seg.frames_end(self.layout.segment_size)
                && uniform_fill(self.bytes(seg, pos, boundary - pos)?).is_some()
            {
                let fill = (boundary - pos) as usize;
                let (kind, compression) = (FrameKind::Padding, Compression::None);
                let found = Found {
                    kind,
                    compression,
                    header_len: 0,
                    frame_len: fill,
                    crc: 0,
                    lsn,
                    count: 0,
                    mark: None,
                };
                return Ok(Ok(found));
            }
        }
        Ok(Err(damage))
    }

    fn frame_v2(&mut self, seg: &Seg, pos: u64, lsn: Lsn) -> Step<Result<Found, Damage>> {
        let left = seg.frames_end(self.layout.segment_size).saturating_sub(pos);
        let short = v2::FRAME_HEADER_LEN as u64;
        if left < short {
            return Ok(Err(Damage::Frame(DecodeError::Truncated { needed: short, available: left })));
        }
        let n = left.min(v2::LONG_FRAME_HEADER_LEN as u64);
        let header = match v2::FrameHeader::decode(self.bytes(seg, pos, n)?) {
            Ok(header) => header,
            Err(e) => return Ok(Err(Damage::Frame(e))),
        };
        let frame_len = header.frame_len() as u64;
        if frame_len > left {
            return Ok(Err(Damage::Frame(DecodeError::LengthOutOfBounds { frame_len, available: left })));
        }
        let span = self.window.max_span(self.layout.read_unit);
        let hl = header.header_len() as u64;
        let whole = frame_len <= span;
        // With `std` a frame the window holds is checked in one call;
        // without it every frame is streamed (one path in a firmware image).
        if cfg!(feature = "std") && whole {
            if let Err(e) = header.verify(&seg.key, lsn, self.bytes(seg, pos, frame_len)?) {
                return Ok(Err(Damage::Frame(e)));
            }
        } else {
            let mut crc = v2::crc_start(&seg.key, lsn, &header, self.bytes(seg, pos, hl)?);
            let mut at = pos + hl;
            while at < pos + frame_len {
                let n = (pos + frame_len - at).min(span);
                crc = crate::crc::crc32c_append(crc, self.bytes(seg, at, n)?);
                at += n;
            }
            if crc != header.stored_crc() {
                let bad = DecodeError::BadChecksum { stored: header.stored_crc(), computed: crc };
                return Ok(Err(Damage::Frame(bad)));
            }
        }
        let kind = header.kind();
        let (count, mark) =
            match self.frame_body(seg, kind, header.compression(), pos + hl, frame_len - hl, whole)? {
                Ok(body) => body,
                Err(damage) => return Ok(Err(damage)),
            };
        Ok(Ok(Found {
            kind,
            compression: header.compression(),
            header_len: hl as usize,
            frame_len: frame_len as usize,
            crc: header.stored_crc(),
            lsn,
            count,
            mark,
        }))
    }

    /// The LSNs a checked frame of `kind` takes and the mark it holds, its
    /// payload (`payload_len` bytes at `payload_at`) read again only for a
    /// batch, a mark or a hole: whole when the window holds the frame
    /// (`whole`: a batch's entries checked, a mark's fields read), else a
    /// batch is taken at its count and its entries are checked as they are
    /// read. The same for both format versions.
    fn frame_body(
        &mut self,
        seg: &Seg,
        kind: FrameKind,
        compression: Compression,
        payload_at: u64,
        payload_len: u64,
        whole: bool,
    ) -> Step<Result<(u32, Option<Mark>), Damage>> {
        let needed = match kind {
            FrameKind::Batch | FrameKind::Mark | FrameKind::Hole if whole => payload_len,
            FrameKind::Batch => payload_len.min(4),
            _ => 0,
        };
        let payload = if needed == 0 { &[][..] } else { self.bytes(seg, payload_at, needed)? };
        let (count, mark) = match (kind, compression, whole) {
            (FrameKind::Put | FrameKind::Delete | FrameKind::Raw, _, _) => (1, None),
            (FrameKind::Padding, _, _) => (0, None),
            (FrameKind::Batch, Compression::None, false) => {
                (payload.first_chunk::<4>().map_or(0, |c| u32::from_le_bytes(*c)), None)
            }
            (FrameKind::Batch | FrameKind::Mark | FrameKind::Hole, Compression::None, true) => {
                let body = match kind {
                    // LSNs declared lost (format v2, a repaired log).
                    FrameKind::Hole => {
                        crate::format::body::parse_hole(payload).map(|count| Body::Hole { count })
                    }
                    _ => Body::parse(kind, payload),
                };
                match body {
                    Ok(Body::Mark(mark)) => (0, Some(mark)),
                    Ok(body) => (body.lsn_count(), None),
                    Err(e) => return Ok(Err(Damage::Frame(e))),
                }
            }
            // A seal among the frames (format v2 keeps it past them).
            (FrameKind::Seal, _, _) => {
                let misplaced = DecodeError::MalformedBody { reason: Malformed::MisplacedFrame };
                return Ok(Err(Damage::Frame(misplaced)));
            }
            // A compressed batch or mark, or a mark larger than the window
            // (a mark is 32 bytes: never).
            _ => return Ok(Err(Damage::Unsupported)),
        };
        if count == 0 && matches!(kind, FrameKind::Batch) {
            return Ok(Err(Damage::Frame(DecodeError::MalformedBody { reason: Malformed::EmptyBatch })));
        }
        Ok(Ok((count, mark)))
    }

    /// The LSN in `range` under which the v2 frame at `pos` (whose header
    /// is `header`, and which ends inside the frames) can check out.
    fn solve_at(
        &mut self,
        seg: &Seg,
        pos: u64,
        header: &v2::FrameHeader,
        range: core::ops::Range<Lsn>,
    ) -> Step<Option<Lsn>> {
        let frame_len = header.frame_len() as u64;
        let span = self.window.max_span(self.layout.read_unit);
        // (Without `std`, one path: streamed.)
        if cfg!(feature = "std") && frame_len <= span {
            return Ok(v2::solve_lsn(&seg.key, self.bytes(seg, pos, frame_len)?, range));
        }
        let hl = header.header_len() as u64;
        let mut rest = v2::raw_crc(0, &self.bytes(seg, pos, hl)?[..hl as usize - 4]);
        let mut at = pos + hl;
        while at < pos + frame_len {
            let n = (pos + frame_len - at).min(span);
            rest = v2::raw_crc(rest, self.bytes(seg, at, n)?);
            at += n;
        }
        Ok(v2::solve_streamed(&seg.key, header, rest, range))
    }
}

impl<D: BlockDevice> Reader<'_, '_, '_, D> {
    /// Visits every valid frame of `seg`'s epoch that starts after `from`,
    /// trying every byte offset (frames found are stepped over whole), until
    /// `visit` returns `false`. Bounded by the segment: at most one header
    /// check per byte.
    #[inline(never)]
    pub(crate) fn scan_ahead(
        &mut self,
        seg: &Seg,
        from: u64,
        lsn: Lsn,
        visit: &mut dyn FnMut(u64, &Found) -> bool,
    ) -> Step<()> {
        if Version::V2.built() && (seg.version == Version::V2 || !Version::V1.built()) {
            return self.scan_ahead_v2(seg, from, lsn, visit);
        }
        #[cfg(feature = "v1")]
        self.scan_ahead_v1(seg, from, visit)?;
        Ok(())
    }

    /// [`scan_ahead`](Self::scan_ahead) in a format v1 segment, whose
    /// frames say their LSN.
    #[cfg(feature = "v1")]
    fn scan_ahead_v1(
        &mut self,
        seg: &Seg,
        from: u64,
        visit: &mut dyn FnMut(u64, &Found) -> bool,
    ) -> Step<()> {
        let size = self.layout.segment_size;
        let header_len = FRAME_HEADER_LEN as u64;
        let key = seg.key;
        let mut q = from + 1;
        while q + header_len <= size {
            let h = self.bytes(seg, q, header_len)?;
            if let Some(&fill) = h.first().filter(|&&f| h.iter().all(|&b| b == f)) {
                // A uniform run: no frame header lies wholly inside it.
                // Find its end a window at a time.
                let mut end = q + header_len;
                let span = self.window.max_span(self.layout.read_unit).max(1);
                while end < size {
                    let n = (size - end).min(span);
                    let chunk = self.bytes(seg, end, n)?;
                    match first_other(chunk, fill) {
                        Some(i) => {
                            end += i as u64;
                            break;
                        }
                        None => end += n,
                    }
                }
                q = (end + 1).saturating_sub(header_len).max(q + 1);
                continue;
            }
            if FrameHeader::decode_with(h, &key).is_err() {
                q += 1;
                continue;
            }
            match self.frame_at_v1(seg, q)? {
                Ok(found) => {
                    if !visit(q, &found) {
                        return Ok(());
                    }
                    q += found.frame_len as u64;
                }
                Err(_) => q += 1,
            }
        }
        Ok(())
    }

    /// The end of the run of `fill` bytes that starts at `at` in `seg`
    /// (bounded by `end`), a window at a time.
    fn run_end(&mut self, seg: &Seg, mut at: u64, end: u64, fill: u8) -> Step<u64> {
        let span = self.window.max_span(self.layout.read_unit).max(1);
        while at < end {
            let n = (end - at).min(span);
            let chunk = self.bytes(seg, at, n)?;
            match first_other(chunk, fill) {
                Some(i) => return Ok(at + i as u64),
                None => at += n,
            }
        }
        Ok(end)
    }

    /// [`scan_ahead`](Self::scan_ahead) in a format v2 segment, where `lsn`
    /// was expected at `from`. A frame's LSN is not stored: each candidate
    /// position is solved for the one LSN the damaged span allows there,
    /// and accepted only when the frame after it checks out too, or when it
    /// is the last before blank space after a short span (FORMAT.md section
    /// v2.3). Frames that follow an accepted one are checked under the
    /// LSNs that follow.
    fn scan_ahead_v2(
        &mut self,
        seg: &Seg,
        from: u64,
        lsn: Lsn,
        visit: &mut dyn FnMut(u64, &Found) -> bool,
    ) -> Step<()> {
        let end = seg.frames_end(self.layout.segment_size);
        let short = v2::FRAME_HEADER_LEN as u64;
        // The last place whose LSN is known, and that LSN.
        let (mut known_at, mut known_lsn) = (from, lsn);
        let mut q = from + 1;
        while q + short <= end {
            let h = self.bytes(seg, q, short)?;
            if let Some(fill) = uniform_fill(h) {
                let run = self.run_end(seg, q + short, end, fill)?;
                q = (run + 1).saturating_sub(short).max(q + 1);
                continue;
            }
            let n = (end - q).min(v2::LONG_FRAME_HEADER_LEN as u64);
            let header = match v2::FrameHeader::decode(self.bytes(seg, q, n)?) {
                Ok(header) if q + header.frame_len() as u64 <= end => header,
                _ => {
                    q += 1;
                    continue;
                }
            };
            let skipped = q - known_at;
            let most = known_lsn.saturating_add(skipped / MIN_BYTES_PER_LSN + 1);
            let Some(candidate) = self.solve_at(seg, q, &header, known_lsn..most)? else {
                q += 1;
                continue;
            };
            let Ok(found) = self.frame_at_v2(seg, q, candidate)? else {
                q += 1;
                continue;
            };
            let pairs = u128::from(end - from) * u128::from(most - known_lsn);
            let needed = if pairs < 1 << 46 { 1 } else { 2 };
            if !self.confirmed(seg, q, &found, needed, skipped)? {
                q += 1;
                continue;
            }
            // Accepted: it, and the frames that follow it in order.
            let (mut p, mut found) = (q, found);
            loop {
                if !visit(p, &found) {
                    return Ok(());
                }
                p += found.frame_len as u64;
                let next = found.lsn.saturating_add(u64::from(found.count));
                match self.frame_at_v2(seg, p, next)? {
                    Ok(f) => found = f,
                    Err(_) => {
                        (known_at, known_lsn) = (p, next);
                        break;
                    }
                }
            }
            q = p + 1;
        }
        Ok(())
    }

    /// Whether the candidate `found` at `at` is confirmed: `needed` frames
    /// after it check out under the LSNs that follow, or nothing valid
    /// follows it but blank space or the end of the frames and the span
    /// before it was short.
    fn confirmed(&mut self, seg: &Seg, at: u64, found: &Found, needed: u32, skipped: u64) -> Step<bool> {
        let (mut p, mut f, mut validated) = (at, *found, 0);
        loop {
            p += f.frame_len as u64;
            let next = f.lsn.saturating_add(u64::from(f.count));
            match self.frame_at_v2(seg, p, next)? {
                Ok(after) if after.header_len > 0 => {
                    validated += 1;
                    if validated >= needed {
                        return Ok(true);
                    }
                    f = after;
                }
                // Fill: look past it.
                Ok(after) => f = after,
                Err(Damage::Frame(DecodeError::Blank { .. } | DecodeError::Truncated { .. })) => {
                    return Ok(validated == 0 && skipped <= LAST_FRAME_SPAN);
                }
                Err(_) => return Ok(false),
            }
        }
    }

    /// The first frame after `from` holding records at or above `lsn`.
    /// (`known`: the LSN expected at `from`.)
    pub(crate) fn next_valid(
        &mut self,
        seg: &Seg,
        from: u64,
        known: Lsn,
        lsn: Lsn,
    ) -> Step<Option<(u64, Lsn)>> {
        let mut first = None;
        self.scan_ahead(seg, from, known, &mut |q, found| {
            if found.count > 0 && found.lsn >= lsn {
                first = Some((q, found.lsn));
                false
            } else {
                true
            }
        })?;
        Ok(first)
    }
}

#[cfg(test)]
mod first_other_tests {
    use super::first_other;

    #[test]
    fn finds_the_first_byte_that_differs() {
        for len in 0..40 {
            for fill in [0u8, 0xFF, 0x5A] {
                let mut bytes = [fill; 40];
                assert_eq!(first_other(&bytes[..len], fill), None);
                for at in 0..len {
                    bytes = [fill; 40];
                    bytes[at] ^= 0x10;
                    bytes[len - 1] ^= if at == len - 1 { 0 } else { 1 };
                    assert_eq!(first_other(&bytes[..len], fill), Some(at), "len {len} at {at}");
                }
            }
        }
    }
}

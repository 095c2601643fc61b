//! Recovery: from the bytes on a device to the log's state, by the decision
//! table in the module docs.

use super::decision::{Action, RecoveryCase, decide};
use super::error::{Broken, Corruption, Damage, Error, Fault, Step};
use super::layout::{Layout, Seg};
use super::scan::Reader;
use super::segment::{self, Stop};
use super::window::{Overlay, Window};
use super::{Active, RecoveryMode, State};
use crate::Lsn;
use crate::device::BlockDevice;
use crate::format::{DecodeError, Version};

/// What recovery found and did. `At` names a segment, as in
/// [`Corruption`]: its slot for a ring log; the file WAL's recovery report
/// holds one of these, with files.
///
/// ```
/// use nori_wal_core::ring::{RecoveryCase, RecoveryInfo};
/// let info = RecoveryInfo::<u32>::default();
/// assert_eq!((info.records, info.case, info.corruption), (0, RecoveryCase::Clean, None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct RecoveryInfo<At = u32> {
    /// Records the log holds after recovery.
    pub records: u64,
    /// The first LSN the log holds, if any record.
    pub first_lsn: Option<Lsn>,
    /// The last LSN the log holds, if any record.
    pub last_lsn: Option<Lsn>,
    /// Segments the log holds.
    pub segments: u32,
    /// Bytes after the cut point that held frames (or parts of frames)
    /// written under the newest epoch and were discarded.
    pub bytes_discarded: u64,
    /// Whether a torn or in-flight tail was cut.
    pub torn_tail: bool,
    /// Records skipped or dropped because of damage (`SkipDamaged`,
    /// `PointInTime`); 0 when nothing durable was lost.
    pub records_lost: u64,
    /// The first damage found in the durable region, if any.
    pub corruption: Option<Corruption<At>>,
    /// The decision taken.
    pub case: RecoveryCase,
}

/// Nothing found yet: no record, no damage, [`RecoveryCase::Clean`].
impl<At> Default for RecoveryInfo<At> {
    #[inline(always)] // built once, in place, in firmware
    fn default() -> Self {
        Self {
            records: 0,
            first_lsn: None,
            last_lsn: None,
            segments: 0,
            bytes_discarded: 0,
            torn_tail: false,
            records_lost: 0,
            corruption: None,
            case: RecoveryCase::Clean,
        }
    }
}

struct Recovery<'a, 'w, D: BlockDevice> {
    reader: Reader<'a, 'a, 'w, D>,
    layout: Layout,
    mode: RecoveryMode,
    max_epoch: u64,
    info: RecoveryInfo,
    /// The log's state, set when recovery settles (built in place: the
    /// state is too large to pass back up through every step).
    state: State,
    /// The frames' CRCs of the newest segment, for appends that go on in it.
    frames_crc: crate::format::v2::FramesCrc,
}

/// Recovers the log on `device`, reading through `buffer`.
pub(crate) fn recover<D: BlockDevice>(
    device: &mut D,
    layout: Layout,
    mode: RecoveryMode,
    buffer: &mut [u8],
    fault: &mut Fault<D::Error>,
) -> Step<(State, RecoveryInfo)> {
    let mut window = Window::new(buffer);
    let reader = Reader { device, overlay: Overlay::NONE, window: &mut window, layout, fault };
    let info = RecoveryInfo::default();
    let state = State {
        oldest: None,
        newest: 0,
        active: None,
        max_epoch: 0,
        next_lsn: 0,
        durable_end: 0,
        log_start: 0,
        floor: super::NO_SLOT,
        poisoned: false,
    };
    let frames_crc = crate::format::v2::FramesCrc::default();
    let mut recovery = Recovery { reader, layout, mode, max_epoch: 0, info, state, frames_crc };
    recovery.run()?;
    Ok((recovery.state, recovery.info))
}

impl<D: BlockDevice> Recovery<'_, '_, D> {
    #[inline(never)]
    fn run(&mut self) -> Step<()> {
        // The newest valid header, and the highest epoch anywhere.
        let mut head: Option<Seg> = None;
        for slot in 0..self.layout.slots {
            if let Some(seg) = self.header(slot)? {
                self.max_epoch = self.max_epoch.max(seg.epoch());
                if head.is_none_or(|h| seg.epoch() > h.epoch()) {
                    head = Some(seg);
                }
            }
        }
        let Some(mut head) = head else {
            // A ring of another segment size, whose headers bind their size.
            self.check_size()?;
            // No valid header: the log's first segment (slot 0) may still
            // be there under a damaged one.
            self.check_hidden(0, None)?;
            if self.info.corruption.is_none() {
                self.info.case = RecoveryCase::Empty;
            }
            self.state.max_epoch = self.max_epoch;
            return Ok(());
        };
        let successor = self.layout.next(head.slot);
        if successor != head.slot {
            self.check_hidden(successor, Some(&head))?;
        }
        // Re-headed at most once per slot (point-in-time cuts before gaps).
        for _ in 0..=self.layout.slots {
            if !self.recover_from(&mut head)? {
                return Ok(());
            }
        }
        Err(self.reader.fault.internal(Broken::RecoveryUnsettled))
    }

    /// With no header valid under the configured segment size: whether the
    /// header at offset 0 checks out under another one (a v2 header on
    /// flash binds its segment size without recording it). Then the ring
    /// was written with that size, and opening it with this one is refused.
    #[inline(never)]
    fn check_size(&mut self) -> Step<()> {
        if !Version::V2.built() {
            return Ok(());
        }
        let unit = u64::from(self.reader.device.geometry().erase_unit());
        let capacity = self.reader.device.capacity();
        let len = self.layout.header_read_len().min(self.layout.segment_size);
        // Multiples of the erase unit, then (past 65 536 of them) powers of two.
        let mut size = unit;
        while size <= capacity / 2 {
            if size != self.layout.segment_size {
                let bytes = self.reader.bytes_at(0, 0, len)?;
                if let Ok(h) = crate::format::AnyHeader::decode_in(bytes, size)
                    && h.segment_size == Some(size)
                {
                    return Err(self.reader.fail(Error::Config(super::ConfigError::LayoutMismatch {
                        found_segment_size: size,
                        found_program_unit: h.program_unit,
                    })));
                }
            }
            size = if size / unit < 1 << 16 { size + unit } else { size * 2 };
        }
        Ok(())
    }

    /// Reads the header of `slot`: `None` for anything but a valid v1 header.
    fn header(&mut self, slot: u32) -> Step<Option<Seg>> {
        let abs = self.layout.offset(slot);
        match self.reader.header(slot)? {
            Ok(head) => {
                let size = head.segment_size.unwrap_or(self.layout.segment_size);
                if size != self.layout.segment_size || head.program_unit != self.layout.program_unit {
                    return Err(self.reader.fail(Error::Config(super::ConfigError::LayoutMismatch {
                        found_segment_size: size,
                        found_program_unit: head.program_unit,
                    })));
                }
                Ok(Some(Seg::new(slot, abs, &head, self.layout.segment_size)))
            }
            Err(DecodeError::UnsupportedVersion { found, .. }) => {
                Err(self.reader.fail(Error::UnsupportedVersion { found }))
            }
            Err(_) => Ok(None),
        }
    }

    /// Recovers the log whose newest segment is `head`; returns whether
    /// `head` was replaced by an older one to recover from instead (a
    /// point-in-time cut before a gap), else the state is set.
    #[inline(never)]
    fn recover_from(&mut self, head: &mut Seg) -> Step<bool> {
        // The head segment first: its marks may move the log's start.
        let head_stop = segment::scan(&mut self.reader, head, head.frames_offset(), head.base_lsn, None)?;
        // The log's start its header (v1) or opening mark (v2) gives.
        let marked = self.reader.header(head.slot)?.ok().and_then(|h| h.log_start);
        let log_start = match marked {
            Some(start) => start,
            // A v2 segment that opens without a mark (on media that keep
            // write order): the log starts where the chain of segments
            // before it starts, unless a mark says later.
            None if Version::V2.built() => {
                let (floor, gap) = self.chain_floor(head)?;
                if let Some(slot) = gap {
                    let offset = self.layout.offset(slot);
                    let corruption =
                        Corruption { segment: slot, offset, lsn: floor, damage: Damage::MissingSegment };
                    self.durable_damage(RecoveryCase::MissingSegment, corruption)?;
                    if decide(RecoveryCase::MissingSegment, self.mode) == Action::EndAtDamage {
                        return self.rehead_before(slot, head);
                    }
                }
                floor
            }
            None => 0,
        };
        let log_start = log_start.max(head_stop.log_start).min(head_stop.lsn);
        let mut oldest = *head;
        if let Some(reheaded) = self.walk_back(&mut oldest, head, log_start)? {
            return Ok(reheaded);
        }
        let first_lsn = log_start.max(oldest.base_lsn);
        if !self.check_older(oldest, *head, first_lsn, head_stop.lsn)? {
            self.settle_newest(oldest, first_lsn, *head, head_stop)?;
        }
        Ok(false)
    }

    /// The base LSN of the oldest segment chained before `head`: adjacent
    /// slots back from it of decreasing epoch and base, never into the slot
    /// after `head` (which a log keeps free). With it, the slot where the
    /// chain ends, when that looks like a lost segment: a header that does
    /// not decode and is not blank, or blank space with a segment of an
    /// older epoch before it (a log never leaves a slot blank between two
    /// of its segments).
    fn chain_floor(&mut self, head: &Seg) -> Step<(Lsn, Option<u32>)> {
        let successor = self.layout.next(head.slot);
        let mut oldest = *head;
        loop {
            let slot = self.layout.prev(oldest.slot);
            if slot == successor || slot == head.slot {
                return Ok((oldest.base_lsn, None));
            }
            match self.reader.header(slot)? {
                Ok(h) if h.epoch < oldest.epoch() && h.base_lsn <= oldest.base_lsn => {
                    oldest = Seg::new(slot, self.layout.offset(slot), &h, self.layout.segment_size);
                }
                Ok(_) => return Ok((oldest.base_lsn, None)),
                Err(DecodeError::Blank { .. }) => {
                    let before = self.layout.prev(slot);
                    let older = before != successor
                        && before != head.slot
                        && matches!(self.reader.header(before)?, Ok(b) if b.epoch < oldest.epoch());
                    return Ok((oldest.base_lsn, older.then_some(slot)));
                }
                Err(_) => return Ok((oldest.base_lsn, Some(slot))),
            }
        }
    }

    /// Walks `oldest` back from `head` (where it starts) through adjacent
    /// slots of decreasing epoch to the segment that holds `log_start`; a gap
    /// on the way is a missing segment, handled as the mode says. Returns
    /// what [`rehead_before`](Self::rehead_before) says when a point-in-time
    /// cut before the gap settles recovery otherwise.
    #[inline(always)] // called once: keeps recovery one function in the binary
    fn walk_back(&mut self, oldest: &mut Seg, head: &mut Seg, log_start: Lsn) -> Step<Option<bool>> {
        while oldest.base_lsn > log_start {
            let slot = self.layout.prev(oldest.slot);
            let prev = if slot == head.slot { None } else { self.header(slot)? };
            if let Some(p) = prev.filter(|p| p.epoch() < oldest.epoch() && p.base_lsn <= oldest.base_lsn) {
                *oldest = p;
                continue;
            }
            let corruption = Corruption {
                segment: slot,
                offset: self.layout.offset(slot),
                lsn: log_start,
                damage: Damage::MissingSegment,
            };
            self.durable_damage(RecoveryCase::MissingSegment, corruption)?;
            if decide(RecoveryCase::MissingSegment, self.mode) == Action::EndAtDamage {
                // Keep the log before the gap: the newest valid segment below it.
                return self.rehead_before(slot, head).map(Some);
            }
            self.info.records_lost += oldest.base_lsn - log_start;
            break;
        }
        Ok(None)
    }

    /// Reads the older segments, oldest first: each must reach the next one's
    /// base LSN. Returns whether a point-in-time cut ended the log in one of
    /// them (the state is then set).
    #[inline(always)] // called once: keeps recovery one function in the binary
    fn check_older(&mut self, oldest: Seg, head: Seg, first_lsn: Lsn, head_end: Lsn) -> Step<bool> {
        let mut seg = oldest;
        while seg.slot != head.slot {
            let Some(next) = self.header(self.layout.next(seg.slot))? else {
                return Err(self.reader.fault.internal(Broken::SegmentVanished));
            };
            let (mut pos, mut lsn) = (seg.frames_offset(), seg.base_lsn);
            loop {
                let stop = segment::scan(&mut self.reader, &seg, pos, lsn, Some(next.base_lsn))?;
                let checked_whole = pos == seg.frames_offset();
                let damage = match stop.damage {
                    None if !checked_whole || !Version::V2.built() => break,
                    // The seal of a segment walked whole, in format v2.
                    None => match segment::check_seal(
                        &mut self.reader,
                        &seg,
                        &stop,
                        next.base_lsn,
                        self.mode == RecoveryMode::Strict,
                    )? {
                        None => break,
                        Some(damage) => {
                            let offset = seg.abs + seg.frames_end(self.layout.segment_size);
                            let corruption =
                                Corruption { segment: seg.slot, offset, lsn: next.base_lsn, damage };
                            self.durable_damage(RecoveryCase::DamagedSegment, corruption)?;
                            if decide(RecoveryCase::DamagedSegment, self.mode) == Action::EndAtDamage {
                                // Its records are whole: the log ends after them.
                                self.info.records_lost += head_end.saturating_sub(stop.lsn);
                                self.finish(oldest.slot, first_lsn, &seg, stop.pos, stop.lsn, false);
                                return Ok(true);
                            }
                            break;
                        }
                    },
                    Some(damage) => damage,
                };
                let corruption =
                    Corruption { segment: seg.slot, offset: seg.abs + stop.pos, lsn: stop.lsn, damage };
                self.durable_damage(RecoveryCase::DamagedSegment, corruption)?;
                if decide(RecoveryCase::DamagedSegment, self.mode) == Action::EndAtDamage {
                    self.info.records_lost += head_end.saturating_sub(stop.lsn);
                    self.finish(oldest.slot, first_lsn, &seg, stop.pos, stop.lsn, false);
                    return Ok(true);
                }
                // Skip to the next valid frame of the segment, if any.
                match segment::look_ahead(&mut self.reader, &seg, stop.pos, stop.lsn)?.first_valid {
                    Some((p, l)) if l < next.base_lsn => {
                        self.info.records_lost += l - stop.lsn;
                        (pos, lsn) = (p, l);
                    }
                    _ => {
                        self.info.records_lost += next.base_lsn - stop.lsn;
                        break;
                    }
                }
            }
            seg = next;
        }
        Ok(false)
    }

    /// Decides how the newest segment ends, from where its scan stopped.
    #[inline(always)] // called once: keeps recovery one function in the binary
    fn settle_newest(&mut self, oldest: Seg, first_lsn: Lsn, head: Seg, mut stop: Stop) -> Step<()> {
        let mut skipped = false;
        loop {
            let Some(damage) = stop.damage else {
                return Err(self.reader.fault.internal(Broken::NoStopCause));
            };
            let ahead = segment::look_ahead(&mut self.reader, &head, stop.pos, stop.lsn)?;
            let ordered = self.reader.device.writes_persist_in_order();
            let case = segment::classify(&self.layout, head.version, ordered, &damage, &ahead, stop.lsn);
            let corruption =
                Corruption { segment: head.slot, offset: head.abs + stop.pos, lsn: stop.lsn, damage };
            match decide(case, self.mode) {
                Action::Keep => {
                    // Append in place only at a unit boundary followed by
                    // erased space (flash: no unit programmed twice), or, on
                    // media without erase, by nothing of this epoch.
                    // Nor in a sealed segment (format v2), nor after damage
                    // was skipped (its seal would not cover the frames).
                    let aligned = crate::align::is_aligned(stop.pos, u64::from(self.layout.program_unit));
                    let free = !skipped && ahead.free_after(self.layout.erase_value);
                    self.frames_crc = stop.frames_crc;
                    self.finish(oldest.slot, first_lsn, &head, stop.pos, stop.lsn, aligned && free);
                    return Ok(());
                }
                Action::Refuse => return Err(self.reader.fault.corrupt(corruption)),
                Action::CutTail => {
                    self.info.case = case;
                    self.info.torn_tail = true;
                    self.info.bytes_discarded = ahead.written_after(stop.pos);
                    self.finish(oldest.slot, first_lsn, &head, stop.pos, stop.lsn, false);
                    return Ok(());
                }
                action => {
                    self.durable_damage(case, corruption)?;
                    // Skip to the next frame holding records and go on from
                    // there; in `PointInTime`, or when only frames without
                    // records follow (padding, a mark), the log ends here.
                    match ahead.first_valid.filter(|&(_, l)| l >= stop.lsn) {
                        Some((p, l)) if action == Action::Skip => {
                            self.info.records_lost += l - stop.lsn;
                            stop = segment::scan(&mut self.reader, &head, p, l, None)?;
                            skipped = true;
                        }
                        _ => {
                            // Lost: up to what the marks say was durable, or
                            // on an in-order device up to every record after.
                            let durable = if ordered { ahead.reach } else { ahead.durable_claim };
                            self.info.records_lost += durable.unwrap_or(stop.lsn).saturating_sub(stop.lsn);
                            self.info.bytes_discarded = ahead.written_after(stop.pos);
                            self.finish(oldest.slot, first_lsn, &head, stop.pos, stop.lsn, false);
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// A damaged header in `slot` may hide the segment that would follow
    /// `after` (the newest valid one; with none, the log's first segment):
    /// of the next epoch, starting where `after` ends. Its epoch is never
    /// used again (frames of it may lie in the slot). It was durable if the
    /// slot still holds a mark of that epoch saying records of it were
    /// synced, or, on a device that keeps writes in order, any record of it
    /// (written after the header, which was then whole): then its loss is
    /// damage in the durable region, not a rotation that a power cut
    /// interrupted.
    #[inline(never)]
    fn check_hidden(&mut self, slot: u32, after: Option<&Seg>) -> Step<()> {
        let abs = self.layout.offset(slot);
        let header = self.reader.header(slot)?;
        // A valid header (an older lap) or blank space hides nothing.
        if matches!(header, Ok(_) | Err(DecodeError::Blank { .. })) {
            return Ok(());
        }
        self.max_epoch = self.max_epoch.saturating_add(1);
        // Its records would start where the newest valid segment ends.
        let base = match after {
            Some(head) => {
                segment::scan(&mut self.reader, head, head.frames_offset(), head.base_lsn, None)?.lsn
            }
            None => 0,
        };
        let ordered = self.reader.device.writes_persist_in_order();
        let mut synced = false;
        // The header says nothing of its version: look for frames of both.
        for version in [Version::V1, Version::V2].into_iter().filter(|v| v.built()) {
            let hidden = Seg::unheaded(slot, abs, &self.layout, version, self.max_epoch, base);
            self.reader.scan_ahead(&hidden, hidden.frames_offset() - 1, base, &mut |_, found| {
                synced |= found.mark.is_some_and(|m| m.durable_end > base) || (ordered && found.count > 0);
                !synced
            })?;
        }
        if !synced {
            return Ok(());
        }
        // The records of the hidden segment are lost; count unknown.
        let corruption = Corruption { segment: slot, offset: abs, lsn: base, damage: Damage::MissingSegment };
        self.durable_damage(RecoveryCase::MissingSegment, corruption)
    }

    /// Damage in the durable region: an error in the modes that refuse it;
    /// in the others the first one found is recorded, with the case it led
    /// to, and recovery goes on as [`decide`] says.
    #[inline(never)]
    fn durable_damage(&mut self, case: RecoveryCase, corruption: Corruption) -> Step<()> {
        if decide(case, self.mode) == Action::Refuse {
            return Err(self.reader.fault.corrupt(corruption));
        }
        if self.info.corruption.is_none() {
            self.info.corruption = Some(corruption);
            self.info.case = case;
        }
        Ok(())
    }

    /// Point-in-time before a gap at `gap`: the log is what precedes it.
    /// Returns whether `head` was replaced, else the log is empty.
    fn rehead_before(&mut self, gap: u32, head: &mut Seg) -> Step<bool> {
        let mut slot = self.layout.prev(gap);
        while slot != head.slot {
            if let Some(seg) = self.header(slot)?
                && seg.epoch() < head.epoch()
            {
                *head = seg;
                return Ok(true);
            }
            slot = self.layout.prev(slot);
        }
        // Nothing before the gap: the log is empty.
        self.state.max_epoch = self.max_epoch;
        Ok(false)
    }

    /// Sets the final state: the log from `oldest` to `newest`, ending at
    /// `pos`/`next_lsn` in `newest`.
    #[inline(never)]
    fn finish(&mut self, oldest: u32, first_lsn: Lsn, newest: &Seg, pos: u64, next_lsn: Lsn, in_place: bool) {
        let slots = self.layout.slots;
        let segments = (newest.slot + slots - oldest) % slots + 1;
        let first_lsn = first_lsn.min(next_lsn);
        let held = next_lsn - first_lsn;
        self.info.records = held.saturating_sub(if self.mode == RecoveryMode::SkipDamaged {
            self.info.records_lost
        } else {
            0
        });
        self.info.first_lsn = (held > 0).then_some(first_lsn);
        self.info.last_lsn = (held > 0).then(|| next_lsn - 1);
        self.info.segments = segments;
        let active = in_place.then_some(Active {
            seg: *newest,
            pos,
            buf_start: pos,
            marked_durable: next_lsn,
            frames_crc: self.frames_crc,
        });
        self.state = State {
            oldest: Some(oldest),
            newest: newest.slot,
            active,
            max_epoch: self.max_epoch,
            next_lsn,
            durable_end: next_lsn,
            log_start: first_lsn,
            floor: super::NO_SLOT,
            poisoned: false,
        };
    }
}

//! Recovery of a WAL directory: from the segment files to the log's state,
//! by the decision table in the [module docs](super).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nori_wal_core::Lsn;
use nori_wal_core::format::v2::{self, FramesCrc};
use nori_wal_core::format::{AnyHeader, DecodeError, SegmentHeader, Version};
use nori_wal_core::ring::segment::{Classified, Damage, SegmentReader, Stop};
use nori_wal_core::ring::{Action, RecoveryCase, decide};

use super::config::{OpenCheck, RecoveryMode, WalConfig};
use super::error::{Corruption, Error};
use super::segment::{self, FileDevice, LOCK_FILE};
use crate::fs::{File, Fs, Kind, OpenMode};

mod report;

pub use report::{LoosePermission, RecoveryInfo};
pub(crate) use report::{Recovered, SegMeta, Skip};

/// A segment file found in the directory.
struct Found<F> {
    base: Lsn,
    path: PathBuf,
    file: F,
    /// The file's length when listed.
    len: u64,
    header: Option<AnyHeader>,
}

impl<F> Found<F> {
    /// Whether the file is shorter than its header says it was made: a
    /// version 2 segment created at full size (`PREALLOCATED`) cannot be
    /// left shorter by a crash, so a cut file is damage.
    fn cut_short(&self) -> bool {
        self.header.is_some_and(|h| h.preallocated && self.len < segment::size_of(&h))
    }
}

/// Read buffer of recovery: bounded, whatever the segment size.
const READ_BUFFER: usize = 1 << 20;

type Result<T> = std::result::Result<T, Error>;

/// The core's result over a segment file.
type CoreResult<T> = std::result::Result<T, segment::ReadError>;

struct Recovery<'a, S: Fs> {
    fs: &'a S,
    dir: &'a Path,
    mode: RecoveryMode,
    buffer: Vec<u8>,
    info: RecoveryInfo,
    max_epoch: u64,
    known_start: Lsn,
    /// Whether the decisions are carried out on disk.
    effect: Effect,
    /// Where the newest segment's frames end: the log's end, for counting
    /// what a point-in-time cut drops.
    log_end: Lsn,
    /// The modes the configuration allows the WAL's files and directory.
    file_mode: u32,
    dir_mode: u32,
    /// Threads that walk the sealed segments ahead of the decisions.
    threads: usize,
    /// How much of the log is checked.
    open_check: OpenCheck,
}

/// The read buffer of each thread that walks sealed segments.
const PREWALK_BUFFER: usize = 64 << 10;

/// The most threads recovery uses, whatever the configuration asks.
const MAX_RECOVERY_THREADS: usize = 64;

/// Whether recovery changes the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Carry out the decisions: cut torn tails, remove what the mode drops.
    Repair,
    /// Decide, but change nothing on disk (inspection): files are opened
    /// read-only, and removals and cuts are only reported.
    DryRun,
}

/// Recovers the WAL in `config.dir`, repairing what the mode allows.
///
/// `known_start` is the log's start recorded outside the segments (in the
/// lock file), if any.
///
/// With [`Effect::DryRun`], the decisions are the same but nothing on disk
/// changes.
pub(crate) fn recover<S: Fs>(
    fs: &S,
    config: &WalConfig,
    known_start: Lsn,
    effect: Effect,
) -> Result<Recovered<S::File>> {
    let started = Instant::now();
    let info = RecoveryInfo {
        log: nori_wal_core::ring::RecoveryInfo::default(),
        segments_removed: 0,
        holes: 0,
        bytes_scanned: 0,
        elapsed: Duration::ZERO,
        loose_permissions: Vec::new(),
    };
    let mut recovery = Recovery {
        fs,
        dir: &config.dir,
        mode: config.recovery,
        buffer: vec![0; READ_BUFFER],
        info,
        max_epoch: 0,
        known_start,
        effect,
        log_end: 0,
        file_mode: config.file_mode,
        dir_mode: config.dir_mode,
        threads: match config.recovery_threads {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(8),
            n => n.min(MAX_RECOVERY_THREADS),
        },
        open_check: config.open_check,
    };
    let mut recovered = recovery.run()?;
    recovered.info.elapsed = started.elapsed();
    Ok(recovered)
}

impl<S: Fs> Recovery<'_, S> {
    fn run(&mut self) -> Result<Recovered<S::File>> {
        let mut found = self.list()?;
        self.max_epoch = max_epoch(&found).unwrap_or_else(segment::fresh_epochs);
        // A newest file without a valid header is a rotation that a crash
        // interrupted (segment files get no frame before their header is
        // durable), unless frames follow: then its header was damaged.
        while let Some(last) = found.pop_if(|f| f.header.is_none()) {
            if self.holds_frames(&last)? {
                let c = corruption(&last.path, 0, last.base, Damage::MissingSegment);
                self.refuse_or_note(RecoveryCase::MissingSegment, c)?;
                self.info.records_lost += 1;
            }
            self.remove(last)?;
        }
        let Some(newest) = found.last() else {
            if self.info.corruption.is_none() {
                self.info.case = RecoveryCase::Empty;
            }
            // No segment left (a log emptied from its first LSN, or never
            // written): the log starts, empty, where the lock file says, so
            // that no LSN is given twice.
            let start = self.known_start;
            return Ok(self.finish(Vec::new(), None, start, start, Vec::new()));
        };
        // The log's start: the newest header's, or a later mark's.
        let head_stop = self.walk(newest, None, None)?;
        self.log_end = head_stop.lsn;
        let header_start = newest.header.and_then(|h| h.log_start).unwrap_or(0).max(self.known_start);
        // Bounded by the records the newest segment holds: by where this
        // first walk stops or, past damage among reclaimed records (handled
        // in `settle`), by the valid frames after it.
        let mut log_start = header_start.max(head_stop.log_start);
        if log_start > head_stop.lsn && head_stop.damage.is_some() {
            let header = newest.header.unwrap_or_else(empty_header);
            let ahead = self.with_reader(newest, header, |reader| reader.look_ahead(&head_stop))?;
            log_start = log_start.min(ahead.reach.unwrap_or(head_stop.lsn).max(head_stop.lsn));
        } else {
            log_start = log_start.min(head_stop.lsn.max(newest.base));
        }
        // Files wholly below the start are leftovers of a reclaim.
        match found.iter().rposition(|f| f.header.is_some() && f.base <= log_start) {
            Some(first) => {
                for leftover in found.drain(..first).collect::<Vec<_>>() {
                    self.remove(leftover)?;
                }
            }
            None => {
                // The segment holding the start is missing.
                let c = corruption(&found[0].path, 0, log_start, Damage::MissingSegment);
                if self.refuse_or_note(RecoveryCase::MissingSegment, c)? == Action::EndAtDamage {
                    // Nothing precedes the gap: an empty log.
                    self.info.records_lost += head_stop.lsn.saturating_sub(log_start);
                    for f in found.into_iter().rev() {
                        self.remove(f)?;
                    }
                    return Ok(self.finish(Vec::new(), None, log_start, log_start, Vec::new()));
                }
                self.info.records_lost += found[0].base.saturating_sub(log_start);
            }
        }
        let found = self.drop_damaged_headers(found)?;
        // A hole (format v2) in the first segment may lie below the log's
        // start (reclaimed since): the walks counted it, the log does not
        // hold it.
        let first = found
            .first()
            .filter(|f| f.base < log_start)
            .and_then(|f| Some((f.path.clone(), f.len, f.header.filter(|h| h.version == Version::V2)?)));
        let mut recovered = self.settle(found, log_start)?;
        if recovered.info.holes > 0
            && let Some((path, len, header)) = first
        {
            let below = self.holes_below(&path, len, header, recovered.log_start)?;
            recovered.info.holes -= below.min(recovered.info.holes);
            recovered.info.records =
                self.records_between(recovered.log_start, recovered.next_lsn, &recovered.info);
        }
        Ok(recovered)
    }

    /// The LSNs that holes below `log_start` declare lost in the segment
    /// file at `path` (0 when damage comes first).
    fn holes_below(&mut self, path: &Path, len: u64, header: AnyHeader, log_start: Lsn) -> Result<u64> {
        let file = self.fs.open(path, OpenMode::Read).map_err(|e| Error::io("open", path, e))?;
        let stop = segment::read_segment(&file, path, len, header, &mut self.buffer, false, |reader| {
            reader.walk(None, Some(log_start))
        })?;
        Ok(if stop.damage.is_none() { stop.holes } else { 0 })
    }

    /// The records a log from `log_start` to `next_lsn` holds: its LSNs,
    /// less those lost to damage that `SkipDamaged` skipped and those that
    /// holes declare lost.
    fn records_between(&self, log_start: Lsn, next_lsn: Lsn, info: &RecoveryInfo) -> u64 {
        let held = next_lsn.saturating_sub(log_start);
        let lost = if self.mode == RecoveryMode::SkipDamaged { info.records_lost } else { 0 };
        held.saturating_sub(lost).saturating_sub(info.holes)
    }

    /// Lists the directory: segment files by base LSN, with their headers.
    fn list(&mut self) -> Result<Vec<Found<S::File>>> {
        let names = self.fs.list(self.dir).map_err(|e| Error::io("list", self.dir, e))?;
        let dir_mode = self.fs.mode(self.dir).map_err(|e| Error::io("read the modes of", self.dir, e))?;
        self.info.note_mode(self.dir, dir_mode, self.dir_mode);
        let mut found = Vec::new();
        for name in names {
            let path = self.dir.join(&name);
            if name == LOCK_FILE {
                let mode = self.fs.mode(&path).map_err(|e| Error::io("read the modes of", &path, e))?;
                self.info.note_mode(&path, mode, self.file_mode);
                continue;
            }
            if segment::is_cut_name(&name) {
                // An interrupted `truncate_after`: the segment it copied is
                // still whole under its own name.
                if self.effect == Effect::Repair {
                    self.fs.remove(&path).map_err(|e| Error::io("remove", &path, e))?;
                    self.fs.sync_dir(self.dir).map_err(|e| Error::io("sync", self.dir, e))?;
                }
                continue;
            }
            let Some(base) = segment::parse_name(&name) else {
                if segment::claims_segment(&name) {
                    return Err(Error::ForeignFile { path });
                }
                // Not one of the WAL's names: not its business.
                continue;
            };
            let mode = if self.effect == Effect::DryRun { OpenMode::Read } else { OpenMode::ReadWrite };
            // A segment's name on a directory (or a device, a socket)
            // claims to be the WAL's and is not; a link is refused as such.
            let not_a_file = || matches!(self.fs.kind(&path), Ok(Kind::Dir | Kind::Other));
            let file = match self.fs.open(&path, mode) {
                Ok(_) if not_a_file() => return Err(Error::ForeignFile { path }),
                Ok(file) => file,
                Err(e) if !crate::fs::is_link_refused(&e) && not_a_file() => {
                    return Err(Error::ForeignFile { path });
                }
                Err(e) => return Err(Error::io("open", &path, e)),
            };
            let header = match segment::peek_header(&file).map_err(|e| Error::io("read", &path, e))? {
                Ok(h) if segment::plausible(&h, base) => Some(h),
                Err(DecodeError::UnsupportedVersion { found, .. }) => {
                    return Err(Error::UnsupportedVersion { path, found });
                }
                _ => None,
            };
            let len = file.size().map_err(|e| Error::io("size", &path, e))?;
            let mode = file.mode().map_err(|e| Error::io("read the modes of", &path, e))?;
            self.info.note_mode(&path, mode, self.file_mode);
            found.push(Found { base, path, file, len, header });
        }
        found.sort_by_key(|f| f.base);
        Ok(found)
    }

    /// Runs `op` on a reader of `f`'s segment under `header`.
    fn with_reader<T>(
        &mut self,
        f: &Found<S::File>,
        header: AnyHeader,
        op: impl FnOnce(&mut SegmentReader<'_, '_, FileDevice<'_, S::File>>) -> CoreResult<T>,
    ) -> Result<T> {
        let mapped = self.effect != Effect::DryRun;
        segment::read_segment(&f.file, &f.path, f.len, header, &mut self.buffer, mapped, op)
    }

    /// Whether a file whose header is invalid holds frames of the epoch it
    /// would have had (the one after the highest found), in either version.
    fn holds_frames(&mut self, f: &Found<S::File>) -> Result<bool> {
        let size = f.file.size().map_err(|e| Error::io("size", &f.path, e))?.min(segment::MAX_SEGMENT);
        for version in [Version::V1, Version::V2] {
            let Some(epoch) = segment::next_epoch(self.max_epoch, version) else { continue };
            let offset = segment::frames_offset(version);
            if size <= offset {
                continue;
            }
            let header: AnyHeader = match version {
                Version::V1 => match SegmentHeader::new(epoch, f.base, size, 1) {
                    Ok(h) => h.into(),
                    Err(_) => continue,
                },
                Version::V2 => match v2::SegmentHeader::new(epoch, f.base, 1).and_then(|h| h.sized(size)) {
                    Ok(h) => h.into(),
                    Err(_) => continue,
                },
            };
            self.info.bytes_scanned += size;
            let stop = Stop {
                pos: offset - 1,
                lsn: f.base,
                damage: None,
                log_start: 0,
                durable_end: 0,
                frames_crc: FramesCrc::default(),
                holes: 0,
            };
            let ahead = self.with_reader(f, header, |reader| reader.look_ahead(&stop))?;
            if ahead.furthest_end.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Walks the frames of `f` from `from` until damage or `stop_at`.
    fn walk(&mut self, f: &Found<S::File>, from: Option<(u64, Lsn)>, stop_at: Option<Lsn>) -> Result<Stop> {
        let Some(header) = f.header else {
            return Err(Error::Corrupt(corruption(&f.path, 0, f.base, Damage::MissingSegment)));
        };
        let stop = self.with_reader(f, header, |reader| reader.walk(from, stop_at))?;
        self.info.bytes_scanned += stop.pos.saturating_sub(from.map_or(0, |(p, _)| p));
        Ok(stop)
    }

    /// Handles files, other than the newest, whose header is damaged or
    /// whose epoch is out of order: a missing segment.
    fn drop_damaged_headers(&mut self, mut found: Vec<Found<S::File>>) -> Result<Vec<Found<S::File>>> {
        let mut i = 0;
        let mut epoch = 0;
        while i < found.len() {
            match found[i].header {
                // Epochs grow along the log; a version 2 segment after
                // version 1 ones whose epochs are beyond its range takes a
                // fresh one from the clock.
                Some(h) if h.epoch > epoch || (h.version == Version::V2 && epoch > v2::MAX_EPOCH) => {
                    epoch = h.epoch;
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let c = corruption(&found[i].path, 0, found[i].base, Damage::MissingSegment);
            let action = self.refuse_or_note(RecoveryCase::MissingSegment, c)?;
            let end = found.get(i + 1).map(|f| f.base);
            if action == Action::EndAtDamage {
                // The log ends before the damaged file: drop it and all after.
                // Everything from it to the end of the newest segment.
                self.info.records_lost += self.log_end.saturating_sub(found[i].base).max(1);
                while found.len() > i {
                    if let Some(f) = found.pop() {
                        self.remove(f)?;
                    }
                }
                return Ok(found);
            }
            // SkipDamaged: its records are lost; the file stays as it is.
            // (Past the first file, the walk of the one before it meets the
            // gap and counts them.)
            if i == 0 {
                self.info.records_lost += end.map_or(1, |e| e.saturating_sub(found[i].base));
            }
            found.remove(i);
        }
        Ok(found)
    }

    /// Walks the retained segments, oldest first, and settles how the log
    /// ends.
    fn settle(&mut self, found: Vec<Found<S::File>>, log_start: Lsn) -> Result<Recovered<S::File>> {
        let Some(last) = found.len().checked_sub(1) else {
            return Ok(self.finish(Vec::new(), None, log_start, log_start, Vec::new()));
        };
        if self.effect == Effect::Repair {
            // What recovery keeps is durable from here on, whatever reached
            // the disk before (a killed process leaves its writes in the
            // page cache).
            for f in &found {
                f.file.sync_data().map_err(|e| Error::io("sync", &f.path, e))?;
            }
        }
        let mut skips = Vec::new();
        let mut claims = None;
        let trusted = self.trusted(&found)?;
        let mut prewalked = self.prewalk(&found, &trusted);
        for i in 0..last {
            if trusted[i] {
                continue;
            }
            let next_base = found[i + 1].base;
            let mut from = None;
            loop {
                let stop = match prewalked.get_mut(i).and_then(Option::take).filter(|_| from.is_none()) {
                    Some(stop) => {
                        let stop = stop?;
                        self.info.bytes_scanned += stop.pos;
                        stop
                    }
                    None => self.walk(&found[i], from, Some(next_base))?,
                };
                self.info.holes += stop.holes;
                let Some(damage) = stop.damage else {
                    // At the next file's base: that file must start where
                    // this one's records end. Records running on past it
                    // mean the two disagree (a segment of another log, or
                    // one copied in): the later file is not this log's
                    // continuation, and its records are never returned.
                    let on = self.walk(&found[i], Some((stop.pos, stop.lsn)), None)?;
                    if on.lsn > stop.lsn {
                        let c = corruption(&found[i + 1].path, 0, next_base, Damage::MissingSegment);
                        // Every mode that does not refuse ends the log here
                        // (what follows cannot be told from the intruder's).
                        if self.refuse_or_note(RecoveryCase::MissingSegment, c)? == Action::EndAtDamage {
                            self.info.records_lost +=
                                self.log_end.max(found[last].base).saturating_sub(stop.lsn);
                        }
                        return self.cut_end(found, i, stop, log_start, skips);
                    }
                    // A segment walked whole: its seal (format v2) must
                    // agree with its frames.
                    if from.is_none()
                        && let Some(c) = self.seal_damage(&found[i], &stop, next_base)?
                        && self.refuse_or_note(RecoveryCase::DamagedSegment, c)? == Action::EndAtDamage
                    {
                        // Its records are whole: the log ends after them.
                        self.info.records_lost += self.log_end.max(found[last].base).saturating_sub(stop.lsn);
                        return self.cut_end(found, i, stop, log_start, skips);
                    }
                    break;
                };
                let header = found[i].header.unwrap_or_else(empty_header);
                let ahead = self.with_reader(&found[i], header, |reader| reader.look_ahead(&stop))?;
                // Damage among reclaimed records is no loss: read on from
                // the next valid frame that still reaches the log's start.
                if stop.lsn < log_start
                    && let Some((p, l)) = ahead.first_valid.filter(|&(_, l)| l <= log_start && l < next_base)
                {
                    skips.push(Skip { base: found[i].base, from: stop.pos, to: p, lsn: l });
                    from = Some((p, l));
                    continue;
                }
                // Segments are not synced when they are sealed: past the
                // durable point that every later segment's marks record (the
                // first one written when the segment was created), this
                // segment's tail was in flight at a crash.
                if !found[i].cut_short() && self.later_claim(&found, i + 1, &mut claims)? <= stop.lsn {
                    let c = corruption(&found[i].path, stop.pos, stop.lsn, damage);
                    if decide(RecoveryCase::InFlight, self.mode) == Action::Refuse {
                        return Err(Error::Corrupt(c));
                    }
                    if self.info.corruption.is_none() {
                        self.info.case = RecoveryCase::InFlight;
                    }
                    self.info.torn_tail = true;
                    self.info.bytes_discarded = ahead.written_after(stop.pos);
                    if stop.lsn < log_start {
                        // Nothing from the log's start on survived: the log
                        // is empty, and starts there.
                        for f in found.into_iter().rev() {
                            self.remove(f)?;
                        }
                        return Ok(self.finish(Vec::new(), None, log_start, log_start, Vec::new()));
                    }
                    return self.cut_end(found, i, stop, log_start, skips);
                }
                // A segment whose frames end cleanly short of the next one's
                // base: the records between are in a segment that is gone.
                let gap = ahead.first_valid.is_none()
                    && ahead.furthest_end.is_none()
                    && matches!(
                        damage,
                        Damage::Frame(DecodeError::Blank { .. } | DecodeError::Truncated { .. })
                    );
                let (case, c) = if found[i].cut_short() {
                    (RecoveryCase::DamagedSegment, cut_short(&found[i], stop.lsn))
                } else if gap {
                    let next = &found[i + 1];
                    (
                        RecoveryCase::MissingSegment,
                        corruption(&next.path, 0, stop.lsn, Damage::MissingSegment),
                    )
                } else {
                    (RecoveryCase::DamagedSegment, corruption(&found[i].path, stop.pos, stop.lsn, damage))
                };
                if self.refuse_or_note(case, c)? == Action::EndAtDamage {
                    // Dropped: from the damage to the end of the newest segment.
                    self.info.records_lost += self.log_end.max(found[last].base).saturating_sub(stop.lsn);
                    return self.cut_end(found, i, stop, log_start, skips);
                }
                match ahead.first_valid {
                    Some((p, l)) if l < next_base && l >= stop.lsn => {
                        self.info.records_lost += l - stop.lsn;
                        skips.push(Skip { base: found[i].base, from: stop.pos, to: p, lsn: l });
                        from = Some((p, l));
                    }
                    _ => {
                        // Nothing more in this segment: on to the next one.
                        self.info.records_lost += next_base.saturating_sub(stop.lsn);
                        skips.push(Skip {
                            base: found[i].base,
                            from: stop.pos,
                            to: u64::MAX,
                            lsn: next_base,
                        });
                        break;
                    }
                }
            }
        }
        self.settle_newest(found, log_start, skips)
    }

    /// Walks every segment but the newest, from its start to the next
    /// one's base, on [`threads`](Self::threads) threads at once: what
    /// [`settle`](Self::settle) then decides on, in order, as if it had
    /// walked them itself (`None` where it walks on its own: one thread,
    /// or a file without a header). Each thread reads through its own
    /// buffer, so memory stays bounded whatever the log's size.
    fn prewalk(&self, found: &[Found<S::File>], trusted: &[bool]) -> Vec<Option<Result<Stop>>> {
        let sealed = found.len().saturating_sub(1);
        let threads = self.threads.min(sealed);
        if threads <= 1 {
            return Vec::new();
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mapped = self.effect != Effect::DryRun;
        let walk_one = |buffer: &mut Vec<u8>, i: usize| {
            if trusted[i] {
                return None;
            }
            let f = &found[i];
            let header = f.header?;
            let stop_at = found[i + 1].base;
            Some(segment::read_segment(&f.file, &f.path, f.len, header, buffer, mapped, |reader| {
                reader.walk(None, Some(stop_at))
            }))
        };
        let mut results: Vec<Option<Result<Stop>>> = (0..sealed).map(|_| None).collect();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut buffer = vec![0u8; PREWALK_BUFFER];
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if i >= sealed {
                                return done;
                            }
                            done.push((i, walk_one(&mut buffer, i)));
                        }
                    })
                })
                .collect();
            for worker in workers {
                // A panicking walk leaves its segments to the ordered pass.
                for (i, stop) in worker.join().unwrap_or_default() {
                    results[i] = stop;
                }
            }
        });
        results
    }

    /// Which of `found` are trusted by their seals, unread
    /// ([`OpenCheck::Newest`]; never under `Strict`): segments of format v2
    /// older than the newest `n` whose seal checks out and records as many
    /// LSNs as lie between their base and the next segment's.
    fn trusted(&mut self, found: &[Found<S::File>]) -> Result<Vec<bool>> {
        let mut trusted = vec![false; found.len()];
        let n = match self.open_check {
            OpenCheck::Newest(n) if self.mode != RecoveryMode::Strict => n.max(1),
            _ => return Ok(trusted),
        };
        for i in 0..found.len().saturating_sub(n) {
            trusted[i] = sealed_by(&found[i], found[i + 1].base)?;
        }
        Ok(trusted)
    }

    /// The highest durable point that the marks of `found[from..]` record
    /// (each file read once, on first need).
    fn later_claim(
        &mut self,
        found: &[Found<S::File>],
        from: usize,
        claims: &mut Option<Vec<Lsn>>,
    ) -> Result<Lsn> {
        if claims.is_none() {
            let mut each = Vec::with_capacity(found.len());
            for f in found {
                let claim = match f.header {
                    Some(header) => self.with_reader(f, header, |reader| {
                        let stop = reader.walk(None, None)?;
                        let ahead = match stop.damage {
                            Some(_) => reader.look_ahead(&stop)?.durable_claim.unwrap_or(0),
                            None => 0,
                        };
                        Ok(stop.durable_end.max(ahead))
                    })?,
                    None => 0,
                };
                each.push(claim);
            }
            // Suffix maxima: entry `j` covers files `j..`.
            for j in (0..each.len().saturating_sub(1)).rev() {
                each[j] = each[j].max(each[j + 1]);
            }
            *claims = Some(each);
        }
        Ok(claims.as_ref().and_then(|c| c.get(from).copied()).unwrap_or(0))
    }

    /// Decides how the newest segment ends.
    fn settle_newest(
        &mut self,
        mut found: Vec<Found<S::File>>,
        log_start: Lsn,
        mut skips: Vec<Skip>,
    ) -> Result<Recovered<S::File>> {
        let last = found.len() - 1;
        let header = found[last].header.unwrap_or_else(empty_header);
        let mut from = None;
        loop {
            let stop = self.walk(&found[last], from, None)?;
            self.info.holes += stop.holes;
            if stop.damage.is_some() && stop.lsn < log_start {
                // Damage among reclaimed records is no loss (as above).
                let ahead = self.with_reader(&found[last], header, |reader| reader.look_ahead(&stop))?;
                if let Some((p, l)) = ahead.first_valid.filter(|&(_, l)| l <= log_start) {
                    skips.push(Skip { base: found[last].base, from: stop.pos, to: p, lsn: l });
                    from = Some((p, l));
                    continue;
                }
            }
            let classified = self.with_reader(&found[last], header, |reader| reader.classify_end(&stop))?;
            // A file made at full size and now shorter was cut by something
            // other than a crash: what it held past its end is lost.
            if found[last].cut_short() && !matches!(classified, Classified::DurableDamage { .. }) {
                let c = cut_short(&found[last], stop.lsn);
                self.refuse_or_note(RecoveryCase::DurableDamage, c)?;
                return self.cut_end(found, last, stop, log_start, skips);
            }
            let c =
                corruption(&found[last].path, stop.pos, stop.lsn, stop.damage.unwrap_or(Damage::Unsupported));
            match classified {
                Classified::Clean { free_after: true } => {
                    let segments = found.iter().map(meta_of).collect();
                    let frames_crc = from.is_none().then_some(stop.frames_crc);
                    let active = found.pop().map(|f| (f.file, stop.pos, frames_crc));
                    return Ok(self.finish(segments, active, stop.lsn, log_start, skips));
                }
                Classified::Clean { free_after: false } => {
                    return self.cut_end(found, last, stop, log_start, skips);
                }
                Classified::TornTail { discarded } | Classified::InFlight { discarded } => {
                    let case = if matches!(classified, Classified::TornTail { .. }) {
                        RecoveryCase::TornTail
                    } else {
                        RecoveryCase::InFlight
                    };
                    if decide(case, self.mode) == Action::Refuse {
                        return Err(Error::Corrupt(c));
                    }
                    if self.info.corruption.is_none() {
                        self.info.case = case;
                    }
                    self.info.torn_tail = true;
                    self.info.bytes_discarded = discarded;
                    return self.cut_end(found, last, stop, log_start, skips);
                }
                Classified::DurableDamage { ahead } => {
                    let action = self.refuse_or_note(RecoveryCase::DurableDamage, c)?;
                    let resume = ahead.first_valid.filter(|&(_, l)| l >= stop.lsn);
                    match (action, resume) {
                        (Action::Skip, Some((p, l))) => {
                            self.info.records_lost += l - stop.lsn;
                            skips.push(Skip { base: found[last].base, from: stop.pos, to: p, lsn: l });
                            from = Some((p, l));
                        }
                        _ => {
                            let claim = ahead.durable_claim.unwrap_or(stop.lsn);
                            self.info.records_lost += claim.saturating_sub(stop.lsn);
                            self.info.bytes_discarded = ahead.written_after(stop.pos);
                            return self.cut_end(found, last, stop, log_start, skips);
                        }
                    }
                }
                _ => return Err(Error::Corrupt(c)),
            }
        }
    }

    /// The log ends at `stop` in `found[i]`: later files are removed (newest
    /// first, each durably), the file is cut there with `set_len` (and
    /// removed if nothing of the log is left in it), and appends go to a
    /// new segment.
    fn cut_end(
        &mut self,
        mut found: Vec<Found<S::File>>,
        i: usize,
        stop: Stop,
        log_start: Lsn,
        skips: Vec<Skip>,
    ) -> Result<Recovered<S::File>> {
        while found.len() > i + 1 {
            if let Some(f) = found.pop() {
                self.remove(f)?;
            }
        }
        if let Some(f) = found.pop() {
            if stop.lsn == f.base {
                self.remove(f)?;
            } else {
                let size = f.file.size().map_err(|e| Error::io("size", &f.path, e))?;
                if (size > stop.pos || f.cut_short()) && self.effect == Effect::Repair {
                    f.file.set_len(stop.pos).map_err(|e| Error::io("cut the tail of", &f.path, e))?;
                    // A file whose header says it was made at full size is
                    // made so again (zeros after the cut): recovery takes a
                    // shorter one for damage.
                    if let Some(h) = f.header.filter(|h| h.preallocated) {
                        f.file
                            .allocate(segment::size_of(&h))
                            .map_err(|e| Error::io("allocate", &f.path, e))?;
                    }
                    f.file.sync_data().map_err(|e| Error::io("sync", &f.path, e))?;
                    self.fs.sync_dir(self.dir).map_err(|e| Error::io("sync", self.dir, e))?;
                }
                found.push(f);
            }
        }
        let segments = found.iter().map(meta_of).collect();
        Ok(self.finish(segments, None, stop.lsn, log_start, skips))
    }

    /// Removes a segment file durably.
    fn remove(&mut self, f: Found<S::File>) -> Result<()> {
        drop(f.file);
        if self.effect == Effect::Repair {
            self.fs.remove(&f.path).map_err(|e| Error::io("remove", &f.path, e))?;
            self.fs.sync_dir(self.dir).map_err(|e| Error::io("sync", self.dir, e))?;
        }
        self.info.segments_removed += 1;
        Ok(())
    }

    /// The damage the seal of `f` (format v2) shows, when its frames were
    /// walked whole to `stop` and the next segment starts at `end`; `None`
    /// when it holds, or the segment has no seal (version 1, or a crash
    /// came before it was written).
    fn seal_damage(&mut self, f: &Found<S::File>, stop: &Stop, end: Lsn) -> Result<Option<Corruption>> {
        let Some(header) = f.header.filter(|h| h.version == Version::V2) else { return Ok(None) };
        let strict = self.mode == RecoveryMode::Strict;
        let damage = self.with_reader(f, header, |reader| reader.check_seal(stop, end, strict))?;
        let offset = segment::frames_end(header.version, segment::size_of(&header));
        Ok(damage.map(|d| corruption(&f.path, offset, end, d)))
    }

    /// Refuses damage in the modes that refuse it; else notes it (the
    /// first one found) and returns what to do with it.
    fn refuse_or_note(&mut self, case: RecoveryCase, c: Corruption) -> Result<Action> {
        let action = decide(case, self.mode);
        if action == Action::Refuse {
            return Err(Error::Corrupt(c));
        }
        if self.info.corruption.is_none() {
            self.info.corruption = Some(c);
            self.info.case = case;
        }
        Ok(action)
    }

    fn finish(
        &mut self,
        segments: Vec<SegMeta>,
        active: Option<(S::File, u64, Option<FramesCrc>)>,
        next_lsn: Lsn,
        log_start: Lsn,
        skips: Vec<Skip>,
    ) -> Recovered<S::File> {
        let log_start = log_start.min(next_lsn);
        let held = next_lsn - log_start;
        self.info.records = self.records_between(log_start, next_lsn, &self.info);
        self.info.first_lsn = (held > 0).then_some(log_start);
        self.info.last_lsn = (held > 0).then(|| next_lsn - 1);
        self.info.segments = u32::try_from(segments.len()).unwrap_or(u32::MAX);
        Recovered {
            segments,
            active,
            next_lsn,
            log_start,
            max_epoch: self.max_epoch,
            skips,
            info: self.info.clone(),
        }
    }
}

/// The highest epoch of the segments `found`, which the next segment's
/// exceeds; at a log's change from version 1 segments with epochs beyond
/// version 2's range to version 2 ones, the highest of the version 2 ones.
fn max_epoch<F>(found: &[Found<F>]) -> Option<u64> {
    let headers = || found.iter().filter_map(|f| f.header);
    let max = headers().map(|h| h.epoch).max()?;
    let newest_v2 = headers().last().is_some_and(|h| h.version == Version::V2);
    if max > v2::MAX_EPOCH && newest_v2 {
        return headers().filter(|h| h.version == Version::V2).map(|h| h.epoch).max();
    }
    Some(max)
}

/// Stands in for a header where one was checked to exist.
const EMPTY_HEADER: SegmentHeader = match SegmentHeader::new(1, 0, segment::MIN_SEGMENT, 1) {
    Ok(h) => h,
    Err(_) => panic!("a valid header"),
};

/// [`EMPTY_HEADER`] of either version.
fn empty_header() -> AnyHeader {
    EMPTY_HEADER.into()
}

fn meta_of<F>(f: &Found<F>) -> SegMeta {
    let h = f.header.unwrap_or_else(empty_header);
    SegMeta {
        base: f.base,
        epoch: h.epoch,
        size: segment::size_of(&h),
        path: f.path.clone(),
        version: h.version,
        preallocated: h.preallocated,
    }
}

/// Whether the seal of `f` (format v2, at full size) checks out and records
/// the LSNs up to `end`, the next segment's first.
fn sealed_by<F: File>(f: &Found<F>, end: Lsn) -> Result<bool> {
    let Some(h) = f.header.filter(|h| h.version == Version::V2) else { return Ok(false) };
    let size = segment::size_of(&h);
    if f.len < size || end < h.base_lsn {
        return Ok(false);
    }
    let mut slot = [0u8; v2::SEAL_LEN];
    crate::fs::read_exact_at(&f.file, &mut slot, segment::frames_end(h.version, size))
        .map_err(|e| Error::io("read", &f.path, e))?;
    let key = nori_wal_core::format::EpochKey::new(h.epoch);
    let Ok(frame) = v2::decode_frame(&slot, &key, h.base_lsn) else { return Ok(false) };
    Ok(
        matches!(frame.body(), Ok(nori_wal_core::format::Body::Seal(seal)) if u64::from(seal.records) == end - h.base_lsn),
    )
}

/// The damage of a file `f` cut short ([`Found::cut_short`]), whose frames
/// end at LSN `lsn`.
fn cut_short<F>(f: &Found<F>, lsn: Lsn) -> Corruption {
    let size = f.header.map_or(0, |h| segment::size_of(&h));
    corruption(&f.path, f.len, lsn, Damage::CutShort { len: f.len, size })
}

fn corruption(path: &Path, offset: u64, lsn: Lsn, damage: Damage) -> Corruption {
    Corruption { segment: path.to_path_buf(), offset, lsn, damage }
}

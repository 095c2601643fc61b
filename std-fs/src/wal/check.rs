//! Checking a log that a writer may be appending to at the same moment,
//! without crying wolf.
//!
//! A reader in another process cannot take a consistent copy of files that
//! are being written: it may read blank space where the writer's bytes land
//! a moment later, then, further on, frames or a mark the writer added
//! meanwhile, and take what it missed for damage. So when the log's lock is
//! held (a writer has it open) and a check finds damage, the check is made
//! again, after a pause, until it gives the same damage twice: damage that
//! persists while the writer goes on is reported, damage a re-read
//! disproves is not. The newest frames of a log in use are being written:
//! a torn frame there is a write in flight, not a torn tail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nori_wal_core::Lsn;

use super::config::RecoveryMode;
use super::error::{Corruption, Error};
use super::follow::{FollowConfig, Follower};
use super::inspect::Inspection;
use super::segment;
use crate::fs::{File, Fs, OpenMode, StdFs};

type Result<T> = std::result::Result<T, Error>;

/// Checks made at most on a log in use before giving up.
const ATTEMPTS: u32 = 20;

/// The pause after the first check of a log in use that found damage;
/// each later pause is longer by as much (at most a second).
const PAUSE: Duration = Duration::from_millis(50);

/// Whether the lock of the WAL in `dir` is held (a writer has it open).
pub(crate) fn lock_held<S: Fs>(fs: &S, dir: &Path) -> Result<bool> {
    let path = dir.join(segment::LOCK_FILE);
    match fs.open(&path, OpenMode::Read) {
        // Held only for this question: a writer opening meanwhile tries its
        // lock again.
        Ok(lock) => Ok(!lock.try_lock_shared().map_err(|e| Error::io("lock", &path, e))?),
        Err(_) => Ok(false),
    }
}

/// One check: its result, whether the log was in use, and the damage it
/// found.
struct Attempt<T> {
    result: Result<T>,
    in_use: bool,
    damage: Option<Corruption>,
}

/// Runs `check` until its answer is final: at once on a log at rest, or
/// when it finds no damage; on a log in use, when it finds the same damage
/// twice in a row. Returns the answer and the number of checks made.
fn settle<T>(dir: &Path, mut check: impl FnMut() -> Result<Attempt<T>>) -> Result<(T, u32)> {
    let mut seen: Option<Corruption> = None;
    for attempt in 1..=ATTEMPTS {
        let Attempt { result, in_use, damage } = check()?;
        let done = match (&damage, &seen) {
            _ if !in_use => true,
            (None, _) => true,
            (Some(now), Some(before)) => now == before,
            (Some(_), None) => false,
        };
        if done {
            return result.map(|t| (t, attempt));
        }
        seen = damage;
        std::thread::sleep((PAUSE * attempt).min(Duration::from_secs(1)));
    }
    Err(Error::Unsettled { dir: dir.to_path_buf(), attempts: ATTEMPTS })
}

impl<S: Fs + Clone> Inspection<S> {
    /// [`Inspection::open_in`], for a log that a writer may have open. On a
    /// log in use (its lock held), damage in the newest segment is where the
    /// writer's writes were in flight when read: the snapshot ends there
    /// (its case is `InFlight`). Damage elsewhere is looked at again, after
    /// a pause, until two looks in a row find the same: what it reports was
    /// not a write in flight.
    ///
    /// ```
    /// use nori_wal::blocking::Wal;
    /// use nori_wal::fs::StdFs;
    /// use nori_wal::wal::Inspection;
    /// use nori_wal::{Record, RecoveryMode, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-settled-doc-{}", std::process::id()));
    /// let (wal, _) = Wal::open(WalConfig::new(&dir))?;
    /// wal.append(&Record::raw(b"x"))?;
    /// let look = Inspection::open_settled_in(StdFs, &dir, RecoveryMode::TolerateTornTail)?;
    /// assert!(look.in_use());
    /// assert_eq!(look.info().records, 1);
    /// # drop(wal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Inspection::open`]; [`Error::Unsettled`] when every check of a
    /// log in use found other damage.
    pub fn open_settled_in(fs: S, dir: impl Into<PathBuf>, mode: RecoveryMode) -> Result<Self> {
        let dir = dir.into();
        settle(&dir, || {
            let result = Inspection::open_in(fs.clone(), &dir, mode);
            let (in_use, damage) = match &result {
                Ok(look) => (look.in_use(), look.info().corruption.clone()),
                Err(Error::Corrupt(c)) => (lock_held(&fs, &dir)?, Some(c.clone())),
                Err(_) => (false, None),
            };
            if in_use
                && let Some(c) = &damage
                && newest_segment(&fs, &dir)?.is_some_and(|n| n == c.segment)
            {
                // The writer's end: the snapshot ends where its writes were
                // in flight when read.
                let mut look = Inspection::open_in(fs.clone(), &dir, RecoveryMode::PointInTime)?;
                look.end_in_flight();
                return Ok(Attempt { result: Ok(look), in_use, damage: None });
            }
            Ok(Attempt { result, in_use, damage })
        })
        .map(|(look, _)| look)
    }
}

/// The base LSN of the newest segment file in `dir`, by name.
fn newest_base<S: Fs>(fs: &S, dir: &Path) -> Result<Option<Lsn>> {
    let names = fs.list(dir).map_err(|e| Error::io("list", dir, e))?;
    Ok(names.iter().filter_map(|n| segment::parse_name(n)).max())
}

/// The path of the newest segment file in `dir`, by name.
fn newest_segment<S: Fs>(fs: &S, dir: &Path) -> Result<Option<PathBuf>> {
    Ok(newest_base(fs, dir)?.map(|base| dir.join(segment::file_name(base))))
}

/// Where a log in use ends now: a follower reads its newest segment alone,
/// to where the written frames stop.
fn current_end<S: Fs + Clone>(fs: &S, dir: &Path) -> Result<Lsn> {
    let Some(base) = newest_base(fs, dir)? else { return Ok(0) };
    let mut probe = Follower::open_in(fs.clone(), FollowConfig::new(dir).from(base))?;
    loop {
        match probe.try_next() {
            Ok(Some(_)) | Err(Error::Corrupt(_) | Error::Reclaimed { .. } | Error::Cut { .. }) => {}
            Ok(None) => return Ok(probe.next_lsn()),
            Err(e) => return Err(e),
        }
    }
}

impl Inspection<StdFs> {
    /// [`Inspection::open_settled_in`] on the operating system's file
    /// system.
    ///
    /// ```
    /// use nori_wal::wal::Inspection;
    /// use nori_wal::RecoveryMode;
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-settled2-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let look = Inspection::open_settled(&dir, RecoveryMode::TolerateTornTail)?;
    /// assert!(!look.in_use());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Inspection::open_settled_in`].
    pub fn open_settled(dir: impl Into<PathBuf>, mode: RecoveryMode) -> Result<Self> {
        Self::open_settled_in(StdFs, dir, mode)
    }
}

/// What [`verify`] found, reading and checking every record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// Records read and checked.
    pub records: u64,
    /// The newest segment ends in a torn frame: the last write was cut by
    /// a crash (never set for a log in use, whose newest frames are being
    /// written).
    pub torn_tail: bool,
    /// Damage the check stopped at: the mode refused it, or reading met it.
    pub corruption: Option<Corruption>,
    /// Damage that a mode which reads past damage (`PointInTime`,
    /// `SkipDamaged`) read past: the first of it.
    pub read_past: Option<Corruption>,
    /// A writer had the log open: the figures are a snapshot.
    pub in_use: bool,
    /// The LSN the next append would get, as read.
    pub next_lsn: Lsn,
    /// Checks made (more than one on a log in use where a check found
    /// damage that a later one did not confirm).
    pub checks: u32,
}

/// Reads and checks every frame of the WAL in `dir` as recovery in `mode`
/// would, without the lock and without changing a byte. `progress` is told
/// the records read so far and the total now and then.
///
/// On a log in use (a writer has its lock), the records are read through
/// a [`Follower`](crate::blocking::Follower) up to where the log ended when
/// the check began: damage is reported only once the writer is past it and
/// a fresh read confirms it, and the newest frames, being written, are not
/// judged.
///
/// ```
/// use nori_wal::blocking::Wal;
/// use nori_wal::{Record, RecoveryMode, WalConfig};
/// # let dir = std::env::temp_dir().join(format!("nori-wal-verify-doc-{}", std::process::id()));
/// let (wal, _) = Wal::open(WalConfig::new(&dir))?;
/// wal.append(&Record::raw(b"x"))?;
/// let found = nori_wal::wal::verify(&dir, RecoveryMode::TolerateTornTail, |_, _| {})?;
/// assert_eq!((found.records, found.in_use, found.corruption, found.read_past), (1, true, None, None));
/// # drop(wal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// As [`Inspection::open`], but damage is reported in [`Verified`], not as
/// [`Error::Corrupt`]; [`Error::Unsettled`] when every check of a log in
/// use found other damage.
pub fn verify(dir: impl AsRef<Path>, mode: RecoveryMode, progress: impl FnMut(u64, u64)) -> Result<Verified> {
    verify_in(StdFs, dir, mode, progress)
}

/// [`verify`] on the file system `fs`.
///
/// ```
/// use nori_wal::fs::StdFs;
/// use nori_wal::RecoveryMode;
/// # let dir = std::env::temp_dir().join(format!("nori-wal-verify-in-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let found = nori_wal::wal::verify_in(StdFs, &dir, RecoveryMode::Strict, |_, _| {})?;
/// assert_eq!(found.records, 0);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// As [`verify`].
pub fn verify_in<S: Fs + Clone>(
    fs: S,
    dir: impl AsRef<Path>,
    mode: RecoveryMode,
    mut progress: impl FnMut(u64, u64),
) -> Result<Verified> {
    let dir = dir.as_ref();
    if lock_held(&fs, dir)? {
        return verify_live(fs, dir, &mut progress);
    }
    let (mut found, checks) = settle(dir, || {
        let found = verify_once(&fs, dir, mode, &mut progress)?;
        let (in_use, damage) = (found.in_use, found.corruption.clone().or_else(|| found.read_past.clone()));
        Ok(Attempt { result: Ok(found), in_use, damage })
    })?;
    found.checks = checks;
    if found.in_use {
        found.torn_tail = false;
    }
    Ok(found)
}

/// [`verify`] of a log a writer has open: a [`Follower`] reads every record
/// up to where the log ended when the check began, and reports only damage
/// the writer is past and a fresh read confirms.
fn verify_live<S: Fs + Clone>(fs: S, dir: &Path, progress: &mut impl FnMut(u64, u64)) -> Result<Verified> {
    // Where to stop: where the log ends when the check begins (the writer
    // goes on meanwhile), read from the newest segment alone.
    let end = current_end(&fs, dir)?;
    let mut follower = Follower::open_in(fs, FollowConfig::new(dir))?;
    let first = follower.next_lsn();
    let mut count = Count { records: 0, total: end.saturating_sub(first), progress };
    let (mut corruption, mut checks) = (None, 1);
    while follower.next_lsn() < end {
        match follower.try_next() {
            Ok(Some(_)) => count.one(),
            Ok(None) => break,
            Err(Error::Corrupt(c)) => {
                checks += 1;
                corruption.get_or_insert(c);
            }
            // The writer reclaimed or cut the log meanwhile: read on.
            Err(Error::Reclaimed { .. } | Error::Cut { .. }) => checks += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(Verified {
        records: count.records,
        torn_tail: false,
        corruption,
        read_past: None,
        in_use: true,
        next_lsn: follower.next_lsn(),
        checks,
    })
}

fn verify_once<S: Fs + Clone>(
    fs: &S,
    dir: &Path,
    mode: RecoveryMode,
    progress: &mut impl FnMut(u64, u64),
) -> Result<Verified> {
    let look = match Inspection::open_in(fs.clone(), dir, mode) {
        Ok(look) => look,
        Err(Error::Corrupt(c)) => {
            return Ok(Verified {
                records: 0,
                torn_tail: false,
                corruption: Some(c),
                read_past: None,
                in_use: lock_held(fs, dir)?,
                next_lsn: 0,
                checks: 1,
            });
        }
        Err(e) => return Err(e),
    };
    let mut count = Count { records: 0, total: look.info().records, progress };
    let mut iter = look.iter_from(look.first_lsn())?;
    let mut corruption = None;
    loop {
        match iter.try_next() {
            Ok(Some(_)) => count.one(),
            Ok(None) => break,
            Err(Error::Corrupt(c)) => {
                corruption = Some(c);
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Verified {
        records: count.records,
        torn_tail: look.info().torn_tail,
        corruption,
        read_past: look.info().corruption.clone(),
        in_use: look.in_use(),
        next_lsn: look.next_lsn(),
        checks: 1,
    })
}

/// Records read so far, told to a progress callback every 100 000.
struct Count<'p, P: FnMut(u64, u64)> {
    records: u64,
    total: u64,
    progress: &'p mut P,
}

impl<P: FnMut(u64, u64)> Count<'_, P> {
    fn one(&mut self) {
        self.records += 1;
        if self.records.is_multiple_of(100_000) {
            (self.progress)(self.records, self.total);
        }
    }
}

//! A read-only look at a WAL directory, for tools: what recovery would find
//! and decide, and the records, without taking the lock or changing a byte.

use std::path::PathBuf;

use nori_wal_core::Lsn;

use super::config::{RecoveryMode, WalConfig};
use super::error::Error;
use super::iter::Iter;
use super::recovery::{self, RecoveryInfo, SegMeta, Skip};
use super::segment;
use crate::fs::{File, Fs, Kind, OpenMode, StdFs};

/// A segment file, as [`Inspection::segments`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The file.
    pub path: PathBuf,
    /// The LSN of its first record.
    pub base_lsn: Lsn,
    /// Its epoch.
    pub epoch: u64,
    /// The segment size its header gives.
    pub segment_size: u64,
    /// The file's length.
    pub file_len: u64,
    /// The format version its header gives.
    pub version: nori_wal_core::format::Version,
}

/// What recovery would find in a WAL directory and decide, computed without
/// changing anything (no lock, no repair). Works on a WAL another process
/// has open; what it reads is then a snapshot.
///
/// ```
/// use nori_wal::blocking::Wal;
/// use nori_wal::wal::Inspection;
/// use nori_wal::{Record, RecoveryMode, WalConfig};
///
/// # let dir = std::env::temp_dir().join(format!("nori-wal-inspect-doc-{}", std::process::id()));
/// let (wal, _) = Wal::open(WalConfig::new(&dir))?;
/// wal.append(&Record::raw(b"hello"))?;
/// let look = Inspection::open(&dir, RecoveryMode::TolerateTornTail)?; // while the WAL is open
/// assert_eq!(look.info().records, 1);
/// let mut iter = look.iter_from(look.first_lsn())?;
/// assert_eq!(iter.try_next()?.unwrap().record, Record::raw(b"hello"));
/// # drop(iter); drop(wal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Inspection<S: Fs = StdFs> {
    fs: S,
    info: RecoveryInfo,
    segments: Vec<SegMeta>,
    lens: Vec<u64>,
    active_end: Option<u64>,
    next_lsn: Lsn,
    log_start: Lsn,
    skips: Vec<Skip>,
    in_use: bool,
}

impl<S: Fs> std::fmt::Debug for Inspection<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspection").field("info", &self.info).finish_non_exhaustive()
    }
}

type Result<T> = std::result::Result<T, Error>;

impl Inspection<StdFs> {
    /// Inspects the WAL in `dir` as recovery in `mode` would see it.
    ///
    /// # Errors
    ///
    /// As [`blocking::Wal::open`](crate::blocking::Wal::open), but never
    /// [`Error::Locked`], and [`Error::Io`] (not found) for a missing
    /// directory.
    pub fn open(dir: impl Into<PathBuf>, mode: RecoveryMode) -> Result<Self> {
        Self::open_in(StdFs, dir, mode)
    }
}

impl<S: Fs> Inspection<S> {
    /// [`Inspection::open`] on the file system `fs`.
    ///
    /// # Errors
    ///
    /// As [`Inspection::open`].
    pub fn open_in(fs: S, dir: impl Into<PathBuf>, mode: RecoveryMode) -> Result<Self> {
        let dir = dir.into();
        match fs.kind(&dir) {
            Ok(Kind::Dir) => {}
            Ok(_) => return Err(Error::NotADirectory { path: dir }),
            Err(e) => return Err(Error::io("open", &dir, e)),
        }
        let lock_path = dir.join(segment::LOCK_FILE);
        let known_start = match fs.open(&lock_path, OpenMode::Read) {
            Ok(lock) => segment::read_start(&lock).map_err(|e| Error::io("read", &lock_path, e))?,
            Err(_) => None,
        };
        let in_use = super::check::lock_held(&fs, &dir)?;
        let config = WalConfig::new(&dir).recovery(mode);
        let recovered =
            recovery::recover(&fs, &config, known_start.map_or(0, |(_, lsn)| lsn), recovery::Effect::DryRun)?;
        let mut lens = Vec::with_capacity(recovered.segments.len());
        for seg in &recovered.segments {
            let len = fs
                .open(&seg.path, OpenMode::Read)
                .and_then(|f| f.size())
                .map_err(|e| Error::io("open", &seg.path, e))?;
            lens.push(len);
        }
        Ok(Self {
            active_end: recovered.active.as_ref().map(|(_, pos, _)| *pos),
            next_lsn: recovered.next_lsn,
            log_start: recovered.log_start,
            info: recovered.info,
            segments: recovered.segments,
            skips: recovered.skips,
            lens,
            fs,
            in_use,
        })
    }

    /// Whether a writer (a [`Wal`](crate::blocking::Wal) in this or
    /// another process) had the log open when it was inspected: what was
    /// read is then a snapshot, taken while the writer wrote.
    ///
    /// ```
    /// use nori_wal::blocking::Wal;
    /// use nori_wal::wal::Inspection;
    /// use nori_wal::{RecoveryMode, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-in-use-doc-{}", std::process::id()));
    /// let (wal, _) = Wal::open(WalConfig::new(&dir))?;
    /// assert!(Inspection::open(&dir, RecoveryMode::TolerateTornTail)?.in_use());
    /// wal.close()?;
    /// assert!(!Inspection::open(&dir, RecoveryMode::TolerateTornTail)?.in_use());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub const fn in_use(&self) -> bool {
        self.in_use
    }

    /// A snapshot of a log in use that ends where the writer's writes were
    /// in flight when read: told as such, not as damage.
    pub(crate) fn end_in_flight(&mut self) {
        let log = &mut self.info.log;
        log.corruption = None;
        log.torn_tail = false;
        log.case = nori_wal_core::ring::RecoveryCase::InFlight;
    }

    /// What recovery would find and do.
    #[must_use]
    pub fn info(&self) -> &RecoveryInfo {
        &self.info
    }

    /// The segment files the log would hold, oldest first.
    #[must_use]
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.segments
            .iter()
            .zip(&self.lens)
            .map(|(s, &file_len)| SegmentInfo {
                path: s.path.clone(),
                base_lsn: s.base,
                epoch: s.epoch,
                segment_size: s.size,
                file_len,
                version: s.version,
            })
            .collect()
    }

    /// The first LSN the log would hold.
    #[must_use]
    pub fn first_lsn(&self) -> Lsn {
        self.log_start.min(self.next_lsn)
    }

    /// The LSN the next append would get.
    #[must_use]
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn
    }

    /// Reads the records from `lsn` on.
    ///
    /// # Errors
    ///
    /// [`Error::LsnOutOfRange`] outside the log; [`Error::Io`].
    pub fn iter_from(&self, lsn: Lsn) -> Result<Iter<S>> {
        let (first, next) = (self.first_lsn(), self.next_lsn);
        if lsn < first || lsn > next {
            return Err(Error::LsnOutOfRange { lsn, first, next });
        }
        Iter::new(&self.fs, self.segments.clone(), self.active_end, lsn, next, self.skips.clone())
    }
}

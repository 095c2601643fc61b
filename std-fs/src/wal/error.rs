//! Errors of the file WAL.

use std::fmt;
use std::io;
use std::path::PathBuf;

use nori_wal_core::{EncodeError, Lsn};

/// Damage found in a segment file.
///
/// ```
/// use nori_wal::blocking::Wal;
/// use nori_wal::{Error, RecoveryMode, WalConfig};
/// # use nori_wal::Record;
/// # let dir = std::env::temp_dir().join(format!("nori-wal-corruption-doc-{}", std::process::id()));
/// # { let (wal, _) = Wal::open(WalConfig::new(&dir).segment_size(4096))?;
/// #   for i in 0..200u32 { wal.append(&Record::raw(&i.to_le_bytes()))?; } }
/// # let first = dir.join(format!("{:020}.wal", 0));
/// # let mut bytes = std::fs::read(&first)?; bytes[100] ^= 1; std::fs::write(&first, bytes)?;
/// // A segment damaged in the middle of the log:
/// match Wal::open(WalConfig::new(&dir).segment_size(4096)) {
///     Err(Error::Corrupt(c)) => println!("{} at offset {}, LSN {}: {c}", c.segment.display(), c.offset, c.lsn),
///     other => panic!("{other:?}"),
/// }
/// // Keep what precedes the damage instead:
/// let (wal, info) = Wal::open(WalConfig::new(&dir).segment_size(4096).recovery(RecoveryMode::PointInTime))?;
/// assert!(info.corruption.is_some());
/// # drop(wal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Corruption = nori_wal_core::ring::Corruption<PathBuf>;

/// A configuration the WAL cannot run with.
///
/// ```
/// use nori_wal::blocking::Wal;
/// use nori_wal::wal::ConfigError;
/// use nori_wal::{Error, WalConfig};
/// let err = Wal::open(WalConfig::new("unused").segment_size(100)).unwrap_err();
/// assert!(matches!(err, Error::Config(ConfigError::SegmentSize { given: 100, .. })));
/// println!("{err}"); // configuration: segment size 100 is outside the range ...
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The segment size is outside the range the WAL takes.
    SegmentSize {
        /// The size given.
        given: u64,
        /// The smallest size taken.
        min: u64,
        /// The largest size taken.
        max: u64,
    },
    /// `max_record_len` is 0.
    RecordLimit,
    /// A zero batch window.
    BatchWindow,
    /// Zstd compression without the `zstd` feature.
    ZstdUnavailable,
    /// File or directory modes that take the owner's own rights away, or
    /// that are not permission bits.
    Modes {
        /// The file mode given.
        file: u32,
        /// The directory mode given.
        dir: u32,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::SegmentSize { given, min, max } => {
                write!(f, "segment size {given} is outside the range {min} to {max} bytes")
            }
            Self::RecordLimit => f.write_str("max_record_len must be at least 1 byte"),
            Self::BatchWindow => f.write_str("FsyncPolicy::Batch needs a window longer than zero"),
            Self::ZstdUnavailable => {
                f.write_str("Zstd compression needs nori-wal's `zstd` feature: enable it, or use LZ4")
            }
            Self::Modes { file, dir } => write!(
                f,
                "file mode {file:#o} and directory mode {dir:#o}: the owner needs 0o600 on files and 0o700 \
                 on the directory, and nothing above 0o777"
            ),
        }
    }
}

/// An error of the file WAL. Its `Display` says what to do about it.
///
/// ```
/// use nori_wal::blocking::Wal;
/// use nori_wal::{Error, Record, WalConfig};
/// # let dir = std::env::temp_dir().join(format!("nori-wal-error-doc-{}", std::process::id()));
/// let (wal, _) = Wal::open(WalConfig::new(&dir).max_record_len(64))?;
/// match wal.append(&Record::raw(&[0; 100])) {
///     Err(Error::RecordTooLarge { len, max }) => assert!(len > max),
///     other => panic!("{other:?}"),
/// }
/// // The WAL goes on: nothing was written.
/// assert_eq!(wal.append(&Record::raw(b"small"))?, 0);
/// # drop(wal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file-system call failed.
    Io {
        /// What the WAL was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The disk is full. Nothing durable was lost and the failed call wrote
    /// nothing; the WAL goes on once space is freed.
    StorageFull {
        /// The file that could not grow.
        path: PathBuf,
    },
    /// One of the WAL's own files (a segment, `LOCK`) is a symbolic link:
    /// the WAL never follows links for its files, so that nothing it
    /// writes lands outside its directory.
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// The WAL path exists and is not a directory.
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// Another `Wal`, in this process or another, has the directory open.
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// A file in the WAL directory has a segment's name (`*.wal`) but is not
    /// a segment of this WAL. Other names are left alone.
    ForeignFile {
        /// The file.
        path: PathBuf,
    },
    /// A segment was written by a newer format version.
    UnsupportedVersion {
        /// The segment file.
        path: PathBuf,
        /// The version found.
        found: u16,
    },
    /// The configuration cannot be used.
    Config(ConfigError),
    /// A record or batch is larger than the limit.
    RecordTooLarge {
        /// Its encoded length.
        len: u64,
        /// The limit (`max_record_len`, or what a segment holds).
        max: u64,
    },
    /// `append_batch` of no record.
    EmptyBatch,
    /// Damage in the durable region, refused by the recovery mode or met
    /// while reading.
    Corrupt(Corruption),
    /// A write or sync failed earlier: nothing more is acknowledged until
    /// the WAL is reopened, which recovers what is durable.
    Poisoned {
        /// The failure that poisoned the WAL (the first one), as its caller
        /// got it; also [`source`](std::error::Error::source).
        cause: std::sync::Arc<Error>,
    },
    /// The WAL was closed while a call waited for it.
    Closed,
    /// A record could not be encoded (nothing was written; the WAL goes on).
    Encode(EncodeError),
    /// The core's segment layer refused to read a segment file: a buffer or
    /// a read that breaks the file's geometry, or a broken invariant of the
    /// core — a bug in nori-wal, never the data's fault (damage is
    /// [`Error::Corrupt`], a failed read [`Error::Io`]).
    Segment {
        /// The segment file.
        path: PathBuf,
        /// The core's error, as it gave it.
        source: nori_wal_core::ring::Error<std::convert::Infallible>,
    },
    /// A broken internal invariant: a bug in nori-wal, never the data's
    /// fault. The WAL is poisoned; reopening it recovers what is durable.
    Internal {
        /// What went wrong.
        what: &'static str,
    },
    /// The LSN asked for is outside the log.
    LsnOutOfRange {
        /// The LSN asked for.
        lsn: Lsn,
        /// The first LSN the log holds.
        first: Lsn,
        /// The LSN the next append gets.
        next: Lsn,
    },
    /// `truncate_after` would split an atomic batch.
    InsideBatch {
        /// The LSN asked for.
        lsn: Lsn,
    },
    /// The log's LSNs or epochs would pass 2^64 - 1 (hostile segment
    /// headers).
    Exhausted,
    /// A check of a log in use found damage each time, but never the same
    /// twice: the log changed under every read (a writer appending faster
    /// than the check reads). Nothing is known to be damaged.
    Unsettled {
        /// The WAL directory.
        dir: PathBuf,
        /// Checks made.
        attempts: u32,
    },
    /// A [`Follower`](super::Follower)'s position was reclaimed by the
    /// writer's `truncate_before`: the records from `lsn` to `first` are gone.
    /// The follower goes on from `first`.
    Reclaimed {
        /// The follower's position (the next LSN it would have returned).
        lsn: Lsn,
        /// The first LSN the log still holds.
        first: Lsn,
    },
    /// The writer cut the log with `truncate_after` behind a
    /// [`Follower`](super::Follower): the records it returned from `next` on
    /// (up to `lsn`, exclusive) are no longer in the log, and the LSNs from
    /// `next` on will be given to new records. The follower goes on from
    /// `next`.
    Cut {
        /// The follower's position before the cut was seen.
        lsn: Lsn,
        /// Where the log now continues.
        next: Lsn,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if is_storage_full(&source) {
            Self::StorageFull { path }
        } else if crate::fs::is_link_refused(&source) {
            Self::Symlink { path }
        } else {
            Self::Io { op, path, source }
        }
    }

    /// An error of the core's segment layer reading the segment file at
    /// `path`: a failed read is an I/O error, anything else the core's.
    pub(crate) fn from_segment(path: &std::path::Path, e: nori_wal_core::ring::Error<io::Error>) -> Self {
        match e.into_device() {
            Ok(e) => Self::io("read", path, e),
            Err(source) => Self::Segment { path: path.to_path_buf(), source },
        }
    }

    /// A copy of this error, for the cause a poisoned WAL keeps: an I/O
    /// error keeps its kind, its OS error code and its message.
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Io { op, path, source } => {
                Self::Io { op, path: path.clone(), source: duplicate_io(source) }
            }
            Self::StorageFull { path } => Self::StorageFull { path: path.clone() },
            Self::NotADirectory { path } => Self::NotADirectory { path: path.clone() },
            Self::Symlink { path } => Self::Symlink { path: path.clone() },
            Self::Locked { dir } => Self::Locked { dir: dir.clone() },
            Self::ForeignFile { path } => Self::ForeignFile { path: path.clone() },
            Self::UnsupportedVersion { path, found } => {
                Self::UnsupportedVersion { path: path.clone(), found: *found }
            }
            Self::Config(e) => Self::Config(*e),
            Self::RecordTooLarge { len, max } => Self::RecordTooLarge { len: *len, max: *max },
            Self::EmptyBatch => Self::EmptyBatch,
            Self::Corrupt(c) => Self::Corrupt(c.clone()),
            Self::Poisoned { cause } => Self::Poisoned { cause: std::sync::Arc::clone(cause) },
            Self::Closed => Self::Closed,
            Self::Encode(e) => Self::Encode(*e),
            Self::Segment { path, source } => Self::Segment { path: path.clone(), source: source.clone() },
            Self::Internal { what } => Self::Internal { what },
            Self::LsnOutOfRange { lsn, first, next } => {
                Self::LsnOutOfRange { lsn: *lsn, first: *first, next: *next }
            }
            Self::InsideBatch { lsn } => Self::InsideBatch { lsn: *lsn },
            Self::Exhausted => Self::Exhausted,
            Self::Unsettled { dir, attempts } => Self::Unsettled { dir: dir.clone(), attempts: *attempts },
            Self::Reclaimed { lsn, first } => Self::Reclaimed { lsn: *lsn, first: *first },
            Self::Cut { lsn, next } => Self::Cut { lsn: *lsn, next: *next },
        }
    }

    /// Whether this is [`Error::StorageFull`].
    #[must_use]
    pub const fn is_storage_full(&self) -> bool {
        matches!(self, Self::StorageFull { .. })
    }
}

/// A copy of an I/O error: the OS error code when it has one, else its
/// kind and message.
fn duplicate_io(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

/// ENOSPC or EDQUOT.
pub(crate) fn is_storage_full(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            Self::StorageFull { path } => write!(
                f,
                "the disk holding {} is full: free space and retry (nothing durable was lost)",
                path.display()
            ),
            Self::NotADirectory { path } => {
                write!(f, "{} is not a directory: give the WAL a directory path", path.display())
            }
            Self::Symlink { path } => write!(
                f,
                "{} is a symbolic link: the WAL does not follow links for its own files; put the file itself there",
                path.display()
            ),
            Self::Locked { dir } => write!(
                f,
                "{} is in use by another WAL (in this or another process): close it first",
                dir.display()
            ),
            Self::ForeignFile { path } => {
                write!(f, "{} is not a segment of this WAL: move it out of the WAL directory", path.display())
            }
            Self::UnsupportedVersion { path, found } => write!(
                f,
                "{} is in format version {found}; this nori-wal reads up to {}: upgrade nori-wal",
                path.display(),
                nori_wal_core::format::FORMAT_VERSION
            ),
            Self::Config(e) => write!(f, "configuration: {e}"),
            Self::RecordTooLarge { len, max } => write!(
                f,
                "record too large: {len} bytes encoded, the limit is {max}; raise max_record_len or segment_size"
            ),
            Self::EmptyBatch => f.write_str("a batch needs at least one record"),
            Self::Corrupt(c) => write!(
                f,
                "corrupt log: {c}; open with another RecoveryMode to keep what precedes or follows it"
            ),
            Self::Poisoned { cause } => write!(
                f,
                "the WAL is poisoned by an earlier failure ({cause}): reopen it to recover what is durable"
            ),
            Self::Closed => f.write_str("the WAL was closed while this call waited: reopen it"),
            Self::Encode(e) => write!(f, "the record cannot be encoded ({e}); nothing was written"),
            Self::Segment { path, source } => write!(
                f,
                "reading {}: {source} (a bug in nori-wal; please report it, the data is not at fault)",
                path.display()
            ),
            Self::Internal { what } => write!(
                f,
                "internal error in nori-wal ({what}); please report it. Reopen the WAL to recover what is durable"
            ),
            Self::LsnOutOfRange { lsn, first, next } => {
                write!(f, "LSN {lsn} is outside the log, which holds LSNs {first} to {next} (exclusive)")
            }
            Self::InsideBatch { lsn } => write!(
                f,
                "LSN {lsn} and the next one belong to one atomic batch: truncate before or after the batch"
            ),
            Self::Exhausted => f.write_str("the log's LSN or epoch counter is exhausted"),
            Self::Unsettled { dir, attempts } => write!(
                f,
                "{} changed under each of {attempts} checks while its writer appended: no damage was confirmed; \
                 check again when it is quieter",
                dir.display()
            ),
            Self::Reclaimed { lsn, first } => write!(
                f,
                "LSNs {lsn} to {first} (exclusive) were reclaimed by the writer's truncate_before before this \
                 reader got to them; it goes on from LSN {first}"
            ),
            Self::Cut { lsn, next } => write!(
                f,
                "the writer cut the log with truncate_after: the records from LSN {next} to {lsn} (exclusive) \
                 that this reader returned are gone, and new records will take their LSNs; it goes on from LSN {next}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Poisoned { cause } => Some(&**cause),
            Self::Encode(e) => Some(e),
            Self::Segment { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

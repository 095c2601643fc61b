//! How a [`Wal`](super::Wal) is set up.

use std::path::PathBuf;
use std::time::Duration;

pub use nori_wal_core::format::Version;
pub use nori_wal_core::ring::RecoveryMode;

/// When appended records are made durable (`fdatasync`).
///
/// ```
/// use std::time::Duration;
/// use nori_wal::blocking::Wal;
/// use nori_wal::{FsyncPolicy, Record, WalConfig};
/// # let dir = std::env::temp_dir().join(format!("nori-wal-policy-doc-{}", std::process::id()));
/// let config = WalConfig::new(&dir).fsync(FsyncPolicy::Batch(Duration::from_millis(5)));
/// let (wal, _) = Wal::open(config)?;
/// let lsn = wal.append(&Record::raw(b"soon durable"))?; // returns at once
/// wal.wait_durable(lsn)?; // within the window
/// # drop(wal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// Every append returns once its record is durable. Appends from many
    /// threads share syncs (group commit).
    Always,
    /// Appends return at once; a background thread makes every record
    /// durable within this window of its append, whether or not more
    /// appends follow.
    Batch(Duration),
    /// The operating system writes the data back when it chooses; records
    /// are durable only after [`Wal::sync`](super::Wal::sync),
    /// [`Wal::rotate`](super::Wal::rotate) or close. Full write buffers go
    /// to the file from a thread of their own.
    Os,
}

/// How records are compressed.
///
/// ```
/// use nori_wal::blocking::Wal;
/// use nori_wal::{Codec, Record, WalConfig};
/// # let dir = std::env::temp_dir().join(format!("nori-wal-codec-doc-{}", std::process::id()));
/// // LZ4 for records of 128 bytes or more, when it saves space.
/// let (wal, _) = Wal::open(WalConfig::new(&dir).compression(Codec::Lz4, 128))?;
/// let text = "the same words again and again ".repeat(20);
/// wal.append(&Record::raw(text.as_bytes()))?;
/// assert!(wal.stats().bytes_written < text.len() as u64);
/// # drop(wal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Codec {
    /// Records are stored as they are.
    #[default]
    None,
    /// LZ4 (fast; always available).
    Lz4,
    /// Zstd at this level (smaller; needs the `zstd` feature).
    Zstd {
        /// The compression level, 1 (fast) to 22 (small); 3 is zstd's default.
        level: i32,
    },
}

/// How much of the log [`Wal::open`](super::Wal::open) checks before it
/// returns.
///
/// ```
/// use nori_wal::wal::OpenCheck;
/// assert_eq!(OpenCheck::default(), OpenCheck::Everything);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpenCheck {
    /// Every frame of every segment, and every seal (the default): damage
    /// anywhere is found, and decided on, at open.
    #[default]
    Everything,
    /// Every frame of the newest `n` segments (at least the newest one).
    /// An older segment of format v2 whose seal checks out and agrees with
    /// the next segment's first LSN is trusted by its seal alone: its
    /// frames are not read at open, so `open` takes time for the newest
    /// segments only, whatever the log's size. Damage in a trusted segment
    /// is found when its records are read (the iterator checks every frame
    /// and reports it as [`Error::Corrupt`](super::Error::Corrupt)) and by
    /// [`verify`](super::verify), which checks everything. Segments
    /// without a seal (format v1, or a crash came before the seal) are
    /// checked whole. [`RecoveryMode::Strict`] checks everything whatever
    /// this says. [`RecoveryInfo::holes`](super::RecoveryInfo::holes)
    /// counts the holes of the segments checked only.
    Newest(usize),
}

/// The configuration of a [`Wal`](super::Wal).
///
/// ```
/// use std::time::Duration;
/// use nori_wal::{FsyncPolicy, WalConfig};
///
/// let config = WalConfig::new("/var/lib/app/wal")
///     .segment_size(16 << 20)
///     .fsync(FsyncPolicy::Batch(Duration::from_millis(2)))
///     .max_segment_age(Some(Duration::from_secs(3600)));
/// assert_eq!(config.segment_size, 16 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalConfig {
    /// The directory holding the segment files; created if missing.
    pub dir: PathBuf,
    /// The size of each segment file, preallocated when it is created.
    /// Default 64 MiB.
    pub segment_size: u64,
    /// Rotate to a new segment when the active one holding records is
    /// older than this, even when no appends come. Default `None`.
    pub max_segment_age: Option<Duration>,
    /// When records become durable. Default [`FsyncPolicy::Always`].
    pub fsync: FsyncPolicy,
    /// What recovery does with damage. Default
    /// [`RecoveryMode::TolerateTornTail`].
    pub recovery: RecoveryMode,
    /// The largest record (or batch) accepted, in encoded bytes; also
    /// bounded by the segment size. Default 16 MiB.
    pub max_record_len: u64,
    /// Reserve each segment's disk space when it is created (`fallocate`),
    /// so that a full disk is met at rotation, never in the middle of a
    /// segment. Default `true`.
    ///
    /// A format v2 segment says in its header that it was made at full
    /// size before any record went into it; recovery then reports a file
    /// found shorter as damage (its records past the cut were written, and
    /// lost). Without preallocation a segment grows as it is written, so a
    /// short file is what a crash leaves too: the records past its end
    /// cannot be told lost from never written, and recovery takes the end
    /// of the file for the end of the log.
    pub preallocate: bool,
    /// Appended bytes gathered before they are written to the file (a
    /// sync writes them at once). Default 1 MiB. Under
    /// [`FsyncPolicy::Batch`] and [`FsyncPolicy::Os`] up to three buffers
    /// of this size are in use (one filling, two being written by the
    /// write-behind thread). Smaller buffers save memory and cost speed:
    /// with 64 KiB, one writer under `Os` appends about a quarter slower.
    pub write_buffer: usize,
    /// How single records are compressed (batches are stored as they are).
    /// A record is stored compressed only when that makes it smaller; if
    /// compressing fails it is stored plain. Default [`Codec::None`].
    pub compression: Codec,
    /// Records whose payload is shorter than this are never compressed.
    /// Default 256 bytes.
    pub compress_min: usize,
    /// The permission bits of the files the WAL creates (segments, `LOCK`,
    /// cut copies), whatever the process's umask (Unix; ignored on
    /// Windows). Default `0o600`: a WAL holds whatever its users log, so
    /// only its owner reads it. `0o640` lets a group of readers in. The
    /// owner must keep read and write (`0o600`).
    pub file_mode: u32,
    /// The permission bits of the WAL's directory when the WAL creates it,
    /// whatever the umask (Unix; ignored on Windows). Default `0o700`;
    /// `0o750` for a group of readers. An existing directory keeps its
    /// modes: files or a directory open to more than these modes allow are
    /// reported ([`RecoveryInfo::loose_permissions`](super::RecoveryInfo::loose_permissions)),
    /// not changed. The owner must keep every right (`0o700`).
    pub dir_mode: u32,
    /// Threads that check the sealed segments (all but the newest) at
    /// open, each with a 64 KiB read buffer (segments are mapped where the
    /// file system maps files, so the buffer is rarely read into). `0`,
    /// the default, is one per available CPU, at most 8; `1` checks them
    /// on the opening thread alone; larger values are capped at 64 (and at
    /// the number of sealed segments). Every segment is checked either way:
    /// the figure only changes how long `open` takes.
    pub recovery_threads: usize,
    /// How much of the log [`Wal::open`](super::Wal::open) checks. Default
    /// [`OpenCheck::Everything`].
    pub open_check: OpenCheck,
    /// The format version new segment files are written in. Default
    /// [`Version::V2`]; a log may hold segments of both versions, and every
    /// build reads both. [`Version::V1`] is for a deployment that may roll
    /// back to a build that reads version 1 only: such a build opens the
    /// log once every version 2 segment has been reclaimed.
    pub format: Version,
}

impl Default for WalConfig {
    /// A WAL in `./wal` with the defaults of each field.
    fn default() -> Self {
        Self::new("wal")
    }
}

impl WalConfig {
    /// The default configuration for a WAL in `dir`.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            segment_size: 64 << 20,
            max_segment_age: None,
            fsync: FsyncPolicy::Always,
            recovery: RecoveryMode::TolerateTornTail,
            max_record_len: 16 << 20,
            preallocate: true,
            write_buffer: 1 << 20,
            compression: Codec::None,
            compress_min: 256,
            file_mode: 0o600,
            dir_mode: 0o700,
            recovery_threads: 0,
            format: Version::V2,
            open_check: OpenCheck::Everything,
        }
    }

    /// Sets [`segment_size`](Self::segment_size).
    #[must_use]
    pub const fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Sets [`max_segment_age`](Self::max_segment_age).
    #[must_use]
    pub const fn max_segment_age(mut self, age: Option<Duration>) -> Self {
        self.max_segment_age = age;
        self
    }

    /// Sets [`fsync`](Self::fsync).
    #[must_use]
    pub const fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.fsync = policy;
        self
    }

    /// Sets [`recovery`](Self::recovery).
    #[must_use]
    pub const fn recovery(mut self, mode: RecoveryMode) -> Self {
        self.recovery = mode;
        self
    }

    /// Sets [`max_record_len`](Self::max_record_len).
    #[must_use]
    pub const fn max_record_len(mut self, bytes: u64) -> Self {
        self.max_record_len = bytes;
        self
    }

    /// Sets [`preallocate`](Self::preallocate).
    #[must_use]
    pub const fn preallocate(mut self, on: bool) -> Self {
        self.preallocate = on;
        self
    }

    /// Sets [`compression`](Self::compression) and
    /// [`compress_min`](Self::compress_min).
    #[must_use]
    pub const fn compression(mut self, codec: Codec, min_len: usize) -> Self {
        self.compression = codec;
        self.compress_min = min_len;
        self
    }

    /// Sets [`write_buffer`](Self::write_buffer).
    #[must_use]
    pub const fn write_buffer(mut self, bytes: usize) -> Self {
        self.write_buffer = bytes;
        self
    }

    /// Sets [`recovery_threads`](Self::recovery_threads).
    ///
    /// ```
    /// use nori_wal::WalConfig;
    /// // Open on the calling thread alone.
    /// let config = WalConfig::new("wal").recovery_threads(1);
    /// assert_eq!(config.recovery_threads, 1);
    /// ```
    #[must_use]
    pub const fn recovery_threads(mut self, threads: usize) -> Self {
        self.recovery_threads = threads;
        self
    }

    /// Sets [`open_check`](Self::open_check).
    ///
    /// ```
    /// use nori_wal::wal::OpenCheck;
    /// use nori_wal::WalConfig;
    /// // Check the newest two segments at open; trust older ones by their seals.
    /// let config = WalConfig::new("wal").open_check(OpenCheck::Newest(2));
    /// assert_eq!(config.open_check, OpenCheck::Newest(2));
    /// ```
    #[must_use]
    pub const fn open_check(mut self, check: OpenCheck) -> Self {
        self.open_check = check;
        self
    }

    /// Sets [`format`](Self::format).
    ///
    /// ```
    /// use nori_wal::{Version, WalConfig};
    /// // New segments in format version 1, readable by older builds.
    /// let config = WalConfig::new("wal").format(Version::V1);
    /// assert_eq!(config.format, Version::V1);
    /// ```
    #[must_use]
    pub const fn format(mut self, version: Version) -> Self {
        self.format = version;
        self
    }

    /// Sets [`file_mode`](Self::file_mode) and [`dir_mode`](Self::dir_mode).
    ///
    /// ```
    /// use nori_wal::WalConfig;
    /// // A group of readers (say, a backup agent) may read the WAL.
    /// let config = WalConfig::new("wal").modes(0o640, 0o750);
    /// assert_eq!((config.file_mode, config.dir_mode), (0o640, 0o750));
    /// ```
    #[must_use]
    pub const fn modes(mut self, file: u32, dir: u32) -> Self {
        self.file_mode = file;
        self.dir_mode = dir;
        self
    }
}

//! The WAL's state, its append and sync paths, rotation and truncation.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use nori_wal_core::format::{
    EncodedFrame, EpochKey, FRAME_HEADER_LEN, Mark, SegmentHeader, batch_frame_len, record_frame_len,
    record_kind,
};
use nori_wal_core::segment::SegmentReader;
use nori_wal_core::{Lsn, Record};

use super::config::{Codec, FsyncPolicy, WalConfig};
use super::error::{ConfigError, Error};
use super::iter::Iter;
use super::recovery::{self, RecoveryInfo, SegMeta, Skip};
use super::segment::{self, FileDevice, MARK_FRAME_LEN};
use super::sync::{AtomicBool, AtomicU64, Condvar, JoinHandle, Mutex, MutexGuard};
use crate::fs::{File, Fs, Kind, OpenMode, StdFs};

type Result<T> = std::result::Result<T, Error>;

/// Locks a mutex, ignoring poisoning by a panicked thread: the state each
/// mutex guards is updated so that it is consistent at every await point.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The segment being appended to.
struct Active<F> {
    file: Arc<F>,
    path: PathBuf,
    key: EpochKey,
    base: Lsn,
    size: u64,
    /// Offset of the next frame (buffered bytes included).
    pos: u64,
    /// Offset at which the write buffer's bytes belong.
    written: u64,
    /// `durable_end` recorded by the last mark (or implied by the header).
    marked_durable: Lsn,
    created: Instant,
}

impl<F> Active<F> {
    /// Whether `len` more bytes fit, holding LSNs up to `end` (the LSN
    /// offsets of a segment are 32-bit).
    fn takes(&self, len: u64, end: Lsn) -> bool {
        self.pos + len <= self.size && end - self.base <= u64::from(u32::MAX)
    }
}

/// A sealed segment not yet synced: the next sync syncs it first.
struct Sealed<F> {
    file: Arc<F>,
    path: PathBuf,
    /// The LSN after its last record.
    end: Lsn,
}

/// State under the append lock.
pub(crate) struct Inner<F> {
    pub(crate) segments: Vec<SegMeta>,
    active: Option<Active<F>>,
    pub(crate) next_lsn: Lsn,
    pub(crate) log_start: Lsn,
    max_epoch: u64,
    buf: Vec<u8>,
    pub(crate) skips: Vec<Skip>,
    /// Sealed segments whose files were not synced since they were
    /// written, oldest first.
    unsynced: Vec<Sealed<F>>,
    /// Bytes written to segment files since open.
    bytes_written: u64,
    /// Segment files created since open.
    segments_created: u64,
    /// LSN at open, to count appends.
    opened_at: Lsn,
}

/// Buckets of [`SyncLatency`]: bucket `i` counts syncs that took less
/// than `2^i` microseconds (the last one, everything longer).
pub const SYNC_LATENCY_BUCKETS: usize = 24;

/// A histogram of `fdatasync` latencies, in powers of two of microseconds.
///
/// ```
/// use nori_wal::wal::{SYNC_LATENCY_BUCKETS, SyncLatency};
/// let mut counts = [0; SYNC_LATENCY_BUCKETS];
/// counts[7] = 90; // 90 syncs under 128 µs
/// counts[10] = 10; // 10 under 1024 µs
/// let latency = SyncLatency { counts };
/// assert_eq!(latency.quantile_micros(0.5), Some(128));
/// assert_eq!(latency.quantile_micros(0.99), Some(1024));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncLatency {
    /// `counts[i]`: syncs that took under `2^i` µs (and at least `2^(i-1)`).
    pub counts: [u64; SYNC_LATENCY_BUCKETS],
}

impl SyncLatency {
    /// The smallest bucket bound below which at least `q` (0 to 1) of the
    /// syncs fell, in microseconds; `None` when no sync was timed.
    #[must_use]
    pub fn quantile_micros(&self, q: f64) -> Option<u64> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let want = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(1u64 << i);
            }
        }
        Some(1u64 << (SYNC_LATENCY_BUCKETS - 1))
    }
}

/// What a [`Wal`] has done since it was opened.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("nori-wal-stats-doc-{}", std::process::id()));
/// use nori_wal::blocking::Wal;
/// use nori_wal::{Record, WalConfig};
///
/// let (wal, _) = Wal::open(WalConfig::new(&dir))?;
/// wal.append(&Record::raw(b"counted"))?;
/// let stats = wal.stats();
/// assert_eq!(stats.records, 1);
/// assert!(stats.syncs >= 1 && stats.sync_latency.quantile_micros(0.99).is_some());
/// # drop(wal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// LSNs appended (records, counting each record of a batch).
    pub records: u64,
    /// Bytes written to segment files (frames, marks and headers).
    pub bytes_written: u64,
    /// `fdatasync` calls on segment files.
    pub syncs: u64,
    /// How long those syncs took.
    pub sync_latency: SyncLatency,
    /// Segment files created.
    pub segments_created: u64,
    /// Segments sealed (rotations by size or age, and explicit ones).
    pub rotations: u64,
    /// Segment files the log holds now.
    pub segments: usize,
    /// What recovery found and did when the WAL was opened.
    pub recovery: RecoveryInfo,
}

/// Group-commit state.
#[derive(Default)]
struct SyncState {
    /// A thread is syncing (or truncating): others wait for it.
    busy: bool,
    /// Counts turns (syncs and exclusive operations); waiters of turn `t`
    /// wait on `turns[t % 2]`.
    turn: u64,
    /// Once the running sync has flushed: the LSN below which it makes
    /// records durable.
    covered_end: Option<Lsn>,
    /// Threads waiting for the turn after the running one.
    next_waiters: usize,
    /// The failure that poisoned the WAL.
    poisoned: Option<String>,
}

/// A full write buffer on its way to a segment file.
struct WriteJob<F> {
    file: Arc<F>,
    path: PathBuf,
    at: u64,
    bytes: Vec<u8>,
}

/// Write-behind (policies that do not sync every append): full write
/// buffers go to a thread of their own, so that the appending thread keeps
/// encoding while the kernel copies. Every path that needs the bytes in
/// the file (a sync, a seal, a reader, a truncation) waits until it is idle.
struct Behind<F> {
    queue: std::collections::VecDeque<WriteJob<F>>,
    /// Empty buffers to swap in for a full one.
    spare: Vec<Vec<u8>>,
    /// A job is being written.
    busy: bool,
    stop: bool,
    /// The writer waits for a job: a hand-off must wake it.
    idle: bool,
    /// Callers waiting for a spare buffer or for the queue to drain: the
    /// writer wakes them after each job (a wake-up is a system call, made
    /// only when someone waits).
    waiting: usize,
}

/// Buffers each WAL may have in flight to the write-behind thread.
const BEHIND_BUFFERS: usize = 2;

/// The background thread's orders.
#[derive(Default)]
struct Timer {
    stop: bool,
    /// When the oldest record not yet durable was appended (Batch).
    dirty_since: Option<Instant>,
}

pub(crate) struct Shared<S: Fs> {
    pub(crate) fs: S,
    pub(crate) config: WalConfig,
    pub(crate) inner: Mutex<Inner<S::File>>,
    sync: Mutex<SyncState>,
    /// The condition variables of even and odd turns.
    turns: [Condvar; 2],
    /// LSNs below this are durable.
    durable_end: AtomicU64,
    poisoned: AtomicBool,
    timer: Mutex<Timer>,
    timer_wake: Condvar,
    /// Write-behind, when the policy uses it.
    behind: Option<(Mutex<Behind<S::File>>, Condvar)>,
    dirty: AtomicBool,
    syncs: AtomicU64,
    sync_latency: [AtomicU64; SYNC_LATENCY_BUCKETS],
    rotations: AtomicU64,
    recovery: RecoveryInfo,
    /// The durable end and whether the WAL is poisoned, for async waiters.
    pub(crate) durable_tx: tokio::sync::watch::Sender<(Lsn, bool)>,
    /// Holds the directory's lock for the WAL's lifetime, and the log's
    /// start when `truncate_after` removes the segments that recorded it.
    lock_file: S::File,
    /// Sequence of the last start written to the lock file.
    start_seq: AtomicU64,
}

/// A write-ahead log in a directory of segment files, usable from many
/// threads (`Wal: Send + Sync`). See the [module docs](super) for the files,
/// the durability policies and the recovery decisions.
pub struct Wal<S: Fs = StdFs> {
    shared: Arc<Shared<S>>,
    worker: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
}

impl<S: Fs> std::fmt::Debug for Wal<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.shared.config.dir)
            .field("durable_end", &self.shared.durable_end.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Wal<StdFs> {
    /// Opens (creating if needed) the WAL in `config.dir`, recovering what
    /// it holds as `config.recovery` says.
    ///
    /// # Errors
    ///
    /// [`Error::Config`], [`Error::NotADirectory`], [`Error::Locked`],
    /// [`Error::ForeignFile`], [`Error::UnsupportedVersion`],
    /// [`Error::Corrupt`] (as the recovery mode says), [`Error::Io`].
    pub fn open(config: WalConfig) -> Result<(Self, RecoveryInfo)> {
        Self::open_in(StdFs, config)
    }
}

impl<S: Fs> Wal<S> {
    /// [`Wal::open`] on the file system `fs`.
    ///
    /// # Errors
    ///
    /// As [`Wal::open`].
    pub fn open_in(fs: S, config: WalConfig) -> Result<(Self, RecoveryInfo)> {
        #[cfg(feature = "tracing")]
        let _span = tracing::info_span!("nori_wal_open", dir = %config.dir.display()).entered();
        check_config(&config)?;
        let dir = config.dir.clone();
        match fs.kind(&dir) {
            Ok(Kind::Dir) => {}
            Ok(_) => return Err(Error::NotADirectory { path: dir }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs.create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fs.sync_dir(parent).map_err(|e| Error::io("sync", parent, e))?;
                }
            }
            Err(e) => return Err(Error::io("open", &dir, e)),
        }
        let lock_path = dir.join(segment::LOCK_FILE);
        let lock_file = match fs.open(&lock_path, OpenMode::CreateNew) {
            Ok(f) => {
                fs.sync_dir(&dir).map_err(|e| Error::io("sync", &dir, e))?;
                f
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                fs.open(&lock_path, OpenMode::ReadWrite).map_err(|e| Error::io("open", &lock_path, e))?
            }
            Err(e) => return Err(Error::io("create", &lock_path, e)),
        };
        // A process forked by another thread holds a copy of a closed
        // WAL's lock until it execs: a held lock is tried again briefly.
        let mut tries = 0;
        while !lock_file.try_lock().map_err(|e| Error::io("lock", &lock_path, e))? {
            tries += 1;
            if tries == 10 {
                return Err(Error::Locked { dir });
            }
            super::sync::sleep(Duration::from_millis(5));
        }
        // Room for the log start it may keep, so that recording it needs no
        // space later (a reclaim on a full disk).
        lock_file.allocate(segment::START_LEN).map_err(|e| Error::io("prepare", &lock_path, e))?;
        let start = segment::read_start(&lock_file).map_err(|e| Error::io("read", &lock_path, e))?;
        let recovered = recovery::recover(&fs, &config, start.map_or(0, |(_, lsn)| lsn), false)?;
        trace!(
            info,
            records = recovered.info.records,
            case = ?recovered.info.case,
            torn_tail = recovered.info.torn_tail,
            segments = recovered.info.segments,
            elapsed_us = recovered.info.elapsed.as_micros() as u64,
            "recovered"
        );
        #[cfg(feature = "tracing")]
        if let Some(c) = &recovered.info.corruption {
            tracing::warn!(damage = %c, "recovery found damage");
        }
        let active = recovered.active.and_then(|(file, pos)| {
            let meta = recovered.segments.last()?;
            Some(Active {
                file: Arc::new(file),
                path: meta.path.clone(),
                key: EpochKey::new(meta.epoch),
                base: meta.base,
                size: meta.size,
                pos,
                written: pos,
                marked_durable: recovered.next_lsn,
                created: Instant::now(),
            })
        });
        let inner = Inner {
            segments: recovered.segments,
            active,
            next_lsn: recovered.next_lsn,
            log_start: recovered.log_start,
            max_epoch: recovered.max_epoch,
            buf: Vec::with_capacity(config.write_buffer.min(4 << 20)),
            skips: recovered.skips,
            unsynced: Vec::new(),
            bytes_written: 0,
            segments_created: 0,
            opened_at: recovered.next_lsn,
        };
        let shared = Arc::new(Shared {
            fs,
            inner: Mutex::new(inner),
            sync: Mutex::new(SyncState::default()),
            turns: [Condvar::new(), Condvar::new()],
            durable_end: AtomicU64::new(recovered.next_lsn),
            poisoned: AtomicBool::new(false),
            timer: Mutex::new(Timer::default()),
            timer_wake: Condvar::new(),
            behind: (!matches!(config.fsync, FsyncPolicy::Always)).then(|| {
                let spare = (0..BEHIND_BUFFERS).map(|_| Vec::with_capacity(config.write_buffer.min(4 << 20)));
                let state = Behind {
                    queue: Default::default(),
                    spare: spare.collect(),
                    busy: false,
                    stop: false,
                    idle: false,
                    waiting: 0,
                };
                (Mutex::new(state), Condvar::new())
            }),
            dirty: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
            sync_latency: std::array::from_fn(|_| AtomicU64::new(0)),
            rotations: AtomicU64::new(0),
            recovery: recovered.info.clone(),
            durable_tx: tokio::sync::watch::Sender::new((recovered.next_lsn, false)),
            lock_file,
            start_seq: AtomicU64::new(start.map_or(0, |(seq, _)| seq)),
            config,
        });
        let needs_worker =
            matches!(shared.config.fsync, FsyncPolicy::Batch(_)) || shared.config.max_segment_age.is_some();
        let worker = if needs_worker {
            let shared = Arc::clone(&shared);
            let handle = super::sync::spawn("nori-wal-sync", move || shared.background())
                .map_err(|e| Error::io("start the sync thread for", &dir, e))?;
            Some(handle)
        } else {
            None
        };
        let writer = if shared.behind.is_some() {
            let shared = Arc::clone(&shared);
            let handle = super::sync::spawn("nori-wal-write", move || shared.write_behind())
                .map_err(|e| Error::io("start the write thread for", &dir, e))?;
            Some(handle)
        } else {
            None
        };
        Ok((Self { shared, worker, writer }, recovered.info))
    }

    /// Its shared state, for the async API.
    pub(crate) fn shared(&self) -> &Shared<S> {
        &self.shared
    }

    /// The configuration the WAL runs with.
    #[must_use]
    pub fn config(&self) -> &WalConfig {
        &self.shared.config
    }

    /// Appends `record`; returns its LSN. Under [`FsyncPolicy::Always`] the
    /// record is durable when this returns.
    ///
    /// # Errors
    ///
    /// [`Error::RecordTooLarge`]; [`Error::StorageFull`] when a new segment
    /// cannot be allocated (nothing was appended); [`Error::Poisoned`]; an
    /// I/O error, which poisons the WAL.
    pub fn append(&self, record: &Record<'_>) -> Result<Lsn> {
        let len = record_frame_len(record);
        let config = &self.shared.config;
        // Too large a record is refused below, compressible or not.
        let packed = if config.compression != Codec::None && len <= self.shared.max_frame_len() {
            super::compress::compress(config.compression, config.compress_min, record)
        } else {
            None
        };
        let lsn = match packed {
            Some(p) => {
                let kind = record_kind(record);
                let frame_len = (FRAME_HEADER_LEN + 4 + p.data.len()) as u64;
                self.shared.append_frame(frame_len, 1, |key, off| {
                    EncodedFrame::compressed(key, off, kind, p.codec, p.body_len, 1, &p.data)
                })?
            }
            None => self.shared.append_frame(len, 1, |key, off| EncodedFrame::record(key, off, record))?,
        };
        self.shared.after_append(lsn + 1)?;
        Ok(lsn)
    }

    /// Appends `records` as one atomic batch: after a crash, all of them or
    /// none are recovered. Returns their LSNs.
    ///
    /// # Errors
    ///
    /// As [`append`](Self::append), and [`Error::EmptyBatch`].
    pub fn append_batch(&self, records: &[Record<'_>]) -> Result<Range<Lsn>> {
        if records.is_empty() {
            return Err(Error::EmptyBatch);
        }
        let count = u32::try_from(records.len())
            .map_err(|_| Error::RecordTooLarge { len: u64::MAX, max: self.shared.max_frame_len() })?;
        let len = batch_frame_len(records);
        let first =
            self.shared.append_frame(len, count, |key, off| EncodedFrame::batch(key, off, records))?;
        let end = first + u64::from(count);
        self.shared.after_append(end)?;
        Ok(first..end)
    }

    /// Makes every record appended so far durable.
    ///
    /// # Errors
    ///
    /// [`Error::Poisoned`], or the I/O error that poisons the WAL.
    pub fn sync(&self) -> Result<()> {
        let end = lock(&self.shared.inner).next_lsn;
        self.shared.sync_until(end)
    }

    /// Waits until `lsn` is durable. Under [`FsyncPolicy::Batch`] it waits
    /// for the background sync, which comes within the window; under the
    /// other policies it syncs if no sync is under way.
    ///
    /// # Errors
    ///
    /// [`Error::LsnOutOfRange`] for an LSN not yet appended; as
    /// [`sync`](Self::sync).
    pub fn wait_durable(&self, lsn: Lsn) -> Result<()> {
        let (first, next) = {
            let inner = lock(&self.shared.inner);
            (inner.log_start, inner.next_lsn)
        };
        if lsn >= next {
            return Err(Error::LsnOutOfRange { lsn, first, next });
        }
        match self.shared.config.fsync {
            FsyncPolicy::Batch(_) => self.shared.wait_passive(lsn + 1),
            _ => self.shared.sync_until(lsn + 1),
        }
    }

    /// The highest durable LSN, or `None` when no record is durable.
    #[must_use]
    pub fn durable_lsn(&self) -> Option<Lsn> {
        let end = self.shared.durable_end.load(Ordering::Acquire);
        let start = lock(&self.shared.inner).log_start;
        (end > start).then(|| end - 1)
    }

    /// The LSN the next append gets.
    #[must_use]
    pub fn next_lsn(&self) -> Lsn {
        lock(&self.shared.inner).next_lsn
    }

    /// The first LSN the log holds.
    #[must_use]
    pub fn first_lsn(&self) -> Lsn {
        lock(&self.shared.inner).log_start
    }

    /// The number of segment files.
    #[must_use]
    pub fn segment_count(&self) -> usize {
        lock(&self.shared.inner).segments.len()
    }

    /// Counters of what the WAL has done since it was opened.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let inner = lock(&self.shared.inner);
        let shared = &self.shared;
        Stats {
            records: inner.next_lsn.saturating_sub(inner.opened_at),
            bytes_written: inner.bytes_written,
            syncs: shared.syncs.load(Ordering::Relaxed),
            sync_latency: SyncLatency {
                counts: std::array::from_fn(|i| shared.sync_latency[i].load(Ordering::Relaxed)),
            },
            segments_created: inner.segments_created,
            rotations: shared.rotations.load(Ordering::Relaxed),
            segments: inner.segments.len(),
            recovery: shared.recovery.clone(),
        }
    }

    /// Whether a failed write or sync poisoned the WAL.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::Acquire)
    }

    /// The largest encoded record (or batch) accepted, in bytes.
    #[must_use]
    pub fn max_record_len(&self) -> u64 {
        self.shared.max_frame_len()
    }

    /// Ends the active segment now (the next append starts a new file),
    /// making everything in it durable. Does nothing when it holds no
    /// record.
    ///
    /// # Errors
    ///
    /// As [`sync`](Self::sync).
    pub fn rotate(&self) -> Result<()> {
        let end = {
            let mut inner = lock(&self.shared.inner);
            self.shared.check_poison()?;
            self.shared.seal(&mut inner)?;
            inner.next_lsn
        };
        self.shared.sync_until(end)
    }

    /// Iterates over the records from `lsn` on, across segments. Records
    /// appended before this call are included (durable or not).
    ///
    /// # Errors
    ///
    /// [`Error::LsnOutOfRange`] when `lsn` is below the first LSN or above
    /// the next one; an I/O error while writing out buffered records.
    pub fn iter_from(&self, lsn: Lsn) -> Result<Iter<S>> {
        self.iter_at(Some(lsn))
    }

    /// An iterator from `lsn`, or from the first LSN when `None` (read
    /// under the same lock as the snapshot).
    fn iter_at(&self, lsn: Option<Lsn>) -> Result<Iter<S>> {
        let mut inner = lock(&self.shared.inner);
        self.shared.check_poison()?;
        let lsn = lsn.unwrap_or(inner.log_start);
        if lsn < inner.log_start || lsn > inner.next_lsn {
            return Err(Error::LsnOutOfRange { lsn, first: inner.log_start, next: inner.next_lsn });
        }
        self.shared.flush(&mut inner)?;
        let active_end = inner.active.as_ref().map(|a| a.pos);
        // The files are opened under the lock: no reclaim can remove one
        // between the snapshot and the open.
        Iter::new(
            &self.shared.fs,
            inner.segments.clone(),
            active_end,
            lsn,
            inner.next_lsn,
            inner.skips.clone(),
        )
    }

    /// Iterates over every record the log holds.
    ///
    /// # Errors
    ///
    /// As [`iter_from`](Self::iter_from).
    pub fn iter(&self) -> Result<Iter<S>> {
        self.iter_at(None)
    }

    /// Reclaims the records below `lsn`: they are no longer returned, and
    /// the segment files holding only such records are deleted. Durable: a
    /// crash afterwards never brings them back, nor loses a record at or
    /// above `lsn` that was durable. Records below `lsn` not yet durable are
    /// made durable first.
    ///
    /// # Errors
    ///
    /// [`Error::LsnOutOfRange`] when `lsn` is above the next LSN;
    /// [`Error::Poisoned`]; an I/O error.
    pub fn truncate_before(&self, lsn: Lsn) -> Result<()> {
        self.shared.exclusive(|shared, inner| shared.truncate_before(inner, lsn))
    }

    /// Drops every record after `lsn`, durably; the next append gets
    /// `lsn + 1`. For a Raft log whose suffix conflicts with the leader's.
    ///
    /// # Errors
    ///
    /// [`Error::LsnOutOfRange`] when `lsn + 1` is below the first LSN or
    /// `lsn` is not below the next LSN; [`Error::InsideBatch`] when `lsn`
    /// and `lsn + 1` are in one batch; [`Error::Poisoned`]; an I/O error.
    pub fn truncate_after(&self, lsn: Lsn) -> Result<()> {
        self.shared.exclusive(|shared, inner| shared.truncate_after(inner, lsn))
    }

    /// Closes the WAL: writes out and syncs what is buffered, and stops the
    /// background thread. Dropping the WAL does the same but cannot report
    /// a failure.
    ///
    /// # Errors
    ///
    /// As [`sync`](Self::sync).
    pub fn close(mut self) -> Result<()> {
        self.stop_worker();
        if self.is_poisoned() {
            return Err(self.shared.poison_error());
        }
        self.sync()?;
        self.shared.mark_closed()
    }

    fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            lock(&self.shared.timer).stop = true;
            self.shared.timer_wake.notify_all();
            let _ = worker.join();
        }
    }

    /// Stops the write-behind thread once it has written what it holds.
    fn stop_writer(&mut self) {
        if let (Some(writer), Some((state, wake))) = (self.writer.take(), &self.shared.behind) {
            lock(state).stop = true;
            wake.notify_all();
            let _ = writer.join();
        }
    }
}

impl<S: Fs> Drop for Wal<S> {
    fn drop(&mut self) {
        self.stop_worker();
        if !self.is_poisoned() {
            // Best effort: `close` reports failures.
            let _ = self.sync().and_then(|()| self.shared.mark_closed());
        }
        self.stop_writer();
    }
}

fn check_config(config: &WalConfig) -> Result<()> {
    let size = config.segment_size;
    if !(segment::MIN_SEGMENT..=segment::MAX_SEGMENT).contains(&size) {
        return Err(ConfigError::SegmentSize {
            given: size,
            min: segment::MIN_SEGMENT,
            max: segment::MAX_SEGMENT,
        }
        .into());
    }
    if config.max_record_len == 0 {
        return Err(ConfigError::RecordLimit.into());
    }
    if config.fsync == FsyncPolicy::Batch(Duration::ZERO) {
        return Err(ConfigError::BatchWindow.into());
    }
    if matches!(config.compression, super::config::Codec::Zstd { .. }) && !cfg!(feature = "zstd") {
        return Err(ConfigError::ZstdUnavailable.into());
    }
    Ok(())
}

impl<S: Fs> Shared<S> {
    fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// The largest frame a segment of the configured size takes, bounded by
    /// the record limit.
    fn max_frame_len(&self) -> u64 {
        let room = self.config.segment_size - segment::frames_offset() - MARK_FRAME_LEN;
        room.min(self.config.max_record_len)
    }

    #[inline]
    fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) { Err(self.poison_error()) } else { Ok(()) }
    }

    #[cold]
    fn poison_error(&self) -> Error {
        let cause = lock(&self.sync).poisoned.clone().unwrap_or_default();
        Error::Poisoned { cause }
    }

    /// Poisons the WAL with `error`'s description and returns `error`.
    fn poison(&self, error: Error) -> Error {
        let mut sync = lock(&self.sync);
        if sync.poisoned.is_none() {
            trace!(error, cause = %error, "WAL poisoned");
            sync.poisoned = Some(error.to_string());
        }
        self.poisoned.store(true, Ordering::Release);
        drop(sync);
        self.publish();
        error
    }

    /// Encodes a frame of `len` bytes holding `count` LSNs into the write
    /// buffer; returns its first LSN.
    #[inline]
    fn append_frame<'r>(
        &self,
        len: u64,
        count: u32,
        encode: impl FnOnce(EpochKey, u32) -> std::result::Result<EncodedFrame<'r>, nori_wal_core::EncodeError>,
    ) -> Result<Lsn> {
        let max = self.max_frame_len();
        if len > max {
            return Err(Error::RecordTooLarge { len, max });
        }
        let mut inner = lock(&self.inner);
        self.check_poison()?;
        let lsn = inner.next_lsn;
        let end = lsn.checked_add(u64::from(count)).ok_or(Error::Exhausted)?;
        let durable = self.durable_end.load(Ordering::Acquire);
        self.reserve(&mut inner, len, end, durable)?;
        let inner = &mut *inner;
        let Some(active) = inner.active.as_mut() else {
            return Err(self.no_active_segment());
        };
        let frame = encode(active.key, (lsn - active.base) as u32).map_err(|e| Error::Io {
            op: "encode a record for",
            path: active.path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
        })?;
        frame.append_to(&mut inner.buf);
        active.pos += frame.len() as u64;
        inner.next_lsn = end;
        if inner.buf.len() >= self.config.write_buffer {
            self.write_out(inner)?;
        }
        Ok(lsn)
    }

    #[cold]
    fn no_active_segment(&self) -> Error {
        self.poison(Error::Io {
            op: "append to",
            path: self.dir().to_path_buf(),
            source: std::io::Error::other("no active segment after reserve (a bug)"),
        })
    }

    /// Hands the full write buffer to the write-behind thread (waiting for
    /// a spare one), or writes it here when there is none.
    fn write_out(&self, inner: &mut Inner<S::File>) -> Result<()> {
        let Some((state, wake)) = &self.behind else { return self.flush(inner) };
        let Some(active) = inner.active.as_mut() else { return self.flush(inner) };
        let mut behind = lock(state);
        let spare = loop {
            if let Some(spare) = behind.spare.pop() {
                break spare;
            }
            behind.waiting += 1;
            behind = wake.wait(behind).unwrap_or_else(PoisonError::into_inner);
            behind.waiting -= 1;
        };
        // Once poisoned the writer writes nothing more, and the next call
        // reports it.
        let bytes = std::mem::replace(&mut inner.buf, spare);
        let at = active.written;
        active.written += bytes.len() as u64;
        inner.bytes_written += bytes.len() as u64;
        behind.queue.push_back(WriteJob {
            file: Arc::clone(&active.file),
            path: active.path.clone(),
            at,
            bytes,
        });
        let idle = behind.idle;
        drop(behind);
        if idle {
            wake.notify_all();
        }
        Ok(())
    }

    /// Waits until the write-behind thread has written every buffer handed
    /// to it. Called under the append lock, so none is added meanwhile.
    fn wait_written(&self) -> Result<()> {
        let Some((state, wake)) = &self.behind else { return Ok(()) };
        let mut behind = lock(state);
        while behind.busy || !behind.queue.is_empty() {
            behind.waiting += 1;
            behind = wake.wait(behind).unwrap_or_else(PoisonError::into_inner);
            behind.waiting -= 1;
        }
        drop(behind);
        self.check_poison()
    }

    /// The write-behind thread: writes the buffers handed to it, in order;
    /// a failure poisons the WAL (the next call reports it).
    fn write_behind(&self) {
        let Some((state, wake)) = &self.behind else { return };
        let mut behind = lock(state);
        loop {
            if let Some(mut job) = behind.queue.pop_front() {
                behind.busy = true;
                drop(behind);
                if !self.poisoned.load(Ordering::Acquire)
                    && let Err(e) = job.file.write_all_at(&job.bytes, job.at)
                {
                    self.poison(Error::io("write", &job.path, e));
                }
                job.bytes.clear();
                behind = lock(state);
                behind.busy = false;
                behind.spare.push(job.bytes);
                if behind.waiting > 0 {
                    wake.notify_all();
                }
                continue;
            }
            if behind.stop {
                return;
            }
            behind.idle = true;
            behind = wake.wait(behind).unwrap_or_else(PoisonError::into_inner);
            behind.idle = false;
        }
    }

    /// What the policy asks after an append ending at `end`.
    fn after_append(&self, end: Lsn) -> Result<()> {
        match self.config.fsync {
            FsyncPolicy::Always => self.sync_until(end),
            FsyncPolicy::Batch(_) => {
                if !self.dirty.swap(true, Ordering::AcqRel) {
                    let mut timer = lock(&self.timer);
                    timer.dirty_since.get_or_insert_with(Instant::now);
                    drop(timer);
                    self.timer_wake.notify_all();
                }
                Ok(())
            }
            FsyncPolicy::Os => Ok(()),
        }
    }

    /// Makes room in the active segment for a frame of `len` bytes whose
    /// LSNs end at `end` (and the mark that must precede it), rotating when
    /// there is none. The common case, room and no mark due, is inline.
    #[inline]
    fn reserve(&self, inner: &mut Inner<S::File>, len: u64, end: Lsn, durable: Lsn) -> Result<()> {
        match &inner.active {
            Some(active) if active.marked_durable >= durable && active.takes(len, end) => Ok(()),
            _ => self.make_room(inner, len, end, durable),
        }
    }

    /// [`reserve`](Self::reserve) when a segment must start, or be sealed,
    /// or a mark is due.
    #[cold]
    fn make_room(&self, inner: &mut Inner<S::File>, len: u64, end: Lsn, durable: Lsn) -> Result<()> {
        loop {
            let Some(active) = inner.active.as_ref() else {
                self.start_segment(inner)?;
                continue;
            };
            let needs_mark = active.marked_durable < durable;
            let mark_len = if needs_mark { MARK_FRAME_LEN } else { 0 };
            if active.takes(mark_len + len, end) {
                if needs_mark {
                    self.write_mark(inner, durable);
                }
                return Ok(());
            }
            self.seal(inner)?;
        }
    }

    /// Buffers a mark of the durable point and the log's start.
    fn write_mark(&self, inner: &mut Inner<S::File>, durable: Lsn) {
        let mark = Mark { durable_end: durable, log_start: inner.log_start };
        let next = inner.next_lsn;
        if let Some(active) = inner.active.as_mut() {
            segment::encode_mark(&mut inner.buf, active.key, (next - active.base) as u32, mark);
            active.pos += MARK_FRAME_LEN;
            active.marked_durable = durable;
        }
    }

    /// At close, with every record durable: a mark saying so, synced, so
    /// that recovery tells later damage to these records from a tail that
    /// was never synced.
    fn mark_closed(&self) -> Result<()> {
        let mut inner = lock(&self.inner);
        self.check_poison()?;
        let durable = self.durable_end.load(Ordering::Acquire);
        let Some(active) = inner.active.as_ref() else { return Ok(()) };
        let room = active.pos + MARK_FRAME_LEN <= active.size;
        if active.marked_durable >= durable || durable < inner.next_lsn || !room {
            return Ok(());
        }
        self.write_mark(&mut inner, durable);
        self.flush(&mut inner)?;
        if let Some(active) = inner.active.as_ref() {
            self.sync_file(&active.file, &active.path)?;
        }
        Ok(())
    }

    /// Writes the buffered bytes to the active file; a failure poisons.
    pub(crate) fn flush(&self, inner: &mut Inner<S::File>) -> Result<()> {
        self.wait_written()?;
        if inner.buf.is_empty() {
            return Ok(());
        }
        let Some(active) = inner.active.as_mut() else {
            inner.buf.clear();
            return Ok(());
        };
        if let Err(e) = active.file.write_all_at(&inner.buf, active.written) {
            return Err(self.poison(Error::io("write", &active.path, e)));
        }
        active.written += inner.buf.len() as u64;
        inner.bytes_written += inner.buf.len() as u64;
        inner.buf.clear();
        Ok(())
    }

    /// Ends the active segment: its bytes are written out, and the next
    /// sync syncs it (sealing does not wait for the disk; the next
    /// segment's first mark says how far the log was durable, so recovery
    /// knows an unsynced tail from damage).
    fn seal(&self, inner: &mut Inner<S::File>) -> Result<()> {
        let Some(active) = inner.active.as_ref() else { return Ok(()) };
        if active.pos == segment::frames_offset() + MARK_FRAME_LEN && inner.next_lsn == active.base {
            return Ok(());
        }
        self.flush(inner)?;
        self.rotations.fetch_add(1, Ordering::Relaxed);
        trace!(debug, next_lsn = inner.next_lsn, "segment sealed");
        if let Some(active) = inner.active.take()
            && self.durable_end.load(Ordering::Acquire) < inner.next_lsn
        {
            inner.unsynced.push(Sealed { file: active.file, path: active.path, end: inner.next_lsn });
        }
        Ok(())
    }

    /// Syncs the sealed segments not yet synced, oldest first (under the
    /// append lock, or with the list taken out of it).
    fn sync_sealed(&self, sealed: &[Sealed<S::File>]) -> Result<()> {
        sealed.iter().try_for_each(|s| self.sync_file(&s.file, &s.path))
    }

    /// `fdatasync` of a segment file, counted; a failure poisons.
    fn sync_file(&self, file: &S::File, path: &Path) -> Result<()> {
        self.count_sync(file).map_err(|e| self.poison(Error::io("sync", path, e)))
    }

    /// Tells waiters (async ones through the watch channel, blocking ones
    /// through the turn condition variables) that the durable end or the
    /// poison changed.
    fn publish(&self) {
        self.publish_durable(self.poisoned.load(Ordering::Acquire));
        for cv in &self.turns {
            cv.notify_all();
        }
    }

    /// Sends the durable end and the poison to async waiters, if changed.
    fn publish_durable(&self, poisoned: bool) {
        let state = (self.durable_end.load(Ordering::Acquire), poisoned);
        self.durable_tx.send_if_modified(|current| {
            let changed = *current != state;
            *current = state;
            changed
        });
    }

    /// `fdatasync`, counted.
    fn count_sync(&self, file: &S::File) -> std::io::Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = file.sync_data();
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let bucket = (u64::BITS - micros.leading_zeros()) as usize;
        self.sync_latency[bucket.min(SYNC_LATENCY_BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        result
    }

    /// Records that LSNs below `end` are durable, unless the WAL is poisoned.
    fn advance_durable(&self, end: Lsn) -> Result<()> {
        let sync = lock(&self.sync);
        if let Some(cause) = &sync.poisoned {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        self.durable_end.fetch_max(end, Ordering::AcqRel);
        drop(sync);
        self.publish();
        Ok(())
    }

    /// Creates the next segment file, starting at the next LSN.
    fn start_segment(&self, inner: &mut Inner<S::File>) -> Result<()> {
        let epoch = inner.max_epoch.checked_add(1).ok_or(Error::Exhausted)?;
        let size = self.config.segment_size;
        let header = SegmentHeader::new(epoch, inner.next_lsn, size, 1)
            .and_then(|h| h.with_log_start(inner.log_start.min(inner.next_lsn)))
            .map_err(|_| Error::Exhausted)?;
        // Its first frame records how far the log is durable: the older
        // segments' bytes past that point may be lost in a crash.
        let durable = self.durable_end.load(Ordering::Acquire);
        let mark = Mark { durable_end: durable, log_start: header.log_start };
        // A failure here (a full disk) leaves nothing behind and appends nothing.
        let (file, path) = segment::create(&self.fs, self.dir(), &header, mark, self.config.preallocate)?;
        trace!(debug, base_lsn = header.base_lsn, epoch, "segment created");
        inner.max_epoch = epoch;
        inner.segments_created += 1;
        inner.bytes_written += segment::frames_offset();
        inner.segments.push(SegMeta { base: header.base_lsn, epoch, size, path: path.clone() });
        inner.active = Some(Active {
            file: Arc::new(file),
            path,
            key: EpochKey::new(epoch),
            base: header.base_lsn,
            size,
            pos: segment::frames_offset() + MARK_FRAME_LEN,
            written: segment::frames_offset() + MARK_FRAME_LEN,
            marked_durable: durable,
            created: Instant::now(),
        });
        Ok(())
    }

    /// Group commit: returns once every LSN below `end` is durable, leading
    /// a sync when none is under way. The sync runs outside the append lock.
    ///
    /// Waiters whose records the running sync covers wait on the condition
    /// variable of its turn and are all released when it ends; the others
    /// wait on the next turn's, and one of them is woken to lead it. So a
    /// sync wakes each thread it made durable once, and one more.
    pub(crate) fn sync_until(&self, end: Lsn) -> Result<()> {
        let mut sync = lock(&self.sync);
        loop {
            if let Some(cause) = &sync.poisoned {
                return Err(Error::Poisoned { cause: cause.clone() });
            }
            if self.durable_end.load(Ordering::Acquire) >= end {
                if !sync.busy && sync.next_waiters > 0 {
                    // Woken to lead but not needed: pass the turn on.
                    self.turns[(sync.turn & 1) as usize].notify_one();
                }
                return Ok(());
            }
            if sync.busy {
                let turn = sync.turn;
                if sync.covered_end.is_none_or(|covered| covered >= end) {
                    // The running turn covers this record (or has not
                    // flushed yet): wait for it to end.
                    while sync.turn == turn && sync.poisoned.is_none() {
                        sync = self.turns[(turn & 1) as usize]
                            .wait(sync)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                } else {
                    sync.next_waiters += 1;
                    while sync.turn == turn && sync.poisoned.is_none() {
                        let cv = &self.turns[((turn + 1) & 1) as usize];
                        sync = cv.wait(sync).unwrap_or_else(PoisonError::into_inner);
                    }
                    // Wait for the election after the turn ends.
                    while sync.busy && sync.turn == turn + 1 && sync.poisoned.is_none() {
                        let cv = &self.turns[((turn + 1) & 1) as usize];
                        sync = cv.wait(sync).unwrap_or_else(PoisonError::into_inner);
                    }
                    sync.next_waiters -= 1;
                }
                continue;
            }
            sync.busy = true;
            sync.covered_end = None;
            drop(sync);
            let result = self.lead_sync();
            sync = lock(&self.sync);
            if let Ok(flushed) = result
                && sync.poisoned.is_none()
            {
                self.durable_end.fetch_max(flushed, Ordering::AcqRel);
            }
            self.end_turn(&mut sync);
            result?;
        }
    }

    /// Waits, without leading a sync, until every LSN below `end` is durable
    /// (the batch timer, or another thread, syncs).
    pub(crate) fn wait_passive(&self, end: Lsn) -> Result<()> {
        let mut sync = lock(&self.sync);
        loop {
            if let Some(cause) = &sync.poisoned {
                return Err(Error::Poisoned { cause: cause.clone() });
            }
            if self.durable_end.load(Ordering::Acquire) >= end {
                return Ok(());
            }
            // Woken when a turn ends or the durable point moves otherwise.
            let cv = &self.turns[(sync.turn & 1) as usize];
            sync = cv.wait(sync).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Ends the running turn: releases its waiters and elects the next
    /// leader among the others.
    fn end_turn(&self, sync: &mut SyncState) {
        self.publish_durable(sync.poisoned.is_some());
        let turn = sync.turn;
        sync.busy = false;
        sync.covered_end = None;
        sync.turn += 1;
        self.turns[(turn & 1) as usize].notify_all();
        if sync.poisoned.is_some() {
            self.turns[((turn + 1) & 1) as usize].notify_all();
        } else if sync.next_waiters > 0 {
            self.turns[((turn + 1) & 1) as usize].notify_one();
        }
    }

    /// Writes out the buffer under the append lock, then syncs outside it.
    /// Returns the LSN below which records are durable.
    fn lead_sync(&self) -> Result<Lsn> {
        // No waiting for more appends first: what arrives during this sync
        // is covered by the next one, which starts as soon as this ends.
        let (sealed, file, flushed) = {
            let mut inner = lock(&self.inner);
            self.check_poison()?;
            self.flush(&mut inner)?;
            let sealed: Vec<Sealed<S::File>> = inner
                .unsynced
                .iter()
                .map(|s| Sealed { file: Arc::clone(&s.file), path: s.path.clone(), end: s.end })
                .collect();
            let file = inner.active.as_ref().map(|a| (Arc::clone(&a.file), a.path.clone()));
            (sealed, file, inner.next_lsn)
        };
        // Waiters arriving from here on know whether this sync covers them.
        lock(&self.sync).covered_end = Some(flushed);
        self.sync_sealed(&sealed)?;
        if let Some((file, path)) = file {
            self.sync_file(&file, &path)?;
        }
        if !sealed.is_empty() {
            lock(&self.inner).unsynced.retain(|s| s.end > flushed);
        }
        Ok(flushed)
    }

    /// Runs `op` under the append lock with no sync under way, so that the
    /// durable point cannot move behind its back.
    fn exclusive<T>(&self, op: impl FnOnce(&Self, &mut Inner<S::File>) -> Result<T>) -> Result<T> {
        let mut sync = lock(&self.sync);
        while sync.busy {
            let turn = sync.turn;
            sync = self.turns[(turn & 1) as usize].wait(sync).unwrap_or_else(PoisonError::into_inner);
        }
        sync.busy = true;
        // Nothing this turn does makes a waiter's record durable.
        sync.covered_end = Some(0);
        drop(sync);
        let result = {
            let mut inner = lock(&self.inner);
            self.check_poison().and_then(|()| op(self, &mut inner))
        };
        self.end_turn(&mut lock(&self.sync));
        result
    }

    fn truncate_before(&self, inner: &mut Inner<S::File>, lsn: Lsn) -> Result<()> {
        let (first, next) = (inner.log_start, inner.next_lsn);
        if lsn > next {
            return Err(Error::LsnOutOfRange { lsn, first, next });
        }
        if lsn <= first {
            return Ok(());
        }
        // No crash may bring back a log that ends below its own start: the
        // records below it are durable, or the newest segment (created
        // durably) starts at or after it, so that recovery finds the start
        // there and keeps the log from it (empty if nothing after it
        // survived).
        let covered = inner.active.as_ref().is_some_and(|a| a.base >= lsn);
        if self.durable_end.load(Ordering::Acquire) < lsn && !covered {
            self.flush(inner)?;
            let sealed = std::mem::take(&mut inner.unsynced);
            self.sync_sealed(&sealed)?;
            if let Some(active) = inner.active.as_ref() {
                self.sync_file(&active.file, &active.path)?;
            }
            self.advance_durable(inner.next_lsn)?;
        }
        // Then the new start, in the lock file: a small write and sync that
        // needs no room in a segment (a full disk) and leaves the active
        // segment's unsynced data alone.
        self.record_start(lsn)?;
        inner.log_start = lsn;
        trace!(info, lsn, "truncated before");
        // Then delete the files wholly below it, oldest first. A crash in
        // between leaves files that recovery removes.
        let keep_from = inner.segments.iter().rposition(|s| s.base <= lsn).unwrap_or(0);
        let doomed: Vec<SegMeta> = inner.segments.drain(..keep_from).collect();
        inner.skips.retain(|s| s.lsn >= lsn);
        inner.unsynced.retain(|s| !doomed.iter().any(|d| d.path == s.path));
        for seg in &doomed {
            self.fs.remove(&seg.path).map_err(|e| Error::io("remove", &seg.path, e))?;
        }
        if !doomed.is_empty() {
            self.fs.sync_dir(self.dir()).map_err(|e| Error::io("sync", self.dir(), e))?;
        }
        Ok(())
    }

    fn truncate_after(&self, inner: &mut Inner<S::File>, lsn: Lsn) -> Result<()> {
        let (first, next) = (inner.log_start, inner.next_lsn);
        let Some(keep) = lsn.checked_add(1).filter(|&k| k >= first && k <= next) else {
            return Err(Error::LsnOutOfRange { lsn, first, next });
        };
        if keep == next {
            return Ok(());
        }
        self.flush(inner)?;
        // Where the cut falls, found before anything changes (it may fall
        // inside a batch): the frame of `keep` in the last segment starting
        // below it.
        let cut = match inner.segments.iter().rposition(|s| s.base < keep) {
            Some(i) => {
                let seg = inner.segments[i].clone();
                let file = match inner.active.as_ref().filter(|a| a.path == seg.path) {
                    Some(active) => Arc::clone(&active.file),
                    None => Arc::new(
                        self.fs
                            .open(&seg.path, OpenMode::ReadWrite)
                            .map_err(|e| Error::io("open", &seg.path, e))?,
                    ),
                };
                let pos = self.frame_of(&*file, &seg, keep, &inner.skips)?;
                Some((seg, file, pos))
            }
            None => None,
        };
        // The files about to go may hold the only record of the log's start.
        if inner.log_start > 0 {
            self.record_start(inner.log_start)?;
        }
        // Files starting at or after the cut go, newest first, each durably,
        // so that a crash leaves a log that is a prefix of this one.
        inner.active = None;
        while let Some(seg) = inner.segments.pop_if(|s| s.base >= keep) {
            self.fs.remove(&seg.path).map_err(|e| self.poison(Error::io("remove", &seg.path, e)))?;
            self.fs.sync_dir(self.dir()).map_err(|e| self.poison(Error::io("sync", self.dir(), e)))?;
        }
        if let Some((seg, file, pos)) = cut {
            self.write_cut_copy(&seg, &*file, pos).map_err(|e| self.poison(e))?;
        }
        inner.skips.retain(|s| s.lsn < keep);
        // Files past the cut are gone and the cut file's copy was synced.
        inner.unsynced.retain(|s| s.end <= keep);
        trace!(info, lsn, "truncated after");
        inner.next_lsn = keep;
        inner.buf.clear();
        let durable = self.durable_end.load(Ordering::Acquire).min(keep);
        self.durable_end.store(durable, Ordering::Release);
        self.durable_tx.send_replace((durable, false));
        Ok(())
    }

    /// Replaces the segment file `seg` by a copy of its first `pos` bytes:
    /// written and synced under a temporary name, renamed over the file, the
    /// directory synced. The file itself is never shrunk, so a reader's map
    /// of it stays whole (and a crash leaves the old file or the new one).
    fn write_cut_copy(&self, seg: &SegMeta, file: &S::File, pos: u64) -> Result<()> {
        let tmp = segment::cut_name(&seg.path);
        match self.fs.remove(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &tmp, e)),
        }
        let out = self.fs.open(&tmp, OpenMode::CreateNew).map_err(|e| Error::io("create", &tmp, e))?;
        let mut buf = vec![0u8; (1 << 20).min(pos as usize)];
        let mut at = 0;
        while at < pos {
            let n = ((pos - at) as usize).min(buf.len());
            crate::fs::read_exact_at(file, &mut buf[..n], at).map_err(|e| Error::io("read", &seg.path, e))?;
            out.write_all_at(&buf[..n], at).map_err(|e| Error::io("write", &tmp, e))?;
            at += n as u64;
        }
        out.sync_data().map_err(|e| Error::io("sync", &tmp, e))?;
        self.fs.rename(&tmp, &seg.path).map_err(|e| Error::io("rename", &tmp, e))?;
        self.fs.sync_dir(self.dir()).map_err(|e| Error::io("sync", self.dir(), e))
    }

    /// Records the log's start in the lock file, durably; a failure poisons.
    fn record_start(&self, log_start: Lsn) -> Result<()> {
        let seq = self.start_seq.fetch_add(1, Ordering::AcqRel) + 1;
        segment::write_start(&self.lock_file, seq, log_start).map_err(|e| {
            self.poison(Error::io("record the log start in", self.dir().join(segment::LOCK_FILE), e))
        })
    }

    /// The offset of the frame starting at `lsn` in the segment `seg`.
    fn frame_of(&self, file: &S::File, seg: &SegMeta, lsn: Lsn, skips: &[Skip]) -> Result<u64> {
        let mut device = FileDevice { file, capacity: seg.size };
        let mut buffer = vec![0u8; 64 << 10];
        let read_error = |e: nori_wal_core::ring::Error<segment::IoError>| {
            Error::io("read", &seg.path, std::io::Error::other(e.to_string()))
        };
        let header = match SegmentReader::open(&mut device, &mut buffer, false).map_err(read_error)? {
            Ok(reader) => *reader.header(),
            Err(_) => {
                let c = super::Corruption {
                    path: seg.path.clone(),
                    offset: 0,
                    lsn,
                    damage: nori_wal_core::segment::Damage::MissingSegment,
                };
                return Err(Error::Corrupt(c));
            }
        };
        let mut device = FileDevice { file, capacity: seg.size };
        let mut reader =
            SegmentReader::with_header(&mut device, &mut buffer, false, header).map_err(read_error)?;
        let mut from = None;
        loop {
            let stop = reader.walk(from, Some(lsn)).map_err(read_error)?;
            match stop.damage {
                None => return Ok(stop.pos),
                Some(nori_wal_core::segment::Damage::LsnMismatch { found }) if found == stop.lsn => {
                    return Err(Error::InsideBatch { lsn: lsn - 1 });
                }
                Some(damage) => match skips.iter().find(|s| s.base == seg.base && s.from == stop.pos) {
                    Some(skip) if skip.lsn <= lsn => from = Some((skip.to, skip.lsn)),
                    _ => {
                        let c = super::Corruption {
                            path: seg.path.clone(),
                            offset: stop.pos,
                            lsn: stop.lsn,
                            damage,
                        };
                        return Err(Error::Corrupt(c));
                    }
                },
            }
        }
    }

    /// The background thread: syncs within the batch window and rotates
    /// segments older than the age limit.
    fn background(&self) {
        let window = match self.config.fsync {
            FsyncPolicy::Batch(window) => Some(window),
            _ => None,
        };
        let age = self.config.max_segment_age;
        let mut timer = lock(&self.timer);
        loop {
            if timer.stop {
                return;
            }
            let now = Instant::now();
            let sync_due = window.and_then(|w| timer.dirty_since.map(|t| t + w));
            let rotate_due = age.and_then(|a| self.active_created().map(|t| t + a));
            let next = [sync_due, rotate_due].into_iter().flatten().min();
            let wait = next.map_or(Duration::from_secs(1), |t| t.saturating_duration_since(now));
            if !wait.is_zero() {
                timer = self.timer_wake.wait_timeout(timer, wait).unwrap_or_else(PoisonError::into_inner).0;
                continue;
            }
            let do_sync = sync_due.is_some_and(|t| t <= now);
            if do_sync {
                timer.dirty_since = None;
            }
            drop(timer);
            if do_sync {
                self.dirty.store(false, Ordering::Release);
                let end = lock(&self.inner).next_lsn;
                // A failure poisons the WAL; appenders see it.
                let _ = self.sync_until(end);
            }
            if rotate_due.is_some_and(|t| t <= now) {
                let mut inner = lock(&self.inner);
                let old =
                    inner.active.as_ref().is_some_and(|a| age.is_some_and(|age| a.created.elapsed() >= age));
                if old && !self.poisoned.load(Ordering::Acquire) {
                    let _ = self.seal(&mut inner);
                }
            }
            timer = lock(&self.timer);
        }
    }

    /// When the active segment that holds records was created.
    fn active_created(&self) -> Option<Instant> {
        let inner = lock(&self.inner);
        let active = inner.active.as_ref()?;
        (inner.next_lsn > active.base).then_some(active.created)
    }
}

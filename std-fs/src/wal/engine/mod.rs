//! The engine of the file WAL: the [`Wal`] facade and the state its parts
//! share. Each part has one job:
//!
//! | module | job |
//! |---|---|
//! | `open` | the directory, its lock, recovery, the threads |
//! | `append` | the write buffer, segments (start, mark, seal), flushing |
//! | `commit` | group commit: the durable point, turns, the poisoned state |
//! | `behind` | write-behind of full buffers on a thread of their own |
//! | `timer` | the batch window's sync and age rotation |
//! | `truncate` | reclaim (`truncate_before`), the suffix cut (`truncate_from`, `truncate_after`) and starting over (`restart_at`) |
//! | `stats` | counters and the sync-latency histogram |

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use nori_wal_core::format::{FRAME_HEADER_LEN, batch_frame_len, record_frame_len, record_kind};
use nori_wal_core::{Lsn, Record};

use super::config::{Codec, FsyncPolicy, WalConfig};
use super::error::Error;
use super::iter::Iter;
use super::recovery::RecoveryInfo;
use super::segment;
use super::sync::{AtomicU64, JoinHandle, Mutex};
use crate::fs::{Fs, StdFs};

mod append;
mod behind;
mod commit;
mod holes;
mod open;
mod stats;
mod timer;
mod truncate;

pub(crate) use append::Inner;
use append::{Payload, Wait};
pub(crate) use commit::lock;
pub(crate) use commit::{GroupCommit, Poisoned};
pub use holes::Declared;
pub use stats::{SYNC_LATENCY_BUCKETS, Stats, SyncLatency};
pub(crate) use timer::{Due, Timer};

type Result<T> = std::result::Result<T, Error>;

/// What the WAL's parts share.
pub(crate) struct Shared<S: Fs> {
    pub(crate) fs: S,
    pub(crate) config: WalConfig,
    /// The append lock: segments, the write buffer, the next LSN.
    pub(crate) inner: Mutex<Inner<S::File>>,
    /// The durable point, its waiters and the poisoned state.
    pub(crate) commit: GroupCommit<Arc<Error>>,
    timer: timer::Timer,
    /// Write-behind, when the policy uses it.
    behind: Option<behind::WriteBehind<S::File>>,
    counters: stats::Counters,
    recovery: RecoveryInfo,
    /// Holds the directory's lock for the WAL's lifetime, and the log's
    /// start when `truncate_after` removes the segments that recorded it.
    lock_file: S::File,
    /// Sequence of the last start written to the lock file.
    start_seq: AtomicU64,
}

impl From<Poisoned<Arc<Error>>> for Error {
    fn from(p: Poisoned<Arc<Error>>) -> Self {
        Self::Poisoned { cause: p.0 }
    }
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
            .field("durable_end", &self.shared.commit.durable_end())
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
    /// Its shared state, for the async API.
    #[cfg(feature = "async")]
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
        let lsn = self.append_record(record, Wait::Block)?.ok_or_else(blocked)?;
        self.shared.after_append(lsn + 1)?;
        Ok(lsn)
    }

    /// Appends `record` (compressed as configured) into the write buffer;
    /// `None` when `wait` forbids blocking and appending would block.
    fn append_record(&self, record: &Record<'_>, wait: Wait) -> Result<Option<Lsn>> {
        // The payload's length (a v1 frame's length less its header).
        let len = record_frame_len(record) - FRAME_HEADER_LEN as u64;
        let config = &self.shared.config;
        // Too large a record is refused below, compressible or not.
        let packed = if config.compression != Codec::None
            && nori_wal_core::format::frame_len_of(config.format, len) <= self.shared.max_frame_len()
        {
            super::compress::compress(config.compression, config.compress_min, record)
        } else {
            None
        };
        match packed {
            Some(p) => {
                let kind = record_kind(record);
                let payload =
                    Payload::Compressed { kind, codec: p.codec, body_len: p.body_len, data: &p.data };
                self.shared.append_frame(4 + p.data.len() as u64, 1, wait, payload)
            }
            None => self.shared.append_frame(len, 1, wait, Payload::Record(record)),
        }
    }

    /// Appends `record` if that cannot block (the async API's fast path, on
    /// the calling task): it goes into the write buffer, and under
    /// [`FsyncPolicy::Batch`] the timer is told. Nothing is synced: the
    /// caller waits for durability as the policy says. `None` when it would
    /// block (nothing was appended).
    #[cfg(feature = "async")]
    pub(crate) fn append_now(&self, record: &Record<'_>) -> Result<Option<Lsn>> {
        let lsn = self.append_record(record, Wait::Never)?;
        if lsn.is_some() && matches!(self.shared.config.fsync, FsyncPolicy::Batch(_)) {
            self.shared.timer.mark_dirty();
        }
        Ok(lsn)
    }

    /// Appends `record`, blocking if it must (a new segment, a full buffer),
    /// but never waiting for it to be durable: the caller does, as it
    /// chooses (under [`FsyncPolicy::Batch`] the timer is told).
    #[cfg(feature = "openraft")]
    pub(crate) fn append_pending(&self, record: &Record<'_>) -> Result<Lsn> {
        let lsn = self.append_record(record, Wait::Block)?.ok_or_else(blocked)?;
        if matches!(self.shared.config.fsync, FsyncPolicy::Batch(_)) {
            self.shared.timer.mark_dirty();
        }
        Ok(lsn)
    }

    /// [`append_now`](Self::append_now) for an atomic batch.
    #[cfg(feature = "async")]
    pub(crate) fn append_batch_now(&self, records: &[Record<'_>]) -> Result<Option<Range<Lsn>>> {
        let Some(range) = self.append_batch_records(records, Wait::Never)? else { return Ok(None) };
        if matches!(self.shared.config.fsync, FsyncPolicy::Batch(_)) {
            self.shared.timer.mark_dirty();
        }
        Ok(Some(range))
    }

    /// Asks the background thread for a sync that makes every LSN below
    /// `end` durable (in the same group commit as every other caller); the
    /// caller waits for it on the durable point, holding no thread.
    #[cfg(feature = "async")]
    pub(crate) fn request_sync(&self, end: Lsn) {
        if self.shared.commit.durable_end() < end {
            self.shared.timer.request_sync();
        }
    }

    /// Appends `records` as one atomic batch: after a crash, all of them or
    /// none are recovered. Returns their LSNs.
    ///
    /// # Errors
    ///
    /// As [`append`](Self::append), and [`Error::EmptyBatch`].
    pub fn append_batch(&self, records: &[Record<'_>]) -> Result<Range<Lsn>> {
        let range = self.append_batch_records(records, Wait::Block)?.ok_or_else(blocked)?;
        self.shared.after_append(range.end)?;
        Ok(range)
    }

    /// Appends `records` as one frame into the write buffer; `None` when
    /// `wait` forbids blocking and appending would block.
    fn append_batch_records(&self, records: &[Record<'_>], wait: Wait) -> Result<Option<Range<Lsn>>> {
        if records.is_empty() {
            return Err(Error::EmptyBatch);
        }
        let count = u32::try_from(records.len())
            .map_err(|_| Error::RecordTooLarge { len: u64::MAX, max: self.shared.max_frame_len() })?;
        let len = batch_frame_len(records) - FRAME_HEADER_LEN as u64;
        let first = self.shared.append_frame(len, count, wait, Payload::Batch(records))?;
        Ok(first.map(|first| first..first + u64::from(count)))
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
        let end = self.shared.commit.durable_end();
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
        let (syncs, sync_latency, rotations) = self.shared.counters.read();
        Stats {
            records: inner.next_lsn.saturating_sub(inner.opened_at),
            bytes_written: inner.bytes_written,
            syncs,
            sync_latency,
            segments_created: inner.segments_created,
            rotations,
            segments: inner.segments.len(),
            task_wakeups: self.shared.commit.task_wakeups(),
            recovery: self.shared.recovery.clone(),
        }
    }

    /// Whether a failed write or sync poisoned the WAL.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.shared.commit.is_poisoned()
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

    /// Makes the damage that recovery skipped (under
    /// [`RecoveryMode::SkipDamaged`](crate::RecoveryMode::SkipDamaged))
    /// permanent, so that the log opens in every recovery mode: each
    /// format v2 segment whose damage was skipped is rewritten with a hole
    /// frame in place of each damaged span, declaring its LSNs lost (its
    /// records are copied as they are, under a temporary name renamed over
    /// the file), and files recovery skipped whole for a damaged header are
    /// removed. Readers step over the holes;
    /// [`RecoveryInfo::holes`](crate::RecoveryInfo::holes) counts their
    /// LSNs at the next open. The damaged bytes are gone afterwards: keep a
    /// copy of the directory first (`nori-wal repair` makes one).
    /// Segments of format version 1 have no hole frame and keep their
    /// damage ([`Declared::left_damaged`]).
    ///
    /// ```
    /// use nori_wal::blocking::Wal;
    /// use nori_wal::{Record, RecoveryMode, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-declare-doc-{}", std::process::id()));
    /// let (wal, _) = Wal::open(WalConfig::new(&dir).recovery(RecoveryMode::SkipDamaged))?;
    /// wal.append(&Record::raw(b"x"))?;
    /// // Nothing was skipped: nothing to declare.
    /// assert_eq!(wal.declare_lost()?.holes, 0);
    /// # drop(wal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Poisoned`]; an I/O error (the segment being rewritten is
    /// left as it was).
    pub fn declare_lost(&self) -> Result<Declared> {
        self.shared.exclusive(|shared, inner| shared.declare_lost(inner))
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
        self.shared.exclusive(|shared, inner| {
            let (first, next) = (inner.log_start, inner.next_lsn);
            match lsn.checked_add(1) {
                Some(keep) if keep >= first && keep <= next => shared.truncate_from(inner, keep),
                _ => Err(Error::LsnOutOfRange { lsn, first, next }),
            }
        })
    }

    /// Drops every record at and after `lsn`, durably; the next append
    /// gets `lsn`. With `lsn` the first LSN, the log is left empty
    /// (something [`truncate_after`](Self::truncate_after) cannot say when
    /// the first LSN is 0). For a Raft log truncated from an index.
    ///
    /// ```
    /// use nori_wal::blocking::Wal;
    /// use nori_wal::{Record, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-truncate-from-doc-{}", std::process::id()));
    /// let (wal, _) = Wal::open(WalConfig::new(&dir))?;
    /// wal.append(&Record::raw(b"a"))?;
    /// wal.append(&Record::raw(b"b"))?;
    /// wal.truncate_from(0)?;
    /// assert_eq!((wal.first_lsn(), wal.next_lsn()), (0, 0));
    /// assert_eq!(wal.append(&Record::raw(b"c"))?, 0);
    /// # drop(wal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::LsnOutOfRange`] when `lsn` is below the first LSN or above
    /// the next; [`Error::InsideBatch`] when `lsn - 1` and `lsn` are in one
    /// batch; [`Error::Poisoned`]; an I/O error.
    pub fn truncate_from(&self, lsn: Lsn) -> Result<()> {
        self.shared.exclusive(|shared, inner| shared.truncate_from(inner, lsn))
    }

    /// Drops every record, durably, and starts the log over at `lsn`: the
    /// next append gets `lsn`, and the first LSN is `lsn`. For a Raft log
    /// whose snapshot moved past its last entry (a purge past the log's
    /// end). A crash during the call leaves the log as it was, or empty,
    /// starting at the next LSN it had or at `lsn`.
    ///
    /// ```
    /// use nori_wal::blocking::Wal;
    /// use nori_wal::{Record, WalConfig};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-restart-doc-{}", std::process::id()));
    /// let (wal, _) = Wal::open(WalConfig::new(&dir))?;
    /// wal.append(&Record::raw(b"a"))?;
    /// wal.restart_at(100)?;
    /// assert_eq!((wal.first_lsn(), wal.next_lsn()), (100, 100));
    /// assert_eq!(wal.append(&Record::raw(b"b"))?, 100);
    /// # drop(wal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::LsnOutOfRange`] when `lsn` is below the next LSN (LSNs are
    /// never given twice; [`truncate_from`](Self::truncate_from) empties
    /// the log from its first LSN); [`Error::Poisoned`]; an I/O error.
    pub fn restart_at(&self, lsn: Lsn) -> Result<()> {
        self.shared.exclusive(|shared, inner| shared.restart_at(inner, lsn))
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
        self.shared.commit.check()?;
        self.sync()?;
        self.shared.mark_closed()
    }

    fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.shared.timer.stop();
            let _ = worker.join();
        }
    }

    /// Stops the write-behind thread once it has written what it holds.
    fn stop_writer(&mut self) {
        if let (Some(writer), Some(behind)) = (self.writer.take(), &self.shared.behind) {
            behind.stop();
            let _ = writer.join();
        }
    }
}

/// What a blocking append that says it would block returns (it never does).
#[cold]
fn blocked() -> Error {
    Error::Internal { what: "an append allowed to block said it would block" }
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

impl<S: Fs> Shared<S> {
    fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// The largest frame a segment of the configured size takes, bounded by
    /// the record limit.
    fn max_frame_len(&self) -> u64 {
        let (version, size) = (self.config.format, self.config.segment_size);
        let room = segment::frames_end(version, size)
            - segment::frames_offset(version)
            - segment::mark_frame_len(version);
        room.min(self.config.max_record_len)
    }

    #[inline]
    fn check_poison(&self) -> Result<()> {
        Ok(self.commit.check()?)
    }

    /// Poisons the WAL with `error` (unless an earlier failure did) and
    /// returns `error`: its caller reports it, every later call reports
    /// [`Error::Poisoned`] with a copy of it as the cause.
    #[cold]
    fn poison(&self, error: Error) -> Error {
        if self.commit.poison(|| Arc::new(error.duplicate())) {
            trace!(error, cause = %error, "WAL poisoned");
        }
        error
    }
}

/// The background timer's work on this WAL.
impl<S: Fs> timer::Due for Shared<S> {
    fn active_created(&self) -> Option<Instant> {
        let inner = lock(&self.inner);
        let active = inner.active.as_ref()?;
        (inner.next_lsn > active.base).then_some(active.created)
    }

    fn sync(&self) {
        let end = lock(&self.inner).next_lsn;
        // A failure poisons the WAL; appenders see it.
        let _ = self.sync_until(end);
    }

    fn rotate(&self) {
        let Some(age) = self.config.max_segment_age else { return };
        let mut inner = lock(&self.inner);
        let old = inner.active.as_ref().is_some_and(|a| a.created.elapsed() >= age);
        if old && !self.commit.is_poisoned() {
            // A failure poisons the WAL; appenders see it.
            let _ = self.seal(&mut inner);
        }
    }
}

#[cfg(all(test, feature = "async", not(feature = "shuttle")))]
mod tests {
    use super::*;
    use crate::wal::config::FsyncPolicy;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("nori-wal-engine-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn an_append_that_would_block_is_not_made_on_the_task() {
        let dir = scratch("append-now");
        let (wal, _) = Wal::open(WalConfig::new(&dir).segment_size(4096).fsync(FsyncPolicy::Os)).unwrap();
        let record = Record::raw(b"twelve bytes");
        // No segment yet: creating one blocks.
        assert_eq!(wal.append_now(&record).unwrap(), None);
        assert_eq!(wal.next_lsn(), 0, "nothing was appended");
        assert_eq!(wal.append(&record).unwrap(), 0);
        assert_eq!(wal.append_now(&record).unwrap(), Some(1));
        // The append lock held elsewhere: no waiting for it.
        {
            let _held = lock(&wal.shared.inner);
            assert_eq!(wal.append_now(&record).unwrap(), None);
        }
        // Up to the end of the segment on the task; sealing it blocks.
        let mut appended = 2;
        while let Some(lsn) = wal.append_now(&record).unwrap() {
            assert_eq!(lsn, appended);
            appended += 1;
        }
        assert_eq!((wal.next_lsn(), wal.segment_count()), (appended, 1));
        assert_eq!(wal.append(&record).unwrap(), appended, "the blocking append rotates");
        assert_eq!(wal.segment_count(), 2);
        assert_eq!(wal.append_now(&record).unwrap(), Some(appended + 1));
        // Errors are errors, not "would block".
        assert!(matches!(wal.append_now(&Record::raw(&[0; 8192])), Err(Error::RecordTooLarge { .. })));
        wal.close().unwrap();
        let (wal, info) = Wal::open(WalConfig::new(&dir).segment_size(4096)).unwrap();
        assert_eq!(info.records, appended + 2, "every record appended on the task was written");
        drop(wal);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

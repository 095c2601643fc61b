//! The async API: [`Wal`] with the seed's plain names, on tokio.
//!
//! An append that cannot block (the record fits the write buffer and the
//! active segment) is encoded on the calling task, with no copy. Every call
//! that may block runs on tokio's blocking thread pool (`spawn_blocking`),
//! so no executor thread waits for a read, a write or an `fdatasync`: a new
//! segment, a full buffer with no spare one, an explicit sync. A durable
//! append ([`FsyncPolicy::Always`], [`FsyncPolicy::Batch`]) awaits the
//! WAL's sync thread, holding no thread of its own: under `Always` that
//! thread syncs at once, in the same group commit as blocking callers, and
//! each waiting task is woken once, when its record is durable. Records
//! that take the slow path are copied once to cross into the pool. Records read back are
//! packed a batch at a time on the pool and lent by the iterator
//! ([`EntryBuf`] is an owned copy).
//!
//! The async API needs a tokio runtime (any flavour). The blocking API,
//! [`blocking::Wal`](crate::blocking::Wal), has the same powers without one.

mod follow;
mod iter;

use std::ops::Range;
use std::sync::Arc;

use nori_wal_core::{Lsn, Record};

use crate::wal::Entry;

use crate::fs::{Fs, StdFs};
pub use follow::Follower;
pub use iter::Iter;

use crate::wal::{self, Error, FsyncPolicy, GroupCommit, Poisoned, RecoveryInfo, Stats, WalConfig};

type Result<T> = std::result::Result<T, Error>;

/// A record that owns its bytes; [`RecordBuf::as_record`] borrows it as a
/// [`Record`]. Its `Debug` output is [`Record`]'s (printable bytes as text).
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordBuf {
    /// A key set to a value.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// A key removed.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// Bytes with no structure the log knows of.
    Raw(Vec<u8>),
}

impl RecordBuf {
    /// The record, borrowing these bytes.
    #[must_use]
    pub fn as_record(&self) -> Record<'_> {
        match self {
            Self::Put { key, value } => Record::put(key, value),
            Self::Delete { key } => Record::delete(key),
            Self::Raw(payload) => Record::raw(payload),
        }
    }
}

impl From<&Record<'_>> for RecordBuf {
    fn from(record: &Record<'_>) -> Self {
        match (record.raw_payload(), record.key(), record.value()) {
            (Some(payload), _, _) => Self::Raw(payload.to_vec()),
            (None, Some(key), Some(value)) => Self::Put { key: key.to_vec(), value: value.to_vec() },
            (None, Some(key), None) => Self::Delete { key: key.to_vec() },
            (None, None, _) => Self::Raw(Vec::new()),
        }
    }
}

impl std::fmt::Debug for RecordBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_record().fmt(f)
    }
}

/// A record read back, with its LSN, owning its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryBuf {
    /// The record's LSN.
    pub lsn: Lsn,
    /// The record.
    pub record: RecordBuf,
}

impl From<&Entry<'_>> for EntryBuf {
    /// An owned copy of a record lent by an iterator.
    fn from(entry: &Entry<'_>) -> Self {
        Self { lsn: entry.lsn, record: RecordBuf::from(&entry.record) }
    }
}

/// Runs `op` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(op: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(op).await.map_err(task_failed)?
}

/// Runs `op` on the calling task's own thread when the runtime lets a task
/// block there, else returns `None` without running it.
///
/// Only tokio's multi-thread runtime does: `block_in_place` first hands
/// the worker's other tasks to another thread, so they keep running while
/// `op` blocks. A lone writer under [`FsyncPolicy::Always`] syncs this way,
/// as a blocking caller does, instead of waking the sync thread and then
/// being woken by it (two thread wake-ups per append). Under the
/// current-thread runtime, or outside tokio, `None`: the caller awaits the
/// sync thread instead.
pub(crate) fn on_this_thread<T>(op: impl FnOnce() -> T) -> Option<T> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Some(tokio::task::block_in_place(op))
        }
        _ => None,
    }
}

/// Under [`FsyncPolicy::Always`], after an append made on the task: returns
/// once every LSN below `end` is durable. A lone writer leads the turn on
/// its own thread where the runtime lets it (`lead`, which syncs as a
/// blocking caller would: [`on_this_thread`]); otherwise the sync thread
/// is asked (`ask`) and the task waits on the durable point, holding no
/// thread. The file WAL's and the shared ring's async appends share it.
pub(crate) async fn lead_or_wait<C: Clone, E: From<Poisoned<C>>>(
    commit: &GroupCommit<C>,
    end: Lsn,
    lead: impl FnOnce() -> std::result::Result<(), E>,
    ask: impl FnOnce(),
) -> std::result::Result<(), E> {
    if commit.durable_end() >= end {
        return Ok(());
    }
    if commit.alone()
        && let Some(synced) = on_this_thread(lead)
    {
        return synced;
    }
    ask();
    Ok(commit.durable(end).await?)
}

/// A task on the blocking pool that panicked or was cancelled.
#[cold]
fn task_failed(e: tokio::task::JoinError) -> Error {
    Error::Io {
        op: "run",
        path: std::path::PathBuf::new(),
        source: std::io::Error::other(format!("a nori-wal task failed: {e}")),
    }
}

/// Drops the last handle of a WAL off the executor (closing it syncs).
fn release<S: Fs>(wal: Arc<wal::Wal<S>>) {
    if Arc::strong_count(&wal) == 1
        && let Ok(runtime) = tokio::runtime::Handle::try_current()
    {
        drop(runtime.spawn_blocking(move || drop(wal)));
    }
}

/// A write-ahead log in a directory of segment files, with an async API;
/// for the files, durability and recovery, see [`crate::wal`].
///
/// An append that cannot block is encoded on the calling task; every call
/// that may block runs on tokio's blocking thread pool (`spawn_blocking`),
/// so no other task waits for a read, a write or an `fdatasync`. A durable
/// append awaits the WAL's sync thread, holding no thread: under
/// [`FsyncPolicy::Always`] it syncs at once, shared with other tasks' and
/// threads' appends (group commit); under [`FsyncPolicy::Batch`] at the
/// end of the window. One exception, for speed: under `Always`, a task
/// that appends alone on tokio's multi-thread runtime (what
/// `#[tokio::main]` builds) leads its sync on its own thread, in
/// `tokio::task::block_in_place`, as a blocking caller does (tokio first
/// moves the worker's other tasks to another thread). Records read back
/// are lent by the iterator, as the blocking one lends them ([`EntryBuf`]
/// is an owned copy). It needs a tokio runtime;
/// [`blocking::Wal`](crate::blocking::Wal) has the same powers without
/// one.
///
/// ```
/// use nori_wal::{Record, Wal, WalConfig};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("nori-wal-async-doc-{}", std::process::id()));
/// let (wal, info) = Wal::open(WalConfig::new(&dir)).await?;
/// let lsn = wal.append(&Record::put(b"user:42", b"alice")).await?; // durable
/// let mut iter = wal.iter();
/// while let Some(entry) = iter.try_next().await? {
///     println!("{} {:?}", entry.lsn, entry.record);
/// }
/// # assert_eq!(info.records, 0);
/// # assert_eq!(lsn, 0);
/// # wal.close().await?; std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
pub struct Wal<S: Fs = StdFs> {
    inner: Option<Arc<wal::Wal<S>>>,
}

impl<S: Fs> std::fmt::Debug for Wal<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal").field("inner", &self.inner).finish()
    }
}

impl Wal<StdFs> {
    /// Opens (creating if needed) the WAL in `config.dir`, recovering what
    /// it holds as `config.recovery` says.
    ///
    /// # Errors
    ///
    /// As [`blocking::Wal::open`](crate::blocking::Wal::open).
    pub async fn open(config: WalConfig) -> Result<(Self, RecoveryInfo)> {
        Self::open_in(StdFs, config).await
    }
}

impl<S: Fs> Wal<S> {
    /// [`Wal::open`] on the file system `fs`.
    ///
    /// # Errors
    ///
    /// As [`Wal::open`].
    pub async fn open_in(fs: S, config: WalConfig) -> Result<(Self, RecoveryInfo)> {
        let (wal, info) = blocking(move || wal::Wal::open_in(fs, config)).await?;
        Ok((Self { inner: Some(Arc::new(wal)) }, info))
    }

    fn wal(&self) -> &Arc<wal::Wal<S>> {
        // `inner` is taken only by `close` and `drop`, which consume `self`.
        self.inner.as_ref().unwrap_or_else(|| unreachable!("a closed Wal is never used"))
    }

    /// The blocking API of the same WAL, for code that is not async.
    #[must_use]
    pub fn blocking(&self) -> &wal::Wal<S> {
        self.wal()
    }

    /// Appends `record`; returns its LSN once the record is durable under
    /// [`FsyncPolicy::Always`] and [`FsyncPolicy::Batch`], at once under
    /// [`FsyncPolicy::Os`].
    ///
    /// When the record fits the write buffer and the active segment (the
    /// common case), it is encoded there on the calling task, with no copy
    /// and no trip to the blocking pool; only work that can block (a new
    /// segment, writing a full buffer with no spare one) goes to the
    /// blocking pool. Under [`FsyncPolicy::Always`] the task then waits
    /// for the WAL's sync thread holding no thread, or, when it appends
    /// alone on tokio's multi-thread runtime, syncs on its own thread in
    /// `tokio::task::block_in_place` (no hand-off to the sync thread and
    /// back: as fast as the blocking API).
    ///
    /// Cancellation: dropping the future before it resolves never tears a
    /// record. The record is either not appended, or appended with its LSN
    /// (and later records follow it) without this call saying so; whether
    /// it is durable is then as for any record not yet synced: the next
    /// sync covers it.
    ///
    /// # Errors
    ///
    /// As [`blocking::Wal::append`](crate::blocking::Wal::append).
    pub async fn append(&self, record: &Record<'_>) -> Result<Lsn> {
        if let Some(lsn) = self.wal().append_now(record)? {
            if self.wal().config().fsync != FsyncPolicy::Os {
                self.settle_appended(lsn + 1).await?;
            }
            return Ok(lsn);
        }
        // Boxed, so that the common path's future stays small.
        Box::pin(self.append_on_pool(record)).await
    }

    /// [`append`](Self::append) when it may block: on the blocking pool.
    async fn append_on_pool(&self, record: &Record<'_>) -> Result<Lsn> {
        let owned = RecordBuf::from(record);
        let wal = Arc::clone(self.wal());
        let lsn = blocking(move || wal.append(&owned.as_record())).await?;
        self.settle(lsn + 1).await?;
        Ok(lsn)
    }

    /// Appends `records` as one atomic batch; returns their LSNs, when
    /// [`append`](Self::append) would.
    ///
    /// # Errors
    ///
    /// As [`blocking::Wal::append_batch`](crate::blocking::Wal::append_batch).
    pub async fn append_batch(&self, records: &[Record<'_>]) -> Result<Range<Lsn>> {
        if let Some(range) = self.wal().append_batch_now(records)? {
            if self.wal().config().fsync != FsyncPolicy::Os {
                self.settle_appended(range.end).await?;
            }
            return Ok(range);
        }
        Box::pin(self.append_batch_on_pool(records)).await
    }

    /// [`append_batch`](Self::append_batch) when it may block: on the
    /// blocking pool.
    async fn append_batch_on_pool(&self, records: &[Record<'_>]) -> Result<Range<Lsn>> {
        let owned: Vec<RecordBuf> = records.iter().map(RecordBuf::from).collect();
        let wal = Arc::clone(self.wal());
        let range = blocking(move || {
            let records: Vec<Record<'_>> = owned.iter().map(RecordBuf::as_record).collect();
            wal.append_batch(&records)
        })
        .await?;
        self.settle(range.end).await?;
        Ok(range)
    }

    /// Appends `record` without waiting for it to be durable, whatever the
    /// policy: on the task when that cannot block, else on the blocking
    /// pool. The caller waits with [`settle_appended`](Self::settle_appended).
    #[cfg(feature = "openraft")]
    pub(crate) async fn append_unsettled(&self, record: &Record<'_>) -> Result<Lsn> {
        if let Some(lsn) = self.wal().append_now(record)? {
            return Ok(lsn);
        }
        let owned = RecordBuf::from(record);
        let wal = Arc::clone(self.wal());
        blocking(move || wal.append_pending(&owned.as_record())).await
    }

    /// The blocking WAL, shared, for work moved to the blocking pool.
    #[cfg(feature = "openraft")]
    pub(crate) fn shared_wal(&self) -> Arc<wal::Wal<S>> {
        Arc::clone(self.wal())
    }

    /// After an append made on the task: waits, as the policy says, until
    /// every LSN below `end` is durable, holding no thread (under `Always`
    /// the WAL's background thread leads the sync, in the same group commit
    /// as blocking callers), unless a lone writer may lead it here
    /// ([`lead_or_wait`]).
    pub(crate) async fn settle_appended(&self, end: Lsn) -> Result<()> {
        match self.wal().config().fsync {
            FsyncPolicy::Always => {
                let wal = self.wal();
                let (lead, ask) = (|| wal.shared().after_append(end), || wal.request_sync(end));
                lead_or_wait(&wal.shared().commit, end, lead, ask).await
            }
            FsyncPolicy::Batch(_) => self.durable(end).await,
            _ => Ok(()),
        }
    }

    /// Under `Batch`, waits for the background sync to cover `end`.
    async fn settle(&self, end: Lsn) -> Result<()> {
        match self.wal().config().fsync {
            FsyncPolicy::Batch(_) => self.durable(end).await,
            _ => Ok(()),
        }
    }

    /// Waits, holding no thread, until every LSN below `end` is durable
    /// (woken once, when it is).
    async fn durable(&self, end: Lsn) -> Result<()> {
        Ok(self.wal().shared().commit.durable(end).await?)
    }

    /// Makes every record appended so far durable.
    ///
    /// # Errors
    ///
    /// As [`blocking::Wal::sync`](crate::blocking::Wal::sync).
    pub async fn sync(&self) -> Result<()> {
        let wal = Arc::clone(self.wal());
        blocking(move || wal.sync()).await
    }

    /// Waits until `lsn` is durable (under `Batch`, for the background sync;
    /// otherwise syncing if no sync is under way).
    ///
    /// # Errors
    ///
    /// As [`blocking::Wal::wait_durable`](crate::blocking::Wal::wait_durable).
    pub async fn wait_durable(&self, lsn: Lsn) -> Result<()> {
        let next = self.next_lsn();
        if lsn >= next {
            return Err(Error::LsnOutOfRange { lsn, first: self.first_lsn(), next });
        }
        match self.wal().config().fsync {
            FsyncPolicy::Batch(_) => self.durable(lsn + 1).await,
            _ => {
                let wal = Arc::clone(self.wal());
                blocking(move || wal.wait_durable(lsn)).await
            }
        }
    }

    /// The highest durable LSN, or `None` when no record is durable.
    #[must_use]
    pub fn durable_lsn(&self) -> Option<Lsn> {
        self.wal().durable_lsn()
    }

    /// The LSN the next append gets.
    #[must_use]
    pub fn next_lsn(&self) -> Lsn {
        self.wal().next_lsn()
    }

    /// The first LSN the log holds.
    #[must_use]
    pub fn first_lsn(&self) -> Lsn {
        self.wal().first_lsn()
    }

    /// Counters of what the WAL has done since it was opened.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.wal().stats()
    }

    /// Iterates over every record the log holds (as of the first call to
    /// [`Iter::try_next`]).
    #[must_use]
    pub fn iter(&self) -> Iter<S> {
        Iter::new(Arc::clone(self.wal()), None)
    }

    /// Iterates over the records from `lsn` on; an LSN outside the log is
    /// reported by the first [`Iter::try_next`].
    #[must_use]
    pub fn iter_from(&self, lsn: Lsn) -> Iter<S> {
        Iter::new(Arc::clone(self.wal()), Some(lsn))
    }

    /// Reclaims the records below `lsn`; see
    /// [`blocking::Wal::truncate_before`](crate::blocking::Wal::truncate_before).
    ///
    /// # Errors
    ///
    /// As the blocking call.
    pub async fn truncate_before(&self, lsn: Lsn) -> Result<()> {
        let wal = Arc::clone(self.wal());
        blocking(move || wal.truncate_before(lsn)).await
    }

    /// Drops every record after `lsn`; see
    /// [`blocking::Wal::truncate_after`](crate::blocking::Wal::truncate_after).
    ///
    /// # Errors
    ///
    /// As the blocking call.
    pub async fn truncate_after(&self, lsn: Lsn) -> Result<()> {
        let wal = Arc::clone(self.wal());
        blocking(move || wal.truncate_after(lsn)).await
    }

    /// Drops every record at and after `lsn`; see
    /// [`blocking::Wal::truncate_from`](crate::blocking::Wal::truncate_from).
    ///
    /// # Errors
    ///
    /// As the blocking call.
    pub async fn truncate_from(&self, lsn: Lsn) -> Result<()> {
        let wal = Arc::clone(self.wal());
        blocking(move || wal.truncate_from(lsn)).await
    }

    /// Drops every record and starts the log over at `lsn`; see
    /// [`blocking::Wal::restart_at`](crate::blocking::Wal::restart_at).
    ///
    /// # Errors
    ///
    /// As the blocking call.
    pub async fn restart_at(&self, lsn: Lsn) -> Result<()> {
        let wal = Arc::clone(self.wal());
        blocking(move || wal.restart_at(lsn)).await
    }

    /// Declares the damage recovery skipped lost, as hole frames, so that
    /// the log opens in every recovery mode; see
    /// [`blocking::Wal::declare_lost`](crate::blocking::Wal::declare_lost).
    ///
    /// # Errors
    ///
    /// As the blocking call.
    pub async fn declare_lost(&self) -> Result<crate::wal::Declared> {
        let wal = Arc::clone(self.wal());
        blocking(move || wal.declare_lost()).await
    }

    /// Ends the active segment now; see
    /// [`blocking::Wal::rotate`](crate::blocking::Wal::rotate).
    ///
    /// # Errors
    ///
    /// As the blocking call.
    pub async fn rotate(&self) -> Result<()> {
        let wal = Arc::clone(self.wal());
        blocking(move || wal.rotate()).await
    }

    /// Closes the WAL: syncs what was appended and stops its background
    /// thread. Iterators still reading keep the files they opened.
    ///
    /// # Errors
    ///
    /// As [`sync`](Self::sync).
    pub async fn close(mut self) -> Result<()> {
        let wal = self.inner.take().unwrap_or_else(|| unreachable!("close consumes the Wal"));
        blocking(move || match Arc::try_unwrap(wal) {
            Ok(wal) => wal.close(),
            // Iterators hold it: sync now; the last one closes it.
            Err(shared) => shared.sync(),
        })
        .await
    }
}

impl<S: Fs> Drop for Wal<S> {
    fn drop(&mut self) {
        if let Some(wal) = self.inner.take() {
            release(wal);
        }
    }
}

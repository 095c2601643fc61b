//! A ring log shared between threads: [`SharedRing`], for servers that log
//! to a raw partition or an image file.
//!
//! The [`ring`] log is one writer's (`&mut self`), as
//! firmware wants it. A server appends from many threads: `SharedRing`
//! wraps a ring log in a lock and gives it the file WAL's verbs and
//! policies. Under [`FsyncPolicy::Always`] appends from many threads share
//! syncs (group commit, the same type the file WAL uses): one thread
//! flushes the ring's buffer under the lock, then syncs the device through
//! its [`SplitSync`] handle *outside* the lock while the others go on
//! appending, and every append the sync covers returns. A lone writer
//! leads its own sync; a writer that finds one under way asks the ring's
//! sync thread for the next and parks until a sync covers it. Under
//! [`FsyncPolicy::Batch`] the same thread syncs within the window;
//! under [`FsyncPolicy::Os`] only [`SharedRing::sync`] and
//! [`SharedRing::close`] do. A failed sync poisons the log (invariant I7):
//! every waiter and every later call gets the error, with its cause.
//!
//! Readers take the lock for one batch of records at a time, so appends
//! go on between batches.
//!
//! A thread of the ring's own writes each full buffer while the next one
//! fills; where the device has a second write handle
//! ([`SplitSync::write_handle`], as a raw device has), a second thread
//! writes beside it, so that two writes are in flight at once.

use std::ops::Range;
use std::sync::Arc;

use nori_wal_core::ring::{self, Entry, RecoveryInfo, RingConfig, RingLog};
use nori_wal_core::{BlockDevice, DeviceError, Lsn, Record, SplitSync, SyncHandle};

#[cfg(feature = "async")]
mod asynchronous;
mod behind;

#[cfg(feature = "async")]
pub use asynchronous::{AsyncSharedIter, AsyncSharedRing};

use behind::{Behind, BehindError, BehindSync, NewError};

use crate::packed::Packed;
use crate::wal::sync::{JoinHandle, Mutex};
use crate::wal::{Due, FsyncPolicy, GroupCommit, Poisoned, Timer, lock};

/// An error of a [`SharedRing`] on a device whose errors are `E`.
///
/// ```
/// # use nori_wal::shared::{SharedConfig, SharedRing};
/// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
/// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
/// use nori_wal::shared::Error;
/// let (ring, _) = SharedRing::open(device, SharedConfig::new(64 << 10))?;
/// match ring.append(&Record::raw(&[0; 100_000])) {
///     Err(Error::Ring(e)) => println!("{e}"), // record too large for a segment
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// The ring log's own error: the device's, a full log, damage, a bad
    /// LSN or configuration.
    Ring(ring::Error<E>),
    /// A write or sync failed earlier: nothing more is acknowledged until
    /// the log is reopened, which recovers what is durable.
    Poisoned {
        /// The failure that poisoned the log (the first one).
        cause: Arc<Error<E>>,
    },
    /// The background sync thread of [`FsyncPolicy::Batch`] could not be
    /// started.
    Thread(std::io::Error),
}

impl<E> From<ring::Error<E>> for Error<E> {
    fn from(e: ring::Error<E>) -> Self {
        Self::Ring(e)
    }
}

impl<E> From<Poisoned<Arc<Error<E>>>> for Error<E> {
    fn from(Poisoned(cause): Poisoned<Arc<Error<E>>>) -> Self {
        Self::Poisoned { cause }
    }
}

impl<E: std::fmt::Display> std::fmt::Display for Error<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ring(e) => e.fmt(f),
            Self::Poisoned { cause } => write!(
                f,
                "the log is poisoned by an earlier failure ({cause}): reopen it to recover what is durable"
            ),
            Self::Thread(e) => write!(f, "could not start the log's sync thread: {e}"),
        }
    }
}

impl<E: DeviceError + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Ring(e) => Some(e),
            Self::Poisoned { cause } => Some(&**cause),
            Self::Thread(e) => Some(e),
        }
    }
}

type Result<T, E> = std::result::Result<T, Error<E>>;

/// The first epoch for a new ring log on a medium that an earlier log may
/// have used (a raw partition, an image file): a number from the clock
/// (microseconds since 1970 over 16, as the file WAL's epochs start),
/// above the epochs of any earlier log in the same place, so that none of
/// its frames ever checks out as the new log's (invariant I6).
/// [`SharedRing::open`] takes it for a new ring unless the configuration
/// names a first epoch; a plain [`RingLog`] on such a medium takes it
/// through [`RingConfig::first_epoch`]. A log already on the medium keeps
/// its own epochs. Fits format version 2's 48-bit epochs.
///
/// ```
/// use nori_wal::ring::RingConfig;
/// use nori_wal::shared::epoch_from_clock;
/// let config = RingConfig::new(16 << 10).first_epoch(epoch_from_clock());
/// assert!(config.first_epoch > 1 << 40);
/// ```
#[must_use]
pub fn epoch_from_clock() -> u64 {
    crate::wal::fresh_epochs()
}

/// How a [`SharedRing`] is laid out and made durable.
///
/// ```
/// use std::time::Duration;
/// use nori_wal::FsyncPolicy;
/// use nori_wal::shared::SharedConfig;
/// let config = SharedConfig::new(1 << 20).fsync(FsyncPolicy::Batch(Duration::from_millis(2))).buffer(4 << 20);
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct SharedConfig {
    ring: RingConfig,
    fsync: FsyncPolicy,
    buffer: usize,
}

impl SharedConfig {
    /// Segments of `segment_size` bytes, [`FsyncPolicy::Always`], a 1 MiB
    /// write buffer (at most a segment), and the ring's defaults.
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let config = SharedConfig::new(1 << 20); // 1 MiB segments, Always
    /// let (ring, _) = SharedRing::open(device, config)?;
    /// assert_eq!(ring.next_lsn(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new(segment_size: u64) -> Self {
        Self { ring: RingConfig::new(segment_size), fsync: FsyncPolicy::Always, buffer: 1 << 20 }
    }

    /// The ring log's configuration (segment size, recovery mode, what to
    /// do when full).
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// use nori_wal::ring::{FullPolicy, RingConfig};
    /// let ring_config = RingConfig::new(1 << 20).when_full(FullPolicy::OverwriteOldest);
    /// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20).ring(ring_config))?;
    /// # let _ = ring;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn ring(mut self, ring: RingConfig) -> Self {
        self.ring = ring;
        self
    }

    /// When appends are durable.
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20).fsync(FsyncPolicy::Os))?;
    /// ring.append(&Record::raw(b"a"))?; // not durable yet
    /// assert_eq!(ring.durable_lsn(), None);
    /// ring.sync()?;
    /// assert_eq!(ring.durable_lsn(), Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub const fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.fsync = policy;
        self
    }

    /// The write buffer's size: the largest write the log makes to the
    /// device (rounded down to the device's program unit; at most a
    /// segment). Memory: one buffer fills while one per writer thread and
    /// one more wait to be written (four in all on a device with a write
    /// handle, three on another).
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20).buffer(256 << 10))?;
    /// # let _ = ring;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub const fn buffer(mut self, bytes: usize) -> Self {
        self.buffer = bytes;
        self
    }
}

/// The ring log, over its device written from a thread of its own.
type Log<D> = RingLog<'static, Behind<D>, Vec<u8>>;

/// The shared state: the log under its lock, the group commit, the sync
/// handle, and the orders of the background sync thread.
struct Shared<D: SplitSync> {
    inner: Mutex<Log<D>>,
    commit: GroupCommit<Arc<Error<D::Error>>>,
    handle: BehindSync<D, D::Handle>,
    policy: FsyncPolicy,
    /// The background thread's orders (the file WAL's timer): under
    /// `Always`, syncs asked for by appends that find one under way; under
    /// `Batch`, the window after the first record not yet durable.
    timer: Timer,
}

/// A ring log on a block device, shared between threads; see the
/// [module docs](self).
///
/// ```
/// use std::sync::Arc;
/// use nori_wal::shared::{SharedConfig, SharedRing};
/// use nori_wal::{Geometry, RamDevice, Record};
///
/// let device = RamDevice::new(vec![0u8; 8 << 20], Geometry::block(4096).unwrap()).unwrap();
/// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20))?;
/// let ring = Arc::new(ring);
/// let writers: Vec<_> = (0..4)
///     .map(|t| {
///         let ring = Arc::clone(&ring);
///         std::thread::spawn(move || ring.append(&Record::raw(&[t; 100])).unwrap()) // durable
///     })
///     .collect();
/// for w in writers {
///     w.join().unwrap();
/// }
/// let mut iter = ring.iter_from(0);
/// let mut n = 0;
/// while let Some(entry) = iter.try_next()? {
///     assert_eq!(entry.record.raw_payload().map(<[u8]>::len), Some(100));
///     n += 1;
/// }
/// assert_eq!(n, 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SharedRing<D: SplitSync + Send + 'static>
where
    D::Handle: Send + Sync + 'static,
    D::Error: Send + Sync + 'static,
{
    shared: Arc<Shared<D>>,
    timer: Option<JoinHandle<()>>,
}

impl<D> std::fmt::Debug for SharedRing<D>
where
    D: SplitSync + Send + 'static,
    D::Handle: Send + Sync + 'static,
    D::Error: Send + Sync + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRing").field("policy", &self.shared.policy).finish_non_exhaustive()
    }
}

impl<D> SharedRing<D>
where
    D: SplitSync + Send + 'static,
    D::Handle: Send + Sync + 'static,
    D::Error: Send + Sync + 'static,
{
    /// Opens the ring log on `device`, recovering what it holds as the
    /// configuration's recovery mode says. On a device that holds no ring,
    /// the new ring's epochs start from the clock (unless the configuration
    /// names a first epoch other than 1: `RingConfig::first_epoch`), so
    /// that an earlier ring's blocks left in the same place never check
    /// out as the new ring's.
    ///
    /// # Errors
    ///
    /// As [`RingLog::open`], and the device's error when it gives no sync
    /// handle.
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, info) = SharedRing::open(device, SharedConfig::new(1 << 20))?;
    /// assert_eq!(info.records, 0);
    /// # let _ = ring;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(device: D, config: SharedConfig) -> Result<(Self, RecoveryInfo), D::Error>
    where
        D::Error: DeviceError,
    {
        let inner_handle = device.sync_handle().map_err(ring::Error::Device)?;
        let unit = device.geometry().program_unit() as usize;
        let bytes = config.buffer.min(usize::try_from(config.ring.segment_size).unwrap_or(usize::MAX));
        let bytes = (bytes / unit.max(1)).max(1) * unit.max(1);
        // A buffer for each writer thread and one more may wait for the
        // device while the next fills.
        let behind = Behind::new(device, bytes).map_err(|e| match e {
            NewError::Device(e) => Error::Ring(ring::Error::Device(e)),
            NewError::Thread(e) => Error::Thread(e),
        })?;
        let handle = behind.sync_handle(inner_handle);
        let mut ring = config.ring;
        if ring.first_epoch == 1 {
            // A new ring's epochs start from the clock, above those of any
            // earlier ring in the same place (I6; see `RingConfig::first_epoch`).
            ring = ring.first_epoch(epoch_from_clock());
        }
        let (log, info) =
            RingLog::open_owned(behind, ring, vec![0u8; bytes]).map_err(|e| unwrap_behind(e, None))?;
        let durable = log.durable_lsn().map_or(log.first_lsn(), |l| l + 1).max(log.first_lsn());
        let shared = Arc::new(Shared {
            inner: Mutex::new(log),
            commit: GroupCommit::new(durable),
            handle,
            policy: config.fsync,
            timer: Timer::default(),
        });
        // The sync thread: under `Always` it runs the syncs that appends
        // ask for while one is under way (they park until it covers them,
        // woken once), so that many writers are gathered by a syncer that
        // is always ready; under `Batch` it syncs within the window.
        let window = match config.fsync {
            FsyncPolicy::Always => Some(None),
            FsyncPolicy::Batch(window) => Some(Some(window)),
            FsyncPolicy::Os => None,
        };
        let timer = match window {
            Some(window) => {
                let shared = Arc::clone(&shared);
                Some(
                    crate::wal::sync::spawn("nori-wal-ring-sync", move || {
                        shared.timer.run(window, None, &*shared);
                    })
                    .map_err(Error::Thread)?,
                )
            }
            None => None,
        };
        Ok((Self { shared, timer }, info))
    }

    /// Appends a record and returns its LSN; under
    /// [`FsyncPolicy::Always`], once it is durable.
    ///
    /// # Errors
    ///
    /// As [`RingLog::append`]; [`Error::Poisoned`] after a failed write or
    /// sync.
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20))?;
    /// let lsn = ring.append(&Record::put(b"k", b"v"))?; // durable under Always
    /// assert_eq!(ring.durable_lsn(), Some(lsn));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append(&self, record: &Record<'_>) -> Result<Lsn, D::Error> {
        let lsn = self.shared.write(|log| log.append(record))?;
        self.settle(lsn + 1)?;
        Ok(lsn)
    }

    /// Appends records as one atomic batch (all or none after a crash) and
    /// returns their LSNs; under [`FsyncPolicy::Always`], once durable.
    ///
    /// # Errors
    ///
    /// As [`RingLog::append_batch`]; [`Error::Poisoned`].
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20))?;
    /// let lsns = ring.append_batch(&[Record::raw(b"a"), Record::raw(b"b")])?;
    /// assert_eq!(lsns, 0..2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append_batch(&self, records: &[Record<'_>]) -> Result<Range<Lsn>, D::Error> {
        let lsns = self.shared.write(|log| log.append_batch(records))?;
        self.settle(lsns.end)?;
        Ok(lsns)
    }

    /// What an append waits for under its policy.
    fn settle(&self, end: Lsn) -> Result<(), D::Error> {
        let shared = &*self.shared;
        match shared.policy {
            FsyncPolicy::Always => shared.lead_or_ask(end),
            FsyncPolicy::Batch(_) => {
                shared.timer.mark_dirty();
                Ok(())
            }
            FsyncPolicy::Os => Ok(()),
        }
    }

    /// Makes every record appended so far durable (sharing a sync under
    /// way when it covers them).
    ///
    /// # Errors
    ///
    /// The device's, which poisons the log; [`Error::Poisoned`].
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20).fsync(FsyncPolicy::Os))?;
    /// ring.append(&Record::raw(b"a"))?;
    /// ring.sync()?;
    /// assert_eq!(ring.durable_lsn(), Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&self) -> Result<(), D::Error> {
        let end = self.next_lsn();
        self.shared.sync_until(end)
    }

    /// Returns once every record below `lsn` + 1 is durable, syncing if no
    /// sync under way covers it.
    ///
    /// # Errors
    ///
    /// As [`sync`](Self::sync).
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20).fsync(FsyncPolicy::Os))?;
    /// let lsn = ring.append(&Record::raw(b"a"))?;
    /// ring.wait_durable(lsn)?;
    /// assert_eq!(ring.durable_lsn(), Some(lsn));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_durable(&self, lsn: Lsn) -> Result<(), D::Error> {
        self.shared.sync_until(lsn.saturating_add(1).min(self.next_lsn()))
    }

    /// The LSN the next append gets.
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20))?;
    /// ring.append(&Record::raw(b"a"))?;
    /// assert_eq!(ring.next_lsn(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn next_lsn(&self) -> Lsn {
        lock(&self.shared.inner).next_lsn()
    }

    /// The first LSN the log holds.
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20))?;
    /// assert_eq!(ring.first_lsn(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn first_lsn(&self) -> Lsn {
        lock(&self.shared.inner).first_lsn()
    }

    /// The highest durable LSN, if any record is durable.
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20))?;
    /// assert_eq!(ring.durable_lsn(), None);
    /// ring.append(&Record::raw(b"a"))?;
    /// assert_eq!(ring.durable_lsn(), Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn durable_lsn(&self) -> Option<Lsn> {
        self.shared.commit.durable_end().checked_sub(1).filter(|&l| l >= self.first_lsn())
    }

    /// Reclaims the segments that hold only records below `lsn`, durably
    /// (see [`RingLog::truncate_before`]).
    ///
    /// # Errors
    ///
    /// As [`RingLog::truncate_before`]; [`Error::Poisoned`].
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, _) = SharedRing::open(device, SharedConfig::new(64 << 10).fsync(FsyncPolicy::Os))?;
    /// for _ in 0..2000 {
    ///     ring.append(&Record::raw(&[7; 100]))?;
    /// }
    /// ring.truncate_before(1500)?; // whole segments below 1500 are reclaimed
    /// assert!(ring.first_lsn() > 0 && ring.first_lsn() <= 1500);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn truncate_before(&self, lsn: Lsn) -> Result<(), D::Error> {
        self.shared.commit.exclusive(|| self.shared.write(|log| log.truncate_before(lsn)))
    }

    /// Reads the records from `lsn` on, a batch at a time under the lock
    /// (appends go on between batches). It ends at the log's end as it is
    /// when it gets there.
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20))?;
    /// ring.append(&Record::raw(b"a"))?;
    /// let mut iter = ring.iter_from(0);
    /// assert_eq!(iter.try_next()?.map(|e| e.lsn), Some(0));
    /// assert!(iter.try_next()?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn iter_from(&self, lsn: Lsn) -> SharedIter<'_, D> {
        SharedIter { ring: self, next: lsn, batch: Packed::default(), read: Vec::new(), done: false }
    }

    /// Syncs what was appended and closes the log.
    ///
    /// # Errors
    ///
    /// As [`sync`](Self::sync).
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20).fsync(FsyncPolicy::Os))?;
    /// ring.append(&Record::raw(b"a"))?;
    /// ring.close()?; // synced
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(mut self) -> Result<(), D::Error> {
        self.stop_timer();
        self.sync()
    }

    fn stop_timer(&mut self) {
        if let Some(timer) = self.timer.take() {
            self.shared.timer.stop();
            let _ = timer.join();
        }
    }
}

impl<D> Drop for SharedRing<D>
where
    D: SplitSync + Send + 'static,
    D::Handle: Send + Sync + 'static,
    D::Error: Send + Sync + 'static,
{
    fn drop(&mut self) {
        self.stop_timer();
    }
}

impl<D: SplitSync> Shared<D>
where
    D::Error: Send + Sync + 'static,
{
    /// Runs `op` on the log under the lock; a device error poisons the log
    /// (the ring log poisons itself; the group commit learns of it here).
    fn write<T>(
        &self,
        op: impl FnOnce(&mut Log<D>) -> std::result::Result<T, ring::Error<BehindError<D::Error>>>,
    ) -> Result<T, D::Error> {
        self.commit.check()?;
        let mut inner = lock(&self.inner);
        match op(&mut inner) {
            Ok(t) => Ok(t),
            Err(e) => {
                let poisoned = inner.is_poisoned();
                drop(inner);
                let e = unwrap_behind(e, Some(&self.commit));
                if let Error::Poisoned { .. } = e {
                    return Err(e);
                }
                if poisoned {
                    let cause = Arc::new(e);
                    self.commit.poison(|| Arc::clone(&cause));
                    return Err(Error::Poisoned { cause });
                }
                Err(e)
            }
        }
    }

    /// Returns once every LSN below `end` is durable: a lone caller leads
    /// its sync itself (no hand-off); while a sync runs,
    /// it asks the sync thread for the next one and parks until a sync
    /// covers it.
    fn lead_or_ask(&self, end: Lsn) -> Result<(), D::Error> {
        self.commit.sync_or_ask(end, || self.lead(), Some(&|| self.timer.request_sync()))
    }

    /// Returns once every LSN below `end` is durable: leads a turn of the
    /// group commit or shares one.
    fn sync_until(&self, end: Lsn) -> Result<(), D::Error> {
        self.commit.sync_until(end, || self.lead())
    }

    /// A turn of the group commit: flushes under the lock, syncs outside
    /// it, and returns the end made durable.
    fn lead(&self) -> Result<Lsn, D::Error> {
        let flushed = lock(&self.inner).flush();
        let flushed = match flushed {
            Ok(end) => end,
            Err(e) => return Err(self.poison(unwrap_behind(e, Some(&self.commit)))),
        };
        self.commit.cover(flushed);
        if let Err(e) = self.handle.sync() {
            // The failure becomes the cause first: an append that found the
            // log poisoned before would make its own error the cause.
            let e = self.poison(unwrap_behind(ring::Error::Device(e), Some(&self.commit)));
            lock(&self.inner).sync_failed();
            return Err(e);
        }
        lock(&self.inner).synced(flushed);
        Ok(flushed)
    }

    /// Poisons the log with `e` (the first cause is kept) and returns the
    /// error for the caller.
    fn poison(&self, e: Error<D::Error>) -> Error<D::Error> {
        if let Error::Poisoned { .. } = e {
            return e;
        }
        let cause = Arc::new(e);
        self.commit.poison(|| Arc::clone(&cause));
        Error::Poisoned { cause }
    }
}

/// What the sync thread does when a sync is due; the shared ring has no
/// segment age limit.
impl<D: SplitSync> Due for Shared<D>
where
    D::Error: Send + Sync + 'static,
{
    fn active_created(&self) -> Option<std::time::Instant> {
        None
    }

    fn sync(&self) {
        let end = lock(&self.inner).next_lsn();
        // A failure poisons the log; appends and waiters report it.
        let _ = self.sync_until(end);
    }

    fn rotate(&self) {}
}

/// The ring's error about the write-behind device as the shared ring's:
/// the device's own error as it is, and the report of an earlier failed
/// background write as the poisoning it caused.
fn unwrap_behind<E>(e: ring::Error<BehindError<E>>, commit: Option<&GroupCommit<Arc<Error<E>>>>) -> Error<E> {
    match e.into_device() {
        Ok(BehindError::Device(e)) => Error::Ring(ring::Error::Device(e)),
        Ok(BehindError::Failed) => match commit.map(GroupCommit::check) {
            Some(Err(poisoned)) => poisoned.into(),
            _ => Error::Ring(ring::Error::Poisoned),
        },
        Err(other) => Error::Ring(other.map_device(|never| match never {})),
    }
}

/// Reads a [`SharedRing`]'s records in LSN order, a batch at a time under
/// its lock; each record borrows the iterator until the next call.
///
/// ```
/// # use nori_wal::shared::{SharedConfig, SharedRing};
/// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
/// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
/// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20))?;
/// let mut iter = ring.iter_from(0);
/// assert!(iter.try_next()?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SharedIter<'r, D>
where
    D: SplitSync + Send + 'static,
    D::Handle: Send + Sync + 'static,
    D::Error: Send + Sync + 'static,
{
    ring: &'r SharedRing<D>,
    next: Lsn,
    batch: Packed,
    read: Vec<u8>,
    done: bool,
}

impl<D> std::fmt::Debug for SharedIter<'_, D>
where
    D: SplitSync + Send + 'static,
    D::Handle: Send + Sync + 'static,
    D::Error: Send + Sync + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedIter").field("next", &self.next).finish_non_exhaustive()
    }
}

/// Records read per turn of the lock, and bytes.
const BATCH_RECORDS: usize = 4096;
const BATCH_BYTES: usize = 1 << 20;

impl<D> SharedIter<'_, D>
where
    D: SplitSync + Send + 'static,
    D::Handle: Send + Sync + 'static,
    D::Error: Send + Sync + 'static,
{
    /// The next record, or `None` at the log's end.
    ///
    /// # Errors
    ///
    /// As [`RingLog::iter_from`] and its iterator: damage, a device error,
    /// or an LSN reclaimed meanwhile ([`ring::Error::LsnOutOfRange`]).
    ///
    /// ```
    /// # use nori_wal::shared::{SharedConfig, SharedRing};
    /// # use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record};
    /// # let device = RamDevice::new(vec![0u8; 4 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20))?;
    /// ring.append(&Record::raw(b"a"))?;
    /// let mut iter = ring.iter_from(0);
    /// while let Some(entry) = iter.try_next()? {
    ///     println!("{} {:?}", entry.lsn, entry.record);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_next(&mut self) -> Result<Option<Entry<'_>>, D::Error> {
        if self.batch.next == self.batch.items.len() {
            if self.done {
                return Ok(None);
            }
            self.fill()?;
            if self.batch.items.is_empty() {
                self.done = true;
                return Ok(None);
            }
        }
        Ok(self.batch.next_entry())
    }

    /// Reads the next batch under the lock.
    fn fill(&mut self) -> Result<(), D::Error> {
        self.next = self.ring.shared.read_batch(self.next, &mut self.batch, &mut self.read)?;
        Ok(())
    }
}

impl<D: SplitSync> Shared<D> {
    /// Reads the records from `next` on into `batch` (cleared first),
    /// under the lock, up to a batch's worth; returns the LSN after the
    /// last one read. `read` is the reader's buffer (made on first use).
    fn read_batch(&self, mut next: Lsn, batch: &mut Packed, read: &mut Vec<u8>) -> Result<Lsn, D::Error> {
        batch.clear();
        let mut inner = lock(&self.inner);
        if next >= inner.next_lsn() {
            return Ok(next);
        }
        if read.is_empty() {
            let unit = inner.device().geometry().io_unit() as usize;
            *read = vec![0u8; (64 << 10).max(2 * unit)];
        }
        let mut iter = inner.iter_from(next, read).map_err(|e| unwrap_behind(e, None))?;
        while batch.items.len() < BATCH_RECORDS && batch.len_bytes() < BATCH_BYTES {
            match iter.try_next().map_err(|e| unwrap_behind(e, None))? {
                Some(entry) => {
                    batch.push(entry.lsn, &entry.record);
                    next = entry.lsn + 1;
                }
                None => break,
            }
        }
        Ok(next)
    }
}

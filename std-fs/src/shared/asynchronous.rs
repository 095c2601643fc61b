//! The async face of the shared ring: [`AsyncSharedRing`], on tokio.

use std::ops::Range;
use std::sync::Arc;

use nori_wal_core::ring::{Entry, RecoveryInfo};
use nori_wal_core::{DeviceError, Lsn, Record, SplitSync};

use super::{Error, SharedConfig, SharedRing};
use crate::packed::Packed;
use crate::{FsyncPolicy, RecordBuf};

type Result<T, E> = std::result::Result<T, Error<E>>;

/// A [`SharedRing`] with an async API, on tokio. An append that fits the
/// write buffer runs on the calling task and waits for durability holding
/// no thread (the ring's sync thread syncs); every other call that may
/// block (a full buffer to write, a segment to seal, `sync`, a read) runs on
/// tokio's blocking pool, so no executor thread waits for the device. Syncs
/// are shared with every other caller, async or blocking, through the
/// ring's group commit.
///
/// ```
/// use nori_wal::shared::{AsyncSharedRing, SharedConfig};
/// use nori_wal::{Geometry, RamDevice, Record};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = RamDevice::new(vec![0u8; 8 << 20], Geometry::block(4096).unwrap()).unwrap();
/// let (ring, _) = AsyncSharedRing::open(device, SharedConfig::new(1 << 20)).await?;
/// let lsn = ring.append(&Record::raw(b"event")).await?; // durable
/// let mut iter = ring.iter_from(lsn);
/// let entry = iter.try_next().await?.expect("appended");
/// assert_eq!(entry.record, Record::raw(b"event"));
/// # Ok(())
/// # }
/// ```
pub struct AsyncSharedRing<D>
where
    D: SplitSync + Send + 'static,
    D::Handle: Send + Sync + 'static,
    D::Error: Send + Sync + 'static,
{
    ring: Arc<SharedRing<D>>,
}

impl<D> std::fmt::Debug for AsyncSharedRing<D>
where
    D: SplitSync + Send + 'static,
    D::Handle: Send + Sync + 'static,
    D::Error: Send + Sync + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSharedRing").field("ring", &self.ring).finish()
    }
}

/// Gives a ring opened with [`SharedRing::open`] its async face (its
/// syncs stay shared with every caller).
///
/// ```
/// use nori_wal::shared::{AsyncSharedRing, SharedConfig, SharedRing};
/// use nori_wal::{Geometry, RamDevice, Record};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = RamDevice::new(vec![0u8; 8 << 20], Geometry::block(4096).unwrap()).unwrap();
/// let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20))?;
/// let ring = AsyncSharedRing::from(ring);
/// ring.append(&Record::raw(b"event")).await?;
/// # Ok(())
/// # }
/// ```
impl<D> From<SharedRing<D>> for AsyncSharedRing<D>
where
    D: SplitSync + Send + 'static,
    D::Handle: Send + Sync + 'static,
    D::Error: Send + Sync + 'static,
{
    fn from(ring: SharedRing<D>) -> Self {
        Self { ring: Arc::new(ring) }
    }
}

/// Runs `op` on tokio's blocking pool.
async fn pool<T: Send + 'static, E: Send + Sync + 'static>(
    op: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    match tokio::task::spawn_blocking(op).await {
        Ok(result) => result,
        Err(e) => Err(Error::Thread(std::io::Error::other(format!("a nori-wal task failed: {e}")))),
    }
}

impl<D> AsyncSharedRing<D>
where
    D: SplitSync + Send + 'static,
    D::Handle: Send + Sync + 'static,
    D::Error: DeviceError + Send + Sync + 'static,
{
    /// Opens the ring log on `device` ([`SharedRing::open`], on the
    /// blocking pool).
    ///
    /// # Errors
    ///
    /// As [`SharedRing::open`].
    pub async fn open(device: D, config: SharedConfig) -> Result<(Self, RecoveryInfo), D::Error> {
        let (ring, info) = pool(move || SharedRing::open(device, config)).await?;
        Ok((Self { ring: Arc::new(ring) }, info))
    }

    /// The blocking ring, for threads that share it.
    #[must_use]
    pub fn blocking(&self) -> &Arc<SharedRing<D>> {
        &self.ring
    }

    /// [`SharedRing::append`]. When the record fits the write buffer (the
    /// common case) it is appended on the calling task, with no copy and
    /// no trip to the blocking pool; under [`FsyncPolicy::Always`] the
    /// task then asks the ring's sync thread for a sync and waits for it
    /// holding no thread, in the same group commit as every other caller.
    /// A task that appends alone on tokio's multi-thread runtime (what
    /// `#[tokio::main]` builds) leads that sync on its own thread instead,
    /// in `tokio::task::block_in_place`, as a blocking caller does (tokio
    /// first moves the worker's other tasks to another thread). Work that
    /// can block (a full buffer to write, a segment to seal or start) goes
    /// to the blocking pool.
    ///
    /// Cancellation: dropping the future never tears a record. The record
    /// is either not appended, or appended with its LSN (later records
    /// follow it) without this call saying so; it is then durable when the
    /// next sync is.
    ///
    /// # Errors
    ///
    /// As [`SharedRing::append`].
    ///
    /// ```
    /// # use nori_wal::shared::{AsyncSharedRing, SharedConfig};
    /// # use nori_wal::{Geometry, RamDevice, Record};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let device = RamDevice::new(vec![0u8; 8 << 20], Geometry::block(4096).unwrap()).unwrap();
    /// let (ring, _) = AsyncSharedRing::open(device, SharedConfig::new(1 << 20)).await?;
    /// let lsn = ring.append(&Record::raw(b"event")).await?;
    /// assert_eq!(ring.blocking().durable_lsn(), Some(lsn)); // durable under Always
    /// # Ok(())
    /// # }
    /// ```
    pub async fn append(&self, record: &Record<'_>) -> Result<Lsn, D::Error> {
        if let Some(lsn) = self.ring.shared.write(|log| log.append_buffered(record))? {
            if self.has_sync_thread() {
                self.settle_appended(lsn + 1).await?;
            }
            return Ok(lsn);
        }
        // Boxed, so that the common path's future stays small.
        let (ring, record) = (Arc::clone(&self.ring), RecordBuf::from(record));
        Box::pin(pool(move || ring.append(&record.as_record()))).await
    }

    /// [`SharedRing::append_batch`], on the calling task when the batch
    /// fits the write buffer, as [`append`](Self::append).
    ///
    /// # Errors
    ///
    /// As [`SharedRing::append_batch`].
    pub async fn append_batch(&self, records: &[Record<'_>]) -> Result<Range<Lsn>, D::Error> {
        if let Some(lsns) = self.ring.shared.write(|log| log.append_batch_buffered(records))? {
            if self.has_sync_thread() {
                self.settle_appended(lsns.end).await?;
            }
            return Ok(lsns);
        }
        let ring = Arc::clone(&self.ring);
        let records: Vec<RecordBuf> = records.iter().map(RecordBuf::from).collect();
        Box::pin(pool(move || {
            let records: Vec<Record<'_>> = records.iter().map(RecordBuf::as_record).collect();
            ring.append_batch(&records)
        }))
        .await
    }

    /// After an append made on the task: what the policy asks, holding no
    /// thread (under `Always` the sync thread leads the sync, or a lone
    /// writer on a multi-thread runtime leads it here).
    async fn settle_appended(&self, end: Lsn) -> Result<(), D::Error> {
        let shared = &*self.ring.shared;
        match shared.policy {
            FsyncPolicy::Always => self.wait_for_sync_thread(end).await,
            FsyncPolicy::Batch(_) => {
                shared.timer.mark_dirty();
                Ok(())
            }
            FsyncPolicy::Os => Ok(()),
        }
    }

    /// [`SharedRing::sync`]. Under [`FsyncPolicy::Always`] and
    /// [`FsyncPolicy::Batch`] the ring's sync thread syncs and the task
    /// waits holding no thread; under [`FsyncPolicy::Os`] the sync runs on
    /// the blocking pool.
    ///
    /// # Errors
    ///
    /// As [`SharedRing::sync`].
    pub async fn sync(&self) -> Result<(), D::Error> {
        if self.has_sync_thread() {
            return self.wait_for_sync_thread(self.ring.next_lsn()).await;
        }
        let ring = Arc::clone(&self.ring);
        pool(move || ring.sync()).await
    }

    /// The ring's sync thread runs under `Always` and `Batch` (not `Os`).
    fn has_sync_thread(&self) -> bool {
        !matches!(self.ring.shared.policy, FsyncPolicy::Os)
    }

    /// Asks the ring's sync thread for a sync covering every LSN below
    /// `end` (unless one already did) and waits for it, holding no thread;
    /// a lone writer on tokio's multi-thread runtime leads the sync on its
    /// own thread instead, as a blocking caller does.
    async fn wait_for_sync_thread(&self, end: Lsn) -> Result<(), D::Error> {
        let shared = &*self.ring.shared;
        let (lead, ask) = (|| shared.lead_or_ask(end), || shared.timer.request_sync());
        crate::asynchronous::lead_or_wait(&shared.commit, end, lead, ask).await
    }

    /// [`SharedRing::wait_durable`], waiting as [`sync`](Self::sync) does.
    ///
    /// # Errors
    ///
    /// As [`SharedRing::wait_durable`].
    pub async fn wait_durable(&self, lsn: Lsn) -> Result<(), D::Error> {
        if self.has_sync_thread() {
            return self.wait_for_sync_thread(lsn.saturating_add(1).min(self.ring.next_lsn())).await;
        }
        let ring = Arc::clone(&self.ring);
        pool(move || ring.wait_durable(lsn)).await
    }

    /// [`SharedRing::truncate_before`].
    ///
    /// # Errors
    ///
    /// As [`SharedRing::truncate_before`].
    pub async fn truncate_before(&self, lsn: Lsn) -> Result<(), D::Error> {
        let ring = Arc::clone(&self.ring);
        pool(move || ring.truncate_before(lsn)).await
    }

    /// Reads the records from `lsn` on, a batch at a time on the blocking
    /// pool.
    #[must_use]
    pub fn iter_from(&self, lsn: Lsn) -> AsyncSharedIter<D> {
        AsyncSharedIter {
            ring: Arc::clone(&self.ring),
            next: lsn,
            batch: Packed::default(),
            read: Vec::new(),
        }
    }
}

/// Reads an [`AsyncSharedRing`]'s records in LSN order; each record borrows
/// the iterator until the next call.
pub struct AsyncSharedIter<D>
where
    D: SplitSync + Send + 'static,
    D::Handle: Send + Sync + 'static,
    D::Error: Send + Sync + 'static,
{
    ring: Arc<SharedRing<D>>,
    next: Lsn,
    batch: Packed,
    read: Vec<u8>,
}

impl<D> std::fmt::Debug for AsyncSharedIter<D>
where
    D: SplitSync + Send + 'static,
    D::Handle: Send + Sync + 'static,
    D::Error: Send + Sync + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSharedIter").field("next", &self.next).finish_non_exhaustive()
    }
}

impl<D> AsyncSharedIter<D>
where
    D: SplitSync + Send + 'static,
    D::Handle: Send + Sync + 'static,
    D::Error: DeviceError + Send + Sync + 'static,
{
    /// The next record, or `None` at the log's end.
    ///
    /// # Errors
    ///
    /// As [`SharedIter::try_next`](super::SharedIter::try_next).
    pub async fn try_next(&mut self) -> Result<Option<Entry<'_>>, D::Error> {
        if self.batch.next == self.batch.items.len() {
            let ring = Arc::clone(&self.ring);
            let (next, mut batch, mut read) =
                (self.next, std::mem::take(&mut self.batch), std::mem::take(&mut self.read));
            let (next, batch, read) = pool(move || {
                let next = ring.shared.read_batch(next, &mut batch, &mut read)?;
                Ok((next, batch, read))
            })
            .await?;
            (self.next, self.batch, self.read) = (next, batch, read);
        }
        Ok(self.batch.next_entry())
    }
}

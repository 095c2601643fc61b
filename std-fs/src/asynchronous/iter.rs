//! The async iterator: [`Iter`], reading ahead on tokio's blocking pool
//! with two readers, each through its own segment.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use nori_wal_core::Lsn;
use tokio::sync::mpsc;

use super::release;
use crate::fs::{Fs, Map, StdFs};
use crate::packed::Packed;
use crate::wal::{self, Entry, Error};

type Result<T> = std::result::Result<T, Error>;

/// Reads records in LSN order from a [`Wal`](super::Wal), a batch at a time
/// on the blocking pool: while the task consumes one batch, the next ones
/// are read. Each record is lent from the batch (an [`Entry`] borrowing the
/// iterator until the next call, as the blocking iterator lends its own);
/// [`EntryBuf::from`](super::EntryBuf) makes an owned copy.
///
/// From its first call until it ends or is dropped, the iterator keeps two
/// threads of the blocking pool reading ahead, each through a segment of
/// its own: one checks a segment while the records of the one before are
/// handed over. At most three segments are read ahead, each with at most
/// 64 batches ready (a batch holds up to 8 192 records, and up to 256 KiB
/// of bytes copied: records in mapped segment files are lent from the
/// maps, which a batch holds until it is spent, not copied).
pub struct Iter<S: Fs = StdFs> {
    wal: Option<Arc<wal::Wal<S>>>,
    from: Option<Lsn>,
    /// The readers, once reading has started.
    readers: Option<Arc<Readers<S>>>,
    /// The batches of the segment being returned.
    lane: Option<Lane>,
    /// The batch being returned.
    batch: Packed,
    done: bool,
}

/// Readers started per iterator.
const READERS: usize = 2;

/// Segments taken by readers and not yet being returned, at most.
const QUEUED: usize = 2;

/// Batches a segment may have ready.
const AHEAD: usize = 64;

/// Records read per batch, and bytes copied.
const BATCH_RECORDS: usize = 8192;
const BATCH_BYTES: usize = 256 << 10;

/// Cleared batches a reader keeps to read into.
const KEPT: usize = 4;

/// One segment's batches, and whether the segment ended with each.
type Lane = mpsc::Receiver<Result<(Packed, bool)>>;

/// What the readers of one iterator share with it.
struct Readers<S: Fs> {
    chain: Mutex<Chain<S>>,
    /// Wakes readers waiting for a segment to take.
    room: Condvar,
    /// Wakes the task waiting for the next segment's batches.
    added: tokio::sync::Notify,
    /// Batches the task has returned, for the next reader that needs a
    /// batch to clear (on the blocking pool: dropping what a batch holds
    /// may unmap a segment) and read into again.
    spent: Mutex<Vec<Packed>>,
}

/// The segments left to read, and those being read, in LSN order.
struct Chain<S: Fs> {
    /// Where to start, until the first reader makes the blocking iterator.
    start: Option<(Arc<wal::Wal<S>>, Option<Lsn>)>,
    /// The blocking iterator over the segments no reader has taken yet.
    rest: Option<wal::Iter<S>>,
    /// The batches of each segment taken, not yet being returned.
    lanes: VecDeque<Lane>,
    /// Every segment has been taken.
    ended: bool,
    /// The iterator has ended or is gone: readers stop.
    stopped: bool,
}

/// A lock whose holder panicked still guards whole values here (each
/// change under it is one assignment or one queue operation).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: Fs> std::fmt::Debug for Iter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ready = self.batch.items.len() - self.batch.next;
        f.debug_struct("Iter").field("ready", &ready).field("done", &self.done).finish()
    }
}

/// A reader on the blocking pool: takes the next segment (the first
/// reader makes the blocking iterator from the WAL), splits off the
/// segments after it for the other reader, and reads it into its lane;
/// then the next, until every segment is taken, an error, or the iterator
/// is gone.
fn read_segments<S: Fs>(readers: &Readers<S>) {
    loop {
        let (reader, lane) = {
            let mut chain = lock(&readers.chain);
            while !chain.stopped && !chain.ended && chain.lanes.len() >= QUEUED {
                chain = readers.room.wait(chain).unwrap_or_else(PoisonError::into_inner);
            }
            if chain.stopped || chain.ended {
                return;
            }
            // The segments split off by the reader before, or the WAL to
            // make the iterator from.
            let next = match (chain.rest.take(), chain.start.take()) {
                (Some(reader), _) => Ok(reader),
                (None, Some(start)) => Err(start),
                (None, None) => {
                    chain.ended = true;
                    readers.added.notify_one();
                    return;
                }
            };
            // The lane first: should this reader stop without a word (a
            // panic), the task finds its lane closed and reports it, rather
            // than going on to the segments after it.
            let (tx, rx) = mpsc::channel(AHEAD);
            chain.lanes.push_back(rx);
            readers.added.notify_one();
            let reader = next.or_else(|(wal, from)| match from {
                Some(lsn) => wal.iter_from(lsn),
                None => wal.iter(),
            });
            match reader {
                Ok(mut reader) => {
                    chain.rest = reader.split_rest();
                    chain.ended = chain.rest.is_none();
                    (reader, tx)
                }
                Err(e) => {
                    chain.ended = true;
                    drop(chain);
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        };
        if !read_segment(reader, &lane, &readers.spent) {
            return;
        }
    }
}

/// Reads one segment's records (the blocking iterator ends where the next
/// segment begins) into `lane` in batches. Whether it read to the end: not
/// after an error, nor once the iterator is gone.
fn read_segment<S: Fs>(
    mut reader: wal::Iter<S>,
    lane: &mpsc::Sender<Result<(Packed, bool)>>,
    spent: &Mutex<Vec<Packed>>,
) -> bool {
    // The map the next record may lie in: records lying there are lent
    // from it, held by the batch, rather than copied.
    let mut map: Option<Arc<Map>> = None;
    let mut kept: Vec<Packed> = Vec::new();
    loop {
        // Every returned batch cleared now, releasing the maps it holds.
        kept.append(&mut lock(spent));
        kept.iter_mut().for_each(Packed::clear);
        kept.truncate(KEPT);
        let mut into = kept.pop().unwrap_or_default();
        let mut end = false;
        while into.items.len() < BATCH_RECORDS && into.len_bytes() < BATCH_BYTES {
            // Records the reader checked ahead in a map, many at a time.
            let room = BATCH_RECORDS - into.items.len();
            if reader.take_ahead(&mut into, room) > 0 {
                continue;
            }
            if !map.as_ref().is_some_and(|held| reader.map().is_some_and(|m| Arc::ptr_eq(held, m))) {
                map = reader.map().cloned();
            }
            match reader.try_next() {
                Ok(Some(entry)) => into.push_in(entry.lsn, &entry.record, map.as_ref()),
                Ok(None) => {
                    end = true;
                    break;
                }
                Err(e) => {
                    // The records before the error first, then the error.
                    if !into.items.is_empty() && lane.blocking_send(Ok((into, false))).is_err() {
                        return false;
                    }
                    let _ = lane.blocking_send(Err(e));
                    return false;
                }
            }
        }
        // A send fails only once the iterator is gone: stop reading.
        if lane.blocking_send(Ok((into, end))).is_err() {
            return false;
        }
        if end {
            return true;
        }
    }
}

impl<S: Fs> Iter<S> {
    pub(super) fn new(wal: Arc<wal::Wal<S>>, from: Option<Lsn>) -> Self {
        Self { wal: Some(wal), from, readers: None, lane: None, batch: Packed::default(), done: false }
    }

    /// Starts the readers on the blocking pool.
    fn start(&mut self) -> Option<Arc<Readers<S>>> {
        let wal = Arc::clone(self.wal.as_ref()?);
        let readers = Arc::new(Readers {
            chain: Mutex::new(Chain {
                start: Some((wal, self.from)),
                rest: None,
                lanes: VecDeque::new(),
                ended: false,
                stopped: false,
            }),
            room: Condvar::new(),
            added: tokio::sync::Notify::new(),
            spent: Mutex::new(Vec::new()),
        });
        for _ in 0..READERS {
            let readers = Arc::clone(&readers);
            drop(tokio::task::spawn_blocking(move || read_segments(&readers)));
        }
        self.readers = Some(Arc::clone(&readers));
        Some(readers)
    }

    /// The next record, or `None` at the end of the log as it was when the
    /// first record was read. The record borrows the iterator until the
    /// next call.
    ///
    /// ```
    /// use nori_wal::{EntryBuf, Record, Wal, WalConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-async-iter-doc-{}", std::process::id()));
    /// let (wal, _) = Wal::open(WalConfig::new(&dir)).await?;
    /// wal.append(&Record::put(b"k", b"v")).await?;
    /// let mut iter = wal.iter();
    /// let mut kept = Vec::new();
    /// while let Some(entry) = iter.try_next().await? {
    ///     kept.push(EntryBuf::from(&entry)); // an owned copy, to keep
    /// }
    /// assert_eq!(kept[0].record.as_record(), Record::put(b"k", b"v"));
    /// # drop(iter); wal.close().await?; std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel-safe: a call dropped while it waits for a batch loses nothing;
    /// the next call returns the record it would have.
    ///
    /// # Errors
    ///
    /// As [`blocking::Iter::try_next`](crate::blocking::Iter::try_next), and
    /// [`Error::LsnOutOfRange`] for an LSN outside the log.
    pub async fn try_next(&mut self) -> Result<Option<Entry<'_>>> {
        while self.batch.next == self.batch.items.len() {
            if self.done {
                return Ok(None);
            }
            let readers = match &self.readers {
                Some(readers) => Arc::clone(readers),
                None => match self.start() {
                    Some(readers) => readers,
                    None => return Ok(None),
                },
            };
            let Some(lane) = self.lane.as_mut() else {
                // The next segment's batches, once a reader has taken it.
                let added = readers.added.notified();
                let (lane, ended) = {
                    let mut chain = lock(&readers.chain);
                    (chain.lanes.pop_front(), chain.ended)
                };
                match lane {
                    Some(lane) => {
                        self.lane = Some(lane);
                        readers.room.notify_one();
                    }
                    None if ended => {
                        self.finish();
                        return Ok(None);
                    }
                    // Cancel-safe: nothing was taken.
                    None => added.await,
                }
                continue;
            };
            // Cancel-safe: a batch not yet received stays in the channel.
            match lane.recv().await {
                Some(Ok((batch, end))) => {
                    let spent = std::mem::replace(&mut self.batch, batch);
                    lock(&readers.spent).push(spent);
                    if end {
                        self.lane = None;
                    }
                }
                Some(Err(e)) => {
                    self.finish();
                    return Err(e);
                }
                // The reader stopped without a word: it panicked, or the
                // runtime is shutting down.
                None => {
                    self.finish();
                    return Err(Error::Io {
                        op: "read",
                        path: self.wal.as_ref().map(|w| w.config().dir.clone()).unwrap_or_default(),
                        source: std::io::Error::other(
                            "the async iterator's reader on the blocking pool stopped",
                        ),
                    });
                }
            }
        }
        let item = self.batch.items[self.batch.next];
        self.batch.next += 1;
        Ok(Some(self.batch.entry(item)))
    }

    /// Ends the iteration: later calls return `None` (once the batch being
    /// returned is spent), and the readers stop.
    fn finish(&mut self) {
        self.done = true;
        self.lane = None;
        if let Some(readers) = self.readers.take() {
            let mut chain = lock(&readers.chain);
            chain.stopped = true;
            chain.lanes.clear();
            chain.rest = None;
            drop(chain);
            readers.room.notify_all();
        }
    }
}

impl<S: Fs> Drop for Iter<S> {
    fn drop(&mut self) {
        self.finish();
        if let Some(wal) = self.wal.take() {
            release(wal);
        }
    }
}

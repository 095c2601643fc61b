//! Write-behind for a block device: the log's writes are queued and a
//! thread of their own programs them, so that filling the next buffer and
//! writing the last one overlap (double buffering).
//!
//! Reads see queued writes (they are laid over what the device returns);
//! a sync first waits for every queued write. A failed background write is
//! reported by the next program, erase or sync, and every later one fails
//! too: the log above poisons itself on the first.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::wal::sync::{Condvar, JoinHandle, Mutex, MutexGuard};

use nori_wal_core::{BlockDevice, DeviceError, DeviceErrorKind, Geometry, SyncHandle};

use crate::wal::lock;

/// An error of a [`Behind`] device: the device's own, or a report that an
/// earlier background write failed (its error went to an earlier call).
#[derive(Debug)]
pub(crate) enum BehindError<E> {
    Device(E),
    Failed,
}

impl<E: std::fmt::Display> std::fmt::Display for BehindError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Device(e) => e.fmt(f),
            Self::Failed => f.write_str("an earlier write to the device failed"),
        }
    }
}

impl<E: DeviceError> DeviceError for BehindError<E> {
    fn kind(&self) -> DeviceErrorKind {
        match self {
            Self::Device(e) => e.kind(),
            Self::Failed => DeviceErrorKind::Io,
        }
    }
}

/// A queued write; a program's bytes are shared with reads that lay them
/// over the device's.
enum Op {
    Program { offset: u64, data: Arc<Vec<u8>> },
    Erase { offset: u64, len: u64 },
}

impl Op {
    fn len(&self) -> usize {
        match self {
            Self::Program { data, .. } => data.len(),
            Self::Erase { .. } => 0,
        }
    }

    fn copy(&self) -> Self {
        match self {
            Self::Program { offset, data } => Self::Program { offset: *offset, data: Arc::clone(data) },
            Self::Erase { offset, len } => Self::Erase { offset: *offset, len: *len },
        }
    }
}

/// The queue, under one lock.
struct Queue<E> {
    ops: VecDeque<Op>,
    /// The op the writer thread is writing (still laid over reads).
    in_flight: Option<Op>,
    /// Bytes queued or in flight.
    bytes: usize,
    /// Ops queued since the start, and ops done (written or dropped).
    queued: u64,
    done: u64,
    /// Buffers to copy the next programs into.
    spares: Vec<Vec<u8>>,
    /// The first background failure, until a call reports it.
    error: Option<E>,
    failed: bool,
    stop: bool,
}

struct State<D: BlockDevice> {
    queue: Mutex<Queue<D::Error>>,
    /// The writer thread waits here for work; callers for room or a drain.
    work: Condvar,
    done: Condvar,
    device: Mutex<D>,
    /// Bytes the queue may hold before `program` waits.
    limit: usize,
}

fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A block device written from a thread of its own.
pub(crate) struct Behind<D: BlockDevice> {
    state: Arc<State<D>>,
    geometry: Geometry,
    capacity: u64,
    /// The device's [`BlockDevice::writes_persist_in_order`], asked once:
    /// the ring asks it at every append, and asking the device would wait
    /// for the write under way.
    in_order: bool,
    writer: Option<JoinHandle<()>>,
}

impl<D> Behind<D>
where
    D: BlockDevice + Send + 'static,
    D::Error: Send + 'static,
{
    /// Writes to `device` from a new thread, with at most `limit` bytes
    /// queued.
    pub(crate) fn new(device: D, limit: usize) -> std::io::Result<Self> {
        let (geometry, capacity, in_order) =
            (device.geometry(), device.capacity(), device.writes_persist_in_order());
        let state = Arc::new(State {
            queue: Mutex::new(Queue {
                ops: VecDeque::new(),
                in_flight: None,
                bytes: 0,
                queued: 0,
                done: 0,
                spares: Vec::new(),
                error: None,
                failed: false,
                stop: false,
            }),
            work: Condvar::new(),
            done: Condvar::new(),
            device: Mutex::new(device),
            limit,
        });
        let thread_state = Arc::clone(&state);
        let writer = crate::wal::sync::spawn("nori-wal-ring-write", move || thread_state.run())?;
        Ok(Self { state, geometry, capacity, in_order, writer: Some(writer) })
    }

    /// A handle that waits for the queued writes, then syncs the device
    /// through `inner`.
    pub(crate) fn sync_handle<H: SyncHandle<Error = D::Error>>(&self, inner: H) -> BehindSync<D, H> {
        BehindSync { state: Arc::clone(&self.state), inner }
    }
}

impl<D: BlockDevice> State<D> {
    /// The writer thread: writes queued ops in order until stopped (what
    /// is queued then is written first).
    fn run(&self) {
        let mut queue = lock(&self.queue);
        loop {
            if queue.in_flight.is_none() && !queue.ops.is_empty() {
                queue = self.write_next(queue);
                continue;
            }
            if queue.stop && queue.ops.is_empty() && queue.in_flight.is_none() {
                return;
            }
            queue = wait(&self.work, queue);
        }
    }

    /// Writes the oldest queued op, with the queue unlocked meanwhile (it
    /// stays laid over reads, as the op in flight); one op is in flight at
    /// a time, so they reach the device in order.
    fn write_next<'q>(
        &'q self,
        mut queue: MutexGuard<'q, Queue<D::Error>>,
    ) -> MutexGuard<'q, Queue<D::Error>> {
        let Some(op) = queue.ops.pop_front() else { return queue };
        if queue.failed {
            // Nothing after a failed write reaches the device.
            queue.bytes -= op.len();
            queue.done += 1;
            self.done.notify_all();
            return queue;
        }
        queue.in_flight = Some(op.copy());
        drop(queue);
        let result = {
            let mut device = lock(&self.device);
            match &op {
                Op::Program { offset, data } => device.program(*offset, data),
                Op::Erase { offset, len } => device.erase(*offset, *len),
            }
        };
        let mut queue = lock(&self.queue);
        queue.in_flight = None;
        queue.bytes -= op.len();
        queue.done += 1;
        if let Op::Program { data, .. } = op
            && let Ok(buffer) = Arc::try_unwrap(data)
        {
            queue.spares.push(buffer);
        }
        if let Err(e) = result {
            queue.failed = true;
            queue.error.get_or_insert(e);
        }
        self.done.notify_all();
        if queue.ops.iter().any(|op| op.len() * 2 >= self.limit) {
            // A full buffer waits: the writer thread takes it on.
            self.work.notify_one();
        }
        queue
    }

    /// Returns once every op queued before the call is done (later ones
    /// may still be queued), writing them itself when the writer thread is
    /// not (no hand-off to wait for when a sync is what the caller needs);
    /// then the first background failure, if any.
    fn drain(&self) -> Result<(), BehindError<D::Error>> {
        let mut queue = lock(&self.queue);
        let target = queue.queued;
        while queue.done < target {
            if queue.in_flight.is_none() && !queue.ops.is_empty() {
                queue = self.write_next(queue);
            } else {
                queue = wait(&self.done, queue);
            }
        }
        failure(&mut queue)
    }
}

/// The first background failure, reported once; `Failed` after that.
fn failure<E>(queue: &mut Queue<E>) -> Result<(), BehindError<E>> {
    if !queue.failed {
        return Ok(());
    }
    Err(queue.error.take().map_or(BehindError::Failed, BehindError::Device))
}

impl<D: BlockDevice> BlockDevice for Behind<D> {
    type Error = BehindError<D::Error>;

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        let queue = lock(&self.state.queue);
        lock(&self.state.device).read(offset, buf).map_err(BehindError::Device)?;
        // What is queued, oldest first, over what the device holds.
        let end = offset + buf.len() as u64;
        for op in queue.in_flight.iter().chain(&queue.ops) {
            match op {
                Op::Program { offset: at, data } => {
                    let (from, to) = ((*at).max(offset), (at + data.len() as u64).min(end));
                    if from < to {
                        buf[(from - offset) as usize..(to - offset) as usize]
                            .copy_from_slice(&data[(from - at) as usize..(to - at) as usize]);
                    }
                }
                Op::Erase { offset: at, len } => {
                    let (from, to) = ((*at).max(offset), (at + len).min(end));
                    if from < to
                        && let Some(erased) = self.geometry.erase_value()
                    {
                        buf[(from - offset) as usize..(to - offset) as usize].fill(erased);
                    }
                }
            }
        }
        Ok(())
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        let mut queue = lock(&self.state.queue);
        failure(&mut queue)?;
        // Room first: at most `limit` bytes wait (and one write more).
        while queue.bytes > 0 && queue.bytes + data.len() > self.state.limit {
            // Whatever is queued is on its way before this waits for room.
            self.state.work.notify_one();
            queue = wait(&self.state.done, queue);
            failure(&mut queue)?;
        }
        let mut buffer = queue.spares.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(data);
        queue.bytes += buffer.len();
        let full = buffer.len() * 2 >= self.state.limit;
        queue.ops.push_back(Op::Program { offset, data: Arc::new(buffer) });
        queue.queued += 1;
        // A full buffer goes to the writer thread at once (streaming: the
        // next one fills meanwhile). A partial one is what a sync flushed:
        // the syncing thread writes it itself as it drains, with no
        // hand-off to wait for; the writer takes it with the next full one.
        if full {
            self.state.work.notify_one();
        }
        Ok(())
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Self::Error> {
        let mut queue = lock(&self.state.queue);
        failure(&mut queue)?;
        queue.ops.push_back(Op::Erase { offset, len });
        queue.queued += 1;
        self.state.work.notify_one();
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Self::Error> {
        self.state.drain()?;
        lock(&self.state.device).sync().map_err(BehindError::Device)
    }

    fn writes_persist_in_order(&self) -> bool {
        self.in_order
    }
}

impl<D: BlockDevice> Drop for Behind<D> {
    fn drop(&mut self) {
        lock(&self.state.queue).stop = true;
        self.state.work.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Syncs a [`Behind`] device from another thread: waits for the writes
/// queued so far, then syncs the device through its own handle.
pub(crate) struct BehindSync<D: BlockDevice, H> {
    state: Arc<State<D>>,
    inner: H,
}

impl<D: BlockDevice, H: SyncHandle<Error = D::Error>> SyncHandle for BehindSync<D, H>
where
    D::Error: DeviceError,
{
    type Error = BehindError<D::Error>;

    fn sync(&self) -> Result<(), Self::Error> {
        self.state.drain()?;
        self.inner.sync().map_err(BehindError::Device)
    }
}

//! Write-behind for a block device: the log's writes are queued and a
//! thread of their own programs them, so that filling the next buffer and
//! writing the last one overlap (double buffering). A device with a
//! [`write_handle`](SplitSync::write_handle) gets a second writer thread,
//! so that two writes are in flight at once: a loop device over a file on
//! this project's benchmark machine took 1 MiB writes two at a time at
//! 1.4x the rate of one at a time (BENCHMARKS.md).
//!
//! Reads see queued writes (they are laid over what the device returns);
//! a sync first waits for every queued write. A failed background write is
//! reported by the next program, erase or sync, and every later one fails
//! too: the log above poisons itself on the first.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::wal::sync::{Condvar, JoinHandle, Mutex, MutexGuard};

use nori_wal_core::{BlockDevice, DeviceError, DeviceErrorKind, Geometry, SplitSync, SyncHandle};

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

/// The queue, under one lock. Each op has a number, in the order queued.
struct Queue<E> {
    ops: VecDeque<(u64, Op)>,
    /// The ops being written (still laid over reads): at most one per
    /// writer.
    in_flight: Vec<(u64, Op)>,
    /// Bytes queued or in flight.
    bytes: usize,
    /// Ops queued since the start (the next op's number).
    queued: u64,
    /// Buffers to copy the next programs into.
    spares: Vec<Vec<u8>>,
    /// The first background failure, until a call reports it.
    error: Option<E>,
    failed: bool,
    stop: bool,
}

struct State<D: BlockDevice> {
    queue: Mutex<Queue<D::Error>>,
    /// The writer threads wait here for work; callers for room or a drain.
    work: Condvar,
    done: Condvar,
    /// The device, through which the first writer writes and reads read.
    device: Mutex<D>,
    /// The second writer's handle on the device, if it has one.
    second: Option<Mutex<D>>,
    /// A whole buffer of the log: the writers take one at once.
    buffer: usize,
    /// Bytes the queue may hold before `program` waits.
    limit: usize,
}

/// Which writer a write goes through: the device, or the second handle.
#[derive(Clone, Copy)]
enum Writer {
    First,
    Second,
}

impl<E> Queue<E> {
    /// Whether the oldest queued op may start now: nothing is in flight,
    /// or it is a program beside programs in flight (a second writer) that
    /// overlaps none of them. An erase runs alone, so that no program
    /// passes it.
    fn can_start(&self, writers: usize) -> bool {
        let Some((_, next)) = self.ops.front() else { return false };
        if self.in_flight.is_empty() {
            return true;
        }
        let Op::Program { offset, data } = next else { return false };
        let end = offset + data.len() as u64;
        self.in_flight.len() < writers
            && self.in_flight.iter().all(|(_, op)| match op {
                Op::Program { offset: at, data } => end <= *at || at + data.len() as u64 <= *offset,
                Op::Erase { .. } => false,
            })
    }

    /// Whether an op numbered below `target` is queued or in flight.
    fn pending_below(&self, target: u64) -> bool {
        self.ops.front().is_some_and(|(n, _)| *n < target) || self.in_flight.iter().any(|(n, _)| *n < target)
    }
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
    writers: Vec<JoinHandle<()>>,
}

/// Why a [`Behind`] device could not be made.
pub(crate) enum NewError<E> {
    /// The device's second write handle.
    Device(E),
    /// A writer thread.
    Thread(std::io::Error),
}

impl<D> Behind<D>
where
    D: SplitSync + Send + 'static,
    D::Error: Send + 'static,
{
    /// Writes to `device` from a thread of its own, and from a second one
    /// through its [`write_handle`](SplitSync::write_handle) if it has one
    /// (and may persist writes in any order). `buffer` is the log's whole
    /// buffer: one may be queued for each writer and one more, while the
    /// log fills the next.
    pub(crate) fn new(device: D, buffer: usize) -> Result<Self, NewError<D::Error>> {
        let (geometry, capacity, in_order) =
            (device.geometry(), device.capacity(), device.writes_persist_in_order());
        let second = if in_order { None } else { device.write_handle().map_err(NewError::Device)? };
        let writers = 1 + usize::from(second.is_some());
        let state = Arc::new(State {
            queue: Mutex::new(Queue {
                ops: VecDeque::new(),
                in_flight: Vec::with_capacity(writers),
                bytes: 0,
                queued: 0,
                spares: Vec::new(),
                error: None,
                failed: false,
                stop: false,
            }),
            work: Condvar::new(),
            done: Condvar::new(),
            device: Mutex::new(device),
            second: second.map(Mutex::new),
            buffer,
            limit: (writers + 1) * buffer,
        });
        let mut behind = Self { state, geometry, capacity, in_order, writers: Vec::new() };
        for writer in [Writer::First, Writer::Second].into_iter().take(writers) {
            let thread_state = Arc::clone(&behind.state);
            let thread = crate::wal::sync::spawn("nori-wal-ring-write", move || thread_state.run(writer))
                .map_err(NewError::Thread)?;
            behind.writers.push(thread);
        }
        Ok(behind)
    }

    /// A handle that waits for the queued writes, then syncs the device
    /// through `inner`.
    pub(crate) fn sync_handle<H: SyncHandle<Error = D::Error>>(&self, inner: H) -> BehindSync<D, H> {
        BehindSync { state: Arc::clone(&self.state), inner }
    }
}

impl<D: BlockDevice> State<D> {
    fn writers(&self) -> usize {
        1 + usize::from(self.second.is_some())
    }

    /// A writer thread: writes queued ops, oldest first, until stopped
    /// (what is queued then is written first).
    fn run(&self, writer: Writer) {
        let mut queue = lock(&self.queue);
        loop {
            if queue.can_start(self.writers()) {
                queue = self.write_next(queue, writer);
                continue;
            }
            if queue.stop && queue.ops.is_empty() {
                return;
            }
            queue = wait(&self.work, queue);
        }
    }

    /// Writes the oldest queued op through `writer`, with the queue
    /// unlocked meanwhile (it stays laid over reads, as an op in flight).
    /// The caller has checked that it may start
    /// ([`can_start`](Queue::can_start)): with two writers, two programs
    /// that do not overlap may be in flight, and reach the device in
    /// either order (it keeps none between syncs).
    fn write_next<'q>(
        &'q self,
        mut queue: MutexGuard<'q, Queue<D::Error>>,
        writer: Writer,
    ) -> MutexGuard<'q, Queue<D::Error>> {
        let Some((number, op)) = queue.ops.pop_front() else { return queue };
        if queue.failed {
            // Nothing queued after a write failed reaches the device (a
            // write already in flight on the other thread may).
            queue.bytes -= op.len();
            self.done.notify_all();
            return queue;
        }
        queue.in_flight.push((number, op.copy()));
        drop(queue);
        let result = {
            let mut device = match (writer, &self.second) {
                (Writer::Second, Some(second)) => lock(second),
                _ => lock(&self.device),
            };
            match &op {
                Op::Program { offset, data } => device.program(*offset, data),
                Op::Erase { offset, len } => device.erase(*offset, *len),
            }
        };
        let mut queue = lock(&self.queue);
        queue.in_flight.retain(|(n, _)| *n != number);
        queue.bytes -= op.len();
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
        if queue.ops.iter().any(|(_, op)| op.len() >= self.buffer) {
            // A full buffer waits: a writer thread takes it on.
            self.work.notify_one();
        }
        queue
    }

    /// Returns once every op queued before the call is done (later ones
    /// may still be queued), writing them itself through the first writer's
    /// handle when no writer thread is (no hand-off to wait for when a sync
    /// is what the caller needs); then the first background failure, if
    /// any.
    fn drain(&self) -> Result<(), BehindError<D::Error>> {
        let mut queue = lock(&self.queue);
        let target = queue.queued;
        while queue.pending_below(target) {
            if queue.can_start(self.writers()) {
                queue = self.write_next(queue, Writer::First);
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
        // What is in flight and queued, oldest first, over what the device
        // holds.
        let end = offset + buf.len() as u64;
        let mut in_flight: Vec<&(u64, Op)> = queue.in_flight.iter().collect();
        in_flight.sort_unstable_by_key(|(n, _)| *n);
        for (_, op) in in_flight.into_iter().chain(&queue.ops) {
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
        let full = buffer.len() >= self.state.buffer;
        let number = queue.queued;
        queue.ops.push_back((number, Op::Program { offset, data: Arc::new(buffer) }));
        queue.queued += 1;
        // A full buffer goes to a writer thread at once (streaming: the
        // next one fills meanwhile). A partial one is what a sync flushed:
        // the syncing thread writes it itself as it drains, with no
        // hand-off to wait for; a writer takes it with the next full one.
        if full {
            self.state.work.notify_one();
        }
        Ok(())
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Self::Error> {
        let mut queue = lock(&self.state.queue);
        failure(&mut queue)?;
        let number = queue.queued;
        queue.ops.push_back((number, Op::Erase { offset, len }));
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
        for writer in self.writers.drain(..) {
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

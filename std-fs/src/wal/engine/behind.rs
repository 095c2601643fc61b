//! Write-behind, for the policies that do not sync every append: full
//! write buffers go to a thread of their own, so that the appending thread
//! keeps encoding while the kernel copies. Every path that needs the bytes
//! in the file (a sync, a seal, a reader, a truncation) waits until it is
//! idle.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use super::commit::lock;
use crate::wal::sync::{Condvar, Mutex, MutexGuard};

/// Buffers each WAL may have in flight to the write-behind thread.
pub(crate) const BEHIND_BUFFERS: usize = 2;

/// A full write buffer on its way to a segment file.
pub(crate) struct WriteJob<F> {
    pub(crate) file: Arc<F>,
    pub(crate) path: PathBuf,
    /// Where its bytes go in the file.
    pub(crate) at: u64,
    pub(crate) bytes: Vec<u8>,
}

struct Queue<F> {
    jobs: VecDeque<WriteJob<F>>,
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

/// The queue between appending threads and the write-behind thread.
pub(crate) struct WriteBehind<F> {
    queue: Mutex<Queue<F>>,
    wake: Condvar,
}

impl<F> WriteBehind<F> {
    /// A queue with `buffers` spare buffers of `capacity` bytes.
    pub(crate) fn new(buffers: usize, capacity: usize) -> Self {
        let queue = Queue {
            jobs: VecDeque::new(),
            spare: (0..buffers).map(|_| Vec::with_capacity(capacity)).collect(),
            busy: false,
            stop: false,
            idle: false,
            waiting: 0,
        };
        Self { queue: Mutex::new(queue), wake: Condvar::new() }
    }

    fn wait<'a>(&'a self, mut queue: MutexGuard<'a, Queue<F>>) -> MutexGuard<'a, Queue<F>> {
        queue.waiting += 1;
        queue = self.wake.wait(queue).unwrap_or_else(std::sync::PoisonError::into_inner);
        queue.waiting -= 1;
        queue
    }

    /// Swaps the full buffer `buf` for a spare one (waiting for one) and
    /// queues its bytes to be written at `at` in `file`.
    pub(crate) fn hand_off(&self, buf: &mut Vec<u8>, file: Arc<F>, path: PathBuf, at: u64) {
        let mut queue = lock(&self.queue);
        let spare = loop {
            if let Some(spare) = queue.spare.pop() {
                break spare;
            }
            queue = self.wait(queue);
        };
        let bytes = std::mem::replace(buf, spare);
        queue.jobs.push_back(WriteJob { file, path, at, bytes });
        let idle = queue.idle;
        drop(queue);
        if idle {
            self.wake.notify_all();
        }
    }

    /// Whether a spare buffer is waiting, so that a hand-off made now does
    /// not wait.
    pub(crate) fn has_spare(&self) -> bool {
        !lock(&self.queue).spare.is_empty()
    }

    /// Waits until every buffer handed off has been written. Called under
    /// the append lock, so none is added meanwhile.
    pub(crate) fn wait_idle(&self) {
        let mut queue = lock(&self.queue);
        while queue.busy || !queue.jobs.is_empty() {
            queue = self.wait(queue);
        }
    }

    /// The write-behind thread's loop: writes each job with `write`, in
    /// order, until [`stop`](Self::stop) is called and the queue is empty.
    pub(crate) fn run(&self, mut write: impl FnMut(&WriteJob<F>)) {
        let mut queue = lock(&self.queue);
        loop {
            if let Some(mut job) = queue.jobs.pop_front() {
                queue.busy = true;
                drop(queue);
                write(&job);
                job.bytes.clear();
                queue = lock(&self.queue);
                queue.busy = false;
                queue.spare.push(job.bytes);
                if queue.waiting > 0 {
                    self.wake.notify_all();
                }
                continue;
            }
            if queue.stop {
                return;
            }
            queue.idle = true;
            queue = self.wake.wait(queue).unwrap_or_else(std::sync::PoisonError::into_inner);
            queue.idle = false;
        }
    }

    /// Asks the thread to stop once it has written what it holds.
    pub(crate) fn stop(&self) {
        lock(&self.queue).stop = true;
        self.wake.notify_all();
    }
}

#[cfg(all(test, not(feature = "shuttle")))]
mod tests {
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use super::*;

    #[test]
    fn jobs_are_written_in_order_and_buffers_come_back() {
        let behind = Arc::new(WriteBehind::<()>::new(BEHIND_BUFFERS, 16));
        let (tx, rx) = mpsc::channel();
        let writer = {
            let behind = Arc::clone(&behind);
            thread::spawn(move || behind.run(|job| tx.send((job.at, job.bytes.clone())).unwrap()))
        };
        let mut buf = Vec::new();
        for i in 0..10u8 {
            buf.extend_from_slice(&[i; 4]);
            behind.hand_off(&mut buf, Arc::new(()), PathBuf::from("seg"), u64::from(i) * 4);
            assert!(buf.is_empty(), "a spare buffer is swapped in");
        }
        behind.wait_idle();
        behind.stop();
        writer.join().unwrap();
        let written: Vec<_> = rx.try_iter().collect();
        let expected: Vec<_> = (0..10u8).map(|i| (u64::from(i) * 4, vec![i; 4])).collect();
        assert_eq!(written, expected);
        assert_eq!(lock(&behind.queue).spare.len(), BEHIND_BUFFERS, "every buffer came back");
    }

    #[test]
    fn a_hand_off_waits_for_a_spare_buffer() {
        let behind = Arc::new(WriteBehind::<()>::new(1, 16));
        let mut buf = vec![1];
        behind.hand_off(&mut buf, Arc::new(()), PathBuf::new(), 0);
        // No writer runs yet and no spare is left: the next hand-off waits.
        let second = {
            let behind = Arc::clone(&behind);
            thread::spawn(move || {
                let mut buf = vec![2];
                behind.hand_off(&mut buf, Arc::new(()), PathBuf::new(), 1);
            })
        };
        thread::sleep(Duration::from_millis(20));
        assert!(!second.is_finished(), "no spare buffer: the hand-off waits");
        let writer = {
            let behind = Arc::clone(&behind);
            thread::spawn(move || behind.run(|_| {}))
        };
        second.join().unwrap();
        behind.wait_idle();
        behind.stop();
        writer.join().unwrap();
        assert!(lock(&behind.queue).jobs.is_empty());
    }

    #[test]
    fn stop_drains_the_queue_first() {
        let behind = Arc::new(WriteBehind::<()>::new(2, 16));
        let mut buf = vec![7];
        behind.hand_off(&mut buf, Arc::new(()), PathBuf::new(), 0);
        behind.stop();
        let mut written = 0;
        behind.run(|_| written += 1);
        assert_eq!(written, 1);
    }
}

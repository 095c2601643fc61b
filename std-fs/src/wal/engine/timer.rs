//! The background timer: a sync within the batch window after the first
//! record not yet durable, a sync asked for by a task that waits for one
//! without holding a thread (the async API under `Always`), and a rotation
//! of a segment older than the age limit.

use std::sync::PoisonError;
use std::time::{Duration, Instant};

use super::commit::lock;
use crate::wal::sync::{AtomicBool, Condvar, Mutex};

#[derive(Default)]
struct Orders {
    stop: bool,
    /// When the oldest record not yet durable was appended.
    dirty_since: Option<Instant>,
    /// A sync was asked for (it covers every LSN appended before it).
    wanted: bool,
}

/// What the timer is told and when it is due; [`run`](Timer::run) is the
/// background thread's loop.
#[derive(Default)]
pub(crate) struct Timer {
    orders: Mutex<Orders>,
    wake: Condvar,
    /// A record was appended since the last timed sync (read without the
    /// lock on the append path).
    dirty: AtomicBool,
}

/// What [`Timer::run`] calls when something is due.
pub(crate) trait Due {
    /// When the active segment, if it holds records, was created.
    fn active_created(&self) -> Option<Instant>;
    /// The batch window ended: sync what was appended.
    fn sync(&self);
    /// The active segment may be older than the age limit: rotate it if so.
    fn rotate(&self);
}

impl Timer {
    /// Says a record was appended: the first one since the last timed sync
    /// starts the window.
    #[inline]
    pub(crate) fn mark_dirty(&self) {
        if !self.dirty.swap(true, std::sync::atomic::Ordering::AcqRel) {
            lock(&self.orders).dirty_since.get_or_insert_with(Instant::now);
            self.wake.notify_all();
        }
    }

    /// Asks for a sync now, covering every LSN appended before the call;
    /// the caller waits for it as it likes (a future on the durable point).
    #[cfg_attr(
        not(feature = "async"),
        allow(dead_code, reason = "only the async API (and a unit test) asks the timer to sync")
    )]
    pub(crate) fn request_sync(&self) {
        lock(&self.orders).wanted = true;
        self.wake.notify_all();
    }

    /// Ends [`run`](Self::run).
    pub(crate) fn stop(&self) {
        lock(&self.orders).stop = true;
        self.wake.notify_all();
    }

    /// Syncs `window` after the first record not yet durable, and rotates
    /// the active segment once it is `age` old, until stopped.
    pub(crate) fn run(&self, window: Option<Duration>, age: Option<Duration>, due: &impl Due) {
        let mut orders = lock(&self.orders);
        loop {
            if orders.stop {
                return;
            }
            let now = Instant::now();
            let sync_due = if orders.wanted {
                Some(now)
            } else {
                window.and_then(|w| orders.dirty_since.map(|t| t + w))
            };
            let rotate_due = age.and_then(|a| due.active_created().map(|t| t + a));
            let next = [sync_due, rotate_due].into_iter().flatten().min();
            let wait = next.map_or(Duration::from_secs(1), |t| t.saturating_duration_since(now));
            if !wait.is_zero() {
                orders = self.wake.wait_timeout(orders, wait).unwrap_or_else(PoisonError::into_inner).0;
                continue;
            }
            let do_sync = sync_due.is_some_and(|t| t <= now);
            if do_sync {
                orders.dirty_since = None;
                // The sync below covers every LSN appended before it starts.
                orders.wanted = false;
            }
            drop(orders);
            if do_sync {
                self.dirty.store(false, std::sync::atomic::Ordering::Release);
                due.sync();
            }
            if rotate_due.is_some_and(|t| t <= now) {
                due.rotate();
            }
            orders = lock(&self.orders);
        }
    }
}

#[cfg(all(test, not(feature = "shuttle")))]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex as StdMutex};
    use std::thread;

    use super::*;

    #[derive(Default)]
    struct Counts {
        syncs: AtomicU64,
        rotations: AtomicU64,
        created: StdMutex<Option<Instant>>,
    }

    impl Due for Counts {
        fn active_created(&self) -> Option<Instant> {
            *self.created.lock().unwrap()
        }
        fn sync(&self) {
            self.syncs.fetch_add(1, Ordering::AcqRel);
        }
        fn rotate(&self) {
            self.rotations.fetch_add(1, Ordering::AcqRel);
            *self.created.lock().unwrap() = Some(Instant::now() + Duration::from_secs(3600));
        }
    }

    fn wait_until(what: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !what() {
            assert!(Instant::now() < deadline, "not due after 10 s");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_dirty_log_is_synced_once_per_window() {
        let (timer, due) = (Arc::new(Timer::default()), Arc::new(Counts::default()));
        let thread = {
            let (timer, due) = (Arc::clone(&timer), Arc::clone(&due));
            thread::spawn(move || timer.run(Some(Duration::from_millis(5)), None, &*due))
        };
        thread::sleep(Duration::from_millis(20));
        assert_eq!(due.syncs.load(Ordering::Acquire), 0, "nothing appended: no sync");
        timer.mark_dirty();
        timer.mark_dirty();
        wait_until(|| due.syncs.load(Ordering::Acquire) == 1);
        timer.mark_dirty();
        wait_until(|| due.syncs.load(Ordering::Acquire) == 2);
        timer.stop();
        thread.join().unwrap();
        assert_eq!(due.syncs.load(Ordering::Acquire), 2);
    }

    #[test]
    fn a_requested_sync_runs_at_once_without_a_window() {
        let (timer, due) = (Arc::new(Timer::default()), Arc::new(Counts::default()));
        let thread = {
            let (timer, due) = (Arc::clone(&timer), Arc::clone(&due));
            thread::spawn(move || timer.run(None, None, &*due))
        };
        timer.request_sync();
        wait_until(|| due.syncs.load(Ordering::Acquire) == 1);
        thread::sleep(Duration::from_millis(20));
        assert_eq!(due.syncs.load(Ordering::Acquire), 1, "one request, one sync");
        timer.stop();
        thread.join().unwrap();
    }

    #[test]
    fn an_old_segment_is_rotated() {
        let (timer, due) = (Arc::new(Timer::default()), Arc::new(Counts::default()));
        *due.created.lock().unwrap() = Some(Instant::now());
        let thread = {
            let (timer, due) = (Arc::clone(&timer), Arc::clone(&due));
            thread::spawn(move || timer.run(None, Some(Duration::from_millis(5)), &*due))
        };
        wait_until(|| due.rotations.load(Ordering::Acquire) == 1);
        timer.stop();
        thread.join().unwrap();
        assert_eq!(due.syncs.load(Ordering::Acquire), 0, "no window: no timed sync");
    }
}

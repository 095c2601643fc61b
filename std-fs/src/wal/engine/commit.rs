//! Group commit: the durable point, the turns of syncs that move it, and
//! the poisoned state — the one place each of them is true.
//!
//! It knows neither files nor runtimes: a turn's leader syncs through the
//! closure it is given (a segment file's `fdatasync`, a raw device's sync
//! handle), and an optional observer hears of every change of the durable
//! point or the poison (the async API's watch channel).

use std::sync::PoisonError;

use nori_wal_core::Lsn;

use crate::wal::sync::{AtomicBool, AtomicU64, Condvar, Mutex, MutexGuard};

/// Locks a mutex, ignoring poisoning by a panicked thread: the state each
/// mutex guards is updated so that it is consistent at every await point.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `cv`, ignoring poisoning as [`lock`] does.
fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// Told the durable end and whether the log is poisoned, whenever either
/// may have changed (under the group-commit lock: it must not block).
pub(crate) type Observer = Box<dyn Fn(Lsn, bool) + Send + Sync>;

/// The log is poisoned; `C` is what poisoned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Poisoned<C>(pub(crate) C);

/// The state of the turns, under one lock.
struct Turns<C> {
    /// A thread is syncing (or running an exclusive operation): others wait.
    busy: bool,
    /// Counts turns; waiters of turn `t` wait on `cvs[t % 2]`.
    turn: u64,
    /// Once the running turn has flushed: the LSN below which its sync
    /// makes records durable.
    covered_end: Option<Lsn>,
    /// Threads waiting for the turn after the running one.
    next_waiters: usize,
    /// The failure that poisoned the log, first one only.
    poisoned: Option<C>,
}

/// Group commit over any sync: see the [module docs](self).
///
/// Waiters whose records the running sync covers wait on the condition
/// variable of its turn and are all released when it ends; the others wait
/// on the next turn's, and one of them is woken to lead it. So a sync wakes
/// each thread it made durable once, and one more.
pub(crate) struct GroupCommit<C> {
    turns: Mutex<Turns<C>>,
    /// The condition variables of even and odd turns.
    cvs: [Condvar; 2],
    /// LSNs below this are durable.
    durable_end: AtomicU64,
    /// Mirrors `turns.poisoned.is_some()`, read without the lock.
    poisoned: AtomicBool,
    observer: Option<Observer>,
}

impl<C: Clone> GroupCommit<C> {
    /// A group commit whose LSNs below `durable_end` are durable.
    pub(crate) fn new(durable_end: Lsn, observer: Option<Observer>) -> Self {
        let turns = Turns { busy: false, turn: 0, covered_end: None, next_waiters: 0, poisoned: None };
        Self {
            turns: Mutex::new(turns),
            cvs: [Condvar::new(), Condvar::new()],
            durable_end: AtomicU64::new(durable_end),
            poisoned: AtomicBool::new(false),
            observer,
        }
    }

    /// LSNs below this are durable.
    #[inline]
    pub(crate) fn durable_end(&self) -> Lsn {
        self.durable_end.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether a failure poisoned the log.
    #[inline]
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(std::sync::atomic::Ordering::Acquire)
    }

    /// `Err` with the cause once the log is poisoned (one atomic load when
    /// it is not).
    #[inline]
    pub(crate) fn check(&self) -> Result<(), Poisoned<C>> {
        if self.is_poisoned() { Err(self.poisoned_error()) } else { Ok(()) }
    }

    #[cold]
    fn poisoned_error(&self) -> Poisoned<C> {
        let cause = lock(&self.turns).poisoned.clone();
        Poisoned(cause.unwrap_or_else(|| unreachable!("the flag is set after the cause")))
    }

    /// Poisons the log with the cause `cause` makes, unless it is poisoned
    /// already (the first failure is the one kept). Returns whether this
    /// call poisoned it. Every waiter is woken and gets the error.
    pub(crate) fn poison(&self, cause: impl FnOnce() -> C) -> bool {
        let mut turns = lock(&self.turns);
        let first = turns.poisoned.is_none();
        if first {
            turns.poisoned = Some(cause());
        }
        self.poisoned.store(true, std::sync::atomic::Ordering::Release);
        drop(turns);
        self.publish();
        first
    }

    /// Records that LSNs below `end` are durable (a sync made outside a
    /// turn, under a lock that keeps turns out), unless the log is poisoned.
    pub(crate) fn advance(&self, end: Lsn) -> Result<(), Poisoned<C>> {
        let turns = lock(&self.turns);
        if let Some(cause) = &turns.poisoned {
            return Err(Poisoned(cause.clone()));
        }
        self.durable_end.fetch_max(end, std::sync::atomic::Ordering::AcqRel);
        drop(turns);
        self.publish();
        Ok(())
    }

    /// Lowers the durable end to `end` at most: the LSNs above it were
    /// dropped (a suffix cut, in an exclusive turn).
    pub(crate) fn lower_to(&self, end: Lsn) {
        self.durable_end.fetch_min(end, std::sync::atomic::Ordering::AcqRel);
        self.publish();
    }

    /// Said by a turn's leader once it has flushed: its sync makes LSNs
    /// below `end` durable. Waiters arriving from here on know whether the
    /// running turn covers them.
    pub(crate) fn cover(&self, end: Lsn) {
        lock(&self.turns).covered_end = Some(end);
    }

    /// Returns once every LSN below `end` is durable, leading a turn when
    /// none is under way. The leader runs `lead`, which flushes, calls
    /// [`cover`](Self::cover), syncs and returns the end it made durable;
    /// its error is the leader's, and the waiters of its turn get
    /// [`Poisoned`] if `lead` poisoned the log.
    pub(crate) fn sync_until<E: From<Poisoned<C>>>(
        &self,
        end: Lsn,
        mut lead: impl FnMut() -> Result<Lsn, E>,
    ) -> Result<(), E> {
        let mut turns = lock(&self.turns);
        loop {
            if let Some(cause) = &turns.poisoned {
                return Err(Poisoned(cause.clone()).into());
            }
            if self.durable_end() >= end {
                if !turns.busy && turns.next_waiters > 0 {
                    // Woken to lead but not needed: pass the turn on.
                    self.cvs[(turns.turn & 1) as usize].notify_one();
                }
                return Ok(());
            }
            if turns.busy {
                turns = self.wait_for_turn(turns, end);
                continue;
            }
            turns.busy = true;
            turns.covered_end = None;
            drop(turns);
            let result = lead();
            turns = lock(&self.turns);
            if let Ok(flushed) = result
                && turns.poisoned.is_none()
            {
                self.durable_end.fetch_max(flushed, std::sync::atomic::Ordering::AcqRel);
            }
            self.end_turn(&mut turns);
            result?;
        }
    }

    /// While a turn runs: waits for its end if it covers `end` (or has not
    /// flushed yet), else for the end of the next turn's election.
    fn wait_for_turn<'a>(
        &'a self,
        mut turns: MutexGuard<'a, Turns<C>>,
        end: Lsn,
    ) -> MutexGuard<'a, Turns<C>> {
        let turn = turns.turn;
        if turns.covered_end.is_none_or(|covered| covered >= end) {
            while turns.turn == turn && turns.poisoned.is_none() {
                turns = wait(&self.cvs[(turn & 1) as usize], turns);
            }
            return turns;
        }
        let next = &self.cvs[((turn + 1) & 1) as usize];
        turns.next_waiters += 1;
        while turns.turn == turn && turns.poisoned.is_none() {
            turns = wait(next, turns);
        }
        // Wait for the election after the turn ends.
        while turns.busy && turns.turn == turn + 1 && turns.poisoned.is_none() {
            turns = wait(next, turns);
        }
        turns.next_waiters -= 1;
        turns
    }

    /// Waits, without leading a turn, until every LSN below `end` is
    /// durable (a timer, or another thread, syncs).
    pub(crate) fn wait_passive(&self, end: Lsn) -> Result<(), Poisoned<C>> {
        let mut turns = lock(&self.turns);
        loop {
            if let Some(cause) = &turns.poisoned {
                return Err(Poisoned(cause.clone()));
            }
            if self.durable_end() >= end {
                return Ok(());
            }
            // Woken when a turn ends or the durable point moves otherwise.
            let cv = &self.cvs[(turns.turn & 1) as usize];
            turns = wait(cv, turns);
        }
    }

    /// Runs `op` in a turn of its own, with no sync under way, so that the
    /// durable point moves only as `op` moves it. Its waiters are released
    /// when it ends; it covers none of them.
    pub(crate) fn exclusive<T, E>(&self, op: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let mut turns = lock(&self.turns);
        while turns.busy {
            let cv = &self.cvs[(turns.turn & 1) as usize];
            turns = wait(cv, turns);
        }
        turns.busy = true;
        turns.covered_end = Some(0);
        drop(turns);
        let result = op();
        self.end_turn(&mut lock(&self.turns));
        result
    }

    /// Ends the running turn: releases its waiters and elects the next
    /// leader among the others.
    fn end_turn(&self, turns: &mut Turns<C>) {
        self.observe(turns.poisoned.is_some());
        let turn = turns.turn;
        turns.busy = false;
        turns.covered_end = None;
        turns.turn += 1;
        self.cvs[(turn & 1) as usize].notify_all();
        if turns.poisoned.is_some() {
            self.cvs[((turn + 1) & 1) as usize].notify_all();
        } else if turns.next_waiters > 0 {
            self.cvs[((turn + 1) & 1) as usize].notify_one();
        }
    }

    /// Tells the observer and every waiter that the durable end or the
    /// poison changed.
    fn publish(&self) {
        self.observe(self.is_poisoned());
        for cv in &self.cvs {
            cv.notify_all();
        }
    }

    fn observe(&self, poisoned: bool) {
        if let Some(observer) = &self.observer {
            observer(self.durable_end(), poisoned);
        }
    }
}

#[cfg(all(test, not(feature = "shuttle")))]
mod tests {
    use std::sync::atomic::{AtomicU64 as StdU64, Ordering};
    use std::sync::{Arc, Barrier, mpsc};
    use std::thread;
    use std::time::Duration;

    use super::*;

    type Commit = GroupCommit<&'static str>;

    #[derive(Debug, PartialEq)]
    enum TestError {
        Poisoned(&'static str),
        Sync,
    }

    impl From<Poisoned<&'static str>> for TestError {
        fn from(p: Poisoned<&'static str>) -> Self {
            Self::Poisoned(p.0)
        }
    }

    /// Waits until `n` threads are waiting for the turn after the running one.
    fn until_next_waiters(commit: &Commit, n: usize) {
        while lock(&commit.turns).next_waiters < n {
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_turn_covering_an_end_returns_at_once() {
        let commit = Commit::new(10, None);
        let leads = StdU64::new(0);
        let lead = || -> Result<Lsn, TestError> {
            leads.fetch_add(1, Ordering::Relaxed);
            Ok(20)
        };
        commit.sync_until(5, lead).unwrap();
        assert_eq!(leads.load(Ordering::Relaxed), 0, "already durable: no sync");
        commit.sync_until(15, lead).unwrap();
        assert_eq!((leads.load(Ordering::Relaxed), commit.durable_end()), (1, 20));
    }

    #[test]
    fn waiters_behind_a_running_sync_share_the_next_one() {
        let commit = Arc::new(Commit::new(0, None));
        let appended = Arc::new(StdU64::new(1));
        let leads = Arc::new(StdU64::new(0));
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let lead = {
            let (commit, appended, leads, gate) =
                (Arc::clone(&commit), Arc::clone(&appended), Arc::clone(&leads), Arc::clone(&gate));
            move || -> Result<Lsn, TestError> {
                let flushed = appended.load(Ordering::Acquire);
                commit.cover(flushed);
                if leads.fetch_add(1, Ordering::AcqRel) == 0 {
                    // The first sync is slow: the others queue behind it.
                    gate.lock().unwrap().recv().unwrap();
                }
                Ok(flushed)
            }
        };
        let first = {
            let (commit, lead) = (Arc::clone(&commit), lead.clone());
            thread::spawn(move || commit.sync_until(1, lead))
        };
        while leads.load(Ordering::Acquire) == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        // Three more records, past what the running sync covers.
        appended.store(4, Ordering::Release);
        let waiters: Vec<_> = (2..=4)
            .map(|end| {
                let (commit, lead) = (Arc::clone(&commit), lead.clone());
                thread::spawn(move || commit.sync_until(end, lead))
            })
            .collect();
        until_next_waiters(&commit, 3);
        release.send(()).unwrap();
        first.join().unwrap().unwrap();
        for w in waiters {
            w.join().unwrap().unwrap();
        }
        assert_eq!(commit.durable_end(), 4);
        assert_eq!(leads.load(Ordering::Acquire), 2, "one sync for the three that waited");
    }

    #[test]
    fn a_failed_sync_poisons_every_waiter_and_every_later_call() {
        let commit = Arc::new(Commit::new(0, None));
        let started = Arc::new(Barrier::new(2));
        let (release, gate) = mpsc::channel::<()>();
        let leader = {
            let (commit, started) = (Arc::clone(&commit), Arc::clone(&started));
            thread::spawn(move || {
                commit.sync_until(1, || {
                    commit.cover(1);
                    started.wait();
                    gate.recv().unwrap();
                    commit.poison(|| "disk on fire");
                    Err(TestError::Sync)
                })
            })
        };
        started.wait();
        let waiter = {
            let commit = Arc::clone(&commit);
            thread::spawn(move || commit.sync_until(5, || -> Result<Lsn, TestError> { Ok(5) }))
        };
        until_next_waiters(&commit, 1);
        release.send(()).unwrap();
        assert_eq!(leader.join().unwrap(), Err(TestError::Sync), "the leader gets its own error");
        assert_eq!(waiter.join().unwrap(), Err(TestError::Poisoned("disk on fire")));
        assert_eq!(commit.durable_end(), 0, "a failed sync moves nothing");
        assert_eq!(commit.check(), Err(Poisoned("disk on fire")));
        assert_eq!(commit.advance(9), Err(Poisoned("disk on fire")));
        assert_eq!(commit.wait_passive(1), Err(Poisoned("disk on fire")));
        assert!(!commit.poison(|| "later"), "the first cause is kept");
        assert_eq!(commit.check(), Err(Poisoned("disk on fire")));
    }

    #[test]
    fn a_passive_waiter_is_released_by_an_advance() {
        let commit = Arc::new(Commit::new(0, None));
        let waiter = {
            let commit = Arc::clone(&commit);
            thread::spawn(move || commit.wait_passive(3))
        };
        commit.advance(2).unwrap();
        thread::sleep(Duration::from_millis(5));
        assert!(!waiter.is_finished(), "2 does not cover LSN 2");
        commit.advance(3).unwrap();
        waiter.join().unwrap().unwrap();
    }

    #[test]
    fn an_exclusive_turn_waits_for_the_running_sync_and_covers_no_one() {
        let commit = Arc::new(Commit::new(0, None));
        let (release, gate) = mpsc::channel::<()>();
        let started = Arc::new(Barrier::new(2));
        let syncer = {
            let (commit, started) = (Arc::clone(&commit), Arc::clone(&started));
            thread::spawn(move || {
                commit.sync_until(1, || -> Result<Lsn, TestError> {
                    started.wait();
                    gate.recv().unwrap();
                    Ok(1)
                })
            })
        };
        started.wait();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let exclusive = {
            let (commit, order) = (Arc::clone(&commit), Arc::clone(&order));
            thread::spawn(move || {
                commit.exclusive(|| -> Result<(), TestError> {
                    order.lock().unwrap().push("exclusive");
                    Ok(())
                })
            })
        };
        thread::sleep(Duration::from_millis(10));
        order.lock().unwrap().push("sync ends");
        release.send(()).unwrap();
        syncer.join().unwrap().unwrap();
        exclusive.join().unwrap().unwrap();
        assert_eq!(*order.lock().unwrap(), ["sync ends", "exclusive"]);
        commit.lower_to(0);
        assert_eq!(commit.durable_end(), 0);
    }

    #[test]
    fn the_observer_hears_each_change() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let observer: Observer = {
            let seen = Arc::clone(&seen);
            Box::new(move |end, poisoned| seen.lock().unwrap().push((end, poisoned)))
        };
        let commit = Commit::new(0, Some(observer));
        commit.sync_until(2, || -> Result<Lsn, TestError> { Ok(2) }).unwrap();
        commit.lower_to(1);
        commit.poison(|| "gone");
        assert_eq!(*seen.lock().unwrap(), [(2, false), (1, false), (1, true)]);
    }
}

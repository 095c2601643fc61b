//! Group commit: the durable point, the turns of syncs that move it, and
//! the poisoned state — the one place each of them is true.
//!
//! It knows neither files nor runtimes: a turn's leader syncs through the
//! closure it is given (a segment file's `fdatasync`, a raw device's sync
//! handle). Threads that may lead wait on condition variables for their
//! turn; tasks await [`GroupCommit::durable`], a future woken once, when
//! the durable point reaches the LSN it waits for (any executor: it holds
//! a [`Waker`](std::task::Waker), no thread), and threads that leave the
//! syncing to a sync thread park on the same future
//! ([`GroupCommit::sync_or_ask`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::PoisonError;
use std::task::{Context, Poll, Waker};

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
    /// A caller asked the sync thread for a sync since the running (or
    /// last) turn began: the sync thread runs another turn, so a caller
    /// arriving between turns asks too rather than lead one of its own.
    asked: bool,
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
    /// Tasks awaiting [`durable`](GroupCommit::durable), by the end each
    /// waits for and a number of its own.
    tasks: Mutex<BTreeMap<(Lsn, u64), Waiter>>,
    /// Parked threads a sync made durable, not yet unparked: each thread
    /// unparked unparks [`RELAY`] more, so the syncer is free for the
    /// next sync after unparking a few (see [`wake_tasks`](Self::wake_tasks)).
    relay: Mutex<Vec<std::sync::Arc<Parked>>>,
    /// Numbers the waiting tasks.
    next_task: AtomicU64,
    /// Tasks woken because the durable point reached their end (or the log
    /// was poisoned).
    task_wakeups: AtomicU64,
    /// Waiters (tasks and parked threads) the last turn woke: more than one
    /// means several writers share the syncs.
    last_woken: AtomicU64,
}

impl<C: Clone> GroupCommit<C> {
    /// A group commit whose LSNs below `durable_end` are durable.
    pub(crate) fn new(durable_end: Lsn) -> Self {
        let turns =
            Turns { busy: false, turn: 0, covered_end: None, next_waiters: 0, asked: false, poisoned: None };
        Self {
            turns: Mutex::new(turns),
            cvs: [Condvar::new(), Condvar::new()],
            durable_end: AtomicU64::new(durable_end),
            poisoned: AtomicBool::new(false),
            tasks: Mutex::new(BTreeMap::new()),
            relay: Mutex::new(Vec::new()),
            next_task: AtomicU64::new(0),
            task_wakeups: AtomicU64::new(0),
            last_woken: AtomicU64::new(0),
        }
    }

    /// LSNs below this are durable.
    #[inline]
    pub(crate) fn durable_end(&self) -> Lsn {
        self.durable_end.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether the caller looks like the only writer waiting for syncs: no
    /// turn runs, none was asked of the sync thread, no thread waits for
    /// the next turn, and the last turn woke at most one waiter. A caller
    /// of [`sync_or_ask`](Self::sync_or_ask) arriving now would lead the
    /// next turn itself; among many writers, the sync thread leads instead.
    #[cfg_attr(not(feature = "async"), allow(dead_code, reason = "only the async APIs ask"))]
    pub(crate) fn alone(&self) -> bool {
        if self.last_woken.load(std::sync::atomic::Ordering::Relaxed) > 1 {
            return false;
        }
        let turns = lock(&self.turns);
        !turns.busy && !turns.asked && turns.next_waiters == 0 && turns.poisoned.is_none()
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
        lead: impl FnMut() -> Result<Lsn, E>,
    ) -> Result<(), E> {
        self.sync_or_ask(end, lead, None)
    }

    /// As [`sync_until`](Self::sync_until) when no turn is under way; while
    /// one is, calls `ask` (which must see that a sync thread runs the next
    /// turn) and parks until a sync covers `end`, woken once
    /// ([`wait_woken`](Self::wait_woken)), instead of waiting to lead the
    /// next turn itself. So a lone caller leads its own sync, and many
    /// callers are gathered by a syncer that is always ready.
    pub(crate) fn sync_or_ask<E: From<Poisoned<C>>>(
        &self,
        end: Lsn,
        mut lead: impl FnMut() -> Result<Lsn, E>,
        ask: Option<&dyn Fn()>,
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
            if let Some(ask) = ask
                && (turns.busy || turns.asked)
            {
                turns.asked = true;
                drop(turns);
                ask();
                return Ok(self.wait_woken(end)?);
            }
            if turns.busy {
                turns = self.wait_for_turn(turns, end);
                continue;
            }
            turns.busy = true;
            turns.covered_end = None;
            turns.asked = false;
            drop(turns);
            let result = lead();
            turns = lock(&self.turns);
            if let Ok(flushed) = result
                && turns.poisoned.is_none()
            {
                self.durable_end.fetch_max(flushed, std::sync::atomic::Ordering::AcqRel);
            }
            self.end_turn(&mut turns);
            // Tasks and parked writers are woken with the turn lock
            // released: they append (and take that lock) while the rest
            // are woken.
            drop(turns);
            self.wake_tasks();
            result?;
            turns = lock(&self.turns);
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
        self.wake_tasks();
        result
    }

    /// Ends the running turn: releases its waiters and elects the next
    /// leader among the others. The caller then wakes the tasks
    /// ([`wake_tasks`](Self::wake_tasks)), with the lock released.
    fn end_turn(&self, turns: &mut Turns<C>) {
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

    /// Tells every waiter (tasks, parked threads, threads on the condition
    /// variables) that the durable end or the poison changed.
    fn publish(&self) {
        self.wake_tasks();
        for cv in &self.cvs {
            cv.notify_all();
        }
    }

    /// Wakes the tasks whose end the durable point has reached, or every
    /// task once the log is poisoned. Called after every change of either
    /// (the change is made before the task lock is taken here, and a task
    /// checks under that lock after registering: no wake-up is lost).
    fn wake_tasks(&self) {
        let ready = {
            let mut tasks = lock(&self.tasks);
            if tasks.is_empty() {
                self.last_woken.store(0, std::sync::atomic::Ordering::Relaxed);
                return;
            }
            let durable = self.durable_end();
            if self.is_poisoned() || durable == Lsn::MAX {
                std::mem::take(&mut *tasks)
            } else {
                let waiting = tasks.split_off(&(durable + 1, 0));
                std::mem::replace(&mut *tasks, waiting)
            }
        };
        self.task_wakeups.fetch_add(ready.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.last_woken.store(ready.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let mut threads = Vec::new();
        for waiter in ready.into_values() {
            match waiter {
                Waiter::Task(waker) => waker.wake(),
                Waiter::Thread(parked) => threads.push(parked),
            }
        }
        if !threads.is_empty() {
            lock(&self.relay).append(&mut threads);
            self.relay_wakes();
        }
    }

    /// Unparks up to [`RELAY`] of the threads a sync made durable. Called
    /// by the syncer and by every thread as it leaves
    /// [`wait_woken`](Self::wait_woken), so each unparked thread unparks
    /// more (a tree): on few CPUs, unparking dozens of threads one by one
    /// kept the syncer from its next sync for about as long as a sync.
    ///
    /// None is left parked: a thread is counted only if it has not left
    /// yet (checked under the relay lock), and a thread leaves only after
    /// marking itself left and then relaying; so each thread counted
    /// relays later, and the list empties.
    fn relay_wakes(&self) {
        let mut wake = Vec::with_capacity(RELAY);
        {
            let mut relay = lock(&self.relay);
            while wake.len() < RELAY {
                let Some(parked) = relay.pop() else { break };
                if !parked.left.load(std::sync::atomic::Ordering::Acquire) {
                    wake.push(parked);
                }
            }
        }
        for parked in wake {
            parked.thread.unpark();
        }
    }

    /// Resolves once every LSN below `end` is durable (`Err` once the log
    /// is poisoned), leading no turn and holding no thread: something else
    /// must sync (a timer, a leader, [`sync_until`](Self::sync_until) on
    /// another thread). The task is woken once, when the durable point
    /// reaches `end`, not at every move. Dropping the future forgets it.
    pub(crate) fn durable(&self, end: Lsn) -> Durable<'_, C> {
        Durable { commit: self, end, id: None, thread: None }
    }

    /// Blocks the calling thread until every LSN below `end` is durable,
    /// leading no turn: as [`durable`](Self::durable), the thread is woken
    /// once, when a sync covers `end` (or the log is poisoned).
    pub(crate) fn wait_woken(&self, end: Lsn) -> Result<(), Poisoned<C>> {
        let parked =
            std::sync::Arc::new(Parked { thread: crate::wal::sync::current(), left: AtomicBool::new(false) });
        let mut durable = self.durable(end);
        durable.thread = Some(std::sync::Arc::clone(&parked));
        // The future registers the thread, not this waker.
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(result) = Pin::new(&mut durable).poll(&mut cx) {
                parked.left.store(true, std::sync::atomic::Ordering::Release);
                self.relay_wakes();
                return result;
            }
            crate::wal::sync::park();
        }
    }

    /// Tasks woken by the durable point since the log was opened.
    pub(crate) fn task_wakeups(&self) -> u64 {
        self.task_wakeups.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The future of [`GroupCommit::durable`].
pub(crate) struct Durable<'a, C> {
    commit: &'a GroupCommit<C>,
    end: Lsn,
    /// Its number among the waiting tasks, once it has waited.
    id: Option<u64>,
    /// The parked thread that waits on it ([`GroupCommit::wait_woken`]),
    /// registered instead of the context's waker.
    thread: Option<std::sync::Arc<Parked>>,
}

/// A registered waiter.
enum Waiter {
    /// A task, woken by its waker.
    Task(Waker),
    /// A parked thread, unparked by relay ([`GroupCommit::relay_wakes`]).
    Thread(std::sync::Arc<Parked>),
}

/// A thread parked in [`GroupCommit::wait_woken`].
struct Parked {
    thread: crate::wal::sync::Thread,
    /// It left `wait_woken` (or is about to, and relays): unparking it
    /// would relay nothing.
    left: AtomicBool,
}

/// How many parked threads the syncer, and then each thread it unparks,
/// unparks in turn.
const RELAY: usize = 2;

impl<C: Clone> Future for Durable<'_, C> {
    type Output = Result<(), Poisoned<C>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let commit = this.commit;
        if this.id.is_none() && !commit.is_poisoned() && commit.durable_end() >= this.end {
            // Durable already and never registered: nothing to undo.
            return Poll::Ready(Ok(()));
        }
        let mut tasks = lock(&commit.tasks);
        // Checked under the task lock: a change made after this check
        // wakes the waker registered below.
        if commit.is_poisoned() || commit.durable_end() >= this.end {
            if let Some(id) = this.id.take() {
                tasks.remove(&(this.end, id));
            }
            drop(tasks);
            return Poll::Ready(commit.check());
        }
        let id = *this
            .id
            .get_or_insert_with(|| commit.next_task.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        match tasks.entry((this.end, id)) {
            std::collections::btree_map::Entry::Occupied(mut known) => {
                if let Waiter::Task(waker) = known.get_mut()
                    && !waker.will_wake(cx.waker())
                {
                    *waker = cx.waker().clone();
                }
            }
            std::collections::btree_map::Entry::Vacant(new) => {
                new.insert(match &this.thread {
                    Some(parked) => Waiter::Thread(std::sync::Arc::clone(parked)),
                    None => Waiter::Task(cx.waker().clone()),
                });
            }
        }
        Poll::Pending
    }
}

impl<C> Drop for Durable<'_, C> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            lock(&self.commit.tasks).remove(&(self.end, id));
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
        let commit = Commit::new(10);
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
        let commit = Arc::new(Commit::new(0));
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
    fn a_caller_that_can_ask_leads_alone_and_asks_while_a_sync_runs() {
        let commit = Arc::new(Commit::new(0));
        let asked = Arc::new(StdU64::new(0));
        let ask = {
            let asked = Arc::clone(&asked);
            move || {
                asked.fetch_add(1, Ordering::AcqRel);
            }
        };
        // Alone: it leads its own sync and asks nobody.
        commit.sync_or_ask(1, || -> Result<Lsn, TestError> { Ok(1) }, Some(&ask)).unwrap();
        assert_eq!((commit.durable_end(), asked.load(Ordering::Acquire)), (1, 0));
        // While a sync runs: it asks, leads nothing, and returns once a
        // sync (here the running one's successor, led by the "sync
        // thread") covers it.
        let (release, gate) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel::<()>();
        let running = {
            let commit = Arc::clone(&commit);
            thread::spawn(move || {
                commit.sync_until(2, || -> Result<Lsn, TestError> {
                    commit.cover(2);
                    started_tx.send(()).unwrap();
                    gate.recv().unwrap();
                    Ok(2)
                })
            })
        };
        started.recv().unwrap();
        let asker = {
            let (commit, ask) = (Arc::clone(&commit), ask.clone());
            thread::spawn(move || {
                commit.sync_or_ask(3, || -> Result<Lsn, TestError> { panic!("it led a sync") }, Some(&ask))
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while asked.load(Ordering::Acquire) == 0 {
            assert!(std::time::Instant::now() < deadline, "it did not ask while a sync ran");
            thread::sleep(Duration::from_millis(1));
        }
        release.send(()).unwrap();
        running.join().unwrap().unwrap();
        thread::sleep(Duration::from_millis(20));
        assert!(!asker.is_finished(), "returned before its record was durable");
        // Between turns, with a sync asked for and not yet begun: a new
        // caller asks too, rather than lead a sync of its own.
        let second = {
            let (commit, ask) = (Arc::clone(&commit), ask.clone());
            thread::spawn(move || {
                commit.sync_or_ask(4, || -> Result<Lsn, TestError> { panic!("it led a sync") }, Some(&ask))
            })
        };
        while asked.load(Ordering::Acquire) < 2 {
            assert!(std::time::Instant::now() < deadline, "it did not ask between turns");
            thread::sleep(Duration::from_millis(1));
        }
        // The asked-for turn (the "sync thread") covers both.
        commit.sync_until(3, || -> Result<Lsn, TestError> { Ok(4) }).unwrap();
        asker.join().unwrap().unwrap();
        second.join().unwrap().unwrap();
        assert_eq!(asked.load(Ordering::Acquire), 2);
        // That turn answered every ask: a lone caller leads again.
        commit.sync_or_ask(5, || -> Result<Lsn, TestError> { Ok(5) }, Some(&ask)).unwrap();
        assert_eq!((commit.durable_end(), asked.load(Ordering::Acquire)), (5, 2));
    }

    #[test]
    fn every_parked_thread_a_sync_covers_is_unparked() {
        // The syncer unparks two; each unparked thread unparks two more.
        let commit = Arc::new(Commit::new(0));
        let parked: Vec<_> = (1..=33)
            .map(|end| {
                let commit = Arc::clone(&commit);
                thread::spawn(move || commit.wait_woken(end))
            })
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while lock(&commit.tasks).len() < 33 {
            assert!(std::time::Instant::now() < deadline, "the threads did not wait");
            thread::sleep(Duration::from_millis(1));
        }
        // A sync covering the first 20: exactly those leave.
        commit.advance(20).unwrap();
        for t in &parked[..20] {
            while !t.is_finished() {
                assert!(std::time::Instant::now() < deadline, "a covered thread stayed parked");
                thread::sleep(Duration::from_millis(1));
            }
        }
        thread::sleep(Duration::from_millis(20));
        assert!(parked[20..].iter().all(|t| !t.is_finished()), "a thread left before its end was durable");
        assert!(lock(&commit.relay).is_empty());
        commit.advance(33).unwrap();
        for t in parked {
            t.join().unwrap().unwrap();
        }
        assert_eq!(commit.task_wakeups(), 33);
    }

    #[test]
    fn a_failed_sync_poisons_every_waiter_and_every_later_call() {
        let commit = Arc::new(Commit::new(0));
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
        let commit = Arc::new(Commit::new(0));
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
        let commit = Arc::new(Commit::new(0));
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

    /// A waker that counts its wakes.
    struct Counting(StdU64);

    impl std::task::Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll<F: Future + Unpin>(future: &mut F, waker: &Arc<Counting>) -> Poll<F::Output> {
        let waker = Waker::from(Arc::clone(waker));
        Pin::new(future).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_task_is_woken_once_when_its_end_is_durable() {
        let commit = Commit::new(0);
        let wakers: Vec<Arc<Counting>> = (0..3).map(|_| Arc::new(Counting(StdU64::new(0)))).collect();
        let mut futures: Vec<_> = (1..=3).map(|end| commit.durable(end)).collect();
        for (f, w) in futures.iter_mut().zip(&wakers) {
            assert!(poll(f, w).is_pending());
        }
        // Polled again with the same waker: still one registration each.
        assert!(poll(&mut futures[0], &wakers[0]).is_pending());
        commit.advance(1).unwrap();
        let woken = |w: &Arc<Counting>| w.0.load(Ordering::SeqCst);
        assert_eq!(wakers.iter().map(woken).collect::<Vec<_>>(), [1, 0, 0]);
        commit.sync_until(2, || -> Result<Lsn, TestError> { Ok(2) }).unwrap();
        assert_eq!(wakers.iter().map(woken).collect::<Vec<_>>(), [1, 1, 0]);
        assert_eq!(poll(&mut futures[0], &wakers[0]), Poll::Ready(Ok(())));
        assert_eq!(poll(&mut futures[1], &wakers[1]), Poll::Ready(Ok(())));
        // The durable point moving below its end does not wake the third.
        commit.lower_to(2);
        assert_eq!(woken(&wakers[2]), 0);
        commit.poison(|| "gone");
        assert_eq!(woken(&wakers[2]), 1);
        assert_eq!(poll(&mut futures[2], &wakers[2]), Poll::Ready(Err(Poisoned("gone"))));
        assert_eq!(commit.task_wakeups(), 3);
    }

    #[test]
    fn a_writer_is_alone_only_while_no_turn_runs_and_the_last_woke_at_most_one_waiter() {
        let commit = Commit::new(0);
        assert!(commit.alone(), "a new log");
        // During a turn: not alone.
        commit
            .sync_until(1, || -> Result<Lsn, TestError> {
                assert!(!commit.alone(), "a turn runs");
                Ok(1)
            })
            .unwrap();
        assert!(commit.alone(), "the turn woke nobody");
        // A turn that wakes two waiting tasks: writers share the syncs.
        let wakers: Vec<Arc<Counting>> = (0..2).map(|_| Arc::new(Counting(StdU64::new(0)))).collect();
        let mut futures: Vec<_> = (2..=3).map(|end| commit.durable(end)).collect();
        for (f, w) in futures.iter_mut().zip(&wakers) {
            assert!(poll(f, w).is_pending());
        }
        commit.sync_until(3, || -> Result<Lsn, TestError> { Ok(3) }).unwrap();
        assert!(!commit.alone(), "the last turn woke two tasks");
        // A turn that wakes one: alone again.
        let mut one = commit.durable(4);
        assert!(poll(&mut one, &wakers[0]).is_pending());
        commit.sync_until(4, || -> Result<Lsn, TestError> { Ok(4) }).unwrap();
        assert!(commit.alone(), "the last turn woke one task");
        // A sync asked of the sync thread and not yet begun: not alone.
        commit.sync_or_ask(5, || -> Result<Lsn, TestError> { Ok(5) }, None).unwrap();
        lock(&commit.turns).asked = true;
        assert!(!commit.alone(), "a sync was asked for");
        lock(&commit.turns).asked = false;
        commit.poison(|| "gone");
        assert!(!commit.alone(), "a poisoned log leads nothing");
    }

    #[test]
    fn a_dropped_task_is_forgotten() {
        let commit = Commit::new(0);
        let waker = Arc::new(Counting(StdU64::new(0)));
        let mut future = commit.durable(5);
        assert!(poll(&mut future, &waker).is_pending());
        drop(future);
        assert!(lock(&commit.tasks).is_empty());
        commit.advance(5).unwrap();
        assert_eq!(waker.0.load(Ordering::SeqCst), 0);
        // Already durable: ready at once, never registered.
        let mut ready = commit.durable(5);
        assert_eq!(poll(&mut ready, &waker), Poll::Ready(Ok(())));
        assert!(lock(&commit.tasks).is_empty());
    }
}

/// Async waiters under shuttle's randomized scheduler (`cargo test -p
/// nori-wal --features shuttle --lib shuttle`): tasks awaiting
/// [`GroupCommit::durable`] beside threads that append and lead syncs or
/// ask for them and park.
/// Checked over many interleavings: no task is left waiting (shuttle
/// reports a deadlock if one is never woken), a task resolves `Ok` only
/// once a completed sync covers its record, and once a sync fails every
/// task either was covered or gets the error.
#[cfg(all(test, feature = "shuttle"))]
mod shuttle_checks {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;

    /// The appended end and the end the last completed sync covered, as a
    /// log's write buffer and file would have them.
    struct Log {
        commit: GroupCommit<&'static str>,
        next: AtomicU64,
        synced: AtomicU64,
        syncs: AtomicU64,
        /// The sync of this number (from 1) fails and poisons the log.
        fail_at: Option<u64>,
    }

    impl Log {
        fn append(&self) -> Lsn {
            self.next.fetch_add(1, Ordering::AcqRel)
        }

        /// A turn's leader: covers what was appended, then syncs it.
        fn lead(&self) -> Result<Lsn, Poisoned<&'static str>> {
            let end = self.next.load(Ordering::Acquire);
            self.commit.cover(end);
            if Some(self.syncs.fetch_add(1, Ordering::AcqRel) + 1) == self.fail_at {
                self.commit.poison(|| "sync failed");
                return Err(Poisoned("sync failed"));
            }
            self.synced.fetch_max(end, Ordering::AcqRel);
            Ok(end)
        }
    }

    const TASKS: u64 = 3;
    /// Thread 0 leads its syncs; the others ask the sync thread while a
    /// sync runs (or one is asked for) and park, unparked by relay (more
    /// of them than the syncer unparks itself).
    const THREADS: u64 = 5;

    fn waiters(fail_at: Option<u64>) {
        let log = Arc::new(Log {
            commit: GroupCommit::new(0),
            next: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            fail_at,
        });
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let log = Arc::clone(&log);
                shuttle::future::spawn(async move {
                    let lsn = log.append();
                    let result = log.commit.durable(lsn + 1).await;
                    if result.is_ok() {
                        assert!(
                            log.synced.load(Ordering::Acquire) > lsn,
                            "LSN {lsn} acknowledged, not synced"
                        );
                    }
                    result.is_ok()
                })
            })
            .collect();
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let log = Arc::clone(&log);
                shuttle::thread::spawn(move || {
                    let lsn = log.append();
                    // The sync thread below runs until every record is
                    // durable: asking it needs no message.
                    let ask: Option<&dyn Fn()> = if t == 0 { None } else { Some(&|| {}) };
                    let result = log.commit.sync_or_ask(lsn + 1, || log.lead(), ask);
                    if result.is_ok() {
                        assert!(log.synced.load(Ordering::Acquire) > lsn);
                    }
                })
            })
            .collect();
        // The sync thread: syncs until every record is durable, as the
        // WAL's sync thread does when async appends ask it.
        let syncer = {
            let log = Arc::clone(&log);
            shuttle::thread::spawn(move || {
                loop {
                    let end = log.next.load(Ordering::Acquire);
                    if log.commit.sync_until(end, || log.lead()).is_err() || end == TASKS + THREADS {
                        return;
                    }
                    shuttle::thread::yield_now();
                }
            })
        };
        for thread in threads {
            thread.join().unwrap();
        }
        syncer.join().unwrap();
        let acknowledged =
            tasks.into_iter().map(shuttle::future::block_on).filter(|t| matches!(t, Ok(true))).count();
        if fail_at.is_none() {
            assert_eq!(acknowledged as u64, TASKS);
        }
        assert!(lock(&log.commit.tasks).is_empty(), "a task stayed registered");
        assert!(lock(&log.commit.relay).is_empty(), "a thread was never unparked");
    }

    #[test]
    fn shuttle_async_waiters_are_woken_once_durable() {
        // PCT finds the lost wake-up of a check made before registering
        // (a mutation tried); 500 random schedules did not.
        shuttle::check_pct(|| waiters(None), 3000, 3);
        shuttle::check_random(|| waiters(None), 500);
    }

    #[test]
    fn shuttle_async_waiters_hear_a_failed_sync() {
        for fail in 1..=3 {
            shuttle::check_pct(move || waiters(Some(fail)), 1000, 3);
        }
    }
}

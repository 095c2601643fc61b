//! Counters of what a WAL has done since it was opened.

use std::time::Instant;

use super::super::recovery::RecoveryInfo;
use crate::wal::sync::AtomicU64;

/// Buckets of [`SyncLatency`]: bucket `i` counts syncs that took less
/// than `2^i` microseconds (the last one, everything longer).
pub const SYNC_LATENCY_BUCKETS: usize = 24;

/// A histogram of `fdatasync` latencies, in powers of two of microseconds.
///
/// ```
/// use nori_wal::wal::{SYNC_LATENCY_BUCKETS, SyncLatency};
/// let mut counts = [0; SYNC_LATENCY_BUCKETS];
/// counts[7] = 90; // 90 syncs under 128 µs
/// counts[10] = 10; // 10 under 1024 µs
/// let latency = SyncLatency { counts };
/// assert_eq!(latency.quantile_micros(0.5), Some(128));
/// assert_eq!(latency.quantile_micros(0.99), Some(1024));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncLatency {
    /// `counts[i]`: syncs that took under `2^i` µs (and at least `2^(i-1)`).
    pub counts: [u64; SYNC_LATENCY_BUCKETS],
}

impl SyncLatency {
    /// The smallest bucket bound below which at least `q` (0 to 1) of the
    /// syncs fell, in microseconds; `None` when no sync was timed.
    #[must_use]
    pub fn quantile_micros(&self, q: f64) -> Option<u64> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let want = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(1u64 << i);
            }
        }
        Some(1u64 << (SYNC_LATENCY_BUCKETS - 1))
    }
}

/// What a [`Wal`](crate::blocking::Wal) has done since it was opened.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("nori-wal-stats-doc-{}", std::process::id()));
/// use nori_wal::blocking::Wal;
/// use nori_wal::{Record, WalConfig};
///
/// let (wal, _) = Wal::open(WalConfig::new(&dir))?;
/// wal.append(&Record::raw(b"counted"))?;
/// let stats = wal.stats();
/// assert_eq!(stats.records, 1);
/// assert!(stats.syncs >= 1 && stats.sync_latency.quantile_micros(0.99).is_some());
/// # drop(wal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// LSNs appended (records, counting each record of a batch).
    pub records: u64,
    /// Bytes written to segment files (frames, marks and headers).
    pub bytes_written: u64,
    /// `fdatasync` calls on segment files.
    pub syncs: u64,
    /// How long those syncs took.
    pub sync_latency: SyncLatency,
    /// Segment files created.
    pub segments_created: u64,
    /// Segments sealed (rotations by size or age, and explicit ones).
    pub rotations: u64,
    /// Segment files the log holds now.
    pub segments: usize,
    /// Waiters woken by the durable point (an awaited append or wait
    /// woken once its LSN was durable, or the WAL poisoned): one per
    /// durable async append that had to wait, however many syncs ran
    /// meanwhile. Under [`FsyncPolicy::Always`](crate::FsyncPolicy::Always)
    /// a blocking append that waits for a sync another thread runs is
    /// counted too (it parks, and is unparked once).
    pub task_wakeups: u64,
    /// What recovery found and did when the WAL was opened.
    pub recovery: RecoveryInfo,
}

/// The counters kept outside the append lock: syncs and their latency, and
/// rotations.
pub(crate) struct Counters {
    syncs: AtomicU64,
    sync_latency: [AtomicU64; SYNC_LATENCY_BUCKETS],
    rotations: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            syncs: AtomicU64::new(0),
            sync_latency: std::array::from_fn(|_| AtomicU64::new(0)),
            rotations: AtomicU64::new(0),
        }
    }
}

/// The latency bucket of a sync that took `micros`.
fn bucket(micros: u64) -> usize {
    ((u64::BITS - micros.leading_zeros()) as usize).min(SYNC_LATENCY_BUCKETS - 1)
}

impl Counters {
    /// Runs the sync `sync`, counting it and its latency.
    pub(crate) fn time_sync<T>(&self, sync: impl FnOnce() -> T) -> T {
        self.syncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        let result = sync();
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.sync_latency[bucket(micros)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        result
    }

    /// Counts a sealed segment.
    pub(crate) fn rotated(&self) {
        self.rotations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The syncs, their latency and the rotations so far.
    pub(crate) fn read(&self) -> (u64, SyncLatency, u64) {
        let load = |a: &AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let latency = SyncLatency { counts: std::array::from_fn(|i| load(&self.sync_latency[i])) };
        (load(&self.syncs), latency, load(&self.rotations))
    }
}

#[cfg(all(test, not(feature = "shuttle")))]
mod tests {
    use super::*;

    #[test]
    fn syncs_fall_in_power_of_two_buckets() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 1);
        assert_eq!(bucket(127), 7);
        assert_eq!(bucket(128), 8);
        assert_eq!(bucket(u64::MAX), SYNC_LATENCY_BUCKETS - 1);
    }

    #[test]
    fn counters_count_syncs_and_rotations() {
        let counters = Counters::default();
        assert_eq!(counters.time_sync(|| 7), 7);
        counters.time_sync(|| ());
        counters.rotated();
        let (syncs, latency, rotations) = counters.read();
        assert_eq!((syncs, rotations), (2, 1));
        assert_eq!(latency.counts.iter().sum::<u64>(), 2);
        assert!(latency.quantile_micros(1.0).is_some());
        assert_eq!(SyncLatency { counts: [0; SYNC_LATENCY_BUCKETS] }.quantile_micros(0.5), None);
    }
}

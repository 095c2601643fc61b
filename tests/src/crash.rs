//! The crash-sweep harness: a seeded workload on a ring log over a
//! [`SimDevice`], a model of what the log acknowledged, and the checks of
//! invariants I1, I2, I3, I5, I6 and F16 after a power cut at any point.

use nori_wal_core::format::Version;
use nori_wal_core::ring::{Error, FullPolicy, RecoveryMode, RingConfig, RingLog};
use nori_wal_core::{BlockDevice, Geometry, Lsn, Record};
use rand::Rng;
use rand::rngs::SmallRng;

use crate::nor::{SimNorDevice, SimNorFlash};
use crate::sim::{Crash, Cut, SimDevice, TraceOp};

/// A simulated medium the crash harness can run on: built from an image,
/// recording its writes, counting programs of units that were not blank.
pub trait Medium: BlockDevice + Sized {
    /// The medium holding `image`.
    fn from_image(image: Vec<u8>, geometry: Geometry) -> Self;
    /// The current contents.
    fn image(&self) -> &[u8];
    /// Every write so far.
    fn trace(&self) -> &[TraceOp];
    /// Programs refused because the unit was not blank (I5 violations).
    fn violations(&self) -> u64;
    /// Whether writes can persist out of order until a sync (disks, caches);
    /// NOR flash writes are durable when they return.
    const REORDERS: bool;
}

impl Medium for SimDevice {
    const REORDERS: bool = true;

    fn from_image(image: Vec<u8>, geometry: Geometry) -> Self {
        Self::new(image, geometry)
    }

    fn image(&self) -> &[u8] {
        SimDevice::image(self)
    }

    fn trace(&self) -> &[TraceOp] {
        SimDevice::trace(self)
    }

    fn violations(&self) -> u64 {
        self.program_twice_attempts
    }
}

impl<const R: usize, const W: usize, const E: usize> Medium for SimNorDevice<R, W, E> {
    const REORDERS: bool = false;

    fn from_image(image: Vec<u8>, geometry: Geometry) -> Self {
        let erased = geometry.erase_value().expect("a flash geometry");
        assert_eq!(geometry, SimNorFlash::<R, W, E>::geometry(erased), "geometry of the simulated flash");
        Self::new(SimNorFlash::from_image(image, erased), erased).expect("flash geometry")
    }

    fn image(&self) -> &[u8] {
        self.flash().image()
    }

    fn trace(&self) -> &[TraceOp] {
        self.flash().trace()
    }

    fn violations(&self) -> u64 {
        self.flash().program_twice_attempts
    }
}

/// An owned record of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned {
    /// A put.
    Put(Vec<u8>, Vec<u8>),
    /// A delete.
    Delete(Vec<u8>),
    /// A raw payload.
    Raw(Vec<u8>),
}

impl Owned {
    /// As a borrowed record.
    #[must_use]
    pub fn as_record(&self) -> Record<'_> {
        match self {
            Self::Put(k, v) => Record::put(k, v),
            Self::Delete(k) => Record::delete(k),
            Self::Raw(p) => Record::raw(p),
        }
    }

    /// From a borrowed record.
    #[must_use]
    pub fn from_record(record: &Record<'_>) -> Self {
        match *record {
            Record::Put { key, value } => Self::Put(key.to_vec(), value.to_vec()),
            Record::Delete { key } => Self::Delete(key.to_vec()),
            Record::Raw(p) => Self::Raw(p.to_vec()),
            _ => Self::Raw(Vec::new()),
        }
    }

    /// A random record whose bytes name its LSN (so a misplaced record is
    /// obvious in a failure message).
    pub fn random(rng: &mut SmallRng, lsn: Lsn, max: usize) -> Self {
        let len =
            if rng.random_bool(0.05) { rng.random_range(0..=max) } else { rng.random_range(0..=max / 4) };
        let mut body = format!("lsn{lsn}:").into_bytes();
        body.extend((0..len).map(|_| rng.random::<u8>()));
        match rng.random_range(0..3) {
            0 => Self::Put(format!("key{}", lsn % 17).into_bytes(), body),
            1 => Self::Delete(body),
            _ => Self::Raw(body),
        }
    }
}

/// What the application knew after each call to the log.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    /// Trace length when the call returned.
    pub trace_len: usize,
    /// LSNs below this were acknowledged durable.
    pub acked: Lsn,
    /// The log's first LSN in memory.
    pub first: Lsn,
    /// The highest `truncate_before` that returned `Ok`.
    pub truncated: Lsn,
    /// The highest `truncate_before` asked for (returned or not).
    pub truncate_asked: Lsn,
}

/// A recorded run: the trace of device writes and the model.
pub struct Run {
    /// The image before the run.
    pub base: Vec<u8>,
    /// Every write of the run.
    pub trace: Vec<TraceOp>,
    /// Every record appended, by LSN.
    pub records: Vec<Owned>,
    /// After each call.
    pub checkpoints: Vec<Checkpoint>,
}

impl Run {
    /// What the application knew when the power went at trace operation `at`.
    #[must_use]
    pub fn known_at(&self, at: usize) -> Checkpoint {
        self.checkpoints.iter().rev().find(|c| c.trace_len <= at).copied().unwrap_or(Checkpoint {
            trace_len: 0,
            acked: 0,
            first: 0,
            truncated: 0,
            truncate_asked: 0,
        })
    }

    /// The state after the call during which operation `at` was issued: the
    /// most the log may have done by then.
    fn during(&self, at: usize) -> Option<&Checkpoint> {
        self.checkpoints.iter().find(|c| c.trace_len > at).or(self.checkpoints.last())
    }

    /// The highest truncation asked for by the time of operation `at`.
    #[must_use]
    pub fn truncate_asked_by(&self, at: usize) -> Lsn {
        self.during(at).map_or(0, |c| c.truncate_asked)
    }

    /// The log's first LSN in memory by the time of operation `at`.
    #[must_use]
    pub fn first_by(&self, at: usize) -> Lsn {
        self.during(at).map_or(0, |c| c.first)
    }
}

/// A workload setting.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// The device geometry.
    pub geometry: Geometry,
    /// Device size.
    pub capacity: usize,
    /// Segment size.
    pub segment_size: u64,
    /// Full policy.
    pub policy: FullPolicy,
    /// Write buffer size.
    pub buffer: usize,
    /// The format version the log writes.
    pub format: Version,
}

impl Setup {
    /// The ring configuration.
    #[must_use]
    pub fn config(&self, mode: RecoveryMode) -> RingConfig {
        RingConfig::new(self.segment_size).recovery(mode).when_full(self.policy).format(self.format)
    }

    /// The same setup, writing format `version`.
    #[must_use]
    pub fn with_format(self, version: Version) -> Self {
        Self { format: version, ..self }
    }
}

/// Runs `steps` random operations (appends, batches, syncs, reclaims) on a
/// fresh device, recording everything.
///
/// # Panics
///
/// On any error of the log: the run has no injected faults.
#[must_use]
pub fn record_run<M: Medium>(setup: &Setup, seed: u64, steps: usize) -> Run {
    let mut rng = crate::sim::rng(seed);
    let blank = vec![setup.geometry.erase_value().unwrap_or(0); setup.capacity];
    let mut device = M::from_image(blank, setup.geometry);
    let base = Medium::image(&device).to_vec();
    let mut records = Vec::new();
    let mut checkpoints = Vec::new();
    let mut buffer = vec![0u8; setup.buffer];
    let (mut truncated, mut asked) = (0, 0);
    {
        let (mut log, _) =
            RingLog::open(&mut device, setup.config(RecoveryMode::Strict), &mut buffer).unwrap();
        let max = (log.max_frame_len() as usize).saturating_sub(64).min(300);
        for _ in 0..steps {
            let choice = rng.random_range(0..100);
            let result = if choice < 55 {
                let record = Owned::random(&mut rng, log.next_lsn(), max);
                let r = log.append(&record.as_record()).map(|_| ());
                if r.is_ok() {
                    records.push(record);
                }
                r
            } else if choice < 70 {
                let n = rng.random_range(1..=4);
                let batch: Vec<Owned> =
                    (0..n).map(|i| Owned::random(&mut rng, log.next_lsn() + i, max / 4)).collect();
                let borrowed: Vec<Record<'_>> = batch.iter().map(Owned::as_record).collect();
                let r = log.append_batch(&borrowed).map(|_| ());
                if r.is_ok() {
                    records.extend(batch);
                }
                r
            } else if choice < 90 || (setup.policy == FullPolicy::OverwriteOldest || choice < 97) {
                log.sync()
            } else {
                let span = log.next_lsn() - log.first_lsn();
                let to = log.first_lsn() + rng.random_range(0..=span);
                asked = asked.max(to);
                let r = log.truncate_before(to);
                if r.is_ok() {
                    truncated = truncated.max(to);
                }
                r
            };
            match result {
                Ok(()) => {}
                Err(Error::Full) => {
                    let to = log.next_lsn().saturating_sub(rng.random_range(0..4));
                    asked = asked.max(to);
                    log.truncate_before(to).unwrap();
                    truncated = truncated.max(to);
                }
                Err(e) => panic!("seed {seed}: unexpected error {e}"),
            }
            checkpoints.push(Checkpoint {
                trace_len: log_trace_len(&log),
                acked: log.durable_lsn().map_or(log.first_lsn(), |l| l + 1),
                first: log.first_lsn(),
                truncated,
                truncate_asked: asked,
            });
        }
        log.sync().unwrap();
        checkpoints.push(Checkpoint {
            trace_len: log_trace_len(&log),
            acked: log.next_lsn(),
            first: log.first_lsn(),
            truncated,
            truncate_asked: asked,
        });
    }
    assert_eq!(device.violations(), 0, "seed {seed}: a unit was programmed twice");
    Run { base, trace: device.trace().to_vec(), records, checkpoints }
}

fn log_trace_len<M: Medium>(log: &RingLog<'_, &mut M>) -> usize {
    log.device().trace().len()
}

/// The outcome of one recovery check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// First and next LSN after recovery.
    pub range: (Lsn, Lsn),
    /// The records read back.
    pub records: Vec<Owned>,
}

/// Opens `image` and checks it against the run at crash point `at`:
/// I1 (acknowledged records are there), I2 (a contiguous prefix of what was
/// appended, nothing else), I3 (no error in the default mode), F16
/// (recovery twice gives the same), I5 (no unit programmed twice when
/// appending after recovery) and I6 (nothing stale reappears after new
/// appends).
///
/// # Panics
///
/// When an invariant does not hold; `context` names the case.
pub fn check_recovery<M: Medium>(
    setup: &Setup,
    run: &Run,
    at: usize,
    image: Vec<u8>,
    context: &str,
) -> Recovered
where
    M::Error: std::fmt::Display,
{
    let known = run.known_at(at);
    let mut device = M::from_image(image, setup.geometry);
    let mut buffer = vec![0u8; setup.buffer];
    let mut read_buf = vec![0u8; setup.buffer.max(1024)];
    let config = setup.config(RecoveryMode::TolerateTornTail);
    let first_pass = {
        let (mut log, info) = RingLog::open(&mut device, config, &mut buffer)
            .unwrap_or_else(|e| panic!("{context}: open failed: {e}"));
        assert!(info.corruption.is_none(), "{context}: corruption reported after a power cut: {info:?}");
        read_all(&mut log, &mut read_buf, run, context)
    };
    let (first, next) = first_pass.range;
    // I1: every acknowledged record is there.
    assert!(next >= known.acked, "{context}: acknowledged up to {} but recovered up to {next}", known.acked);
    // Nothing is dropped that the log had not dropped, or been asked to
    // drop, by the time of the cut.
    let may_drop_to = run.first_by(at).max(run.truncate_asked_by(at));
    if next > first {
        assert!(
            first <= may_drop_to,
            "{context}: recovered from {first}, but only up to {may_drop_to} could be dropped"
        );
    }
    // Reclaim is durable once truncate_before returned: nothing below comes back.
    assert!(
        first >= known.truncated.min(next),
        "{context}: LSNs below {} came back (first {first})",
        known.truncated
    );
    // F16: a second recovery of the same image gives the same log.
    let second = {
        let (mut log, _) = RingLog::open(&mut device, config, &mut buffer).unwrap();
        read_all(&mut log, &mut read_buf, run, context)
    };
    assert_eq!(first_pass, second, "{context}: recovery twice differs");
    // Append after recovery, reopen: the new records follow the old ones
    // and nothing stale reappears (I6); no unit is programmed twice (I5).
    let extra = [Owned::Raw(b"after-1".to_vec()), Owned::Put(b"k".to_vec(), b"after-2".to_vec())];
    {
        let (mut log, _) = RingLog::open(&mut device, config, &mut buffer).unwrap();
        for r in &extra {
            match log.append(&r.as_record()) {
                Ok(_) | Err(Error::Full) => {}
                Err(e) => panic!("{context}: append after recovery: {e}"),
            }
        }
        match log.sync() {
            Ok(()) => {}
            Err(e) => panic!("{context}: sync after recovery: {e}"),
        }
    }
    assert_eq!(device.violations(), 0, "{context}: a unit was programmed twice after recovery");
    let (mut log, info) = RingLog::open(&mut device, config, &mut buffer)
        .unwrap_or_else(|e| panic!("{context}: reopen after appending: {e}"));
    assert!(info.corruption.is_none(), "{context}: {info:?}");
    let mut iter = log.iter_from(log.first_lsn(), &mut read_buf).unwrap();
    let mut lsn = None;
    let mut tail = Vec::new();
    while let Some(entry) = iter.try_next().unwrap_or_else(|e| panic!("{context}: read after append: {e}")) {
        if let Some(prev) = lsn {
            assert_eq!(entry.lsn, prev + 1, "{context}: gap after appending");
        }
        lsn = Some(entry.lsn);
        if entry.lsn >= next {
            tail.push(Owned::from_record(&entry.record));
        } else {
            assert_eq!(Owned::from_record(&entry.record), run.records[entry.lsn as usize], "{context}");
        }
    }
    assert!(
        tail.len() <= 2 && tail.iter().zip(&extra).all(|(a, b)| a == b),
        "{context}: after recovery got {tail:?}"
    );
    first_pass
}

fn read_all<M: Medium>(log: &mut RingLog<'_, &mut M>, buf: &mut [u8], run: &Run, context: &str) -> Recovered
where
    M::Error: std::fmt::Display,
{
    let (first, next) = (log.first_lsn(), log.next_lsn());
    let mut records = Vec::new();
    let mut iter = log.iter_from(first, buf).unwrap();
    let mut expected = first;
    while let Some(entry) = iter.try_next().unwrap_or_else(|e| panic!("{context}: read failed: {e}")) {
        // I2: contiguous, and exactly what was appended at that LSN.
        assert_eq!(entry.lsn, expected, "{context}: LSN gap");
        let record = Owned::from_record(&entry.record);
        assert!(
            run.records.get(entry.lsn as usize) == Some(&record),
            "{context}: phantom record at LSN {}: {record:?}",
            entry.lsn
        );
        records.push(record);
        expected += 1;
    }
    assert_eq!(expected, next, "{context}: iteration ended early");
    Recovered { range: (first, next), records }
}

/// Records a run on `M`, then cuts it at every operation in every
/// applicable way and checks each recovery; returns the number of crash
/// points checked. With `every_byte`, every byte of every program is a cut
/// point (the unit being written left random or still erased).
pub fn sweep<M: Medium>(name: &str, setup: &Setup, seed: u64, steps: usize, every_byte: bool) -> usize
where
    M::Error: std::fmt::Display,
{
    let run = record_run::<M>(setup, seed, steps);
    let crash = Crash::new(&run.base, setup.geometry, &run.trace);
    let mut rng = crate::sim::rng(seed ^ 0xC0FFEE);
    let mut points = 0;
    let pu = setup.geometry.program_unit() as usize;
    for at in 0..=run.trace.len() {
        let mut cuts = vec![Cut::DropUnsynced, Cut::RandomSubset, Cut::RandomSubset];
        match run.trace.get(at) {
            Some(TraceOp::Program { data, .. }) => {
                cuts.push(Cut::MixedSectors);
                for granularity in [512, 4096] {
                    cuts.push(Cut::Torn { n: data.len() / 2 + 1, granularity, garbage: 0 });
                }
                if every_byte {
                    // The unit being programmed holds random bytes, or is still erased.
                    cuts.extend((0..data.len()).map(|n| Cut::Torn {
                        n,
                        granularity: 1,
                        garbage: pu - n % pu,
                    }));
                    cuts.extend((0..data.len()).map(|n| Cut::Torn { n, granularity: 1, garbage: 0 }));
                } else {
                    cuts.push(Cut::Torn { n: data.len() / 3, granularity: 1, garbage: 1 });
                }
            }
            Some(TraceOp::Erase { .. }) => cuts.extend([Cut::EraseCut, Cut::EraseCut]),
            // Without reordering, the state at a sync is the state before
            // the next write, which that write's cuts already cover.
            Some(TraceOp::Sync) if !M::REORDERS => continue,
            Some(TraceOp::Sync) => {
                // F2, all subsets when few writes are pending.
                let pending = crash.pending(at);
                if pending <= 6 {
                    cuts.extend((0..1u64 << pending).map(Cut::Subset));
                }
            }
            None => {}
        }
        for cut in cuts {
            let image = crash.image(at, cut, &mut rng);
            let context = format!("{name} seed {seed} op {at}/{} {cut:?}", run.trace.len());
            check_recovery::<M>(setup, &run, at, image, &context);
            points += 1;
        }
    }
    points
}

/// Opens a log on `device` with `config`, reads every record back, and
/// checks each one is the raw payload `payload(lsn)` that was appended at its
/// LSN. Returns what recovery reported and the LSNs read.
///
/// # Errors
///
/// What opening returns.
///
/// # Panics
///
/// When reading after a successful open fails, or a record read back is
/// not the one appended at its LSN.
pub fn read_back_raw<D: BlockDevice>(
    device: D,
    config: RingConfig,
    payload: impl Fn(Lsn) -> Vec<u8>,
) -> Result<(nori_wal_core::ring::RecoveryInfo, Vec<Lsn>), Error<D::Error>> {
    let mut buffer = [0u8; 8192];
    let (mut log, info) = RingLog::open(device, config, &mut buffer)?;
    let mut read = [0u8; 8192];
    let first = log.first_lsn();
    // Whatever recovery accepted must read back without error.
    let mut iter = log.iter_from(first, &mut read).unwrap_or_else(|e| panic!("iteration after open: {e}"));
    let mut lsns = Vec::new();
    while let Some(entry) = iter.try_next().unwrap_or_else(|e| panic!("reading after open: {e}")) {
        assert_eq!(
            entry.record,
            Record::raw(&payload(entry.lsn)),
            "a damaged or misplaced record at {}",
            entry.lsn
        );
        lsns.push(entry.lsn);
    }
    Ok((info, lsns))
}

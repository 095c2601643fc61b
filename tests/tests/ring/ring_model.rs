//! Model-based test: random sequences of appends, batches, syncs, reclaims,
//! power cuts and reopens, checked against a plain in-memory model.

use nori_wal_core::ring::{Error, FullPolicy, RecoveryMode, RingConfig, RingLog};
use nori_wal_core::{Geometry, Lsn};
use nori_wal_tests::crash::Owned;
use nori_wal_tests::sim::{Cut, SimDevice, rng};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Append(u8, usize),
    Batch(Vec<(u8, usize)>),
    Sync,
    Truncate(u8),
    Crash(bool),
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (any::<u8>(), 0usize..120).prop_map(|(k, n)| Step::Append(k, n)),
        2 => proptest::collection::vec((any::<u8>(), 0usize..40), 1..5).prop_map(Step::Batch),
        4 => Just(Step::Sync),
        1 => any::<u8>().prop_map(Step::Truncate),
        1 => any::<bool>().prop_map(Step::Crash),
        1 => Just(Step::Reopen),
    ]
}

fn record(kind: u8, len: usize, lsn: Lsn) -> Owned {
    let mut body = format!("{lsn}:").into_bytes();
    body.resize(body.len() + len, kind);
    match kind % 3 {
        0 => Owned::Put(vec![kind], body),
        1 => Owned::Delete(body),
        _ => Owned::Raw(body),
    }
}

/// The model: every record by LSN, what was acknowledged, where the log starts.
struct Model {
    records: Vec<Owned>,
    acked: Lsn,
    first: Lsn,
}

fn check(log: &mut RingLog<'_, &mut SimDevice>, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(log.next_lsn(), model.records.len() as Lsn);
    prop_assert_eq!(log.first_lsn(), model.first);
    let mut read = vec![0u8; 1024];
    let mut iter = log.iter_from(model.first, &mut read).unwrap();
    let mut lsn = model.first;
    while let Some(entry) = iter.try_next().unwrap() {
        prop_assert_eq!(entry.lsn, lsn);
        prop_assert_eq!(&Owned::from_record(&entry.record), &model.records[lsn as usize]);
        lsn += 1;
    }
    prop_assert_eq!(lsn, model.records.len() as Lsn);
    Ok(())
}

fn run(steps: &[Step], geometry: Geometry, policy: FullPolicy, seed: u64) -> Result<(), TestCaseError> {
    let config = RingConfig::new(1024).when_full(policy).recovery(RecoveryMode::TolerateTornTail);
    let mut device = SimDevice::blank(5 * 1024, geometry);
    let mut model = Model { records: Vec::new(), acked: 0, first: 0 };
    let mut buffer = vec![0u8; 512];
    let mut rng = rng(seed);
    let (mut log, _) = RingLog::open(&mut device, config, &mut buffer).unwrap();
    for step in steps {
        match step {
            Step::Append(kind, len) => {
                let r = record(*kind, *len, log.next_lsn());
                match log.append(&r.as_record()) {
                    Ok(lsn) => {
                        prop_assert_eq!(lsn, model.records.len() as Lsn);
                        model.records.push(r);
                    }
                    Err(Error::Full) => {}
                    Err(e) => return Err(TestCaseError::fail(e.to_string())),
                }
            }
            Step::Batch(items) => {
                let next = log.next_lsn();
                let owned: Vec<Owned> =
                    items.iter().enumerate().map(|(i, (k, n))| record(*k, *n, next + i as Lsn)).collect();
                let batch: Vec<_> = owned.iter().map(Owned::as_record).collect();
                match log.append_batch(&batch) {
                    Ok(range) => {
                        prop_assert_eq!(range.start, next);
                        model.records.extend(owned);
                    }
                    Err(Error::Full) => {}
                    Err(e) => return Err(TestCaseError::fail(e.to_string())),
                }
            }
            Step::Sync => {
                log.sync().unwrap();
                model.acked = model.records.len() as Lsn;
            }
            Step::Truncate(at) => {
                let span = log.next_lsn() - log.first_lsn();
                let to = log.first_lsn() + (u64::from(*at) * span) / 255;
                match log.truncate_before(to) {
                    Ok(()) => {}
                    // No room to record the reclaim: nothing changed.
                    Err(Error::Full) => continue,
                    Err(e) => return Err(TestCaseError::fail(e.to_string())),
                }
                if to > model.first {
                    // A reclaim is made durable with a sync.
                    model.first = to;
                    model.acked = model.records.len() as Lsn;
                }
            }
            Step::Crash(subset) => {
                let cut = if *subset { Cut::RandomSubset } else { Cut::DropUnsynced };
                let image = log.device().crash_image(cut, &mut rng);
                let _ = log.into_device();
                device = SimDevice::new(image, geometry);
                let (reopened, info) = RingLog::open(&mut device, config, &mut buffer).unwrap();
                log = reopened;
                prop_assert!(info.corruption.is_none());
                // I1: acknowledged records survive; I2: the rest is a prefix.
                let next = log.next_lsn();
                prop_assert!(next >= model.acked, "lost acknowledged records");
                model.records.truncate(next as usize);
                model.acked = next;
                prop_assert!(log.first_lsn() <= model.first.max(log.first_lsn()));
                if policy == FullPolicy::Error {
                    prop_assert!(log.first_lsn() <= model.first || log.first_lsn() == next);
                }
                model.first = log.first_lsn();
            }
            Step::Reopen => {
                // Dropping the log without a sync: what was buffered is lost,
                // what was synced is not.
                let _ = log.into_device();
                let (reopened, info) = RingLog::open(&mut device, config, &mut buffer).unwrap();
                log = reopened;
                prop_assert!(info.corruption.is_none());
                prop_assert!(log.next_lsn() >= model.acked);
                model.records.truncate(log.next_lsn() as usize);
                model.acked = log.next_lsn();
                model.first = log.first_lsn();
            }
        }
        if policy == FullPolicy::OverwriteOldest {
            model.first = model.first.max(log.first_lsn());
        }
        check(&mut log, &model)?;
    }
    prop_assert_eq!(device_ref(&log).program_twice_attempts, 0);
    Ok(())
}

fn device_ref<'a>(log: &'a RingLog<'_, &mut SimDevice>) -> &'a SimDevice {
    log.device()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: nori_wal_tests::proptest_cases(128), ..ProptestConfig::default() })]

    #[test]
    fn ring_log_matches_the_model_on_flash(steps in proptest::collection::vec(step(), 1..120), seed in any::<u64>(), overwrite in any::<bool>()) {
        let policy = if overwrite { FullPolicy::OverwriteOldest } else { FullPolicy::Error };
        run(&steps, Geometry::try_new(1, 8, 1024, Some(0xFF), false).unwrap(), policy, seed)?;
    }

    #[test]
    fn ring_log_matches_the_model_without_erase(steps in proptest::collection::vec(step(), 1..120), seed in any::<u64>(), overwrite in any::<bool>()) {
        let policy = if overwrite { FullPolicy::OverwriteOldest } else { FullPolicy::Error };
        run(&steps, Geometry::try_new(1, 1, 1024, None, true).unwrap(), policy, seed)?;
    }
}

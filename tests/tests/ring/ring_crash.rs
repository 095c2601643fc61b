//! The exhaustive crash sweep of the ring log: a recorded workload of
//! appends, batches, syncs, reclaims and ring wrap-arounds, cut by a power
//! failure at every device operation (F1, F2, F3, F10) and, on flash, at
//! every byte of every program (F9); after each, recovery is checked for
//! I1, I2, I3, I5, I6 and F16.

use nori_wal_core::Geometry;
use nori_wal_core::format::Version;
use nori_wal_core::ring::FullPolicy;
use nori_wal_tests::crash::{Setup, record_run, sweep};
use nori_wal_tests::sim::{SimDevice, TraceOp};

/// Operations per recorded workload.
const STEPS: usize = 280;

/// Every sweep runs on logs written in both format versions.
const VERSIONS: [Version; 2] = [Version::V1, Version::V2];

fn ram(policy: FullPolicy) -> Setup {
    Setup {
        geometry: Geometry::try_new(1, 4, 1024, None, true).unwrap(),
        capacity: 6 * 1024,
        segment_size: 1024,
        policy,
        buffer: 512,
        format: Version::V2,
    }
}

fn disk(policy: FullPolicy) -> Setup {
    Setup {
        geometry: Geometry::block(512).unwrap(),
        capacity: 5 * 4096,
        segment_size: 4096,
        policy,
        buffer: 1024,
        format: Version::V2,
    }
}

fn disk_4k(policy: FullPolicy) -> Setup {
    Setup {
        geometry: Geometry::block(4096).unwrap(),
        capacity: 5 * 16384,
        segment_size: 16384,
        policy,
        buffer: 8192,
        format: Version::V2,
    }
}

fn flash(policy: FullPolicy, program_unit: u32) -> Setup {
    Setup {
        geometry: Geometry::try_new(1, program_unit, 1024, Some(0xFF), false).unwrap(),
        capacity: 6 * 2048,
        segment_size: 2048,
        policy,
        buffer: 512,
        format: Version::V2,
    }
}

#[test]
fn crash_sweep_ram_ring() {
    let mut points = 0;
    for seed in 0..nori_wal_tests::sweep_seeds(3) {
        for v in VERSIONS {
            points += sweep::<SimDevice>(
                "ram/full-error",
                &ram(FullPolicy::Error).with_format(v),
                seed,
                STEPS,
                false,
            );
            let overwrite = ram(FullPolicy::OverwriteOldest).with_format(v);
            points += sweep::<SimDevice>("ram/overwrite", &overwrite, seed, STEPS, false);
        }
    }
    println!("ram ring: {points} crash points checked");
    assert!(points > 1000);
}

#[test]
fn crash_sweep_disk_ring() {
    let mut points = 0;
    for v in VERSIONS {
        for seed in 10..10 + nori_wal_tests::sweep_seeds(2) {
            let error = disk(FullPolicy::Error).with_format(v);
            points += sweep::<SimDevice>("disk/full-error", &error, seed, STEPS, false);
            let overwrite = disk(FullPolicy::OverwriteOldest).with_format(v);
            points += sweep::<SimDevice>("disk/overwrite", &overwrite, seed, STEPS, false);
        }
        for seed in 30..30 + nori_wal_tests::sweep_seeds(1) {
            let error = disk_4k(FullPolicy::Error).with_format(v);
            points += sweep::<SimDevice>("disk4k/full-error", &error, seed, STEPS, false);
            let overwrite = disk_4k(FullPolicy::OverwriteOldest).with_format(v);
            points += sweep::<SimDevice>("disk4k/overwrite", &overwrite, seed, STEPS, false);
        }
    }
    println!("disk ring (512-byte and 4 KiB sectors): {points} crash points checked");
    assert!(points > 1000);
}

#[test]
fn crash_sweep_flash_every_byte() {
    let mut points = 0;
    let seeds = nori_wal_tests::sweep_seeds(1);
    for (seed, pu) in (0..seeds).flat_map(|s| [(20 + 2 * s, 8), (21 + 2 * s, 16)]) {
        for v in VERSIONS {
            let overwrite = flash(FullPolicy::OverwriteOldest, pu).with_format(v);
            points += sweep::<SimDevice>("flash/overwrite", &overwrite, seed, 60, true);
            let error = flash(FullPolicy::Error, pu).with_format(v);
            points += sweep::<SimDevice>("flash/full-error", &error, seed + 100, 60, true);
        }
    }
    println!("flash ring (program-once, cut at every byte of every program): {points} crash points checked");
    assert!(points > 1000);
}

#[test]
fn workloads_wrap_the_ring_and_reclaim() {
    for setup in [
        ram(FullPolicy::Error),
        ram(FullPolicy::OverwriteOldest),
        disk(FullPolicy::Error),
        flash(FullPolicy::OverwriteOldest, 8),
    ]
    .into_iter()
    .flat_map(|setup| VERSIONS.map(|v| setup.with_format(v)))
    {
        let run = record_run::<SimDevice>(&setup, 1, STEPS);
        let segments = setup.capacity as u64 / setup.segment_size;
        let headers = run
            .trace
            .iter()
            .filter(|op| matches!(op, TraceOp::Program { offset, .. } if offset % setup.segment_size == 0))
            .count() as u64;
        let syncs = run.trace.iter().filter(|op| **op == TraceOp::Sync).count();
        let last = run.checkpoints.last().unwrap();
        println!(
            "{:?} {}: {} ops, {} syncs, {} records, {} segments started on {} slots, log now {}..{}",
            setup.policy,
            setup.format,
            run.trace.len(),
            syncs,
            run.records.len(),
            headers,
            segments,
            last.first,
            last.acked
        );
        // More segments started than there are slots: the ring wrapped.
        assert!(headers > segments, "the workload must wrap the ring");
        assert!(last.first > 0, "the workload must reclaim or overwrite");
    }
}

/// F16 and I5 after a crash: the first writes after a recovery (a new
/// segment started past a cut tail) are themselves cut at every operation,
/// and the next recovery still holds every acknowledged record and nothing
/// else.
#[test]
fn crash_during_the_first_writes_after_recovery() {
    use nori_wal_core::Lsn;
    use nori_wal_core::ring::{RecoveryMode, RingLog};
    use nori_wal_tests::crash::Owned;
    use nori_wal_tests::sim::{Crash, Cut, rng};

    let mut points = 0;
    for setup in [ram(FullPolicy::Error), flash(FullPolicy::OverwriteOldest, 8), disk(FullPolicy::Error)] {
        let run = record_run::<SimDevice>(&setup, 7, STEPS);
        let crash = Crash::new(&run.base, setup.geometry, &run.trace);
        let mut rng = rng(7);
        // Power cuts at a spread of points of the first run, each tearing a write.
        for at in (0..run.trace.len()).step_by(9) {
            let image = crash.image(at, Cut::Torn { n: 37, granularity: 1, garbage: 5 }, &mut rng);
            let known = run.known_at(at);
            // Second life: recover, append three records with a sync each.
            let mut device = SimDevice::new(image.clone(), setup.geometry);
            let mut buffer = vec![0u8; setup.buffer];
            let config = setup.config(RecoveryMode::TolerateTornTail);
            let mut acked_second: Vec<(Lsn, Owned)> = Vec::new();
            let mut written_second: Vec<(Lsn, Owned)> = Vec::new();
            let mut checkpoints = Vec::new();
            let first_next;
            {
                let (mut log, _) = RingLog::open(&mut device, config, &mut buffer).unwrap();
                first_next = log.next_lsn();
                for i in 0..3u8 {
                    let record = Owned::Raw(vec![0xA0 + i; 40]);
                    match log.append(&record.as_record()) {
                        Ok(lsn) => {
                            written_second.push((lsn, record.clone()));
                            if log.sync().is_ok() {
                                acked_second.push((lsn, record));
                                checkpoints.push((log.device().trace().len(), acked_second.len()));
                            }
                        }
                        Err(nori_wal_core::ring::Error::Full) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            let second = Crash::new(&image, setup.geometry, device.trace());
            for cut_at in 0..=device.trace().len() {
                for cut in
                    [Cut::DropUnsynced, Cut::RandomSubset, Cut::Torn { n: 11, granularity: 1, garbage: 3 }]
                {
                    let image = second.image(cut_at, cut, &mut rng);
                    let acked =
                        checkpoints.iter().rev().find(|(len, _)| *len <= cut_at).map_or(0, |(_, n)| *n);
                    let mut device = SimDevice::new(image, setup.geometry);
                    let (mut log, info) = RingLog::open(&mut device, config, &mut buffer).unwrap();
                    assert!(info.corruption.is_none(), "{info:?}");
                    let mut read = vec![0u8; 1024];
                    let first = log.first_lsn();
                    let mut iter = log.iter_from(first, &mut read).unwrap();
                    let mut seen = Vec::new();
                    while let Some(entry) = iter.try_next().unwrap() {
                        seen.push((entry.lsn, Owned::from_record(&entry.record)));
                    }
                    // Acknowledged in the first life, up to where it was cut.
                    let next = seen.last().map_or(first, |(l, _)| l + 1);
                    assert!(next >= known.acked.min(acked_second.first().map_or(Lsn::MAX, |(l, _)| *l)));
                    // Acknowledged in the second life, and nothing else new.
                    for (lsn, record) in &acked_second[..acked] {
                        assert!(
                            seen.iter().any(|(l, r)| l == lsn && r == record),
                            "lost {lsn} after a second cut"
                        );
                    }
                    // Below the first recovery's end, only first-life records;
                    // from it on, only what the second life wrote: a record the
                    // first recovery cut never comes back.
                    for (lsn, record) in &seen {
                        if *lsn < first_next {
                            assert_eq!(run.records.get(*lsn as usize), Some(record), "phantom at {lsn}");
                        } else {
                            assert!(
                                written_second.iter().any(|(l, r)| l == lsn && r == record),
                                "resurrected {lsn}"
                            );
                        }
                    }
                    assert_eq!(device.program_twice_attempts, 0);
                    points += 1;
                }
            }
        }
    }
    println!("{points} crash points in the first writes after a recovery");
    assert!(points > 500);
}

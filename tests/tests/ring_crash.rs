//! The exhaustive crash sweep of the ring log: a recorded workload of
//! appends, batches, syncs, reclaims and ring wrap-arounds, cut by a power
//! failure at every device operation (F1, F2, F3, F10) and, on flash, at
//! every byte of every program (F9); after each, recovery is checked for
//! I1, I2, I3, I5, I6 and F16.

use nori_wal_core::Geometry;
use nori_wal_core::ring::FullPolicy;
use nori_wal_tests::crash::{Setup, record_run, sweep};
use nori_wal_tests::sim::{SimDevice, TraceOp};

/// Operations per recorded workload.
const STEPS: usize = 250;

fn ram(policy: FullPolicy) -> Setup {
    Setup {
        geometry: Geometry::try_new(1, 4, 1024, None, true).unwrap(),
        capacity: 6 * 1024,
        segment_size: 1024,
        policy,
        buffer: 512,
    }
}

fn disk(policy: FullPolicy) -> Setup {
    Setup {
        geometry: Geometry::block(512).unwrap(),
        capacity: 5 * 4096,
        segment_size: 4096,
        policy,
        buffer: 1024,
    }
}

fn flash(policy: FullPolicy, program_unit: u32) -> Setup {
    Setup {
        geometry: Geometry::try_new(1, program_unit, 1024, Some(0xFF), false).unwrap(),
        capacity: 6 * 2048,
        segment_size: 2048,
        policy,
        buffer: 512,
    }
}

#[test]
fn crash_sweep_ram_ring() {
    let mut points = 0;
    for seed in 0..nori_wal_tests::sweep_seeds(3) {
        points += sweep::<SimDevice>("ram/full-error", &ram(FullPolicy::Error), seed, STEPS, false);
        points += sweep::<SimDevice>("ram/overwrite", &ram(FullPolicy::OverwriteOldest), seed, STEPS, false);
    }
    println!("ram ring: {points} crash points checked");
    assert!(points > 1000);
}

#[test]
fn crash_sweep_disk_ring() {
    let mut points = 0;
    for seed in 10..10 + nori_wal_tests::sweep_seeds(2) {
        points += sweep::<SimDevice>("disk/full-error", &disk(FullPolicy::Error), seed, STEPS, false);
        points +=
            sweep::<SimDevice>("disk/overwrite", &disk(FullPolicy::OverwriteOldest), seed, STEPS, false);
    }
    println!("disk ring (512-byte sectors): {points} crash points checked");
    assert!(points > 1000);
}

#[test]
fn crash_sweep_flash_every_byte() {
    let mut points = 0;
    let seeds = nori_wal_tests::sweep_seeds(1);
    for (seed, pu) in (0..seeds).flat_map(|s| [(20 + 2 * s, 8), (21 + 2 * s, 16)]) {
        points +=
            sweep::<SimDevice>("flash/overwrite", &flash(FullPolicy::OverwriteOldest, pu), seed, 60, true);
        points += sweep::<SimDevice>("flash/full-error", &flash(FullPolicy::Error, pu), seed + 100, 60, true);
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
    ] {
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
            "{:?}: {} ops, {} syncs, {} records, {} segments started on {} slots, log now {}..{}",
            setup.policy,
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

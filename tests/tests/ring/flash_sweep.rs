//! The power-cut sweep on NOR flash, through the `embedded-storage` adapter:
//! program units of 1, 4, 8, 16 and 32 bytes (and 64 to 256), erase units of
//! 4 KiB and 128 KiB, both full policies, erase values 0xFF and 0x00; the power is cut at every byte of every
//! program and inside every erase, and every recovery is checked (I1, I2,
//! I3, I5, I6, F16, appending after recovery).

use nori_wal_core::format::Version;
use nori_wal_core::ring::FullPolicy;
use nori_wal_tests::crash::{Setup, sweep};
use nori_wal_tests::nor::{SimNorDevice, SimNorFlash};

fn setup<const R: usize, const W: usize, const E: usize>(policy: FullPolicy, erase_value: u8) -> Setup {
    Setup {
        geometry: SimNorFlash::<R, W, E>::geometry(erase_value),
        capacity: 4 * E,
        segment_size: E as u64,
        policy,
        buffer: 512,
        format: Version::V2,
    }
}

/// Sweeps one geometry with byte reads; returns the crash points checked.
fn geometry<const W: usize, const E: usize>(steps: usize, seed: u64) -> usize {
    geometry_read::<1, W, E>(steps, seed)
}

/// Sweeps one geometry; returns the crash points checked.
fn geometry_read<const R: usize, const W: usize, const E: usize>(steps: usize, seed: u64) -> usize {
    let mut points = 0;
    // Erased bytes read 0xFF on most NOR flash, 0x00 on some; 0xA5 stands
    // for any other value.
    let erase_values = if seed.is_multiple_of(5) { [0xFF, 0xA5] } else { [0xFF, 0x00] };
    for (policy, erase_value) in
        [FullPolicy::OverwriteOldest, FullPolicy::Error].into_iter().zip(erase_values)
    {
        // Logs written in both format versions.
        for version in [Version::V1, Version::V2] {
            let name =
                format!("nor read {R} pu {W} erase {E} {policy:?} erased {erase_value:#04x} {version}");
            let setup = setup::<R, W, E>(policy, erase_value).with_format(version);
            let n = sweep::<SimNorDevice<R, W, E>>(&name, &setup, seed, steps, true);
            println!("{name}: {n} crash points");
            points += n;
        }
    }
    points
}

#[test]
fn power_cut_sweep_small_erase_units() {
    // 4 KiB sectors: enough steps to wrap the 4-segment ring.
    let points = geometry::<1, 4096>(70, 1)
        + geometry::<4, 4096>(70, 2)
        + geometry::<8, 4096>(70, 3)
        + geometry::<16, 4096>(70, 4)
        + geometry::<32, 4096>(70, 5);
    println!("NOR flash, 4 KiB erase units: {points} crash points, none lost an acknowledged record");
    assert!(points > 10_000);
}

#[test]
fn power_cut_sweep_large_program_units() {
    // Program units up to 256 bytes (the write buffer holds two).
    let points = geometry::<64, 4096>(40, 11)
        + geometry::<128, 4096>(40, 12)
        + geometry::<256, 4096>(30, 13)
        // Word reads, as some flash controllers require, and reads wider
        // than the program unit.
        + geometry_read::<4, 16, 4096>(40, 14)
        + geometry_read::<16, 8, 4096>(40, 15);
    println!(
        "NOR flash, 64 to 256-byte program units: {points} crash points, none lost an acknowledged record"
    );
    assert!(points > 5_000);
}

#[test]
fn power_cut_sweep_large_erase_units() {
    let points = geometry::<1, 131_072>(25, 6)
        + geometry::<4, 131_072>(25, 7)
        + geometry::<8, 131_072>(25, 8)
        + geometry::<16, 131_072>(25, 9)
        + geometry::<32, 131_072>(25, 10);
    println!("NOR flash, 128 KiB erase units: {points} crash points, none lost an acknowledged record");
    assert!(points > 5_000);
}

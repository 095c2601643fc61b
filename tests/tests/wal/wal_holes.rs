//! Skipped damage declared lost (`Wal::declare_lost`): segments of format
//! v2 rewritten with hole frames open in every recovery mode, every record
//! that was readable is kept, and the counts agree.

use std::path::Path;

use nori_wal::blocking::Wal;
use nori_wal::ring::RecoveryCase;
use nori_wal::{FsyncPolicy, Record, RecoveryMode, Version, WalConfig};
use nori_wal_tests::walkit::{Scratch, flip_bit, read_all, segment_files};

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateTornTail,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipDamaged,
    RecoveryMode::Strict,
];

fn config(dir: &Path) -> WalConfig {
    WalConfig::new(dir).segment_size(4096).fsync(FsyncPolicy::Os)
}

fn value(lsn: u64) -> Vec<u8> {
    (lsn as u32).to_le_bytes().to_vec()
}

/// `n` records of 4 bytes (12-byte frames in v2), closed.
fn write(dir: &Path, n: u64) {
    let (wal, _) = Wal::open(config(dir)).unwrap();
    for lsn in 0..n {
        assert_eq!(wal.append(&Record::raw(&value(lsn))).unwrap(), lsn);
    }
    wal.close().unwrap();
}

/// The offset of record `lsn`'s payload in `file`, a segment whose first
/// record is `base` (no mark between records: `FsyncPolicy::Os`).
fn payload_of(base: u64, lsn: u64) -> u64 {
    32 + 24 + (lsn - base) * 12 + 8
}

fn base(path: &Path) -> u64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// Opens the log under `SkipDamaged`, declares what it skipped lost, and
/// checks that every mode then opens it with the records `kept` and
/// `holes` LSNs declared lost.
fn declare_and_check(dir: &Path, n: u64, lost: &[u64], holes: u64, rewritten: u32) {
    let (wal, info) = Wal::open(config(dir).recovery(RecoveryMode::SkipDamaged)).unwrap();
    assert!(info.corruption.is_some(), "{info:?}");
    let declared = wal.declare_lost().unwrap();
    assert_eq!((declared.holes, declared.segments_rewritten, declared.left_damaged), (holes, rewritten, 0));
    // Appends go on, after the holes.
    assert_eq!(wal.append(&Record::raw(&value(n))).unwrap(), n);
    drop(wal);
    let kept: Vec<(u64, Vec<u8>)> = (0..=n).filter(|l| !lost.contains(l)).map(|l| (l, value(l))).collect();
    for mode in MODES {
        let (wal, info) = Wal::open(config(dir).recovery(mode)).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(info.case, RecoveryCase::Clean, "{mode:?}: {info:?}");
        assert!(info.corruption.is_none(), "{mode:?}: {info:?}");
        assert_eq!((info.records, info.holes), (kept.len() as u64, holes), "{mode:?}: {info:?}");
        assert_eq!(read_all(&wal), kept, "{mode:?}");
        // Reading from inside a hole starts at the next record.
        if let Some(&first_lost) = lost.first() {
            let mut iter = wal.iter_from(first_lost).unwrap();
            let next = kept.iter().find(|(l, _)| *l > first_lost).map(|(l, _)| *l);
            assert_eq!(iter.try_next().unwrap().map(|e| e.lsn), next, "{mode:?}");
        }
    }
    let found = nori_wal::wal::verify(dir, RecoveryMode::Strict, |_, _| {}).unwrap();
    assert_eq!(found.records, kept.len() as u64);
}

#[test]
fn damage_in_a_sealed_segment_becomes_a_hole() {
    let scratch = Scratch::new("holes-sealed");
    let dir = scratch.wal();
    write(&dir, 900);
    let files = segment_files(&dir);
    assert!(files.len() >= 3);
    // Records 5 and 9 of the first segment; record 3 of the second.
    flip_bit(&files[0], payload_of(0, 5), 1);
    flip_bit(&files[0], payload_of(0, 9), 2);
    let second = base(&files[1]);
    flip_bit(&files[1], payload_of(second, second + 3), 3);
    declare_and_check(&dir, 900, &[5, 9, second + 3], 3, 2);
}

#[test]
fn damage_in_the_newest_segment_becomes_a_hole() {
    let scratch = Scratch::new("holes-newest");
    let dir = scratch.wal();
    write(&dir, 900);
    let newest = segment_files(&dir).pop().unwrap();
    let b = base(&newest);
    flip_bit(&newest, payload_of(b, b + 2), 0);
    declare_and_check(&dir, 900, &[b + 2], 1, 1);
}

#[test]
fn a_middle_segment_with_a_damaged_header_becomes_a_hole_before_it() {
    let scratch = Scratch::new("holes-header");
    let dir = scratch.wal();
    write(&dir, 1200);
    let files = segment_files(&dir);
    assert!(files.len() >= 4);
    let (second, third) = (base(&files[1]), base(&files[2]));
    flip_bit(&files[1], 10, 0);
    let lost: Vec<u64> = (second..third).collect();
    declare_and_check(&dir, 1200, &lost, third - second, 1);
    assert!(!files[1].exists(), "the file skipped whole is removed");
}

#[test]
fn a_sealed_segment_cut_short_becomes_a_hole() {
    let scratch = Scratch::new("holes-cut");
    let dir = scratch.wal();
    write(&dir, 900);
    let files = segment_files(&dir);
    let second = base(&files[1]);
    std::fs::OpenOptions::new().write(true).open(&files[0]).unwrap().set_len(payload_of(0, 100) - 8).unwrap();
    let lost: Vec<u64> = (100..second).collect();
    declare_and_check(&dir, 900, &lost, second - 100, 1);
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), 4096, "made whole again");
}

#[test]
fn segments_of_format_v1_keep_their_damage() {
    let scratch = Scratch::new("holes-v1");
    let dir = scratch.wal();
    {
        let (wal, _) = Wal::open(config(&dir).format(Version::V1).fsync(FsyncPolicy::Always)).unwrap();
        for lsn in 0..300 {
            wal.append(&Record::raw(&value(lsn))).unwrap();
        }
    }
    // The first record's payload: a 56-byte header, a 32-byte mark, then
    // the frame's 16-byte header.
    flip_bit(&segment_files(&dir)[0], 56 + 32 + 17, 0);
    let (wal, _) = Wal::open(config(&dir).recovery(RecoveryMode::SkipDamaged)).unwrap();
    let declared = wal.declare_lost().unwrap();
    assert_eq!((declared.holes, declared.segments_rewritten, declared.left_damaged), (0, 0, 1));
    drop(wal);
    assert!(Wal::open(config(&dir)).is_err(), "the default mode still refuses the damage");
}

/// The async API declares skipped damage lost as the blocking one does.
#[test]
fn the_async_api_declares_damage_lost() {
    let scratch = Scratch::new("holes-async");
    let dir = scratch.wal();
    write(&dir, 900);
    flip_bit(&segment_files(&dir)[0], payload_of(0, 7), 4);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let declared = runtime.block_on(async {
        let (wal, _) = nori_wal::Wal::open(config(&dir).recovery(RecoveryMode::SkipDamaged)).await.unwrap();
        let declared = wal.declare_lost().await.unwrap();
        wal.close().await.unwrap();
        declared
    });
    assert_eq!((declared.holes, declared.segments_rewritten), (1, 1));
    let (wal, info) = Wal::open(config(&dir).recovery(RecoveryMode::Strict)).unwrap();
    assert_eq!((info.records, info.holes), (899, 1));
    assert_eq!(read_all(&wal).len(), 899);
}

/// F16 for the repair: a crash at every file-system operation of
/// `declare_lost` (and of the recovery before it), under each way a crash
/// treats unsynced writes, leaves the log either as it was (the damage
/// still there, skipped under `SkipDamaged`, refused by the default mode)
/// or repaired (a hole, opening in every mode); every other record is kept
/// either way, and no temporary copy is left behind by the next open.
#[test]
fn a_crash_at_every_operation_of_a_repair_leaves_the_log_before_or_after_it() {
    use nori_wal::fs::{File, Fs, OpenMode};
    use nori_wal_tests::simfs::{FsCut, FsFaults, SimFs};
    use rand::SeedableRng;
    let dir = Path::new("/wal");
    let base = SimFs::new(FsFaults::default());
    {
        let (wal, _) = Wal::open_in(base.clone(), config(dir)).unwrap();
        for lsn in 0..900 {
            wal.append(&Record::raw(&value(lsn))).unwrap();
        }
        wal.close().unwrap();
    }
    // Record 5 damaged, durably.
    let first = dir.join(format!("{:020}.wal", 0));
    let file = base.open(&first, OpenMode::ReadWrite).unwrap();
    let at = payload_of(0, 5);
    let mut byte = [0u8];
    nori_wal::fs::read_exact_at(&file, &mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x20], at).unwrap();
    file.sync_data().unwrap();
    drop(file);
    let kept: Vec<(u64, Vec<u8>)> = (0..900).filter(|&l| l != 5).map(|l| (l, value(l))).collect();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let repair = |fs: &SimFs| {
        if let Ok((wal, _)) = Wal::open_in(fs.clone(), config(dir).recovery(RecoveryMode::SkipDamaged)) {
            let _ = wal.declare_lost();
            std::mem::forget(wal);
        }
    };
    let whole = base.crash(FsCut::DropUnsynced, &mut rng);
    repair(&whole);
    let total = whole.ops();
    let (mut before, mut after) = (0, 0);
    for halt in 0..total {
        for cut in [FsCut::DropUnsynced, FsCut::RandomSubset, FsCut::SizeWithoutData] {
            let fs = base.crash(FsCut::DropUnsynced, &mut rng);
            fs.set_faults(FsFaults { halt_after: Some(halt), ..FsFaults::default() });
            repair(&fs);
            let crashed = fs.crash(cut, &mut rng);
            let what = format!("halt {halt}/{total} {cut:?}");
            match Wal::open_in(crashed.clone(), config(dir)) {
                Ok((wal, info)) => {
                    assert_eq!((info.records, info.holes), (899, 1), "{what}: {info:?}");
                    assert_eq!(nori_wal_tests::walkit::try_read_all(&wal).unwrap(), kept, "{what}");
                    after += 1;
                }
                Err(nori_wal::Error::Corrupt(c)) => {
                    assert_eq!(c.lsn, 5, "{what}: {c}");
                    let (wal, _) =
                        Wal::open_in(crashed.clone(), config(dir).recovery(RecoveryMode::SkipDamaged))
                            .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(nori_wal_tests::walkit::try_read_all(&wal).unwrap(), kept, "{what}");
                    before += 1;
                }
                Err(e) => panic!("{what}: {e}"),
            }
            let names = crashed.list(dir).unwrap();
            assert!(!names.iter().any(|n| n.to_string_lossy().ends_with(".cut")), "{what}: {names:?}");
        }
    }
    println!("repair crash sweep: {total} operations × 3 cuts: {before} before the repair, {after} after");
    assert!(before > 0 && after > 0);
}

/// A hole among reclaimed records is no longer the log's: after
/// `truncate_before` past it, `holes` and `records` count only what the log
/// holds.
#[test]
fn a_hole_below_the_start_is_not_counted() {
    let scratch = Scratch::new("holes-reclaimed");
    let dir = scratch.wal();
    write(&dir, 900);
    flip_bit(&segment_files(&dir)[0], payload_of(0, 5), 1);
    let (wal, _) = Wal::open(config(&dir).recovery(RecoveryMode::SkipDamaged)).unwrap();
    assert_eq!(wal.declare_lost().unwrap().holes, 1);
    wal.truncate_before(50).unwrap();
    drop(wal);
    let (wal, info) = Wal::open(config(&dir)).unwrap();
    assert_eq!(
        segment_files(&dir)[0],
        scratch.wal().join(format!("{:020}.wal", 0)),
        "the hole's segment stays"
    );
    assert_eq!((info.records, info.holes, info.first_lsn), (850, 0, Some(50)), "{info:?}");
    assert_eq!(read_all(&wal), (50..900).map(|l| (l, value(l))).collect::<Vec<_>>());
}

/// The oldest segment's header damaged: its records are lost, and after
/// the repair the log starts at the next segment, in every mode.
#[test]
fn an_oldest_segment_with_a_damaged_header_moves_the_start() {
    let scratch = Scratch::new("holes-oldest");
    let dir = scratch.wal();
    write(&dir, 900);
    let files = segment_files(&dir);
    let second = base(&files[1]);
    flip_bit(&files[0], 10, 0);
    let (wal, _) = Wal::open(config(&dir).recovery(RecoveryMode::SkipDamaged)).unwrap();
    let declared = wal.declare_lost().unwrap();
    assert_eq!((declared.files_removed, declared.left_damaged), (1, 0), "{declared:?}");
    drop(wal);
    assert!(!files[0].exists());
    for mode in MODES {
        let (wal, info) = Wal::open(config(&dir).recovery(mode)).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(
            (info.case, info.first_lsn, info.records),
            (RecoveryCase::Clean, Some(second), 900 - second)
        );
        assert_eq!(read_all(&wal), (second..900).map(|l| (l, value(l))).collect::<Vec<_>>(), "{mode:?}");
    }
}

//! Emptying a log from its first LSN (`truncate_from`) and starting it
//! over past its end (`restart_at`): what a Raft log needs when it is
//! truncated from its first index or purged past its last. Each is
//! durable, and a crash at any file-system operation of either leaves the
//! log as it was or as the call left it (or, for a suffix cut, a prefix
//! of what was there), never a log that gives an LSN twice.

use std::path::Path;

use nori_wal::blocking::Wal;
use nori_wal::fs::Fs;
use nori_wal::{Error, FsyncPolicy, Lsn, Record, WalConfig};
use nori_wal_tests::simfs::{FsCut, FsFaults, SimFs};
use nori_wal_tests::walkit::{Scratch, read_all};
use rand::SeedableRng;

fn config(dir: &Path) -> WalConfig {
    WalConfig::new(dir).segment_size(4096).fsync(FsyncPolicy::Os)
}

fn value(lsn: Lsn) -> Vec<u8> {
    (lsn as u32).to_le_bytes().to_vec()
}

fn append_from<S: Fs>(wal: &Wal<S>, from: Lsn, n: u64) {
    for lsn in from..from + n {
        assert_eq!(wal.append(&Record::raw(&value(lsn))).unwrap(), lsn);
    }
}

#[test]
fn truncate_from_the_first_lsn_empties_the_log() {
    let scratch = Scratch::new("truncate-from");
    let (wal, _) = Wal::open(config(&scratch.wal())).unwrap();
    append_from(&wal, 0, 600);
    // From LSN 0, which `truncate_after` cannot name.
    wal.truncate_from(0).unwrap();
    assert_eq!((wal.first_lsn(), wal.next_lsn()), (0, 0));
    assert!(read_all(&wal).is_empty());
    append_from(&wal, 0, 300);
    // After a reclaim, from the first LSN it left.
    wal.truncate_before(250).unwrap();
    wal.truncate_from(250).unwrap();
    assert_eq!((wal.first_lsn(), wal.next_lsn()), (250, 250));
    append_from(&wal, 250, 10);
    // Within the log, as `truncate_after(lsn - 1)`.
    wal.truncate_from(255).unwrap();
    assert_eq!(read_all(&wal), (250..255).map(|l| (l, value(l))).collect::<Vec<_>>());
    for bad in [249, 256] {
        assert!(matches!(wal.truncate_from(bad), Err(Error::LsnOutOfRange { .. })), "{bad}");
    }
    drop(wal);
    let (wal, info) = Wal::open(config(&scratch.wal())).unwrap();
    assert_eq!((wal.first_lsn(), wal.next_lsn(), info.records), (250, 255, 5));
    // Emptied from a first LSN above 0 and reopened: no segment file is
    // left, and the lock file keeps where the log starts.
    wal.truncate_from(250).unwrap();
    drop(wal);
    let (wal, info) = Wal::open(config(&scratch.wal())).unwrap();
    assert_eq!((wal.first_lsn(), wal.next_lsn(), info.records), (250, 250, 0));
    assert_eq!(wal.append(&Record::raw(b"x")).unwrap(), 250);
}

#[test]
fn restart_at_starts_the_log_over_past_its_end() {
    let scratch = Scratch::new("restart-at");
    let (wal, _) = Wal::open(config(&scratch.wal())).unwrap();
    append_from(&wal, 0, 600);
    assert!(matches!(wal.restart_at(599), Err(Error::LsnOutOfRange { lsn: 599, first: 0, next: 600 })));
    wal.restart_at(10_000).unwrap();
    assert_eq!((wal.first_lsn(), wal.next_lsn()), (10_000, 10_000));
    assert!(read_all(&wal).is_empty());
    append_from(&wal, 10_000, 5);
    drop(wal);
    let (wal, info) = Wal::open(config(&scratch.wal())).unwrap();
    assert_eq!((wal.first_lsn(), wal.next_lsn(), info.records), (10_000, 10_005, 5));
    assert_eq!(read_all(&wal), (10_000..10_005).map(|l| (l, value(l))).collect::<Vec<_>>());
    // At the next LSN itself: everything reclaimed, nothing skipped.
    wal.restart_at(10_005).unwrap();
    assert_eq!((wal.first_lsn(), wal.next_lsn()), (10_005, 10_005));
    // An empty log starts over as well, and so does the async API.
    drop(wal);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (wal, _) = nori_wal::Wal::open(config(&scratch.wal())).await.unwrap();
        wal.restart_at(20_000).await.unwrap();
        assert_eq!(wal.append(&Record::raw(b"x")).await.unwrap(), 20_000);
        wal.truncate_from(20_000).await.unwrap();
        assert_eq!(wal.next_lsn(), 20_000);
        wal.close().await.unwrap();
    });
    let names = std::fs::read_dir(scratch.wal()).unwrap().count();
    assert!(names <= 3, "old segment files removed: {names} entries");
}

/// Runs `op` on a log of `n` records in `base`, halted after each of its
/// file-system operations in turn and crashed under each cut; `check`
/// judges what reopens (its first and next LSNs and records). Run whole and
/// then crashed, it leaves what `check` calls `done`.
fn sweep(
    name: &str,
    n: u64,
    done: &str,
    op: impl Fn(&Wal<SimFs>),
    check: impl Fn(&str, Lsn, Lsn, &[(Lsn, Vec<u8>)]) -> &'static str,
) {
    let dir = Path::new("/wal");
    let base = SimFs::new(FsFaults::default());
    {
        let (wal, _) = Wal::open_in(base.clone(), config(dir)).unwrap();
        append_from(&wal, 0, n);
        wal.close().unwrap();
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
    let run = |fs: &SimFs| {
        if let Ok((wal, _)) = Wal::open_in(fs.clone(), config(dir)) {
            op(&wal);
            std::mem::forget(wal);
        }
    };
    let whole = base.crash(FsCut::DropUnsynced, &mut rng);
    run(&whole);
    let total = whole.ops();
    let (wal, _) = Wal::open_in(whole.crash(FsCut::DropUnsynced, &mut rng), config(dir)).unwrap();
    assert_eq!(check(name, wal.first_lsn(), wal.next_lsn(), &read_all(&wal)), done, "{name} run whole");
    let mut seen = std::collections::BTreeMap::new();
    for halt in 0..total {
        for cut in [FsCut::DropUnsynced, FsCut::RandomSubset, FsCut::SizeWithoutData] {
            let fs = base.crash(FsCut::DropUnsynced, &mut rng);
            fs.set_faults(FsFaults { halt_after: Some(halt), ..FsFaults::default() });
            run(&fs);
            let crashed = fs.crash(cut, &mut rng);
            let what = format!("{name}: halt {halt}/{total} {cut:?}");
            let (wal, _) = Wal::open_in(crashed, config(dir)).unwrap_or_else(|e| panic!("{what}: {e}"));
            let records = read_all(&wal);
            *seen.entry(check(&what, wal.first_lsn(), wal.next_lsn(), &records)).or_insert(0) += 1;
        }
    }
    println!("{name} crash sweep: {total} operations × 3 cuts: {seen:?}");
    assert!(seen.len() >= 2, "{name}: both outcomes met: {seen:?}");
}

/// F16 for `restart_at`: the log as it was, or empty at its old next LSN,
/// or empty at the new one.
#[test]
fn a_crash_during_restart_at_leaves_the_log_as_it_was_or_empty() {
    let all: Vec<(Lsn, Vec<u8>)> = (0..700).map(|l| (l, value(l))).collect();
    sweep(
        "restart_at",
        700,
        "started over",
        |wal| {
            let _ = wal.restart_at(5_000);
        },
        |what, first, next, records| match (first, next) {
            (0, 700) => {
                assert_eq!(records, all, "{what}");
                "as it was"
            }
            (700, 700) | (5_000, 5_000) => {
                assert!(records.is_empty(), "{what}");
                if first == 700 { "empty at the old next LSN" } else { "started over" }
            }
            _ => panic!("{what}: first {first}, next {next}"),
        },
    );
}

/// F16 for `truncate_from` the first LSN: a prefix of the log (files go
/// newest first), never a record back once a later one is gone.
#[test]
fn a_crash_during_truncate_from_the_first_lsn_leaves_a_prefix() {
    sweep(
        "truncate_from",
        700,
        "empty",
        |wal| {
            let _ = wal.truncate_from(0);
        },
        |what, first, next, records| {
            assert_eq!(first, 0, "{what}");
            assert_eq!(records, (0..next).map(|l| (l, value(l))).collect::<Vec<_>>(), "{what}");
            match next {
                0 => "empty",
                700 => "as it was",
                _ => "a prefix",
            }
        },
    );
}

//! A full disk on a real, small file system: `.ci/run` mounts a size-limited
//! tmpfs and names it in `NORI_WAL_TEST_SMALL_FS`. The WAL fills it, gets a
//! clear error, space is freed, and it goes on without loss.

use std::path::PathBuf;

use nori_wal::blocking::Wal;
use nori_wal::{Error, FsyncPolicy, Record, WalConfig};
use nori_wal_tests::walkit::{Scratch, read_all};

/// The two tests share one small file system: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn small_fs() -> Option<PathBuf> {
    match std::env::var("NORI_WAL_TEST_SMALL_FS") {
        Ok(dir) => Some(PathBuf::from(dir)),
        Err(_) => {
            eprintln!(
                "\n*** NORI_WAL_TEST_SMALL_FS is not set: the disk-full test on a real file system is SKIPPED.\n\
                 *** .ci/run mounts a small tmpfs for it; the simulated disk-full test still runs.\n"
            );
            None
        }
    }
}

fn fill(wal: &Wal, written: &mut Vec<(u64, Vec<u8>)>) -> Error {
    loop {
        let v = format!("record {} {}", written.len(), "z".repeat(200)).into_bytes();
        match wal.append(&Record::raw(&v)) {
            Ok(lsn) => written.push((lsn, v)),
            Err(e) => return e,
        }
    }
}

#[test]
fn a_full_disk_at_rotation_is_reported_and_the_wal_goes_on_once_space_is_freed() {
    let Some(root) = small_fs() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let scratch = Scratch::under(&root, "full");
    let dir = scratch.0.clone();
    let config = WalConfig::new(&dir).segment_size(1 << 20).fsync(FsyncPolicy::Os);
    let (wal, _) = Wal::open(config.clone()).unwrap();
    let mut written = Vec::new();
    let err = fill(&wal, &mut written);
    assert!(err.is_storage_full(), "{err}");
    assert!(!wal.is_poisoned(), "a full disk met at rotation poisons nothing");
    wal.sync().unwrap();
    assert!(read_all(&wal) == written, "nothing durable was lost");
    // Free space by reclaiming, and go on.
    let keep_from = written[written.len() - 10].0;
    wal.truncate_before(keep_from).unwrap();
    let more = fill(&wal, &mut written);
    assert!(more.is_storage_full(), "{more}");
    wal.close().unwrap();
    let (wal, info) = Wal::open(config).unwrap();
    let got = read_all(&wal);
    let expected: Vec<_> = written.iter().filter(|(lsn, _)| *lsn >= keep_from).cloned().collect();
    assert!(got == expected, "{info:?}");
    println!("disk full on a real file system: error after {} records: {err}", written.len());
}

#[test]
fn without_preallocation_a_full_disk_poisons_and_loses_nothing_durable() {
    let Some(root) = small_fs() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let scratch = Scratch::under(&root, "full-noalloc");
    let dir = scratch.0.clone();
    let config = WalConfig::new(&dir).segment_size(1 << 20).fsync(FsyncPolicy::Always).preallocate(false);
    let (wal, _) = Wal::open(config.clone()).unwrap();
    let mut written = Vec::new();
    let err = fill(&wal, &mut written);
    assert!(err.is_storage_full() || matches!(err, Error::Poisoned { .. }), "{err}");
    drop(wal);
    // Reopen on the still-full disk: recovery needs no new space.
    let (wal, _) = Wal::open(config).unwrap();
    let got = read_all(&wal);
    assert!(got.len() >= written.len(), "acknowledged records lost: {} of {}", got.len(), written.len());
    assert!(got[..written.len()] == written[..]);
}

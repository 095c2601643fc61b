//! The file WAL's blocking API on the real file system: policies, rotation,
//! truncation, threads, the exclusive lock, and bad input.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nori_wal::blocking::Wal;
use nori_wal::{Error, FsyncPolicy, Record, WalConfig};
use nori_wal_tests::walkit::{Scratch, read_all, segment_files};

fn small(dir: &Path) -> WalConfig {
    WalConfig::new(dir).segment_size(64 << 10)
}

#[test]
fn wal_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Wal>();
}

#[test]
fn batches_are_atomic_and_lsns_contiguous_across_rotations() {
    let scratch = Scratch::new("api-batch");
    let (wal, _) = Wal::open(small(&scratch.wal()).fsync(FsyncPolicy::Os)).unwrap();
    let mut expected = Vec::new();
    for i in 0..2000u32 {
        if i % 10 == 0 {
            let a = format!("batch {i} a").into_bytes();
            let b = format!("batch {i} b").into_bytes();
            let range = wal.append_batch(&[Record::raw(&a), Record::raw(&b)]).unwrap();
            assert_eq!(range.end - range.start, 2);
            expected.push((range.start, a));
            expected.push((range.start + 1, b));
        } else {
            let v = format!("record {i} {}", "y".repeat((i % 50) as usize)).into_bytes();
            let lsn = wal.append(&Record::raw(&v)).unwrap();
            expected.push((lsn, v));
        }
    }
    assert!(wal.segment_count() > 1, "rotated by size");
    assert!(matches!(wal.append_batch(&[]), Err(Error::EmptyBatch)));
    assert!(read_all(&wal) == expected);
    // Reading from the middle finds the right segment.
    let mut iter = wal.iter_from(1234).unwrap();
    assert_eq!(iter.try_next().unwrap().unwrap().lsn, 1234);
    wal.close().unwrap();
    let (wal, info) = Wal::open(small(&scratch.wal())).unwrap();
    assert_eq!(info.records, expected.len() as u64);
    assert!(read_all(&wal) == expected);
}

#[test]
fn batch_policy_makes_a_lone_append_durable_without_more_appends() {
    let scratch = Scratch::new("api-batch-timer");
    let (wal, _) =
        Wal::open(small(&scratch.wal()).fsync(FsyncPolicy::Batch(Duration::from_millis(5)))).unwrap();
    let lsn = wal.append(&Record::raw(b"lonely")).unwrap();
    let start = Instant::now();
    while wal.durable_lsn() != Some(lsn) {
        assert!(start.elapsed() < Duration::from_secs(10), "the batch timer never synced the tail");
        std::thread::sleep(Duration::from_millis(1));
    }
    // And a burst's tail too.
    let mut last = 0;
    for i in 0..500u32 {
        last = wal.append(&Record::raw(&i.to_le_bytes())).unwrap();
    }
    while wal.durable_lsn() != Some(last) {
        assert!(start.elapsed() < Duration::from_secs(10), "the tail of a burst was never synced");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn wait_durable_and_sync_cover_os_policy_appends() {
    let scratch = Scratch::new("api-wait");
    let (wal, _) = Wal::open(small(&scratch.wal()).fsync(FsyncPolicy::Os)).unwrap();
    let a = wal.append(&Record::raw(b"a")).unwrap();
    let b = wal.append(&Record::raw(b"b")).unwrap();
    assert_eq!(wal.durable_lsn(), None);
    wal.wait_durable(a).unwrap();
    assert!(wal.durable_lsn() >= Some(a));
    wal.sync().unwrap();
    assert_eq!(wal.durable_lsn(), Some(b));
    assert!(matches!(wal.wait_durable(b + 1), Err(Error::LsnOutOfRange { .. })));
}

#[test]
fn age_rotation_fires_without_appends() {
    let scratch = Scratch::new("api-age");
    let config =
        small(&scratch.wal()).max_segment_age(Some(Duration::from_millis(20))).fsync(FsyncPolicy::Os);
    let (wal, _) = Wal::open(config).unwrap();
    wal.append(&Record::raw(b"old")).unwrap();
    let start = Instant::now();
    // The active segment is sealed by the timer, without appends (under
    // `Os` nothing syncs it: the record is not durable).
    while wal.stats().rotations == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "age rotation never fired");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(wal.durable_lsn(), None);
    wal.append(&Record::raw(b"new")).unwrap();
    assert_eq!(segment_files(&scratch.wal()).len(), 2, "the next append went to a new segment");
    wal.sync().unwrap();
    assert_eq!(wal.durable_lsn(), Some(1));
}

#[test]
fn many_threads_append_under_always_and_every_record_is_there() {
    let scratch = Scratch::new("api-threads");
    let (wal, _) = Wal::open(small(&scratch.wal()).fsync(FsyncPolicy::Always)).unwrap();
    let wal = Arc::new(wal);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..100 {
                    let v = format!("t{t} r{i}").into_bytes();
                    let lsn = wal.append(&Record::raw(&v)).unwrap();
                    // Durable on return.
                    assert!(wal.durable_lsn() >= Some(lsn));
                    mine.push((lsn, v));
                }
                mine
            })
        })
        .collect();
    let mut all: Vec<(u64, Vec<u8>)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    all.sort();
    assert_eq!(all.len(), 800);
    assert!(all.iter().enumerate().all(|(i, (lsn, _))| *lsn == i as u64));
    assert!(read_all(&wal) == all);
}

#[test]
fn truncate_before_deletes_whole_segments_and_truncate_after_drops_a_suffix() {
    let scratch = Scratch::new("api-truncate");
    let (wal, _) = Wal::open(small(&scratch.wal()).fsync(FsyncPolicy::Os)).unwrap();
    for i in 0..3000u32 {
        wal.append(&Record::put(format!("k{i}").as_bytes(), &[7; 40])).unwrap();
    }
    let files = segment_files(&scratch.wal()).len();
    wal.truncate_before(2000).unwrap();
    assert_eq!(wal.first_lsn(), 2000);
    assert!(segment_files(&scratch.wal()).len() < files);
    assert_eq!(read_all(&wal).first().unwrap().0, 2000);
    assert!(matches!(wal.iter_from(10), Err(Error::LsnOutOfRange { .. })));
    assert!(matches!(wal.truncate_before(4000), Err(Error::LsnOutOfRange { .. })));
    // Raft: the suffix after 2499 conflicts.
    wal.truncate_after(2499).unwrap();
    assert_eq!(wal.next_lsn(), 2500);
    assert_eq!(wal.append(&Record::raw(b"new term")).unwrap(), 2500);
    let batch = wal.append_batch(&[Record::raw(b"x"), Record::raw(b"y")]).unwrap();
    assert!(matches!(wal.truncate_after(batch.start), Err(Error::InsideBatch { .. })));
    assert_eq!(wal.next_lsn(), batch.end, "a refused truncation changes nothing");
    wal.close().unwrap();
    let (wal, info) = Wal::open(small(&scratch.wal())).unwrap();
    assert_eq!((info.first_lsn, info.last_lsn), (Some(2000), Some(2502)));
    let records = read_all(&wal);
    assert_eq!(records[500].1, b"new term");
}

#[test]
fn a_second_opener_gets_a_clear_error() {
    let scratch = Scratch::new("api-lock");
    let (wal, _) = Wal::open(small(&scratch.wal())).unwrap();
    let err = Wal::open(small(&scratch.wal())).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("in use"), "{err}");
    drop(wal);
    // Released with the WAL. (A process forked by another test thread can
    // hold a copy of the lock's descriptor until it execs: retry briefly.)
    let mut tries = 0;
    while let Err(e) = Wal::open(small(&scratch.wal())) {
        assert!(matches!(e, Error::Locked { .. }) && tries < 200, "{e}");
        tries += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_second_opener_in_another_process_gets_a_clear_error() {
    if let Ok(dir) = std::env::var("NORI_WAL_LOCK_CHILD") {
        // The child: must find the directory locked.
        let err = Wal::open(small(Path::new(&dir))).unwrap_err();
        assert!(matches!(err, Error::Locked { .. }), "{err}");
        return;
    }
    let scratch = Scratch::new("api-lock-process");
    let (_wal, _) = Wal::open(small(&scratch.wal())).unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            nori_wal_tests::test_name(
                module_path!(),
                "a_second_opener_in_another_process_gets_a_clear_error",
            )
            .as_str(),
            "--nocapture",
        ])
        .env("NORI_WAL_LOCK_CHILD", scratch.wal())
        .status()
        .unwrap();
    assert!(status.success(), "the child process opened a locked WAL");
}

#[test]
fn bad_input_gets_typed_errors_that_say_what_to_do() {
    let scratch = Scratch::new("api-bad");
    std::fs::create_dir_all(&scratch.0).unwrap();
    // The path is a file.
    let file = scratch.0.join("plain-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let err = Wal::open(small(&file)).unwrap_err();
    assert!(matches!(err, Error::NotADirectory { .. }), "{err}");
    // A path that cannot be created.
    let err = Wal::open(small(Path::new("/proc/nori-wal-cannot-exist"))).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("/proc/nori-wal-cannot-exist"), "{err}");
    // Configuration.
    let err = Wal::open(WalConfig::new(scratch.wal()).segment_size(100)).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("segment size"), "{err}");
    // Names that are not the WAL's are left alone (a WAL on its own file
    // system has `lost+found`); a `*.wal` that is not a segment is refused.
    let (wal, _) = Wal::open(small(&scratch.wal())).unwrap();
    let lsn = wal.append(&Record::raw(b"precious")).unwrap();
    drop(wal);
    std::fs::write(scratch.wal().join("notes.txt"), b"hello").unwrap();
    std::fs::create_dir(scratch.wal().join("lost+found")).unwrap();
    let (wal, info) = Wal::open(small(&scratch.wal())).unwrap();
    assert_eq!((info.records, info.corruption.clone()), (1, None));
    drop(wal);
    assert_eq!(std::fs::read(scratch.wal().join("notes.txt")).unwrap(), b"hello", "left alone");
    std::fs::write(scratch.wal().join("old-backup.wal"), b"hello").unwrap();
    let err = Wal::open(small(&scratch.wal())).unwrap_err();
    assert!(matches!(err, Error::ForeignFile { .. }), "{err}");
    assert!(err.to_string().contains("old-backup.wal") && err.to_string().contains("move it out"), "{err}");
    std::fs::remove_file(scratch.wal().join("old-backup.wal")).unwrap();
    // A record above the limit: refused, nothing lost, the log goes on.
    let (wal, _) = Wal::open(small(&scratch.wal()).max_record_len(1000)).unwrap();
    let err = wal.append(&Record::raw(&[1; 2000])).unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { max: 1000, .. }), "{err}");
    assert!(!wal.is_poisoned());
    assert_eq!(wal.append(&Record::raw(b"next")).unwrap(), lsn + 1);
    assert_eq!(read_all(&wal).len(), 2);
}

#[test]
fn records_of_every_size_up_to_the_limit_round_trip() {
    let scratch = Scratch::new("api-sizes");
    let config = small(&scratch.wal()).fsync(FsyncPolicy::Os);
    let (wal, _) = Wal::open(config.clone()).unwrap();
    let max = wal.max_record_len();
    // The largest payload whose frame (header included) is `max` long.
    let version = nori_wal::Version::default();
    let largest = (max - 16..max).rev().find(|&p| nori_wal::format::frame_len_of(version, p) <= max).unwrap();
    assert_eq!(nori_wal::format::frame_len_of(version, largest), max);
    let sizes: Vec<usize> = (0..300).chain([1000, 4096, 30_000]).chain([largest as usize]).collect();
    for &n in &sizes {
        let v: Vec<u8> = (0..n).map(|i| (i * 31 + n) as u8).collect();
        wal.append(&Record::raw(&v)).unwrap();
    }
    assert!(wal.append(&Record::raw(&vec![0; largest as usize + 1])).is_err());
    drop(wal);
    let (wal, _) = Wal::open(config).unwrap();
    let got = read_all(&wal);
    assert_eq!(got.len(), sizes.len());
    for ((_, v), &n) in got.iter().zip(&sizes) {
        assert!(v.len() == n && v.iter().enumerate().all(|(i, b)| *b == (i * 31 + n) as u8));
    }
}

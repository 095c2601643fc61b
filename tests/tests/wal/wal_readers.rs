//! Readers racing writers on real files (segments read through memory
//! maps): rotation, `truncate_before` and `truncate_after` under live
//! readers never tear what they read (F20: no `SIGBUS`, no torn data), and
//! each reader sees a consistent prefix of the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nori_wal::blocking::Wal;
use nori_wal::{Error, FsyncPolicy, Lsn, Record, WalConfig};
use nori_wal_tests::walkit::{Scratch, payload};

fn value(lsn: Lsn) -> Vec<u8> {
    let mut v = format!("lsn {lsn}:").into_bytes();
    v.resize(v.len() + (lsn as usize * 13) % 300, b'a' + (lsn % 26) as u8);
    v
}

#[test]
fn readers_see_a_consistent_prefix_while_writers_rotate_and_reclaim() {
    let scratch = Scratch::new("readers");
    let config = WalConfig::new(scratch.wal()).segment_size(64 << 10).fsync(FsyncPolicy::Os);
    let (wal, _) = Wal::open(config).unwrap();
    let wal = Arc::new(wal);
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let writer = {
        let (wal, stop) = (Arc::clone(&wal), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut truncations = 0;
            for round in 0..20_000u64 {
                let lsn = wal.next_lsn();
                wal.append(&Record::raw(&value(lsn))).unwrap();
                if round % 97 == 0 {
                    // Reclaim all but the last 300 records.
                    let keep = wal.next_lsn().saturating_sub(300).max(wal.first_lsn());
                    wal.truncate_before(keep).unwrap();
                }
                if round % 501 == 500 {
                    // Drop the last 20 records; they are appended again
                    // with the same values.
                    let last = wal.next_lsn() - 1;
                    match wal.truncate_after(last.saturating_sub(20).max(wal.first_lsn())) {
                        Ok(()) => truncations += 1,
                        Err(Error::LsnOutOfRange { .. }) => {}
                        Err(e) => panic!("truncate_after: {e}"),
                    }
                }
            }
            stop.store(true, Ordering::Release);
            truncations
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (wal, stop, reads) = (Arc::clone(&wal), Arc::clone(&stop), Arc::clone(&reads));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let mut iter = match wal.iter() {
                        Ok(iter) => iter,
                        Err(e) => panic!("iter: {e}"),
                    };
                    let mut expected: Option<Lsn> = None;
                    while let Some(entry) = iter.try_next().unwrap_or_else(|e| panic!("read: {e}")) {
                        if let Some(x) = expected {
                            assert_eq!(entry.lsn, x, "LSNs not contiguous");
                        }
                        assert!(
                            payload(&entry.record) == value(entry.lsn),
                            "torn or wrong record at {}",
                            entry.lsn
                        );
                        expected = Some(entry.lsn + 1);
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let truncations = writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    println!(
        "readers racing writers: {} records read, {truncations} truncate_after and many reclaims under them",
        reads.load(Ordering::Relaxed)
    );
    assert!(reads.load(Ordering::Relaxed) > 0);
}

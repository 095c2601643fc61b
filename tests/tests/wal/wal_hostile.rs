//! Hostile segment files crafted at the limits of their fields (I4): huge
//! segment sizes, epochs and LSNs near 2^64, a log start past the end. The
//! file WAL must answer with errors or a sane log, promptly, never a panic,
//! a hang or an unbounded allocation.

use std::path::Path;
use std::time::Duration;

use nori_wal::blocking::Wal;
use nori_wal::format::{EncodedFrame, EpochKey, SegmentHeader};
use nori_wal::fs::{File, Fs, OpenMode};
use nori_wal::{Error, FsyncPolicy, Record, RecoveryMode, WalConfig};
use nori_wal_tests::simfs::{FsFaults, SimFs};
use nori_wal_tests::walkit::try_read_all;

/// A directory holding one segment file `name` with `header` and `frames`.
fn crafted(name: &str, header: SegmentHeader, frames: &[EncodedFrame<'_>]) -> SimFs {
    let fs = SimFs::new(FsFaults::default());
    fs.create_dir_all(Path::new("/wal")).unwrap();
    let mut bytes = vec![0u8; 56];
    header.encode(&mut bytes).unwrap();
    for frame in frames {
        let at = bytes.len();
        bytes.resize(at + frame.len(), 0);
        frame.write_to(&mut bytes[at..]).unwrap();
    }
    let file = fs.open(&Path::new("/wal").join(name), OpenMode::CreateNew).unwrap();
    file.write_all_at(&bytes, 0).unwrap();
    file.sync_data().unwrap();
    fs.sync_dir(Path::new("/wal")).unwrap();
    fs
}

/// Runs `f` with a watchdog: a hang fails the test.
fn promptly(what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("{what}: no answer within 60 s"));
}

fn config(mode: RecoveryMode) -> WalConfig {
    WalConfig::new("/wal").segment_size(64 << 10).fsync(FsyncPolicy::Always).recovery(mode)
}

#[test]
fn a_header_claiming_a_terabyte_segment_in_a_small_file_opens_promptly() {
    promptly("1 TiB segment", || {
        let header = SegmentHeader::new(5, 0, 1 << 40, 1).unwrap();
        let key = EpochKey::new(5);
        let records = [Record::raw(b"a"), Record::raw(b"b")];
        let frames: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(i, r)| EncodedFrame::record(key, i as u32, r).unwrap())
            .collect();
        for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::Strict] {
            let fs = crafted(&format!("{:020}.wal", 0), header, &frames);
            let (wal, info) = Wal::open_in(fs, config(mode)).unwrap();
            assert_eq!(info.records, 2, "{mode:?}");
            assert_eq!(try_read_all(&wal).unwrap().len(), 2);
            wal.append(&Record::raw(b"c")).unwrap();
        }
    });
}

#[test]
fn epochs_and_lsns_at_their_limits_give_errors_not_panics() {
    promptly("limits", || {
        // The last epoch there is: the next segment cannot be started.
        let fs =
            crafted(&format!("{:020}.wal", 0), SegmentHeader::new(u64::MAX, 0, 64 << 10, 1).unwrap(), &[]);
        let (wal, _) = Wal::open_in(fs, config(RecoveryMode::TolerateTornTail)).unwrap();
        let mut errors = 0;
        for _ in 0..2000 {
            match wal.append(&Record::raw(&[7; 200])) {
                Ok(_) => {}
                Err(Error::Exhausted) => {
                    errors += 1;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(errors, 1, "rotating past the last epoch must fail cleanly");
        // LSNs next to 2^64.
        let base = u64::MAX - 3;
        let name = format!("{base:020}.wal");
        let header = SegmentHeader::new(9, base, 64 << 10, 1).unwrap().with_log_start(base).unwrap();
        let fs = crafted(&name, header, &[]);
        let (wal, _) = Wal::open_in(fs, config(RecoveryMode::TolerateTornTail)).unwrap();
        let mut appended = 0;
        loop {
            match wal.append(&Record::raw(b"x")) {
                Ok(_) => appended += 1,
                Err(Error::Exhausted) => break,
                Err(e) => panic!("{e}"),
            }
            assert!(appended < 10, "appended past 2^64");
        }
        assert!(wal.append_batch(&[Record::raw(b"y"), Record::raw(b"z")]).is_err());
    });
}

#[test]
fn hostile_frames_at_their_limits_are_refused() {
    promptly("hostile frames", || {
        let key = EpochKey::new(3);
        let header = SegmentHeader::new(3, 10, 64 << 10, 1).unwrap();
        let record = Record::raw(b"r");
        // A frame claiming an LSN offset at the top of its range, one whose
        // LSN is not the next, and a batch claiming more records than fit.
        let cases = [
            vec![EncodedFrame::record(key, u32::MAX, &record).unwrap()],
            vec![
                EncodedFrame::record(key, 0, &record).unwrap(),
                EncodedFrame::record(key, 5, &record).unwrap(),
            ],
        ];
        for (i, frames) in cases.iter().enumerate() {
            for mode in [
                RecoveryMode::TolerateTornTail,
                RecoveryMode::PointInTime,
                RecoveryMode::SkipDamaged,
                RecoveryMode::Strict,
            ] {
                let fs = crafted(&format!("{:020}.wal", 10), header, frames);
                match Wal::open_in(fs, config(mode)) {
                    Ok((wal, info)) => {
                        let got = try_read_all(&wal).unwrap_or_default();
                        assert!(
                            got.iter().all(|(lsn, _)| *lsn >= 10 && *lsn < 10 + 2),
                            "case {i} {mode:?}: {info:?}"
                        );
                        let _ = wal.append(&Record::raw(b"after"));
                    }
                    Err(e) => assert!(matches!(e, Error::Corrupt(_)), "case {i} {mode:?}: {e}"),
                }
            }
        }
    });
}

#[test]
fn segment_files_of_zeros_ff_garbage_or_a_torn_tail_never_panic() {
    promptly("filled files", || {
        let mut garbage = vec![0u8; 8192];
        let mut x = 0x9E37_79B9u32;
        for b in &mut garbage {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        // A real segment torn halfway through its first frame.
        let header = SegmentHeader::new(4, 0, 64 << 10, 1).unwrap();
        let record = Record::raw(b"a record that will be torn");
        let frame = EncodedFrame::record(EpochKey::new(4), 0, &record).unwrap();
        let mut torn = vec![0u8; 56 + frame.len()];
        header.encode(&mut torn).unwrap();
        frame.write_to(&mut torn[56..]).unwrap();
        torn.truncate(56 + frame.len() / 2);
        for (name, bytes) in
            [("zeros", vec![0u8; 8192]), ("0xFF", vec![0xFF; 8192]), ("garbage", garbage), ("torn", torn)]
        {
            for mode in [
                RecoveryMode::TolerateTornTail,
                RecoveryMode::PointInTime,
                RecoveryMode::SkipDamaged,
                RecoveryMode::Strict,
            ] {
                let fs = SimFs::new(FsFaults::default());
                fs.create_dir_all(Path::new("/wal")).unwrap();
                let file =
                    fs.open(&Path::new("/wal").join(format!("{:020}.wal", 0)), OpenMode::CreateNew).unwrap();
                file.write_all_at(&bytes, 0).unwrap();
                match Wal::open_in(fs, config(mode)) {
                    Ok((wal, info)) => {
                        // Nothing was ever appended whole: an empty log that goes on.
                        assert_eq!(info.records, 0, "{name} {mode:?}: {info:?}");
                        assert!(try_read_all(&wal).unwrap().is_empty(), "{name} {mode:?}");
                        wal.append(&Record::raw(b"after")).unwrap();
                    }
                    Err(e) => assert!(matches!(e, Error::Corrupt(_)), "{name} {mode:?}: {e}"),
                }
            }
        }
    });
}

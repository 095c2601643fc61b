//! Faults of the file WAL beyond crashes: bit flips in synced segments
//! (F6), latent sector errors (F7) and misdirected writes (F8). In every
//! case recovery reports the damage or cuts only what was not durable, and
//! no record is ever returned that was not appended at its LSN.

use std::path::{Path, PathBuf};

use nori_wal::blocking::Wal;
use nori_wal::fs::{File, Fs, OpenMode, read_exact_at};
use nori_wal::{Error, FsyncPolicy, Lsn, Record, RecoveryMode, WalConfig};
use nori_wal_tests::simfs::{FsFaults, SimFs};
use nori_wal_tests::walkit::try_read_all;

const DIR: &str = "/wal";
/// Records of the synced log: three segment files.
const RECORDS: u64 = 160;
const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateTornTail,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipDamaged,
    RecoveryMode::Strict,
];

fn config(mode: RecoveryMode) -> WalConfig {
    WalConfig::new(DIR).segment_size(4096).fsync(FsyncPolicy::Always).recovery(mode)
}

fn value(lsn: Lsn) -> Vec<u8> {
    format!("record {lsn} {}", "w".repeat(lsn as usize % 30)).into_bytes()
}

/// A synced log over three segment files; its files and their bytes.
fn synced_log(records: u64) -> Vec<(PathBuf, Vec<u8>)> {
    let fs = SimFs::new(FsFaults::default());
    {
        let (wal, _) = Wal::open_in(fs.clone(), config(RecoveryMode::Strict)).unwrap();
        for lsn in 0..records {
            wal.append(&Record::raw(&value(lsn))).unwrap();
        }
        assert!(wal.segment_count() >= 3);
    }
    let mut files = Vec::new();
    let mut names = fs.list(Path::new(DIR)).unwrap();
    names.sort();
    for name in names {
        let path = Path::new(DIR).join(name);
        let file = fs.open(&path, OpenMode::Read).unwrap();
        let mut bytes = vec![0u8; file.size().unwrap() as usize];
        read_exact_at(&file, &mut bytes, 0).unwrap();
        files.push((path, bytes));
    }
    files
}

fn fs_of(files: &[(PathBuf, Vec<u8>)], faults: FsFaults) -> SimFs {
    let fs = SimFs::new(FsFaults::default());
    fs.create_dir_all(Path::new(DIR)).unwrap();
    for (path, bytes) in files {
        let file = fs.open(path, OpenMode::CreateNew).unwrap();
        file.write_all_at(bytes, 0).unwrap();
        file.sync_data().unwrap();
    }
    fs.sync_dir(Path::new(DIR)).unwrap();
    fs.set_faults(faults);
    fs
}

/// Every record read back holds the value appended at its LSN, in order.
fn authentic(records: &[(Lsn, Vec<u8>)]) -> bool {
    records.windows(2).all(|w| w[0].0 < w[1].0) && records.iter().all(|(lsn, v)| *v == value(*lsn))
}

#[test]
fn every_sampled_bit_flip_in_synced_segments_is_reported_or_cut_never_returned() {
    let records = RECORDS;
    let files = synced_log(records);
    let (mut flips, mut refused, mut cut, mut kept) = (0u64, 0u64, 0u64, 0u64);
    for (f, (_, bytes)) in files.iter().enumerate() {
        // Every bit of every 5th byte, header included.
        for byte in (0..bytes.len()).step_by(5) {
            for bit in 0..8 {
                let mut damaged = files.clone();
                damaged[f].1[byte] ^= 1 << bit;
                flips += 1;
                for mode in MODES {
                    match Wal::open_in(fs_of(&damaged, FsFaults::default()), config(mode)) {
                        Ok((wal, info)) => {
                            let got = match try_read_all(&wal) {
                                Ok(got) => got,
                                Err(Error::Corrupt(_)) => continue,
                                Err(e) => panic!("flip {f}/{byte}/{bit} {mode:?}: {e}"),
                            };
                            assert!(authentic(&got), "flip {f}/{byte}/{bit} {mode:?}: a record not appended");
                            if mode == RecoveryMode::TolerateTornTail {
                                // Only a tail may go silently, and only the
                                // last records (nothing followed them).
                                let end = got.last().map_or(0, |r| r.0 + 1);
                                if end < records {
                                    assert!(
                                        info.torn_tail,
                                        "flip {f}/{byte}/{bit}: records lost silently: {info:?}"
                                    );
                                    cut += 1;
                                } else {
                                    kept += 1;
                                }
                            }
                        }
                        Err(Error::Corrupt(_)) => refused += 1,
                        Err(e) => panic!("flip {f}/{byte}/{bit} {mode:?}: unexpected error {e}"),
                    }
                }
            }
        }
    }
    println!(
        "file WAL bit flips (F6): {flips} flips x 4 modes; refused {refused}, tolerate cut a tail {cut} times, unaffected {kept}"
    );
    assert!(flips > 5000);
}

#[test]
fn a_latent_sector_error_is_an_error_never_the_end_of_the_log() {
    let files = synced_log(RECORDS);
    let total: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    let mut errors = 0;
    for bad in (0..files[0].1.len() as u64).step_by(97) {
        let fs = fs_of(&files, FsFaults { bad_byte: Some(bad), ..FsFaults::default() });
        match Wal::open_in(fs, config(RecoveryMode::TolerateTornTail)) {
            Err(Error::Io { .. }) => errors += 1,
            Ok((wal, _)) => {
                // The bad sector lay where recovery did not read: every
                // record is there, or reading reports the error.
                match try_read_all(&wal) {
                    Ok(got) => {
                        assert_eq!(got.len() as u64, RECORDS, "byte {bad}: a shorter log after a read error")
                    }
                    Err(e) => assert!(matches!(e, Error::Io { .. }), "{e}"),
                }
            }
            Err(e) => panic!("byte {bad}: {e}"),
        }
    }
    println!(
        "latent sector errors (F7): {errors} reopenings failed with an I/O error, none was taken for the end of the log ({total} bytes)"
    );
    assert!(errors > 0);
}

#[test]
fn a_misdirected_write_is_caught_by_the_frames_own_epoch_and_lsn() {
    let files = synced_log(RECORDS);
    // The first frames of the second segment land in the first segment.
    let mut damaged = files.clone();
    let from = damaged[1].1[56..156].to_vec();
    damaged[0].1[200..300].copy_from_slice(&from);
    // A frame of the first segment lands at its own place in the second.
    let again = damaged[0].1[56..156].to_vec();
    damaged[1].1[56..156].copy_from_slice(&again);
    for mode in MODES {
        match Wal::open_in(fs_of(&damaged, FsFaults::default()), config(mode)) {
            Ok((wal, info)) => {
                if let Ok(got) = try_read_all(&wal) {
                    assert!(authentic(&got), "{mode:?}: a misplaced frame was returned: {info:?}");
                }
            }
            Err(e) => assert!(matches!(e, Error::Corrupt(_)), "{mode:?}: {e}"),
        }
    }
}

//! A segment file is a ring slot: the file WAL's segment files hold the
//! bytes a ring log's segment of the same size holds, so each reads the
//! other's.

use nori_wal::blocking::Wal;
use nori_wal::format::Version;
use nori_wal::ring::{RingConfig, RingLog};
use nori_wal::{FsyncPolicy, Geometry, Lsn, RamDevice, Record, WalConfig};
use nori_wal_tests::walkit::{Scratch, read_all, segment_files};

const SEGMENT: u64 = 4096;

fn value(lsn: Lsn) -> Vec<u8> {
    format!("record {lsn} {}", "v".repeat(lsn as usize % 40)).into_bytes()
}

#[test]
fn a_ring_log_reads_a_segment_file() {
    let scratch = Scratch::new("format-file-to-ring");
    let (wal, _) =
        Wal::open(WalConfig::new(scratch.wal()).segment_size(SEGMENT).fsync(FsyncPolicy::Os)).unwrap();
    let mut n = 0;
    while wal.segment_count() < 2 {
        wal.append(&Record::raw(&value(n))).unwrap();
        n += 1;
        if n % 5 == 0 {
            wal.sync().unwrap(); // marks of the durable point, as on disk
        }
    }
    wal.close().unwrap();
    let first = std::fs::read(&segment_files(&scratch.wal())[0]).unwrap();
    assert_eq!(first.len() as u64, SEGMENT);
    // The file's bytes as slot 0 of a ring of byte-addressed medium.
    let mut image = first.clone();
    image.resize(2 * SEGMENT as usize, 0);
    let device = RamDevice::new(image, Geometry::block(1).unwrap()).unwrap();
    let mut buffer = [0u8; 512];
    let (mut log, info) = RingLog::open(device, RingConfig::new(SEGMENT), &mut buffer).unwrap();
    let mut read = [0u8; 1024];
    let mut iter = log.iter_from(0, &mut read).unwrap();
    let mut got = Vec::new();
    while let Some(entry) = iter.try_next().unwrap() {
        assert_eq!(entry.record, Record::raw(&value(entry.lsn)));
        got.push(entry.lsn);
    }
    assert!(!got.is_empty() && got.iter().enumerate().all(|(i, l)| *l == i as u64), "{info:?}");
    println!("a ring log read {} records from the first segment file", got.len());
}

/// A ring slot written in format v1 (a version 2 ring slot's header does
/// not record its segment's size, which a segment file's header must).
#[test]
fn the_file_wal_reads_a_ring_slot() {
    let mut device = RamDevice::new(vec![0u8; 4 * SEGMENT as usize], Geometry::block(1).unwrap()).unwrap();
    let mut buffer = [0u8; 512];
    {
        let config = RingConfig::new(SEGMENT).format(Version::V1);
        let (mut log, _) = RingLog::open(&mut device, config, &mut buffer).unwrap();
        for lsn in 0..20 {
            log.append(&Record::raw(&value(lsn))).unwrap();
            if lsn % 7 == 0 {
                log.sync().unwrap();
            }
        }
        log.sync().unwrap();
    }
    let slot = device.bytes()[..SEGMENT as usize].to_vec();
    let scratch = Scratch::new("format-ring-to-file");
    std::fs::create_dir_all(scratch.wal()).unwrap();
    std::fs::write(scratch.wal().join(format!("{:020}.wal", 0)), &slot).unwrap();
    let (wal, info) = Wal::open(WalConfig::new(scratch.wal()).segment_size(SEGMENT)).unwrap();
    let got = read_all(&wal);
    assert_eq!(got.len(), 20, "{info:?}");
    for (lsn, v) in got {
        assert_eq!(v, value(lsn));
    }
}

/// The format version of each segment file in `dir`, oldest first.
fn versions(dir: &std::path::Path) -> Vec<Version> {
    segment_files(dir)
        .iter()
        .map(|f| nori_wal::format::AnyHeader::decode(&std::fs::read(f).unwrap()).unwrap().version)
        .collect()
}

/// A log whose segments are of both versions, in any order: written in
/// version 1, continued in version 2, then in version 1 again (a rollback),
/// then in version 2. Every record reads back, and `Strict` recovery (which
/// checks every seal) finds nothing wrong.
#[test]
fn a_log_holds_segments_of_both_versions_in_any_order() {
    let scratch = Scratch::new("format-mixed");
    let dir = scratch.wal();
    let config = |version| WalConfig::new(&dir).segment_size(SEGMENT).fsync(FsyncPolicy::Os).format(version);
    let mut next = 0;
    for (round, version) in [Version::V1, Version::V2, Version::V1, Version::V2].into_iter().enumerate() {
        let (wal, info) = Wal::open(config(version).recovery(nori_wal::RecoveryMode::Strict)).unwrap();
        assert_eq!(info.records, next, "round {round}: {info:?}");
        // Past three rotations: the version written takes over from the
        // next segment on.
        let target = wal.segment_count() + 3;
        while wal.segment_count() < target {
            assert_eq!(wal.append(&Record::raw(&value(next))).unwrap(), next);
            next += 1;
        }
        wal.close().unwrap();
        assert_eq!(versions(&dir).last(), Some(&version), "round {round}");
    }
    let found = versions(&dir);
    assert!(found.windows(2).filter(|w| w[0] != w[1]).count() >= 3, "{found:?}");
    let (wal, info) = Wal::open(config(Version::V2).recovery(nori_wal::RecoveryMode::Strict)).unwrap();
    let got = read_all(&wal);
    assert_eq!(got.len() as u64, next, "{info:?}");
    assert!(got.iter().all(|(lsn, v)| *v == value(*lsn)));
}

/// A log whose version 1 segments took their epochs from a finer clock
/// (nanoseconds over 4, about 2^58: beyond version 2's 48-bit epochs) goes
/// on in version 2 with epochs from a fresh clock, and recovery takes the
/// change as in order.
#[test]
fn version_2_continues_a_log_whose_epochs_are_beyond_its_range() {
    use nori_wal::format::{EncodedFrame, EpochKey, Mark, SegmentHeader};
    let scratch = Scratch::new("format-epochs");
    let dir = scratch.wal();
    std::fs::create_dir_all(&dir).unwrap();
    let epoch = 1 << 58;
    let header = SegmentHeader::new(epoch, 0, SEGMENT, 1).unwrap();
    let mut bytes = vec![0u8; SEGMENT as usize];
    let mut at = header.encode(&mut bytes).unwrap();
    let key = EpochKey::new(epoch);
    let mark = Mark { durable_end: 0, log_start: 0 };
    at += EncodedFrame::mark(key, 0, mark).write_to(&mut bytes[at..]).unwrap();
    for lsn in 0..10 {
        let v = value(lsn);
        let record = Record::raw(&v);
        at += EncodedFrame::record(key, lsn as u32, &record).unwrap().write_to(&mut bytes[at..]).unwrap();
    }
    std::fs::write(dir.join(format!("{:020}.wal", 0)), &bytes).unwrap();
    let config = WalConfig::new(&dir).segment_size(SEGMENT).recovery(nori_wal::RecoveryMode::Strict);
    let mut next = 10;
    for _ in 0..2 {
        let (wal, info) = Wal::open(config.clone()).unwrap();
        assert_eq!(info.records, next, "{info:?}");
        let target = wal.segment_count() + 2;
        while wal.segment_count() < target {
            assert_eq!(wal.append(&Record::raw(&value(next))).unwrap(), next);
            next += 1;
        }
    }
    assert_eq!(versions(&dir)[0], Version::V1);
    assert!(versions(&dir)[1..].iter().all(|v| *v == Version::V2));
    let (wal, _) = Wal::open(config).unwrap();
    let got = read_all(&wal);
    assert_eq!(got.len() as u64, next);
    assert!(got.iter().all(|(lsn, v)| *v == value(*lsn)));
}

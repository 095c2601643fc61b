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

/// A ring slot written in format v1 (the file WAL writes and reads v1).
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

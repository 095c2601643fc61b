//! The ring log on a `RamDevice`: appends of 128-byte records per second and
//! recovery scan speed (format v2, the default, and v1), each against
//! `memcpy` of the same bytes.
//!
//! `cargo bench -p nori-wal-tests --bench ring` (add `-- --quick` for a
//! smoke run). Prints Markdown tables for BENCHMARKS.md.

use std::hint::black_box;

use nori_wal_core::format::{Version, v2};
use nori_wal_core::ring::{FullPolicy, RingConfig, RingLog};
use nori_wal_core::{Geometry, RamDevice, Record, crc, format};
use nori_wal_tests::bench::{Settings, measure, print_table};

const SEGMENT: u64 = 1 << 20;
const RECORDS_PER_CALL: u64 = 10_000;

fn main() {
    let settings = Settings::from_args();
    println!("CRC32C implementation: {:?}", crc::implementation());
    bench_appends(settings);
    for version in [Version::V2, Version::V1] {
        bench_recovery(settings, 128, version);
        bench_recovery(settings, 4096, version);
    }
}

/// The frame length of one record in `version`.
fn frame_len(record: &Record<'_>, version: Version) -> u64 {
    match version {
        Version::V1 => format::record_frame_len(record),
        _ => v2::EncodedFrame::record(record).unwrap().len() as u64,
    }
}

fn bench_appends(settings: Settings) {
    let geometry = Geometry::block(4096).unwrap();
    let payload = [0x5Au8; 128];
    let frame_len = frame_len(&Record::raw(&payload), Version::V2);
    let mut device = RamDevice::new(vec![0u8; 64 << 20], geometry).unwrap();
    let mut buffer = vec![0u8; 64 * 1024];
    let config = RingConfig::new(SEGMENT).when_full(FullPolicy::OverwriteOldest);
    let (mut log, _) = RingLog::open(&mut device, config, &mut buffer).unwrap();
    let bytes = RECORDS_PER_CALL * frame_len;
    let mut target = vec![0u8; bytes as usize];
    let baseline = measure("memcpy", settings, RECORDS_PER_CALL, bytes, || {
        for chunk in target.chunks_mut(frame_len as usize) {
            chunk[v2::FRAME_HEADER_LEN..].copy_from_slice(black_box(&payload));
        }
        black_box(&mut target);
    });
    let appends = measure("append (no sync)", settings, RECORDS_PER_CALL, bytes, || {
        for _ in 0..RECORDS_PER_CALL {
            black_box(log.append(&Record::raw(black_box(&payload))).unwrap());
        }
    });
    let synced = measure("append + sync every 100", settings, RECORDS_PER_CALL, bytes, || {
        for i in 0..RECORDS_PER_CALL {
            black_box(log.append(&Record::raw(black_box(&payload))).unwrap());
            if i % 100 == 99 {
                log.sync().unwrap();
            }
        }
    });
    print_table(
        &format!("Appends of 128-byte records ({frame_len}-byte frames), 4 KiB-sector RAM device"),
        &baseline,
        &[appends, synced],
    );
}

fn bench_recovery(settings: Settings, record_len: usize, version: Version) {
    let geometry = Geometry::block(4096).unwrap();
    let size = 64usize << 20;
    let mut device = RamDevice::new(vec![0u8; size], geometry).unwrap();
    let mut buffer = vec![0u8; 64 * 1024];
    let config = RingConfig::new(SEGMENT).format(version);
    let payload = vec![0xA5u8; record_len];
    let records = {
        let (mut log, _) = RingLog::open(&mut device, config, &mut buffer).unwrap();
        while log.append(&Record::raw(&payload)).is_ok() {}
        log.sync().unwrap();
        log.next_lsn()
    };
    let image = device.bytes().to_vec();
    let log_bytes = (records * frame_len(&Record::raw(&payload), version)) as f64;
    println!(
        "\nrecovery: {records} records, {:.1} MiB of frames on a {} MiB device",
        log_bytes / (1 << 20) as f64,
        size >> 20
    );
    let n = log_bytes as usize;
    let mut copy = vec![0u8; n];
    let baseline = measure("memcpy", settings, 1, n as u64, || {
        copy.copy_from_slice(black_box(&image[..n]));
        black_box(&mut copy);
    });
    let mut recovered = 0;
    let recover = measure("open (full recovery scan)", settings, 1, log_bytes as u64, || {
        let (_, info) = RingLog::open(&mut device, config, &mut buffer).unwrap();
        recovered = black_box(info.records);
    });
    assert_eq!(recovered, records);
    print_table(
        &format!("Recovery of a full 64 MiB ring ({record_len}-byte records, {version})"),
        &baseline,
        &[recover],
    );
}

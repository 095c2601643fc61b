//! A logger on a raw partition: a ring log on a block device (here an image
//! file standing for one; give a device path as the first argument to use a
//! real one — it must hold nothing, or the logger refuses it) that keeps the
//! newest lines, overwriting the oldest when full.

use nori_wal::ring::{FullPolicy, RingConfig, RingLog};
use nori_wal::{BlockDevice, Record};
use nori_wal_backends::raw::{RawDevice, RawOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scratch = std::env::temp_dir().join(format!("nori-wal-raw-logger-{}.img", std::process::id()));
    let path = match std::env::args().nth(1) {
        Some(path) => std::path::PathBuf::from(path),
        None => {
            let file = std::fs::File::create(&scratch)?;
            file.set_len(256 << 10)?; // 256 KiB: 16 segments of 16 KiB
            scratch.clone()
        }
    };
    // A new ring's epochs from the clock, as the file WAL and
    // `nori_wal::shared::SharedRing` take them: an earlier ring's blocks
    // left on the partition never check out as this one's. A ring already
    // there keeps its own.
    let config = RingConfig::new(16 << 10)
        .when_full(FullPolicy::OverwriteOldest)
        .first_epoch(nori_wal::shared::epoch_from_clock());
    let mut buffer = vec![0u8; 8192];
    let lines = 5000u64;
    {
        let device = RawDevice::open(&path, RawOptions::default())?;
        println!(
            "{}: {} bytes, {}-byte sectors",
            path.display(),
            device.capacity(),
            device.geometry().program_unit()
        );
        let (mut log, info) = RingLog::open(device, config, &mut buffer)?;
        println!("opened: {} records ({:?})", info.records, info.case);
        for i in 0..lines {
            let line = format!("2026-11-26T08:00:{:02}Z service=api request={i} status=200", i % 60);
            log.append(&Record::raw(line.as_bytes()))?;
            if i % 100 == 99 {
                log.sync()?;
            }
        }
        log.sync()?;
    }
    // Reopen: the newest lines are there; the oldest were overwritten.
    let device = RawDevice::open(&path, RawOptions::default())?;
    let (mut log, info) = RingLog::open(device, config, &mut buffer)?;
    let mut read = vec![0u8; 8192];
    let mut iter = log.iter_from(log.first_lsn(), &mut read)?;
    let mut last = None;
    let mut kept = 0u64;
    while let Some(entry) = iter.try_next()? {
        last = Some(entry.lsn);
        kept += 1;
    }
    assert_eq!(last, Some(lines - 1), "the newest line must survive");
    println!(
        "reopened: {kept} newest lines kept (LSNs {:?} to {:?}) of {lines} written",
        info.first_lsn, info.last_lsn
    );
    if path == scratch {
        std::fs::remove_file(&scratch)?;
    }
    Ok(())
}

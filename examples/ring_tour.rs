//! A ring log on simulated NOR flash in RAM: append and sync, a power cut
//! that tears the last write, recovery, and reading everything back.

use nori_wal::ring::{RingConfig, RingLog};
use nori_wal::{Geometry, RamDevice, Record};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // NOR flash: byte reads, 8-byte words programmed once, 4 KiB sectors.
    let geometry = Geometry::try_new(1, 8, 4096, Some(0xFF), false)?;
    let mut flash = RamDevice::new(vec![0xFFu8; 8 * 4096], geometry)?;
    let config = RingConfig::new(4096);
    let mut buffer = [0u8; 512];

    println!("== first boot");
    let durable_image = {
        let (mut log, info) = RingLog::open(&mut flash, config, &mut buffer)?;
        println!("opened: {:?}, {} segments of 4 KiB", info.case, log.segments());
        for i in 0..5 {
            let key = format!("user:{i}");
            let value = format!("user{i}@example.com");
            log.append(&Record::put(key.as_bytes(), value.as_bytes()))?;
        }
        log.append_batch(&[Record::delete(b"user:1"), Record::put(b"user:9", b"nine@example.com")])?;
        log.sync()?;
        println!("appended 7 records; durable up to LSN {:?}", log.durable_lsn());
        let image = log.device().bytes().to_vec();
        // More records: the write buffer fills and is programmed, but no sync
        // follows before the power goes.
        for i in 0..12 {
            log.append(&Record::raw(format!("sensor reading {i:02}: 21.{i} C").as_bytes()))?;
        }
        println!("appended 12 more, not synced (next LSN {})", log.next_lsn());
        image
    };

    // The power cut: the program in flight when the power went left its
    // second half erased.
    let bytes = flash.bytes_mut();
    let changed: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] != durable_image[i]).collect();
    if let (Some(&first), Some(&last)) = (changed.first(), changed.last()) {
        let middle = first + (last - first) / 2;
        bytes[middle..=last].fill(0xFF);
        println!(
            "\n== power cut: bytes {first}..{last} were being programmed; {middle}..{last} never made it"
        );
    }

    println!("\n== second boot");
    let (mut log, info) = RingLog::open(&mut flash, config, &mut buffer)?;
    println!(
        "recovered {} records (LSN {:?} to {:?}): {:?}, torn tail cut: {}, {} bytes discarded",
        info.records, info.first_lsn, info.last_lsn, info.case, info.torn_tail, info.bytes_discarded
    );
    let mut read = [0u8; 512];
    let mut iter = log.iter_from(log.first_lsn(), &mut read)?;
    while let Some(entry) = iter.try_next()? {
        println!("  LSN {:2}: {:?}", entry.lsn, entry.record);
    }
    let lsn = log.append(&Record::put(b"boot", b"2"))?;
    log.sync()?;
    println!("appended after recovery at LSN {lsn}; durable up to {:?}", log.durable_lsn());
    Ok(())
}

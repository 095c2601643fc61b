//! One format on every medium: the same records written through the RAM
//! device, the NOR flash adapter over the simulated flash, an
//! `embedded-io` stream, an image file and (in CI) a real loop block
//! device, each read back by the same reader; where the geometry is the
//! same, the bytes on the media are identical.

use nori_wal_backends::nor::NorFlashDevice;
use nori_wal_backends::raw::{RawDevice, RawOptions};
use nori_wal_backends::stream::StreamDevice;
use nori_wal_core::ring::{RingConfig, RingLog};
use nori_wal_core::{BlockDevice, DeviceError, Geometry, Lsn, RamDevice, Record};
use nori_wal_tests::media::{ImageFile, MemStream, loop_device};
use nori_wal_tests::nor::SimNorFlash;

const TMP: &str = env!("CARGO_TARGET_TMPDIR");

fn records() -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..300u32)
        .map(|i| (format!("key:{i}").into_bytes(), vec![(i % 251) as u8; (i as usize * 7) % 300]))
        .collect()
}

/// Writes the records (puts, some batched, syncs along the way).
fn write<D: BlockDevice>(device: D, segment: u64) -> D
where
    D::Error: DeviceError,
{
    let mut buffer = vec![0u8; 8192];
    let (mut log, _) = RingLog::open(device, RingConfig::new(segment), &mut buffer).unwrap();
    let records = records();
    let mut i = 0;
    while i < records.len() {
        if i % 5 == 0 && i + 3 <= records.len() {
            let batch: Vec<Record<'_>> = records[i..i + 3].iter().map(|(k, v)| Record::put(k, v)).collect();
            log.append_batch(&batch).unwrap();
            i += 3;
        } else {
            log.append(&Record::put(&records[i].0, &records[i].1)).unwrap();
            i += 1;
        }
        if i % 17 == 0 {
            log.sync().unwrap();
        }
    }
    log.sync().unwrap();
    log.into_device()
}

/// The one reader: reopens and reads everything back.
fn read<D: BlockDevice>(device: D, segment: u64) -> Vec<(Lsn, Vec<u8>, Vec<u8>)> {
    let mut buffer = vec![0u8; 8192];
    let (mut log, info) = RingLog::open(device, RingConfig::new(segment), &mut buffer).unwrap();
    assert!(info.corruption.is_none() && !info.torn_tail);
    let mut read = vec![0u8; 8192];
    let first = log.first_lsn();
    let mut iter = log.iter_from(first, &mut read).unwrap();
    let mut out = Vec::new();
    while let Some(entry) = iter.try_next().unwrap() {
        let (k, v) = (entry.record.key().unwrap().to_vec(), entry.record.value().unwrap().to_vec());
        out.push((entry.lsn, k, v));
    }
    out
}

fn expected() -> Vec<(Lsn, Vec<u8>, Vec<u8>)> {
    records().into_iter().enumerate().map(|(i, (k, v))| (i as Lsn, k, v)).collect()
}

#[test]
fn flash_media_hold_identical_bytes() {
    const SEGMENT: u64 = 16 * 1024;
    let size = 8 * SEGMENT as usize;
    let geometry = SimNorFlash::<1, 8, 4096>::geometry(0xFF);
    // RAM with a flash geometry.
    // RAM standing for NOR flash: writes durable in order, as the adapter says.
    let ram = write(RamDevice::new(vec![0xFF; size], geometry).unwrap().with_writes_in_order(true), SEGMENT);
    // The NOR flash adapter over the simulated flash (embedded-storage).
    let nor =
        write(NorFlashDevice::new(SimNorFlash::<1, 8, 4096>::erased(size, 0xFF), 0xFF).unwrap(), SEGMENT);
    assert!(ram.bytes() == nor.flash().image(), "RAM and NOR flash bytes differ");
    assert_eq!(read(ram, SEGMENT), expected());
    assert_eq!(read(nor, SEGMENT), expected());
}

#[test]
fn block_media_hold_identical_bytes() {
    const SEGMENT: u64 = 256 * 1024;
    let size = 8 * SEGMENT;
    let geometry = Geometry::block(4096).unwrap();
    let ram = write(RamDevice::new(vec![0u8; size as usize], geometry).unwrap(), SEGMENT);
    let stream =
        write(StreamDevice::new(MemStream::new(vec![0u8; size as usize]), geometry, size).unwrap(), SEGMENT);
    let image = ImageFile::new(TMP, "one-format", size);
    let file = write(RawDevice::open(&image.path, RawOptions::default()).unwrap(), SEGMENT);
    drop(file);
    let file_bytes = std::fs::read(&image.path).unwrap();
    let stream = stream.into_inner();
    assert!(ram.bytes() == stream.bytes(), "RAM and embedded-io stream bytes differ");
    assert!(ram.bytes() == &file_bytes[..], "RAM and image file bytes differ");
    assert_eq!(read(ram, SEGMENT), expected());
    let stream = StreamDevice::new(stream, geometry, size).unwrap();
    assert_eq!(read(stream, SEGMENT), expected());
    assert_eq!(read(RawDevice::open(&image.path, RawOptions::default()).unwrap(), SEGMENT), expected());
}

#[test]
fn a_real_block_device_holds_the_same_bytes() {
    let Some(path) = loop_device("a_real_block_device_holds_the_same_bytes") else { return };
    const SEGMENT: u64 = 256 * 1024;
    let device = RawDevice::open(&path, RawOptions::default().force(true)).unwrap();
    let (geometry, capacity) = (device.geometry(), device.capacity());
    // Start from zeros, like the RAM device.
    let mut device = device;
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < capacity {
        let n = (capacity - at).min(zeros.len() as u64) as usize;
        device.program(at, &zeros[..n]).unwrap();
        at += n as u64;
    }
    device.sync().unwrap();
    let device = write(device, SEGMENT);
    drop(device);
    let ram = write(RamDevice::new(vec![0u8; capacity as usize], geometry).unwrap(), SEGMENT);
    let on_disk = std::fs::read(&path).unwrap();
    assert!(ram.bytes() == &on_disk[..], "RAM and block device bytes differ");
    assert_eq!(read(RawDevice::open(&path, RawOptions::default().force(true)).unwrap(), SEGMENT), expected());
    println!(
        "{}: {capacity} bytes, {}-byte sectors, identical to RAM",
        path.display(),
        geometry.program_unit()
    );
}

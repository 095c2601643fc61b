//! Flash cost of the ring log (format v2, the default, and v1) against
//! sequential-storage's queue, on the same simulated NOR flash (program
//! units of 1 byte as on SPI NOR, 4 and 8 bytes; 4 KiB pages; 64 KiB), with
//! the same records, each made durable before the next (a push of
//! sequential-storage; an append and a sync of the ring log): bytes
//! programmed per payload byte, and erases per MiB of payload.
//!
//! `cargo bench -p nori-wal-tests --bench flash_cost`. Counts, not times: the
//! figures do not depend on the machine.

use embassy_futures::block_on;
use embedded_storage::nor_flash::{NorFlash as _, ReadNorFlash as _};
use nori_wal_backends::nor::NorFlashDevice;
use nori_wal_core::Record;
use nori_wal_core::format::Version;
use nori_wal_core::ring::{FullPolicy, RingConfig, RingLog};
use nori_wal_tests::nor::{SimNorError, SimNorFlash, Wear};
use sequential_storage::cache::Cache;
use sequential_storage::queue::{QueueConfig, QueueStorage};

type Flash<const W: usize> = SimNorFlash<1, W, 4096>;
const SIZE: usize = 16 * 4096;
/// Payload appended per run.
const PAYLOAD: usize = 4 << 20;

/// The simulated flash behind the async traits sequential-storage uses.
struct AsyncFlash<const W: usize>(Flash<W>);

impl<const W: usize> embedded_storage_async::nor_flash::ErrorType for AsyncFlash<W> {
    type Error = SimNorError;
}

impl<const W: usize> embedded_storage_async::nor_flash::ReadNorFlash for AsyncFlash<W> {
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimNorError> {
        self.0.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl<const W: usize> embedded_storage_async::nor_flash::NorFlash for AsyncFlash<W> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = 4096;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), SimNorError> {
        self.0.erase(from, to)
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimNorError> {
        self.0.write(offset, bytes)
    }
}

fn totals(wear: &[Wear]) -> (u64, u64) {
    wear.iter().fold((0, 0), |(p, e), w| (p + w.bytes_programmed, e + u64::from(w.erases)))
}

fn nori<const W: usize>(record: usize, version: Version) -> (u64, u64) {
    let device = NorFlashDevice::new(Flash::<W>::erased(SIZE, 0xFF), 0xFF).unwrap();
    let mut buffer = [0u8; 512];
    let config = RingConfig::new(4096).when_full(FullPolicy::OverwriteOldest).format(version);
    let (mut log, _) = RingLog::open(device, config, &mut buffer).unwrap();
    let payload = vec![0x5A; record];
    for _ in 0..PAYLOAD / record {
        log.append(&Record::raw(&payload)).unwrap();
        log.sync().unwrap();
    }
    totals(log.into_device().flash().wear())
}

/// The ring log with records appended in atomic batches of 8, each batch
/// made durable before the next: one frame header per batch.
fn nori_batched<const W: usize>(record: usize) -> (u64, u64) {
    let device = NorFlashDevice::new(Flash::<W>::erased(SIZE, 0xFF), 0xFF).unwrap();
    let mut buffer = [0u8; 512];
    let config = RingConfig::new(4096).when_full(FullPolicy::OverwriteOldest);
    let (mut log, _) = RingLog::open(device, config, &mut buffer).unwrap();
    let payload = vec![0x5A; record];
    let batch = [Record::raw(&payload); 8];
    for _ in 0..PAYLOAD / record / 8 {
        log.append_batch(&batch).unwrap();
        log.sync().unwrap();
    }
    totals(log.into_device().flash().wear())
}

fn sequential_storage<const W: usize>(record: usize) -> (u64, u64) {
    let flash = AsyncFlash(Flash::<W>::erased(SIZE, 0xFF));
    let config = QueueConfig::new(0..SIZE as u32);
    let mut queue = QueueStorage::new(flash, config, Cache::new_uncached());
    let payload = vec![0x5A; record];
    for _ in 0..PAYLOAD / record {
        block_on(queue.push(&payload, true)).unwrap();
    }
    let (flash, _) = queue.destroy();
    totals(flash.0.wear())
}

fn main() {
    println!("Same records, each durable before the next, on a 64 KiB NOR flash (4 KiB pages);");
    println!(
        "{} MiB of payload per run. Ideal erases per MiB programmed: {}.\n",
        PAYLOAD >> 20,
        (1 << 20) / 4096
    );
    println!(
        "| program unit | record | store | bytes programmed per payload byte | vs sequential-storage | erases per MiB of payload | erases per MiB programmed |"
    );
    println!("|---:|---:|---|---:|---:|---:|---:|");
    unit::<1>();
    unit::<4>();
    unit::<8>();
}

/// The rows of one program unit.
fn unit<const W: usize>() {
    for record in [16usize, 64, 256] {
        let baseline = sequential_storage::<W>(record);
        let mut runs = vec![
            ("nori-wal ring log, format v2 (default)", nori::<W>(record, Version::V2)),
            ("nori-wal ring log, format v1", nori::<W>(record, Version::V1)),
            ("sequential-storage queue", baseline),
        ];
        // Batches of 8 records of 256 bytes would not pack into 4 KiB pages.
        if record <= 64 {
            runs.push(("nori-wal v2, batches of 8 (durable per batch)", nori_batched::<W>(record)));
        }
        for (name, (programmed, erases)) in runs {
            let payload_mib = PAYLOAD as f64 / f64::from(1 << 20);
            let programmed_mib = programmed as f64 / f64::from(1 << 20);
            println!(
                "| {W} B | {record} B | {name} | {:.3} | {:.3}x | {:.1} | {:.1} |",
                programmed as f64 / PAYLOAD as f64,
                programmed as f64 / baseline.0 as f64,
                erases as f64 / payload_mib,
                erases as f64 / programmed_mib
            );
        }
    }
}

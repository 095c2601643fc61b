//! Flash cost of the ring log against sequential-storage's queue, on the
//! same simulated NOR flash (4-byte words, 4 KiB pages, 64 KiB), with the
//! same records, each made durable before the next (a push of
//! sequential-storage; an append and a sync of the ring log): bytes
//! programmed per payload byte, and erases per MiB of payload.
//!
//! `cargo bench -p nori-wal-tests --bench flash_cost`. Counts, not times: the
//! figures do not depend on the machine.

use embassy_futures::block_on;
use embedded_storage::nor_flash::{NorFlash as _, ReadNorFlash as _};
use nori_wal_backends::nor::NorFlashDevice;
use nori_wal_core::Record;
use nori_wal_core::ring::{FullPolicy, RingConfig, RingLog};
use nori_wal_tests::nor::{SimNorError, SimNorFlash, Wear};
use sequential_storage::cache::Cache;
use sequential_storage::queue::{QueueConfig, QueueStorage};

type Flash = SimNorFlash<1, 4, 4096>;
const SIZE: usize = 16 * 4096;
/// Payload appended per run.
const PAYLOAD: usize = 4 << 20;

/// The simulated flash behind the async traits sequential-storage uses.
struct AsyncFlash(Flash);

impl embedded_storage_async::nor_flash::ErrorType for AsyncFlash {
    type Error = SimNorError;
}

impl embedded_storage_async::nor_flash::ReadNorFlash for AsyncFlash {
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimNorError> {
        self.0.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl embedded_storage_async::nor_flash::NorFlash for AsyncFlash {
    const WRITE_SIZE: usize = 4;
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

fn nori(record: usize) -> (u64, u64) {
    let device = NorFlashDevice::new(Flash::erased(SIZE, 0xFF), 0xFF).unwrap();
    let mut buffer = [0u8; 512];
    let config = RingConfig::new(4096).when_full(FullPolicy::OverwriteOldest);
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
fn nori_batched(record: usize) -> (u64, u64) {
    let device = NorFlashDevice::new(Flash::erased(SIZE, 0xFF), 0xFF).unwrap();
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

fn sequential_storage(record: usize) -> (u64, u64) {
    let flash = AsyncFlash(Flash::erased(SIZE, 0xFF));
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
    println!(
        "Same records, each durable before the next, on a 64 KiB NOR flash (4-byte words, 4 KiB pages);"
    );
    println!(
        "{} MiB of payload per run. Ideal erases per MiB programmed: {}.\n",
        PAYLOAD >> 20,
        (1 << 20) / 4096
    );
    println!(
        "| record | store | bytes programmed per payload byte | erases per MiB of payload | erases per MiB programmed |"
    );
    println!("|---:|---|---:|---:|---:|");
    for record in [16usize, 64, 256] {
        let mut runs = vec![
            ("nori-wal ring log", nori(record)),
            ("sequential-storage queue", sequential_storage(record)),
        ];
        // Batches of 8 records of 256 bytes would not pack into 4 KiB pages.
        if record <= 64 {
            runs.push(("nori-wal, batches of 8 (durable per batch)", nori_batched(record)));
        }
        for (name, (programmed, erases)) in runs {
            let payload_mib = PAYLOAD as f64 / f64::from(1 << 20);
            let programmed_mib = programmed as f64 / f64::from(1 << 20);
            println!(
                "| {record} B | {name} | {:.3} | {:.1} | {:.1} |",
                programmed as f64 / PAYLOAD as f64,
                erases as f64 / payload_mib,
                erases as f64 / programmed_mib
            );
        }
    }
}

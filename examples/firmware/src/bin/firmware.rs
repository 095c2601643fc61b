//! The journal as a Cortex-M firmware (`#![no_std]`, `#![no_main]`): the
//! ring log on a NOR flash through `embedded-storage` and the
//! `nori-wal-backends` adapter, as on a board. The flash driver is a RAM
//! stand-in with an SPI NOR geometry, so that the image needs no board
//! support; the WAL code is the same as with a real driver.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use cortex_m_rt::entry;
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};
use nori_wal_backends::nor::{NorDeviceError, NorFlashDevice};
use nori_wal_core::ring::{Error, RingLog};
use nori_wal_firmware_example::{Event, SPI_NOR_FLASH, boot};

/// The flash driver: 16 KiB of RAM that programs like NOR (bits only go
/// from 1 to 0), in 32-byte words and 4 KiB sectors.
struct RamFlash([u8; 4 * 4096]);

impl ErrorType for RamFlash {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for RamFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let at = offset as usize;
        let from = self.0.get(at..at + bytes.len()).ok_or(NorFlashErrorKind::OutOfBounds)?;
        bytes.copy_from_slice(from);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.0.len()
    }
}

impl NorFlash for RamFlash {
    const WRITE_SIZE: usize = 32;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let sectors = self.0.get_mut(from as usize..to as usize).ok_or(NorFlashErrorKind::OutOfBounds)?;
        sectors.fill(0xFF);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let at = offset as usize;
        let to = self.0.get_mut(at..at + bytes.len()).ok_or(NorFlashErrorKind::OutOfBounds)?;
        for (cell, byte) in to.iter_mut().zip(bytes) {
            *cell &= byte;
        }
        Ok(())
    }
}

type Log = RingLog<'static, NorFlashDevice<&'static mut RamFlash>>;

// The log's own RAM on this target, besides the caller's buffers and the
// device handle: 236 bytes (checked at compile time to stay within 256).
const _: () =
    assert!(core::mem::size_of::<Log>() - core::mem::size_of::<NorFlashDevice<&mut RamFlash>>() <= 256);

#[entry]
fn main() -> ! {
    let mut flash = RamFlash([0xFF; 4 * 4096]);
    let mut buffer = [0u8; 1024];
    let mut read = [0u8; 1024];
    if let Ok(device) = NorFlashDevice::new(&mut flash, 0xFF) {
        let events = [Event { at_ms: 1, code: 0x10 }, Event { at_ms: 2, code: 0x11 }];
        let result: Result<_, Error<NorDeviceError<NorFlashErrorKind>>> =
            boot(device, SPI_NOR_FLASH, &mut buffer, &mut read, &events, |_| {});
        core::hint::black_box(&result);
    }
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

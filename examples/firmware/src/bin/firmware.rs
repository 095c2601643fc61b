//! The journal as a Cortex-M firmware (`#![no_std]`, `#![no_main]`). Its
//! flash is a RAM stand-in with an SPI NOR geometry, so that the image needs
//! no board support; the WAL code is the same as with a real driver.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use cortex_m_rt::entry;
use nori_wal_core::ring::RingLog;
use nori_wal_core::{AccessError, RamDevice};
use nori_wal_firmware_example::{Event, SPI_NOR_FLASH, boot};

// The log's own RAM on this target, besides the caller's buffers: 272 bytes
// with this device handle (checked at compile time to stay within 320).
const _: () = assert!(core::mem::size_of::<RingLog<'static, RamDevice<&'static mut [u8]>>>() <= 320);

#[entry]
fn main() -> ! {
    let mut flash = [0xFFu8; 4 * 4096];
    let mut buffer = [0u8; 1024];
    let mut read = [0u8; 1024];
    if let Ok(device) = RamDevice::new(&mut flash[..], SPI_NOR_FLASH) {
        let events = [Event { at_ms: 1, code: 0x10 }, Event { at_ms: 2, code: 0x11 }];
        let result: Result<_, nori_wal_core::ring::Error<AccessError>> =
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

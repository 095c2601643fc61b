//! The same firmware skeleton as `firmware`, without the journal: the
//! difference in size between the two is what the WAL costs.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use cortex_m_rt::entry;

#[entry]
fn main() -> ! {
    let mut flash = [0xFFu8; 4 * 4096];
    core::hint::black_box(&mut flash);
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

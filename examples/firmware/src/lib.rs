//! A firmware event journal: the ring log over a NOR flash region, with no
//! allocator and no `std`. The same code runs in the `firmware` binary (a
//! `#![no_main]` Cortex-M image, built for `thumbv7em-none-eabihf` in CI) and
//! on the host over the simulated flash, where its tests cut the power.
#![no_std]
#![forbid(unsafe_code)]

use nori_wal_core::ring::{Error, FullPolicy, RecoveryInfo, RingConfig, RingLog};
use nori_wal_core::{BlockDevice, Geometry, Lsn, Record};

/// The flash of an STM32H7 bank: read bytes, program 32-byte words once,
/// erase 128 KiB sectors.
pub const STM32H7_FLASH: Geometry = match Geometry::try_new(1, 32, 128 * 1024, Some(0xFF), false) {
    Ok(geometry) => geometry,
    Err(_) => panic!("invalid flash geometry"),
};

/// An SPI NOR flash: read bytes, program 32 bytes, erase 4 KiB sectors.
pub const SPI_NOR_FLASH: Geometry = match Geometry::try_new(1, 32, 4096, Some(0xFF), false) {
    Ok(geometry) => geometry,
    Err(_) => panic!("invalid flash geometry"),
};

/// The journal keeps the newest events: one erase unit per segment, the
/// oldest segment dropped when the flash is full.
#[must_use]
pub const fn config(geometry: Geometry) -> RingConfig {
    RingConfig::new(geometry.erase_unit() as u64).when_full(FullPolicy::OverwriteOldest)
}

/// An event the firmware logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Milliseconds since boot.
    pub at_ms: u32,
    /// What happened.
    pub code: u16,
}

impl Event {
    /// The event as 6 little-endian bytes.
    #[must_use]
    pub fn to_bytes(self) -> [u8; 6] {
        let mut out = [0u8; 6];
        out[..4].copy_from_slice(&self.at_ms.to_le_bytes());
        out[4..].copy_from_slice(&self.code.to_le_bytes());
        out
    }

    /// Parses 6 bytes written by [`Event::to_bytes`].
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; 6] = bytes.try_into().ok()?;
        let at_ms = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        Some(Self { at_ms, code: u16::from_le_bytes([bytes[4], bytes[5]]) })
    }
}

/// What a boot of the journal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boot {
    /// What recovery found.
    pub recovered: RecoveryInfo,
    /// The LSN after the last event logged and synced in this boot.
    pub next_lsn: Lsn,
    /// The last event read back.
    pub last: Option<Event>,
}

/// One boot: opens the journal on `flash` (recovering what a power cut
/// left), logs `events` with a sync after each (each is acknowledged when
/// its sync returns), and reads the journal back.
///
/// `buffer` is the log's write buffer and `read` its read buffer: 1 KiB each
/// is plenty for small events.
///
/// # Errors
///
/// Any error of the log (a power cut shows as a device error).
pub fn boot<D: BlockDevice>(
    flash: D,
    geometry: Geometry,
    buffer: &mut [u8],
    read: &mut [u8],
    events: &[Event],
    mut acknowledged: impl FnMut(Lsn),
) -> Result<Boot, Error<D::Error>> {
    let (mut journal, recovered) = RingLog::open(flash, config(geometry), buffer)?;
    for event in events {
        let lsn = journal.append(&Record::raw(&event.to_bytes()))?;
        journal.sync()?;
        acknowledged(lsn);
    }
    let next_lsn = journal.next_lsn();
    let first = journal.first_lsn();
    let mut last = None;
    let mut iter = journal.iter_from(first, read)?;
    while let Some(entry) = iter.try_next()? {
        last = entry.record.raw_payload().and_then(Event::from_bytes);
    }
    Ok(Boot { recovered, next_lsn, last })
}

#[cfg(test)]
mod tests {
    use nori_wal_core::RamDevice;

    use super::*;

    /// The fixed RAM the `ring` module docs promise on 64-bit targets; the
    /// firmware binary checks its own target at compile time.
    #[test]
    fn log_state_is_small_and_fixed() {
        let size = core::mem::size_of::<RingLog<'static, RamDevice<&'static mut [u8]>>>();
        let device = core::mem::size_of::<RamDevice<&'static mut [u8]>>();
        assert!(size - device <= 256, "{size}");
    }

    #[test]
    fn events_round_trip_through_a_reboot() {
        let mut flash = [0xFFu8; 4 * 4096];
        let (mut buffer, mut read) = ([0u8; 1024], [0u8; 1024]);
        let first = [Event { at_ms: 10, code: 1 }, Event { at_ms: 20, code: 7 }];
        let device = RamDevice::new(&mut flash[..], SPI_NOR_FLASH).unwrap();
        let booted = boot(device, SPI_NOR_FLASH, &mut buffer, &mut read, &first, |_| {}).unwrap();
        assert_eq!((booted.recovered.records, booted.last), (0, Some(first[1])));
        let device = RamDevice::new(&mut flash[..], SPI_NOR_FLASH).unwrap();
        let booted = boot(device, SPI_NOR_FLASH, &mut buffer, &mut read, &[], |_| {}).unwrap();
        assert_eq!((booted.recovered.records, booted.last), (2, Some(first[1])));
    }
}

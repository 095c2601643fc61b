//! A firmware event journal: the ring log over a flash region, with no
//! allocator and no `std`. CI builds this crate for `thumbv7em-none-eabihf`
//! to prove that the core's log is usable on a Cortex-M.
//!
//! The flash here is a [`RamDevice`] with the geometry of an STM32H7 bank
//! (32-byte program units written once, 128 KiB sectors); a real firmware
//! passes its `embedded-storage` flash driver through an adapter instead.
#![no_std]
#![forbid(unsafe_code)]

use nori_wal_core::ring::{Error, FullPolicy, RecoveryInfo, RingConfig, RingLog};
use nori_wal_core::{AccessError, Geometry, RamDevice, Record};

/// The flash geometry: read bytes, program 32-byte words once, erase 128 KiB.
pub const FLASH: Geometry = match Geometry::try_new(1, 32, 128 * 1024, Some(0xFF), false) {
    Ok(geometry) => geometry,
    Err(_) => panic!("invalid flash geometry"),
};

/// One 128 KiB sector per segment: the journal keeps the newest events.
pub const CONFIG: RingConfig = RingConfig::new(128 * 1024).when_full(FullPolicy::OverwriteOldest);

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

/// Opens the journal on `flash`, logs `events` durably, and returns the
/// recovery report and the last event read back.
///
/// # Errors
///
/// Any error of the log.
pub fn log_events(
    flash: &mut [u8],
    events: &[Event],
) -> Result<(RecoveryInfo, Option<Event>), Error<AccessError>> {
    let device = RamDevice::new(flash, FLASH).map_err(Error::Access)?;
    // 1 KiB of RAM for the log's buffer, 1 KiB for reading back.
    let mut buffer = [0u8; 1024];
    let (mut journal, info) = RingLog::open(device, CONFIG, &mut buffer)?;
    for event in events {
        journal.append(&Record::raw(&event.to_bytes()))?;
    }
    journal.sync()?;
    let mut last = None;
    let mut read = [0u8; 1024];
    let first = journal.first_lsn();
    let mut iter = journal.iter_from(first, &mut read)?;
    while let Some(entry) = iter.try_next()? {
        last = entry.record.raw_payload().and_then(Event::from_bytes);
    }
    Ok((info, last))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    /// The RAM the module docs of `ring` promise: the caller's buffers plus
    /// a fixed amount of state.
    #[test]
    fn log_state_is_small_and_fixed() {
        let size = core::mem::size_of::<RingLog<'static, RamDevice<&'static mut [u8]>>>();
        let device = core::mem::size_of::<RamDevice<&'static mut [u8]>>();
        std::println!("RingLog state: {} bytes (of which {device} the device handle)", size);
        assert!(size - device <= 200, "{size}");
    }

    #[test]
    fn journal_survives_a_reboot() {
        let mut flash = std::vec![0xFFu8; 4 * 128 * 1024];
        let boot1 = [Event { at_ms: 10, code: 1 }, Event { at_ms: 20, code: 7 }];
        let (info, last) = log_events(&mut flash, &boot1).unwrap();
        assert_eq!(info.records, 0);
        assert_eq!(last, Some(boot1[1]));
        // Reboot: the journal recovers both events and adds one.
        let (info, last) = log_events(&mut flash, &[Event { at_ms: 5, code: 2 }]).unwrap();
        assert_eq!(info.records, 2);
        assert_eq!(last, Some(Event { at_ms: 5, code: 2 }));
    }
}

//! The firmware journal's own code on the host, over the simulated flash
//! (through the embedded-storage adapter): the power is cut at every write
//! of a boot, at a byte inside it, and the next boot recovers every event
//! that was acknowledged.

use nori_wal_backends::nor::NorFlashDevice;
use nori_wal_core::Lsn;
use nori_wal_firmware_example::{Event, SPI_NOR_FLASH, boot};
use nori_wal_tests::nor::{PowerCut, SimNorFlash};

type Flash = SimNorFlash<1, 32, 4096>;
const SIZE: usize = 4 * 4096;

fn events(from: u32, n: u32) -> Vec<Event> {
    (from..from + n).map(|i| Event { at_ms: i * 10, code: (i % 7) as u16 }).collect()
}

#[test]
fn every_acknowledged_event_survives_a_power_cut() {
    let mut cuts = 0;
    // A first boot that writes a few events cleanly.
    let mut base = NorFlashDevice::new(Flash::erased(SIZE, 0xFF), 0xFF).unwrap();
    let (mut buffer, mut read) = ([0u8; 1024], [0u8; 1024]);
    boot(&mut base, SPI_NOR_FLASH, &mut buffer, &mut read, &events(0, 20), |_| {}).unwrap();
    let image = base.into_inner().image().to_vec();
    for op in 0..400 {
        for byte in [0, 5, 17, 31] {
            let flash =
                Flash::from_image(image.clone(), 0xFF).with_power_cut(PowerCut { op, byte }, op as u64);
            let mut device = NorFlashDevice::new(flash, 0xFF).unwrap();
            let mut acked: Option<Lsn> = None;
            let result = boot(&mut device, SPI_NOR_FLASH, &mut buffer, &mut read, &events(100, 200), |lsn| {
                acked = Some(lsn);
            });
            if result.is_ok() {
                // The cut came after the boot's last write.
                assert!(!device.flash().is_dead());
                continue;
            }
            assert!(device.flash().is_dead(), "op {op}: {result:?}");
            cuts += 1;
            // Next boot: recovery, then every acknowledged event is there.
            let image = device.into_inner().image().to_vec();
            let mut device = NorFlashDevice::new(Flash::from_image(image, 0xFF), 0xFF).unwrap();
            let next = boot(&mut device, SPI_NOR_FLASH, &mut buffer, &mut read, &[], |_| {})
                .unwrap_or_else(|e| panic!("op {op} byte {byte}: recovery failed: {e}"));
            assert!(next.recovered.corruption.is_none(), "op {op}: {:?}", next.recovered);
            let floor = acked.map_or(20, |lsn| lsn + 1);
            assert!(
                next.next_lsn >= floor,
                "op {op} byte {byte}: acknowledged up to {floor}, recovered {next:?}"
            );
            assert_eq!(device.flash().program_twice_attempts, 0);
        }
    }
    println!("{cuts} power cuts inside a boot of the firmware journal, every acknowledged event recovered");
    assert!(cuts > 500);
}

//! The adapters' own checks: alignment, bounds, program-once, short streams.

use nori_wal_backends::nor::{NorDeviceError, NorFlashDevice};
use nori_wal_backends::stream::{StreamDevice, StreamError};
use nori_wal_core::{BlockDevice, DeviceError, DeviceErrorKind, Geometry};
use nori_wal_tests::media::MemStream;
use nori_wal_tests::nor::{SimNorError, SimNorFlash};

type Flash = SimNorFlash<1, 8, 4096>;

#[test]
fn nor_adapter_never_programs_a_unit_twice_and_checks_every_call() {
    let mut device = NorFlashDevice::new(Flash::erased(2 * 4096, 0xFF), 0xFF).unwrap();
    assert_eq!(device.geometry(), Flash::geometry(0xFF));
    assert_eq!(device.capacity(), 8192);
    device.program(16, &[1; 8]).unwrap();
    // The adapter refuses before the flash sees it.
    let err = device.program(16, &[2; 8]).unwrap_err();
    assert_eq!(err, NorDeviceError::NotErased { offset: 16 });
    assert_eq!(err.kind(), DeviceErrorKind::NotErased);
    assert_eq!(device.flash().program_twice_attempts, 0);
    assert!(err.to_string().contains("not erased"));
    // Misaligned and out-of-bounds calls are errors, not panics.
    assert_eq!(device.program(3, &[0; 8]).unwrap_err().kind(), DeviceErrorKind::Misaligned);
    assert_eq!(device.program(8192, &[0; 8]).unwrap_err().kind(), DeviceErrorKind::OutOfBounds);
    assert_eq!(device.erase(100, 4096).unwrap_err().kind(), DeviceErrorKind::Misaligned);
    assert_eq!(device.read(8190, &mut [0; 4]).unwrap_err().kind(), DeviceErrorKind::OutOfBounds);
    // After an erase the unit can be programmed again.
    device.erase(0, 4096).unwrap();
    device.program(16, &[2; 8]).unwrap();
    let mut back = [0u8; 8];
    device.read(16, &mut back).unwrap();
    assert_eq!(back, [2; 8]);
    // Wear is counted per erase unit.
    let wear = device.flash().wear();
    assert_eq!((wear[0].erases, wear[0].programs, wear[1].erases), (1, 2, 0));
}

#[test]
fn nor_adapter_with_another_erase_value() {
    let mut device = NorFlashDevice::new(Flash::erased(4096, 0x00), 0x00).unwrap();
    device.program(0, &[0xAA; 8]).unwrap();
    assert!(matches!(device.program(0, &[0xAA; 8]), Err(NorDeviceError::NotErased { offset: 0 })));
    device.erase(0, 4096).unwrap();
    let mut back = [1u8; 8];
    device.read(0, &mut back).unwrap();
    assert_eq!(back, [0; 8]);
}

#[test]
fn nor_adapter_reports_flash_errors() {
    use nori_wal_tests::nor::PowerCut;
    let flash = Flash::erased(4096, 0xFF).with_power_cut(PowerCut { op: 0, byte: 3 }, 1);
    let mut device = NorFlashDevice::new(flash, 0xFF).unwrap();
    let err = device.program(0, &[0; 8]).unwrap_err();
    assert_eq!(err, NorDeviceError::Flash(SimNorError::PowerLost));
    assert_eq!(err.kind(), DeviceErrorKind::Io);
}

#[test]
fn stream_adapter_checks_calls_and_short_streams() {
    let geometry = Geometry::block(512).unwrap();
    // A flash geometry makes no sense for a stream.
    let flashy = Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap();
    assert!(StreamDevice::new(MemStream::new(vec![0; 4096]), flashy, 4096).is_err());
    assert!(StreamDevice::new(MemStream::new(vec![0; 4096]), geometry, 1000).is_err());
    // A stream shorter than the capacity claimed: a clear error on read.
    let mut device = StreamDevice::new(MemStream::new(vec![0; 1024]), geometry, 4096).unwrap();
    let err = device.read(2048, &mut [0; 512]).unwrap_err();
    assert!(
        matches!(err, StreamError::UnexpectedEof { offset: 2048 } | StreamError::ShortSeek { .. }),
        "{err}"
    );
    assert_eq!(err.kind(), DeviceErrorKind::OutOfBounds);
    assert_eq!(device.program(100, &[0; 512]).unwrap_err().kind(), DeviceErrorKind::Misaligned);
    assert_eq!(device.read(4096, &mut [0; 512]).unwrap_err().kind(), DeviceErrorKind::OutOfBounds);
    device.program(512, &[7; 512]).unwrap();
    device.sync().unwrap();
    let mut back = [0u8; 512];
    device.read(512, &mut back).unwrap();
    assert_eq!(back, [7; 512]);
    assert_eq!(device.into_inner().bytes()[512..1024], [7; 512]);
}

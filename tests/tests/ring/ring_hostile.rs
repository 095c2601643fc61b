//! Invariant I4 for the ring log: whatever bytes a device holds — garbage,
//! valid segments with hostile fields, mutations of a real log — opening,
//! recovering and iterating never panic, never loop without end, and
//! return only records that check.

use nori_wal_core::format::SegmentHeader;
use nori_wal_core::ring::{RecoveryMode, RingConfig, RingLog};
use nori_wal_core::{Geometry, RamDevice, Record, crc};
use proptest::prelude::*;

const SEGMENT: u64 = 1024;
const SLOTS: usize = 4;
const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateTornTail,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipDamaged,
    RecoveryMode::Strict,
];

fn geometry(flash: bool) -> Geometry {
    if flash {
        Geometry::try_new(1, 8, 1024, Some(0xFF), false).unwrap()
    } else {
        Geometry::try_new(1, 1, 1024, None, true).unwrap()
    }
}

/// Opens `image` in every mode and reads everything; panics are failures.
fn exercise(image: &[u8], flash: bool) {
    for mode in MODES {
        let mut device = RamDevice::new(image.to_vec(), geometry(flash)).unwrap();
        let mut buffer = [0u8; 512];
        let Ok((mut log, info)) =
            RingLog::open(&mut device, RingConfig::new(SEGMENT).recovery(mode), &mut buffer)
        else {
            continue;
        };
        assert!(info.records <= log.next_lsn().saturating_sub(log.first_lsn()) + 1);
        let mut read = [0u8; 1024];
        let first = log.first_lsn();
        if let Ok(mut iter) = log.iter_from(first, &mut read) {
            let mut n = 0u64;
            let mut last = None;
            while let Ok(Some(entry)) = iter.try_next() {
                if let Some(prev) = last {
                    assert!(entry.lsn > prev, "LSNs must increase");
                }
                last = Some(entry.lsn);
                n += 1;
                assert!(n <= 1 << 20, "iteration does not end");
            }
        }
        // Whatever was recovered, appending works or fails cleanly.
        let _ = log.append(&Record::raw(b"after"));
        let _ = log.sync();
    }
}

/// A real log image to mutate.
fn real_image(flash: bool) -> Vec<u8> {
    let fill = if flash { 0xFF } else { 0 };
    let mut device = RamDevice::new(vec![fill; SLOTS * SEGMENT as usize], geometry(flash)).unwrap();
    let mut buffer = [0u8; 512];
    {
        let (mut log, _) = RingLog::open(&mut device, RingConfig::new(SEGMENT), &mut buffer).unwrap();
        for i in 0..40u32 {
            let payload = i.to_le_bytes().repeat(1 + i as usize % 9);
            if i % 7 == 3 {
                log.append_batch(&[Record::raw(&payload), Record::delete(b"k")]).unwrap();
            } else {
                log.append(&Record::put(b"key", &payload)).unwrap();
            }
            if i % 4 == 0 {
                log.sync().unwrap();
            }
        }
        log.sync().unwrap();
    }
    device.into_inner()
}

/// A device that holds its bytes in memory but never lends them: the
/// reader then walks frame by frame through its window.
struct NoLending(RamDevice<Vec<u8>>);

impl nori_wal_core::BlockDevice for NoLending {
    type Error = <RamDevice<Vec<u8>> as nori_wal_core::BlockDevice>::Error;
    fn geometry(&self) -> Geometry {
        self.0.geometry()
    }
    fn capacity(&self) -> u64 {
        self.0.capacity()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.0.read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        self.0.program(offset, data)
    }
    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Self::Error> {
        self.0.erase(offset, len)
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        self.0.sync()
    }
    fn writes_persist_in_order(&self) -> bool {
        self.0.writes_persist_in_order()
    }
}

/// What opening `device` in `mode` gives: the recovery report and every
/// record read (or the refusal's text).
fn recovered<D: nori_wal_core::BlockDevice>(mut device: D, mode: RecoveryMode) -> String
where
    D::Error: core::fmt::Debug,
{
    let mut buffer = [0u8; 512];
    let (mut log, info) =
        match RingLog::open(&mut device, RingConfig::new(SEGMENT).recovery(mode), &mut buffer) {
            Ok(opened) => opened,
            Err(e) => return format!("refused: {e:?}"),
        };
    let mut read = [0u8; 1024];
    let first = log.first_lsn();
    let mut out = format!("{info:?}");
    if let Ok(mut iter) = log.iter_from(first, &mut read) {
        loop {
            match iter.try_next() {
                Ok(Some(entry)) => out += &format!(" {}:{:?}", entry.lsn, entry.record),
                Ok(None) => break,
                Err(e) => {
                    out += &format!(" error {e:?}");
                    break;
                }
            }
        }
    }
    out
}

/// A valid segment header with the given (possibly hostile) fields.
fn header(epoch: u64, base: u64, log_start: u64) -> Vec<u8> {
    let mut h = vec![0u8; 56];
    SegmentHeader::new(1, 0, SEGMENT, 8).unwrap().encode(&mut h).unwrap();
    h[16..24].copy_from_slice(&epoch.to_le_bytes());
    h[24..32].copy_from_slice(&base.to_le_bytes());
    h[32..40].copy_from_slice(&log_start.to_le_bytes());
    let c = crc::crc32c(&h[..52]);
    h[52..56].copy_from_slice(&c.to_le_bytes());
    h
}

proptest! {
    #![proptest_config(ProptestConfig { cases: nori_wal_tests::proptest_cases(256), ..ProptestConfig::default() })]

    #[test]
    fn garbage_images(bytes in proptest::collection::vec(any::<u8>(), SLOTS * SEGMENT as usize), flash in any::<bool>()) {
        exercise(&bytes, flash);
    }

    #[test]
    fn mutated_real_logs(flips in proptest::collection::vec((0..SLOTS * SEGMENT as usize, any::<u8>()), 1..40), flash in any::<bool>()) {
        let mut image = real_image(flash);
        for (at, x) in flips {
            image[at] ^= x | 1;
        }
        exercise(&image, flash);
    }

    /// With `std`, a reader walks frames it can borrow in place three at a
    /// time (their CRCs interleaved), and the others one by one: on the
    /// same damaged image both walks recover the same log, with the same
    /// report, in every mode.
    #[test]
    fn the_walk_in_place_and_the_walk_frame_by_frame_agree(
        flips in proptest::collection::vec((0..SLOTS * SEGMENT as usize, any::<u8>()), 0..12),
        flash in any::<bool>(),
    ) {
        let mut image = real_image(flash);
        for (at, x) in flips {
            image[at] ^= x | 1;
        }
        for mode in MODES {
            let lent = recovered(RamDevice::new(image.clone(), geometry(flash)).unwrap(), mode);
            let walked = recovered(NoLending(RamDevice::new(image.clone(), geometry(flash)).unwrap()), mode);
            prop_assert_eq!(lent, walked, "mode {:?}", mode);
        }
    }

    #[test]
    fn hostile_headers(
        fields in proptest::collection::vec((any::<u64>(), any::<u64>(), any::<u64>(), any::<bool>()), SLOTS),
        extreme in any::<bool>(),
    ) {
        // Valid-looking segment headers with arbitrary epochs and LSNs (near
        // the ends of the range when `extreme`), over a real log's frames.
        let mut image = real_image(true);
        for (slot, (epoch, base, start, keep)) in fields.into_iter().enumerate() {
            if keep {
                continue;
            }
            let (epoch, base, start) = if extreme {
                (u64::MAX - (epoch % 3), u64::MAX - (base % 5), u64::MAX - (start % 7))
            } else {
                (epoch, base, start)
            };
            let h = header(epoch.max(1), base, start.min(base));
            image[slot * SEGMENT as usize..slot * SEGMENT as usize + 56].copy_from_slice(&h);
        }
        exercise(&image, true);
    }
}

//! Injected faults on a running ring log: failed syncs (F11), failed and
//! short writes (F12), read errors and zeroed reads (F7), misdirected writes
//! (F8), and a full device (F13).

use nori_wal_core::ring::{Error, FullPolicy, RecoveryMode, RingConfig, RingLog};
use nori_wal_core::{Geometry, Lsn, Record};
use nori_wal_tests::crash::read_back_raw;
use nori_wal_tests::sim::{Faults, SimDevice, SimError};

const SEGMENT: u64 = 1024;

fn flash() -> Geometry {
    Geometry::try_new(1, 8, 1024, Some(0xFF), false).unwrap()
}

fn ram() -> Geometry {
    Geometry::try_new(1, 1, 1024, None, true).unwrap()
}

fn payload(lsn: Lsn) -> Vec<u8> {
    format!("record {lsn:04} with some bytes").into_bytes()
}

fn append(log: &mut RingLog<'_, &mut SimDevice>) -> Result<Lsn, Error<SimError>> {
    let lsn = log.next_lsn();
    log.append(&Record::raw(&payload(lsn)))
}

/// Reopens an image and returns the LSNs read back (each checked).
fn recovered(image: Vec<u8>, geometry: Geometry, mode: RecoveryMode) -> Result<Vec<Lsn>, Error<SimError>> {
    let device = SimDevice::new(image, geometry);
    read_back_raw(device, RingConfig::new(SEGMENT).recovery(mode), payload).map(|(_, lsns)| lsns)
}

#[test]
fn failed_sync_poisons_the_log_and_loses_nothing_acknowledged() {
    for failing in 1..6 {
        let mut device = SimDevice::blank(6 * SEGMENT as usize, flash())
            .with_faults(Faults { fail_sync: Some(failing), ..Faults::default() });
        let mut buffer = [0u8; 512];
        let mut acked = 0;
        {
            // Sync 0 is the one `open` does.
            let (mut log, _) = RingLog::open(&mut device, RingConfig::new(SEGMENT), &mut buffer).unwrap();
            loop {
                for _ in 0..3 {
                    append(&mut log).unwrap();
                }
                match log.sync() {
                    Ok(()) => acked = log.next_lsn(),
                    Err(Error::Device(SimError::Injected(_))) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(log.is_poisoned());
            assert_eq!(log.durable_lsn(), acked.checked_sub(1), "a failed sync acknowledged nothing");
            // The device would now report a sync as good; the log never asks.
            assert!(matches!(log.sync(), Err(Error::Poisoned)));
            assert!(matches!(append(&mut log), Err(Error::Poisoned)));
            assert!(matches!(log.truncate_before(0), Err(Error::Poisoned)));
        }
        let lsns = recovered(device.image().to_vec(), flash(), RecoveryMode::TolerateTornTail).unwrap();
        assert_eq!(lsns, (0..acked).collect::<Vec<_>>(), "sync #{failing}");
    }
}

#[test]
fn failed_write_poisons_the_log_and_the_half_write_is_cut() {
    for failing in 0..8 {
        let mut device = SimDevice::blank(6 * SEGMENT as usize, flash())
            .with_faults(Faults { fail_program: Some(failing), ..Faults::default() });
        let mut buffer = [0u8; 512];
        let mut acked = 0;
        {
            let (mut log, _) = RingLog::open(&mut device, RingConfig::new(SEGMENT), &mut buffer).unwrap();
            let error = loop {
                if let Err(e) = append(&mut log) {
                    break e;
                }
                match log.sync() {
                    Ok(()) => acked = log.next_lsn(),
                    Err(e) => break e,
                }
            };
            assert!(matches!(error, Error::Device(SimError::Injected(_))), "{error}");
            assert!(log.is_poisoned());
            assert!(matches!(append(&mut log), Err(Error::Poisoned)));
        }
        // The half-written unit is a torn tail: cut, nothing acknowledged lost.
        let lsns = recovered(device.image().to_vec(), flash(), RecoveryMode::TolerateTornTail).unwrap();
        assert!(lsns.len() as Lsn >= acked, "program #{failing}: lost acknowledged records");
        assert_eq!(lsns, (0..lsns.len() as Lsn).collect::<Vec<_>>());
    }
}

fn synced_image(geometry: Geometry, records: u64) -> Vec<u8> {
    let mut device = SimDevice::blank(6 * SEGMENT as usize, geometry);
    let mut buffer = [0u8; 512];
    {
        let (mut log, _) = RingLog::open(&mut device, RingConfig::new(SEGMENT), &mut buffer).unwrap();
        for _ in 0..records {
            append(&mut log).unwrap();
            log.sync().unwrap();
        }
    }
    device.image().to_vec()
}

#[test]
fn read_errors_are_errors_never_the_end_of_the_log() {
    let image = synced_image(flash(), 35);
    for (from, to) in [(0, 64), (100, 101), (SEGMENT + 300, SEGMENT + 400), (2 * SEGMENT, 2 * SEGMENT + 8)] {
        let mut device = SimDevice::new(image.clone(), flash())
            .with_faults(Faults { read_error: Some((from, to)), ..Faults::default() });
        let mut buffer = [0u8; 512];
        let result = RingLog::open(&mut device, RingConfig::new(SEGMENT), &mut buffer);
        assert!(matches!(result, Err(Error::Device(SimError::Injected(_)))), "read error at {from}..{to}");
    }
}

#[test]
fn zeroed_reads_inside_the_log_are_reported_not_taken_as_its_end() {
    let image = synced_image(flash(), 35);
    // Zeros over frames of the first (older, synced) segment.
    let mut device = SimDevice::new(image.clone(), flash())
        .with_faults(Faults { read_zeros: Some((300, 340)), ..Faults::default() });
    let mut buffer = [0u8; 512];
    let result = RingLog::open(&mut device, RingConfig::new(SEGMENT), &mut buffer);
    assert!(matches!(result, Err(Error::Corrupt(_))), "{result:?}");
}

#[test]
fn misdirected_write_is_caught_by_the_frames_own_lsn_and_epoch() {
    for delta in [-256i64, 128, SEGMENT as i64, 3 * SEGMENT as i64] {
        for nth in [3u64, 6, 9] {
            let mut device = SimDevice::blank(6 * SEGMENT as usize, ram())
                .with_faults(Faults { misdirect_program: Some((nth, delta)), ..Faults::default() });
            let mut buffer = [0u8; 512];
            {
                let (mut log, _) = RingLog::open(&mut device, RingConfig::new(SEGMENT), &mut buffer).unwrap();
                for _ in 0..40 {
                    append(&mut log).unwrap();
                    log.sync().unwrap();
                }
            }
            let image = device.image().to_vec();
            // Whatever each mode keeps, every record read back is exactly the
            // one appended at that LSN (checked in `recovered`), in order.
            for mode in [RecoveryMode::PointInTime, RecoveryMode::SkipDamaged] {
                let lsns = recovered(image.clone(), ram(), mode).unwrap();
                assert!(lsns.windows(2).all(|w| w[0] < w[1]));
            }
            // The default mode never silently drops the durable records the
            // misdirected write should have held.
            match recovered(image, ram(), RecoveryMode::TolerateTornTail) {
                Err(Error::Corrupt(c)) => println!("delta {delta} nth {nth}: reported {c}"),
                Ok(lsns) => assert_eq!(lsns, (0..40).collect::<Vec<_>>(), "delta {delta} nth {nth}"),
                Err(e) => panic!("{e}"),
            }
        }
    }
}

#[test]
fn full_device_is_an_error_that_loses_nothing_and_clears_after_reclaim() {
    let mut device = SimDevice::blank(4 * SEGMENT as usize, flash());
    let mut buffer = [0u8; 512];
    let (mut log, _) = RingLog::open(&mut device, RingConfig::new(SEGMENT), &mut buffer).unwrap();
    let full_at = loop {
        match append(&mut log) {
            Ok(_) => {}
            Err(Error::Full) => break log.next_lsn(),
            Err(e) => panic!("{e}"),
        }
    };
    assert!(!log.is_poisoned());
    assert!(matches!(append(&mut log), Err(Error::Full)));
    log.sync().unwrap();
    assert_eq!(log.durable_lsn(), Some(full_at - 1));
    // Reclaim half; appends work again.
    log.truncate_before(full_at / 2).unwrap();
    for _ in 0..5 {
        append(&mut log).unwrap();
    }
    log.sync().unwrap();
    let next = log.next_lsn();
    let _ = log.into_device();
    let lsns = recovered(device.image().to_vec(), flash(), RecoveryMode::Strict).unwrap();
    assert_eq!(*lsns.last().unwrap(), next - 1);
    assert!(lsns[0] <= full_at / 2 && lsns.windows(2).all(|w| w[1] == w[0] + 1));
}

#[test]
fn overwrite_oldest_keeps_the_newest_records() {
    let mut device = SimDevice::blank(4 * SEGMENT as usize, flash());
    let mut buffer = [0u8; 512];
    {
        let config = RingConfig::new(SEGMENT).when_full(FullPolicy::OverwriteOldest);
        let (mut log, _) = RingLog::open(&mut device, config, &mut buffer).unwrap();
        for _ in 0..500 {
            append(&mut log).unwrap();
        }
        log.sync().unwrap();
        assert!(log.first_lsn() > 300, "old records were overwritten");
    }
    let lsns = recovered(device.image().to_vec(), flash(), RecoveryMode::Strict).unwrap();
    assert_eq!(*lsns.last().unwrap(), 499);
    assert!(lsns.windows(2).all(|w| w[1] == w[0] + 1));
}

#[test]
fn bad_configurations_are_refused_with_a_reason() {
    let mut device = SimDevice::blank(4 * SEGMENT as usize, flash());
    let mut buffer = [0u8; 512];
    for (segment, expect) in [(1000, "multiple"), (SEGMENT * 4, "at least 2"), (SEGMENT * 3, "at least 2")] {
        let err = RingLog::open(&mut device, RingConfig::new(segment), &mut buffer).unwrap_err();
        assert!(err.to_string().contains(expect), "{err}");
    }
    let mut odd = [0u8; 100];
    let err = RingLog::open(&mut device, RingConfig::new(SEGMENT), &mut odd).unwrap_err();
    assert!(err.to_string().contains("buffer"), "{err}");
    // A device formatted with other segments.
    {
        let (mut log, _) = RingLog::open(&mut device, RingConfig::new(SEGMENT), &mut buffer).unwrap();
        append(&mut log).unwrap();
        log.sync().unwrap();
    }
    let err = RingLog::open(&mut device, RingConfig::new(2 * SEGMENT), &mut buffer).unwrap_err();
    assert!(err.to_string().contains("1024-byte segments"), "{err}");
}

#[test]
fn records_too_large_are_refused_and_nothing_is_lost() {
    let mut device = SimDevice::blank(4 * SEGMENT as usize, flash());
    let mut buffer = [0u8; 512];
    let (mut log, _) = RingLog::open(&mut device, RingConfig::new(SEGMENT), &mut buffer).unwrap();
    append(&mut log).unwrap();
    let big = vec![7u8; SEGMENT as usize];
    assert!(matches!(log.append(&Record::raw(&big)), Err(Error::RecordTooLarge { .. })));
    // The largest record that fits goes through a buffer smaller than itself.
    let max = vec![9u8; log.max_frame_len() as usize - 16];
    let lsn = log.append(&Record::raw(&max)).unwrap();
    log.sync().unwrap();
    let mut read = vec![0u8; 2048];
    let mut iter = log.iter_from(lsn, &mut read).unwrap();
    assert_eq!(iter.try_next().unwrap().unwrap().record, Record::raw(&max));
}

#[test]
fn a_buffer_larger_than_a_segment_works() {
    let mut device = SimDevice::blank(6 * SEGMENT as usize, flash());
    let mut buffer = vec![0u8; 64 * 1024];
    let mut last = 0;
    {
        let config = RingConfig::new(SEGMENT).when_full(FullPolicy::OverwriteOldest);
        let (mut log, _) = RingLog::open(&mut device, config, &mut buffer).unwrap();
        for i in 0..300 {
            last = append(&mut log).unwrap();
            if i % 7 == 0 {
                log.sync().unwrap();
            }
        }
        log.sync().unwrap();
    }
    assert_eq!(device.program_twice_attempts, 0);
    let lsns = recovered(device.image().to_vec(), flash(), RecoveryMode::Strict).unwrap();
    assert_eq!(*lsns.last().unwrap(), last);
    assert!(lsns.windows(2).all(|w| w[1] == w[0] + 1));
}

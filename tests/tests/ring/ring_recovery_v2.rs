//! The recovery cases format v2 adds, each under every mode: a ring on
//! flash whose segments open without a mark (the chain of segments says
//! where the log starts), a header without the frame of its program, a
//! slot erased inside the chain, seals that disagree with their frames or
//! were torn, and a ring opened with another segment size.

use nori_wal_core::format::{AnyHeader, EpochKey, Seal, Version, v2};
use nori_wal_core::ring::{
    ConfigError, Damage, Error, FullPolicy, RecoveryCase, RecoveryInfo, RecoveryMode, RingConfig, RingLog,
};
use nori_wal_core::{Lsn, RamDevice, Record};
use nori_wal_tests::crash::read_back_raw;

use super::ring_recovery::{MODES, SEGMENT, SLOTS, geometry};

fn payload(lsn: Lsn) -> Vec<u8> {
    format!("v2 record {lsn:04} ....................").into_bytes()
}

fn config() -> RingConfig {
    RingConfig::new(SEGMENT).format(Version::V2)
}

/// A v2 log on a device that keeps writes in order (no opening marks):
/// `f` runs on it; the image is returned.
fn build(f: impl FnOnce(&mut RingLog<'_, &mut RamDevice<Vec<u8>>>)) -> Vec<u8> {
    let mut device =
        RamDevice::new(vec![0xFF; SLOTS * SEGMENT as usize], geometry()).unwrap().with_writes_in_order(true);
    let mut buffer = [0u8; 512];
    {
        let (mut log, _) = RingLog::open(&mut device, config(), &mut buffer).unwrap();
        f(&mut log);
    }
    device.into_inner()
}

fn append(log: &mut RingLog<'_, &mut RamDevice<Vec<u8>>>, n: u64) {
    for _ in 0..n {
        let lsn = log.next_lsn();
        assert_eq!(log.append(&Record::raw(&payload(lsn))).unwrap(), lsn);
        log.sync().unwrap();
    }
}

type Opened = Result<(RecoveryInfo, Vec<Lsn>), Error<nori_wal_core::AccessError>>;

fn open(image: &[u8], mode: RecoveryMode) -> Opened {
    let device = RamDevice::new(image.to_vec(), geometry()).unwrap().with_writes_in_order(true);
    read_back_raw(device, config().recovery(mode), payload)
}

/// The slots holding a valid v2 header, oldest first by epoch.
fn segments(image: &[u8]) -> Vec<(usize, AnyHeader)> {
    let mut found: Vec<(usize, AnyHeader)> = image
        .chunks(SEGMENT as usize)
        .enumerate()
        .filter_map(|(slot, seg)| AnyHeader::decode_in(seg, SEGMENT).ok().map(|h| (slot, h)))
        .collect();
    found.sort_by_key(|(_, h)| h.epoch);
    found
}

/// Three segments and a few records in a fourth, every record synced.
fn four_segments() -> (Vec<u8>, Lsn) {
    let mut last = 0;
    let image = build(|log| {
        while segments_of(log) < 4 {
            append(log, 1);
        }
        append(log, 3);
        last = log.next_lsn() - 1;
    });
    assert_eq!(segments(&image).len(), 4);
    (image, last)
}

fn segments_of(log: &RingLog<'_, &mut RamDevice<Vec<u8>>>) -> usize {
    segments(log.device().bytes()).len()
}

#[test]
fn segments_open_without_a_mark_on_flash_and_the_log_reads_back_whole() {
    let (image, last) = four_segments();
    for (slot, h) in segments(&image) {
        // No mark first: the first frame is a record at the base LSN.
        let seg = &image[slot * SEGMENT as usize..];
        let frame =
            v2::decode_frame(&seg[h.frames_offset as usize..], &EpochKey::new(h.epoch), h.base_lsn).unwrap();
        assert!(frame.records().unwrap().count() == 1, "slot {slot}");
    }
    for mode in MODES {
        let (info, lsns) = open(&image, mode).unwrap();
        assert!(info.corruption.is_none(), "{mode:?}");
        assert_eq!(lsns, (0..=last).collect::<Vec<_>>(), "{mode:?}");
    }
}

#[test]
fn a_header_without_the_frame_of_its_program_is_no_segment() {
    // A crash tore the program that began the newest segment: its header
    // is whole, its first frame is not. Nothing of it was durable.
    let (image, _) = four_segments();
    let (slot, h) = *segments(&image).last().unwrap();
    let first = slot * SEGMENT as usize + h.frames_offset as usize;
    // The program cut inside the first frame: a prefix of it written, the
    // rest of the slot still erased.
    let mut torn = image.clone();
    torn[first + 12..(slot + 1) * SEGMENT as usize].fill(0xFF);
    for mode in MODES {
        let (info, lsns) = open(&torn, mode).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert!(info.corruption.is_none(), "{mode:?}: {info:?}");
        assert_eq!(lsns, (0..h.base_lsn).collect::<Vec<_>>(), "{mode:?}");
    }
    // The same first frame damaged with synced records after it: on a
    // device that keeps write order they were written after it, so it was
    // durable: a missing segment, never a crash.
    let mut damaged = image.clone();
    damaged[first + 10] ^= 0xFF;
    for mode in MODES {
        match open(&damaged, mode) {
            Err(Error::Corrupt(c)) => {
                assert!(matches!(mode, RecoveryMode::TolerateTornTail | RecoveryMode::Strict), "{mode:?}");
                assert_eq!(c.damage, Damage::MissingSegment, "{mode:?}");
            }
            Ok((info, lsns)) => {
                assert_eq!(info.case, RecoveryCase::MissingSegment, "{mode:?}");
                assert!(lsns.iter().all(|l| *l < h.base_lsn), "{mode:?}: records of the damaged segment");
            }
            Err(e) => panic!("{mode:?}: {e}"),
        }
    }
}

#[test]
fn a_slot_erased_inside_the_chain_is_a_missing_segment() {
    let (mut image, last) = four_segments();
    let chain = segments(&image);
    let (slot, h) = chain[1];
    image[slot * SEGMENT as usize..(slot + 1) * SEGMENT as usize].fill(0xFF);
    for mode in MODES {
        match (mode, open(&image, mode)) {
            (RecoveryMode::TolerateTornTail | RecoveryMode::Strict, Err(Error::Corrupt(c))) => {
                assert_eq!(c.damage, Damage::MissingSegment, "{mode:?}");
            }
            (RecoveryMode::PointInTime, Ok((info, lsns))) => {
                // The log before the gap.
                assert_eq!(info.case, RecoveryCase::MissingSegment, "{mode:?}");
                assert_eq!(lsns, (0..h.base_lsn).collect::<Vec<_>>(), "{mode:?}");
            }
            (RecoveryMode::SkipDamaged, Ok((info, lsns))) => {
                assert_eq!(info.case, RecoveryCase::MissingSegment, "{mode:?}");
                assert_eq!(lsns.last(), Some(&last), "{mode:?}");
                assert!(lsns.iter().all(|l| *l < h.base_lsn || *l >= chain[2].1.base_lsn), "{mode:?}");
            }
            (mode, other) => panic!("{mode:?}: {other:?}"),
        }
    }
}

#[test]
fn a_seal_that_disagrees_with_its_frames_is_damage_and_a_torn_one_only_in_strict() {
    let (image, last) = four_segments();
    let (slot, h) = segments(&image)[0];
    let seal_at = slot * SEGMENT as usize + h.frames_end(SEGMENT) as usize;
    let key = EpochKey::new(h.epoch);
    let frame = v2::decode_frame(&image[seal_at..seal_at + v2::SEAL_LEN], &key, h.base_lsn).unwrap();
    let nori_wal_core::format::Body::Seal(seal) = frame.body().unwrap() else { panic!("no seal") };
    assert_eq!(u64::from(seal.records), segments(&image)[1].1.base_lsn - h.base_lsn);
    // The wrong count under a CRC that holds: damage in every mode, and no
    // record lost with it.
    let mut wrong = image.clone();
    let bad = Seal { records: seal.records + 1, ..seal };
    v2::EncodedFrame::seal(bad).write_to(&mut wrong[seal_at..], &key, h.base_lsn).unwrap();
    for mode in MODES {
        match open(&wrong, mode) {
            Err(Error::Corrupt(c)) => {
                assert!(matches!(mode, RecoveryMode::TolerateTornTail | RecoveryMode::Strict), "{mode:?}");
                assert_eq!(c.offset, seal_at as u64, "{mode:?}");
            }
            Ok((info, lsns)) => {
                assert_eq!(info.case, RecoveryCase::DamagedSegment, "{mode:?}");
                let end =
                    if mode == RecoveryMode::PointInTime { segments(&image)[1].1.base_lsn - 1 } else { last };
                assert_eq!(lsns, (0..=end).collect::<Vec<_>>(), "{mode:?}");
            }
            Err(e) => panic!("{mode:?}: {e}"),
        }
    }
    // A torn seal: only Strict reports it; nothing is lost.
    let mut torn = image.clone();
    torn[seal_at + 12] ^= 0x08;
    for mode in MODES {
        match open(&torn, mode) {
            Err(Error::Corrupt(_)) => assert_eq!(mode, RecoveryMode::Strict),
            Ok((info, lsns)) => {
                assert_ne!(mode, RecoveryMode::Strict);
                assert!(info.corruption.is_none(), "{mode:?}");
                assert_eq!(lsns, (0..=last).collect::<Vec<_>>(), "{mode:?}");
            }
            Err(e) => panic!("{mode:?}: {e}"),
        }
    }
}

#[test]
fn a_ring_opened_with_another_segment_size_is_refused_naming_its_own() {
    let (image, _) = four_segments();
    for other in [SEGMENT / 2, SEGMENT * 2] {
        let mut device = RamDevice::new(image.clone(), geometry()).unwrap().with_writes_in_order(true);
        let mut buffer = [0u8; 512];
        let err = RingLog::open(&mut device, RingConfig::new(other), &mut buffer).unwrap_err();
        assert!(
            matches!(err, Error::Config(ConfigError::LayoutMismatch { found_segment_size: SEGMENT, .. })),
            "{other}: {err}"
        );
    }
}

#[test]
fn a_checkpoint_survives_rotations_without_opening_marks() {
    // After `truncate_before`, segments open with a mark for as long as the
    // chain before them reaches below the log's start; then the chain says
    // it again.
    let mut start = 0;
    let image = build(|log| {
        append(log, 20);
        start = log.next_lsn() - 5;
        log.truncate_before(start).unwrap();
        while segments_of(log) < 5 {
            append(log, 1);
        }
    });
    for mode in MODES {
        let (info, lsns) = open(&image, mode).unwrap();
        assert!(info.corruption.is_none(), "{mode:?}");
        assert_eq!(lsns.first(), Some(&start), "{mode:?}: the checkpoint came undone");
    }
    // Overwriting the oldest moves the start on without marks.
    let mut device =
        RamDevice::new(vec![0xFF; SLOTS * SEGMENT as usize], geometry()).unwrap().with_writes_in_order(true);
    let mut buffer = [0u8; 512];
    let config = config().when_full(FullPolicy::OverwriteOldest);
    let (first, next) = {
        let (mut log, _) = RingLog::open(&mut device, config, &mut buffer).unwrap();
        for _ in 0..2000 {
            let lsn = log.next_lsn();
            log.append(&Record::raw(&payload(lsn))).unwrap();
        }
        log.sync().unwrap();
        (log.first_lsn(), log.next_lsn())
    };
    assert!(first > 0, "the ring wrapped");
    let (info, lsns) = read_back_raw(device, config, payload).unwrap();
    assert!(info.corruption.is_none());
    assert_eq!(lsns, (first..next).collect::<Vec<_>>());
}

/// `RingConfig::first_epoch`: a new log's first segment takes it, a log
/// reopened keeps its own epochs, and an epoch the format cannot hold is
/// refused.
#[test]
fn a_new_log_starts_at_the_first_epoch_it_is_given() {
    let first = 1u64 << 40;
    let mut device =
        RamDevice::new(vec![0xFF; SLOTS * SEGMENT as usize], geometry()).unwrap().with_writes_in_order(true);
    let mut buffer = [0u8; 512];
    {
        let (mut log, _) = RingLog::open(&mut device, config().first_epoch(first), &mut buffer).unwrap();
        append(&mut log, 1);
        log.sync().unwrap();
    }
    let epochs = |device: &RamDevice<Vec<u8>>| -> Vec<u64> {
        segments(device.bytes()).into_iter().map(|(_, h)| h.epoch).collect()
    };
    assert_eq!(epochs(&device), [first], "the first segment takes the first epoch");
    // Reopened with another first epoch: not a new log, its epochs go on.
    {
        let (mut log, info) =
            RingLog::open(&mut device, config().first_epoch(first * 4), &mut buffer).unwrap();
        assert_eq!(info.records, 1);
        while segments_of(&log) < 2 {
            append(&mut log, 1);
        }
        log.sync().unwrap();
    }
    assert_eq!(epochs(&device), [first, first + 1], "a log's epochs go on from its own");
    for bad in [0, v2::MAX_EPOCH + 1] {
        let mut fresh = RamDevice::new(vec![0xFF; SLOTS * SEGMENT as usize], geometry()).unwrap();
        let err = RingLog::open(&mut fresh, config().first_epoch(bad), &mut buffer).unwrap_err();
        assert!(
            matches!(err, Error::Config(ConfigError::FirstEpoch { epoch, max: v2::MAX_EPOCH }) if epoch == bad),
            "{bad}: {err}"
        );
    }
    // Version 1 holds 64-bit epochs.
    let mut fresh = RamDevice::new(vec![0xFF; SLOTS * SEGMENT as usize], geometry()).unwrap();
    assert!(
        RingLog::open(&mut fresh, config().format(Version::V1).first_epoch(1 << 60), &mut buffer).is_ok()
    );
}

//! Every row of the ring log's recovery decision table, under every mode.

use nori_wal_core::format::{self, FrameKind, SegmentHeader, Version};
use nori_wal_core::ring::{Damage, Error, RecoveryCase, RecoveryInfo, RecoveryMode, RingConfig, RingLog};
use nori_wal_core::{Geometry, Lsn, RamDevice, Record};
use nori_wal_tests::crash::read_back_raw;

pub(crate) const SEGMENT: u64 = 2048;
pub(crate) const SLOTS: usize = 6;
/// Every recovery mode (the v2 cases use the same).
pub(crate) const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateTornTail,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipDamaged,
    RecoveryMode::Strict,
];

/// NOR flash geometry: 8-byte program units, 1 KiB erase units, erased to
/// 0xFF.
pub(crate) fn geometry() -> Geometry {
    Geometry::try_new(1, 8, 1024, Some(0xFF), false).unwrap()
}

fn payload(lsn: Lsn) -> Vec<u8> {
    format!("record {lsn:04} ........................").into_bytes()
}

/// Runs `f` on a log over a fresh flash image; returns the image.
fn build(f: impl FnOnce(&mut RingLog<'_, &mut RamDevice<Vec<u8>>>)) -> Vec<u8> {
    build_on(false, f)
}

/// [`build`] on a device that keeps writes in order (NOR flash) or not.
fn build_on(in_order: bool, f: impl FnOnce(&mut RingLog<'_, &mut RamDevice<Vec<u8>>>)) -> Vec<u8> {
    let mut device = RamDevice::new(vec![0xFF; SLOTS * SEGMENT as usize], geometry())
        .unwrap()
        .with_writes_in_order(in_order);
    let mut buffer = [0u8; 512];
    {
        let (mut log, _) =
            RingLog::open(&mut device, RingConfig::new(SEGMENT).format(Version::V1), &mut buffer).unwrap();
        f(&mut log);
    }
    device.into_inner()
}

fn append(log: &mut RingLog<'_, &mut RamDevice<Vec<u8>>>, n: u64) {
    for _ in 0..n {
        let lsn = log.next_lsn();
        assert_eq!(log.append(&Record::raw(&payload(lsn))).unwrap(), lsn);
    }
}

type OpenError = Error<nori_wal_core::AccessError>;
type Opened = Result<(RecoveryInfo, Vec<Lsn>), OpenError>;

/// Opens `image` in `mode`; on success, reads every record back, checking
/// each against what was appended at its LSN.
fn open(image: &[u8], mode: RecoveryMode) -> Opened {
    let device = RamDevice::new(image.to_vec(), geometry()).unwrap();
    read_back_raw(device, RingConfig::new(SEGMENT).format(Version::V1).recovery(mode), payload)
}

/// Opens `image` in `mode` on a device that keeps writes in order or not:
/// the next LSN and what recovery found.
fn open_on(in_order: bool, image: &[u8], mode: RecoveryMode) -> Result<(Lsn, RecoveryInfo), OpenError> {
    let mut buffer = [0u8; 512];
    let mut device = RamDevice::new(image.to_vec(), geometry()).unwrap().with_writes_in_order(in_order);
    let config = RingConfig::new(SEGMENT).format(Version::V1).recovery(mode);
    RingLog::open(&mut device, config, &mut buffer).map(|(log, info)| (log.next_lsn(), info))
}

/// The frames of the segment in `slot`: (offset, first LSN, kind).
fn frames(image: &[u8], slot: usize) -> Vec<(usize, Lsn, FrameKind)> {
    let seg = &image[slot * SEGMENT as usize..(slot + 1) * SEGMENT as usize];
    let header = SegmentHeader::decode(seg).unwrap();
    let mut pos = header.frames_offset() as usize;
    let mut out = Vec::new();
    while let Ok(frame) = format::decode_frame(&seg[pos..], header.epoch) {
        let lsn = header.base_lsn + u64::from(frame.header().lsn_offset());
        out.push((slot * SEGMENT as usize + pos, lsn, frame.header().kind()));
        pos += frame.len();
    }
    out
}

/// Offset of the frame holding `lsn` in `slot`.
fn frame_of(image: &[u8], slot: usize, lsn: Lsn) -> usize {
    frames(image, slot).into_iter().find(|&(_, l, k)| l == lsn && k == FrameKind::Raw).unwrap().0
}

fn range(from: Lsn, to: Lsn) -> Vec<Lsn> {
    (from..to).collect()
}

fn corrupt_err(result: &Opened) -> Damage {
    match result {
        Err(Error::Corrupt(c)) => c.damage,
        other => panic!("expected a corruption error, got {other:?}"),
    }
}

#[test]
fn empty() {
    let image = vec![0xFF; SLOTS * SEGMENT as usize];
    for mode in MODES {
        let (info, lsns) = open(&image, mode).unwrap();
        assert_eq!((info.case, info.records, lsns.len()), (RecoveryCase::Empty, 0, 0));
    }
}

#[test]
fn clean() {
    let image = build(|log| {
        append(log, 10);
        log.sync().unwrap();
    });
    for mode in MODES {
        let (info, lsns) = open(&image, mode).unwrap();
        assert_eq!(info.case, RecoveryCase::Clean, "{mode:?}");
        assert!(!info.torn_tail && info.corruption.is_none());
        assert_eq!((info.records, info.first_lsn, info.last_lsn), (10, Some(0), Some(9)));
        assert_eq!(lsns, range(0, 10));
    }
}

#[test]
fn torn_tail() {
    let mut image = build(|log| {
        append(log, 10);
        log.sync().unwrap();
        append(log, 1);
        log.sync().unwrap();
    });
    // The last frame lost its second half to erased bytes.
    let at = frame_of(&image, 0, 10);
    image[at + 20..at + 56].fill(0xFF);
    for mode in MODES {
        let result = open(&image, mode);
        if mode == RecoveryMode::Strict {
            assert!(matches!(corrupt_err(&result), Damage::Frame(_)));
            continue;
        }
        let (info, lsns) = result.unwrap();
        assert_eq!(info.case, RecoveryCase::TornTail, "{mode:?}");
        assert!(info.torn_tail && info.corruption.is_none() && info.bytes_discarded > 0);
        assert_eq!(lsns, range(0, 10));
    }
}

#[test]
fn in_flight() {
    // 10 durable records, then three more whose first frame is lost while
    // the next two reached the medium (writes persisted out of order).
    let mut image = build(|log| {
        append(log, 10);
        log.sync().unwrap();
        append(log, 3);
        log.sync().unwrap();
    });
    let at = frame_of(&image, 0, 10);
    image[at + 3] ^= 0x10;
    for mode in MODES {
        let result = open(&image, mode);
        if mode == RecoveryMode::Strict {
            corrupt_err(&result);
            continue;
        }
        let (info, lsns) = result.unwrap();
        assert_eq!(info.case, RecoveryCase::InFlight, "{mode:?}");
        assert!(info.torn_tail && info.corruption.is_none());
        assert_eq!(lsns, range(0, 10));
    }
}

/// On a device whose writes are durable in order (NOR flash), a valid frame
/// after damage proves the damaged bytes had been written: the same image
/// as `in_flight` is durable damage there, with no mark needed.
#[test]
fn valid_frames_after_damage_on_an_in_order_device_are_durable_damage() {
    let mut image = build_on(true, |log| {
        append(log, 10);
        log.sync().unwrap();
        append(log, 3);
        log.sync().unwrap();
    });
    let at = frame_of(&image, 0, 10);
    image[at + 3] ^= 0x10;
    for mode in MODES {
        match (open_on(true, &image, mode), mode) {
            (Err(Error::Corrupt(c)), RecoveryMode::TolerateTornTail | RecoveryMode::Strict) => {
                assert_eq!(c.lsn, 10)
            }
            (Ok((next, info)), RecoveryMode::PointInTime) => {
                assert_eq!((info.case, next), (RecoveryCase::DurableDamage, 10));
            }
            (Ok((next, info)), RecoveryMode::SkipDamaged) => {
                assert_eq!((info.case, info.records_lost, next), (RecoveryCase::DurableDamage, 1, 13));
            }
            (other, mode) => panic!("{mode:?}: {other:?}"),
        }
    }
}

/// On an in-order device, damage to the last record followed only by the
/// padding of its sync: durable damage with nothing to skip to, so every
/// mode that goes on ends the log there and counts the record lost.
#[test]
fn durable_damage_followed_only_by_padding_on_an_in_order_device() {
    let mut image = build_on(true, |log| {
        append(log, 11);
        log.sync().unwrap();
    });
    let kinds: Vec<FrameKind> = frames(&image, 0).iter().map(|f| f.2).collect();
    assert_eq!(kinds.last(), Some(&FrameKind::Padding), "{kinds:?}");
    let at = frame_of(&image, 0, 10);
    image[at + 20] ^= 0x04;
    for mode in MODES {
        match (open_on(true, &image, mode), mode) {
            (Err(Error::Corrupt(c)), RecoveryMode::TolerateTornTail | RecoveryMode::Strict) => {
                assert_eq!(c.lsn, 10, "{mode:?}");
            }
            (Ok((next, info)), RecoveryMode::PointInTime | RecoveryMode::SkipDamaged) => {
                assert_eq!((info.case, info.records_lost, next), (RecoveryCase::DurableDamage, 1, 10));
            }
            (other, mode) => panic!("{mode:?}: {other:?}"),
        }
    }
}

#[test]
fn durable_damage_in_the_newest_segment() {
    // A mark written after the sync of records 0..15 says they were durable.
    let mut image = build(|log| {
        append(log, 10);
        log.sync().unwrap();
        append(log, 5);
        log.sync().unwrap();
        append(log, 1);
        log.sync().unwrap();
    });
    let at = frame_of(&image, 0, 12);
    image[at + 30] ^= 0x01;
    for mode in MODES {
        let result = open(&image, mode);
        match mode {
            RecoveryMode::TolerateTornTail | RecoveryMode::Strict => {
                assert!(matches!(corrupt_err(&result), Damage::Frame(_)), "{mode:?}");
            }
            RecoveryMode::PointInTime => {
                let (info, lsns) = result.unwrap();
                assert_eq!(info.case, RecoveryCase::DurableDamage);
                assert_eq!(info.corruption.unwrap().lsn, 12);
                assert_eq!(lsns, range(0, 12));
            }
            _ => {
                let (info, lsns) = result.unwrap();
                assert_eq!(info.case, RecoveryCase::DurableDamage);
                assert_eq!(info.records_lost, 1);
                let mut expected = range(0, 12);
                expected.extend(13..16);
                assert_eq!(lsns, expected);
            }
        }
    }
}

/// Appends and syncs records one at a time until at least `segments`
/// segments are in use; returns the image and each segment's base LSN.
fn filled(segments: usize) -> (Vec<u8>, Vec<Lsn>) {
    let image = build(|log| {
        let mut n = 0;
        loop {
            append(log, 1);
            log.sync().unwrap();
            n += 1;
            if n > 12 * (segments + 2) {
                break;
            }
        }
    });
    let bases: Vec<Lsn> = (0..SLOTS)
        .filter_map(|slot| SegmentHeader::decode(&image[slot * SEGMENT as usize..]).ok().map(|h| h.base_lsn))
        .collect();
    assert!(bases.len() >= segments, "only {} segments", bases.len());
    (image, bases)
}

#[test]
fn damaged_older_segment() {
    let (mut image, bases) = filled(3);
    let next = open(&image, RecoveryMode::Strict).unwrap().1.len() as Lsn;
    let victim = bases[0] + 3;
    let at = frame_of(&image, 0, victim);
    image[at + 25] ^= 0x80;
    for mode in MODES {
        let result = open(&image, mode);
        match mode {
            RecoveryMode::TolerateTornTail | RecoveryMode::Strict => {
                let err = corrupt_err(&result);
                assert!(matches!(err, Damage::Frame(_)), "{mode:?}");
            }
            RecoveryMode::PointInTime => {
                let (info, lsns) = result.unwrap();
                assert_eq!(info.case, RecoveryCase::DamagedSegment);
                assert_eq!(lsns, range(0, victim));
                assert_eq!(info.records, victim);
            }
            _ => {
                let (info, lsns) = result.unwrap();
                assert_eq!(info.case, RecoveryCase::DamagedSegment);
                assert_eq!(info.records_lost, 1);
                let mut expected = range(0, victim);
                expected.extend(victim + 1..next);
                assert_eq!(lsns, expected);
            }
        }
    }
}

#[test]
fn missing_middle_segment() {
    let (mut image, bases) = filled(3);
    let next = open(&image, RecoveryMode::Strict).unwrap().1.len() as Lsn;
    // Destroy the header of the second segment.
    image[SEGMENT as usize + 20] ^= 0x04;
    for mode in MODES {
        let result = open(&image, mode);
        match mode {
            RecoveryMode::TolerateTornTail | RecoveryMode::Strict => {
                assert_eq!(corrupt_err(&result), Damage::MissingSegment, "{mode:?}");
            }
            RecoveryMode::PointInTime => {
                let (info, lsns) = result.unwrap();
                assert_eq!(info.case, RecoveryCase::MissingSegment);
                assert_eq!(lsns, range(0, bases[1]), "the log before the gap");
            }
            _ => {
                let (info, lsns) = result.unwrap();
                assert_eq!(info.case, RecoveryCase::MissingSegment);
                assert_eq!(lsns, range(bases[2], next), "the log after the gap");
                assert_eq!(info.records_lost, bases[2]);
            }
        }
    }
}

#[test]
fn damaged_header_of_the_newest_segment() {
    let (mut image, bases) = filled(3);
    let newest = bases.len() - 1;
    image[newest * SEGMENT as usize + 17] ^= 0x20;
    for mode in MODES {
        let result = open(&image, mode);
        match mode {
            RecoveryMode::TolerateTornTail | RecoveryMode::Strict => {
                assert_eq!(corrupt_err(&result), Damage::MissingSegment, "{mode:?}");
            }
            _ => {
                let (info, lsns) = result.unwrap();
                assert_eq!(info.case, RecoveryCase::MissingSegment, "{mode:?}");
                assert_eq!(lsns, range(0, bases[newest]));
            }
        }
    }
}

#[test]
fn newer_format_version_is_refused_in_every_mode() {
    let mut image = build(|log| {
        append(log, 3);
        log.sync().unwrap();
    });
    // A v2 header with a valid checksum.
    image[8] = 2;
    let crc = nori_wal_core::crc::crc32c(&image[..52]);
    image[52..56].copy_from_slice(&crc.to_le_bytes());
    for mode in MODES {
        assert!(matches!(open(&image, mode), Err(Error::UnsupportedVersion { found: 2 })), "{mode:?}");
    }
}

#[test]
fn recovery_twice_gives_the_same_result_in_every_mode() {
    let (mut image, _) = filled(3);
    let at = frame_of(&image, 1, frames(&image, 1)[3].1);
    image[at + 30] ^= 0x02;
    for mode in MODES {
        let first = open(&image, mode);
        let second = open(&image, mode);
        assert_eq!(format!("{first:?}"), format!("{second:?}"), "{mode:?}");
    }
}

/// On a device whose writes are durable in order (NOR flash), records after
/// a damaged header were written after it, so the header had been whole:
/// its damage is in the durable region, as a mark would say on other
/// devices. With only the segment's opening mark after it, no record was
/// lost and the segment is dropped as an interrupted rotation.
#[test]
fn damaged_header_of_the_newest_segment_on_an_in_order_device() {
    let mut image = build_on(true, |log| {
        for _ in 0..60 {
            append(log, 1);
            log.sync().unwrap();
        }
    });
    let bases: Vec<Lsn> = (0..SLOTS)
        .filter_map(|slot| SegmentHeader::decode(&image[slot * SEGMENT as usize..]).ok().map(|h| h.base_lsn))
        .collect();
    let newest = bases.len() - 1;
    let start = newest * SEGMENT as usize;
    let (_, first, kind) = frames(&image, newest)[0];
    assert_eq!((first, kind), (bases[newest], FrameKind::Mark), "every segment opens with a mark");
    image[start + 17] ^= 0x20;
    for mode in MODES {
        match (open_on(true, &image, mode), mode) {
            (Err(Error::Corrupt(c)), RecoveryMode::TolerateTornTail | RecoveryMode::Strict) => {
                assert_eq!((c.damage, c.lsn), (Damage::MissingSegment, bases[newest]), "{mode:?}");
            }
            (Ok((next, info)), RecoveryMode::PointInTime | RecoveryMode::SkipDamaged) => {
                assert_eq!((info.case, next), (RecoveryCase::MissingSegment, bases[newest]), "{mode:?}");
            }
            (other, mode) => panic!("{mode:?}: {other:?}"),
        }
    }
    // Keep only the header and the opening mark of the newest segment.
    let mark_end = start + 56 + 32;
    image[mark_end..start + SEGMENT as usize].fill(0xFF);
    for mode in MODES {
        let (next, info) = open_on(true, &image, mode).unwrap();
        assert_eq!(
            (info.case, next, info.corruption),
            (RecoveryCase::Clean, bases[newest], None),
            "{mode:?}"
        );
    }
}

/// The header of the log's only segment damaged after records were made
/// durable: with no valid header left, the slot still shows them (a mark of
/// a completed sync, or on an in-order device the records themselves), so
/// the loss is reported, never an empty log that looks clean.
#[test]
fn damaged_header_of_the_only_segment_is_reported() {
    for in_order in [false, true] {
        let mut image = build_on(in_order, |log| {
            for _ in 0..10 {
                append(log, 1);
                log.sync().unwrap();
            }
        });
        image[17] ^= 0x20;
        for mode in MODES {
            match (open_on(in_order, &image, mode), mode) {
                (Err(Error::Corrupt(c)), RecoveryMode::TolerateTornTail | RecoveryMode::Strict) => {
                    assert_eq!((c.segment, c.lsn, c.damage), (0, 0, Damage::MissingSegment), "{mode:?}");
                }
                (Ok((next, info)), RecoveryMode::PointInTime | RecoveryMode::SkipDamaged) => {
                    assert_eq!((info.case, next), (RecoveryCase::MissingSegment, 0), "{mode:?}");
                }
                (other, mode) => panic!("{in_order} {mode:?}: {other:?}"),
            }
        }
        // A torn first header with nothing after it is an empty log.
        let mut torn = vec![0xFF; SLOTS * SEGMENT as usize];
        torn[..20].copy_from_slice(&image[..20]);
        let (_, info) = open_on(in_order, &torn, RecoveryMode::Strict).unwrap();
        assert_eq!((info.case, info.corruption), (RecoveryCase::Empty, None));
    }
}

/// On a medium without erase, the epoch of a segment hidden by a damaged
/// header is never used again: the log started after the reported loss
/// writes over the old frames, which must not come back as its records.
#[test]
fn a_log_restarted_over_a_hidden_segment_does_not_take_its_old_frames() {
    let geometry = Geometry::block(8).unwrap();
    let mut device = RamDevice::new(vec![0; SLOTS * SEGMENT as usize], geometry).unwrap();
    let mut buffer = [0u8; 512];
    {
        let (mut log, _) =
            RingLog::open(&mut device, RingConfig::new(SEGMENT).format(Version::V1), &mut buffer).unwrap();
        append(&mut log, 10);
        log.sync().unwrap();
        append(&mut log, 10);
        log.sync().unwrap();
    }
    let mut image = device.into_inner();
    image[17] ^= 0x20;
    let mut device = RamDevice::new(image, geometry).unwrap();
    let config = RingConfig::new(SEGMENT).format(Version::V1).recovery(RecoveryMode::SkipDamaged);
    {
        let (mut log, info) = RingLog::open(&mut device, config, &mut buffer).unwrap();
        assert_eq!((info.case, log.next_lsn()), (RecoveryCase::MissingSegment, 0));
        append(&mut log, 10);
        log.sync().unwrap();
    }
    let (info, lsns) = read_back_raw(device, config, payload).unwrap();
    assert_eq!((info.case, lsns), (RecoveryCase::Clean, range(0, 10)));
}

//! The bit-flip sweep (F6, F17): every single bit of a small synced ring
//! image is flipped in turn; each flip must be detected and handled as the
//! recovery mode says, and no damaged byte is ever returned as data.

use nori_wal_core::format::{self, Body, SegmentHeader};
use nori_wal_core::ring::{Error, RecoveryMode, RingConfig, RingLog};
use nori_wal_core::{Geometry, Lsn, RamDevice, Record};
use nori_wal_tests::crash::read_back_raw;

const SEGMENT: u64 = 1024;
const SLOTS: usize = 8;

fn geometry() -> Geometry {
    Geometry::try_new(1, 8, 1024, Some(0xFF), false).unwrap()
}

fn payload(lsn: Lsn) -> Vec<u8> {
    format!("rec{lsn:03}").into_bytes()
}

fn build() -> Vec<u8> {
    let mut device = RamDevice::new(vec![0xFF; SLOTS * SEGMENT as usize], geometry()).unwrap();
    let mut buffer = [0u8; 512];
    {
        let (mut log, _) = RingLog::open(&mut device, RingConfig::new(SEGMENT), &mut buffer).unwrap();
        for i in 0..90u64 {
            if i % 5 == 4 {
                let owned: Vec<Vec<u8>> = (0..2).map(|k| payload(log.next_lsn() + k)).collect();
                let batch: Vec<Record<'_>> = owned.iter().map(|p| Record::raw(p)).collect();
                log.append_batch(&batch).unwrap();
            } else {
                log.append(&Record::raw(&payload(log.next_lsn()))).unwrap();
            }
            if i % 3 == 2 {
                log.sync().unwrap();
            }
        }
        log.sync().unwrap();
    }
    device.into_inner()
}

/// The bytes of each segment that matter (header through the last frame; in
/// older segments through the last frame holding records, since padding
/// after it holds nothing), and the highest durable point a mark records.
fn written(image: &[u8]) -> (Vec<(usize, usize)>, Lsn) {
    let mut ranges = Vec::new();
    let mut claim = 0;
    let mut newest = (0, 0);
    for slot in 0..SLOTS {
        let seg = &image[slot * SEGMENT as usize..(slot + 1) * SEGMENT as usize];
        let Ok(header) = SegmentHeader::decode(seg) else { continue };
        let mut pos = header.frames_offset() as usize;
        let mut last_record_end = pos;
        while let Ok(frame) = format::decode_frame(&seg[pos..], header.epoch) {
            match frame.body() {
                Ok(Body::Mark(mark)) => claim = claim.max(mark.durable_end),
                Ok(Body::Padding) => {}
                _ => last_record_end = pos + frame.len(),
            }
            pos += frame.len();
        }
        let base = slot * SEGMENT as usize;
        ranges.push((base, base + last_record_end, base + pos));
        newest = newest.max((header.epoch, ranges.len() - 1));
    }
    let ranges = ranges
        .iter()
        .enumerate()
        .map(|(i, &(start, records_end, end))| (start, if i == newest.1 { end } else { records_end }))
        .collect();
    (ranges, claim)
}

fn open(image: &[u8], mode: RecoveryMode) -> Result<Vec<Lsn>, Error<nori_wal_core::AccessError>> {
    let device = RamDevice::new(image.to_vec(), geometry()).unwrap();
    read_back_raw(device, RingConfig::new(SEGMENT).recovery(mode), payload).map(|(_, lsns)| lsns)
}

#[test]
fn every_bit_flip_is_detected_and_handled_by_mode() {
    let image = build();
    let all = open(&image, RecoveryMode::Strict).unwrap();
    let total = all.len() as Lsn;
    let (ranges, claim) = written(&image);
    assert!(ranges.len() >= 3, "the image must span several segments");
    assert!(claim > total / 2, "marks must cover most of the log");
    let mut flips = 0;
    let mut outcomes = [0usize; 4];
    for &(start, end) in &ranges {
        for byte in start..end {
            for bit in 0..8 {
                let mut flipped = image.clone();
                flipped[byte] ^= 1 << bit;
                flips += 1;
                let ctx = format!("byte {byte} bit {bit}");
                // Strict: every flip is an error.
                assert!(
                    open(&flipped, RecoveryMode::Strict).is_err(),
                    "{ctx}: strict accepted a flipped bit"
                );
                // Tolerate: an error, or a cut tail that lost nothing durable.
                match open(&flipped, RecoveryMode::TolerateTornTail) {
                    Err(Error::Corrupt(_)) => outcomes[0] += 1,
                    Err(e) => panic!("{ctx}: {e}"),
                    Ok(lsns) => {
                        outcomes[1] += 1;
                        assert!(lsns.len() as Lsn >= claim, "{ctx}: durable records lost silently");
                        assert_eq!(lsns, (0..lsns.len() as Lsn).collect::<Vec<_>>(), "{ctx}");
                    }
                }
                // Point in time: a prefix.
                let lsns = open(&flipped, RecoveryMode::PointInTime).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(lsns, (0..lsns.len() as Lsn).collect::<Vec<_>>(), "{ctx}: not a prefix");
                outcomes[2] += 1;
                // Skip: increasing LSNs, everything else kept.
                let lsns = open(&flipped, RecoveryMode::SkipDamaged).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert!(lsns.windows(2).all(|w| w[0] < w[1]), "{ctx}: skip out of order");
                outcomes[3] += 1;
            }
        }
    }
    println!(
        "{flips} bit flips over {} bytes in {} segments: tolerate-torn-tail refused {} and cut an undurable tail \
         {} times; point-in-time and skip-damaged recovered {} and {}",
        ranges.iter().map(|(a, b)| b - a).sum::<usize>(),
        ranges.len(),
        outcomes[0],
        outcomes[1],
        outcomes[2],
        outcomes[3]
    );
    assert!(flips > 10_000);
}

//! The bit-flip sweep (F6, F17): every single bit of a small synced ring
//! image is flipped in turn; each flip must be detected and handled as the
//! recovery mode says, and no damaged byte is ever returned as data.

use nori_wal_backends::nor::NorFlashDevice;
use nori_wal_core::format::{self, AnyHeader, Body, EpochKey, Version, v2};
use nori_wal_core::ring::{Error, RecoveryInfo, RecoveryMode, RingConfig, RingLog};
use nori_wal_core::{BlockDevice, Geometry, Lsn, RamDevice, Record};
use nori_wal_tests::crash::read_back_raw;
use nori_wal_tests::nor::SimNorFlash;

/// A medium the sweep runs on.
#[derive(Clone, Copy)]
struct Medium {
    geometry: Geometry,
    segment: u64,
    slots: usize,
    /// Flip the bits of every `step`-th byte (1: every byte).
    step: usize,
    /// The format version the log is written in.
    format: Version,
    /// Through the NOR flash adapter on the simulated flash (writes
    /// durable in order, no marks), rather than on a `RamDevice` that may
    /// reorder writes (marks after syncs).
    nor: bool,
}

/// The simulated NOR flash of the adapter sweep.
type Flash = SimNorFlash<1, 8, 1024>;

/// NOR flash geometry: 8-byte units programmed once, erase value 0xFF, on a
/// device that may reorder writes.
fn flash() -> Medium {
    Medium {
        geometry: Geometry::try_new(1, 8, 1024, Some(0xFF), false).unwrap(),
        segment: 1024,
        slots: 8,
        step: 1,
        nor: false,
        format: Version::V2,
    }
}

/// The same geometry through the NOR flash adapter: writes in order.
fn nor_adapter() -> Medium {
    Medium { nor: true, geometry: Flash::geometry(0xFF), ..flash() }
}

/// A disk or raw partition: 512-byte sectors, no erase (every 7th byte).
fn disk() -> Medium {
    Medium {
        geometry: Geometry::block(512).unwrap(),
        segment: 4096,
        slots: 8,
        step: 7,
        nor: false,
        format: Version::V2,
    }
}

fn payload(lsn: Lsn) -> Vec<u8> {
    format!("rec{lsn:03}").into_bytes()
}

fn build(m: Medium) -> Vec<u8> {
    let len = m.slots * m.segment as usize;
    if m.nor {
        let mut device = NorFlashDevice::new(Flash::erased(len, 0xFF), 0xFF).unwrap();
        fill(&mut device, m);
        return device.into_inner().image().to_vec();
    }
    let mut device = RamDevice::new(vec![m.geometry.erase_value().unwrap_or(0); len], m.geometry).unwrap();
    fill(&mut device, m);
    device.into_inner()
}

/// Appends records and batches of two (90 of them; 150 in format v2,
/// whose frames are smaller, to span as many segments), syncing every
/// third, then syncs.
fn fill<D: BlockDevice>(device: &mut D, m: Medium) {
    let mut buffer = [0u8; 1024];
    let appends = if m.format == Version::V1 || m.geometry.erase_value().is_none() { 90 } else { 150 };
    {
        let config = RingConfig::new(m.segment).format(m.format);
        let (mut log, _) = RingLog::open(device, config, &mut buffer).unwrap();
        for i in 0..appends {
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
}

/// The bytes of each segment that matter (header through the last frame; in
/// older segments through the last frame holding records, since padding
/// after it holds nothing), the highest durable point a mark records, and
/// the first LSN of the newest segment's last frame that holds records.
fn written(m: Medium, image: &[u8]) -> (Vec<(usize, usize)>, Lsn, Lsn) {
    let mut ranges = Vec::new();
    let mut claim = 0;
    let mut newest = (0, 0);
    let mut last_frame = (0, 0);
    for slot in 0..m.slots {
        let seg = &image[slot * m.segment as usize..(slot + 1) * m.segment as usize];
        let Ok(header) = AnyHeader::decode_in(seg, m.segment) else { continue };
        let mut pos = header.frames_offset as usize;
        let mut last_record_end = pos;
        let mut lsn = header.base_lsn;
        let key = EpochKey::new(header.epoch);
        let frames_end = header.frames_end(m.segment) as usize;
        loop {
            // Each frame's body, length and first LSN, in either version
            // (v2: fill to a unit boundary is stepped over).
            let (body, len, first) = if header.version == Version::V1 {
                let Ok(frame) = format::decode_frame(&seg[pos..], header.epoch) else { break };
                let first = header.base_lsn + u64::from(frame.header().lsn_offset());
                (frame.body(), frame.len(), first)
            } else {
                match v2::decode_frame(&seg[pos..frames_end], &key, lsn) {
                    Ok(frame) => (frame.body(), frame.len(), lsn),
                    Err(_) => {
                        let next = v2::skip_fill(&seg[..frames_end], pos, m.geometry.program_unit());
                        if next == pos {
                            break;
                        }
                        pos = next;
                        continue;
                    }
                }
            };
            match body {
                Ok(Body::Mark(mark)) => claim = claim.max(mark.durable_end),
                Ok(Body::Padding) => {}
                body => {
                    last_record_end = pos + len;
                    last_frame = last_frame.max((header.epoch, first));
                    lsn = first + u64::from(body.map_or(1, |b| b.lsn_count()));
                }
            }
            pos += len;
        }
        let base = slot * m.segment as usize;
        // v2 records the segment size only where there is no erase.
        let header_len = match header.version {
            Version::V1 => format::SEGMENT_HEADER_LEN,
            _ if m.geometry.erase_value().is_some() => v2::HEADER_LEN,
            _ => v2::SIZED_HEADER_LEN,
        };
        let seal = base + frames_end;
        ranges.push((
            base,
            base + header.frames_offset as usize,
            base + last_record_end,
            base + pos,
            header_len,
            seal,
        ));
        newest = newest.max((header.epoch, ranges.len() - 1));
    }
    // The header, then the frames: the zeros between them (up to the first
    // program-unit boundary) carry no meaning (FORMAT.md 2).
    let ranges = ranges
        .iter()
        .enumerate()
        .flat_map(|(i, &(start, frames, records_end, end, header_len, seal))| {
            let mut spans =
                vec![(start, start + header_len), (frames, if i == newest.1 { end } else { records_end })];
            // v2: the seal of every segment but the newest.
            if m.format == Version::V2 && i != newest.1 {
                spans.push((seal, seal + v2::SEAL_LEN));
            }
            spans
        })
        .collect();
    (ranges, claim, last_frame.1)
}

/// Why an open failed.
#[derive(Debug)]
enum Refused {
    /// Damage reported (`Error::Corrupt`).
    Corrupt,
    /// Any other error.
    Other(String),
}

fn open(m: Medium, image: &[u8], mode: RecoveryMode) -> Result<Vec<Lsn>, Refused> {
    fn outcome<E: core::fmt::Display>(
        result: Result<(RecoveryInfo, Vec<Lsn>), Error<E>>,
    ) -> Result<Vec<Lsn>, Refused> {
        match result {
            Ok((_, lsns)) => Ok(lsns),
            Err(Error::Corrupt(_)) => Err(Refused::Corrupt),
            Err(e) => Err(Refused::Other(e.to_string())),
        }
    }
    let config = RingConfig::new(m.segment).recovery(mode).format(m.format);
    if m.nor {
        let device = NorFlashDevice::new(Flash::from_image(image.to_vec(), 0xFF), 0xFF).unwrap();
        return outcome(read_back_raw(device, config, payload));
    }
    outcome(read_back_raw(RamDevice::new(image.to_vec(), m.geometry).unwrap(), config, payload))
}

#[test]
fn every_bit_flip_is_detected_and_handled_by_mode() {
    sweep("NOR flash geometry, every byte, format v2", flash());
    sweep("NOR flash geometry, every byte, format v1", Medium { format: Version::V1, ..flash() });
}

#[test]
fn every_bit_flip_through_the_nor_adapter_is_detected_and_handled_by_mode() {
    sweep("NOR flash through NorFlashDevice (writes in order), every byte, format v2", nor_adapter());
    let v1 = Medium { format: Version::V1, ..nor_adapter() };
    sweep("NOR flash through NorFlashDevice (writes in order), every byte, format v1", v1);
}

#[test]
fn sampled_bit_flips_on_sector_geometry_are_detected_and_handled_by_mode() {
    sweep("512-byte sectors, every 7th byte, format v2", disk());
    sweep("512-byte sectors, every 7th byte, format v1", Medium { format: Version::V1, ..disk() });
}

fn sweep(name: &str, m: Medium) {
    let image = build(m);
    let open = |image: &[u8], mode| open(m, image, mode);
    let all = open(&image, RecoveryMode::Strict).unwrap();
    let total = all.len() as Lsn;
    let (ranges, claim, last_frame) = written(m, &image);
    assert!(ranges.len() >= 6, "the image must span several segments");
    // What must survive a tolerated cut: on a device that may reorder
    // writes, what the marks say was durable; on one that keeps order,
    // everything but the last frame, whose damage cannot be told from a
    // program cut short.
    let claim = if m.nor {
        last_frame
    } else {
        assert!(claim > total / 2, "marks must cover most of the log");
        claim
    };
    assert!(claim > total / 2, "{claim} of {total}");
    let mut flips = 0;
    let mut outcomes = [0usize; 4];
    for &(start, end) in &ranges {
        for byte in (start..end).step_by(m.step) {
            for bit in 0..8 {
                let mut flipped = image.clone();
                flipped[byte] ^= 1 << bit;
                flips += 1;
                let ctx = format!("byte {byte} bit {bit}");
                // Strict: every flip is an error. On media without erase, a
                // flip in the padding after the last records may also read as
                // never-written space: accepted only with every record intact.
                match open(&flipped, RecoveryMode::Strict) {
                    Err(_) => {}
                    Ok(lsns) => assert!(
                        m.geometry.erase_value().is_none() && lsns == all,
                        "{ctx}: strict accepted a flipped bit and lost records"
                    ),
                }
                // Tolerate: an error, or a cut tail that lost nothing durable.
                match open(&flipped, RecoveryMode::TolerateTornTail) {
                    Err(Refused::Corrupt) => outcomes[0] += 1,
                    Err(Refused::Other(e)) => panic!("{ctx}: {e}"),
                    Ok(lsns) => {
                        outcomes[1] += 1;
                        assert!(lsns.len() as Lsn >= claim, "{ctx}: durable records lost silently");
                        assert_eq!(lsns, (0..lsns.len() as Lsn).collect::<Vec<_>>(), "{ctx}");
                    }
                }
                // Point in time: a prefix.
                let lsns =
                    open(&flipped, RecoveryMode::PointInTime).unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
                assert_eq!(lsns, (0..lsns.len() as Lsn).collect::<Vec<_>>(), "{ctx}: not a prefix");
                outcomes[2] += 1;
                // Skip: increasing LSNs, everything else kept.
                let lsns =
                    open(&flipped, RecoveryMode::SkipDamaged).unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
                assert!(lsns.windows(2).all(|w| w[0] < w[1]), "{ctx}: skip out of order");
                outcomes[3] += 1;
            }
        }
    }
    println!(
        "{name}: {flips} bit flips over {} bytes in {} segments: tolerate-torn-tail refused {} and cut an undurable tail \
         {} times; point-in-time and skip-damaged recovered {} and {}",
        ranges.iter().map(|(a, b)| b - a).sum::<usize>(),
        ranges.len() / 2,
        outcomes[0],
        outcomes[1],
        outcomes[2],
        outcomes[3]
    );
    assert!(flips > 5_000, "{name}: {flips} flips");
}

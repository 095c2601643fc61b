//! One ring holding segments of both format versions: written in v1, then
//! reopened by a log that writes v2 (and back), on flash (writes in order,
//! no opening marks in v2) and on a sector device (writes in any order).
//! Every record reads back with its LSN, after every reopen, in every
//! recovery mode; reclaiming and overwriting the oldest segments works
//! across the versions.

use nori_wal_backends::nor::NorFlashDevice;
use nori_wal_core::format::{AnyHeader, Version};
use nori_wal_core::ring::{FullPolicy, RecoveryMode, RingConfig, RingLog};
use nori_wal_core::{BlockDevice, Geometry, Lsn, RamDevice, Record};
use nori_wal_tests::crash::read_back_raw;
use nori_wal_tests::nor::SimNorFlash;

const SEGMENT: u64 = 4096;
const SLOTS: usize = 6;

type Flash = SimNorFlash<1, 4, 4096>;

fn payload(lsn: Lsn) -> Vec<u8> {
    format!("mixed {lsn} {}", "x".repeat(lsn as usize % 50)).into_bytes()
}

fn config(version: Version) -> RingConfig {
    RingConfig::new(SEGMENT).format(version).when_full(FullPolicy::OverwriteOldest)
}

/// Appends `n` records (a sync every fifth) through a log writing `version`.
fn append<D: BlockDevice>(m: &Medium<D>, image: Vec<u8>, version: Version, n: u64) -> Vec<u8> {
    let mut buffer = [0u8; 1024];
    let (mut log, _) = RingLog::open((m.make)(image), config(version), &mut buffer).unwrap();
    for _ in 0..n {
        let lsn = log.next_lsn();
        assert_eq!(log.append(&Record::raw(&payload(lsn))).unwrap(), lsn);
        if lsn % 5 == 4 {
            log.sync().unwrap();
        }
    }
    log.sync().unwrap();
    (m.image)(log.into_device())
}

/// A medium: a device made from an image, and its image back.
struct Medium<D> {
    name: &'static str,
    /// Records appended in each step (v1, v2, v1, v2): the first three
    /// keep segments of both versions in the ring, the last wraps it.
    steps: [u64; 4],
    make: fn(Vec<u8>) -> D,
    image: fn(D) -> Vec<u8>,
}

/// The versions of the segments in `image`, slot by slot.
fn versions(image: &[u8]) -> Vec<Option<Version>> {
    image
        .chunks(SEGMENT as usize)
        .map(|seg| AnyHeader::decode_in(seg, SEGMENT).ok().map(|h| h.version))
        .collect()
}

/// Every record from the first the log holds to `last` reads back, in
/// order, in every recovery mode.
fn check<D: BlockDevice>(m: &Medium<D>, image: &[u8], last: Lsn, context: &str)
where
    D::Error: std::fmt::Display,
{
    for mode in [
        RecoveryMode::Strict,
        RecoveryMode::TolerateTornTail,
        RecoveryMode::PointInTime,
        RecoveryMode::SkipDamaged,
    ] {
        let (info, lsns) =
            read_back_raw((m.make)(image.to_vec()), config(Version::V2).recovery(mode), payload)
                .unwrap_or_else(|e| panic!("{}: {context}, {mode:?}: {e}", m.name));
        assert!(info.corruption.is_none(), "{}: {context}, {mode:?}: {info:?}", m.name);
        assert_eq!(lsns.last().copied(), Some(last), "{}: {context}, {mode:?}", m.name);
        let first = lsns[0];
        assert_eq!(lsns, (first..=last).collect::<Vec<_>>(), "{}: {context}, {mode:?}", m.name);
    }
}

fn run<D: BlockDevice>(m: &Medium<D>, blank: Vec<u8>)
where
    D::Error: std::fmt::Display,
{
    let name = m.name;
    let [a, b, c, d] = m.steps;
    // v1 first: a little over one segment.
    let image = append(m, blank, Version::V1, a);
    assert!(versions(&image).iter().flatten().all(|v| *v == Version::V1), "{name}");
    check(m, &image, a - 1, "v1 only");
    // Then v2 in the same ring: both versions held.
    let image = append(m, image, Version::V2, b);
    let held = versions(&image);
    assert!(held.contains(&Some(Version::V1)) && held.contains(&Some(Version::V2)), "{name}: {held:?}");
    check(m, &image, a + b - 1, "v1 then v2");
    // Back to v1 (a rollback), then on until v2 overwrites the v1 segments.
    let image = append(m, image, Version::V1, c);
    let held = versions(&image);
    assert!(held.contains(&Some(Version::V1)) && held.contains(&Some(Version::V2)), "{name}: {held:?}");
    check(m, &image, a + b + c - 1, "v1, v2, v1");
    let image = append(m, image, Version::V2, d);
    assert!(versions(&image).iter().flatten().all(|v| *v == Version::V2), "{name}: the ring wrapped");
    let last = a + b + c + d - 1;
    check(m, &image, last, "wrapped in v2");
    // Reclaiming across versions: a checkpoint, then reopen.
    let mut buffer = [0u8; 1024];
    let (mut log, _) = RingLog::open((m.make)(image), config(Version::V2), &mut buffer).unwrap();
    log.truncate_before(last - 9).unwrap();
    let image = (m.image)(log.into_device());
    let (_, lsns) = read_back_raw((m.make)(image), config(Version::V2), payload).unwrap();
    assert_eq!(lsns, (last - 9..=last).collect::<Vec<_>>(), "{name}: after the checkpoint");
    println!("{name}: v1 and v2 segments read back in one ring, across reopens, a rollback and a wrap");
}

#[test]
fn a_ring_holds_segments_of_both_versions_on_flash() {
    let m = Medium {
        name: "NOR flash (writes in order)",
        steps: [150, 150, 100, 600],
        make: |image| NorFlashDevice::new(Flash::from_image(image, 0xFF), 0xFF).unwrap(),
        image: |device| device.into_inner().image().to_vec(),
    };
    run(&m, vec![0xFF; SLOTS * SEGMENT as usize]);
}

#[test]
fn a_ring_holds_segments_of_both_versions_on_sectors() {
    let m = Medium {
        name: "512-byte sectors (writes in any order)",
        steps: [40, 40, 30, 200],
        make: |image| RamDevice::new(image, Geometry::block(512).unwrap()).unwrap(),
        image: RamDevice::into_inner,
    };
    run(&m, vec![0; SLOTS * SEGMENT as usize]);
}

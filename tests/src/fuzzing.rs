//! The bodies of the fuzz targets (`fuzz/`), kept here so that the stable
//! test suite runs every checked-in corpus input and every regression
//! through the same code (`tests/tests/fuzz_corpora.rs`).
//!
//! Each function takes arbitrary bytes and panics only when an invariant
//! breaks: a panic inside nori-wal, a phantom record, an acknowledged record
//! lost. Errors returned by nori-wal are fine: hostile input must get them.

use std::path::{Path, PathBuf};

use nori_wal::blocking::Wal;
use nori_wal::fs::{File, Fs, OpenMode};
use nori_wal::{FsyncPolicy, WalConfig};
use nori_wal_core::format::{Body, EpochKey, FrameHeader, FrameKind, SegmentHeader, decode_frame, v2};
use nori_wal_core::ring::{Error, FullPolicy, RecoveryMode, RingConfig, RingLog};
use nori_wal_core::{Geometry, Lsn, RamDevice};

use crate::crash::Owned;
use crate::sim::{Cut, SimDevice, rng};
use crate::simfs::{FsFaults, SimFs};

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateTornTail,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipDamaged,
    RecoveryMode::Strict,
];

/// Reads bytes from the front of the input.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.byte()))
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
}

/// The frame decoder, the segment header decoder and the body parser on
/// arbitrary bytes, under a few epochs.
pub fn frame_decoder(data: &[u8]) {
    for epoch in [0, 1, 7, u64::MAX] {
        if let Ok(frame) = decode_frame(data, epoch) {
            assert!(frame.len() <= data.len());
            let _ = frame.records().map(Iterator::count);
            let _ = frame.compressed();
        }
        let _ = FrameHeader::decode(data, epoch);
    }
    let _ = SegmentHeader::decode(data);
    // The batch cursor over arbitrary bytes: never past the end, always on.
    let mut at = nori_wal_core::format::BATCH_ENTRIES_AT;
    while let Ok((_, next)) = nori_wal_core::format::batch_entry_at(data, at) {
        assert!(next > at && next <= data.len(), "the batch cursor did not move forward inside the bytes");
        at = next;
    }
    for kind in [FrameKind::Put, FrameKind::Delete, FrameKind::Raw, FrameKind::Batch, FrameKind::Mark] {
        if let Ok(body) = Body::parse(kind, data) {
            assert!(body.records().count() <= data.len() + 1);
        }
    }
    frame_decoder_v2(data);
}

/// The format v2 codec on the same bytes: frames under a few epochs and
/// LSNs, segment headers (recorded, bound and plain sizes), and the search
/// for frames after damage (bounded: at most 4 KiB of input).
fn frame_decoder_v2(data: &[u8]) {
    for epoch in [1, 7, v2::MAX_EPOCH] {
        let key = EpochKey::new(epoch);
        for lsn in [0, 1, 1 << 40, u64::MAX - 1] {
            if let Ok(frame) = v2::decode_frame(data, &key, lsn) {
                assert!(frame.len() <= data.len());
                let _ = frame.records().map(Iterator::count);
                let _ = frame.body();
                // A frame that checks out under `lsn` is the only one the
                // solver may find in a range holding it.
                assert_eq!(v2::solve_lsn(&key, &data[..frame.len()], lsn..lsn + 1), Some(lsn));
            }
        }
        let bytes = &data[..data.len().min(4096)];
        if let Some(found) = v2::find_after_damage(bytes, 0, &key, 0, None, 4) {
            assert!(found.offset < bytes.len());
            assert!(v2::decode_frame(&bytes[found.offset..], &key, found.lsn).is_ok());
        }
    }
    let _ = v2::FrameHeader::decode(data);
    let _ = v2::SegmentHeader::decode(data);
    let _ = v2::SegmentHeader::decode_bound(data, 4096);
    let _ = nori_wal_core::format::AnyHeader::decode_in(data, 1 << 20);
    let _ = v2::skip_fill(data, data.len() / 2, 8);
}

/// Geometries the image target picks from (read, program, erase, erase value).
const GEOMETRIES: [(u32, u32, u32, Option<u8>); 8] = [
    (1, 1, 1, None),
    (512, 512, 512, None),
    (4096, 4096, 4096, None),
    (1, 8, 4096, Some(0xFF)),
    (1, 4, 4096, Some(0xFF)),
    (1, 32, 4096, Some(0xFF)),
    (4, 16, 4096, Some(0x00)),
    (1, 1, 4096, Some(0xFF)),
];

/// A segment size that fits the geometry: large sectors need room for a
/// header, a mark and a frame in whole units.
fn segment_for(program_unit: u32) -> u64 {
    if program_unit >= 512 { 16 << 10 } else { 4 << 10 }
}

/// Opens and recovers an arbitrary device image on a geometry the input
/// picks, in every recovery mode, on a device that may reorder writes and on
/// one that keeps them in order (NOR flash), and reads back whatever
/// recovery accepts. Recovery may refuse an image, never report a bug.
pub fn ring_image(data: &[u8]) {
    let mut input = Input(data);
    let (read, program, erase, value) = GEOMETRIES[input.byte() as usize % GEOMETRIES.len()];
    let geometry = Geometry::try_new(read, program, erase, value, value.is_none()).expect("a valid geometry");
    let segment = segment_for(program) * (1 + u64::from(input.byte() % 2));
    let mut image = input.take(16 * 4096);
    let slots = 4;
    image.resize((segment * slots) as usize, value.unwrap_or(0));
    for (in_order, mode) in [false, true].into_iter().flat_map(|o| MODES.map(|m| (o, m))) {
        let device = RamDevice::new(image.clone(), geometry).expect("image fits the geometry");
        let mut device = device.with_writes_in_order(in_order);
        let mut buffer = vec![0u8; 8192];
        let config = RingConfig::new(segment).recovery(mode).when_full(FullPolicy::OverwriteOldest);
        let (mut log, info) = match RingLog::open(&mut device, config, &mut buffer) {
            Ok(opened) => opened,
            Err(Error::Internal(what)) => panic!("{mode:?}, in order {in_order}: {what}"),
            Err(_) => continue,
        };
        let first = log.first_lsn();
        let mut read_buf = vec![0u8; 8192];
        // Whatever recovery accepted reads back in LSN order, inside the
        // range it reported. (On hostile images `SkipDamaged` may count as
        // lost a record that the reader still finds valid: the count is an
        // estimate there, the range is not.)
        let (lo, hi) = (info.first_lsn.unwrap_or(first), info.last_lsn.unwrap_or(first));
        let mut previous: Option<Lsn> = None;
        if let Ok(mut iter) = log.iter_from(first, &mut read_buf) {
            while let Ok(Some(entry)) = iter.try_next() {
                assert!(
                    entry.lsn >= lo && entry.lsn <= hi,
                    "{mode:?}: LSN {} outside {lo}..={hi}",
                    entry.lsn
                );
                assert!(previous.is_none_or(|p| entry.lsn > p), "{mode:?}: LSNs out of order");
                previous = Some(entry.lsn);
            }
        }
        // The log goes on.
        let _ = log.append(&nori_wal_core::Record::raw(b"after"));
        let _ = log.sync();
    }
}

/// An operation sequence on the simulated block device — appends,
/// batches, syncs, reclaims, power cuts, reopens — checked against a model:
/// every acknowledged record survives, nothing else appears.
pub fn ring_ops(data: &[u8]) {
    let mut input = Input(data);
    let (read, program, erase, value) = GEOMETRIES[input.byte() as usize % GEOMETRIES.len()];
    let geometry = Geometry::try_new(read, program, erase, value, value.is_none()).expect("a valid geometry");
    let segment = segment_for(program);
    let blank = vec![value.unwrap_or(0); (segment * 4) as usize];
    let mut device = SimDevice::new(blank, geometry);
    let config = RingConfig::new(segment);
    let mut records: Vec<Owned> = Vec::new();
    let mut acked: Lsn = 0;
    let mut seed = 0u64;
    for _ in 0..64 {
        if input.0.is_empty() {
            break;
        }
        let mut buffer = vec![0u8; 8192];
        let (mut log, _) = match RingLog::open(&mut device, config, &mut buffer) {
            Ok(opened) => opened,
            Err(e) => panic!(
                "reopening a log written by nori-wal failed: {e} (geometry {read}/{program}/{erase}/{value:?})"
            ),
        };
        // The recovered log is the model's, up to what was acknowledged.
        let next = log.next_lsn();
        assert!(next >= acked, "acknowledged LSN {} lost (log ends at {next})", acked.saturating_sub(1));
        assert!(next <= records.len() as Lsn, "a phantom record at LSN {next}");
        records.truncate(next as usize);
        let mut read_buf = vec![0u8; 8192];
        let mut iter = log.iter_from(log.first_lsn(), &mut read_buf).expect("iterate a recovered log");
        while let Some(entry) = iter.try_next().expect("read a recovered log") {
            assert!(
                Owned::from_record(&entry.record) == records[entry.lsn as usize],
                "LSN {} changed",
                entry.lsn
            );
        }
        acked = acked.min(next);
        // Operations until a crash or a reopen.
        let crash = loop {
            match input.byte() % 8 {
                0..=2 => {
                    let len = usize::from(input.byte());
                    let r = Owned::Raw(vec![input.byte(); len]);
                    if log.append(&r.as_record()).is_ok() {
                        records.push(r);
                    }
                }
                3 => {
                    let n = 1 + usize::from(input.byte() % 4);
                    let batch: Vec<Owned> =
                        (0..n).map(|i| Owned::Put(vec![i as u8], vec![input.byte(); 9])).collect();
                    let refs: Vec<_> = batch.iter().map(Owned::as_record).collect();
                    if log.append_batch(&refs).is_ok() {
                        records.extend(batch);
                    }
                }
                4 => {
                    if log.sync().is_ok() {
                        acked = records.len() as Lsn;
                    }
                }
                5 => {
                    let lsn =
                        log.first_lsn() + u64::from(input.byte()) % (log.next_lsn() - log.first_lsn() + 1);
                    if log.truncate_before(lsn).is_ok() {
                        acked = acked.max(log.durable_lsn().map_or(0, |d| d + 1));
                    }
                }
                6 => break true,
                _ => break false,
            }
            if input.0.is_empty() {
                break false;
            }
        };
        if crash {
            seed += 1;
            let cut = if input.byte() % 2 == 0 { Cut::DropUnsynced } else { Cut::RandomSubset };
            let image = device.crash_image(cut, &mut rng(seed));
            device = SimDevice::new(image, geometry);
        }
    }
}

/// Lays out an arbitrary directory on the simulated file system: a count,
/// then per file a name kind (a segment name with a base LSN, the lock file,
/// a cut copy, or a foreign name), and up to 64 KiB of contents.
fn directory(data: &[u8]) -> SimFs {
    let fs = SimFs::new(FsFaults::default());
    let dir = PathBuf::from("/wal");
    fs.create_dir_all(&dir).expect("create the directory");
    let mut input = Input(data);
    for _ in 0..(input.byte() % 6) {
        let kind = input.byte();
        let base = input.u64() % 1000;
        let name = match kind % 8 {
            0..=4 => format!("{base:020}.wal"),
            5 => "LOCK".to_string(),
            6 => format!("{base:020}.wal.cut"),
            _ => format!("junk{base}"),
        };
        let len = usize::from(input.u16());
        let contents = input.take(len);
        let path = dir.join(name);
        if let Ok(file) = fs.open(&path, OpenMode::CreateNew) {
            let _ = file.write_all_at(&contents, 0);
            let _ = file.sync_data();
        }
    }
    let _ = fs.sync_dir(&dir);
    fs
}

/// The file WAL opening an arbitrary directory of arbitrary segment files,
/// in every recovery mode; whatever it accepts must read back and take an
/// append.
pub fn wal_dir(data: &[u8]) {
    for mode in MODES {
        let fs = directory(data);
        let config = WalConfig::new(Path::new("/wal"))
            .segment_size(64 << 10)
            .fsync(FsyncPolicy::Always)
            .recovery(mode);
        let Ok((wal, info)) = Wal::open_in(fs, config) else { continue };
        let mut lsns = Vec::new();
        if let Ok(mut iter) = wal.iter() {
            while let Ok(Some(entry)) = iter.try_next() {
                lsns.push(entry.lsn);
            }
        }
        // In LSN order, inside the range recovery reported (under
        // `SkipDamaged` the record count is an estimate on hostile input).
        let (lo, hi) = (info.first_lsn.unwrap_or(0), info.last_lsn.unwrap_or(0));
        assert!(lsns.windows(2).all(|w| w[0] < w[1]), "{mode:?}: LSNs out of order");
        assert!(lsns.iter().all(|l| (lo..=hi).contains(l)), "{mode:?}: LSN outside {lo}..={hi}: {info:?}");
        if mode != RecoveryMode::SkipDamaged {
            assert_eq!(lsns.len() as u64, info.records, "{mode:?}: {info:?}");
        }
        let _ = wal.append(&nori_wal::Record::raw(b"after"));
    }
}

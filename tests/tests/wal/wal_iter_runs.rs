//! The iterator's walk in runs: frames checked three at a time, their CRCs
//! interleaved, straight from the segment maps (real files, so that the
//! maps exist). What it returns is held to what was written from every
//! start, and damage or a malformed record met at any place in a run of
//! three is reported at its LSN, with every record before it returned.

use std::path::Path;

use nori_wal::blocking::Wal;
use nori_wal::crc::crc32c;
use nori_wal::format::{AnyHeader, MARK_PAYLOAD_LEN, Version, frame_len_of, v2};
use nori_wal::{Error, FsyncPolicy, Lsn, Record, WalConfig};
use nori_wal_tests::walkit::{Scratch, flip_bit, overwrite, payload, segment_files, try_read_all};

/// Records from `from` on, as the tests compare them.
fn read_from(wal: &Wal, from: Lsn) -> Result<Vec<(Lsn, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    let mut iter = wal.iter_from(from)?;
    while let Some(entry) = iter.try_next()? {
        out.push((entry.lsn, payload(&entry.record)));
    }
    Ok(out)
}

/// A log of every frame shape over many 64 KiB segments: single records of
/// each kind, short ones (taken by runs) and ones too long for a run, small
/// batches and batches too long for a run, padding at each rotation.
/// Returns what it holds, in order.
fn mixed_log(dir: &Path) -> Vec<(Lsn, Vec<u8>)> {
    let config = WalConfig::new(dir).segment_size(64 << 10).fsync(FsyncPolicy::Os);
    let (wal, _) = Wal::open(config).unwrap();
    let mut written = Vec::new();
    let mut note = |lsn: Lsn, record: &Record<'_>| written.push((lsn, payload(record)));
    for i in 0..700usize {
        let bytes = vec![(i % 251) as u8; [0, 1, 7, 100, 3000, 5000][i % 6]];
        let key = format!("key-{i}").into_bytes();
        match i % 7 {
            0..=2 => {
                let record = Record::raw(&bytes);
                note(wal.append(&record).unwrap(), &record);
            }
            3 => {
                let record = Record::put(&key, &bytes);
                note(wal.append(&record).unwrap(), &record);
            }
            4 => {
                let record = Record::delete(&key);
                note(wal.append(&record).unwrap(), &record);
            }
            5 => {
                let records = [
                    Record::raw(&bytes[..bytes.len().min(50)]),
                    Record::put(&key, b"v"),
                    Record::delete(&key),
                ];
                let first = wal.append_batch(&records).unwrap();
                for (k, record) in records.iter().enumerate() {
                    note(first.start + k as u64, record);
                }
            }
            _ => {
                let big = vec![i as u8; 120];
                let records: Vec<Record<'_>> = (0..40).map(|_| Record::raw(&big)).collect();
                let first = wal.append_batch(&records).unwrap();
                for (k, record) in records.iter().enumerate() {
                    note(first.start + k as u64, record);
                }
            }
        }
    }
    wal.close().unwrap();
    written
}

#[test]
fn every_start_reads_what_was_written() {
    let scratch = Scratch::new("iter-runs");
    let written = mixed_log(&scratch.wal());
    let segments = segment_files(&scratch.wal()).len();
    assert!(segments > 10, "the log spans many segments: {segments}");
    let (wal, info) = Wal::open(WalConfig::new(scratch.wal())).unwrap();
    assert_eq!(info.records, written.len() as u64);
    assert_eq!(try_read_all(&wal).unwrap(), written);
    let starts = (0..120).chain((120..written.len()).step_by(61)).chain([written.len() - 1]);
    for start in starts {
        assert_eq!(read_from(&wal, start as Lsn).unwrap(), written[start..], "from LSN {start}");
    }
    drop(wal);
    // The async API: records lent from the maps by the reader on the
    // blocking pool, or copied where they are not in a map.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    runtime.block_on(async {
        let (wal, _) = nori_wal::Wal::open(WalConfig::new(scratch.wal())).await.unwrap();
        for start in [0, 1, 2, 3, 500, written.len() - 1] {
            let mut iter = wal.iter_from(start as Lsn);
            let mut read = Vec::new();
            while let Some(entry) = iter.try_next().await.unwrap() {
                read.push((entry.lsn, payload(&entry.record)));
            }
            assert_eq!(read, written[start..], "async, from LSN {start}");
        }
        wal.close().await.unwrap();
    });
}

/// A one-segment log of `n` raw records of 100 bytes, one per frame, and
/// where frame `k` starts in its file.
fn single_frames(dir: &Path, n: usize) -> impl Fn(usize) -> u64 + use<> {
    let config = WalConfig::new(dir).segment_size(1 << 20).fsync(FsyncPolicy::Os).format(Version::V2);
    let (wal, _) = Wal::open(config).unwrap();
    for i in 0..n {
        assert_eq!(wal.append(&Record::raw(&[i as u8; 100])).unwrap(), i as Lsn);
    }
    wal.close().unwrap();
    let file = &segment_files(dir)[0];
    let header = AnyHeader::decode(&std::fs::read(file).unwrap()).unwrap();
    let first = (header.frames_offset + frame_len_of(Version::V2, MARK_PAYLOAD_LEN as u64)) as u64;
    let frame = frame_len_of(Version::V2, 100) as u64;
    move |k| first + k as u64 * frame
}

/// Records `0..k` returned, then damage reported at LSN `k`.
fn stops_at(wal: &Wal, k: usize, what: &str) {
    let mut iter = wal.iter().unwrap();
    for i in 0..k {
        let entry = iter.try_next().unwrap_or_else(|e| panic!("{what} at {k}: record {i}: {e}")).unwrap();
        assert_eq!((entry.lsn, payload(&entry.record)), (i as Lsn, vec![i as u8; 100]), "{what} at {k}");
    }
    match iter.try_next() {
        Err(Error::Corrupt(c)) => assert_eq!(c.lsn, k as Lsn, "{what} at {k}: {c}"),
        other => panic!("{what} at {k}: expected damage, got {other:?}"),
    }
}

const PLACES: [usize; 10] = [0, 1, 2, 3, 4, 5, 6, 100, 298, 299];

#[test]
fn damage_after_open_is_reported_at_its_lsn_wherever_it_falls_in_a_run() {
    let scratch = Scratch::new("iter-runs-damage");
    let at = single_frames(&scratch.wal(), 300);
    let file = &segment_files(&scratch.wal())[0];
    // Opened before the damage: the iterator checks the bytes again as it
    // reads them, whatever recovery found.
    let (wal, info) = Wal::open(WalConfig::new(scratch.wal())).unwrap();
    assert_eq!(info.records, 300);
    for k in PLACES {
        for offset in [2, 5, 8 + 50] {
            flip_bit(file, at(k) + offset, 3);
            stops_at(&wal, k, &format!("a bit flipped at byte {offset}"));
            flip_bit(file, at(k) + offset, 3);
        }
    }
    assert_eq!(try_read_all(&wal).unwrap().len(), 300, "the log reads whole again");
}

#[test]
fn a_malformed_record_with_a_valid_checksum_is_reported_at_its_lsn() {
    for k in PLACES {
        let scratch = Scratch::new("iter-runs-malformed");
        let at = single_frames(&scratch.wal(), 300);
        let file = &segment_files(&scratch.wal())[0];
        let header = AnyHeader::decode(&std::fs::read(file).unwrap()).unwrap();
        // A put frame of the same length whose key length runs past its
        // payload, checked under the segment's epoch and LSN `k`.
        let mut payload = [0x5A; 100];
        payload[..4].copy_from_slice(&1000u32.to_le_bytes());
        let mut frame = vec![1, !1, 100, 0, 0, 0, 0, 0];
        let mut covered = header.epoch.to_le_bytes().to_vec();
        covered.extend_from_slice(&(k as u64).to_le_bytes());
        covered.extend_from_slice(&frame[..4]);
        covered.extend_from_slice(&payload);
        frame[4..8].copy_from_slice(&crc32c(&covered).to_le_bytes());
        frame.extend_from_slice(&payload);
        let key = nori_wal::format::EpochKey::new(header.epoch);
        assert!(v2::decode_frame(&frame, &key, k as Lsn).is_ok(), "the planted frame checks out");
        overwrite(file, at(k), &frame);
        let (wal, info) = Wal::open(WalConfig::new(scratch.wal())).unwrap();
        assert_eq!(info.records, 300, "its checksum is valid: recovery keeps it");
        stops_at(&wal, k, "a malformed put");
        // Read from the record after it, it is stepped over unread.
        let rest = read_from(&wal, k as Lsn + 1).unwrap();
        assert_eq!(rest.len(), 299 - k);
        assert!(rest.iter().all(|(lsn, p)| *p == vec![*lsn as u8; 100]));
    }
}

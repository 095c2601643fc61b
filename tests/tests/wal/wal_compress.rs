//! Compressed records in the file WAL: LZ4 and Zstd mixed with plain
//! records in one log, records of every size, and hostile compressed frames
//! that must give errors, never panics or unbounded allocations.

use std::path::Path;

use nori_wal::blocking::Wal;
use nori_wal::format::{
    AnyHeader, Compression, EncodedFrame, EpochKey, FrameKind, MARK_PAYLOAD_LEN, Version, frame_len_of, v2,
};
use nori_wal::{Codec, Error, FsyncPolicy, Record, WalConfig};
use nori_wal_tests::walkit::{Scratch, overwrite, read_all, segment_files, try_read_all};
use rand::RngCore;

fn text(i: usize) -> Vec<u8> {
    format!("{{\"user\": {i}, \"name\": \"user number {i}\", \"tags\": [\"alpha\", \"beta\", \"gamma\"], \"note\": \"{}\"}}", "the quick brown fox ".repeat(i % 20 + 5)).into_bytes()
}

fn random(rng: &mut impl RngCore, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

fn mixed_log(codec: Codec) -> (u64, u64) {
    let scratch = Scratch::new("compress");
    let config =
        WalConfig::new(scratch.wal()).segment_size(1 << 20).fsync(FsyncPolicy::Os).compression(codec, 64);
    let (wal, _) = Wal::open(config.clone()).unwrap();
    let mut rng = nori_wal_tests::sim::rng(7);
    let mut expected = Vec::new();
    let mut plain_bytes = 0u64;
    for i in 0..600 {
        let v = match i % 3 {
            0 => text(i),
            1 => random(&mut rng, 300),
            _ => format!("small {i}").into_bytes(),
        };
        plain_bytes += v.len() as u64;
        let lsn = if i % 2 == 0 {
            wal.append(&Record::raw(&v)).unwrap()
        } else {
            let key = format!("key:{i}").into_bytes();
            let lsn = wal.append(&Record::put(&key, &v)).unwrap();
            let mut p = key;
            p.push(b'=');
            p.extend_from_slice(&v);
            expected.push((lsn, p));
            continue;
        };
        expected.push((lsn, v));
    }
    assert!(read_all(&wal) == expected, "{codec:?} before reopen");
    let written = wal.stats().bytes_written;
    wal.close().unwrap();
    // Any configuration reads any codec.
    let (wal, info) = Wal::open(config.compression(Codec::None, 0)).unwrap();
    assert_eq!(info.records, 600);
    assert!(read_all(&wal) == expected, "{codec:?} after reopen");
    (plain_bytes, written)
}

#[test]
fn compressed_and_plain_records_mix_in_one_log() {
    let (plain, none) = mixed_log(Codec::None);
    let (_, lz4) = mixed_log(Codec::Lz4);
    let (_, zstd) = mixed_log(Codec::Zstd { level: 3 });
    println!(
        "600 records, {plain} payload bytes: {none} bytes written plain, {lz4} with LZ4, {zstd} with Zstd"
    );
    assert!(lz4 < none * 3 / 4 && zstd < lz4, "compression did not pay: {none} {lz4} {zstd}");
}

#[test]
fn records_of_every_size_round_trip_compressed() {
    for codec in [Codec::Lz4, Codec::Zstd { level: 1 }] {
        let scratch = Scratch::new("compress-sizes");
        let config = WalConfig::new(scratch.wal())
            .segment_size(256 << 10)
            .fsync(FsyncPolicy::Os)
            .compression(codec, 0);
        let (wal, _) = Wal::open(config.clone()).unwrap();
        let max = wal.max_record_len() as usize - 16;
        let sizes: Vec<usize> = (0..600).chain([4096, 65_536, max]).collect();
        for &n in &sizes {
            let v: Vec<u8> = (0..n).map(|i| ((i / 7) % 251) as u8).collect();
            wal.append(&Record::raw(&v)).unwrap();
        }
        drop(wal);
        let (wal, _) = Wal::open(config).unwrap();
        let got = read_all(&wal);
        assert_eq!(got.len(), sizes.len());
        for ((_, v), &n) in got.iter().zip(&sizes) {
            assert!(
                v.len() == n && v.iter().enumerate().all(|(i, b)| *b == ((i / 7) % 251) as u8),
                "{codec:?} size {n}"
            );
        }
    }
}

/// A compressed frame to plant: its kind, codec, recorded uncompressed
/// length and compressed bytes.
type Planted = (FrameKind, Compression, u32, &'static [u8]);

/// Writes the compressed frame `planted` after the last frame of the only
/// segment of a one-record log in `dir` written in `version`, at the LSN
/// that follows.
fn plant(dir: &Path, version: Version, planted: Planted) {
    let config = WalConfig::new(dir).segment_size(64 << 10).fsync(FsyncPolicy::Always).format(version);
    {
        let (wal, _) = Wal::open(config).unwrap();
        wal.append(&Record::raw(b"the one good record")).unwrap();
    }
    let file = &segment_files(dir)[0];
    let bytes = std::fs::read(file).unwrap();
    let header = AnyHeader::decode(&bytes).unwrap();
    let key = EpochKey::new(header.epoch);
    let (kind, codec, len, data) = planted;
    // The header, the first mark, then one raw frame of 19 bytes.
    let mark = frame_len_of(version, MARK_PAYLOAD_LEN as u64);
    let end = header.frames_offset + mark + frame_len_of(version, 19);
    let out = match version {
        Version::V1 => {
            let frame = EncodedFrame::compressed(key, 1, kind, codec, len, 1, data).unwrap();
            let mut out = vec![0u8; frame.len()];
            frame.write_to(&mut out).unwrap();
            out
        }
        Version::V2 => {
            let frame = v2::EncodedFrame::compressed(kind, codec, len, 1, data).unwrap();
            let mut out = vec![0u8; frame.len()];
            frame.write_to(&mut out, &key, header.base_lsn + 1).unwrap();
            out
        }
    };
    overwrite(file, end, &out);
}

#[test]
fn hostile_compressed_frames_give_errors_not_panics() {
    static GARBAGE: [u8; 64] = [0xA7; 64];
    static SHORT: [u8; 3] = [0x10, b'a', 0];
    let cases: [(&str, Planted); 5] = [
        ("garbage LZ4", (FrameKind::Raw, Compression::Lz4, 500, &GARBAGE)),
        ("garbage Zstd", (FrameKind::Raw, Compression::Zstd, 500, &GARBAGE)),
        ("length above the segment", (FrameKind::Raw, Compression::Lz4, 2_000_000_000, &GARBAGE)),
        ("shorter than recorded", (FrameKind::Raw, Compression::Lz4, 40, &SHORT)),
        ("a put whose body is malformed", (FrameKind::Put, Compression::Lz4, 1, &SHORT[..2])),
    ];
    for version in [Version::V1, Version::V2] {
        for (name, planted) in cases {
            let scratch = Scratch::new("compress-hostile");
            plant(&scratch.wal(), version, planted);
            // The frame's checksum is valid: recovery keeps it as a record.
            let (wal, info) = Wal::open(WalConfig::new(scratch.wal()).segment_size(64 << 10)).unwrap();
            assert_eq!(info.records, 2, "{name} ({version})");
            let err = try_read_all(&wal).unwrap_err();
            assert!(matches!(err, Error::Corrupt(_)), "{name} ({version}): {err}");
            // The good record before it still reads.
            let mut iter = wal.iter().unwrap();
            assert_eq!(iter.try_next().unwrap().unwrap().record, Record::raw(b"the one good record"));
            println!("{name} ({version}): {err}");
        }
    }
}

//! Golden vectors that freeze format v1.
//!
//! Each case below encodes fixed inputs and compares the bytes with a hex
//! fixture in `tests/fixtures/format-v1/`; it also decodes the fixture and
//! checks every field. A change to the encoding of any fixture fails here:
//! that is a format change, which needs a new format version.
//!
//! To write the fixtures of a *new* case (never to paper over a change):
//! `NORI_WAL_BLESS=1 cargo test -p nori-wal-tests --test format -- golden::`.

use nori_wal_core::Record;
use nori_wal_core::format::{self, Body, Compression, FrameKind, Mark, SegmentHeader};
use nori_wal_tests::GoldenCase as Case;

fn frame(len: u64, write: impl FnOnce(&mut [u8]) -> usize) -> Vec<u8> {
    let mut buf = vec![0u8; len as usize];
    assert_eq!(write(&mut buf), buf.len());
    buf
}

fn check_record(bytes: &[u8], epoch: u64, lsn_offset: u32, expected: Record<'_>) {
    let decoded = format::decode_frame(bytes, epoch).unwrap();
    assert_eq!(decoded.len(), bytes.len());
    assert_eq!(decoded.header().lsn_offset(), lsn_offset);
    assert_eq!(decoded.body().unwrap(), Body::Record(expected));
}

const PUT: Record<'static> = Record::put(b"user:42", b"alice@example.com");
const BATCH: [Record<'static>; 3] = [Record::put(b"a", b"1"), Record::delete(b"b"), Record::raw(b"xyz")];
const ASCENDING: [u8; 32] = {
    let mut a = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        a[i] = i as u8;
        i += 1;
    }
    a
};

const CASES: &[Case] = &[
    Case {
        name: "segment-header-pu1",
        about: "segment header: epoch 1, base LSN 0, 4096-byte segment, program unit 1",
        encode: || frame(56, |b| SegmentHeader::new(1, 0, 4096, 1).unwrap().encode(b).unwrap()),
        check: |b| assert_eq!(SegmentHeader::decode(b), Ok(SegmentHeader::new(1, 0, 4096, 1).unwrap())),
    },
    Case {
        name: "segment-header-pu256",
        about: "segment header: epoch 0x0102030405060708, base LSN 0x1122334455667788, \
                log start 0x1122334455660000, 1 MiB, program unit 256",
        encode: || {
            frame(56, |b| {
                SegmentHeader::new(0x0102_0304_0506_0708, 0x1122_3344_5566_7788, 1 << 20, 256)
                    .unwrap()
                    .with_log_start(0x1122_3344_5566_0000)
                    .unwrap()
                    .encode(b)
                    .unwrap()
            })
        },
        check: |b| {
            let h = SegmentHeader::decode(b).unwrap();
            assert_eq!(
                (h.epoch, h.base_lsn, h.segment_size, h.program_unit),
                (0x0102_0304_0506_0708, 0x1122_3344_5566_7788, 1 << 20, 256)
            );
        },
    },
    Case {
        name: "frame-put",
        about: "put user:42 = alice@example.com, epoch 7, LSN offset 0",
        encode: || frame(format::record_frame_len(&PUT), |b| format::encode_record(b, 7, 0, &PUT).unwrap()),
        check: |b| check_record(b, 7, 0, PUT),
    },
    Case {
        name: "frame-put-empty",
        about: "put with an empty key and an empty value, epoch 7, LSN offset 1",
        encode: || {
            let r = Record::put(b"", b"");
            frame(format::record_frame_len(&r), |b| format::encode_record(b, 7, 1, &r).unwrap())
        },
        check: |b| check_record(b, 7, 1, Record::put(b"", b"")),
    },
    Case {
        name: "frame-delete",
        about: "delete user:42, epoch 7, LSN offset 2",
        encode: || {
            let r = Record::delete(b"user:42");
            frame(format::record_frame_len(&r), |b| format::encode_record(b, 7, 2, &r).unwrap())
        },
        check: |b| check_record(b, 7, 2, Record::delete(b"user:42")),
    },
    Case {
        name: "frame-raw",
        about: "raw payload of bytes 0x00..0x1f, epoch u64::MAX, LSN offset u32::MAX",
        encode: || {
            let r = Record::raw(&ASCENDING);
            frame(format::record_frame_len(&r), |b| format::encode_record(b, u64::MAX, u32::MAX, &r).unwrap())
        },
        check: |b| check_record(b, u64::MAX, u32::MAX, Record::raw(&ASCENDING)),
    },
    Case {
        name: "frame-raw-empty",
        about: "empty raw payload, epoch 1, LSN offset 0",
        encode: || frame(16, |b| format::encode_record(b, 1, 0, &Record::raw(b"")).unwrap()),
        check: |b| check_record(b, 1, 0, Record::raw(b"")),
    },
    Case {
        name: "frame-batch",
        about: "batch [put a=1, delete b, raw xyz], epoch 9, LSN offsets 5..8",
        encode: || frame(format::batch_frame_len(&BATCH), |b| format::encode_batch(b, 9, 5, &BATCH).unwrap()),
        check: |b| {
            let f = format::decode_frame(b, 9).unwrap();
            assert_eq!((f.header().kind(), f.header().lsn_offset()), (FrameKind::Batch, 5));
            assert_eq!(f.records().unwrap().collect::<Vec<_>>(), BATCH);
        },
    },
    Case {
        name: "frame-padding-16",
        about: "padding frame of 16 bytes (header only), epoch 3, next LSN offset 4",
        encode: || frame(16, |b| format::encode_padding(b, 3, 4, 16).unwrap()),
        check: |b| {
            let f = format::decode_frame(b, 3).unwrap();
            assert_eq!((f.header().kind(), f.len(), f.header().lsn_offset()), (FrameKind::Padding, 16, 4));
        },
    },
    Case {
        name: "frame-padding-40",
        about: "padding frame of 40 bytes, epoch 3, next LSN offset 4",
        encode: || frame(40, |b| format::encode_padding(b, 3, 4, 40).unwrap()),
        check: |b| {
            let f = format::decode_frame(b, 3).unwrap();
            assert_eq!((f.header().kind(), f.len()), (FrameKind::Padding, 40));
            assert!(f.payload().iter().all(|&x| x == 0));
        },
    },
    Case {
        name: "frame-mark",
        about: "mark: durable_end 0x1122334455667788, log_start 0x0102030405060708, epoch 3, next LSN offset 6",
        encode: || {
            let mark = Mark { durable_end: 0x1122_3344_5566_7788, log_start: 0x0102_0304_0506_0708 };
            frame(32, |b| format::encode_mark(b, 3, 6, mark).unwrap())
        },
        check: |b| {
            let f = format::decode_frame(b, 3).unwrap();
            assert_eq!((f.header().kind(), f.header().lsn_offset()), (FrameKind::Mark, 6));
            let mark = Mark { durable_end: 0x1122_3344_5566_7788, log_start: 0x0102_0304_0506_0708 };
            assert_eq!(f.body().unwrap(), Body::Mark(mark));
        },
    },
    Case {
        name: "frame-lz4-marked",
        about: "compression marking: a batch of 3 records compressed with LZ4 to the bytes 'opaque' \
                (uncompressed length 1000), epoch 2, LSN offset 0",
        encode: || {
            frame(16 + 4 + 6, |b| {
                format::encode_compressed(b, 2, 0, FrameKind::Batch, Compression::Lz4, 1000, 3, b"opaque")
                    .unwrap()
            })
        },
        check: |b| {
            let f = format::decode_frame(b, 2).unwrap();
            let c = f.compressed().unwrap().unwrap();
            assert_eq!(
                (f.header().kind(), c.codec, c.uncompressed_len, c.data),
                (FrameKind::Batch, Compression::Lz4, 1000, &b"opaque"[..])
            );
        },
    },
    Case {
        name: "frame-zstd-marked",
        about: "compression marking: a put compressed with Zstd to the bytes 'zz' (uncompressed length 7), \
                epoch 2, LSN offset 3",
        encode: || {
            frame(16 + 4 + 2, |b| {
                format::encode_compressed(b, 2, 3, FrameKind::Put, Compression::Zstd, 7, 1, b"zz").unwrap()
            })
        },
        check: |b| {
            let f = format::decode_frame(b, 2).unwrap();
            let c = f.compressed().unwrap().unwrap();
            assert_eq!(
                (f.header().kind(), c.codec, c.uncompressed_len),
                (FrameKind::Put, Compression::Zstd, 7)
            );
        },
    },
];

#[test]
fn golden_vectors_freeze_format_v1() {
    nori_wal_tests::check_golden("format-v1", CASES);
    println!("{} golden vectors match", CASES.len());
}

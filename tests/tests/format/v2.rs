//! Format v2: golden vectors that freeze it (`tests/fixtures/format-v2/`),
//! and its structural guarantees checked exhaustively where the space is
//! small (every byte value, every bit of a frame, every kind byte).
//!
//! To write the fixtures of a *new* case (never to paper over a change):
//! `NORI_WAL_BLESS=1 cargo test -p nori-wal-tests --test format -- v2::`.

use nori_wal_core::format::v2::{self, EncodedFrame, FramesCrc, SegmentHeader};
use nori_wal_core::format::{Body, Compression, DecodeError, EpochKey, FrameKind, Mark, Seal};
use nori_wal_core::{Lsn, Record};
use nori_wal_tests::GoldenCase as Case;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

fn written(frame: EncodedFrame<'_>, epoch: u64, lsn: Lsn) -> Vec<u8> {
    let mut buf = vec![0u8; frame.len()];
    assert_eq!(frame.write_to(&mut buf, &EpochKey::new(epoch), lsn).unwrap(), buf.len());
    buf
}

fn header_bytes(h: SegmentHeader) -> Vec<u8> {
    let mut buf = vec![0u8; h.len()];
    assert_eq!(h.encode(&mut buf).unwrap(), buf.len());
    buf
}

fn body(bytes: &[u8], epoch: u64, lsn: Lsn) -> Body<'_> {
    let f = v2::decode_frame(bytes, &EpochKey::new(epoch), lsn).unwrap();
    assert_eq!(f.len(), bytes.len());
    f.body().unwrap()
}

const PUT: Record<'static> = Record::put(b"user:42", b"alice@example.com");
const BATCH: [Record<'static>; 3] = [Record::put(b"a", b"1"), Record::delete(b"b"), Record::raw(b"xyz")];

const CASES: &[Case] = &[
    Case {
        name: "segment-header",
        about: "v2 segment header: epoch 1, base LSN 0, program unit 4 (a flash ring slot)",
        encode: || header_bytes(SegmentHeader::new(1, 0, 4).unwrap()),
        check: |b| assert_eq!(SegmentHeader::decode(b), Ok(SegmentHeader::new(1, 0, 4).unwrap())),
    },
    Case {
        name: "segment-header-sized",
        about: "v2 segment header: epoch 0x010203040506, base LSN 0x1122334455667788, program unit 1, \
                SIZED 64 MiB, PREALLOCATED (a segment file)",
        encode: || {
            header_bytes(
                SegmentHeader::new(0x0102_0304_0506, 0x1122_3344_5566_7788, 1)
                    .unwrap()
                    .sized(64 << 20)
                    .unwrap()
                    .preallocated(true),
            )
        },
        check: |b| {
            let h = SegmentHeader::decode(b).unwrap();
            assert_eq!(
                (h.epoch, h.base_lsn, h.program_unit, h.segment_size, h.preallocated),
                (0x0102_0304_0506, 0x1122_3344_5566_7788, 1, Some(64 << 20), true)
            );
        },
    },
    Case {
        name: "frame-put",
        about: "put user:42 = alice@example.com, epoch 7, LSN 1000",
        encode: || written(EncodedFrame::record(&PUT).unwrap(), 7, 1000),
        check: |b| assert_eq!(body(b, 7, 1000), Body::Record(PUT)),
    },
    Case {
        name: "frame-raw-16",
        about: "a raw record of the 16 bytes 0..16, epoch 7, LSN 1001 (24 bytes: the flash_cost record)",
        encode: || {
            let payload: Vec<u8> = (0u8..16).collect();
            written(EncodedFrame::record(&Record::raw(&payload)).unwrap(), 7, 1001)
        },
        check: |b| {
            let payload: Vec<u8> = (0u8..16).collect();
            assert_eq!(b.len(), 24);
            assert_eq!(body(b, 7, 1001), Body::Record(Record::raw(&payload)));
        },
    },
    Case {
        name: "frame-delete",
        about: "delete user:42, epoch 7, LSN 2^40",
        encode: || written(EncodedFrame::record(&Record::delete(b"user:42")).unwrap(), 7, 1 << 40),
        check: |b| assert_eq!(body(b, 7, 1 << 40), Body::Record(Record::delete(b"user:42"))),
    },
    Case {
        name: "frame-batch",
        about: "batch [put a=1, delete b, raw xyz], epoch 3, LSN 5",
        encode: || written(EncodedFrame::batch(&BATCH).unwrap(), 3, 5),
        check: |b| {
            let f = v2::decode_frame(b, &EpochKey::new(3), 5).unwrap();
            assert_eq!(f.records().unwrap().collect::<Vec<_>>(), BATCH);
        },
    },
    Case {
        name: "frame-padding-12",
        about: "padding frame of 12 bytes, epoch 3, bound to LSN 8",
        encode: || written(EncodedFrame::padding(12).unwrap(), 3, 8),
        check: |b| assert_eq!(body(b, 3, 8), Body::Padding),
    },
    Case {
        name: "frame-mark",
        about: "mark durable_end 100 log_start 40, epoch 3, bound to LSN 100",
        encode: || written(EncodedFrame::mark(Mark { durable_end: 100, log_start: 40 }), 3, 100),
        check: |b| assert_eq!(body(b, 3, 100), Body::Mark(Mark { durable_end: 100, log_start: 40 })),
    },
    Case {
        name: "frame-hole",
        about: "hole of 17 LSNs from LSN 200, epoch 3",
        encode: || written(EncodedFrame::hole(17).unwrap(), 3, 200),
        check: |b| assert_eq!(body(b, 3, 200), Body::Hole { count: 17 }),
    },
    Case {
        name: "frame-seal",
        about: "seal: 169 records, frames_crc 0xDEADBEEF, epoch 3, bound to base LSN 0",
        encode: || written(EncodedFrame::seal(Seal { records: 169, frames_crc: 0xDEAD_BEEF }), 3, 0),
        check: |b| {
            assert_eq!(b.len(), v2::SEAL_LEN);
            assert_eq!(body(b, 3, 0), Body::Seal(Seal { records: 169, frames_crc: 0xDEAD_BEEF }));
        },
    },
    Case {
        name: "frame-lz4-marked",
        about: "a batch of 3 records compressed with LZ4 to the bytes 'opaque' (uncompressed length 1000), \
                epoch 2, LSN 0",
        encode: || {
            written(
                EncodedFrame::compressed(FrameKind::Batch, Compression::Lz4, 1000, 3, b"opaque").unwrap(),
                2,
                0,
            )
        },
        check: |b| {
            let f = v2::decode_frame(b, &EpochKey::new(2), 0).unwrap();
            assert_eq!((f.header().kind(), f.header().compression()), (FrameKind::Batch, Compression::Lz4));
            assert_eq!(f.payload(), b"\xE8\x03\x00\x00opaque");
            assert_eq!(f.body(), Err(DecodeError::Compressed { codec: Compression::Lz4 }));
        },
    },
];

#[test]
fn golden_vectors_freeze_format_v2() {
    nori_wal_tests::check_golden("format-v2", CASES);
}

#[test]
fn a_run_of_one_byte_value_never_decodes() {
    for value in 0..=255u8 {
        let run = [value; 64];
        for lsn in [0, 1, 1000, u64::MAX] {
            for epoch in [1, v2::MAX_EPOCH] {
                let got = v2::decode_frame(&run, &EpochKey::new(epoch), lsn);
                assert_eq!(got.unwrap_err(), DecodeError::Blank { fill: value }, "byte {value:#04x}");
            }
        }
        assert_eq!(SegmentHeader::decode(&run), Err(DecodeError::Blank { fill: value }));
    }
}

#[test]
fn exactly_28_kind_bytes_are_defined() {
    let mut defined = Vec::new();
    for kind in 0..=255u8 {
        // A long form needs a length above the short form's.
        let mut h = [kind, !kind, 0, 0, 1, 0, 0, 0, 0, 0];
        let long = kind & 0x40 != 0;
        if long {
            h[2..6].copy_from_slice(&0x1_0000u32.to_le_bytes());
        }
        match v2::FrameHeader::decode(&h) {
            Ok(header) => {
                assert_eq!(header.header_len(), if long { 10 } else { 8 });
                defined.push(kind);
            }
            Err(e) => assert_eq!(e, DecodeError::UnknownKind { byte: kind }, "kind {kind:#04x}"),
        }
    }
    assert_eq!(defined.len(), 28, "{defined:02x?}");
    // A broken complement is a bad header, whatever the kind.
    assert_eq!(v2::FrameHeader::decode(&[3, 3 ^ 0xFF ^ 1, 0, 0, 0, 0, 0, 0]), Err(DecodeError::BadHeader));
}

/// Frames of every kind, as written.
fn sample_frames() -> Vec<(&'static str, Vec<u8>, Lsn)> {
    let big = vec![0x5Au8; 70_000];
    let big_record = Record::raw(&big);
    vec![
        ("put", written(EncodedFrame::record(&PUT).unwrap(), 7, 1000), 1000),
        ("raw-16", written(EncodedFrame::record(&Record::raw(&[1; 16])).unwrap(), 7, 5), 5),
        ("batch", written(EncodedFrame::batch(&BATCH).unwrap(), 7, 9), 9),
        ("padding", written(EncodedFrame::padding(20).unwrap(), 7, 12), 12),
        ("mark", written(EncodedFrame::mark(Mark { durable_end: 3, log_start: 1 }), 7, 12), 12),
        ("hole", written(EncodedFrame::hole(4).unwrap(), 7, 12), 12),
        ("seal", written(EncodedFrame::seal(Seal { records: 9, frames_crc: 1 }), 7, 0), 0),
        ("long", written(EncodedFrame::record(&big_record).unwrap(), 7, 77), 77),
    ]
}

#[test]
fn every_single_bit_flip_of_a_frame_is_caught() {
    let key = EpochKey::new(7);
    let mut flips = 0u64;
    for (name, frame, lsn) in sample_frames() {
        assert!(v2::decode_frame(&frame, &key, lsn).is_ok(), "{name}");
        // Every bit of the header and of short payloads; a stride through
        // the long one.
        let stride = if frame.len() > 4096 { 61 } else { 1 };
        for byte in (0..frame.len()).filter(|&i| i < 16 || i % stride == 0) {
            for bit in 0..8 {
                let mut bad = frame.clone();
                bad[byte] ^= 1 << bit;
                let got = v2::decode_frame(&bad, &key, lsn);
                assert!(got.is_err(), "{name}: flip of byte {byte} bit {bit} decoded");
                flips += 1;
            }
        }
    }
    assert!(flips > 10_000, "{flips}");
}

#[test]
fn a_frame_checks_out_only_under_its_epoch_and_lsn() {
    for (name, frame, lsn) in sample_frames() {
        let key = EpochKey::new(7);
        assert!(v2::decode_frame(&frame, &key, lsn).is_ok());
        for other in [lsn.wrapping_add(1), lsn.wrapping_sub(1), lsn ^ (1 << 32), lsn ^ (1 << 63)] {
            assert!(
                matches!(v2::decode_frame(&frame, &key, other), Err(DecodeError::BadChecksum { .. })),
                "{name} under LSN {other}"
            );
        }
        for epoch in [6, 8, 7 | (1 << 47)] {
            assert!(
                matches!(
                    v2::decode_frame(&frame, &EpochKey::new(epoch), lsn),
                    Err(DecodeError::BadChecksum { .. })
                ),
                "{name} under epoch {epoch}"
            );
        }
    }
}

#[test]
fn no_length_reads_past_the_bytes_given() {
    // Every short length, and long lengths around the edges, on a frame cut
    // to the bytes before a seal slot: an error, never a panic or a read
    // past the slice.
    let key = EpochKey::new(7);
    let frame = written(EncodedFrame::record(&Record::raw(&[9; 40])).unwrap(), 7, 0);
    for len in 0..=u16::MAX {
        let mut bad = frame.clone();
        bad[2..4].copy_from_slice(&len.to_le_bytes());
        match v2::decode_frame(&bad, &key, 0) {
            Ok(f) => assert_eq!((len, f.len()), (40, 48)),
            Err(DecodeError::LengthOutOfBounds { frame_len, available }) => {
                assert!(frame_len > available && available == 48);
            }
            Err(DecodeError::BadChecksum { .. } | DecodeError::Truncated { .. }) => {}
            Err(e) => panic!("len {len}: {e:?}"),
        }
    }
    let long_kind = 3 | 0x40;
    for len in [0x1_0000u32, v2::MAX_PAYLOAD_LEN, v2::MAX_PAYLOAD_LEN + 1, u32::MAX] {
        let mut bad = vec![long_kind, !long_kind];
        bad.extend_from_slice(&len.to_le_bytes());
        bad.extend_from_slice(&[0; 100]);
        assert!(matches!(v2::decode_frame(&bad, &key, 0), Err(DecodeError::LengthOutOfBounds { .. })));
    }
    // A long frame whose length fits the short form has one encoding only.
    let mut short_in_long = vec![long_kind, !long_kind];
    short_in_long.extend_from_slice(&5u32.to_le_bytes());
    short_in_long.extend_from_slice(&[0; 9]);
    assert_eq!(v2::FrameHeader::decode(&short_in_long), Err(DecodeError::UnknownKind { byte: long_kind }));
}

#[test]
fn long_frames_round_trip_above_64_kib() {
    let key = EpochKey::new(2);
    for n in [65_535usize, 65_536, 1 << 20] {
        let payload = vec![0xC3u8; n];
        let record = Record::raw(&payload);
        let frame = written(EncodedFrame::record(&record).unwrap(), 2, 3);
        let header_len = if n <= 65_535 { 8 } else { 10 };
        assert_eq!(frame.len(), header_len + n);
        let f = v2::decode_frame(&frame, &key, 3).unwrap();
        assert_eq!(f.body().unwrap(), Body::Record(record));
    }
}

#[test]
fn holes_and_seals_hold_what_was_written() {
    assert!(EncodedFrame::hole(0).is_err());
    let key = EpochKey::new(5);
    // A hole payload of zero, written by hand, is refused as malformed.
    let mut zero_hole = written(EncodedFrame::hole(1).unwrap(), 5, 0);
    zero_hole[8..12].copy_from_slice(&0u32.to_le_bytes());
    let crc = {
        let mut f = zero_hole.clone();
        // Re-seal by hand: CRC32C(epoch ‖ lsn ‖ kind inv len ‖ payload).
        let mut bytes = 5u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&f[..4]);
        bytes.extend_from_slice(&f[8..]);
        f.truncate(0);
        nori_wal_core::crc::crc32c(&bytes)
    };
    zero_hole[4..8].copy_from_slice(&crc.to_le_bytes());
    let f = v2::decode_frame(&zero_hole, &key, 0).unwrap();
    assert!(matches!(f.body(), Err(DecodeError::MalformedBody { .. })));
    // A hole takes its count of LSNs and holds no record.
    let hole = written(EncodedFrame::hole(u32::MAX).unwrap(), 5, 10);
    let b = v2::decode_frame(&hole, &key, 10).unwrap().body().unwrap();
    assert_eq!((b.lsn_count(), b.record_count(), b.records().count()), (u32::MAX, 0, 0));
    // The seal's checksum is the running CRC of the frames' CRC fields.
    let frames = [
        written(EncodedFrame::record(&PUT).unwrap(), 5, 0),
        written(EncodedFrame::batch(&BATCH).unwrap(), 5, 1),
    ];
    let mut sum = FramesCrc::default();
    let mut crcs = Vec::new();
    for f in &frames {
        let h = v2::FrameHeader::decode(f).unwrap();
        sum.add(h.stored_crc());
        crcs.extend_from_slice(&h.stored_crc().to_le_bytes());
    }
    assert_eq!(sum.value(), nori_wal_core::crc::crc32c(&crcs));
}

#[test]
fn segment_headers_refuse_what_they_do_not_hold() {
    let plain = SegmentHeader::new(9, 77, 4).unwrap();
    let sized = SegmentHeader::new(9, 77, 1).unwrap().sized(1 << 20).unwrap().preallocated(true);
    for h in [plain, sized] {
        let bytes = header_bytes(h);
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        // Every single-bit flip fails (never another valid header).
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[byte] ^= 1 << bit;
                assert!(SegmentHeader::decode(&bad).is_err(), "flip {byte}.{bit} of {h:?}");
            }
        }
        assert!(matches!(
            SegmentHeader::decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated { .. })
        ));
    }
    // Version 1's magic is another format; a newer version byte under a CRC
    // that holds is refused as unsupported, under one that fails it is
    // damage (a torn header is never taken for a newer version).
    assert_eq!(SegmentHeader::decode(b"NORIWAL\0________________________"), Err(DecodeError::NotASegment));
    let mut newer = header_bytes(plain);
    newer[4] = 3;
    assert!(matches!(SegmentHeader::decode(&newer), Err(DecodeError::BadSegmentChecksum { .. })));
    let crc = nori_wal_core::crc::crc32c(&newer[..20]);
    newer[20..24].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        SegmentHeader::decode(&newer),
        Err(DecodeError::UnsupportedVersion { found: 3, supported: 2 })
    );
    newer[4] = 1;
    let crc = nori_wal_core::crc::crc32c(&newer[..20]);
    newer[20..24].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(SegmentHeader::decode(&newer), Err(DecodeError::InvalidSegmentHeader { .. })));
    // Impossible values are refused when encoding.
    assert!(SegmentHeader::new(0, 0, 4).is_err());
    assert!(SegmentHeader::new(v2::MAX_EPOCH + 1, 0, 4).is_err());
    assert!(SegmentHeader::new(1, 0, 3).is_err());
    assert!(SegmentHeader::new(1, 0, 1 << 17).is_err());
    assert!(SegmentHeader::new(1, 0, 4096).unwrap().sized(4096).is_err(), "no room for a frame and the seal");
    assert!(SegmentHeader::new(1, 0, 4096).unwrap().sized(3 * 4096).is_ok());
    // On flash: 24 bytes of header and a 16-byte seal slot leave 4 056
    // bytes of frames in a 4 KiB sector (FORMAT.md section v2.10).
    assert_eq!((plain.frames_offset(), plain.seal_offset(4096)), (24, 4080));
}

/// A seeded generator, so failures reproduce.
struct Gen(SmallRng);

impl Gen {
    fn new(seed: u64) -> Self {
        Self(SmallRng::seed_from_u64(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        self.0.fill_bytes(&mut out);
        out
    }
}

#[test]
fn the_lsn_of_a_frame_is_solved_from_its_bytes() {
    let mut g = Gen::new(0x5EED);
    let key = EpochKey::new(0x00AB_CDEF_0123);
    for round in 0..400 {
        // LSNs anywhere, and next to the 2^32 boundaries the solve splits on.
        let lsn = match round % 4 {
            0 => g.next(),
            1 => (g.below(1 << 20) << 32) | (u64::from(u32::MAX) - g.below(16)),
            2 => g.below(1 << 24),
            _ => (g.below(1 << 30) << 32) + g.below(16),
        };
        let n = g.below(300) as usize;
        let payload = g.bytes(n);
        let record = Record::raw(&payload);
        let frame = written(EncodedFrame::record(&record).unwrap(), key.epoch(), lsn);
        let width = 1 + g.below(1 << 20);
        let start = lsn.saturating_sub(g.below(width));
        let range = start..start.saturating_add(width).max(lsn + 1);
        assert_eq!(v2::solve_lsn(&key, &frame, range.clone()), Some(lsn), "round {round}, {range:?}");
        assert_eq!(v2::solve_lsn(&key, &frame, range.end..range.end.saturating_add(width)), None);
        assert_eq!(v2::solve_lsn(&key, &frame, range.start.saturating_sub(width)..range.start), None);
        // Another epoch: no LSN in a narrow range checks out.
        assert_eq!(v2::solve_lsn(&EpochKey::new(key.epoch() + 1), &frame, range), None);
    }
    // A long frame, a hole and a seal too.
    let big = vec![7u8; 100_000];
    let big_record = Record::raw(&big);
    for (frame, lsn) in [
        (written(EncodedFrame::record(&big_record).unwrap(), 9, 1 << 33), 1u64 << 33),
        (written(EncodedFrame::hole(5).unwrap(), 9, 77), 77),
        (written(EncodedFrame::seal(Seal { records: 3, frames_crc: 4 }), 9, 0), 0),
    ] {
        assert_eq!(v2::solve_lsn(&EpochKey::new(9), &frame, lsn.saturating_sub(1000)..lsn + 1000), Some(lsn));
    }
}

/// A segment's frame region of `n` frames of mixed kinds from LSN `first`
/// (holes only with `holes`: a repair writes them, and seals the segment,
/// so a reader knows its end LSN): the bytes, and each frame's (offset,
/// LSN).
fn frame_region(
    g: &mut Gen,
    key: &EpochKey,
    first: Lsn,
    n: usize,
    unit: u32,
    holes: bool,
) -> (Vec<u8>, Vec<(usize, Lsn)>) {
    let mut bytes = Vec::new();
    let mut frames = Vec::new();
    let mut lsn = first;
    for i in 0..n {
        let n = g.below(120) as usize;
        let payload = g.bytes(n);
        let batch = [Record::raw(&payload), Record::delete(b"k")];
        let record = Record::put(b"key", &payload);
        let (frame, taken) = match i % 7 {
            0 => (EncodedFrame::batch(&batch).unwrap(), 2),
            1 if holes => (EncodedFrame::hole(3).unwrap(), 3),
            2 => (EncodedFrame::mark(Mark { durable_end: lsn, log_start: first }), 0),
            3 => (EncodedFrame::compressed(FrameKind::Raw, Compression::Lz4, 10, 1, &payload).unwrap(), 1),
            _ => (EncodedFrame::record(&record).unwrap(), 1),
        };
        let at = bytes.len();
        bytes.resize(at + frame.len(), 0);
        frame.write_to(&mut bytes[at..], key, lsn).unwrap();
        frames.push((at, lsn));
        lsn += taken;
        // Fill to the unit boundary now and then, as a flash writer does
        // after a sync.
        if unit > 1 && g.below(3) == 0 {
            let boundary = bytes.len().div_ceil(unit as usize) * unit as usize;
            bytes.resize(boundary, 0xFF);
        }
    }
    (bytes, frames)
}

#[test]
fn frames_after_damage_are_found_with_their_true_lsns() {
    let mut g = Gen::new(0xDA3A6E);
    let key = EpochKey::new(41);
    let mut found = 0;
    for round in 0..300 {
        let unit = [1u32, 4, 8, 256][round % 4];
        // Half the rounds know the segment's end LSN (a sealed segment,
        // which may hold holes).
        let sealed = round % 2 == 0;
        let (mut bytes, frames) = frame_region(&mut g, &key, 1000 + round as u64, 60, unit, sealed);
        bytes.extend(std::iter::repeat_n(0xFF, 64));
        // Damage a span starting inside a frame: random bytes, zeros or
        // erased bytes.
        let victim = g.below(40) as usize;
        let start = frames[victim].0 + g.below(4) as usize;
        let len = 1 + g.below(600) as usize;
        let fill = g.below(3);
        for b in &mut bytes[start..(start + len).min(frames[59].0)] {
            *b = match fill {
                0 => g.next() as u8,
                1 => 0,
                _ => 0xFF,
            };
        }
        let damage_end = (start + len).min(frames[59].0);
        let end = sealed.then_some(frames[59].1 + 3);
        let resumed = v2::find_after_damage(&bytes, frames[victim].0, &key, frames[victim].1, end, unit)
            .expect("two intact frames follow the damage");
        let at = resumed.offset;
        // It is a real frame, with its real LSN...
        let truth =
            frames.iter().find(|f| f.0 == at).unwrap_or_else(|| panic!("round {round}: phantom at {at}"));
        assert_eq!(truth.1, resumed.lsn, "round {round}");
        // ... and the first one the damage left whole (or the frame the
        // damage began in, when the damage left it checking out).
        let first_whole = frames.iter().position(|f| f.0 >= damage_end).unwrap();
        let index = frames.iter().position(|f| f.0 == at).unwrap();
        assert!(
            index <= first_whole,
            "round {round}: skipped whole frames {first_whole}..{index}; unit {unit}, victim {victim}, damage {start}..{damage_end}, frames {:?}",
            &frames[victim..=index]
        );
        found += 1;
    }
    assert_eq!(found, 300);
}

#[test]
fn garbage_yields_no_frame() {
    let mut g = Gen::new(0x6A5BA6E);
    let key = EpochKey::new(3);
    for _ in 0..20 {
        let garbage = g.bytes(64 << 10);
        assert_eq!(v2::find_after_damage(&garbage, 0, &key, 0, None, 1), None);
    }
    // Frames of another epoch (a stale lap) are not frames of this one.
    let (stale, _) = frame_region(&mut g, &EpochKey::new(2), 0, 200, 1, true);
    assert_eq!(v2::find_after_damage(&stale, 0, &key, 0, None, 1), None);
}

#[test]
fn a_lone_last_frame_is_accepted_only_after_a_short_span() {
    let key = EpochKey::new(8);
    let record = Record::raw(b"the last record");
    for (junk, accepted) in [(100usize, true), (1024, true), (1025, false), (10_000, false)] {
        let mut bytes = vec![0x00u8; junk];
        let at = bytes.len();
        let frame = EncodedFrame::record(&record).unwrap();
        bytes.resize(at + frame.len(), 0);
        frame.write_to(&mut bytes[at..], &key, 500).unwrap();
        bytes.extend([0xFF; 32]);
        let got = v2::find_after_damage(&bytes, 0, &key, 499, None, 1);
        assert_eq!(got, accepted.then_some(v2::Resumed { offset: junk, lsn: 500 }), "after {junk} bytes");
    }
    // The end LSN bounds the search.
    let mut bytes = vec![0u8; 16];
    let frame = EncodedFrame::record(&record).unwrap();
    bytes.resize(16 + frame.len(), 0);
    frame.write_to(&mut bytes[16..], &key, 3).unwrap();
    assert_eq!(v2::find_after_damage(&bytes, 0, &key, 0, Some(3), 1).map(|r| r.lsn), Some(3));
    assert_eq!(v2::find_after_damage(&bytes, 0, &key, 0, Some(2), 1), None);
}

#[test]
fn a_torn_frame_decodes_only_as_the_frame_written() {
    // A frame cut anywhere, then followed by nothing, by erased bytes or by
    // zeros (what a torn write leaves on flash, a disk or a new file).
    let key = EpochKey::new(7);
    let mut cuts = 0;
    for (name, frame, lsn) in sample_frames() {
        let step = if frame.len() > 4096 { 997 } else { 1 };
        for keep in (0..frame.len()).step_by(step) {
            let prefix = &frame[..keep];
            assert!(v2::decode_frame(prefix, &key, lsn).is_err(), "{name} cut at {keep}");
            for fill in [0xFFu8, 0x00] {
                let mut torn = prefix.to_vec();
                torn.resize(frame.len() + 16, fill);
                // Only if the lost bytes equal what was being written (a
                // padding frame's zeros) does it decode, and then it is
                // exactly the frame written.
                if let Ok(f) = v2::decode_frame(&torn, &key, lsn) {
                    assert_eq!(&torn[..f.len()], &frame[..], "{name} cut at {keep}, then {fill:#04x}");
                }
            }
            cuts += 1;
        }
    }
    assert!(cuts > 200, "{cuts}");
}

#[test]
fn garbage_never_decodes_as_a_header_or_a_frame() {
    let mut g = Gen::new(0x6A5B_A6E2);
    let key = EpochKey::new(7);
    let (mut headers, mut frames) = (0, 0);
    for _ in 0..100_000 {
        let bytes = g.bytes(64);
        assert!(SegmentHeader::decode(&bytes).is_err(), "{bytes:02x?}");
        headers += 1;
        if v2::FrameHeader::decode(&bytes).is_ok() {
            // About one in 2^11 passes the structural checks; the CRC
            // under the LSN expected stops it.
            assert!(v2::decode_frame(&bytes, &key, g.below(1 << 20)).is_err(), "{bytes:02x?}");
            frames += 1;
        }
    }
    assert_eq!(headers, 100_000);
    assert!(frames > 0, "no garbage passed the structural checks: the CRC was never reached");
}

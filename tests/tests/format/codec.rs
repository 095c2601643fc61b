//! Deterministic tests of the format v1 codec: what every byte pattern a
//! reader can meet decodes to.

use nori_wal_core::format::{
    self, Body, Compression, DecodeError, EncodeError, FRAME_HEADER_LEN, FrameHeader, FrameKind, HeaderField,
    MARK_PAYLOAD_LEN, MAX_PAYLOAD_LEN, Mark, SEGMENT_HEADER_LEN, SegmentHeader, frame_offsets,
    segment_offsets,
};
use nori_wal_core::{Record, crc};

fn put_frame(epoch: u64) -> Vec<u8> {
    let record = Record::put(b"user:42", b"alice@example.com");
    let mut buf = vec![0u8; format::record_frame_len(&record) as usize];
    let n = format::encode_record(&mut buf, epoch, 3, &record).unwrap();
    assert_eq!(n, buf.len());
    buf
}

#[test]
fn frame_header_is_sixteen_bytes() {
    assert_eq!(FRAME_HEADER_LEN, 16);
    assert_eq!(format::record_frame_len(&Record::raw(b"")), 16);
}

/// Any run of one byte value (erased flash at any erase value, zeroed or
/// preallocated space) decodes as blank under any epoch, never as a frame.
#[test]
fn uniform_bytes_are_blank_never_a_frame() {
    for fill in 0..=255u8 {
        for epoch in [1, 2, 0xFF, u64::MAX, 0x0101_0101_0101_0101] {
            for len in [16, 17, 64, 4096] {
                let bytes = vec![fill; len];
                assert_eq!(format::decode_frame(&bytes, epoch), Err(DecodeError::Blank { fill }));
                assert_eq!(FrameHeader::decode(&bytes, epoch), Err(DecodeError::Blank { fill }));
            }
        }
        assert_eq!(SegmentHeader::decode(&[fill; 64]), Err(DecodeError::Blank { fill }));
    }
}

#[test]
fn short_input_is_truncated_not_a_panic() {
    let frame = put_frame(1);
    for len in 0..FRAME_HEADER_LEN {
        assert_eq!(
            format::decode_frame(&frame[..len], 1),
            Err(DecodeError::Truncated { needed: 16, available: len as u64 })
        );
    }
    for len in FRAME_HEADER_LEN..frame.len() {
        assert!(matches!(
            format::decode_frame(&frame[..len], 1),
            Err(DecodeError::LengthOutOfBounds { available, .. }) if available == len as u64
        ));
    }
}

/// A torn write keeps a prefix of the frame; the rest holds what was there
/// before: erased bytes, zeros, or anything else.
#[test]
fn torn_frame_never_validates() {
    let frame = put_frame(5);
    for fill in [0x00, 0xFF, 0xA5] {
        for cut in 0..frame.len() {
            let mut torn = frame.clone();
            torn[cut..].fill(fill);
            torn.extend_from_slice(&[fill; 32]);
            match format::decode_frame(&torn, 5) {
                // Only when the lost bytes already held `fill` can it decode, and then
                // it decodes to exactly the frame written.
                Ok(f) => assert_eq!(&torn[..f.len()], &frame[..]),
                Err(e) => assert!(!matches!(e, DecodeError::MalformedBody { .. }), "cut {cut}: {e}"),
            }
        }
    }
}

/// The header check covers the length, LSN offset and kind. Because a CRC is
/// linear, the change a single-bit flip makes to the check depends only on
/// the bit's position, so trying each position once proves that every
/// single-bit flip of those fields is caught before the length is used.
#[test]
fn header_check_catches_every_single_bit_flip_of_the_header() {
    let frame = put_frame(9);
    for bit in 0..FRAME_HEADER_LEN * 8 {
        let mut flipped = frame.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let header = FrameHeader::decode(&flipped, 9);
        if bit / 8 < frame_offsets::CRC.end {
            // The stored CRC itself: the header decodes, the payload check fails.
            let header = header.unwrap();
            assert!(matches!(header.verify_payload(&flipped[16..]), Err(DecodeError::BadChecksum { .. })));
        } else {
            assert_eq!(header, Err(DecodeError::BadHeader), "bit {bit}");
        }
    }
}

#[test]
fn payload_bit_flips_are_bad_checksums() {
    let frame = put_frame(9);
    for bit in FRAME_HEADER_LEN * 8..frame.len() * 8 {
        let mut flipped = frame.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            matches!(format::decode_frame(&flipped, 9), Err(DecodeError::BadChecksum { .. })),
            "bit {bit}"
        );
    }
}

/// I6: a well-formed frame written under another epoch (an earlier lap of a
/// ring, a recycled file) never validates.
#[test]
fn frame_of_another_epoch_never_validates() {
    let frame = put_frame(1000);
    assert!(format::decode_frame(&frame, 1000).is_ok());
    for epoch in (0..2000u64).chain([u64::MAX, 1000 | (1 << 63)]) {
        if epoch != 1000 {
            let result = format::decode_frame(&frame, epoch);
            assert!(
                matches!(result, Err(DecodeError::BadHeader | DecodeError::BadChecksum { .. })),
                "epoch {epoch}: {result:?}"
            );
        }
    }
}

#[test]
fn lsn_offset_and_kinds_round_trip() {
    let mut buf = [0u8; 256];
    let cases = [
        (Record::put(b"", b""), FrameKind::Put),
        (Record::put(b"k", b""), FrameKind::Put),
        (Record::put(b"", b"v"), FrameKind::Put),
        (Record::delete(b"k"), FrameKind::Delete),
        (Record::delete(b""), FrameKind::Delete),
        (Record::raw(b""), FrameKind::Raw),
        (Record::raw(&[0xFF; 100]), FrameKind::Raw),
    ];
    for (lsn_offset, (record, kind)) in [0, 1, u32::MAX].into_iter().flat_map(|o| cases.map(|c| (o, c))) {
        let n = format::encode_record(&mut buf, 77, lsn_offset, &record).unwrap();
        let frame = format::decode_frame(&buf[..n], 77).unwrap();
        assert_eq!(frame.header().kind(), kind);
        assert_eq!(frame.header().lsn_offset(), lsn_offset);
        assert_eq!(frame.header().compression(), Compression::None);
        assert_eq!(frame.body().unwrap(), Body::Record(record));
        assert_eq!(frame.records().unwrap().collect::<Vec<_>>(), vec![record]);
    }
}

#[test]
fn batch_round_trips_and_is_one_frame() {
    let records = [Record::put(b"a", b"1"), Record::delete(b"b"), Record::raw(b"xyz"), Record::put(b"", b"")];
    let mut buf = vec![0u8; format::batch_frame_len(&records) as usize];
    let n = format::encode_batch(&mut buf, 3, 10, &records).unwrap();
    assert_eq!(n, buf.len());
    let frame = format::decode_frame(&buf, 3).unwrap();
    assert_eq!(frame.header().kind(), FrameKind::Batch);
    assert_eq!(frame.body().unwrap().record_count(), 4);
    let records_out = frame.records().unwrap();
    assert_eq!(records_out.len(), 4);
    assert_eq!(records_out.collect::<Vec<_>>(), records);
    // All or nothing: any cut of the batch decodes to nothing.
    for cut in 0..n {
        assert!(format::decode_frame(&buf[..cut], 3).is_err());
    }
}

#[test]
fn batch_errors() {
    let mut buf = [0u8; 64];
    assert_eq!(format::encode_batch(&mut buf, 1, 0, &[]), Err(EncodeError::EmptyBatch));
    let two = [Record::raw(b"a"), Record::raw(b"b")];
    assert_eq!(format::encode_batch(&mut buf, 1, u32::MAX, &two), Err(EncodeError::LsnOverflow));
    assert!(format::encode_batch(&mut buf, 1, u32::MAX - 1, &two).is_ok());
}

/// Batch bodies with a valid checksum but a broken layout (a writer that
/// does not follow the format) are refused whole, never half iterated.
#[test]
fn malformed_batch_bodies_are_refused() {
    let entry = |tag: u8, body: &[u8]| {
        let mut v = vec![tag];
        v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v.extend_from_slice(body);
        v
    };
    let with_count = |count: u32, entries: &[Vec<u8>]| {
        let mut v = count.to_le_bytes().to_vec();
        for e in entries {
            v.extend_from_slice(e);
        }
        v
    };
    let good = entry(3, b"x");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("count cut", vec![1, 0]),
        ("zero count", with_count(0, &[])),
        ("count above entries", with_count(2, std::slice::from_ref(&good))),
        ("count below entries", with_count(1, &[good.clone(), good.clone()])),
        ("huge count", with_count(u32::MAX, std::slice::from_ref(&good))),
        ("entry header cut", [with_count(1, &[]), vec![3, 1, 0]].concat()),
        ("entry longer than batch", [with_count(1, &[]), vec![3, 9, 0, 0, 0, b'x']].concat()),
        ("nested batch", with_count(1, &[entry(4, &with_count(1, std::slice::from_ref(&good)))])),
        ("padding entry", with_count(1, &[entry(5, b"")])),
        ("unknown entry", with_count(1, &[entry(0, b"")])),
        ("put without key length", with_count(1, &[entry(1, b"ab")])),
        ("put key past end", with_count(1, &[entry(1, &[9, 0, 0, 0, b'k'])])),
    ];
    for (name, body) in cases {
        assert!(
            matches!(Body::parse(FrameKind::Batch, &body), Err(DecodeError::MalformedBody { .. })),
            "{name}"
        );
    }
    let ok = with_count(2, &[good.clone(), entry(1, &[1, 0, 0, 0, b'k', b'v'])]);
    let body = Body::parse(FrameKind::Batch, &ok).unwrap();
    assert_eq!(body.records().collect::<Vec<_>>(), vec![Record::raw(b"x"), Record::put(b"k", b"v")]);
}

#[test]
fn padding_frames() {
    let mut buf = [0xEEu8; 64];
    assert_eq!(format::encode_padding(&mut buf, 1, 0, 15), Err(EncodeError::PaddingTooShort { len: 15 }));
    for len in [16, 17, 40, 64] {
        assert_eq!(format::encode_padding(&mut buf, 1, 8, len), Ok(len));
        let frame = format::decode_frame(&buf[..len], 1).unwrap();
        assert_eq!(frame.len(), len);
        assert_eq!(frame.header().kind(), FrameKind::Padding);
        assert_eq!(frame.header().lsn_offset(), 8);
        assert_eq!(frame.body().unwrap(), Body::Padding);
        assert_eq!(frame.records().unwrap().count(), 0);
    }
}

#[test]
fn mark_frames() {
    let mark = Mark { durable_end: 1234, log_start: 1000 };
    let mut buf = [0u8; 64];
    let n = format::encode_mark(&mut buf, 8, 17, mark).unwrap();
    assert_eq!(n, FRAME_HEADER_LEN + MARK_PAYLOAD_LEN);
    let frame = format::decode_frame(&buf[..n], 8).unwrap();
    assert_eq!(frame.header().kind(), FrameKind::Mark);
    assert_eq!(frame.header().lsn_offset(), 17);
    let body = frame.body().unwrap();
    assert_eq!(body, Body::Mark(mark));
    assert_eq!(body.record_count(), 0);
    assert_eq!(frame.records().unwrap().count(), 0);
    for len in [0, 8, 15, 17, 32] {
        let payload = vec![1u8; len];
        assert!(
            matches!(Body::parse(FrameKind::Mark, &payload), Err(DecodeError::MalformedBody { .. })),
            "{len}"
        );
    }
    assert_eq!(
        format::encode_compressed(&mut buf, 2, 0, FrameKind::Mark, Compression::Lz4, 16, 1, b""),
        Err(EncodeError::EmptyBatch)
    );
}

#[test]
fn compressed_frames_are_marked_and_bounded() {
    let mut buf = [0u8; 64];
    let n = format::encode_compressed(&mut buf, 2, 0, FrameKind::Batch, Compression::Lz4, 1000, 3, b"opaque")
        .unwrap();
    let frame = format::decode_frame(&buf[..n], 2).unwrap();
    assert_eq!(frame.header().compression(), Compression::Lz4);
    assert_eq!(frame.body(), Err(DecodeError::Compressed { codec: Compression::Lz4 }));
    let compressed = frame.compressed().unwrap().unwrap();
    assert_eq!(
        (compressed.codec, compressed.uncompressed_len, compressed.data),
        (Compression::Lz4, 1000, &b"opaque"[..])
    );
    assert_eq!(
        format::encode_compressed(
            &mut buf,
            2,
            0,
            FrameKind::Put,
            Compression::Zstd,
            MAX_PAYLOAD_LEN + 1,
            1,
            b""
        ),
        Err(EncodeError::InvalidUncompressedLen)
    );
    assert_eq!(
        format::encode_compressed(&mut buf, 2, 0, FrameKind::Padding, Compression::Zstd, 1, 1, b""),
        Err(EncodeError::EmptyBatch)
    );
    // An uncompressed frame has no compressed view.
    let n = format::encode_record(&mut buf, 2, 0, &Record::raw(b"x")).unwrap();
    assert_eq!(format::decode_frame(&buf[..n], 2).unwrap().compressed(), Ok(None));
}

/// Re-seals a frame header after editing it, as a writer that follows the
/// checks but not the format would.
fn reseal(frame: &mut [u8], epoch: u64) {
    let check = crc::crc32c_append(crc::crc32c(&epoch.to_le_bytes()), &frame[4..14]);
    frame[14..16].copy_from_slice(&(check as u16).to_le_bytes());
    let full = crc::crc32c_append(crc::crc32c(&epoch.to_le_bytes()), &frame[4..]);
    frame[0..4].copy_from_slice(&full.to_le_bytes());
}

#[test]
fn undefined_kind_bytes_are_refused_even_under_valid_checks() {
    let mut valid = 0;
    for kind in 0..=255u8 {
        let mut frame = put_frame(4);
        frame[frame_offsets::KIND] = kind;
        frame[frame_offsets::KIND_INV] = !kind;
        reseal(&mut frame, 4);
        match format::decode_frame(&frame, 4) {
            Ok(_) => valid += 1,
            Err(e) => assert_eq!(e, DecodeError::UnknownKind { byte: kind }),
        }
    }
    // 6 types uncompressed, 4 record-bearing types × 2 codecs compressed.
    assert_eq!(valid, 6 + 4 * 2);
}

#[test]
fn lengths_above_the_maximum_are_refused_before_any_read() {
    let mut frame = put_frame(4);
    frame[4..8].copy_from_slice(&(MAX_PAYLOAD_LEN + 1).to_le_bytes());
    reseal(&mut frame, 4);
    assert!(matches!(FrameHeader::decode(&frame, 4), Err(DecodeError::LengthOutOfBounds { .. })));
}

#[test]
fn payload_check_in_pieces() {
    let frame = put_frame(6);
    let header = FrameHeader::decode(&frame, 6).unwrap();
    for piece in 1..8 {
        let mut check = header.payload_check();
        for chunk in frame[16..].chunks(piece) {
            check.update(chunk);
        }
        assert_eq!(check.finish(), Ok(()));
    }
    let mut short = header.payload_check();
    short.update(&frame[16..frame.len() - 1]);
    assert!(matches!(short.finish(), Err(DecodeError::Truncated { .. })));
    let mut long = header.payload_check();
    long.update(&frame[16..]);
    long.update(b"!");
    assert!(long.finish().is_err());
    assert!(matches!(header.verify_payload(&frame[17..]), Err(DecodeError::Truncated { .. })));
}

#[test]
fn encode_never_writes_past_a_small_buffer() {
    let record = Record::put(b"key", b"value");
    let need = format::record_frame_len(&record) as usize;
    for size in 0..need {
        let mut buf = vec![0xAB; size];
        assert_eq!(
            format::encode_record(&mut buf, 1, 0, &record),
            Err(EncodeError::BufferTooSmall { needed: need as u64, available: size as u64 })
        );
        assert!(buf.iter().all(|&b| b == 0xAB));
    }
}

#[test]
fn segment_header_round_trip_and_layout() {
    let header = SegmentHeader::new(0x0102_0304_0506_0708, 42, 1 << 20, 16).unwrap();
    let mut buf = [0u8; SEGMENT_HEADER_LEN];
    assert_eq!(header.encode(&mut buf), Ok(SEGMENT_HEADER_LEN));
    assert_eq!(&buf[segment_offsets::MAGIC], b"NORIWAL\0");
    assert_eq!(SegmentHeader::decode(&buf), Ok(header));
    assert_eq!(header.frames_offset(), 64);
    assert_eq!(SegmentHeader::new(1, 0, 4096, 1).unwrap().frames_offset(), 56);
    assert_eq!(SegmentHeader::new(1, 0, 4096, 8).unwrap().frames_offset(), 56);
    assert_eq!(SegmentHeader::new(1, 0, 4096, 32).unwrap().frames_offset(), 64);
    let with_start = header.with_log_start(40).unwrap();
    with_start.encode(&mut buf).unwrap();
    assert_eq!(SegmentHeader::decode(&buf).unwrap().log_start, 40);
    assert_eq!(header.log_start, 42);
    assert_eq!(SegmentHeader::new(1, 0, 1 << 16, 4096).unwrap().frames_offset(), 4096);
}

#[test]
fn segment_header_field_checks() {
    let invalid = |r: Result<SegmentHeader, EncodeError>| match r {
        Err(EncodeError::InvalidSegmentHeader { field }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(invalid(SegmentHeader::new(0, 0, 4096, 16)), HeaderField::Epoch);
    assert_eq!(invalid(SegmentHeader::new(1, 0, 4096, 24)), HeaderField::ProgramUnit);
    assert_eq!(invalid(SegmentHeader::new(1, 0, 4096, 1 << 17)), HeaderField::ProgramUnit);
    assert_eq!(invalid(SegmentHeader::new(1, 0, 4008, 16)), HeaderField::SegmentSize);
    assert_eq!(invalid(SegmentHeader::new(1, 0, 64, 16)), HeaderField::SegmentSize);
    assert!(SegmentHeader::new(1, 0, 80, 16).is_ok());
    assert_eq!(invalid(SegmentHeader::new(1, 5, 4096, 16).unwrap().with_log_start(6)), HeaderField::LogStart);
    // Public fields are checked again when encoding.
    let mut bad = SegmentHeader::new(1, 0, 4096, 16).unwrap();
    bad.epoch = 0;
    assert_eq!(
        bad.encode(&mut [0; SEGMENT_HEADER_LEN]),
        Err(EncodeError::InvalidSegmentHeader { field: HeaderField::Epoch })
    );
}

fn sealed_header(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut buf = vec![0u8; SEGMENT_HEADER_LEN];
    SegmentHeader::new(5, 0, 4096, 16).unwrap().encode(&mut buf).unwrap();
    edit(&mut buf);
    let end = buf.len() - 4;
    let crc = crc::crc32c(&buf[..end]);
    buf[end..].copy_from_slice(&crc.to_le_bytes());
    buf
}

#[test]
fn newer_format_versions_are_refused_clearly() {
    // A v2 header of the same length.
    let v2 = sealed_header(|b| b[8..10].copy_from_slice(&2u16.to_le_bytes()));
    let err = SegmentHeader::decode(&v2).unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedVersion { found: 2, supported: 1 });
    assert!(err.to_string().contains("upgrade nori-wal"));
    // A v3 header that grew to 80 bytes.
    let v3 = sealed_header(|b| {
        b[8..10].copy_from_slice(&3u16.to_le_bytes());
        b[10..12].copy_from_slice(&80u16.to_le_bytes());
        b.resize(80, 0x33);
    });
    assert_eq!(SegmentHeader::decode(&v3), Err(DecodeError::UnsupportedVersion { found: 3, supported: 1 }));
    assert_eq!(SegmentHeader::decode(&v3[..60]), Err(DecodeError::Truncated { needed: 80, available: 60 }));
    // A torn v1 header whose version bytes still hold erased flash is torn,
    // not "newer".
    let mut torn = sealed_header(|_| {});
    torn[8..].fill(0xFF);
    assert!(matches!(SegmentHeader::decode(&torn), Err(DecodeError::InvalidSegmentHeader { .. })));
    torn[10..12].copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
    assert!(matches!(SegmentHeader::decode(&torn), Err(DecodeError::BadSegmentChecksum { .. })));
}

#[test]
fn impossible_segment_header_fields_are_refused_under_a_valid_crc() {
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: [(HeaderField, Edit); 7] = [
        (HeaderField::Version, Box::new(|b| b[8..10].copy_from_slice(&0u16.to_le_bytes()))),
        (HeaderField::Flags, Box::new(|b| b[12] = 1)),
        (HeaderField::Epoch, Box::new(|b| b[16..24].fill(0))),
        (HeaderField::LogStart, Box::new(|b| b[32..40].copy_from_slice(&1u64.to_le_bytes()))),
        (HeaderField::SegmentSize, Box::new(|b| b[40..48].copy_from_slice(&4001u64.to_le_bytes()))),
        (HeaderField::ProgramUnit, Box::new(|b| b[48..52].copy_from_slice(&3u32.to_le_bytes()))),
        (HeaderField::HeaderLen, Box::new(|b| b[10..12].copy_from_slice(&20u16.to_le_bytes()))),
    ];
    for (field, edit) in cases {
        let buf = sealed_header(edit);
        assert_eq!(SegmentHeader::decode(&buf), Err(DecodeError::InvalidSegmentHeader { field }), "{field}");
    }
}

#[test]
fn every_segment_header_bit_flip_is_caught() {
    let good = sealed_header(|_| {});
    for bit in 0..SEGMENT_HEADER_LEN * 8 {
        let mut flipped = good.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(SegmentHeader::decode(&flipped).is_err(), "bit {bit}");
    }
}

#[test]
fn foreign_bytes_are_not_a_segment() {
    let mut buf = [0u8; 64];
    buf[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\0");
    assert_eq!(SegmentHeader::decode(&buf), Err(DecodeError::NotASegment));
    assert!(matches!(SegmentHeader::decode(b"NORI"), Err(DecodeError::Truncated { .. })));
}

#[test]
fn errors_have_actionable_messages() {
    let messages = [
        DecodeError::Blank { fill: 0xFF }.to_string(),
        DecodeError::BadHeader.to_string(),
        DecodeError::BadChecksum { stored: 1, computed: 2 }.to_string(),
        DecodeError::LengthOutOfBounds { frame_len: 100, available: 10 }.to_string(),
        EncodeError::BufferTooSmall { needed: 9, available: 3 }.to_string(),
        EncodeError::PayloadTooLarge { len: 9, max: 3 }.to_string(),
    ];
    for m in &messages {
        assert!(!m.is_empty() && !m.contains("Error"), "{m}");
    }
    assert!(messages[0].contains("0xff"));
    assert!(messages[4].contains('9') && messages[4].contains('3'));
}

#[test]
fn batch_entries_read_one_at_a_time_and_refuse_zeros_ff_garbage_and_torn_entries() {
    use nori_wal_core::format::{BATCH_ENTRIES_AT, EncodedFrame, batch_entry_at};
    let records = [Record::put(b"k", b"v"), Record::delete(b"gone"), Record::raw(b"raw")];
    let frame = EncodedFrame::batch(7, 0, &records).unwrap();
    let mut bytes = vec![0u8; frame.len()];
    frame.write_to(&mut bytes).unwrap();
    let payload = &bytes[16..];
    let mut at = BATCH_ENTRIES_AT;
    for expected in &records {
        let (record, next) = batch_entry_at(payload, at).unwrap();
        assert_eq!(&record, expected);
        at = next;
    }
    assert_eq!(at, payload.len());
    assert!(batch_entry_at(payload, at).is_err(), "past the last entry");
    assert!(batch_entry_at(payload, usize::MAX).is_err());
    // Torn: every cut inside an entry is refused, never read past.
    for cut in BATCH_ENTRIES_AT + 1..payload.len() {
        let torn = &payload[..cut];
        let mut at = BATCH_ENTRIES_AT;
        while let Ok((_, next)) = batch_entry_at(torn, at) {
            assert!(next <= cut);
            at = next;
        }
    }
    // Zeros decode to empty entries at most; 0xFF and garbage claim lengths
    // past the end and are refused.
    assert!(batch_entry_at(&[0xFF; 64], BATCH_ENTRIES_AT).is_err());
    let garbage: Vec<u8> = (0..64u32).map(|i| (i * 97 + 13) as u8).collect();
    if let Ok((_, next)) = batch_entry_at(&garbage, BATCH_ENTRIES_AT) {
        assert!(next <= garbage.len());
    }
    if let Ok((_, next)) = batch_entry_at(&[0u8; 64], BATCH_ENTRIES_AT) {
        assert!(next <= 64);
    }
}

/// A frame is written three ways: streamed (the sealed header, then the
/// payload pieces: how the ring programs it through a small buffer), into
/// a slice (`write_to`) and onto a `Vec` (`append_to`: the file WAL). The
/// last two compute the checks over the bytes written; all three must give
/// the same bytes, for every kind of frame, at every alignment.
#[test]
fn streamed_sliced_and_appended_frames_are_identical() {
    use format::{EncodedFrame, EpochKey};
    let records = [Record::put(b"k", b"value"), Record::delete(b"gone"), Record::raw(&[7u8; 300])];
    let empty_put = Record::put(b"", b"");
    let key = EpochKey::new(0xDEAD_BEEF_0042);
    let frames = [
        EncodedFrame::record(key, 1, &records[0]).unwrap(),
        EncodedFrame::record(key, 2, &records[1]).unwrap(),
        EncodedFrame::record(key, 3, &records[2]).unwrap(),
        EncodedFrame::record(key, 4, &empty_put).unwrap(),
        EncodedFrame::batch(key, 5, &records).unwrap(),
        EncodedFrame::padding(key, 8, 16).unwrap(),
        EncodedFrame::padding(key, 8, 200).unwrap(),
        EncodedFrame::mark(key, 8, Mark { durable_end: 1 << 40, log_start: 3 }),
        EncodedFrame::compressed(key, 9, FrameKind::Batch, Compression::Lz4, 1000, 3, b"opaque").unwrap(),
    ];
    for frame in frames {
        let mut streamed = frame.header().to_vec();
        frame.for_each_payload_piece(|piece| streamed.extend_from_slice(piece));
        assert_eq!(streamed.len(), frame.len());
        assert!(format::decode_frame(&streamed, key.epoch()).is_ok(), "the streamed frame decodes");
        for at in 0..8 {
            let mut sliced = vec![0xA5u8; at + frame.len() + 3];
            assert_eq!(frame.write_to(&mut sliced[at..]), Ok(frame.len()));
            assert_eq!(&sliced[at..at + frame.len()], &streamed[..]);
            assert!(sliced[..at].iter().chain(&sliced[at + frame.len()..]).all(|&b| b == 0xA5));
            let mut appended = vec![0x5Au8; at];
            frame.append_to(&mut appended);
            assert_eq!(&appended[at..], &streamed[..]);
        }
    }
}

/// `record_at`, the one cursor both iterators use, on the payload of every
/// kind: a record kind returns its record and the payload's end; a batch
/// its entry (as `batch_entry_at`); padding and marks hold no record. Zeros,
/// 0xFF, garbage and torn puts never read past the payload.
#[test]
fn record_at_reads_every_kind_and_refuses_what_holds_no_record() {
    use format::{BATCH_ENTRIES_AT, EncodedFrame, Malformed, record_at};
    let put = Record::put(b"key", b"value");
    let frame = EncodedFrame::record(3, 0, &put).unwrap();
    let mut bytes = vec![0u8; frame.len()];
    frame.write_to(&mut bytes).unwrap();
    let payload = &bytes[16..];
    assert_eq!(record_at(FrameKind::Put, payload, 0), Ok((put, payload.len())));
    assert_eq!(record_at(FrameKind::Raw, b"abc", 0), Ok((Record::raw(b"abc"), 3)));
    let not_a_record = Err(DecodeError::MalformedBody { reason: Malformed::NotARecord });
    assert_eq!(record_at(FrameKind::Padding, &[0; 8], 0), not_a_record);
    assert_eq!(record_at(FrameKind::Mark, &[0; MARK_PAYLOAD_LEN], 0), not_a_record);
    // A torn put: its key length cut, or a key running past the payload,
    // is refused; a cut inside the value reads a shorter value (the frame's
    // checksum, not the body, catches that).
    for cut in 0..payload.len() {
        match record_at(FrameKind::Put, &payload[..cut], 0) {
            Ok((Record::Put { key, value }, next)) => {
                assert_eq!((key, next), (&b"key"[..], cut));
                assert!(b"value".starts_with(value));
            }
            Ok(other) => panic!("cut {cut}: {other:?}"),
            Err(e) => assert!(cut < 4 + 3, "cut {cut}: {e}"),
        }
    }
    let garbage: Vec<u8> = (0..64u32).map(|i| (i * 97 + 13) as u8).collect();
    for bytes in [&[0u8; 64][..], &[0xFF; 64][..], &garbage[..]] {
        for kind in [FrameKind::Put, FrameKind::Delete, FrameKind::Raw, FrameKind::Batch] {
            let at = if kind == FrameKind::Batch { BATCH_ENTRIES_AT } else { 0 };
            if let Ok((_, next)) = record_at(kind, bytes, at) {
                assert!(next <= bytes.len(), "{kind:?}");
            }
        }
    }
    assert!(record_at(FrameKind::Put, &[0xFF; 64], 0).is_err(), "a key length past the payload");
}

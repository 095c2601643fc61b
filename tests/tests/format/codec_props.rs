//! Property tests of the format v1 codec: round trips, bit flips, and
//! arbitrary bytes.

use nori_wal_core::Record;
use nori_wal_core::format::{self, Body, DecodeError, FrameHeader, FrameKind, SegmentHeader};
use proptest::prelude::*;

/// An owned record, so that proptest can generate it.
#[derive(Debug, Clone)]
enum Owned {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Raw(Vec<u8>),
}

impl Owned {
    fn as_record(&self) -> Record<'_> {
        match self {
            Self::Put(k, v) => Record::put(k, v),
            Self::Delete(k) => Record::delete(k),
            Self::Raw(p) => Record::raw(p),
        }
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..=max),
        // Runs of one value, like erased flash or zeroed space inside a record.
        (any::<u8>(), 0..=max).prop_map(|(b, n)| vec![b; n]),
    ]
}

fn owned(max: usize) -> impl Strategy<Value = Owned> {
    prop_oneof![
        (bytes(max), bytes(max)).prop_map(|(k, v)| Owned::Put(k, v)),
        bytes(max).prop_map(Owned::Delete),
        bytes(max).prop_map(Owned::Raw),
    ]
}

fn encode_one(record: &Record<'_>, epoch: u64, lsn_offset: u32) -> Vec<u8> {
    let mut buf = vec![0u8; format::record_frame_len(record) as usize];
    assert_eq!(format::encode_record(&mut buf, epoch, lsn_offset, record), Ok(buf.len()));
    buf
}

fn encode_many(records: &[Record<'_>], epoch: u64, lsn_offset: u32) -> Vec<u8> {
    let mut buf = vec![0u8; format::batch_frame_len(records) as usize];
    assert_eq!(format::encode_batch(&mut buf, epoch, lsn_offset, records), Ok(buf.len()));
    buf
}

/// Decoding must never return anything but the frame that was written: on
/// success, the bytes it covers equal `original`.
fn assert_decodes_only_to(bytes: &[u8], epoch: u64, original: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(frame) = format::decode_frame(bytes, epoch) {
        prop_assert_eq!(&bytes[..frame.len()], original);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: nori_wal_tests::proptest_cases(512), ..ProptestConfig::default() })]

    #[test]
    fn record_round_trip(record in owned(300), epoch in 1..u64::MAX, lsn_offset in any::<u32>(), trailing in bytes(40)) {
        let record = record.as_record();
        let mut buf = encode_one(&record, epoch, lsn_offset);
        let len = buf.len();
        buf.extend_from_slice(&trailing);
        let frame = format::decode_frame(&buf, epoch).unwrap();
        prop_assert_eq!(frame.len(), len);
        prop_assert_eq!(frame.header().lsn_offset(), lsn_offset);
        prop_assert_eq!(frame.body().unwrap(), Body::Record(record));
    }

    #[test]
    fn batch_round_trip(records in proptest::collection::vec(owned(60), 1..24), epoch in 1..u64::MAX, lsn_offset in 0..u32::MAX - 24) {
        let records: Vec<Record<'_>> = records.iter().map(Owned::as_record).collect();
        let buf = encode_many(&records, epoch, lsn_offset);
        let frame = format::decode_frame(&buf, epoch).unwrap();
        prop_assert_eq!(frame.header().kind(), FrameKind::Batch);
        prop_assert_eq!(frame.body().unwrap().record_count() as usize, records.len());
        prop_assert_eq!(frame.records().unwrap().collect::<Vec<_>>(), records);
    }

    /// Every single bit flip anywhere in a frame is detected.
    #[test]
    fn every_bit_flip_is_detected(record in owned(48), batch in proptest::collection::vec(owned(8), 1..4), epoch in 1..u64::MAX, as_batch in any::<bool>()) {
        let frame = if as_batch {
            let records: Vec<Record<'_>> = batch.iter().map(Owned::as_record).collect();
            encode_many(&records, epoch, 7)
        } else {
            encode_one(&record.as_record(), epoch, 7)
        };
        for bit in 0..frame.len() * 8 {
            let mut flipped = frame.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let result = format::decode_frame(&flipped, epoch);
            prop_assert!(
                matches!(result, Err(DecodeError::BadHeader | DecodeError::BadChecksum { .. })),
                "bit {} not caught: {:?}", bit, result
            );
        }
    }

    /// A frame torn at any byte, the rest holding any fill, decodes to the
    /// frame written or to an error, never to something else.
    #[test]
    fn torn_frames_decode_to_nothing_else(record in owned(64), epoch in 1..u64::MAX, cut in any::<prop::sample::Index>(), fill in any::<u8>()) {
        let frame = encode_one(&record.as_record(), epoch, 0);
        let cut = cut.index(frame.len());
        let mut torn = frame.clone();
        torn[cut..].fill(fill);
        assert_decodes_only_to(&torn, epoch, &frame)?;
        assert_decodes_only_to(&torn[..cut], epoch, &frame)?;
    }

    /// I6: a frame never validates under another epoch.
    #[test]
    fn other_epochs_never_validate(record in owned(64), epoch in 1..u64::MAX, other in 1..u64::MAX) {
        prop_assume!(epoch != other);
        let frame = encode_one(&record.as_record(), epoch, 0);
        prop_assert!(format::decode_frame(&frame, other).is_err());
    }

    /// Arbitrary bytes never panic any decoder, and whatever decodes stays
    /// within the input.
    #[test]
    fn arbitrary_bytes_never_panic(data in bytes(600), epoch in any::<u64>()) {
        if let Ok(frame) = format::decode_frame(&data, epoch) {
            prop_assert!(frame.len() <= data.len());
            if let Ok(records) = frame.records() {
                prop_assert!(records.count() <= data.len());
            }
        }
        if let Ok(header) = FrameHeader::decode(&data, epoch) {
            prop_assert!(header.frame_len() >= 16);
        }
        for kind in [FrameKind::Put, FrameKind::Delete, FrameKind::Raw, FrameKind::Batch, FrameKind::Padding, FrameKind::Mark] {
            if let Ok(body) = Body::parse(kind, &data) {
                let records = body.records();
                let expected = records.len();
                prop_assert_eq!(records.count(), expected);
            }
        }
        if let Ok(header) = SegmentHeader::decode(&data) {
            prop_assert!(header.epoch != 0 && header.program_unit.is_power_of_two());
        }
    }

    /// Random bytes (not constructed frames) do not decode as a frame. The
    /// header check and the CRC together leave odds of 2^-48 per try.
    #[test]
    fn garbage_is_not_a_record(data in proptest::collection::vec(any::<u8>(), 16..300), epoch in any::<u64>()) {
        prop_assert!(format::decode_frame(&data, epoch).is_err());
    }

    /// Arbitrary batch bodies: parse either refuses them or yields exactly
    /// the count it reports, within the body.
    #[test]
    fn arbitrary_batch_bodies(count in 0u32..6, entries in proptest::collection::vec((0u8..7, bytes(12)), 0..6), extra in bytes(6)) {
        let mut body = count.to_le_bytes().to_vec();
        for (tag, data) in &entries {
            body.push(*tag);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
        }
        body.extend_from_slice(&extra);
        if let Ok(parsed) = Body::parse(FrameKind::Batch, &body) {
            let n = parsed.record_count() as usize;
            prop_assert_eq!(parsed.records().count(), n);
            prop_assert_eq!(n, count as usize);
        }
    }
}

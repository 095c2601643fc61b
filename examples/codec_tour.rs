//! Encodes a segment header and a few records into a buffer the size of a
//! small segment, decodes everything back, and prints what it finds,
//! including what happens to a stale frame and to a flipped bit.

use nori_wal::format::{self, SegmentHeader};
use nori_wal::{Bytes, Record, crc};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("CRC32C implementation: {:?}", crc::implementation());

    // A 4 KiB segment for a medium with 16-byte program units, erased to 0xFF.
    let header = SegmentHeader::new(42, 1000, 4096, 16)?;
    let mut segment = vec![0xFFu8; 4096];
    header.encode(&mut segment)?;
    segment[format::SEGMENT_HEADER_LEN..header.frames_offset() as usize].fill(0);
    let mut at = header.frames_offset() as usize;

    let mut lsn_offset = 0u32;
    for record in [Record::put(b"user:42", b"alice@example.com"), Record::delete(b"user:7")] {
        at += format::encode_record(&mut segment[at..], header.epoch, lsn_offset, &record)?;
        lsn_offset += 1;
    }
    let batch = [Record::put(b"a", b"1"), Record::put(b"b", b"2"), Record::raw(&[0xde, 0xad, 0xbe, 0xef])];
    at += format::encode_batch(&mut segment[at..], header.epoch, lsn_offset, &batch)?;
    println!(
        "wrote {} bytes of frames after a {}-byte header region",
        at - header.frames_offset() as usize,
        header.frames_offset()
    );

    println!("\nreading back:");
    read_all(&segment)?;

    // A frame from an earlier use of the space (another epoch) never validates.
    let mut stale = segment.clone();
    let stale_len = format::encode_record(&mut stale[at..], header.epoch - 1, 5, &Record::put(b"old", b"x"))?;
    println!("\nwith a {stale_len}-byte frame of epoch {} appended:", header.epoch - 1);
    read_all(&stale)?;

    // A flipped bit inside a synced frame is caught.
    let mut flipped = segment.clone();
    flipped[header.frames_offset() as usize + 20] ^= 0x04;
    println!("\nwith one bit flipped in the first frame:");
    read_all(&flipped)?;
    Ok(())
}

fn read_all(segment: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    let header = SegmentHeader::decode(segment)?;
    let mut pos = header.frames_offset() as usize;
    loop {
        match format::decode_frame(&segment[pos..], header.epoch) {
            Ok(frame) => {
                let first = header.base_lsn + u64::from(frame.header().lsn_offset());
                for (lsn, record) in (first..).zip(frame.records()?) {
                    println!("  LSN {lsn}: {record:?}");
                }
                pos += frame.len();
            }
            Err(e) if e.is_blank() => {
                println!("  end of log at offset {pos}: {e}");
                return Ok(());
            }
            Err(e) => {
                println!("  stop at offset {pos}: {e}");
                println!("  (next bytes: {:?})", Bytes(&segment[pos..pos + 16]));
                return Ok(());
            }
        }
    }
}

//! Frames encoded and decoded per second, against `memcpy` of the same bytes.
//!
//! `cargo bench -p nori-wal-tests --bench codec` (add `-- --quick` for a
//! smoke run). Prints Markdown tables for BENCHMARKS.md.

use std::hint::black_box;

use nori_wal_core::{Record, crc, format};
use nori_wal_tests::bench::{Measurement, Settings, measure, print_table};

static TABLE1: ::crc::Crc<u32, ::crc::Table<1>> =
    ::crc::Crc::<u32, ::crc::Table<1>>::new(&::crc::CRC_32_ISCSI);
static NO_TABLE: ::crc::Crc<u32, ::crc::NoTable> =
    ::crc::Crc::<u32, ::crc::NoTable>::new(&::crc::CRC_32_ISCSI);

/// Frames per set: enough distinct buffers that the work is not one hot line
/// of cache, few enough (about 1 MiB at 4 KiB) to stay in L2/L3.
const FRAMES: usize = 256;

fn main() {
    let settings = Settings::from_args();
    println!("CRC32C implementation: {:?}", crc::implementation());
    for payload_len in [128usize, 4096] {
        bench_frames(settings, payload_len);
    }
    bench_crc(settings, 4096);
}

fn bench_frames(settings: Settings, payload_len: usize) {
    let epoch = 0x00C0_FFEE;
    let payloads: Vec<Vec<u8>> =
        (0..FRAMES).map(|i| (0..payload_len).map(|j| (i * 31 + j * 7) as u8).collect()).collect();
    let frame_len = format::record_frame_len(&Record::raw(&payloads[0])) as usize;
    let mut frames = vec![0u8; frame_len * FRAMES];
    for (i, p) in payloads.iter().enumerate() {
        format::encode_record(&mut frames[i * frame_len..], epoch, i as u32, &Record::raw(p)).unwrap();
    }
    let bytes = (frame_len * FRAMES) as u64;
    let mut out = vec![0u8; frame_len * FRAMES];

    let baseline = measure("memcpy", settings, FRAMES as u64, bytes, || {
        for i in 0..FRAMES {
            let range = i * frame_len..(i + 1) * frame_len;
            out[range.clone()].copy_from_slice(black_box(&frames[range]));
        }
        black_box(&mut out);
    });
    let encode = measure("encode", settings, FRAMES as u64, bytes, || {
        for (i, p) in payloads.iter().enumerate() {
            let n =
                format::encode_record(&mut out[i * frame_len..], epoch, i as u32, &Record::raw(black_box(p)));
            black_box(n.unwrap());
        }
    });
    let decode = measure("decode + verify", settings, FRAMES as u64, bytes, || {
        for i in 0..FRAMES {
            let frame = format::decode_frame(black_box(&frames[i * frame_len..(i + 1) * frame_len]), epoch);
            black_box(frame.unwrap().payload().len());
        }
    });
    let title = format!("{payload_len}-byte payloads ({frame_len}-byte frames)");
    print_table(&title, &baseline, &[encode, decode]);
}

fn bench_crc(settings: Settings, len: usize) {
    let data: Vec<u8> = (0..len * FRAMES).map(|i| (i * 13) as u8).collect();
    let bytes = data.len() as u64;
    let mut out = vec![0u8; data.len()];
    let baseline = measure("memcpy", settings, FRAMES as u64, bytes, || {
        out.copy_from_slice(black_box(&data));
        black_box(&mut out);
    });
    let run = |name: &str, f: fn(u32, &[u8]) -> u32| -> Measurement {
        measure(name, settings, FRAMES as u64, bytes, || {
            for chunk in data.chunks(len) {
                black_box(f(0, black_box(chunk)));
            }
        })
    };
    let dispatch = run("crc32c (dispatch)", crc::crc32c_append);
    let portable = run("crc32c portable (16-way table, 16 KiB)", crc::portable::crc32c_append);
    let table1 = run("`crc` 1-way table (1 KiB)", |_, d| TABLE1.checksum(d));
    let no_table = run("`crc` no table (0 KiB)", |_, d| NO_TABLE.checksum(d));
    print_table(
        &format!("CRC32C over {len}-byte buffers"),
        &baseline,
        &[dispatch, portable, table1, no_table],
    );
}

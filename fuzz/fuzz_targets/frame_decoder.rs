//! Fuzz target: see `nori_wal_tests::fuzzing::frame_decoder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nori_wal_tests::fuzzing::frame_decoder(data));

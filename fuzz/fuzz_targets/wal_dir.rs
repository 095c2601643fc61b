//! Fuzz target: see `nori_wal_tests::fuzzing::wal_dir`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nori_wal_tests::fuzzing::wal_dir(data));

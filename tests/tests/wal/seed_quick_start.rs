//! The seed's quick start, word for word (the file of the
//! `nori-wal-quick-start` example), run as a test in a scratch directory:
//! it writes to `./wal`.
#![allow(unused_variables)]

include!("../../../examples/quick-start/src/main.rs");

#[test]
fn the_quick_start_runs_unchanged() {
    let scratch = nori_wal_tests::walkit::Scratch::new("quick-start");
    std::fs::create_dir_all(&scratch.0).unwrap();
    std::env::set_current_dir(&scratch.0).unwrap();
    // Twice: the second run recovers the first one's record.
    main().unwrap();
    main().unwrap();
    let (wal, info) = nori_wal::blocking::Wal::open(WalConfig::default()).unwrap();
    assert_eq!(info.records, 2);
    let records = nori_wal_tests::walkit::read_all(&wal);
    assert_eq!(records[1].1, b"user:42=alice@example.com");
}

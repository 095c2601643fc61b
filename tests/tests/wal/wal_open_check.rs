//! `OpenCheck::Newest`: sealed segments trusted by their seals at open,
//! their damage found when read and by `verify`.

use std::path::Path;

use nori_wal::blocking::Wal;
use nori_wal::wal::OpenCheck;
use nori_wal::{Error, FsyncPolicy, Record, RecoveryMode, Version, WalConfig};
use nori_wal_tests::walkit::{Scratch, flip_bit, read_all, segment_files, try_read_all};

fn config(dir: &Path) -> WalConfig {
    WalConfig::new(dir).segment_size(4096).fsync(FsyncPolicy::Os)
}

fn write(dir: &Path, version: Version, n: u32) {
    let (wal, _) = Wal::open(config(dir).format(version)).unwrap();
    for i in 0..n {
        wal.append(&Record::raw(&i.to_le_bytes())).unwrap();
    }
    wal.close().unwrap();
}

#[test]
fn sealed_segments_are_trusted_by_their_seals_and_checked_when_read() {
    let scratch = Scratch::new("open-check");
    let dir = scratch.wal();
    write(&dir, Version::V2, 2000);
    let files = segment_files(&dir);
    assert!(files.len() >= 5);
    let (_, every) = Wal::open(config(&dir)).unwrap();
    let (wal, newest) = Wal::open(config(&dir).open_check(OpenCheck::Newest(2))).unwrap();
    assert_eq!((every.records, newest.records), (2000, 2000));
    assert!(
        newest.bytes_scanned * 2 < every.bytes_scanned,
        "{} of {}",
        newest.bytes_scanned,
        every.bytes_scanned
    );
    assert_eq!(read_all(&wal).len(), 2000);
    drop(wal);
    // A record of the first segment damaged: unread at open, found when read.
    flip_bit(&files[0], 32 + 24 + 10 * 12 + 9, 2);
    let (wal, info) = Wal::open(config(&dir).open_check(OpenCheck::Newest(2))).unwrap();
    assert!(info.corruption.is_none(), "{info:?}");
    match try_read_all(&wal) {
        Err(Error::Corrupt(c)) => assert_eq!((c.lsn, c.segment.as_path()), (10, files[0].as_path())),
        other => panic!("{other:?}"),
    }
    drop(wal);
    // `verify` and `Strict` check everything; so does the default.
    let verified = nori_wal::wal::verify(&dir, RecoveryMode::TolerateTornTail, |_, _| {});
    assert!(matches!(verified, Err(Error::Corrupt(_))) || verified.is_ok_and(|v| v.corruption.is_some()));
    let strict = config(&dir).open_check(OpenCheck::Newest(2)).recovery(RecoveryMode::Strict);
    assert!(matches!(Wal::open(strict), Err(Error::Corrupt(_))));
    assert!(matches!(Wal::open(config(&dir)), Err(Error::Corrupt(_))));
}

#[test]
fn segments_without_a_seal_that_agrees_are_checked_whole() {
    // Format v1 has no seal.
    let scratch = Scratch::new("open-check-v1");
    let dir = scratch.wal();
    write(&dir, Version::V1, 1100);
    let files = segment_files(&dir);
    flip_bit(&files[0], 56 + 32 + 10 * 20 + 17, 2);
    assert!(matches!(Wal::open(config(&dir).open_check(OpenCheck::Newest(1))), Err(Error::Corrupt(_))));
    // A seal slot that does not hold a seal that checks out: the segment
    // is read whole (a damaged record in it is then found at open).
    type Spoil = fn(&Path);
    let spoils: [(&str, Spoil); 5] = [
        // Its count field (the payload's first byte, after the 8-byte header).
        ("a flipped count", |f| flip_bit(f, 4096 - 8, 0)),
        ("zeros", |f| nori_wal_tests::walkit::overwrite(f, 4096 - 16, &[0; 16])),
        ("0xFF", |f| nori_wal_tests::walkit::overwrite(f, 4096 - 16, &[0xFF; 16])),
        ("garbage", |f| nori_wal_tests::walkit::overwrite(f, 4096 - 16, b"\x17not a seal, no!")),
        ("a torn seal", |f| nori_wal_tests::walkit::overwrite(f, 4096 - 5, &[0; 5])),
    ];
    for (what, spoil) in spoils {
        let scratch = Scratch::new("open-check-seal");
        let dir = scratch.wal();
        write(&dir, Version::V2, 2000);
        let files = segment_files(&dir);
        spoil(&files[0]);
        flip_bit(&files[0], 32 + 24 + 10 * 12 + 9, 2);
        let opened = Wal::open(config(&dir).open_check(OpenCheck::Newest(1)));
        assert!(matches!(opened, Err(Error::Corrupt(_))), "{what}: {opened:?}");
    }
}

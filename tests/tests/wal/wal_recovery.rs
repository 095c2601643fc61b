//! The file WAL's recovery decision table: every case of the table in
//! `nori_wal::wal`, under every recovery mode, on real files, with the
//! segments written in each format version.

/// The table with segments of format version 1.
mod v1 {
    use std::path::Path;

    use nori_wal::blocking::Wal;
    use nori_wal::format::{self, Version};
    use nori_wal::ring::RecoveryCase;
    use nori_wal::{Error, FsyncPolicy, Record, RecoveryInfo, RecoveryMode, WalConfig};
    use nori_wal_tests::walkit::{Scratch, flip_bit, overwrite, read_all, segment_files};

    const VERSION: Version = Version::V1;
    include!("wal_recovery_cases.rs");
}

/// The table with segments of format version 2.
mod v2 {
    use std::path::Path;

    use nori_wal::blocking::Wal;
    use nori_wal::format::{self, Version};
    use nori_wal::ring::RecoveryCase;
    use nori_wal::{Error, FsyncPolicy, Record, RecoveryInfo, RecoveryMode, WalConfig};
    use nori_wal_tests::walkit::{Scratch, flip_bit, overwrite, read_all, segment_files};

    const VERSION: Version = Version::V2;
    include!("wal_recovery_cases.rs");
}

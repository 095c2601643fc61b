//! nori-wal: a write-ahead log with one on-disk format for NOR flash, raw
//! partitions and directories of segment files.
//!
//! [`Wal`] is the file WAL with an async API (on tokio) and
//! [`blocking::Wal`] the same WAL without a runtime: a directory of segment
//! files with fsync policies, group commit, size and age rotation, crash
//! recovery, reads through memory maps and LZ4/Zstd compression (see the
//! [`wal`] module for the files, the durability policies and the recovery
//! decisions). The crate also offers what [`nori_wal_core`] has — the format
//! codec (versions 1 and 2) and the [`ring`] log over any [`BlockDevice`] — with the
//! hardware-accelerated CRC32C enabled, and the file-system layer the WAL
//! runs on ([`fs`]).
//!
//! The repository's README follows.
//!
#![doc = include_str!("../../README.md")]
// `unsafe` is denied everywhere but in `fs::mmap`, the one module that maps
// segment files, where every block has a `// SAFETY:` comment.
#![deny(unsafe_code)]

pub mod fs;
mod packed;
pub mod shared;
pub mod wal;

#[cfg(feature = "async")]
mod asynchronous;

#[cfg(feature = "openraft")]
pub mod raft;

#[cfg(feature = "async")]
pub use asynchronous::{EntryBuf, Follower, Iter, RecordBuf, Wal};
pub use wal::{
    Codec, Error, FollowConfig, FsyncPolicy, RecoveryInfo, RecoveryMode, Stats, Version, WalConfig,
};

/// The blocking API: the same WAL without a runtime. Its iterator lends
/// each record from its buffer or from a map of the segment (zero-copy).
pub mod blocking {
    pub use crate::wal::{Entry, Follower, Iter, Wal};
}

pub use nori_wal_core::{
    BlockDevice, Bytes, DecodeError, DeviceError, DeviceErrorKind, EncodeError, Geometry, GeometryError, Lsn,
    RamDevice, Record, crc, format, ring,
};

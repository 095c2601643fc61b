//! nori-wal: a write-ahead log with one on-disk format for NOR flash, raw
//! partitions and directories of segment files.
//!
//! The file WAL (segments, fsync policies, group commit, recovery) is not
//! implemented yet. Today this crate offers what [`nori_wal_core`] has —
//! the format v1 codec and the [`ring`] log over any [`BlockDevice`] — with
//! the hardware-accelerated CRC32C enabled, and the file-system layer the
//! file WAL will run on ([`fs`]).
//!
//! The repository's README follows.
//!
#![doc = include_str!("../../README.md")]
#![forbid(unsafe_code)]

#[cfg(unix)]
pub mod fs;

pub use nori_wal_core::{
    BlockDevice, Bytes, DecodeError, DeviceError, DeviceErrorKind, EncodeError, Geometry, GeometryError, Lsn,
    RamDevice, Record, crc, format, ring,
};

//! The `no_std` core of nori-wal: one on-disk format for NOR flash, raw
//! partitions and segment files.
//!
//! This crate needs no allocator and no operating system. It holds:
//!
//! - [`format`]: format v1, the segment header and record frame codec over
//!   caller-provided byte slices (`FORMAT.md` in the repository is the
//!   specification);
//! - [`crc`]: CRC32C, portable with a table size chosen by feature, and
//!   hardware-accelerated with the `std` feature;
//! - [`Geometry`]: the read, program and erase units of a medium;
//! - [`Record`]: what a log stores.
//!
//! # Features
//!
//! | feature | default | what it does |
//! |---|---|---|
//! | `crc-table-16` | yes | 16 KiB CRC table, fastest portable checksum |
//! | `crc-table-1` | no | 1 KiB CRC table (used when `crc-table-16` is off) |
//! | `std` | no | CRC32C with the CPU's instructions, detected at run time |
//! | `defmt` | no | `defmt::Format` on the public types |
//!
//! With no feature at all the crate builds for bare-metal targets such as
//! `thumbv7em-none-eabihf` and computes CRCs without a table.
//!
//! # Example
//!
//! ```
//! use nori_wal_core::{format, Record};
//!
//! let epoch = 1;
//! let mut buf = [0u8; 128];
//! let len = format::encode_record(&mut buf, epoch, 0, &Record::put(b"user:42", b"alice")).unwrap();
//! let frame = format::decode_frame(&buf[..len], epoch).unwrap();
//! let record = frame.records().unwrap().next().unwrap();
//! assert_eq!(record, Record::put(b"user:42", b"alice"));
//! ```
#![no_std]
// Denied, not forbidden: one module (`crc::x86`, the CPU's CRC instruction
// on short inputs) allows it.
#![deny(unsafe_code)]

#[cfg(feature = "std")]
extern crate std;

mod align;
pub mod crc;
mod device;
pub mod format;
pub mod geometry;
mod ram;
mod record;
pub mod ring;

pub use device::{
    AccessError, BlockDevice, DeviceError, DeviceErrorKind, Op, SplitSync, SyncHandle, check_access,
};
pub use format::{DecodeError, EncodeError};
pub use geometry::{Geometry, GeometryError};
pub use ram::{RamDevice, RamSync};
pub use record::{Bytes, Record};

/// A log sequence number: the position of a record in the log, counted from
/// zero, contiguous across segments.
pub type Lsn = u64;

//! Block devices for nori-wal: the media the core's ring log runs on.
//!
//! Each backend sits behind its own feature:
//!
//! | feature | module | medium | needs |
//! |---|---|---|---|
//! | `nor` | [`nor`] | any `embedded_storage::nor_flash::NorFlash` | `no_std` |
//! | `embedded-io` | [`stream`] | any `embedded_io::{Read, Write, Seek}` stream | `no_std` |
//! | `raw` | [`raw`] | a Linux block device or a fixed-size image file, with `O_DIRECT` | `std`, Linux |
//! | `defmt` | | `defmt::Format` on the public types | |
//!
//! The RAM device lives in the core ([`nori_wal_core::RamDevice`]).
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "nor")]
pub mod nor;
#[cfg(all(feature = "raw", target_os = "linux"))]
pub mod raw;
#[cfg(feature = "embedded-io")]
pub mod stream;

pub use nori_wal_core as core;

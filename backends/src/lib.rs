//! Block devices for nori-wal.
//!
//! This crate will hold the media that the core log runs on: NOR flash
//! through `embedded-storage`, raw partitions on Linux, and `embedded-io`
//! streams. None of them is implemented yet; today the crate only re-exports
//! the core so that dependents can already name it.
#![no_std]
#![forbid(unsafe_code)]

pub use nori_wal_core as core;

//! The file WAL: its API (blocking and async, the seed's quick start),
//! compression, crashes and kills, full disks, faults, hostile files,
//! readers, recovery and a short soak.

#[path = "../common/ticks.rs"]
mod ticks;

mod seed_quick_start;
mod wal_api;
mod wal_async;
mod wal_compress;
mod wal_crash;
mod wal_disk_full;
mod wal_faults;
mod wal_follow;
mod wal_format;
mod wal_holes;
mod wal_hostile;
mod wal_iter_runs;
mod wal_kill;
mod wal_modes;
mod wal_open_check;
mod wal_readers;
mod wal_recovery;
mod wal_restart;
mod wal_soak;

//! The file WAL: a directory of segment files, with fsync policies, group
//! commit, rotation and crash recovery.
//!
//! # Files
//!
//! Each segment file is named by the LSN of its first record
//! (`00000000000000000042.wal`), preallocated to the segment size, and holds
//! the bytes of a ring-log segment of that size (`FORMAT.md`): a header
//! with the segment's epoch, then frames. New segments are written in
//! format version 2 ([`WalConfig::format`]; its header records the size
//! and that the file was made at full size, so a file found shorter is
//! reported as damage, never taken for a crash's torn tail); segments of
//! version 1 are read side by side with them. A `LOCK` file holds the
//! exclusive lock. The WAL's own names are `LOCK`, `*.wal` and the
//! `*.wal.cut` copies an interrupted `truncate_after` may leave; every other
//! name is not the WAL's and is left alone (`lost+found` on a WAL's own
//! file system, notes). A `*.wal` name that is not twenty digits claims to
//! be the WAL's and is not: it is refused ([`Error::ForeignFile`]).
//!
//! A segment file is created durably before any record goes into it (its
//! header and a first mark of the durable point written and synced, the
//! directory synced). Sealing a segment does not wait for the disk: the
//! next sync syncs it, then writes its seal (version 2: the segment's
//! record count and a checksum of its frames' checksums, which recovery
//! and [`verify`] check). After each completed sync, the next frame written is
//! preceded by a mark saying how far the log was durable, and a clean close
//! ends with one; recovery uses them to tell damage in the durable region
//! from a tail in flight at a crash, in the newest segment or an older one.
//!
//! # Durability
//!
//! A record is durable once a sync that started after its append
//! returned: under [`FsyncPolicy::Always`] before [`Wal::append`] returns;
//! under [`FsyncPolicy::Batch`] within the window; under [`FsyncPolicy::Os`]
//! at [`Wal::sync`], [`Wal::rotate`] and close. [`Wal::durable_lsn`] says how
//! far, and [`Wal::wait_durable`] waits (syncing if needed). Appends from
//! many threads share syncs, and a sync runs outside the append lock. A
//! failed write or sync poisons the WAL: every waiter and every later call
//! gets an error until it is reopened (invariant I7).
//!
//! # Recovery decisions
//!
//! [`Wal::open`] lists the segment files, reads the newest one's frames for
//! the log's start (its header and marks), removes files wholly below the
//! start (a reclaim a crash interrupted) and a newest file with no valid
//! header and no frame (a rotation a crash interrupted), then reads every
//! frame of the rest, oldest first, with a bounded buffer. Each case is a
//! [`RecoveryCase`](nori_wal_core::ring::RecoveryCase) and has a test:
//!
//! | case | what recovery finds | `TolerateTornTail` | `PointInTime` | `SkipDamaged` | `Strict` |
//! |---|---|---|---|---|---|
//! | `Empty` | no segment file | `Keep`: an empty log | `Keep` | `Keep` | `Keep` |
//! | `Clean` | the newest segment ends in never-written space (zeros of the preallocation, or the end of the file) | `Keep`: all, append in place | `Keep` | `Keep` | `Keep` |
//! | `TornTail` | the newest segment ends in a torn frame; nothing valid after it | `CutTail`: cut it (`set_len`, sync) | `CutTail` | `CutTail` | `Refuse` |
//! | `InFlight` | damage in the newest segment, valid frames after it, no mark says they were durable; or an older segment whose frames stop (damage, or zeros short of the next file's base) where no later mark says they were durable (it was sealed, not yet synced) | `CutTail`: from the damage, drop every later file (an empty log at its start if the cut falls below it) | `CutTail` | `CutTail` | `Refuse` |
//! | `DurableDamage` | damage in the newest segment below a later mark's durable point; or a newest version 2 file made at full size (`PREALLOCATED`) and found shorter | `Refuse` | `EndAtDamage`: cut, report | `Skip`: the damaged records, report | `Refuse` |
//! | `DamagedSegment` | damage in an older segment below the durable point a later mark records; an older version 2 file made at full size and found shorter; a seal that checks out but disagrees with its segment's frames (a torn seal: `Strict` only) | `Refuse` | `EndAtDamage`: drop every later file | `Skip`: the damaged records, report | `Refuse` |
//! | `MissingSegment` | a gap in the LSNs between files below the durable point a later mark records, or a file whose header is damaged or out of epoch order | `Refuse` | `EndAtDamage`: cut before the gap | `Skip`: keep what follows, report | `Refuse` |
//!
//! Each cell names the [`Action`](nori_wal_core::ring::Action) that
//! [`decide`](nori_wal_core::ring::decide) gives for its case and mode: the
//! ring log's recovery and this one both take their decisions from it.
//!
//! Damage skipped under `SkipDamaged` stays in the files, and the next open
//! in another mode meets it again, until [`Wal::declare_lost`] rewrites the
//! format v2 segments that hold it with hole frames in its place: a hole
//! declares LSNs lost, readers step over it, recovery counts its LSNs in
//! [`RecoveryInfo::holes`], and the log then opens in every mode.
//!
//! Whatever the mode, a segment of a newer format version and a foreign file
//! are errors, a read error is an error (never taken for the end of the
//! log), and no record is returned that was not appended. After any cut
//! appends go to a new segment file. Recovery's repairs are idempotent: a
//! crash during them and a second recovery give the same log.
//!
//! # Example
//!
//! ```
//! use nori_wal::blocking::Wal;
//! use nori_wal::{FsyncPolicy, Record, WalConfig};
//!
//! let dir = std::env::temp_dir().join(format!("nori-wal-doc-{}", std::process::id()));
//! let config = WalConfig::new(&dir).segment_size(1 << 20).fsync(FsyncPolicy::Always);
//! let (wal, info) = Wal::open(config.clone())?;
//! assert_eq!(info.records, 0);
//! let lsn = wal.append(&Record::put(b"user:42", b"alice"))?; // durable on return
//! assert_eq!(wal.durable_lsn(), Some(lsn));
//! drop(wal);
//!
//! let (wal, info) = Wal::open(config)?;
//! assert_eq!(info.records, 1);
//! let mut iter = wal.iter_from(0)?;
//! let entry = iter.try_next()?.unwrap();
//! assert_eq!((entry.lsn, entry.record), (0, Record::put(b"user:42", b"alice")));
//! # drop(iter); drop(wal); std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// Emits a `tracing` event when the `tracing` feature is on; nothing
/// otherwise.
macro_rules! trace {
    ($level:ident, $($arg:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::$level!($($arg)*);
    };
}

mod check;
mod compress;
mod config;
mod engine;
mod error;
mod follow;
mod inspect;
mod iter;
mod recovery;
mod segment;
pub(crate) mod sync;

pub use check::{Verified, verify, verify_in};
pub use config::{Codec, FsyncPolicy, OpenCheck, RecoveryMode, Version, WalConfig};
pub use engine::Declared;
pub(crate) use engine::{Due, GroupCommit, Poisoned, Timer, lock};
pub use engine::{SYNC_LATENCY_BUCKETS, Stats, SyncLatency, Wal};
pub use error::{ConfigError, Corruption, Error};
pub use follow::{FollowConfig, Follower};
pub use inspect::{Inspection, SegmentInfo};
pub use iter::Iter;
pub use nori_wal_core::ring::Entry;
pub use recovery::{LoosePermission, RecoveryInfo};
pub(crate) use segment::fresh_epochs;

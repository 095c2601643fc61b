//! What recovery reports, and the log's state it hands to the engine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nori_wal_core::Lsn;

/// What recovery found and did: the core's report of the log
/// ([`log`](Self::log), whose fields read through this one: `info.records`,
/// `info.case`, `info.corruption`…), and what the file WAL adds.
///
/// ```
/// use nori_wal::blocking::Wal;
/// use nori_wal::ring::RecoveryCase;
/// use nori_wal::{Record, WalConfig};
/// # let dir = std::env::temp_dir().join(format!("nori-wal-info-doc-{}", std::process::id()));
/// let (wal, info) = Wal::open(WalConfig::new(&dir))?;
/// assert_eq!(info.case, RecoveryCase::Empty);
/// wal.append(&Record::raw(b"x"))?;
/// drop(wal);
/// let (_wal, info) = Wal::open(WalConfig::new(&dir))?;
/// assert_eq!((info.case, info.records, info.last_lsn), (RecoveryCase::Clean, 1, Some(0)));
/// # drop(_wal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryInfo {
    /// What recovery found in the log and did with it, as the ring log
    /// reports it, with segment files for segments. Under `SkipDamaged`,
    /// when damage was skipped, `records` is the count of the records
    /// between the first and the last LSN less `records_lost`: an estimate
    /// where whole segments were unreadable.
    pub log: nori_wal_core::ring::RecoveryInfo<PathBuf>,
    /// Segment files removed: leftovers of a reclaim or a rotation that a
    /// crash interrupted (they held no record of the log), or files dropped
    /// by `PointInTime`.
    pub segments_removed: usize,
    /// LSNs that hole frames declare lost (a log repaired by
    /// [`Wal::declare_lost`](crate::blocking::Wal::declare_lost)): between
    /// the first and the last LSN, held by no record, and not counted in
    /// `records`. A reader steps over them.
    pub holes: u64,
    /// Bytes of segment files read.
    pub bytes_scanned: u64,
    /// How long recovery took.
    pub elapsed: Duration,
    /// The WAL's directory, `LOCK` and segment files whose modes open them
    /// to more users than the configuration's
    /// [`file_mode`](crate::WalConfig::file_mode) and
    /// [`dir_mode`](crate::WalConfig::dir_mode) allow (made by an older
    /// version, copied in, or changed by hand). The WAL changes nothing:
    /// the operator decides. Also a `tracing` warning and a line of
    /// `nori-wal info`.
    pub loose_permissions: Vec<LoosePermission>,
}

/// A file or directory of the WAL open to more users than its
/// configuration allows; see [`RecoveryInfo::loose_permissions`].
///
/// ```
/// use nori_wal::wal::LoosePermission;
/// let p = LoosePermission { path: "wal/LOCK".into(), mode: 0o644, allowed: 0o600 };
/// assert_eq!(p.to_string(), "wal/LOCK has mode 0o644; the WAL allows 0o600");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoosePermission {
    /// The file or directory.
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
    /// What the configuration allows.
    pub allowed: u32,
}

impl std::fmt::Display for LoosePermission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} has mode {:#o}; the WAL allows {:#o}", self.path.display(), self.mode, self.allowed)
    }
}

impl RecoveryInfo {
    /// Notes `path` when its modes open it to more than `allowed` (the
    /// operator decides what to do; nothing is changed).
    pub(crate) fn note_mode(&mut self, path: &Path, mode: Option<u32>, allowed: u32) {
        if let Some(mode) = mode.filter(|m| m & 0o777 & !allowed != 0) {
            trace!(
                warn,
                path = %path.display(),
                mode = format_args!("{mode:#o}"),
                allowed = format_args!("{allowed:#o}"),
                "the WAL's files are open to more users than its configuration allows"
            );
            self.loose_permissions.push(LoosePermission { path: path.to_path_buf(), mode, allowed });
        }
    }
}

/// The core's report reads through: `info.records` is `info.log.records`.
impl std::ops::Deref for RecoveryInfo {
    type Target = nori_wal_core::ring::RecoveryInfo<PathBuf>;

    fn deref(&self) -> &Self::Target {
        &self.log
    }
}

impl std::ops::DerefMut for RecoveryInfo {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.log
    }
}

/// A segment of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegMeta {
    pub(crate) base: Lsn,
    pub(crate) epoch: u64,
    pub(crate) size: u64,
    pub(crate) path: PathBuf,
    /// The segment's format version.
    pub(crate) version: nori_wal_core::format::Version,
    /// Whether its header says it was created at full size (version 2).
    pub(crate) preallocated: bool,
}

impl SegMeta {
    /// Where its frames start.
    pub(crate) const fn frames_offset(&self) -> u64 {
        crate::wal::segment::frames_offset(self.version)
    }

    /// Where its frames end (before the seal slot, in version 2).
    pub(crate) const fn frames_end(&self) -> u64 {
        crate::wal::segment::frames_end(self.version, self.size)
    }
}

/// Damage skipped by `SkipDamaged`: reading the segment of base `base`
/// jumps from `from` to `to`, where LSN `lsn` resumes (`to` is `u64::MAX`
/// when the rest of the segment is skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Skip {
    pub(crate) base: Lsn,
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) lsn: Lsn,
}

impl Skip {
    /// The skip that resumes reading the segment of base `base` after
    /// damage found at `pos`, if recovery recorded one.
    pub(crate) fn at(skips: &[Skip], base: Lsn, pos: u64) -> Option<&Skip> {
        skips.iter().find(|s| s.base == base && s.from == pos)
    }
}

/// The log's state after recovery.
pub(crate) struct Recovered<F> {
    pub(crate) segments: Vec<SegMeta>,
    /// The newest segment, when appends continue in it: its file, the
    /// offset of the next frame, and the checksum of its frames' CRCs
    /// (format v2, for its seal; `None` when damage was skipped in it).
    pub(crate) active: Option<(F, u64, Option<nori_wal_core::format::v2::FramesCrc>)>,
    pub(crate) next_lsn: Lsn,
    pub(crate) log_start: Lsn,
    pub(crate) max_epoch: u64,
    pub(crate) skips: Vec<Skip>,
    pub(crate) info: RecoveryInfo,
}

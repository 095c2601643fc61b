//! Configuration of a ring log.

use core::fmt;

use crate::format::Version;

/// What [`RingLog::open`](super::RingLog::open) does with damage it finds.
///
/// The full decision table is in the [module docs](super#recovery-decisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RecoveryMode {
    /// Cut only what was in flight at the crash (a torn or unsynced tail);
    /// any damage in the durable region is an error. The default.
    #[default]
    TolerateTornTail,
    /// Stop at the first damage, wherever it is: the log ends just before
    /// it, and everything after is dropped (reported).
    PointInTime,
    /// Skip damaged records and missing segments and keep every valid
    /// record after them (reported). LSNs then have gaps.
    SkipDamaged,
    /// Any damage, a torn tail included, is an error.
    Strict,
}

/// What an append does when every segment of the ring is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FullPolicy {
    /// Return [`Error::Full`](super::Error::Full): nothing is dropped until
    /// the caller reclaims with [`truncate_before`](super::RingLog::truncate_before).
    /// Write-ahead-log semantics; the default.
    #[default]
    Error,
    /// Drop the oldest segment to make room: a ring journal that keeps the
    /// newest records (firmware event logs).
    OverwriteOldest,
}

/// Configuration of a [`RingLog`](super::RingLog).
///
/// ```
/// use nori_wal_core::ring::{FullPolicy, RecoveryMode, RingConfig};
///
/// let config = RingConfig::new(4096).recovery(RecoveryMode::Strict).when_full(FullPolicy::OverwriteOldest);
/// assert_eq!(config.segment_size, 4096);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct RingConfig {
    /// Size of each segment in bytes: a multiple of the device's erase unit
    /// (and so of its read and program units). The device holds
    /// `capacity / segment_size` segments, at least 2; one of them is kept
    /// free, so the log holds at most `segments - 1` at once.
    pub segment_size: u64,
    /// What recovery does with damage.
    pub recovery: RecoveryMode,
    /// What an append does when the ring is full.
    pub when_full: FullPolicy,
    /// The format version new segments are written in (default
    /// [`Version::V2`], unless the build leaves it out); segments of every
    /// version the build holds are read.
    pub format: Version,
    /// The epoch of a new ring's first segment, when the device holds no
    /// ring (default 1): see [`first_epoch`](Self::first_epoch).
    pub first_epoch: u64,
}

impl RingConfig {
    /// A configuration with `segment_size` and the defaults: tolerate a torn
    /// tail, and return `Full` when the ring is full.
    #[must_use]
    pub const fn new(segment_size: u64) -> Self {
        Self {
            segment_size,
            recovery: RecoveryMode::TolerateTornTail,
            when_full: FullPolicy::Error,
            format: Version::newest_built(),
            first_epoch: 1,
        }
    }

    /// Starts a new ring's epochs at `epoch` (default 1) when the device
    /// holds no ring. On media that need no erase (disks, image files, SD
    /// cards), an earlier ring's blocks stay where they were written; if
    /// its segment headers alone were zeroed, its frames and seals would
    /// check out under a new ring of the same epochs (invariant I6). An
    /// epoch from a clock, above any an earlier ring took, keeps them apart:
    /// `nori_wal::shared::SharedRing` takes one unless told otherwise. NOR
    /// flash erases each segment before it is used again and needs none.
    /// At least 1; at most `2^48 - 1` for format version 2
    /// ([`ConfigError::FirstEpoch`]).
    ///
    /// ```
    /// use nori_wal_core::ring::RingConfig;
    /// assert_eq!(RingConfig::new(4096).first_epoch(1 << 40).first_epoch, 1 << 40);
    /// ```
    #[must_use]
    pub const fn first_epoch(mut self, epoch: u64) -> Self {
        self.first_epoch = epoch;
        self
    }

    /// Writes new segments in format `version` (default [`Version::V2`]).
    /// Version 1 is for a deployment that may roll back to a build that
    /// reads only version 1.
    ///
    /// ```
    /// use nori_wal_core::format::Version;
    /// use nori_wal_core::ring::RingConfig;
    /// assert_eq!(RingConfig::new(4096).format(Version::V1).format, Version::V1);
    /// ```
    #[must_use]
    pub const fn format(mut self, version: Version) -> Self {
        self.format = version;
        self
    }

    /// Sets the recovery mode.
    #[must_use]
    pub const fn recovery(mut self, mode: RecoveryMode) -> Self {
        self.recovery = mode;
        self
    }

    /// Sets the full-ring policy.
    #[must_use]
    pub const fn when_full(mut self, policy: FullPolicy) -> Self {
        self.when_full = policy;
        self
    }
}

/// Why a configuration, geometry and buffer do not fit together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// The segment size is not a multiple of the erase unit.
    SegmentNotAligned {
        /// The segment size given.
        segment_size: u64,
        /// The device's erase unit.
        erase_unit: u32,
    },
    /// The segment size leaves too little room for records.
    SegmentTooSmall {
        /// The segment size given.
        segment_size: u64,
        /// The smallest segment size that works with this geometry.
        min: u64,
    },
    /// The device holds fewer than two segments.
    TooFewSegments {
        /// Segments that fit.
        segments: u64,
    },
    /// The buffer is not a multiple of the device's read and program units,
    /// or is smaller than the minimum.
    BadBuffer {
        /// The buffer length given.
        len: usize,
        /// The unit it must be a multiple of.
        unit: u32,
        /// The smallest length allowed.
        min: usize,
    },
    /// The device holds segments written with another segment size or
    /// program unit.
    LayoutMismatch {
        /// The segment size found on the device.
        found_segment_size: u64,
        /// The program unit found on the device.
        found_program_unit: u32,
    },
    /// The configuration asks for a format version this build leaves out
    /// (`nori-wal-core`'s features `v1` and `v2`).
    VersionNotBuilt {
        /// The version asked for.
        version: Version,
    },
    /// [`RingConfig::first_epoch`] is 0 or above what the format version
    /// holds.
    FirstEpoch {
        /// The epoch given.
        epoch: u64,
        /// The largest epoch the format version holds.
        max: u64,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::SegmentNotAligned { segment_size, erase_unit } => write!(
                f,
                "segment size {segment_size} is not a multiple of the device's erase unit ({erase_unit} bytes)"
            ),
            Self::SegmentTooSmall { segment_size, min } => {
                write!(
                    f,
                    "segment size {segment_size} is too small for this device; use at least {min} bytes"
                )
            }
            Self::TooFewSegments { segments } => write!(
                f,
                "the device holds {segments} segment(s) of this size; a ring needs at least 2: use smaller segments"
            ),
            Self::BadBuffer { len, unit, min } => write!(
                f,
                "buffer of {len} bytes: it must be a multiple of {unit} bytes and at least {min} bytes long"
            ),
            Self::LayoutMismatch { found_segment_size, found_program_unit } => write!(
                f,
                "the device holds a log with {found_segment_size}-byte segments and a {found_program_unit}-byte \
                 program unit; open it with that segment size"
            ),
            Self::VersionNotBuilt { version } => write!(
                f,
                "{version} is not in this build: enable nori-wal-core's feature `v{}` or write another version",
                version.number()
            ),
            Self::FirstEpoch { epoch, max } => {
                write!(f, "first epoch {epoch}: it must be between 1 and {max} for this format version")
            }
        }
    }
}

impl core::error::Error for ConfigError {}

//! Errors of the ring log.

use core::fmt;

use super::config::ConfigError;
use crate::Lsn;
use crate::device::{AccessError, DeviceError};
use crate::format::{DecodeError, EncodeError};

/// Where damage was found, and what it is: one type for every medium. The
/// segment is named by `At`: its slot on the ring log's device (a `u32`,
/// 0-based), or its file for the file WAL (a `PathBuf`).
///
/// ```
/// use nori_wal_core::ring::{Corruption, Damage};
/// let c = Corruption { segment: 2u32, offset: 8192, lsn: 7, damage: Damage::MissingSegment };
/// assert_eq!(
///     c.to_string(),
///     "segment 2 at device offset 8192, expected LSN 7: the segment holding it is missing, or its header is damaged"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Corruption<At = u32> {
    /// The segment: its slot on a ring log's device, or its file.
    pub segment: At,
    /// Offset of the damage: within the device (a ring log) or within the
    /// segment's file.
    pub offset: u64,
    /// The LSN expected there.
    pub lsn: Lsn,
    /// What is wrong.
    pub damage: Damage,
}

/// What is wrong at a [`Corruption`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Damage {
    /// A frame that does not decode.
    Frame(DecodeError),
    /// A valid frame with another LSN than the one expected there
    /// (misdirected write, or records missing before it).
    LsnMismatch {
        /// The LSN the frame carries.
        found: Lsn,
    },
    /// A segment that should hold records is missing or its header is
    /// damaged.
    MissingSegment,
    /// A frame kind this log does not write (a compressed batch).
    Unsupported,
    /// A segment file shorter than the size it was created at (format
    /// version 2 records that it was made at full size before any frame
    /// went in, so no crash leaves it shorter): what it held past its end
    /// is lost.
    CutShort {
        /// The file's length.
        len: u64,
        /// The size its header records.
        size: u64,
    },
}

/// How a [`Corruption`] names the place of its damage.
pub trait Locate {
    /// Writes where the damage is: the segment, and `offset` in the units
    /// of the medium.
    ///
    /// # Errors
    ///
    /// As [`fmt::Write`].
    fn locate(&self, offset: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

/// A ring log's segment slot: `segment 3 at device offset 12288`.
impl Locate for u32 {
    fn locate(&self, offset: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "segment {self} at device offset {offset}")
    }
}

/// A segment file (feature `std`): `…/00000000000000000000.wal at offset 100`.
#[cfg(feature = "std")]
impl Locate for std::path::PathBuf {
    fn locate(&self, offset: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {offset}", self.display())
    }
}

impl<At: Locate> fmt::Display for Corruption<At> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.segment.locate(self.offset, f)?;
        write!(f, ", expected LSN {}: {}", self.lsn, self.damage)
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Frame(e) => write!(f, "{e}"),
            Self::LsnMismatch { found } => write!(f, "found a frame of LSN {found} instead"),
            Self::MissingSegment => {
                f.write_str("the segment holding it is missing, or its header is damaged")
            }
            Self::Unsupported => f.write_str("a frame kind this reader does not read (a compressed batch)"),
            Self::CutShort { len, size } => write!(
                f,
                "the file is {len} bytes long but was created at {size} bytes: it was cut after its records were written, and what it held past byte {len} is lost"
            ),
        }
    }
}

/// An error of a [`RingLog`](super::RingLog).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error<E> {
    /// The device failed.
    Device(E),
    /// A device call would break the geometry: a bug in the log or the
    /// device, caught before the call.
    Access(AccessError),
    /// The configuration does not fit the device.
    Config(ConfigError),
    /// Every segment is in use and the policy is [`FullPolicy::Error`](super::FullPolicy::Error):
    /// reclaim with `truncate_before`. Nothing was written.
    Full,
    /// The record or batch does not fit in a segment.
    RecordTooLarge {
        /// Frame length needed.
        len: u64,
        /// The largest frame a segment takes.
        max: u64,
    },
    /// A record could not be encoded.
    Encode(EncodeError),
    /// A device write or sync failed earlier: nothing more is acknowledged
    /// until the log is reopened, which recovers what is durable.
    Poisoned,
    /// Damage in the durable region, refused by the recovery mode (or found
    /// while reading after open).
    Corrupt(Corruption),
    /// The device holds a segment of a format version this crate cannot read.
    UnsupportedVersion {
        /// The version found.
        found: u16,
    },
    /// An erased segment does not read back blank: the erase failed.
    EraseFailed {
        /// The segment slot.
        slot: u32,
    },
    /// A caller buffer is too small for a record.
    BufferTooSmall {
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The log's LSNs or segment epochs would pass 2^64 - 1: only a
    /// device holding hostile or damaged values gets here.
    Exhausted,
    /// An internal invariant does not hold: a bug in nori-wal, reported
    /// instead of a panic. The log is poisoned.
    Internal(Invariant),
    /// The LSN asked for is outside the log.
    LsnOutOfRange {
        /// The LSN asked for.
        lsn: Lsn,
        /// The log's first LSN.
        first: Lsn,
        /// The LSN the next append gets.
        next: Lsn,
    },
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Device(e) => write!(f, "device error: {e}"),
            Self::Access(e) => write!(f, "refused device access (a bug): {e}"),
            Self::Config(e) => write!(f, "configuration: {e}"),
            Self::Full => f.write_str("the log is full: reclaim segments with truncate_before, or use FullPolicy::OverwriteOldest"),
            Self::RecordTooLarge { len, max } => {
                write!(f, "record too large: a {len}-byte frame, a segment takes at most {max}; use larger segments")
            }
            Self::Encode(e) => write!(f, "{e}"),
            Self::Poisoned => f.write_str(
                "the log is poisoned by an earlier write or sync failure: reopen it to recover what is durable",
            ),
            Self::Corrupt(c) => write!(f, "corrupt log: {c}"),
            Self::UnsupportedVersion { found } => write!(
                f,
                "the device holds format version {found}; this nori-wal reads up to {}: upgrade it",
                crate::format::NEWEST_VERSION
            ),
            Self::EraseFailed { slot } => write!(f, "segment {slot} does not read back blank after an erase"),
            Self::BufferTooSmall { needed, available } => {
                write!(f, "buffer too small: {needed} bytes needed, {available} given")
            }
            Self::Exhausted => f.write_str(
                "the log's LSN or epoch counter is exhausted (the device holds values near 2^64); reformat it",
            ),
            Self::Internal(what) => write!(f, "internal error (a bug in nori-wal, please report it): {what}"),
            Self::LsnOutOfRange { lsn, first, next } => {
                write!(f, "LSN {lsn} is outside the log, which holds LSNs {first} to {next} (exclusive)")
            }
        }
    }
}

impl<E: DeviceError> core::error::Error for Error<E> {}

impl<E> Error<E> {
    /// Separates the device's error from the log's own: `Ok` with the
    /// device's error, `Err` with any other error, which then holds no
    /// device error (for a layer above with its own type for those).
    ///
    /// ```
    /// use nori_wal_core::ring::Error;
    /// let device: Error<u8> = Error::Device(7);
    /// assert!(matches!(device.into_device(), Ok(7)));
    /// let full: Error<u8> = Error::Full;
    /// assert!(matches!(full.into_device(), Err(Error::Full)));
    /// ```
    pub fn into_device(self) -> Result<E, Error<core::convert::Infallible>> {
        self.split()
    }

    /// The same error with its device error, if it holds one, mapped by
    /// `f` (for a device that wraps another).
    ///
    /// ```
    /// use nori_wal_core::ring::Error;
    /// let device: Error<u8> = Error::Device(7);
    /// assert!(matches!(device.map_device(u32::from), Error::Device(7u32)));
    /// ```
    pub fn map_device<F>(self, f: impl FnOnce(E) -> F) -> Error<F> {
        match self.split() {
            Ok(e) => Error::Device(f(e)),
            Err(other) => other,
        }
    }

    /// `Ok` with the device's error, `Err` with any other error, retyped.
    fn split<F>(self) -> Result<E, Error<F>> {
        Err(match self {
            Self::Device(e) => return Ok(e),
            Self::Access(e) => Error::Access(e),
            Self::Config(e) => Error::Config(e),
            Self::Full => Error::Full,
            Self::RecordTooLarge { len, max } => Error::RecordTooLarge { len, max },
            Self::Encode(e) => Error::Encode(e),
            Self::Poisoned => Error::Poisoned,
            Self::Corrupt(c) => Error::Corrupt(c),
            Self::UnsupportedVersion { found } => Error::UnsupportedVersion { found },
            Self::EraseFailed { slot } => Error::EraseFailed { slot },
            Self::BufferTooSmall { needed, available } => Error::BufferTooSmall { needed, available },
            Self::Exhausted => Error::Exhausted,
            Self::Internal(i) => Error::Internal(i),
            Self::LsnOutOfRange { lsn, first, next } => Error::LsnOutOfRange { lsn, first, next },
        })
    }
}

impl<E> From<ConfigError> for Error<E> {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl<E> From<AccessError> for Error<E> {
    fn from(e: AccessError) -> Self {
        Self::Access(e)
    }
}

impl<E> From<EncodeError> for Error<E> {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}

/// The invariant that did not hold in an [`Error::Internal`]: its
/// [`Display`](fmt::Display) names it for a bug report. A code rather than a
/// message, so that firmware that never prints an error carries no text
/// for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Invariant(pub(crate) Broken);

/// The invariants the log checks instead of panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) enum Broken {
    /// A step failed and left no error in its fault slot.
    Unexplained,
    /// A segment was started while another was active.
    ActiveAtStart,
    /// A segment header was read while the write buffer held bytes.
    HeaderReadWhileBuffered,
    /// A mark was written but no segment is active after it.
    NoActiveAfterMark,
    /// Bytes were written with no active segment.
    WriteWithoutActive,
    /// The buffer was flushed with no active segment.
    FlushWithoutActive,
    /// The iterator held records but no segment.
    RecordsWithoutSegment,
    /// A read the device serves in place was refused.
    InPlaceRefused,
    /// Recovery went round more times than the device has segments.
    RecoveryUnsettled,
    /// A segment recovery had read was gone when it came back to it.
    SegmentVanished,
    /// The newest segment's walk stopped with no reason recorded.
    NoStopCause,
    /// A segment held more records than its seal can count, or the write
    /// buffer is shorter than the seal slot.
    SegmentOverfull,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Broken::Unexplained => "a step failed without saying why",
            Broken::ActiveAtStart => "start_segment with an active segment",
            Broken::SegmentOverfull => "a segment too full to seal",
            Broken::HeaderReadWhileBuffered => "header read with a non-empty write buffer",
            Broken::NoActiveAfterMark => "no active segment after a mark",
            Broken::WriteWithoutActive => "write without an active segment",
            Broken::FlushWithoutActive => "flush without an active segment",
            Broken::RecordsWithoutSegment => "records without a segment",
            Broken::InPlaceRefused => "in-place read refused",
            Broken::RecoveryUnsettled => "recovery did not settle",
            Broken::SegmentVanished => "segment vanished during recovery",
            Broken::NoStopCause => "the newest segment stopped without a cause",
        })
    }
}

/// A step of the log failed; what failed is in the [`Fault`] slot it was
/// given. Inside the log every fallible step returns [`Step`], so that
/// passing a failure up costs a branch, not a copy of an [`Error`] at every
/// level (on a Cortex-M, about a tenth of the log's code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failed;

/// The result of a step inside the log.
pub(crate) type Step<T> = core::result::Result<T, Failed>;

/// Where a failing step leaves its error for the public method that
/// returns it.
#[derive(Debug)]
pub(crate) struct Fault<E>(Option<Error<E>>);

impl<E> Fault<E> {
    pub(crate) const fn new() -> Self {
        Self(None)
    }

    /// Keeps `error` and returns the failure to pass up.
    pub(crate) fn raise(&mut self, error: Error<E>) -> Failed {
        self.0 = Some(error);
        Failed
    }

    /// Keeps [`Error::Internal`]: an invariant of the log does not hold.
    #[cold]
    #[inline(never)]
    pub(crate) fn internal(&mut self, what: Broken) -> Failed {
        self.raise(Error::Internal(Invariant(what)))
    }

    /// Keeps [`Error::Corrupt`].
    #[cold]
    #[inline(never)]
    pub(crate) fn corrupt(&mut self, corruption: Corruption) -> Failed {
        self.raise(Error::Corrupt(corruption))
    }

    /// Keeps [`Error::Device`].
    #[cold]
    #[inline(never)]
    pub(crate) fn device(&mut self, error: E) -> Failed {
        self.raise(Error::Device(error))
    }

    /// A step of another layer's result: its error kept, as [`raise`](Self::raise).
    pub(crate) fn lift<T, X: Into<Error<E>>>(&mut self, result: core::result::Result<T, X>) -> Step<T> {
        result.map_err(|e| self.raise(e.into()))
    }

    /// The public result of a step: its error taken from the slot.
    pub(crate) fn out<T>(&mut self, step: Step<T>) -> core::result::Result<T, Error<E>> {
        step.map_err(|Failed| self.take())
    }

    /// The error of the step that failed last.
    #[cold]
    pub(crate) fn take(&mut self) -> Error<E> {
        self.0.take().unwrap_or(Error::Internal(Invariant(Broken::Unexplained)))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;

    use super::*;
    use crate::device::{DeviceErrorKind, Op};

    #[test]
    fn the_public_method_gets_the_last_error_raised() {
        let mut fault = Fault::<AccessError>::new();
        let first: Step<()> = Err(fault.raise(Error::Full));
        let second: Step<()> =
            Err(fault.corrupt(Corruption { segment: 2, offset: 8192, lsn: 7, damage: Damage::Unsupported }));
        assert!(first.is_err());
        match fault.out(second) {
            Err(Error::Corrupt(c)) => assert_eq!((c.segment, c.offset, c.lsn), (2, 8192, 7)),
            other => panic!("{other:?}"),
        }
        // Taken: a failure nobody raised says so instead of repeating an old error.
        match fault.out::<()>(Err(Failed)) {
            Err(Error::Internal(what)) => {
                assert_eq!(what, Invariant(Broken::Unexplained));
                assert_eq!(format!("{what}"), "a step failed without saying why");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_layers_errors_are_lifted_whole() {
        let mut fault = Fault::<AccessError>::new();
        let access = AccessError { op: Op::Read, offset: 3, len: 5, kind: DeviceErrorKind::Misaligned };
        let step = fault.lift::<(), _>(Err(access));
        assert!(matches!(fault.out(step), Err(Error::Access(e)) if e == access));
        let step = fault.lift::<(), _>(Err(EncodeError::EmptyBatch));
        assert!(matches!(fault.out(step), Err(Error::Encode(EncodeError::EmptyBatch))));
        let device = fault.device(access);
        assert!(matches!(fault.out::<()>(Err(device)), Err(Error::Device(e)) if e == access));
        assert_eq!(fault.out(Ok::<u8, Failed>(9)).ok(), Some(9));
    }
}

//! The block device: a linear byte region with a geometry.

use core::fmt;

use crate::Geometry;
use crate::align::is_aligned;

/// What kind of failure a device error is, so that the log can react
/// without knowing the device's own error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DeviceErrorKind {
    /// The medium failed the operation (I/O error, bad sector, timeout).
    Io,
    /// The access lies outside the device.
    OutOfBounds,
    /// The offset or length is not aligned to the unit the operation needs.
    Misaligned,
    /// A program would write a unit that is not blank, on a medium that
    /// programs each unit once between erases.
    NotErased,
    /// The medium is full or out of space.
    Full,
    /// Anything else.
    Other,
}

/// An error of a [`BlockDevice`].
pub trait DeviceError: fmt::Debug + fmt::Display {
    /// What kind of failure this is.
    fn kind(&self) -> DeviceErrorKind;
}

/// No device error: for errors that hold none (see
/// [`ring::Error::into_device`](crate::ring::Error::into_device)).
impl DeviceError for core::convert::Infallible {
    fn kind(&self) -> DeviceErrorKind {
        match *self {}
    }
}

/// An I/O error of the operating system as a device error (feature `std`):
/// a file or a block device read through `std`.
///
/// ```
/// use nori_wal_core::{DeviceError, DeviceErrorKind};
/// let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
/// assert_eq!(DeviceError::kind(&full), DeviceErrorKind::Full);
/// ```
#[cfg(feature = "std")]
impl DeviceError for std::io::Error {
    fn kind(&self) -> DeviceErrorKind {
        match std::io::Error::kind(self) {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => DeviceErrorKind::Full,
            std::io::ErrorKind::Unsupported | std::io::ErrorKind::InvalidInput => DeviceErrorKind::Other,
            _ => DeviceErrorKind::Io,
        }
    }
}

/// A device access that breaks the device's geometry, found before the
/// device is called. Devices may use it as their own error for such calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AccessError {
    /// The operation.
    pub op: Op,
    /// Start of the access.
    pub offset: u64,
    /// Length of the access.
    pub len: u64,
    /// Why it is refused.
    pub kind: DeviceErrorKind,
}

/// A device operation, for error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Op {
    /// [`BlockDevice::read`].
    Read,
    /// [`BlockDevice::program`].
    Program,
    /// [`BlockDevice::erase`].
    Erase,
    /// [`BlockDevice::sync`].
    Sync,
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.kind {
            DeviceErrorKind::OutOfBounds => "lies outside the device",
            DeviceErrorKind::Misaligned => "is not aligned to the device's unit for it",
            _ => "is refused",
        };
        write!(f, "{:?} of {} bytes at offset {} {why}", self.op, self.len, self.offset)
    }
}

impl DeviceError for AccessError {
    fn kind(&self) -> DeviceErrorKind {
        self.kind
    }
}

impl core::error::Error for AccessError {}

/// Checks that an access of `len` bytes at `offset` lies inside a device of
/// `capacity` bytes and is aligned to the unit `op` needs under `geometry`
/// (read unit, program unit, erase unit; a sync has no range).
///
/// # Errors
///
/// [`AccessError`] naming the violation.
pub const fn check_access(
    geometry: &Geometry,
    capacity: u64,
    op: Op,
    offset: u64,
    len: u64,
) -> Result<(), AccessError> {
    let unit = match op {
        Op::Read => geometry.read_unit(),
        Op::Program => geometry.program_unit(),
        Op::Erase => geometry.erase_unit(),
        Op::Sync => return Ok(()),
    } as u64;
    let end = match offset.checked_add(len) {
        Some(end) => end,
        None => return Err(AccessError { op, offset, len, kind: DeviceErrorKind::OutOfBounds }),
    };
    if end > capacity {
        return Err(AccessError { op, offset, len, kind: DeviceErrorKind::OutOfBounds });
    }
    if !is_aligned(offset, unit) || !is_aligned(len, unit) {
        return Err(AccessError { op, offset, len, kind: DeviceErrorKind::Misaligned });
    }
    Ok(())
}

/// A linear byte region with a [`Geometry`]: the medium a log runs on.
///
/// All calls block. Offsets and lengths must be aligned to the unit of the
/// operation and lie inside [`capacity`](Self::capacity); an implementation
/// must return an error (of kind [`DeviceErrorKind::Misaligned`] or
/// [`DeviceErrorKind::OutOfBounds`]) for a call that is not, never panic.
/// [`check_access`] does that check.
///
/// # What a power cut leaves behind
///
/// The log relies on exactly these promises, and the tests simulate a
/// medium that gives no more:
///
/// - [`read`](Self::read) changes nothing on the medium.
/// - [`program`](Self::program): until the next successful
///   [`sync`](Self::sync), a power cut may leave any subset of the
///   programmed units persisted, in any order, and the unit being written
///   at the cut may hold any mix of old and new bytes (on flash: undefined
///   bytes).
/// - [`erase`](Self::erase): a cut erase leaves the units it covers
///   undefined; they may even read back as they were before.
/// - [`sync`](Self::sync): when it returns `Ok`, every earlier program and
///   erase is durable. When it returns an error, nothing about the earlier
///   writes is known, and a later `Ok` does not make them durable.
pub trait BlockDevice {
    /// The device's error.
    type Error: DeviceError;

    /// The device's geometry.
    ///
    /// ```
    /// use nori_wal_core::{BlockDevice, Geometry, RamDevice};
    /// let mut flash = RamDevice::new(vec![0xFF; 8192], Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap()).unwrap();
    /// assert_eq!(flash.geometry().erase_unit(), 4096);
    /// ```
    fn geometry(&self) -> Geometry;

    /// The device's size in bytes.
    ///
    /// ```
    /// use nori_wal_core::{BlockDevice, Geometry, RamDevice};
    /// let mut flash = RamDevice::new(vec![0xFF; 8192], Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap()).unwrap();
    /// assert_eq!(flash.capacity(), 8192);
    /// ```
    fn capacity(&self) -> u64;

    /// Reads `buf.len()` bytes at `offset` (both aligned to the read unit).
    ///
    /// ```
    /// use nori_wal_core::{BlockDevice, Geometry, RamDevice};
    /// let mut flash = RamDevice::new(vec![0xFF; 8192], Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap()).unwrap();
    /// let mut buf = [0u8; 4];
    /// flash.read(0, &mut buf).unwrap();
    /// assert_eq!(buf, [0xFF; 4]);
    /// ```
    ///
    /// # Errors
    ///
    /// The device's error; a read that fails must never be taken for data.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error>;

    /// Programs `data` at `offset` (both aligned to the program unit). On a
    /// medium with an erase value, the units must be erased first.
    ///
    /// ```
    /// use nori_wal_core::{BlockDevice, Geometry, RamDevice};
    /// let mut flash = RamDevice::new(vec![0xFF; 8192], Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap()).unwrap();
    /// flash.program(8, b"8 bytes!").unwrap();
    /// assert_eq!(&flash.bytes()[8..16], b"8 bytes!");
    /// ```
    ///
    /// # Errors
    ///
    /// The device's error. After an error, the units covered hold unknown
    /// bytes.
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error>;

    /// Erases `len` bytes at `offset` (both aligned to the erase unit): they
    /// then read as the erase value. A no-op that returns `Ok` on media
    /// without an erase value.
    ///
    /// ```
    /// use nori_wal_core::{BlockDevice, Geometry, RamDevice};
    /// let mut flash = RamDevice::new(vec![0xFF; 8192], Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap()).unwrap();
    /// flash.program(0, &[0; 8]).unwrap();
    /// flash.erase(0, 4096).unwrap();
    /// assert_eq!(flash.bytes()[0], 0xFF);
    /// ```
    ///
    /// # Errors
    ///
    /// The device's error. After an error, the units covered are undefined.
    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Self::Error>;

    /// The durability barrier: returns `Ok` once every earlier program and
    /// erase is durable.
    ///
    /// ```
    /// use nori_wal_core::{BlockDevice, Geometry, RamDevice};
    /// let mut flash = RamDevice::new(vec![0xFF; 8192], Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap()).unwrap();
    /// flash.program(0, &[1; 8]).unwrap();
    /// flash.sync().unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// The device's error. Earlier writes may or may not be durable.
    fn sync(&mut self) -> Result<(), Self::Error>;

    /// The bytes `[offset, offset + len)` as they would be read, borrowed in
    /// place, for devices that hold their contents in memory (RAM, a memory
    /// map). A device that lends any range lends every range inside its
    /// capacity; `None` otherwise, and the reader then uses
    /// [`read`](Self::read). The default returns `None`.
    ///
    /// ```
    /// use nori_wal_core::{BlockDevice, Geometry, RamDevice};
    /// let mut flash = RamDevice::new(vec![0xFF; 8192], Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap()).unwrap();
    /// assert_eq!(flash.bytes_in_place(0, 2), Some(&[0xFF, 0xFF][..]));
    /// ```
    fn bytes_in_place(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let _ = (offset, len);
        None
    }

    /// Whether every program and erase is durable, in the order issued, by
    /// the time it returns, so that a power cut can only tear the operation
    /// in progress (NOR flash through `embedded-storage`, RAM). The default
    /// is `false`: writes may persist in any order until a sync (disks,
    /// files, anything with a cache). A log on a device that keeps order
    /// needs no record of how far it was durable.
    ///
    /// ```
    /// use nori_wal_core::{BlockDevice, Geometry, RamDevice};
    /// let mut flash = RamDevice::new(vec![0xFF; 8192], Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap()).unwrap();
    /// let ordered = flash.writes_persist_in_order();
    /// # let _ = ordered;
    /// ```
    fn writes_persist_in_order(&self) -> bool {
        false
    }
}

/// A device whose sync can run on another thread, outside the lock that
/// guards a log on it (group commit: appends go on while a sync runs).
/// `RawDevice` of `nori-wal-backends` has one (a duplicate of its file
/// descriptor); a [`RamDevice`](crate::RamDevice)'s does nothing.
///
/// ```
/// use nori_wal_core::{Geometry, RamDevice, SplitSync, SyncHandle};
/// let ram = RamDevice::new(vec![0u8; 4096], Geometry::block(512).unwrap()).unwrap();
/// let handle = ram.sync_handle().unwrap();
/// handle.sync().unwrap(); // from any thread
/// ```
pub trait SplitSync: BlockDevice {
    /// Syncs this device from elsewhere.
    type Handle: SyncHandle<Error = Self::Error>;

    /// A handle that syncs this device.
    ///
    /// # Errors
    ///
    /// The device's, when no handle can be made.
    fn sync_handle(&self) -> Result<Self::Handle, Self::Error>;

    /// Another handle that programs the same device on its own, for a
    /// second thread to write through while a first writes through this
    /// one (a device takes two writes at once better than one after the
    /// other). Writes through the two may run at the same time and complete
    /// in any order, so a device whose
    /// [`writes_persist_in_order`](BlockDevice::writes_persist_in_order)
    /// is `true` must not have one. A sync through any handle of the device
    /// makes the writes that completed through either durable. `Ok(None)`,
    /// the default: the device has no such handle.
    ///
    /// ```
    /// use nori_wal_core::{Geometry, RamDevice, SplitSync};
    /// let ram = RamDevice::new(vec![0u8; 4096], Geometry::block(512).unwrap()).unwrap();
    /// assert!(ram.write_handle().unwrap().is_none()); // one buffer, one writer
    /// ```
    ///
    /// # Errors
    ///
    /// The device's, when a handle it has cannot be made.
    fn write_handle(&self) -> Result<Option<Self>, Self::Error>
    where
        Self: Sized,
    {
        Ok(None)
    }
}

/// Syncs a device from another thread than the one that writes to it:
/// when [`sync`](Self::sync) returns `Ok`, every write to the device that
/// completed before the call is durable.
///
/// ```
/// use nori_wal_core::{Geometry, RamDevice, SplitSync, SyncHandle};
/// let ram = RamDevice::new(vec![0u8; 4096], Geometry::block(512).unwrap()).unwrap();
/// assert!(ram.sync_handle().unwrap().sync().is_ok());
/// ```
pub trait SyncHandle {
    /// The device's error.
    type Error: DeviceError;

    /// Makes every completed write durable.
    ///
    /// # Errors
    ///
    /// The device's; nothing about the earlier writes is then known.
    fn sync(&self) -> Result<(), Self::Error>;
}

impl<T: BlockDevice + ?Sized> BlockDevice for &mut T {
    type Error = T::Error;

    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }

    fn capacity(&self) -> u64 {
        (**self).capacity()
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        (**self).read(offset, buf)
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        (**self).program(offset, data)
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Self::Error> {
        (**self).erase(offset, len)
    }

    fn sync(&mut self) -> Result<(), Self::Error> {
        (**self).sync()
    }

    fn bytes_in_place(&self, offset: u64, len: u64) -> Option<&[u8]> {
        (**self).bytes_in_place(offset, len)
    }

    fn writes_persist_in_order(&self) -> bool {
        (**self).writes_persist_in_order()
    }
}

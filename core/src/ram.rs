//! A block device in RAM.

use crate::Geometry;
use crate::device::{AccessError, BlockDevice, DeviceErrorKind, Op, check_access};

/// A [`BlockDevice`] over memory: a caller's `&mut [u8]`, a `[u8; N]`, or
/// any other byte buffer. `no_std`, no allocation.
///
/// It honours its geometry: accesses are checked, and with an erase value
/// and `program_twice == false` a program of a unit that is not blank is
/// refused, as on flash. Writes are durable at once; [`sync`](BlockDevice::sync)
/// does nothing. (The crash-simulating devices in the tests build on the
/// same rules and add power cuts.)
///
/// ```
/// use nori_wal_core::{BlockDevice, Geometry, RamDevice};
///
/// let mut device = RamDevice::new([0xFFu8; 8192], Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap()).unwrap();
/// device.program(8, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
/// assert!(device.program(8, &[0; 8]).is_err()); // programmed once already
/// assert!(device.program(3, &[0; 8]).is_err()); // misaligned
/// device.erase(0, 4096).unwrap();
/// device.program(8, &[0; 8]).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct RamDevice<B> {
    bytes: B,
    geometry: Geometry,
    in_order: bool,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> RamDevice<B> {
    /// A device over `bytes` with `geometry`. The bytes are taken as they
    /// are (an image to reopen, or fresh memory).
    ///
    /// # Errors
    ///
    /// [`AccessError`] of kind [`DeviceErrorKind::Misaligned`] when the
    /// length is not a multiple of the erase unit.
    pub fn new(bytes: B, geometry: Geometry) -> Result<Self, AccessError> {
        let len = bytes.as_ref().len() as u64;
        if !crate::align::is_aligned(len, u64::from(geometry.erase_unit())) {
            return Err(AccessError { op: Op::Erase, offset: 0, len, kind: DeviceErrorKind::Misaligned });
        }
        Ok(Self { bytes, geometry, in_order: false })
    }

    /// Declares that this RAM stands for a medium whose writes are durable
    /// in order when they return (NOR flash), so that a log on it writes no
    /// durable-point marks, exactly as on that medium. The default, `false`,
    /// lays out the bytes as on a disk or a file.
    #[must_use]
    pub fn with_writes_in_order(mut self, in_order: bool) -> Self {
        self.in_order = in_order;
        self
    }

    /// The bytes of the device.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    /// The bytes of the device, to alter in tests (bit flips, stale data).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.bytes.as_mut()
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> B {
        self.bytes
    }

    fn range(&self, op: Op, offset: u64, len: usize) -> Result<core::ops::Range<usize>, AccessError> {
        check_access(&self.geometry, self.capacity(), op, offset, len as u64)?;
        // In bounds of a slice, so it fits a usize.
        Ok(offset as usize..offset as usize + len)
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> BlockDevice for RamDevice<B> {
    type Error = AccessError;

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn capacity(&self) -> u64 {
        self.bytes.as_ref().len() as u64
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), AccessError> {
        let range = self.range(Op::Read, offset, buf.len())?;
        buf.copy_from_slice(&self.bytes.as_ref()[range]);
        Ok(())
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), AccessError> {
        let range = self.range(Op::Program, offset, data.len())?;
        let target = &mut self.bytes.as_mut()[range];
        if let (Some(erased), false) = (self.geometry.erase_value(), self.geometry.program_twice())
            && target.iter().any(|&b| b != erased)
        {
            return Err(AccessError {
                op: Op::Program,
                offset,
                len: data.len() as u64,
                kind: DeviceErrorKind::NotErased,
            });
        }
        target.copy_from_slice(data);
        Ok(())
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), AccessError> {
        let range = self.range(Op::Erase, offset, usize::try_from(len).unwrap_or(usize::MAX))?;
        if let Some(erased) = self.geometry.erase_value() {
            self.bytes.as_mut()[range].fill(erased);
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), AccessError> {
        Ok(())
    }

    fn writes_persist_in_order(&self) -> bool {
        self.in_order
    }

    fn bytes_in_place(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.bytes.as_ref().get(start..end)
    }
}

/// The sync handle of a [`RamDevice`]: RAM needs no sync.
///
/// ```
/// use nori_wal_core::{Geometry, RamDevice, SplitSync, SyncHandle};
/// let ram = RamDevice::new(vec![0u8; 4096], Geometry::block(512).unwrap()).unwrap();
/// ram.sync_handle().unwrap().sync().unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RamSync;

impl crate::device::SyncHandle for RamSync {
    type Error = AccessError;

    fn sync(&self) -> Result<(), AccessError> {
        Ok(())
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> crate::device::SplitSync for RamDevice<B> {
    type Handle = RamSync;

    fn sync_handle(&self) -> Result<RamSync, AccessError> {
        Ok(RamSync)
    }
}

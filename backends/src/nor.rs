//! NOR flash through `embedded-storage`.

use core::fmt;

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};
use nori_wal_core::{
    AccessError, BlockDevice, DeviceError, DeviceErrorKind, Geometry, GeometryError, Op, check_access,
};

/// Any [`NorFlash`] as a [`BlockDevice`], honouring its `READ_SIZE`,
/// `WRITE_SIZE` and `ERASE_SIZE`.
///
/// Before each program it reads the target units back and refuses to write
/// unless they are blank (every byte the erase value), so that no unit is
/// programmed twice between erases even if the caller is wrong — ECC flash
/// such as the STM32H7's corrupts a word written twice. Writes of a
/// `NorFlash` complete before it returns, so [`sync`](BlockDevice::sync) has
/// nothing left to do.
///
/// ```
/// # use nori_wal_backends::nor::NorFlashDevice;
/// # use nori_wal_core::BlockDevice;
/// # fn demo<F: embedded_storage::nor_flash::NorFlash>(flash: F) {
/// let mut device = NorFlashDevice::new(flash, 0xFF).expect("flash geometry");
/// let geometry = device.geometry();
/// # let _ = geometry;
/// # }
/// ```
#[derive(Debug)]
pub struct NorFlashDevice<F> {
    flash: F,
    geometry: Geometry,
}

impl<F: NorFlash> NorFlashDevice<F> {
    /// Adapts `flash`, whose erased bytes read as `erase_value`.
    ///
    /// # Errors
    ///
    /// [`GeometryError`] when the flash's sizes are not powers of two, the
    /// read or write size exceeds the erase size, or a size exceeds what the
    /// format supports (64 KiB program units, 1 GiB erase units).
    ///
    /// ```
    /// # use nori_wal_backends::nor::NorFlashDevice;
    /// # use nori_wal_core::BlockDevice;
    /// # fn demo<F: embedded_storage::nor_flash::NorFlash>(flash: F) {
    /// let device = NorFlashDevice::new(flash, 0xFF).expect("a NOR geometry");
    /// assert_eq!(device.geometry().erase_value(), Some(0xFF));
    /// # }
    /// ```
    pub fn new(flash: F, erase_value: u8) -> Result<Self, GeometryError> {
        let geometry = Geometry::try_new(
            u32::try_from(F::READ_SIZE).unwrap_or(u32::MAX),
            u32::try_from(F::WRITE_SIZE).unwrap_or(u32::MAX),
            u32::try_from(F::ERASE_SIZE).unwrap_or(u32::MAX),
            Some(erase_value),
            false,
        )?;
        Ok(Self { flash, geometry })
    }

    /// The flash driver.
    ///
    /// ```
    /// # use nori_wal_backends::nor::NorFlashDevice;
    /// # use nori_wal_core::BlockDevice;
    /// # fn demo<F: embedded_storage::nor_flash::NorFlash>(flash: F) {
    /// let device = NorFlashDevice::new(flash, 0xFF).unwrap();
    /// let capacity = embedded_storage::nor_flash::ReadNorFlash::capacity(device.flash());
    /// # let _ = capacity;
    /// # }
    /// ```
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// The flash driver, mutably (to inspect wear counters in tests, say).
    ///
    /// ```
    /// # use nori_wal_backends::nor::NorFlashDevice;
    /// # use nori_wal_core::BlockDevice;
    /// # fn demo<F: embedded_storage::nor_flash::NorFlash>(flash: F) {
    /// let mut device = NorFlashDevice::new(flash, 0xFF).unwrap();
    /// let driver: &mut F = device.flash_mut();
    /// # let _ = driver;
    /// # }
    /// ```
    pub fn flash_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Gives the flash driver back.
    ///
    /// ```
    /// # use nori_wal_backends::nor::NorFlashDevice;
    /// # use nori_wal_core::BlockDevice;
    /// # fn demo<F: embedded_storage::nor_flash::NorFlash>(flash: F) {
    /// let device = NorFlashDevice::new(flash, 0xFF).unwrap();
    /// let flash: F = device.into_inner(); // the driver back
    /// # let _ = flash;
    /// # }
    /// ```
    pub fn into_inner(self) -> F {
        self.flash
    }

    fn offset(offset: u64) -> Result<u32, NorDeviceError<F::Error>> {
        u32::try_from(offset).map_err(|_| NorDeviceError::Access(out_of_bounds(Op::Read, offset, 0)))
    }

    /// Fails unless `[offset, offset + len)` reads as erased. Reads whole
    /// read units (which may be wider than the program unit) around it.
    fn check_blank(&mut self, offset: u64, len: usize) -> Result<(), NorDeviceError<F::Error>> {
        let erased = self.geometry.erase_value().unwrap_or(0xFF);
        let unit = F::READ_SIZE.max(1) as u64;
        let mut chunk = [0u8; 256];
        let step = (chunk.len() as u64 / unit).max(1) * unit;
        let (start, end) = (offset - offset % unit, (offset + len as u64).div_ceil(unit) * unit);
        let mut at = start;
        while at < end {
            let n = (end - at).min(step);
            let buf =
                chunk.get_mut(..n as usize).ok_or(NorDeviceError::Access(out_of_bounds(Op::Read, at, n)))?;
            self.flash.read(Self::offset(at)?, buf).map_err(NorDeviceError::Flash)?;
            // Only the bytes to be programmed must be blank.
            let lo = offset.max(at);
            let hi = (offset + len as u64).min(at + n);
            if let Some(i) = buf[(lo - at) as usize..(hi - at) as usize].iter().position(|&b| b != erased) {
                return Err(NorDeviceError::NotErased { offset: lo + i as u64 });
            }
            at += n;
        }
        Ok(())
    }
}

fn out_of_bounds(op: Op, offset: u64, len: u64) -> AccessError {
    AccessError { op, offset, len, kind: DeviceErrorKind::OutOfBounds }
}

impl<F: NorFlash> BlockDevice for NorFlashDevice<F> {
    type Error = NorDeviceError<F::Error>;

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn capacity(&self) -> u64 {
        self.flash.capacity() as u64
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        check_access(&self.geometry, self.capacity(), Op::Read, offset, buf.len() as u64)
            .map_err(NorDeviceError::Access)?;
        self.flash.read(Self::offset(offset)?, buf).map_err(NorDeviceError::Flash)
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        check_access(&self.geometry, self.capacity(), Op::Program, offset, data.len() as u64)
            .map_err(NorDeviceError::Access)?;
        self.check_blank(offset, data.len())?;
        self.flash.write(Self::offset(offset)?, data).map_err(NorDeviceError::Flash)
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Self::Error> {
        check_access(&self.geometry, self.capacity(), Op::Erase, offset, len)
            .map_err(NorDeviceError::Access)?;
        let from = Self::offset(offset)?;
        let to = Self::offset(offset + len)?;
        self.flash.erase(from, to).map_err(NorDeviceError::Flash)
    }

    fn sync(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// A `NorFlash` write or erase is done when it returns.
    fn writes_persist_in_order(&self) -> bool {
        true
    }
}

/// An error of a [`NorFlashDevice`].
///
/// ```
/// # use nori_wal_backends::nor::{NorDeviceError, NorFlashDevice};
/// # use nori_wal_core::BlockDevice;
/// # fn demo<F: embedded_storage::nor_flash::NorFlash>(flash: F) {
/// let mut device = NorFlashDevice::new(flash, 0xFF).unwrap();
/// match device.program(0, &[0u8; 1]) {
///     Err(NorDeviceError::Access(e)) => println!("refused before the driver saw it: {e}"),
///     other => drop(other),
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum NorDeviceError<E> {
    /// The flash driver failed.
    Flash(E),
    /// The access breaks the geometry.
    Access(AccessError),
    /// A program was refused: the byte at `offset` is not erased, and a
    /// unit must not be programmed twice between erases.
    NotErased {
        /// Device offset of the first byte that is not erased.
        offset: u64,
    },
}

impl<E: fmt::Debug> fmt::Display for NorDeviceError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flash(e) => write!(f, "flash driver error: {e:?}"),
            Self::Access(e) => write!(f, "{e}"),
            Self::NotErased { offset } => {
                write!(
                    f,
                    "refused to program flash at offset {offset}: it is not erased (a unit is programmed once)"
                )
            }
        }
    }
}

impl<E: NorFlashError> DeviceError for NorDeviceError<E> {
    fn kind(&self) -> DeviceErrorKind {
        match self {
            Self::Flash(e) => match e.kind() {
                NorFlashErrorKind::NotAligned => DeviceErrorKind::Misaligned,
                NorFlashErrorKind::OutOfBounds => DeviceErrorKind::OutOfBounds,
                _ => DeviceErrorKind::Io,
            },
            Self::Access(e) => e.kind,
            Self::NotErased { .. } => DeviceErrorKind::NotErased,
        }
    }
}

impl<E: NorFlashError> core::error::Error for NorDeviceError<E> {}

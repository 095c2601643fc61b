//! The shape of a medium: the units it reads, programs and erases in.

use core::fmt;

/// The largest program unit the format supports (64 KiB). A writer buffers
/// at least one program unit, so this bounds the write buffer.
pub const MAX_PROGRAM_UNIT: u32 = 64 * 1024;

/// The largest read unit the format supports (64 KiB).
pub const MAX_READ_UNIT: u32 = 64 * 1024;

/// The largest erase unit the format supports (1 GiB).
pub const MAX_ERASE_UNIT: u32 = 1 << 30;

/// The geometry of a medium, checked once by [`Geometry::try_new`].
///
/// - **read unit**: reads start at a multiple of it and cover whole units;
/// - **program unit**: the smallest amount written at once, aligned;
/// - **erase unit**: the smallest amount erased at once, aligned;
/// - **erase value**: what an erased byte reads as (`Some(0xFF)` on NOR
///   flash), or `None` for media that need no erase (disks, files, RAM);
/// - **program twice**: whether a unit may be programmed again without an
///   erase in between (true for disks and RAM; false for ECC flash such as
///   the STM32H7's, where a second program corrupts the word).
///
/// All units are powers of two; the read and program units divide the erase
/// unit.
///
/// ```
/// use nori_wal_core::Geometry;
///
/// // A NOR flash: read any byte, program 8-byte words once, erase 4 KiB sectors.
/// const FLASH: Geometry = match Geometry::try_new(1, 8, 4096, Some(0xFF), false) {
///     Ok(g) => g,
///     Err(_) => panic!("bad flash geometry"),
/// };
/// assert_eq!(FLASH.program_unit(), 8);
///
/// // A disk with 4 KiB logical sectors.
/// let disk = Geometry::block(4096).unwrap();
/// assert_eq!(disk.erase_value(), None);
///
/// // A program unit that is not a power of two is refused.
/// assert!(Geometry::try_new(1, 12, 4096, Some(0xFF), false).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Geometry {
    read_unit: u32,
    program_unit: u32,
    erase_unit: u32,
    erase_value: Option<u8>,
    program_twice: bool,
}

impl Geometry {
    /// Checks and builds a geometry. Usable in `const` context, so a firmware
    /// can validate its flash geometry at compile time.
    ///
    /// # Errors
    ///
    /// [`GeometryError`] when a unit is zero, not a power of two, larger than
    /// the format allows, or does not divide the erase unit.
    ///
    /// ```
    /// use nori_wal_core::Geometry;
    /// // NOR flash: byte reads, 8-byte words written once, 4 KiB erase units.
    /// let nor = Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap();
    /// assert_eq!(nor.io_unit(), 8);
    /// assert!(Geometry::try_new(1, 3, 4096, Some(0xFF), false).is_err(), "not a power of two");
    /// ```
    pub const fn try_new(
        read_unit: u32,
        program_unit: u32,
        erase_unit: u32,
        erase_value: Option<u8>,
        program_twice: bool,
    ) -> Result<Self, GeometryError> {
        if !read_unit.is_power_of_two() {
            return Err(GeometryError::NotPowerOfTwo { unit: Unit::Read, value: read_unit });
        }
        if !program_unit.is_power_of_two() {
            return Err(GeometryError::NotPowerOfTwo { unit: Unit::Program, value: program_unit });
        }
        if !erase_unit.is_power_of_two() {
            return Err(GeometryError::NotPowerOfTwo { unit: Unit::Erase, value: erase_unit });
        }
        if read_unit > MAX_READ_UNIT {
            return Err(GeometryError::TooLarge { unit: Unit::Read, value: read_unit, max: MAX_READ_UNIT });
        }
        if program_unit > MAX_PROGRAM_UNIT {
            return Err(GeometryError::TooLarge {
                unit: Unit::Program,
                value: program_unit,
                max: MAX_PROGRAM_UNIT,
            });
        }
        if erase_unit > MAX_ERASE_UNIT {
            return Err(GeometryError::TooLarge {
                unit: Unit::Erase,
                value: erase_unit,
                max: MAX_ERASE_UNIT,
            });
        }
        // Powers of two: "divides" is "is not larger than".
        if read_unit > erase_unit {
            return Err(GeometryError::LargerThanEraseUnit {
                unit: Unit::Read,
                value: read_unit,
                erase_unit,
            });
        }
        if program_unit > erase_unit {
            return Err(GeometryError::LargerThanEraseUnit {
                unit: Unit::Program,
                value: program_unit,
                erase_unit,
            });
        }
        Ok(Self { read_unit, program_unit, erase_unit, erase_value, program_twice })
    }

    /// A medium that needs no erase and accepts rewrites, with one sector
    /// size for reads and writes: a disk, a partition, a file, RAM.
    ///
    /// # Errors
    ///
    /// [`GeometryError`] when `sector` is not a power of two or exceeds
    /// [`MAX_PROGRAM_UNIT`].
    ///
    /// ```
    /// use nori_wal_core::Geometry;
    /// let disk = Geometry::block(4096).unwrap();
    /// assert_eq!((disk.read_unit(), disk.program_unit(), disk.erase_value()), (4096, 4096, None));
    /// ```
    pub const fn block(sector: u32) -> Result<Self, GeometryError> {
        Self::try_new(sector, sector, sector, None, true)
    }

    /// Reads start at a multiple of this many bytes and cover whole units.
    ///
    /// ```
    /// use nori_wal_core::Geometry;
    /// let nor = Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap();
    /// assert_eq!(nor.read_unit(), 1);
    /// ```
    #[must_use]
    pub const fn read_unit(&self) -> u32 {
        self.read_unit
    }

    /// Programs start at a multiple of this many bytes and cover whole units.
    ///
    /// ```
    /// use nori_wal_core::Geometry;
    /// let nor = Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap();
    /// assert_eq!(nor.program_unit(), 8);
    /// ```
    #[must_use]
    pub const fn program_unit(&self) -> u32 {
        self.program_unit
    }

    /// Erases start at a multiple of this many bytes and cover whole units.
    ///
    /// ```
    /// use nori_wal_core::Geometry;
    /// let nor = Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap();
    /// assert_eq!(nor.erase_unit(), 4096);
    /// ```
    #[must_use]
    pub const fn erase_unit(&self) -> u32 {
        self.erase_unit
    }

    /// What an erased byte reads as, or `None` when the medium needs no erase.
    ///
    /// ```
    /// use nori_wal_core::Geometry;
    /// assert_eq!(Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap().erase_value(), Some(0xFF));
    /// assert_eq!(Geometry::block(512).unwrap().erase_value(), None);
    /// ```
    #[must_use]
    pub const fn erase_value(&self) -> Option<u8> {
        self.erase_value
    }

    /// Whether a unit may be programmed again without an erase in between.
    ///
    /// ```
    /// use nori_wal_core::Geometry;
    /// assert!(Geometry::block(512).unwrap().program_twice());
    /// assert!(!Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap().program_twice());
    /// ```
    #[must_use]
    pub const fn program_twice(&self) -> bool {
        self.program_twice
    }

    /// The larger of the read and program units: the alignment at which the
    /// medium can both read and write.
    ///
    /// ```
    /// use nori_wal_core::Geometry;
    /// assert_eq!(Geometry::try_new(16, 8, 4096, Some(0xFF), false).unwrap().io_unit(), 16);
    /// ```
    #[must_use]
    pub const fn io_unit(&self) -> u32 {
        if self.read_unit > self.program_unit { self.read_unit } else { self.program_unit }
    }
}

/// Which unit of a [`Geometry`] an error is about.
///
/// ```
/// use nori_wal_core::geometry::{GeometryError, Unit};
/// use nori_wal_core::Geometry;
/// let err = Geometry::try_new(8192, 8, 4096, Some(0xFF), false).unwrap_err();
/// assert!(matches!(err, GeometryError::LargerThanEraseUnit { unit: Unit::Read, .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Unit {
    /// The read unit.
    Read,
    /// The program unit.
    Program,
    /// The erase unit.
    Erase,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "read unit",
            Self::Program => "program unit",
            Self::Erase => "erase unit",
        })
    }
}

/// Why a [`Geometry`] was refused.
///
/// ```
/// use nori_wal_core::Geometry;
/// let err = Geometry::block(1000).unwrap_err();
/// println!("{err}"); // says what is wrong with the unit
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum GeometryError {
    /// A unit is zero or not a power of two.
    NotPowerOfTwo {
        /// The unit at fault.
        unit: Unit,
        /// The value given.
        value: u32,
    },
    /// A unit is larger than the format supports.
    TooLarge {
        /// The unit at fault.
        unit: Unit,
        /// The value given.
        value: u32,
        /// The largest value supported.
        max: u32,
    },
    /// The read or program unit is larger than the erase unit.
    LargerThanEraseUnit {
        /// The unit at fault.
        unit: Unit,
        /// The value given.
        value: u32,
        /// The erase unit given.
        erase_unit: u32,
    },
}

impl fmt::Display for GeometryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotPowerOfTwo { unit, value } => {
                write!(
                    f,
                    "invalid geometry: the {unit} is {value} bytes; it must be a power of two (1, 2, 4, ...)"
                )
            }
            Self::TooLarge { unit, value, max } => {
                write!(f, "invalid geometry: the {unit} is {value} bytes; the largest supported is {max}")
            }
            Self::LargerThanEraseUnit { unit, value, erase_unit } => write!(
                f,
                "invalid geometry: the {unit} ({value} bytes) is larger than the erase unit ({erase_unit} bytes); \
                 for media without erase, give the erase unit the size of the program unit"
            ),
        }
    }
}

impl core::error::Error for GeometryError {}

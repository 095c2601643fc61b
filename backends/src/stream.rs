//! Any `embedded-io` stream as a block device.

use core::fmt;

use embedded_io::{ErrorKind, Read, ReadExactError, Seek, SeekFrom, Write};
use nori_wal_core::{AccessError, BlockDevice, DeviceError, DeviceErrorKind, Geometry, Op, check_access};

/// A seekable stream of fixed length (an SD-card file, a serial flash driver
/// with a stream API) as a [`BlockDevice`].
///
/// The geometry is the caller's: a stream has no erase, so use one without
/// an erase value (for instance [`Geometry::block`] with the medium's sector
/// size). [`sync`](BlockDevice::sync) flushes the stream; it is only as
/// durable as the stream's `flush` promises. The device never changes the
/// stream's length.
///
/// ```
/// use nori_wal_backends::stream::StreamDevice;
/// use nori_wal_core::ring::{RingConfig, RingLog};
/// use nori_wal_core::{Geometry, Record};
///
/// # fn demo<S: embedded_io::Read + embedded_io::Write + embedded_io::Seek>(sd_card_file: S)
/// # where S::Error: core::fmt::Debug {
/// // The first 1 MiB of a file on an SD card, in 512-byte sectors.
/// let geometry = Geometry::block(512).unwrap();
/// let device = StreamDevice::new(sd_card_file, geometry, 1 << 20).unwrap();
/// let mut buffer = [0u8; 1024];
/// let (mut log, _) = RingLog::open(device, RingConfig::new(64 * 1024), &mut buffer).unwrap();
/// log.append(&Record::raw(b"sensor: 21.5 C")).unwrap();
/// log.sync().unwrap();
/// # }
/// ```
#[derive(Debug)]
pub struct StreamDevice<S> {
    stream: S,
    geometry: Geometry,
    capacity: u64,
}

impl<S: Read + Write + Seek> StreamDevice<S> {
    /// A device over the first `capacity` bytes of `stream`.
    ///
    /// # Errors
    ///
    /// [`StreamError::Access`] when `capacity` is not a multiple of the
    /// erase unit, or the geometry has an erase value.
    ///
    /// ```
    /// # use nori_wal_backends::stream::StreamDevice;
    /// # use nori_wal_core::Geometry;
    /// # fn demo<S: embedded_io::Read + embedded_io::Write + embedded_io::Seek>(stream: S) where S::Error: core::fmt::Debug {
    /// let device = StreamDevice::new(stream, Geometry::block(512).unwrap(), 1 << 20).unwrap();
    /// # let _ = device;
    /// # }
    /// ```
    pub fn new(stream: S, geometry: Geometry, capacity: u64) -> Result<Self, StreamError<S::Error>> {
        let unit = u64::from(geometry.erase_unit());
        if !capacity.is_multiple_of(unit) || geometry.erase_value().is_some() {
            return Err(StreamError::Access(AccessError {
                op: Op::Erase,
                offset: 0,
                len: capacity,
                kind: DeviceErrorKind::Misaligned,
            }));
        }
        Ok(Self { stream, geometry, capacity })
    }

    /// Gives the stream back.
    ///
    /// ```
    /// # use nori_wal_backends::stream::StreamDevice;
    /// # use nori_wal_core::Geometry;
    /// # fn demo<S: embedded_io::Read + embedded_io::Write + embedded_io::Seek>(stream: S) where S::Error: core::fmt::Debug {
    /// let device = StreamDevice::new(stream, Geometry::block(512).unwrap(), 1 << 20).unwrap();
    /// let stream: S = device.into_inner();
    /// # let _ = stream;
    /// # }
    /// ```
    pub fn into_inner(self) -> S {
        self.stream
    }

    fn seek(&mut self, offset: u64) -> Result<(), StreamError<S::Error>> {
        let at = self.stream.seek(SeekFrom::Start(offset)).map_err(StreamError::Io)?;
        if at == offset { Ok(()) } else { Err(StreamError::ShortSeek { wanted: offset, got: at }) }
    }
}

impl<S: Read + Write + Seek> BlockDevice for StreamDevice<S> {
    type Error = StreamError<S::Error>;

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        check_access(&self.geometry, self.capacity, Op::Read, offset, buf.len() as u64)
            .map_err(StreamError::Access)?;
        self.seek(offset)?;
        self.stream.read_exact(buf).map_err(|e| match e {
            ReadExactError::UnexpectedEof => StreamError::UnexpectedEof { offset },
            ReadExactError::Other(e) => StreamError::Io(e),
        })
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        check_access(&self.geometry, self.capacity, Op::Program, offset, data.len() as u64)
            .map_err(StreamError::Access)?;
        self.seek(offset)?;
        self.stream.write_all(data).map_err(StreamError::Io)
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Self::Error> {
        check_access(&self.geometry, self.capacity, Op::Erase, offset, len).map_err(StreamError::Access)
    }

    fn sync(&mut self) -> Result<(), Self::Error> {
        self.stream.flush().map_err(StreamError::Io)
    }
}

/// An error of a [`StreamDevice`].
///
/// ```
/// # use nori_wal_backends::stream::{StreamDevice, StreamError};
/// # use nori_wal_core::Geometry;
/// # fn demo<S: embedded_io::Read + embedded_io::Write + embedded_io::Seek>(stream: S) where S::Error: core::fmt::Debug {
/// match StreamDevice::new(stream, Geometry::block(512).unwrap(), 1000) {
///     Err(e) => println!("{e:?}"), // 1000 is not a whole number of sectors
///     Ok(_) => unreachable!(),
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StreamError<E> {
    /// The stream failed.
    Io(E),
    /// The access breaks the geometry.
    Access(AccessError),
    /// The stream ended before the bytes asked for: it is shorter than the
    /// capacity given.
    UnexpectedEof {
        /// Where the read started.
        offset: u64,
    },
    /// The stream did not seek where asked.
    ShortSeek {
        /// The offset asked for.
        wanted: u64,
        /// The offset reached.
        got: u64,
    },
}

impl<E: fmt::Debug> fmt::Display for StreamError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "stream error: {e:?}"),
            Self::Access(e) => write!(f, "{e}"),
            Self::UnexpectedEof { offset } => {
                write!(
                    f,
                    "the stream ended in a read at offset {offset}: it is shorter than the device capacity"
                )
            }
            Self::ShortSeek { wanted, got } => write!(f, "seek to {wanted} reached {got}"),
        }
    }
}

impl<E: embedded_io::Error> DeviceError for StreamError<E> {
    fn kind(&self) -> DeviceErrorKind {
        match self {
            Self::Io(e) => match e.kind() {
                ErrorKind::OutOfMemory => DeviceErrorKind::Full,
                _ => DeviceErrorKind::Io,
            },
            Self::Access(e) => e.kind,
            Self::UnexpectedEof { .. } | Self::ShortSeek { .. } => DeviceErrorKind::OutOfBounds,
        }
    }
}

impl<E: embedded_io::Error> core::error::Error for StreamError<E> {}

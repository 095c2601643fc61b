//! The ring log: a write-ahead log over a ring of fixed-size segments on one
//! [`BlockDevice`], for raw partitions and flash.
//!
//! The device is cut into `capacity / segment_size` segments, used in order
//! and reused in a ring. Each segment holds a header and frames in format v1
//! (`FORMAT.md`). One segment is always kept free, so that the next one can
//! be prepared (erased) without touching the log.
//!
//! # Memory
//!
//! The log owns no heap memory. The caller gives one buffer at
//! [`RingLog::open`]: it is the write buffer (frames are gathered there and
//! programmed in whole buffers) and recovery's read window. It must be a
//! multiple of the device's read and program units and at least
//! [`MIN_BUFFER_LEN`] bytes and two units. Beyond it the log keeps a fixed
//! state of under 256 bytes, plus the device handle. Iteration reads
//! through a second buffer the caller gives to [`RingLog::iter_from`]; a
//! record must fit in it.
//!
//! # Durability
//!
//! [`RingLog::append`] buffers; [`RingLog::sync`] programs what is buffered
//! (padding the last program unit) and calls the device's sync. A record is
//! durable once a sync that followed its append returned `Ok`. A failed
//! program or sync poisons the log (invariant I7): every later call returns
//! [`Error::Poisoned`] until the log is reopened.
//!
//! On a device that may persist writes out of order until a sync (see
//! [`BlockDevice::writes_persist_in_order`]), the first frame written after
//! each completed sync is preceded by a mark recording how far the log was
//! durable; recovery uses it to tell damage in the durable region from a
//! tail that was in flight at a crash. On a device that keeps order (NOR
//! flash), a valid frame after damage is proof enough, and no mark is
//! written.
//!
//! # Recovery decisions
//!
//! [`RingLog::open`] reads every segment header, walks back from the newest
//! segment (highest epoch) through adjacent slots of decreasing epoch until
//! it reaches the log's start (`log_start`, from the newest header and
//! marks), then reads every frame of those segments. Each case below is a
//! [`RecoveryCase`] and has a test:
//!
//! | case | what recovery finds | `TolerateTornTail` | `PointInTime` | `SkipDamaged` | `Strict` |
//! |---|---|---|---|---|---|
//! | `Empty` | no valid segment header, and no slot shows durable records | `Keep`: an empty log | `Keep` | `Keep` | `Keep` |
//! | `Clean` | the newest segment ends in blank (or never-written) space | `Keep`: all | `Keep` | `Keep` | `Keep` |
//! | `TornTail` | the newest segment ends in a torn frame; nothing valid after it | `CutTail`: cut it | `CutTail` | `CutTail` | `Refuse` |
//! | `InFlight` | damage in the newest segment, valid frames after it, no mark says they were durable (only on devices that may reorder writes) | `CutTail`: from the damage | `CutTail` | `CutTail` | `Refuse` |
//! | `DurableDamage` | damage in the newest segment below a later mark's durable point, or followed by any valid frame on a device that keeps write order | `Refuse` | `EndAtDamage`: cut, report | `Skip`: the damaged records (cut when no record follows), report | `Refuse` |
//! | `DamagedSegment` | damage in an older (sealed, synced) segment | `Refuse` | `EndAtDamage`: drop everything after | `Skip`: the damaged records, report | `Refuse` |
//! | `MissingSegment` | a segment between the log's start and the newest is missing or its header damaged; or the header after the newest valid segment (with no valid header, the first segment's) is damaged and its slot shows that segment held durable records (a mark says records of it were synced, or, on a device that keeps write order, records of it follow the header) | `Refuse` | `EndAtDamage`: cut before the gap | `Skip`: keep what follows the gap, report | `Refuse` |
//!
//! Each cell names the [`Action`] that [`decide`] gives for its case and
//! mode: this recovery and the file WAL's both take their decisions from it.
//!
//! The epoch a damaged header may hide is never used again, so that frames
//! left under it cannot pass for a later segment's.
//!
//! Whatever the mode, a segment of a newer format version is an error, a
//! read error is an error (never taken for the end of the log), and no
//! record is returned that was not appended.
//!
//! After a cut, the next append starts a new segment: bytes after the cut are
//! never overwritten in place, so a frame left there can never reappear.
//!
//! # Example
//!
//! ```
//! use nori_wal_core::ring::{RingConfig, RingLog};
//! use nori_wal_core::{Geometry, RamDevice, Record};
//!
//! let geometry = Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap();
//! let mut flash = RamDevice::new([0xFFu8; 4 * 4096], geometry).unwrap();
//! let mut buffer = [0u8; 512];
//!
//! let (mut log, info) = RingLog::open(&mut flash, RingConfig::new(4096), &mut buffer).unwrap();
//! assert_eq!(info.records, 0);
//! let lsn = log.append(&Record::put(b"boot", b"42")).unwrap();
//! log.sync().unwrap();
//! assert_eq!(log.durable_lsn(), Some(lsn));
//! drop(log);
//!
//! // Reopen: the record is recovered.
//! let (mut log, info) = RingLog::open(&mut flash, RingConfig::new(4096), &mut buffer).unwrap();
//! assert_eq!(info.records, 1);
//! let mut read_buf = [0u8; 512];
//! let mut iter = log.iter_from(0, &mut read_buf).unwrap();
//! let entry = iter.try_next().unwrap().unwrap();
//! assert_eq!((entry.lsn, entry.record), (0, Record::put(b"boot", b"42")));
//! ```

mod config;
mod decision;
mod error;
mod iter;
mod layout;
mod recovery;
mod scan;
pub mod segment;
mod slots;
mod window;
mod writer;

pub use config::{ConfigError, FullPolicy, RecoveryMode, RingConfig};
pub use decision::{Action, RecoveryCase, decide};
pub use error::{Corruption, Damage, Error, Invariant};
use error::{Fault, Step};
pub use iter::{Entry, Iter};
pub use layout::MIN_BUFFER_LEN;
pub use recovery::RecoveryInfo;

use core::ops::Range;

use crate::device::BlockDevice;
use crate::{Lsn, Record};
use layout::{Layout, Seg};

/// A slot number that is no slot.
const NO_SLOT: u32 = u32::MAX;

/// The segment being appended to.
#[derive(Debug, Clone, Copy)]
struct Active {
    seg: Seg,
    /// Segment offset of the next frame.
    pos: u64,
    /// Segment offset of `buffer[0]`, a multiple of the program unit.
    buf_start: u64,
    /// `durable_end` recorded by the last mark written in this segment.
    marked_durable: Lsn,
    /// The CRCs of the frames written in this segment so far (format v2's
    /// seal holds it).
    frames_crc: crate::format::v2::FramesCrc,
}

/// Where [`RingLog::reserve`] placed the next frame: the active segment.
#[derive(Debug, Clone, Copy)]
struct Placed {
    seg: Seg,
}

/// The log's state, apart from the device and the buffer.
#[derive(Debug, Clone, Copy)]
struct State {
    /// Slot of the oldest segment the log holds; `None` for an empty device.
    oldest: Option<u32>,
    /// Slot of the newest segment (sealed or active).
    newest: u32,
    active: Option<Active>,
    /// Highest epoch on the device: the next segment takes the one after.
    max_epoch: u64,
    next_lsn: Lsn,
    /// LSNs below this are durable.
    durable_end: Lsn,
    /// The first LSN the log holds.
    log_start: Lsn,
    /// The slot of the oldest segment chained before the newest, where a
    /// recovery would take the log to start without a mark; [`NO_SLOT`]
    /// until read.
    floor: u32,
    poisoned: bool,
}

/// A write-ahead log over a ring of segments on a [`BlockDevice`]. See the
/// [module docs](self).
///
/// ```
/// use nori_wal_core::ring::{RingConfig, RingLog};
/// use nori_wal_core::{Geometry, RamDevice, Record};
/// let mut disk = RamDevice::new(vec![0u8; 8 * 4096], Geometry::block(512).unwrap()).unwrap();
/// let mut buffer = [0u8; 1024];
/// let (mut log, _) = RingLog::open(&mut disk, RingConfig::new(4096), &mut buffer).unwrap();
/// log.append(&Record::raw(b"event")).unwrap();
/// log.sync().unwrap();
/// ```
pub struct RingLog<'b, D: BlockDevice, B: WriteBuffer = &'b mut [u8]> {
    device: D,
    layout: Layout,
    config: RingConfig,
    buffer: B,
    state: State,
    /// The error of the last step that failed, for the public method.
    fault: Fault<D::Error>,
    _buffer: core::marker::PhantomData<&'b mut [u8]>,
}

/// A ring log's write buffer: a borrowed slice (firmware, `RingLog::open`)
/// or one the log owns (a `Vec<u8>`, with `std`: `RingLog::open_owned`).
///
/// ```
/// use nori_wal_core::ring::WriteBuffer;
/// fn len(buffer: &impl WriteBuffer) -> usize {
///     buffer.as_ref().len()
/// }
/// assert_eq!(len(&vec![0u8; 1024]), 1024);
/// assert_eq!(len(&&mut [0u8; 16][..]), 16);
/// ```
pub trait WriteBuffer: AsRef<[u8]> + AsMut<[u8]> {}

impl<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized> WriteBuffer for T {}

impl<D: BlockDevice, B: WriteBuffer> core::fmt::Debug for RingLog<'_, D, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RingLog")
            .field("config", &self.config)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

type Result<T, E> = core::result::Result<T, Error<E>>;

impl<'b, D: BlockDevice> RingLog<'b, D> {
    /// Opens the log on `device`, recovering what it holds as
    /// `config.recovery` says, with `buffer` as its write buffer.
    ///
    /// A device without a valid segment opens as an empty log; nothing is
    /// written until the first append.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the configuration, device and buffer do not fit;
    /// [`Error::Corrupt`] when the recovery mode refuses damage;
    /// [`Error::UnsupportedVersion`]; [`Error::Device`] when a read fails.
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{BlockDevice, Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (log, info) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// assert_eq!((info.records, log.segments()), (0, 4));
    /// ```
    #[inline(never)]
    pub fn open(
        device: D,
        config: RingConfig,
        buffer: &'b mut [u8],
    ) -> Result<(Self, RecoveryInfo), D::Error> {
        Self::open_with(device, config, buffer)
    }
}

#[cfg(feature = "std")]
impl<D: BlockDevice> RingLog<'static, D, std::vec::Vec<u8>> {
    /// [`RingLog::open`] with a write buffer the log owns, for a log that
    /// lives in a struct or moves between threads.
    ///
    /// # Errors
    ///
    /// As [`RingLog::open`].
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{Geometry, RamDevice, Record};
    /// let ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// let (mut log, _) = RingLog::open_owned(ram, RingConfig::new(4096), vec![0u8; 1024]).unwrap();
    /// log.append(&Record::raw(b"a")).unwrap();
    /// ```
    pub fn open_owned(
        device: D,
        config: RingConfig,
        buffer: std::vec::Vec<u8>,
    ) -> Result<(Self, RecoveryInfo), D::Error> {
        Self::open_with(device, config, buffer)
    }
}

impl<'b, D: BlockDevice, B: WriteBuffer> RingLog<'b, D, B> {
    #[inline(always)]
    fn open_with(mut device: D, config: RingConfig, mut buffer: B) -> Result<(Self, RecoveryInfo), D::Error> {
        let layout = Layout::new(device.geometry(), device.capacity(), &config, buffer.as_ref().len())?;
        let mut fault = Fault::new();
        let recovered = recovery::recover(&mut device, layout, config.recovery, buffer.as_mut(), &mut fault);
        let (mut state, info) = fault.out(recovered)?;
        if state.oldest.is_none() {
            // A new log: its first segment takes `first_epoch` at least.
            state.max_epoch = state.max_epoch.max(config.first_epoch - 1);
        }
        let mut log =
            Self { device, layout, config, buffer, state, fault, _buffer: core::marker::PhantomData };
        if let Some(active) = log.state.active {
            // Continuing in place: the buffer starts at the unit boundary `pos`.
            debug_assert_eq!(active.pos, active.buf_start);
        }
        log.device.sync().map_err(Error::Device)?;
        Ok((log, info))
    }

    /// The LSN the next append gets.
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{BlockDevice, Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// log.append(&Record::raw(b"a")).unwrap();
    /// assert_eq!(log.next_lsn(), 1);
    /// ```
    #[must_use]
    pub const fn next_lsn(&self) -> Lsn {
        self.state.next_lsn
    }

    /// The first LSN the log holds (records below it were reclaimed).
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{BlockDevice, Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// for _ in 0..3 { log.append(&Record::raw(b"a")).unwrap(); }
    /// log.truncate_before(2).unwrap();
    /// assert_eq!(log.first_lsn(), 2);
    /// ```
    #[must_use]
    pub const fn first_lsn(&self) -> Lsn {
        self.state.log_start
    }

    /// The highest durable LSN, or `None` when no record is durable.
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{BlockDevice, Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// log.append(&Record::raw(b"a")).unwrap();
    /// assert_eq!(log.durable_lsn(), None);
    /// log.sync().unwrap();
    /// assert_eq!(log.durable_lsn(), Some(0));
    /// ```
    #[must_use]
    pub const fn durable_lsn(&self) -> Option<Lsn> {
        if self.state.durable_end > self.state.log_start { Some(self.state.durable_end - 1) } else { None }
    }

    /// Whether a failed write or sync poisoned the log.
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{BlockDevice, Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// log.flush().unwrap();
    /// log.sync_failed(); // the caller's own sync of the device failed
    /// assert!(log.is_poisoned());
    /// ```
    #[must_use]
    pub const fn is_poisoned(&self) -> bool {
        self.state.poisoned
    }

    /// The number of segments on the device.
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{BlockDevice, Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// assert_eq!(log.segments(), 4); // 16 KiB of 4 KiB segments
    /// ```
    #[must_use]
    pub const fn segments(&self) -> u32 {
        self.layout.slots
    }

    /// The largest frame (record plus 16 bytes, a put plus 20) a segment takes.
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{BlockDevice, Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// assert!(log.append(&Record::raw(&vec![0; log.max_frame_len() as usize])).is_err());
    /// ```
    #[must_use]
    pub const fn max_frame_len(&self) -> u64 {
        self.layout.max_frame_len()
    }

    /// The device.
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{BlockDevice, Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// assert_eq!(log.device().capacity(), 4 * 4096);
    /// ```
    #[must_use]
    pub const fn device(&self) -> &D {
        &self.device
    }

    /// Gives the device back.
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{BlockDevice, Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (log, _) = RingLog::open(RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap(), RingConfig::new(4096), &mut buffer).unwrap();
    /// let device = log.into_device();
    /// assert_eq!(device.capacity(), 4 * 4096);
    /// # let _ = &mut ram;
    /// ```
    pub fn into_device(self) -> D {
        self.device
    }

    /// Appends `record`; returns its LSN. The record is durable after the
    /// next successful [`sync`](Self::sync).
    ///
    /// # Errors
    ///
    /// [`Error::Poisoned`], [`Error::RecordTooLarge`], [`Error::Full`], or a
    /// device error (which poisons the log).
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{BlockDevice, Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// let lsn = log.append(&Record::put(b"k", b"v")).unwrap();
    /// log.sync().unwrap(); // durable from here
    /// assert_eq!(log.durable_lsn(), Some(lsn));
    /// ```
    pub fn append(&mut self, record: &Record<'_>) -> Result<Lsn, D::Error> {
        #[cfg(feature = "std")]
        if let Some(lsn) = self.append_in_buffer(record) {
            return Ok(lsn);
        }
        let step = self.append_step(record);
        self.fault.out(step)
    }

    fn append_step(&mut self, record: &Record<'_>) -> Step<Lsn> {
        self.check_usable()?;
        let lsn = self.state.next_lsn;
        if lsn == Lsn::MAX {
            return Err(self.fault.raise(Error::Exhausted));
        }
        let frame_len = writer::frame_len(self.layout.version, crate::format::body::record_body_len(record));
        let placed = self.reserve(frame_len, 1)?;
        let frame = writer::Out::record(&placed.seg, lsn, record);
        let frame = self.fault.lift(frame)?;
        self.write_frame(&frame)?;
        self.state.next_lsn = lsn + 1;
        Ok(lsn)
    }

    /// Appends `record` when that writes nothing to the device: its frame
    /// goes into the write buffer's free space, in the active segment.
    /// Returns `Ok(None)` when the append would program the device (a full
    /// buffer, a segment to seal or start); the log is then unchanged and
    /// [`append`](Self::append) does the rest. A caller that must not block,
    /// such as an async task, appends here and hands the rest to a thread.
    ///
    /// # Errors
    ///
    /// As [`append`](Self::append) (never a device error).
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// log.append(&Record::raw(b"a")).unwrap(); // starts the first segment
    /// assert_eq!(log.append_buffered(&Record::raw(b"b")).unwrap(), Some(1));
    /// assert_eq!(log.append_buffered(&Record::raw(&[0; 2000])).unwrap(), None); // beyond the buffer
    /// assert_eq!(log.next_lsn(), 2);
    /// ```
    #[cfg(feature = "std")]
    pub fn append_buffered(&mut self, record: &Record<'_>) -> Result<Option<Lsn>, D::Error> {
        if let Some(lsn) = self.append_in_buffer(record) {
            return Ok(Some(lsn));
        }
        let frame_len = writer::frame_len(self.layout.version, crate::format::body::record_body_len(record));
        let fits = self.state.next_lsn != Lsn::MAX && self.fits_buffered(frame_len, 1);
        if !fits && !self.state.poisoned {
            return Ok(None);
        }
        // A poisoned log reports it as `append` does.
        self.append(record).map(Some)
    }

    /// [`append_batch`](Self::append_batch) when that writes nothing to the
    /// device, as [`append_buffered`](Self::append_buffered); `Ok(None)`
    /// otherwise, with the log unchanged.
    ///
    /// # Errors
    ///
    /// As [`append_batch`](Self::append_batch) (never a device error).
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// log.append(&Record::raw(b"a")).unwrap();
    /// let lsns = log.append_batch_buffered(&[Record::raw(b"b"), Record::raw(b"c")]).unwrap();
    /// assert_eq!(lsns, Some(1..3));
    /// ```
    #[cfg(feature = "std")]
    pub fn append_batch_buffered(&mut self, records: &[Record<'_>]) -> Result<Option<Range<Lsn>>, D::Error> {
        let fits = u32::try_from(records.len()).is_ok_and(|count| {
            let body_len = crate::format::body::batch_body_len(records);
            self.state.next_lsn.checked_add(u64::from(count)).is_some()
                && self.fits_buffered(writer::frame_len(self.layout.version, body_len), count)
        });
        if !fits && !self.state.poisoned && !records.is_empty() {
            return Ok(None);
        }
        // A poisoned log and an empty batch are reported as `append_batch`
        // reports them.
        self.append_batch(records).map(Some)
    }

    /// Appends `records` as one atomic batch: after a crash, all of them or
    /// none are recovered. Returns their LSNs.
    ///
    /// # Errors
    ///
    /// As [`append`](Self::append), and [`Error::Encode`] for an empty batch.
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// let lsns = log.append_batch(&[Record::put(b"a", b"1"), Record::delete(b"b")]).unwrap();
    /// assert_eq!(lsns, 0..2);
    /// log.sync().unwrap();
    /// ```
    pub fn append_batch(&mut self, records: &[Record<'_>]) -> Result<Range<Lsn>, D::Error> {
        let step = self.append_batch_step(records);
        self.fault.out(step)
    }

    fn append_batch_step(&mut self, records: &[Record<'_>]) -> Step<Range<Lsn>> {
        self.check_usable()?;
        if records.is_empty() {
            return Err(self.fault.raise(Error::Encode(crate::EncodeError::EmptyBatch)));
        }
        let Ok(count) = u32::try_from(records.len()) else {
            return Err(self.fault.raise(Error::Encode(crate::EncodeError::LsnOverflow)));
        };
        let first = self.state.next_lsn;
        if first.checked_add(u64::from(count)).is_none() {
            return Err(self.fault.raise(Error::Exhausted));
        }
        let body_len = crate::format::body::batch_body_len(records);
        let placed = self.reserve(writer::frame_len(self.layout.version, body_len), count)?;
        let frame = writer::Out::batch(&placed.seg, first, records);
        let frame = self.fault.lift(frame)?;
        self.write_frame(&frame)?;
        self.state.next_lsn += u64::from(count);
        Ok(first..self.state.next_lsn)
    }

    /// Makes every appended record durable: programs the buffer (padding
    /// the last program unit) and syncs the device.
    ///
    /// # Errors
    ///
    /// [`Error::Poisoned`], or the device's error, which poisons the log:
    /// nothing appended since the last successful sync is acknowledged.
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// let lsn = log.append(&Record::raw(b"event")).unwrap();
    /// assert_eq!(log.durable_lsn(), None);
    /// log.sync().unwrap();
    /// assert_eq!(log.durable_lsn(), Some(lsn));
    /// ```
    pub fn sync(&mut self) -> Result<(), D::Error> {
        let step = self.sync_step();
        self.fault.out(step)
    }

    fn sync_step(&mut self) -> Step<()> {
        self.check_usable()?;
        if self.state.durable_end == self.state.next_lsn && !self.has_unsynced_bytes() {
            return Ok(());
        }
        self.sync_now()
    }

    /// Programs every appended record (padding the last program unit)
    /// without waiting for the device to make them durable. Returns the LSN
    /// below which records will be durable once a device sync started after
    /// this call succeeds.
    ///
    /// With [`synced`](Self::synced) and [`sync_failed`](Self::sync_failed)
    /// this splits [`sync`](Self::sync) for group commit: a caller flushes
    /// under its lock, runs the device's sync outside it (through a handle
    /// of its own, such as `RawDevice::sync_handle` of `nori-wal-backends`)
    /// while other threads keep appending, then reports the outcome. Every
    /// record appended before the flush is covered by that sync.
    ///
    /// # Errors
    ///
    /// [`Error::Poisoned`], or a device error (which poisons the log).
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{BlockDevice, Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// log.append(&Record::raw(b"a")).unwrap();
    /// let end = log.flush().unwrap();
    /// log.append(&Record::raw(b"b")).unwrap(); // goes on while the sync runs
    /// // ... the device syncs here, outside the caller's lock ...
    /// log.synced(end);
    /// assert_eq!(log.durable_lsn(), Some(0));
    /// ```
    pub fn flush(&mut self) -> Result<Lsn, D::Error> {
        let step = self.check_usable().and_then(|()| self.flush_padded());
        self.fault.out(step).map(|()| self.state.next_lsn)
    }

    /// Reports that a device sync started after [`flush`](Self::flush)
    /// returned `end` succeeded: records below `end` are durable. Reporting
    /// a sync that did not happen breaks the log's durability promises.
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{BlockDevice, Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// log.append(&Record::raw(b"a")).unwrap();
    /// let end = log.flush().unwrap();
    /// // ... the device synced, outside the caller's lock ...
    /// log.synced(end);
    /// assert_eq!(log.durable_lsn(), Some(0));
    /// ```
    pub fn synced(&mut self, end: Lsn) {
        if !self.state.poisoned {
            self.state.durable_end = self.state.durable_end.max(end.min(self.state.next_lsn));
        }
    }

    /// Reports that a device sync started after [`flush`](Self::flush)
    /// failed: the log is poisoned (invariant I7), as after a failed
    /// [`sync`](Self::sync).
    ///
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{BlockDevice, Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// log.append(&Record::raw(b"a")).unwrap();
    /// log.flush().unwrap();
    /// log.sync_failed();
    /// assert!(log.append(&Record::raw(b"b")).is_err(), "poisoned");
    /// ```
    pub fn sync_failed(&mut self) {
        self.state.poisoned = true;
    }

    /// Reclaims the segments that hold only records below `lsn`, durably: a
    /// crash afterwards never brings them back, and never loses a record at
    /// or above `lsn`. Records below `lsn` are no longer returned.
    ///
    /// # Errors
    ///
    /// [`Error::LsnOutOfRange`] when `lsn` is above [`next_lsn`](Self::next_lsn);
    /// [`Error::Poisoned`]; a device error.
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// for i in 0..10u8 {
    ///     log.append(&Record::raw(&[i])).unwrap();
    /// }
    /// // A checkpoint covers everything below LSN 6: reclaim it.
    /// log.truncate_before(6).unwrap();
    /// assert_eq!(log.first_lsn(), 6);
    /// drop(log);
    /// let (log, info) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// assert_eq!((log.first_lsn(), info.records), (6, 4));
    /// ```
    #[inline(never)]
    pub fn truncate_before(&mut self, lsn: Lsn) -> Result<(), D::Error> {
        let step = self.truncate_before_step(lsn);
        self.fault.out(step)
    }

    fn truncate_before_step(&mut self, lsn: Lsn) -> Step<()> {
        self.check_usable()?;
        let next = self.state.next_lsn;
        if lsn > next {
            return Err(self.fault.raise(Error::LsnOutOfRange { lsn, first: self.state.log_start, next }));
        }
        if lsn <= self.state.log_start {
            return Ok(());
        }
        let previous = self.state.log_start;
        self.state.log_start = lsn;
        // Make the new start durable before any reclaimed slot is reused: in
        // a mark of the active segment, or in the header of a new segment.
        let recorded = match &self.state.active {
            // (v1's tail reserve holds a mark; v2's only the padding.)
            Some(active)
                if active.pos
                    + match active.seg.version {
                        crate::format::Version::V1 => 0,
                        crate::format::Version::V2 => layout::mark_frame_len(active.seg.version),
                    }
                    + self.layout.tail_reserve()
                    <= active.seg.frames_end(self.layout.segment_size) =>
            {
                self.write_mark()
            }
            Some(_) => self.seal_active().and_then(|()| self.start_segment()),
            None => self.start_segment(),
        };
        if recorded.is_err() {
            // Nothing was written (`Full`), or the log is poisoned.
            self.state.log_start = previous;
            return recorded;
        }
        self.sync_now()?;
        // The segments wholly below the new start are free from now on.
        self.state.oldest = self.first_retained()?;
        Ok(())
    }

    /// Iterates over the records from `lsn` on, reading through `buffer`
    /// (a multiple of the read unit; each record's frame must fit in it).
    /// Records appended but not yet synced are included.
    ///
    /// # Errors
    ///
    /// [`Error::LsnOutOfRange`] when `lsn` is below the first LSN or above
    /// the next one; [`Error::Config`] for a buffer of the wrong size.
    /// ```
    /// # use nori_wal_core::ring::{RingConfig, RingLog};
    /// # use nori_wal_core::{Geometry, RamDevice, Record};
    /// # let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    /// # let mut buffer = [0u8; 1024];
    /// let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    /// for key in [&b"a"[..], b"b", b"c"] {
    ///     log.append(&Record::put(key, b"v")).unwrap();
    /// }
    /// let mut read = [0u8; 1024];
    /// let mut iter = log.iter_from(1, &mut read).unwrap();
    /// let mut keys = Vec::new();
    /// while let Some(entry) = iter.try_next().unwrap() {
    ///     keys.push((entry.lsn, entry.record.key().unwrap().to_vec()));
    /// }
    /// assert_eq!(keys, [(1, b"b".to_vec()), (2, b"c".to_vec())]);
    /// ```
    pub fn iter_from<'r>(
        &'r mut self,
        lsn: Lsn,
        buffer: &'r mut [u8],
    ) -> Result<Iter<'r, 'b, D, B>, D::Error> {
        iter::Iter::new(self, lsn, buffer)
    }
}

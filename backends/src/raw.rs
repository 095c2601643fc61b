//! Raw partitions and image files on Linux, read and written with
//! `O_DIRECT`.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;
use std::{fmt, format};

use nori_wal_core::{AccessError, BlockDevice, DeviceError, DeviceErrorKind, Geometry, Op, check_access};

/// How to open a [`RawDevice`].
///
/// ```
/// use nori_wal_backends::raw::RawOptions;
/// let options = RawOptions::default().file_sector_size(512);
/// assert_eq!(options.file_sector_size, Some(512));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RawOptions {
    /// Open even when the device carries a known file system or partition
    /// table signature (it will be overwritten). Never overrides the
    /// mounted check.
    pub force: bool,
    /// The sector size of an image file (a block device reports its own).
    /// `None`: 4096 bytes, which every file system accepts for `O_DIRECT`.
    pub file_sector_size: Option<u32>,
}

impl RawOptions {
    /// Sets [`force`](Self::force).
    ///
    /// ```
    /// # use nori_wal_backends::raw::{RawDevice, RawOptions};
    /// # use nori_wal_core::BlockDevice;
    /// # let image = std::env::temp_dir().join(format!("nori-wal-raw-doc-{}-{}", std::process::id(), line!()));
    /// # std::fs::File::create(&image)?.set_len(1 << 20)?;
    /// let options = RawOptions::default().force(true); // overwrite a signature
    /// # let _ = options;
    /// # std::fs::remove_file(&image)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub const fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Sets [`file_sector_size`](Self::file_sector_size).
    ///
    /// ```
    /// # use nori_wal_backends::raw::{RawDevice, RawOptions};
    /// # use nori_wal_core::BlockDevice;
    /// # let image = std::env::temp_dir().join(format!("nori-wal-raw-doc-{}-{}", std::process::id(), line!()));
    /// # std::fs::File::create(&image)?.set_len(1 << 20)?;
    /// let device = RawDevice::open(&image, RawOptions::default().file_sector_size(512))?;
    /// assert_eq!(device.geometry().program_unit(), 512);
    /// # std::fs::remove_file(&image)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub const fn file_sector_size(mut self, size: u32) -> Self {
        self.file_sector_size = Some(size);
        self
    }
}

/// A block device or a fixed-size image file as a [`BlockDevice`]: reads
/// and writes go through `O_DIRECT` with sector-aligned buffers, and
/// [`sync`](BlockDevice::sync) is `fdatasync`. The size and the logical
/// sector size come from the kernel; the device is never grown or shrunk.
///
/// [`RawDevice::open`] refuses a device that is mounted, or that holds a
/// known file system or partition table (unless [`RawOptions::force`]), with
/// a [`RawError`] that says what it found.
///
/// ```no_run
/// use nori_wal_backends::raw::{RawDevice, RawOptions};
/// use nori_wal_core::ring::{RingConfig, RingLog};
///
/// let device = RawDevice::open("/dev/loop0", RawOptions::default())?;
/// let mut buffer = vec![0u8; 64 * 1024];
/// let (log, info) = RingLog::open(device, RingConfig::new(1 << 20), &mut buffer)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RawDevice {
    file: File,
    path: PathBuf,
    geometry: Geometry,
    capacity: u64,
    /// Sector-aligned bounce buffer for `O_DIRECT` (the caller's buffers
    /// need not be aligned in memory).
    bounce: Vec<u8>,
    bounce_at: usize,
}

/// Bytes moved per `O_DIRECT` call.
const BOUNCE: usize = 1 << 20;

/// The alignment of the buffer `O_DIRECT` calls move bytes through: a
/// memory page (4 KiB on most systems), or the sector if larger. Aligned
/// only to a 512-byte sector, a 1 MiB buffer spans 257 pages instead of
/// 256, and each write hands the kernel one piece more (on a loop device
/// over a file, 1 MiB writes from a page-aligned buffer took 0.88x–1.03x
/// the time, median of three runs of 30 alternating rounds).
const PAGE: usize = 4096;

impl RawDevice {
    /// Opens `path`, a block device or an existing image file.
    ///
    /// # Errors
    ///
    /// [`RawError`]: the path cannot be opened, is mounted, holds a known
    /// signature, is neither a block device nor a regular file, or has a
    /// size that is not a multiple of its sector size.
    ///
    /// ```
    /// # use nori_wal_backends::raw::{RawDevice, RawOptions};
    /// # use nori_wal_core::BlockDevice;
    /// # let image = std::env::temp_dir().join(format!("nori-wal-raw-doc-{}-{}", std::process::id(), line!()));
    /// # std::fs::File::create(&image)?.set_len(1 << 20)?;
    /// let device = RawDevice::open(&image, RawOptions::default())?;
    /// assert_eq!(device.capacity(), 1 << 20);
    /// # std::fs::remove_file(&image)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>, options: RawOptions) -> Result<Self, RawError> {
        let path = path.as_ref().to_path_buf();
        let err = |kind| RawError { path: path.clone(), kind };
        let meta = std::fs::metadata(&path).map_err(|e| err(RawErrorKind::Io(e)))?;
        let is_block = meta.file_type().is_block_device();
        if !is_block && !meta.is_file() {
            return Err(err(RawErrorKind::NotADevice));
        }
        if let Some(mount) = mounted_at(&path, is_block.then(|| meta.rdev())) {
            return Err(err(RawErrorKind::Mounted { at: mount }));
        }
        let sector = if is_block {
            logical_sector_size(meta.rdev()).map_err(|e| err(RawErrorKind::Io(e)))?
        } else {
            options.file_sector_size.unwrap_or(4096)
        };
        let geometry = Geometry::block(sector).map_err(|_| err(RawErrorKind::BadSectorSize { sector }))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .map_err(|e| err(RawErrorKind::Io(e)))?;
        let capacity = file.seek(SeekFrom::End(0)).map_err(|e| err(RawErrorKind::Io(e)))?;
        if capacity == 0 || !capacity.is_multiple_of(u64::from(sector)) {
            return Err(err(RawErrorKind::BadSize { size: capacity, sector }));
        }
        let (bounce, bounce_at) = bounce_buffer(sector);
        let mut device = Self { file, path: path.clone(), geometry, capacity, bounce, bounce_at };
        if !options.force
            && let Some(found) = device.foreign_signature().map_err(|e| err(RawErrorKind::Io(e)))?
        {
            return Err(err(RawErrorKind::ForeignData { found }));
        }
        Ok(device)
    }

    /// The path opened.
    ///
    /// ```
    /// # use nori_wal_backends::raw::{RawDevice, RawOptions};
    /// # use nori_wal_core::BlockDevice;
    /// # let image = std::env::temp_dir().join(format!("nori-wal-raw-doc-{}-{}", std::process::id(), line!()));
    /// # std::fs::File::create(&image)?.set_len(1 << 20)?;
    /// let device = RawDevice::open(&image, RawOptions::default())?;
    /// assert_eq!(device.path(), image.as_path());
    /// # std::fs::remove_file(&image)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle that syncs this device from another thread, for group
    /// commit with [`RingLog::flush`](nori_wal_core::ring::RingLog::flush):
    /// the sync runs outside the lock that guards the log.
    ///
    /// # Errors
    ///
    /// The operating system's, when the file cannot be duplicated.
    ///
    /// ```
    /// # use nori_wal_backends::raw::{RawDevice, RawOptions};
    /// # use nori_wal_core::BlockDevice;
    /// # let image = std::env::temp_dir().join(format!("nori-wal-raw-doc-{}-{}", std::process::id(), line!()));
    /// # std::fs::File::create(&image)?.set_len(1 << 20)?;
    /// let device = RawDevice::open(&image, RawOptions::default())?;
    /// let handle = device.sync_handle()?; // sync from another thread, outside a lock
    /// handle.sync()?;
    /// # std::fs::remove_file(&image)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync_handle(&self) -> Result<RawSyncHandle, RawError> {
        let file = self.file.try_clone().map_err(|e| self.io(e))?;
        Ok(RawSyncHandle { file, path: self.path.clone() })
    }

    /// Another handle on the device that writes on its own: a duplicate
    /// of its file descriptor, with a buffer of its own for `O_DIRECT`. A
    /// second thread may program through it while this one writes (the
    /// shared ring's write-behind does, with two writes in flight); a sync
    /// through any handle covers the writes of both.
    ///
    /// # Errors
    ///
    /// The operating system's, when the descriptor cannot be duplicated.
    ///
    /// ```
    /// # use nori_wal_backends::raw::{RawDevice, RawOptions};
    /// # use nori_wal_core::BlockDevice;
    /// # let image = std::env::temp_dir().join(format!("nori-wal-raw-writer-{}", std::process::id()));
    /// # std::fs::File::create(&image)?.set_len(1 << 20)?;
    /// let mut device = RawDevice::open(&image, RawOptions::default())?;
    /// let mut second = device.write_handle()?;
    /// let other = std::thread::spawn(move || second.program(4096, &[7; 4096]));
    /// device.program(0, &[5; 4096])?;
    /// other.join().unwrap()?;
    /// device.sync()?;
    /// let mut back = [0u8; 8192];
    /// device.read(0, &mut back)?;
    /// assert_eq!((back[0], back[4096]), (5, 7));
    /// # std::fs::remove_file(&image)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_handle(&self) -> Result<Self, RawError> {
        let file = self.file.try_clone().map_err(|e| self.io(e))?;
        let (bounce, bounce_at) = bounce_buffer(self.geometry.program_unit());
        Ok(Self {
            file,
            path: self.path.clone(),
            geometry: self.geometry,
            capacity: self.capacity,
            bounce,
            bounce_at,
        })
    }

    fn bounce(&mut self, len: usize) -> &mut [u8] {
        &mut self.bounce[self.bounce_at..self.bounce_at + len]
    }

    fn read_direct(&mut self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < out.len() {
            let n = (out.len() - done).min(BOUNCE);
            let at = offset + done as u64;
            let buf = &mut self.bounce[self.bounce_at..self.bounce_at + n];
            self.file.read_exact_at(buf, at)?;
            out[done..done + n].copy_from_slice(buf);
            done += n;
        }
        Ok(())
    }

    /// A known file system or partition table in the first 68 KiB, unless a
    /// nori-wal segment starts the device.
    fn foreign_signature(&mut self) -> io::Result<Option<&'static str>> {
        let len = (68 * 1024).min(self.capacity as usize);
        let len = len - len % self.geometry.read_unit() as usize;
        let mut head = std::vec![0u8; len];
        self.read_direct(0, &mut head)?;
        Ok(detect_signature(&head))
    }
}

/// Syncs a [`RawDevice`] from another thread; see [`RawDevice::sync_handle`].
///
/// ```
/// # use nori_wal_backends::raw::{RawDevice, RawOptions};
/// # let image = std::env::temp_dir().join(format!("nori-wal-raw-handle-{}", std::process::id()));
/// # std::fs::File::create(&image)?.set_len(1 << 20)?;
/// let device = RawDevice::open(&image, RawOptions::default())?;
/// let handle = device.sync_handle()?;
/// std::thread::spawn(move || handle.sync()).join().unwrap()?;
/// # std::fs::remove_file(&image)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RawSyncHandle {
    file: File,
    path: PathBuf,
}

impl RawSyncHandle {
    /// `fdatasync` of the device: every write to it that completed before
    /// this call is durable when it returns `Ok`.
    ///
    /// # Errors
    ///
    /// The operating system's; report it with
    /// [`RingLog::sync_failed`](nori_wal_core::ring::RingLog::sync_failed).
    ///
    /// ```
    /// # use nori_wal_backends::raw::{RawDevice, RawOptions};
    /// # use nori_wal_core::BlockDevice;
    /// # let image = std::env::temp_dir().join(format!("nori-wal-raw-doc-{}-{}", std::process::id(), line!()));
    /// # std::fs::File::create(&image)?.set_len(1 << 20)?;
    /// let device = RawDevice::open(&image, RawOptions::default())?;
    /// device.sync_handle()?.sync()?;
    /// # std::fs::remove_file(&image)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&self) -> Result<(), RawError> {
        self.file.sync_data().map_err(|e| RawError { path: self.path.clone(), kind: RawErrorKind::Io(e) })
    }
}

impl nori_wal_core::SyncHandle for RawSyncHandle {
    type Error = RawError;

    fn sync(&self) -> Result<(), RawError> {
        Self::sync(self)
    }
}

/// Group commit through the core's trait: the sync of a duplicate of the
/// device's file descriptor, outside the lock that guards the log.
impl nori_wal_core::SplitSync for RawDevice {
    type Handle = RawSyncHandle;

    fn sync_handle(&self) -> Result<RawSyncHandle, RawError> {
        Self::sync_handle(self)
    }

    fn write_handle(&self) -> Result<Option<Self>, RawError> {
        Self::write_handle(self).map(Some)
    }
}

/// A buffer for `O_DIRECT` calls, and where its aligned part starts.
fn bounce_buffer(sector: u32) -> (Vec<u8>, usize) {
    let align = (sector as usize).max(PAGE);
    let bounce = std::vec![0u8; BOUNCE + align];
    let at = bounce.as_ptr().align_offset(align);
    (bounce, at)
}

/// Known signatures: (name, offset, bytes).
const SIGNATURES: &[(&str, usize, &[u8])] = &[
    ("an ext2/3/4 file system", 1080, &[0x53, 0xEF]),
    ("an XFS file system", 0, b"XFSB"),
    ("a Btrfs file system", 65600, b"_BHRfS_M"),
    ("a GPT partition table", 512, b"EFI PART"),
    ("a GPT partition table", 4096, b"EFI PART"),
    ("a LUKS volume", 0, b"LUKS\xba\xbe"),
    ("an LVM physical volume", 536, b"LVM2 001"),
    ("a swap area", 4086, b"SWAPSPACE2"),
    ("a swap area", 4086, b"SWAP-SPACE"),
    ("a FAT32 file system", 82, b"FAT32   "),
    ("a FAT12/16 file system", 54, b"FAT1"),
    ("an NTFS file system", 3, b"NTFS    "),
    ("an ISO 9660 image", 32769, b"CD001"),
    ("a squashfs image", 0, b"hsqs"),
];

/// What the first bytes of a device hold, if it is something else than a
/// nori-wal log or blank space: the name of a known file system or
/// partition table.
///
/// ```
/// # use nori_wal_backends::raw::{RawDevice, RawOptions};
/// # use nori_wal_core::BlockDevice;
/// # let image = std::env::temp_dir().join(format!("nori-wal-raw-doc-{}-{}", std::process::id(), line!()));
/// # std::fs::File::create(&image)?.set_len(1 << 20)?;
/// use nori_wal_backends::raw::detect_signature;
/// let mut ext4 = vec![0u8; 2048];
/// ext4[1080..1082].copy_from_slice(&[0x53, 0xEF]);
/// assert!(detect_signature(&ext4).is_some());
/// assert_eq!(detect_signature(&[0u8; 2048]), None);
/// # std::fs::remove_file(&image)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn detect_signature(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&nori_wal_core::format::SEGMENT_MAGIC) {
        return None;
    }
    for &(name, offset, bytes) in SIGNATURES {
        if head.get(offset..offset + bytes.len()) == Some(bytes) {
            return Some(name);
        }
    }
    // An MBR: the boot signature and at least one partition entry with a
    // type and a non-zero size.
    if head.get(510..512) == Some(&[0x55, 0xAA]) {
        let entries = head.get(446..510).unwrap_or(&[]);
        let used = entries.chunks(16).any(|e| e.len() == 16 && e[4] != 0 && e[12..16] != [0, 0, 0, 0]);
        if used {
            return Some("an MBR partition table");
        }
    }
    None
}

/// Where `path` (or the block device `rdev`, or a partition of it) is
/// mounted, from `/proc/self/mountinfo`.
fn mounted_at(path: &Path, rdev: Option<u64>) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let canonical = std::fs::canonicalize(path).ok();
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let mount_point = fields.get(4).copied().unwrap_or("?");
        // Field 3 is major:minor of the mounted device.
        if let (Some(dev), Some(rdev)) = (fields.get(2), rdev) {
            let (major, minor) = (dev_major(rdev), dev_minor(rdev));
            let whole = format!("{major}:{minor}");
            if *dev == whole || same_disk(dev, major, minor) {
                return Some(mount_point.to_string());
            }
        }
        // The mount source comes after the " - " separator.
        if let Some(sep) = fields.iter().position(|f| *f == "-")
            && let Some(source) = fields.get(sep + 2)
            && let Some(canonical) = &canonical
            && Path::new(source) == canonical.as_path()
        {
            return Some(mount_point.to_string());
        }
    }
    None
}

/// Whether `dev` ("major:minor") is a partition of the disk `major:minor`,
/// from `/sys/dev/block/<dev>/partition` and its parent.
fn same_disk(dev: &str, major: u32, minor: u32) -> bool {
    let parent = std::fs::canonicalize(format!("/sys/dev/block/{dev}/.."));
    let disk = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}"));
    matches!((parent, disk), (Ok(p), Ok(d)) if p == d)
}

/// The logical sector size of the block device `rdev`, from sysfs.
fn logical_sector_size(rdev: u64) -> io::Result<u32> {
    let path = format!("/sys/dev/block/{}:{}/queue/logical_block_size", dev_major(rdev), dev_minor(rdev));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        // A partition: its queue is its disk's.
        Err(_) => std::fs::read_to_string(format!(
            "/sys/dev/block/{}:{}/../queue/logical_block_size",
            dev_major(rdev),
            dev_minor(rdev)
        ))?,
    };
    text.trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad {path}: {text:?}")))
}

/// glibc's encoding of device numbers.
const fn dev_major(dev: u64) -> u32 {
    (((dev >> 32) & 0xFFFF_F000) | ((dev >> 8) & 0xFFF)) as u32
}

const fn dev_minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xFFFF_FF00) | (dev & 0xFF)) as u32
}

impl BlockDevice for RawDevice {
    type Error = RawError;

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), RawError> {
        check_access(&self.geometry, self.capacity, Op::Read, offset, buf.len() as u64)
            .map_err(|e| self.access(e))?;
        self.read_direct(offset, buf).map_err(|e| self.io(e))
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), RawError> {
        check_access(&self.geometry, self.capacity, Op::Program, offset, data.len() as u64)
            .map_err(|e| self.access(e))?;
        let mut done = 0;
        while done < data.len() {
            let n = (data.len() - done).min(BOUNCE);
            self.bounce(n).copy_from_slice(&data[done..done + n]);
            // Positional: a write handle shares the file's offset.
            let at = offset + done as u64;
            let result = self.file.write_all_at(&self.bounce[self.bounce_at..self.bounce_at + n], at);
            result.map_err(|e| self.io(e))?;
            done += n;
        }
        Ok(())
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), RawError> {
        check_access(&self.geometry, self.capacity, Op::Erase, offset, len).map_err(|e| self.access(e))
    }

    fn sync(&mut self) -> Result<(), RawError> {
        self.file.sync_data().map_err(|e| self.io(e))
    }
}

impl RawDevice {
    fn access(&self, e: AccessError) -> RawError {
        RawError { path: self.path.clone(), kind: RawErrorKind::Access(e) }
    }

    fn io(&self, e: io::Error) -> RawError {
        RawError { path: self.path.clone(), kind: RawErrorKind::Io(e) }
    }
}

/// An error of a [`RawDevice`]: what went wrong, and on which path.
///
/// ```
/// use nori_wal_backends::raw::{RawDevice, RawOptions};
/// let err = RawDevice::open("/nonexistent/device", RawOptions::default()).unwrap_err();
/// println!("{err}"); // names the path and what is wrong
/// ```
#[derive(Debug)]
pub struct RawError {
    /// The device or file.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: RawErrorKind,
}

/// What went wrong with a [`RawDevice`].
///
/// ```
/// use nori_wal_backends::raw::{RawDevice, RawErrorKind, RawOptions};
/// let err = RawDevice::open("/nonexistent/device", RawOptions::default()).unwrap_err();
/// assert!(matches!(err.kind, RawErrorKind::Io(_)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RawErrorKind {
    /// The operating system refused or failed an operation.
    Io(io::Error),
    /// The access breaks the geometry.
    Access(AccessError),
    /// The path is mounted.
    Mounted {
        /// Where.
        at: String,
    },
    /// The device holds a file system or partition table.
    ForeignData {
        /// What was found.
        found: &'static str,
    },
    /// Neither a block device nor a regular file.
    NotADevice,
    /// The size is zero or not a multiple of the sector size.
    BadSize {
        /// Size in bytes.
        size: u64,
        /// Sector size.
        sector: u32,
    },
    /// The kernel reports a sector size the format does not support.
    BadSectorSize {
        /// Sector size.
        sector: u32,
    },
}

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.kind {
            RawErrorKind::Io(e) => write!(f, "{path}: {e}"),
            RawErrorKind::Access(e) => write!(f, "{path}: {e}"),
            RawErrorKind::Mounted { at } => {
                write!(f, "{path} is mounted at {at}: refusing to use it as a log; unmount it first")
            }
            RawErrorKind::ForeignData { found } => write!(
                f,
                "{path} holds {found}: refusing to overwrite it; pass RawOptions::force(true) if it is really free"
            ),
            RawErrorKind::NotADevice => write!(f, "{path} is neither a block device nor a regular file"),
            RawErrorKind::BadSize { size, sector } => write!(
                f,
                "{path} is {size} bytes, not a non-zero multiple of its {sector}-byte sectors; \
                 an image file must be created at its final size"
            ),
            RawErrorKind::BadSectorSize { sector } => {
                write!(f, "{path} has {sector}-byte sectors, which are not supported")
            }
        }
    }
}

impl std::error::Error for RawError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            RawErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl DeviceError for RawError {
    fn kind(&self) -> DeviceErrorKind {
        match &self.kind {
            RawErrorKind::Io(e) if e.kind() == io::ErrorKind::StorageFull => DeviceErrorKind::Full,
            RawErrorKind::Io(_) => DeviceErrorKind::Io,
            RawErrorKind::Access(e) => e.kind,
            _ => DeviceErrorKind::Other,
        }
    }
}

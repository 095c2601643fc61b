//! The file-system operations the file WAL needs, as a trait, so that the
//! same code runs on the real file system ([`StdFs`]) and, in the crash
//! tests, on a simulated one that loses what a power cut would lose.
//!
//! The contract is the one a power cut enforces (invariant I8):
//!
//! - data written to a file is durable only after [`File::sync_data`]
//!   returns `Ok`; before that, any subset of the writes may persist, a
//!   write may be torn, and a file's length may cover bytes that never made
//!   it (zeros, garbage or older bytes);
//! - a created, renamed or removed directory entry is durable only after
//!   [`Fs::sync_dir`] on its directory returns `Ok`;
//! - after a failed sync nothing about the earlier writes is known, and a
//!   later successful sync does not make them durable.

mod mmap;
mod std_fs;

pub use mmap::Map;

use std::ffi::OsString;
use std::io;
use std::path::Path;

pub use std_fs::{StdFile, StdFs};

/// The permission bits of a file the WAL creates before it sets the
/// configured ones: private (the umask may only narrow it further).
#[cfg(unix)]
pub(crate) const CREATE_MODE: u32 = 0o600;

/// How [`Fs::open`] opens a file.
///
/// ```
/// use nori_wal::fs::{Fs, OpenMode, StdFs};
/// # let dir = std::env::temp_dir().join(format!("nori-wal-openmode-{}", std::process::id()));
/// # StdFs.create_dir_all(&dir)?;
/// let path = dir.join("a");
/// StdFs.open(&path, OpenMode::CreateNew)?;
/// assert!(StdFs.open(&path, OpenMode::CreateNew).is_err(), "it exists");
/// StdFs.open(&path, OpenMode::Read)?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenMode {
    /// An existing file, for reading.
    Read,
    /// An existing file, for reading and writing.
    ReadWrite,
    /// A new file for reading and writing; fails if it exists.
    CreateNew,
}

/// What a path names.
///
/// ```
/// use nori_wal::fs::{Fs, Kind, StdFs};
/// assert_eq!(StdFs.kind(&std::env::temp_dir())?, Kind::Dir);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else (a socket, a device, a dangling link).
    Other,
}

/// A file system.
///
/// The WAL runs on any implementation: [`StdFs`] is the operating system's;
/// the test suite has one that simulates power cuts.
///
/// ```
/// use nori_wal::blocking::Wal;
/// use nori_wal::fs::StdFs;
/// use nori_wal::WalConfig;
/// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-doc-{}", std::process::id()));
/// let (wal, _) = Wal::open_in(StdFs, WalConfig::new(&dir))?;
/// # drop(wal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Fs: Send + Sync + 'static {
    /// Its open files.
    type File: File;

    /// What `path` names; an error of kind `NotFound` when nothing.
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// assert_eq!(StdFs.kind(&dir)?, nori_wal::fs::Kind::Dir);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn kind(&self, path: &Path) -> io::Result<Kind>;

    /// Creates `dir` and its parents where missing.
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// StdFs.create_dir_all(&dir.join("a/b"))?;
    /// assert!(dir.join("a/b").is_dir());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// The names of the entries of `dir`, in no particular order.
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// assert_eq!(StdFs.list(&dir)?, vec![std::ffi::OsString::from("x")]);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>>;

    /// Opens `path`.
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// let file = StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// assert_eq!(file.size()?, 0);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File>;

    /// Removes the file `path`.
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// StdFs.remove(&dir.join("x"))?;
    /// StdFs.sync_dir(&dir)?; // the removal survives a power cut
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Renames `from` to `to`, replacing `to`.
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// StdFs.rename(&dir.join("x"), &dir.join("y"))?;
    /// StdFs.sync_dir(&dir)?;
    /// assert!(dir.join("y").exists());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes the entries of `dir` durable (created, renamed, removed files).
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// StdFs.open(&dir.join("new"), OpenMode::CreateNew)?;
    /// StdFs.sync_dir(&dir)?; // the new entry survives a power cut
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// The permission bits of `path` (following links: for the WAL's own
    /// directory), or `None` on a file system without them. The default
    /// has none.
    ///
    /// ```
    /// use nori_wal::fs::{Fs, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// StdFs.set_mode(&dir, 0o700)?;
    /// assert_eq!(StdFs.mode(&dir)?, if cfg!(unix) { Some(0o700) } else { None });
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn mode(&self, path: &Path) -> io::Result<Option<u32>> {
        let _ = path;
        Ok(None)
    }

    /// Sets the permission bits of `path` exactly (no umask); does nothing
    /// on a file system without them (the default).
    ///
    /// ```
    /// use nori_wal::fs::{Fs, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// StdFs.set_mode(&dir, 0o750)?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        let _ = (path, mode);
        Ok(())
    }
}

/// Why [`StdFs::open`](Fs::open) refused a path: it is a symbolic link,
/// which the WAL never follows for its own files. [`is_link_refused`] tells
/// such an error from others.
#[derive(Debug)]
pub(crate) struct LinkRefused;

impl std::fmt::Display for LinkRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a symbolic link, which is not followed")
    }
}

impl std::error::Error for LinkRefused {}

/// Whether `e` says a path was refused for being a symbolic link.
///
/// ```
/// use nori_wal::fs::{Fs, OpenMode, StdFs, is_link_refused};
/// # let dir = std::env::temp_dir().join(format!("nori-wal-link-doc-{}", std::process::id()));
/// # StdFs.create_dir_all(&dir)?;
/// # #[cfg(unix)] {
/// std::os::unix::fs::symlink("/etc/hostname", dir.join("link"))?;
/// let err = StdFs.open(&dir.join("link"), OpenMode::Read).unwrap_err();
/// assert!(is_link_refused(&err));
/// # }
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use]
pub fn is_link_refused(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<LinkRefused>())
}

/// An open file.
///
/// ```
/// use nori_wal::fs::{File, Fs, OpenMode, StdFs, read_exact_at};
/// # let dir = std::env::temp_dir().join(format!("nori-wal-file-doc-{}", std::process::id()));
/// # StdFs.create_dir_all(&dir)?;
/// let file = StdFs.open(&dir.join("f"), OpenMode::CreateNew)?;
/// file.write_all_at(b"durable", 0)?;
/// file.sync_data()?; // now it survives a power cut
/// let mut back = [0u8; 7];
/// read_exact_at(&file, &mut back, 0)?;
/// assert_eq!(&back, b"durable");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait File: Send + Sync + 'static {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at the
    /// end of the file).
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// let file = StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// file.write_all_at(b"abc", 0)?;
    /// let mut buf = [0u8; 8];
    /// assert_eq!(file.read_at(&mut buf, 1)?, 2);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Writes all of `data` at `offset`, extending the file if needed.
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// let file = StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// file.write_all_at(b"xy", 10)?;
    /// assert_eq!(file.size()?, 12);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's; `StorageFull` when the disk is full. Part of
    /// `data` may have been written.
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()>;

    /// The file's size in bytes.
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// let file = StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// file.write_all_at(b"abc", 0)?;
    /// assert_eq!(file.size()?, 3);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn size(&self) -> io::Result<u64>;

    /// Sets the file's length: truncates, or extends with zeros.
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// let file = StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// file.write_all_at(b"abcdef", 0)?;
    /// file.set_len(2)?;
    /// assert_eq!(file.size()?, 2);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Reserves disk space so that the file is at least `len` bytes long
    /// and writes below `len` cannot fail for lack of space; the new bytes
    /// read as zeros. Never shrinks the file. (`fallocate` where the file
    /// system has it, else an extension with zeros.)
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// let file = StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// file.allocate(1 << 20)?;
    /// assert_eq!(file.size()?, 1 << 20);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's; `StorageFull` when the disk is full, in which
    /// case the file's length is unchanged.
    fn allocate(&self, len: u64) -> io::Result<()>;

    /// Makes the file's data (and the length needed to read it) durable:
    /// `fdatasync`.
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// let file = StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// file.write_all_at(b"safe", 0)?;
    /// file.sync_data()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's; after an error, nothing is known about the
    /// writes since the last successful sync.
    fn sync_data(&self) -> io::Result<()>;

    /// A read-only map of the file's first `len` bytes, where the file
    /// system offers maps; `Ok(None)` where it does not (readers then use
    /// [`read_at`](Self::read_at)).
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// let file = StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// file.write_all_at(b"abc", 0)?;
    /// assert_eq!(file.map(3)?.map(|m| m.bytes().to_vec()), Some(b"abc".to_vec()));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn map(&self, len: u64) -> io::Result<Option<Map>> {
        let _ = len;
        Ok(None)
    }

    /// Takes an exclusive advisory lock on the file without waiting;
    /// `Ok(false)` when another holder has it. Released when the file is
    /// dropped.
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// let file = StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// assert!(file.try_lock()?);
    /// let again = StdFs.open(&dir.join("x"), OpenMode::Read)?;
    /// assert!(!again.try_lock()?, "held by `file`");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn try_lock(&self) -> io::Result<bool>;

    /// Takes a shared advisory lock on the file without waiting;
    /// `Ok(false)` when another holder has it exclusively. Released when the
    /// file is dropped. Readers use it to ask whether a writer has the log
    /// open, holding it only for that question. The default takes the
    /// exclusive lock ([`try_lock`](Self::try_lock)), which answers the same
    /// question.
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// let file = StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// let reader = StdFs.open(&dir.join("x"), OpenMode::Read)?;
    /// assert!(reader.try_lock_shared()?, "nobody holds it");
    /// drop(reader);
    /// assert!(file.try_lock()?);
    /// let reader = StdFs.open(&dir.join("x"), OpenMode::Read)?;
    /// assert!(!reader.try_lock_shared()?, "`file` holds it");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn try_lock_shared(&self) -> io::Result<bool> {
        self.try_lock()
    }

    /// Whether `path` names this very file (not a copy renamed over it, nor
    /// a new file of the same name): `Ok(false)` when the path is gone or
    /// names another file, `Ok(None)` where the file system cannot tell
    /// (the default). A reader in another process uses it to see that the
    /// writer replaced or removed the file it reads.
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// let file = StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// let unix = cfg!(unix).then_some(true);
    /// assert_eq!(file.is_at(&dir.join("x"))?, unix);
    /// StdFs.open(&dir.join("y"), OpenMode::CreateNew)?;
    /// StdFs.rename(&dir.join("y"), &dir.join("x"))?; // replaced
    /// assert_eq!(file.is_at(&dir.join("x"))?, unix.map(|_| false));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's (a missing path is `Ok(Some(false))`).
    fn is_at(&self, path: &Path) -> io::Result<Option<bool>> {
        let _ = path;
        Ok(None)
    }

    /// The file's permission bits, or `None` on a file system without
    /// them (the default).
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// let file = StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// // Created private, whatever the umask.
    /// assert_eq!(file.mode()?, if cfg!(unix) { Some(0o600) } else { None });
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn mode(&self) -> io::Result<Option<u32>> {
        Ok(None)
    }

    /// Sets the file's permission bits exactly (no umask; through the open
    /// file, so no link is followed); does nothing on a file system without
    /// them (the default).
    ///
    /// ```
    /// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-fs-{}-{}", line!(), std::process::id()));
    /// # StdFs.create_dir_all(&dir)?;
    /// let file = StdFs.open(&dir.join("x"), OpenMode::CreateNew)?;
    /// file.set_mode(0o640)?;
    /// assert_eq!(file.mode()?, if cfg!(unix) { Some(0o640) } else { None });
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn set_mode(&self, mode: u32) -> io::Result<()> {
        let _ = mode;
        Ok(())
    }
}

/// Reads exactly `buf.len()` bytes at `offset`.
///
/// ```
/// use nori_wal::fs::{File, Fs, OpenMode, StdFs, read_exact_at};
/// # let dir = std::env::temp_dir().join(format!("nori-wal-read-doc-{}", std::process::id()));
/// # StdFs.create_dir_all(&dir)?;
/// let file = StdFs.open(&dir.join("f"), OpenMode::CreateNew)?;
/// file.write_all_at(b"abc", 0)?;
/// let mut two = [0u8; 2];
/// read_exact_at(&file, &mut two, 1)?;
/// assert_eq!(&two, b"bc");
/// assert!(read_exact_at(&file, &mut two, 2).is_err(), "the file ends first");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// `UnexpectedEof` when the file ends first, or the file's own error.
pub fn read_exact_at<F: File + ?Sized>(file: &F, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset)? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file ended before the bytes asked for",
                ));
            }
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

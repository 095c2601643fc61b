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

/// How [`Fs::open`] opens a file.
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
pub trait Fs: Send + Sync + 'static {
    /// Its open files.
    type File: File;

    /// What `path` names; an error of kind `NotFound` when nothing.
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn kind(&self, path: &Path) -> io::Result<Kind>;

    /// Creates `dir` and its parents where missing.
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// The names of the entries of `dir`, in no particular order.
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>>;

    /// Opens `path`.
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File>;

    /// Removes the file `path`.
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Renames `from` to `to`, replacing `to`.
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes the entries of `dir` durable (created, renamed, removed files).
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// An open file.
pub trait File: Send + Sync + 'static {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at the
    /// end of the file).
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Writes all of `data` at `offset`, extending the file if needed.
    ///
    /// # Errors
    ///
    /// The operating system's; `StorageFull` when the disk is full. Part of
    /// `data` may have been written.
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()>;

    /// The file's size in bytes.
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn size(&self) -> io::Result<u64>;

    /// Sets the file's length: truncates, or extends with zeros.
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
    /// # Errors
    ///
    /// The operating system's; `StorageFull` when the disk is full, in which
    /// case the file's length is unchanged.
    fn allocate(&self, len: u64) -> io::Result<()>;

    /// Makes the file's data (and the length needed to read it) durable:
    /// `fdatasync`.
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
    /// # Errors
    ///
    /// The operating system's.
    fn try_lock(&self) -> io::Result<bool>;
}

/// Reads exactly `buf.len()` bytes at `offset`.
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

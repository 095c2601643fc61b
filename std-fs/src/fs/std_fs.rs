//! The real file system: Unix (Linux, macOS, the BSDs) and Windows.
//!
//! What differs between them:
//!
//! - **Preallocation** reserves a segment's blocks with `fallocate` on
//!   Linux, so that a full disk shows when a segment is created and never
//!   in the middle of one. Elsewhere it extends the file with `set_len`,
//!   which reserves no blocks on most file systems: a full disk may then
//!   fail a later write, which poisons the WAL (nothing acknowledged is
//!   lost; reopening recovers what is durable).
//! - **Syncs**: `fdatasync` on Linux; on macOS and iOS `sync_data` is
//!   `fcntl(F_FULLFSYNC)`, which asks the drive to empty its cache too (a
//!   plain `fsync` there does not); `FlushFileBuffers` on Windows.
//! - **Directory syncs** make a created, renamed or removed file durable on
//!   Unix. Windows has no directory sync: NTFS journals its metadata, and
//!   [`Fs::sync_dir`] does nothing there.
//! - **Locking**: `flock` on Unix, `LockFileEx` on Windows (std's
//!   `File::try_lock`), both released when the process ends.
//! - **Permissions and links**: on Unix files are created `0o600` and
//!   links are never followed when a file is opened (`O_NOFOLLOW`): a link
//!   is refused. Windows has no permission bits (its ACLs are inherited
//!   from the directory) and refuses a link by looking first.
//! - **Windows** refuses to replace a file that is mapped: a
//!   `truncate_after` while an iterator still reads, through a map, the file
//!   it cuts is expected to fail with an I/O error there (the WAL is then
//!   poisoned; reopening it recovers). The file WAL is built for Windows but
//!   its test suite runs on Linux, so this is not tested.

use std::ffi::OsString;
use std::fs::{self, OpenOptions, TryLockError};
use std::io;
#[cfg(unix)]
use std::os::unix::fs::FileExt;
#[cfg(windows)]
use std::os::windows::fs::FileExt;
use std::path::Path;

use super::{File, Fs, Kind, OpenMode};

/// The operating system's file system (Unix or Windows; see the module
/// docs for what differs).
///
/// ```
/// use nori_wal::fs::{Fs, StdFs};
/// let names = StdFs.list(&std::env::temp_dir())?;
/// # let _ = names;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StdFs;

/// A file of [`StdFs`].
///
/// ```
/// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
/// # let dir = std::env::temp_dir().join(format!("nori-wal-stdfile-doc-{}", std::process::id()));
/// # StdFs.create_dir_all(&dir)?;
/// let file = StdFs.open(&dir.join("f"), OpenMode::CreateNew)?;
/// file.allocate(4096)?; // reserved: writes below 4096 cannot run out of space
/// assert_eq!(file.size()?, 4096);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct StdFile(fs::File);

impl Fs for StdFs {
    type File = StdFile;

    fn kind(&self, path: &Path) -> io::Result<Kind> {
        let meta = fs::metadata(path)?;
        Ok(if meta.is_file() {
            Kind::File
        } else if meta.is_dir() {
            Kind::Dir
        } else {
            Kind::Other
        })
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(dir)?.map(|entry| entry.map(|e| e.file_name())).collect()
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<StdFile> {
        let mut options = OpenOptions::new();
        match mode {
            OpenMode::Read => options.read(true),
            OpenMode::ReadWrite => options.read(true).write(true),
            OpenMode::CreateNew => options.read(true).write(true).create_new(true),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Private from the first byte; a link is never followed.
            options.mode(super::CREATE_MODE).custom_flags(libc::O_NOFOLLOW);
            options.open(path).map(StdFile).map_err(|e| {
                // ELOOP: the last component is a link (or the path loops).
                if e.raw_os_error() == Some(libc::ELOOP) { io::Error::other(super::LinkRefused) } else { e }
            })
        }
        #[cfg(not(unix))]
        {
            // No O_NOFOLLOW: look first.
            if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(io::Error::other(super::LinkRefused));
            }
            options.open(path).map(StdFile)
        }
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn mode(&self, path: &Path) -> io::Result<Option<u32>> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            Ok(Some(fs::metadata(path)?.permissions().mode() & 0o7777))
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Ok(None)
        }
    }

    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
        }
        #[cfg(not(unix))]
        {
            let _ = (path, mode);
            Ok(())
        }
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        return fs::File::open(dir)?.sync_all();
        // NTFS journals directory entries; there is no directory handle to sync.
        #[cfg(not(unix))]
        {
            let _ = dir;
            Ok(())
        }
    }
}

impl File for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        #[cfg(unix)]
        return FileExt::read_at(&self.0, buf, offset);
        #[cfg(windows)]
        return FileExt::seek_read(&self.0, buf, offset);
    }

    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        #[cfg(unix)]
        return FileExt::write_all_at(&self.0, data, offset);
        #[cfg(windows)]
        {
            let (mut data, mut offset) = (data, offset);
            while !data.is_empty() {
                match FileExt::seek_write(&self.0, data, offset) {
                    Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                    Ok(n) => {
                        data = &data[n..];
                        offset += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        if self.0.metadata()?.len() >= len {
            return Ok(());
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        match rustix::fs::fallocate(&self.0, rustix::fs::FallocateFlags::empty(), 0, len) {
            Ok(()) => return Ok(()),
            // The file system has no fallocate: extend with zeros below.
            Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {}
            Err(e) => return Err(e.into()),
        }
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn map(&self, len: u64) -> io::Result<Option<super::Map>> {
        #[cfg(feature = "mmap")]
        return super::mmap::Map::new(&self.0, len);
        #[cfg(not(feature = "mmap"))]
        {
            let _ = len;
            Ok(None)
        }
    }

    fn mode(&self) -> io::Result<Option<u32>> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            Ok(Some(self.0.metadata()?.permissions().mode() & 0o7777))
        }
        #[cfg(not(unix))]
        Ok(None)
    }

    fn set_mode(&self, mode: u32) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            self.0.set_permissions(fs::Permissions::from_mode(mode))
        }
        #[cfg(not(unix))]
        {
            let _ = mode;
            Ok(())
        }
    }

    fn try_lock(&self) -> io::Result<bool> {
        match self.0.try_lock() {
            Ok(()) => Ok(true),
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    fn try_lock_shared(&self) -> io::Result<bool> {
        match self.0.try_lock_shared() {
            Ok(()) => Ok(true),
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    fn is_at(&self, path: &Path) -> io::Result<Option<bool>> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let mine = self.0.metadata()?;
            match fs::symlink_metadata(path) {
                Ok(there) => Ok(Some(mine.dev() == there.dev() && mine.ino() == there.ino())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Some(false)),
                Err(e) => Err(e),
            }
        }
        #[cfg(not(unix))]
        {
            // Windows gives a file's identity only through an unstable
            // std API: readers fall back on the log's own names and headers.
            let _ = path;
            Ok(None)
        }
    }
}

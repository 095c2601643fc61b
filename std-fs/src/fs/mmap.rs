//! Read-only memory maps of segment files: the one module of the workspace
//! with `unsafe` code.
//!
//! Mapping a file is `unsafe` because the mapped bytes can change, or
//! vanish (a file shrunk under the map makes touching the lost pages raise
//! `SIGBUS`), behind the back of the slices handed out. The file WAL keeps
//! both from happening:
//!
//! - it never shrinks a file after it is opened: recovery cuts files before
//!   any reader exists, and `truncate_after` writes a cut copy under the same
//!   name instead of shrinking the file in place (a map keeps the old
//!   file's pages alive once it is unlinked or renamed over);
//! - it only appends: a reader's slices cover bytes below the written end it
//!   saw when it was made, which are never written again;
//! - the directory is locked against other `Wal`s (other programs writing a
//!   WAL's files are outside its contract, as the format says).

#![allow(unsafe_code)]

#[cfg(feature = "mmap")]
use std::fs::File;
#[cfg(feature = "mmap")]
use std::io;

/// A read-only map of a whole file, as long as the file was when mapped.
/// Without the `mmap` feature no map is ever made ([`File::map`] returns
/// `None` and readers use pread).
///
/// [`File::map`]: crate::fs::File::map
///
/// ```
/// use nori_wal::fs::{File, Fs, OpenMode, StdFs};
/// # let dir = std::env::temp_dir().join(format!("nori-wal-map-doc-{}", std::process::id()));
/// # StdFs.create_dir_all(&dir)?;
/// let file = StdFs.open(&dir.join("f"), OpenMode::CreateNew)?;
/// file.write_all_at(b"mapped bytes", 0)?;
/// if let Some(map) = file.map(6)? {
///     assert_eq!(map.bytes(), b"mapped");
/// }
/// # assert_eq!(file.map(6)?.is_some(), cfg!(feature = "mmap"));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Map(Mapped);

#[cfg(feature = "mmap")]
type Mapped = memmap2::Mmap;

/// Without the `mmap` feature, a map cannot be made.
#[cfg(not(feature = "mmap"))]
#[derive(Debug)]
enum Mapped {}

#[cfg(feature = "mmap")]
impl Map {
    /// Maps `len` bytes of `file` from its start; `len` must not exceed the
    /// file's length.
    pub(crate) fn new(file: &File, len: u64) -> io::Result<Option<Self>> {
        let size = file.metadata()?.len();
        if len == 0 || len > size {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| io::Error::other("file too large to map"))?;
        // SAFETY: `len` lies within the file (checked above). The file WAL
        // never shrinks a file it may have mapped and never rewrites bytes
        // below the written end a reader was given (module docs), so the
        // mapped bytes that slices cover neither change nor vanish while
        // the map lives.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(file)? };
        Ok(Some(Self(map)))
    }
}

impl Map {
    /// The mapped bytes.
    #[must_use]
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        #[cfg(feature = "mmap")]
        return &self.0;
        #[cfg(not(feature = "mmap"))]
        match self.0 {}
    }
}

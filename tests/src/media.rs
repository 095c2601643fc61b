//! Helpers shared by the tests of the backends: an in-memory `embedded-io`
//! stream, scratch image files, and the loop device CI attaches.

use std::convert::Infallible;
use std::path::PathBuf;

use embedded_io::{ErrorType, Read, Seek, SeekFrom, Write};

/// A fixed-size in-memory stream implementing the `embedded-io` traits.
#[derive(Debug, Clone)]
pub struct MemStream {
    bytes: Vec<u8>,
    at: usize,
}

impl MemStream {
    /// A stream over `bytes`.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Self { bytes, at: 0 }
    }

    /// The bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl ErrorType for MemStream {
    type Error = Infallible;
}

impl Read for MemStream {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let n = buf.len().min(self.bytes.len().saturating_sub(self.at));
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        // Fixed size: never grows.
        let n = buf.len().min(self.bytes.len().saturating_sub(self.at));
        self.bytes[self.at..self.at + n].copy_from_slice(&buf[..n]);
        self.at += n;
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl Seek for MemStream {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, Infallible> {
        let target = match pos {
            SeekFrom::Start(n) => n as i64,
            SeekFrom::End(n) => self.bytes.len() as i64 + n,
            SeekFrom::Current(n) => self.at as i64 + n,
        };
        self.at = target.clamp(0, self.bytes.len() as i64) as usize;
        Ok(self.at as u64)
    }
}

/// A zeroed image file of `len` bytes in `dir` (give the integration test's
/// `CARGO_TARGET_TMPDIR`: on the disk the tests run from, not a tmpfs, which
/// refuses `O_DIRECT`), removed when dropped.
#[derive(Debug)]
pub struct ImageFile {
    /// Its path.
    pub path: PathBuf,
}

impl ImageFile {
    /// Creates it.
    ///
    /// # Panics
    ///
    /// When the file cannot be created.
    #[must_use]
    pub fn new(dir: &str, name: &str, len: u64) -> Self {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("create the image directory");
        let path = dir.join(format!("{name}-{}.img", std::process::id()));
        let file = std::fs::File::create(&path).expect("create image file");
        file.set_len(len).expect("size image file");
        Self { path }
    }
}

impl Drop for ImageFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The loop block device `.ci/run` attaches for the raw-partition tests
/// (`NORI_WAL_TEST_LOOP_DEVICE`), or `None` with a loud message.
#[must_use]
pub fn loop_device(test: &str) -> Option<PathBuf> {
    match std::env::var_os("NORI_WAL_TEST_LOOP_DEVICE") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            eprintln!(
                "\n*** {test}: NO REAL BLOCK DEVICE: NORI_WAL_TEST_LOOP_DEVICE is not set (`.ci/run` attaches a \
                 loop device with losetup); the real-device part of this test did NOT run, the image-file part did ***\n"
            );
            None
        }
    }
}

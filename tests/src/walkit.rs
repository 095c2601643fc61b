//! Helpers of the file WAL's tests: scratch directories, reading a WAL
//! back, and poking at segment files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nori_wal::Lsn;
use nori_wal::blocking::Wal;
use nori_wal::fs::Fs;

/// A fresh, empty scratch directory under the system temporary directory, removed
/// when dropped.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new scratch directory whose name starts with `name`.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self::under(&std::env::temp_dir(), name)
    }

    /// A new scratch directory in `root` whose name starts with `name`.
    #[must_use]
    pub fn under(root: &Path, name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = root.join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }

    /// The WAL directory inside it.
    #[must_use]
    pub fn wal(&self) -> PathBuf {
        self.0.join("wal")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every record of `wal` from its first LSN, as (LSN, raw payload or
/// `key=value` bytes).
///
/// # Panics
///
/// When reading fails.
#[must_use]
pub fn read_all<S: Fs>(wal: &Wal<S>) -> Vec<(Lsn, Vec<u8>)> {
    try_read_all(wal).expect("read the WAL back")
}

/// As [`read_all`], returning the error.
///
/// # Errors
///
/// The WAL's.
pub fn try_read_all<S: Fs>(wal: &Wal<S>) -> Result<Vec<(Lsn, Vec<u8>)>, nori_wal::Error> {
    let mut out = Vec::new();
    let mut iter = wal.iter()?;
    while let Some(entry) = iter.try_next()? {
        out.push((entry.lsn, payload(&entry.record)));
    }
    Ok(out)
}

/// The bytes a test compares for a record: its raw payload, or key and
/// value joined by `=`.
#[must_use]
pub fn payload(record: &nori_wal::Record<'_>) -> Vec<u8> {
    if let Some(raw) = record.raw_payload() {
        return raw.to_vec();
    }
    let mut out = record.key().unwrap_or_default().to_vec();
    if let Some(value) = record.value() {
        out.push(b'=');
        out.extend_from_slice(value);
    }
    out
}

/// The segment files of a WAL directory, oldest first.
///
/// # Panics
///
/// When the directory cannot be read.
#[must_use]
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list the WAL directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

/// Flips bit `bit` of byte `offset` of `path`.
///
/// # Panics
///
/// When the file cannot be changed.
pub fn flip_bit(path: &Path, offset: u64, bit: u8) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).expect("open segment");
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).expect("read byte");
    byte[0] ^= 1 << bit;
    file.write_all_at(&byte, offset).expect("write byte");
}

/// Overwrites bytes of `path` at `offset`.
///
/// # Panics
///
/// When the file cannot be changed.
pub fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path).expect("open segment");
    file.write_all_at(bytes, offset).expect("write bytes");
}

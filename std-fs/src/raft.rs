//! The WAL as the log storage of a replicated log: openraft's
//! `RaftLogStorage` and `RaftLogReader` (the `storage-v2` API of openraft
//! 0.9) over the async [`Wal`](crate::Wal) (feature `openraft`).
//!
//! ```
//! use nori_wal::raft::LogStore;
//! use nori_wal::WalConfig;
//! use openraft::storage::RaftLogStorage;
//! # use std::io::Cursor;
//! # openraft::declare_raft_types!(pub Config: D = u64, R = ());
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("nori-wal-raft-doc-{}", std::process::id()));
//! let mut store = LogStore::<Config>::open(WalConfig::new(&dir)).await?;
//! store.save_vote(&openraft::Vote::new(1, 7)).await?;
//! assert_eq!(store.read_vote().await?, Some(openraft::Vote::new(1, 7)));
//! // Give `store` to `openraft::Raft::new` with a state machine and a network.
//! # drop(store); std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! # What is durable when
//!
//! - **Entries.** Entry `i` is the WAL's record at LSN `i`, one record per
//!   entry (so that a Raft truncation may fall between any two entries),
//!   encoded with postcard. `append` writes them and returns at once; the
//!   callback openraft gives it is called once they are durable, through
//!   the WAL's group commit (a task waits for it; no thread per call).
//!   Under [`FsyncPolicy::Always`] the WAL's background thread syncs at
//!   once; under [`FsyncPolicy::Batch`] the sync comes within the window.
//!   [`FsyncPolicy::Os`] is refused: it would acknowledge entries no sync
//!   made durable.
//! - **The vote and the last purged log id** are kept beside the entries,
//!   in the file `raft-state` of the WAL's directory, written whole under a
//!   temporary name, synced, renamed over the old one and the directory
//!   synced, before the call returns. A crash at any point leaves the old
//!   file or the new one, never a mix.
//! - **The committed log id** (a hint: at start, openraft re-applies the
//!   entries up to it) is written in place in the file `raft-committed`,
//!   with a checksum and without a sync, each time it moves: a sync per
//!   commit would double the cost of a write. openraft saves it only once
//!   the entries up to it are durable in this log, so whatever a crash
//!   leaves of it is at most what the log holds: the value written last,
//!   an older one, or (torn, its checksum failing) none, which openraft
//!   takes as nothing to re-apply.
//! - **Truncation** (`truncate`) is the WAL's suffix cut
//!   ([`truncate_from`](crate::Wal::truncate_from)): durable, and a crash
//!   in it leaves a prefix of the entries.
//! - **Purge** records the purged log id first, then reclaims the entries
//!   up to it ([`truncate_before`](crate::Wal::truncate_before)) or, when
//!   it lies past the last entry (a snapshot installed), starts the log
//!   over after it ([`restart_at`](crate::Wal::restart_at)). A crash
//!   between the two is finished when the store opens again.
//!
//! A log holding holes (LSNs a repair declared lost) is refused: Raft
//! needs every index.

use std::fmt::{self, Debug};
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{
    AnyError, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, RaftTypeConfig, StorageError,
    StorageIOError, Vote,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{FsyncPolicy, Lsn, Record, WalConfig};

/// The file of the WAL's directory that keeps the vote and the last
/// purged log id.
pub const STATE_FILE: &str = "raft-state";

/// The file of the WAL's directory that keeps the committed log id.
pub const COMMITTED_FILE: &str = "raft-committed";

/// The state files' first bytes and their format version.
const STATE_MAGIC: [u8; 4] = *b"NWRS";
const COMMITTED_MAGIC: [u8; 4] = *b"NWRC";
const STATE_VERSION: u8 = 1;

/// What the state file keeps: the vote, the last purged log id.
type Saved<NID> = (Option<Vote<NID>>, Option<LogId<NID>>);

/// What went wrong in the log storage. Inside openraft's calls it becomes
/// openraft's `StorageError`, with this as its source.
///
/// ```
/// use nori_wal::raft::Error;
/// let e = Error::NotContiguous { index: 9, next: 7 };
/// assert!(e.to_string().contains("index 9"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The WAL's own error.
    Wal(crate::Error),
    /// The state file could not be read or written.
    State {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The state file is damaged (its checksum or encoding fails) or was
    /// written by a newer version.
    StateDamaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// [`FsyncPolicy::Os`] was configured: a Raft log must be durable
    /// before it acknowledges entries.
    NotDurable,
    /// The log holds holes (LSNs declared lost by a repair); Raft needs
    /// every index.
    Holes {
        /// How many LSNs were declared lost.
        lsns: u64,
    },
    /// An entry could not be encoded, or the record at `index` could not be
    /// decoded as one.
    Codec {
        /// The entry's index.
        index: u64,
        /// The codec's message.
        reason: String,
    },
    /// Entries must follow the last one: `index` was given where `next`
    /// was expected.
    NotContiguous {
        /// The index given.
        index: u64,
        /// The index expected.
        next: u64,
    },
    /// The entry read at `index` says it is another index, or the log skips
    /// from `index` to `found`.
    Inconsistent {
        /// The index expected.
        index: u64,
        /// The index found.
        found: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Wal(e) => write!(f, "{e}"),
            Self::State { op, path, source } => {
                write!(f, "cannot {op} the Raft state file {}: {source}", path.display())
            }
            Self::StateDamaged { path, reason } => write!(
                f,
                "the Raft state file {} is damaged ({reason}): restore it from a backup, or rebuild the node",
                path.display()
            ),
            Self::NotDurable => write!(
                f,
                "FsyncPolicy::Os acknowledges entries before they are durable, which Raft forbids: \
                 configure FsyncPolicy::Always or FsyncPolicy::Batch"
            ),
            Self::Holes { lsns } => write!(
                f,
                "the log holds holes ({lsns} LSNs declared lost by a repair), and Raft needs every index: \
                 rebuild this node from a snapshot of the cluster"
            ),
            Self::Codec { index, reason } => {
                write!(f, "entry {index} cannot be encoded or decoded: {reason}")
            }
            Self::NotContiguous { index, next } => {
                write!(f, "entry index {index} appended where index {next} was expected")
            }
            Self::Inconsistent { index, found } => {
                write!(f, "the log holds index {found} where index {index} was expected")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Wal(e) => Some(e),
            Self::State { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<crate::Error> for Error {
    fn from(e: crate::Error) -> Self {
        Self::Wal(e)
    }
}

/// `e` as openraft's error about `subject`, done while `verb`ing.
fn storage_error<NID: openraft::NodeId>(
    subject: ErrorSubject<NID>,
    verb: ErrorVerb,
    e: &Error,
) -> StorageError<NID> {
    StorageIOError::new(subject, verb, AnyError::new(e)).into()
}

/// Work moved to tokio's blocking pool (file reads and writes).
async fn blocking<T: Send + 'static>(
    op: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(op).await.map_err(|e| {
        Error::Wal(crate::Error::Io {
            op: "run",
            path: PathBuf::new(),
            source: io::Error::other(format!("a nori-wal task failed: {e}")),
        })
    })?
}

/// The log storage of one Raft node: openraft's `RaftLogStorage` over a
/// [`Wal`](crate::Wal). Cloning it gives a reader of the same log (what
/// `get_log_reader` returns), which reads while appends go on.
///
/// ```
/// use nori_wal::raft::LogStore;
/// use nori_wal::{FsyncPolicy, WalConfig};
/// # use std::io::Cursor;
/// # openraft::declare_raft_types!(pub Config: D = u64, R = ());
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("nori-wal-raft-store-doc-{}", std::process::id()));
/// let refused = LogStore::<Config>::open(WalConfig::new(&dir).fsync(FsyncPolicy::Os)).await;
/// assert!(matches!(refused, Err(nori_wal::raft::Error::NotDurable)));
/// # let _ = std::fs::remove_dir_all(&dir);
/// # Ok(())
/// # }
/// ```
pub struct LogStore<C: RaftTypeConfig> {
    shared: Arc<Shared<C>>,
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<C: RaftTypeConfig> Debug for LogStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStore").field("dir", &self.shared.dir).finish_non_exhaustive()
    }
}

struct Shared<C: RaftTypeConfig> {
    wal: crate::Wal,
    dir: PathBuf,
    file_mode: u32,
    state: Mutex<State<C::NodeId>>,
    /// The newest entries appended, for readers: replication reads the
    /// log's tail, which the WAL would find only by walking its segment.
    tail: Mutex<Tail<C::Entry>>,
    /// Held while the state file is written: one writer at a time.
    writing: tokio::sync::Mutex<()>,
    /// The committed file, open for writing in place (one writer at a
    /// time).
    committed: Arc<tokio::sync::Mutex<Option<std::fs::File>>>,
}

/// Entries kept in the tail cache at most, and their encoded bytes.
const TAIL_ENTRIES: usize = 8192;
const TAIL_BYTES: usize = 16 << 20;

/// The newest entries appended, in order from index `first`, with their
/// encoded sizes.
struct Tail<E> {
    first: Lsn,
    entries: std::collections::VecDeque<(E, usize)>,
    bytes: usize,
}

impl<E: Clone> Tail<E> {
    /// Keeps `entry` (index `index`, `size` bytes encoded) after the
    /// others; a gap before it (the log started over) empties the cache
    /// first.
    fn push(&mut self, index: Lsn, entry: E, size: usize) {
        if self.first + self.entries.len() as u64 != index {
            self.clear(index);
        }
        self.entries.push_back((entry, size));
        self.bytes += size;
        while self.entries.len() > TAIL_ENTRIES || self.bytes > TAIL_BYTES {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((_, size)) = self.entries.pop_front() {
            self.bytes -= size;
            self.first += 1;
        }
    }

    fn clear(&mut self, first: Lsn) {
        (self.first, self.bytes) = (first, 0);
        self.entries.clear();
    }

    /// Drops the entries at and after `index`.
    fn truncate_from(&mut self, index: Lsn) {
        if index <= self.first {
            self.clear(index);
            return;
        }
        while self.first + self.entries.len() as u64 > index {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes -= size;
            }
        }
    }

    /// Drops the entries before `index`.
    fn purge_to(&mut self, index: Lsn) {
        while self.first < index && !self.entries.is_empty() {
            self.pop_front();
        }
    }

    /// The entries `start..end` when the cache holds them from `start` on,
    /// and where the cached ones begin.
    fn get(&self, start: Lsn, end: Lsn) -> (Lsn, Vec<E>) {
        let from = start.max(self.first);
        let to = end.min(self.first + self.entries.len() as u64);
        if from >= to {
            return (end, Vec::new());
        }
        let entries = self.entries.range((from - self.first) as usize..(to - self.first) as usize);
        (from, entries.map(|(e, _)| e.clone()).collect())
    }
}

/// The saved state, and the id of the last entry the WAL holds.
#[derive(Clone)]
struct State<NID: openraft::NodeId> {
    vote: Option<Vote<NID>>,
    committed: Option<LogId<NID>>,
    purged: Option<LogId<NID>>,
    last: Option<LogId<NID>>,
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    /// Opens (creating if needed) the log storage in `config.dir`: the WAL
    /// and the state file beside its segments. Finishes a purge that a
    /// crash interrupted.
    ///
    /// ```
    /// use nori_wal::raft::LogStore;
    /// use nori_wal::WalConfig;
    /// # use std::io::Cursor;
    /// # openraft::declare_raft_types!(pub Config: D = u64, R = ());
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-raft-open-doc-{}", std::process::id()));
    /// let store = LogStore::<Config>::open(WalConfig::new(&dir)).await?;
    /// assert_eq!(store.wal().next_lsn(), 0);
    /// # drop(store); std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotDurable`] under [`FsyncPolicy::Os`]; [`Error::Holes`] for
    /// a log with holes; [`Error::Wal`] when the WAL does not open;
    /// [`Error::State`] and [`Error::StateDamaged`] for the state file;
    /// [`Error::Codec`] when the last entry does not decode.
    pub async fn open(config: WalConfig) -> Result<Self, Error> {
        if config.fsync == FsyncPolicy::Os {
            return Err(Error::NotDurable);
        }
        let (dir, file_mode) = (config.dir.clone(), config.file_mode);
        let (wal, info) = crate::Wal::open(config).await?;
        if info.holes > 0 {
            return Err(Error::Holes { lsns: info.holes });
        }
        let (path, at) = (dir.join(STATE_FILE), dir.join(COMMITTED_FILE));
        let (vote, purged) = blocking(move || read_state::<C::NodeId>(&path)).await?;
        let committed = blocking(move || Ok(read_committed::<C::NodeId>(&at))).await?;
        // A purge recorded but not carried out (a crash in between).
        if let Some(keep) = purged.as_ref().map(|p| p.index + 1) {
            if keep > wal.next_lsn() {
                wal.restart_at(keep).await?;
            } else if keep > wal.first_lsn() {
                wal.truncate_before(keep).await?;
            }
        }
        let state = State { vote, committed, purged, last: None };
        let store = Self {
            shared: Arc::new(Shared {
                wal,
                dir,
                file_mode,
                state: Mutex::new(state),
                tail: Mutex::new(Tail { first: 0, entries: std::collections::VecDeque::new(), bytes: 0 }),
                writing: tokio::sync::Mutex::new(()),
                committed: Arc::new(tokio::sync::Mutex::new(None)),
            }),
        };
        let last = store.last_in_wal().await?;
        store.lock().last = last;
        Ok(store)
    }

    /// The WAL underneath, for its figures ([`Wal::stats`](crate::Wal::stats),
    /// [`next_lsn`](crate::Wal::next_lsn)). Writing to it directly breaks
    /// the log's mapping of indexes to LSNs.
    ///
    /// ```
    /// # use nori_wal::raft::LogStore;
    /// # use nori_wal::WalConfig;
    /// # use std::io::Cursor;
    /// # openraft::declare_raft_types!(pub Config: D = u64, R = ());
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-raft-wal-doc-{}", std::process::id()));
    /// # let store = LogStore::<Config>::open(WalConfig::new(&dir)).await?;
    /// println!("{} bytes written", store.wal().stats().bytes_written);
    /// # drop(store); std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn wal(&self) -> &crate::Wal {
        &self.shared.wal
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<C::NodeId>> {
        self.shared.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The id of the last entry the WAL holds, read back.
    async fn last_in_wal(&self) -> Result<Option<LogId<C::NodeId>>, Error> {
        let (first, next) = (self.wal().first_lsn(), self.wal().next_lsn());
        if first == next {
            return Ok(None);
        }
        let entries = self.read(next - 1, next).await?;
        Ok(entries.last().map(|e| e.get_log_id().clone()))
    }

    /// The entries from `start` to `end` (within the log): the newest from
    /// the tail cache, the others from the WAL.
    async fn read(&self, start: Lsn, end: Lsn) -> Result<Vec<C::Entry>, Error> {
        if start >= end {
            return Ok(Vec::new());
        }
        let (cached_from, cached) = self.tail().get(start, end);
        let older_end = if cached.is_empty() { end } else { cached_from };
        let mut entries = if start < older_end {
            let wal = self.shared.wal.shared_wal();
            blocking(move || read_entries::<C>(&wal, start, older_end)).await?
        } else {
            Vec::new()
        };
        // The cached entries follow only a whole older part (a shorter one
        // means the log changed under the reader: what it holds is kept).
        if entries.len() as u64 == older_end - start {
            entries.extend(cached);
        }
        Ok(entries)
    }

    fn tail(&self) -> std::sync::MutexGuard<'_, Tail<C::Entry>> {
        self.shared.tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the state file with `change` made to the state, and keeps it.
    async fn save(&self, change: impl FnOnce(&mut State<C::NodeId>)) -> Result<(), Error> {
        let _writing = self.shared.writing.lock().await;
        let mut state = self.lock().clone();
        change(&mut state);
        let saved: Saved<C::NodeId> = (state.vote, state.purged);
        let bytes = encode_state(&saved)?;
        let (dir, mode) = (self.shared.dir.clone(), self.shared.file_mode);
        blocking(move || write_state(&dir, &bytes, mode)).await?;
        let mut kept = self.lock();
        (kept.vote, kept.purged) = saved;
        Ok(())
    }
}

/// The entries at LSNs `start..end` of `wal`, checked to be the entries of
/// those indexes.
fn read_entries<C>(wal: &crate::blocking::Wal, start: Lsn, end: Lsn) -> Result<Vec<C::Entry>, Error>
where
    C: RaftTypeConfig,
    C::Entry: DeserializeOwned,
{
    let mut out = Vec::with_capacity(usize::try_from(end.saturating_sub(start)).unwrap_or(0).min(4096));
    if start >= end {
        return Ok(out);
    }
    let mut iter = wal.iter_from(start)?;
    let mut index = start;
    while index < end {
        let Some(entry) = iter.try_next()? else { break };
        if entry.lsn != index {
            return Err(Error::Inconsistent { index, found: entry.lsn });
        }
        let bytes = entry.record.raw_payload().ok_or_else(|| Error::Codec {
            index,
            reason: "the record is not an entry written by this store".into(),
        })?;
        let decoded: C::Entry =
            postcard::from_bytes(bytes).map_err(|e| Error::Codec { index, reason: e.to_string() })?;
        if decoded.get_log_id().index != index {
            return Err(Error::Inconsistent { index, found: decoded.get_log_id().index });
        }
        out.push(decoded);
        index += 1;
    }
    Ok(out)
}

/// The state file's bytes.
fn encode_state<NID: openraft::NodeId>(saved: &Saved<NID>) -> Result<Vec<u8>, Error> {
    encode_with(STATE_MAGIC, saved)
}

/// `value` framed as the state files are: magic, version, length,
/// postcard, CRC32C.
fn encode_with(magic: [u8; 4], value: &impl Serialize) -> Result<Vec<u8>, Error> {
    let codec = |reason: String| Error::Codec { index: 0, reason };
    let body = postcard::to_stdvec(value).map_err(|e| codec(e.to_string()))?;
    let len = u32::try_from(body.len()).map_err(|_| codec("state too large".into()))?;
    let mut bytes = Vec::with_capacity(body.len() + 13);
    bytes.extend_from_slice(&magic);
    bytes.push(STATE_VERSION);
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(&body);
    let crc = nori_wal_core::crc::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    Ok(bytes)
}

/// The saved state in the file at `path`; nothing saved when it does not
/// exist.
fn read_state<NID: openraft::NodeId>(path: &Path) -> Result<Saved<NID>, Error> {
    let bytes = match read_no_follow(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((None, None)),
        Err(source) => return Err(Error::State { op: "read", path: path.to_path_buf(), source }),
    };
    decode_with(STATE_MAGIC, &bytes, true)
        .map_err(|reason| Error::StateDamaged { path: path.to_path_buf(), reason })
}

/// The committed log id in the file at `path`: none when it is missing,
/// unreadable or torn (written in place without a sync, a crash may tear
/// it; the checksum tells).
fn read_committed<NID: openraft::NodeId>(path: &Path) -> Option<LogId<NID>> {
    let bytes = read_no_follow(path).ok()?;
    decode_with(COMMITTED_MAGIC, &bytes, false).ok().flatten()
}

/// The value framed by [`encode_with`] at the start of `bytes` (`whole`:
/// and nothing after it), or what is wrong with it.
fn decode_with<T: DeserializeOwned>(magic: [u8; 4], bytes: &[u8], whole: bool) -> Result<T, String> {
    if bytes.len() < 13 || bytes[..4] != magic {
        return Err("not a Raft state file of this kind".into());
    }
    if bytes[4] != STATE_VERSION {
        return Err(format!("format version {}, this build reads {STATE_VERSION}", bytes[4]));
    }
    let len = u32::from_le_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) as usize;
    if bytes.len() < 13 + len || whole && bytes.len() != 13 + len {
        return Err("its length disagrees with the length it records".into());
    }
    let (covered, rest) = bytes.split_at(9 + len);
    if nori_wal_core::crc::crc32c(covered) != u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) {
        return Err("its checksum fails".into());
    }
    postcard::from_bytes(&covered[9..]).map_err(|e| e.to_string())
}

/// Reads `path` whole, refusing a link in its place.
fn read_no_follow(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    let mut bytes = Vec::new();
    options.open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Writes `bytes` at the start of the file at `path` (opened once, kept in
/// `file`), without a sync.
fn write_in_place(
    file: &mut Option<std::fs::File>,
    path: &Path,
    bytes: &[u8],
    mode: u32,
) -> Result<(), Error> {
    let fail = |op: &'static str| move |source| Error::State { op, path: path.to_path_buf(), source };
    if file.is_none() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode).custom_flags(libc::O_NOFOLLOW);
        }
        #[cfg(not(unix))]
        let _ = mode;
        *file = Some(options.open(path).map_err(fail("open"))?);
    }
    use std::io::{Seek, Write};
    let Some(mut file) = file.as_ref() else { return Ok(()) };
    file.seek(io::SeekFrom::Start(0)).and_then(|_| file.write_all(bytes)).map_err(fail("write"))
}

/// Replaces the state file of `dir` by `bytes`: written under a temporary
/// name, synced, renamed over it, the directory synced.
fn write_state(dir: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    use std::io::Write;
    let (tmp, path) = (dir.join(format!("{STATE_FILE}.tmp")), dir.join(STATE_FILE));
    let fail = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::State { op, path, source }
    };
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(fail("remove", &tmp)(e)),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(fail("create", &tmp))?;
    file.write_all(bytes).map_err(fail("write", &tmp))?;
    file.sync_data().map_err(fail("sync", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(fail("rename", &tmp))?;
    crate::fs::Fs::sync_dir(&crate::fs::StdFs, dir).map_err(fail("sync", dir))
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        let (first, next) = (self.wal().first_lsn(), self.wal().next_lsn());
        self.read(start.max(first), end.min(next))
            .await
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let state = self.lock().clone();
        let last_log_id = state.last.or_else(|| state.purged.clone());
        Ok(LogState { last_purged_log_id: state.purged, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let vote = vote.clone();
        self.save(|s| s.vote = Some(vote))
            .await
            .map_err(|e| storage_error(ErrorSubject::Vote, ErrorVerb::Write, &e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.lock().vote.clone())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        if self.lock().committed == committed {
            return Ok(());
        }
        let fail = |e: Error| storage_error(ErrorSubject::Store, ErrorVerb::Write, &e);
        let bytes = encode_with(COMMITTED_MAGIC, &committed).map_err(fail)?;
        let (file, path) = (Arc::clone(&self.shared.committed), self.shared.dir.join(COMMITTED_FILE));
        let mode = self.shared.file_mode;
        let mut file = file.lock_owned().await;
        blocking(move || write_in_place(&mut file, &path, &bytes, mode)).await.map_err(fail)?;
        self.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.lock().committed.clone())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut end = None;
        let purged = self.lock().purged.as_ref().map(|p| p.index);
        for entry in entries {
            let log_id = entry.get_log_id().clone();
            // At or below the purge point an entry is in the state machine
            // already, and never read again: there is nothing to keep.
            if purged.is_some_and(|p| log_id.index <= p) {
                continue;
            }
            let wrote = self.append_one(&entry).await;
            let lsn =
                wrote.map_err(|e| storage_error(ErrorSubject::Log(log_id.clone()), ErrorVerb::Write, &e))?;
            self.lock().last = Some(log_id);
            end = Some(lsn + 1);
        }
        match end {
            None => callback.log_io_completed(Ok(())),
            Some(end) => {
                // The callback once the entries are durable: a task waits on
                // the group commit; no thread is held.
                let shared = Arc::clone(&self.shared);
                drop(tokio::spawn(async move {
                    let durable = shared.wal.settle_appended(end).await;
                    callback.log_io_completed(durable.map_err(io::Error::other));
                }));
            }
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let fail = |e: Error| storage_error(ErrorSubject::Logs, ErrorVerb::Delete, &e);
        let (first, next) = (self.wal().first_lsn(), self.wal().next_lsn());
        let from = log_id.index.max(first);
        if from >= next {
            return Ok(());
        }
        self.wal().truncate_from(from).await.map_err(|e| fail(e.into()))?;
        self.tail().truncate_from(from);
        let last = if from > first { self.last_in_wal().await.map_err(fail)? } else { None };
        self.lock().last = last;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let fail = |e: Error| storage_error(ErrorSubject::Logs, ErrorVerb::Delete, &e);
        if self.lock().purged.as_ref().is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        // The purge point first: a crash before the WAL is cut leaves
        // entries that `open` reclaims.
        let keep = log_id.index + 1;
        self.save(|s| s.purged = Some(log_id)).await.map_err(fail)?;
        self.tail().purge_to(keep);
        if keep > self.wal().next_lsn() {
            self.wal().restart_at(keep).await.map_err(|e| fail(e.into()))?;
            self.lock().last = None;
        } else if keep > self.wal().first_lsn() {
            self.wal().truncate_before(keep).await.map_err(|e| fail(e.into()))?;
            if keep == self.wal().next_lsn() {
                self.lock().last = None;
            }
        }
        Ok(())
    }
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    /// Appends one entry at the LSN of its index; starts an empty log over
    /// at it.
    async fn append_one(&self, entry: &C::Entry) -> Result<Lsn, Error> {
        let index = entry.get_log_id().index;
        let (first, next) = (self.wal().first_lsn(), self.wal().next_lsn());
        if index != next {
            if first == next && index > next {
                self.wal().restart_at(index).await?;
                self.tail().clear(index);
            } else {
                return Err(Error::NotContiguous { index, next });
            }
        }
        let bytes = postcard::to_stdvec(entry).map_err(|e| Error::Codec { index, reason: e.to_string() })?;
        let lsn = self.shared.wal.append_unsettled(&Record::raw(&bytes)).await?;
        if lsn != index {
            return Err(Error::Inconsistent { index, found: lsn });
        }
        self.tail().push(index, entry.clone(), bytes.len());
        Ok(lsn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_bytes_of_one_value_garbage_or_torn_never_decode() {
        let saved: Saved<u64> = (Some(Vote::new(3, 1)), None);
        let bytes = encode_state(&saved).unwrap();
        assert_eq!(decode_with::<Saved<u64>>(STATE_MAGIC, &bytes, true).unwrap(), saved);
        let garbage: Vec<u8> = (0..64u32).map(|i| (i.wrapping_mul(151) >> 2) as u8).collect();
        for bad in [vec![0u8; 64], vec![0xFF; 64], garbage, Vec::new()] {
            assert!(decode_with::<Saved<u64>>(STATE_MAGIC, &bad, true).is_err());
        }
        for cut in 0..bytes.len() {
            assert!(decode_with::<Saved<u64>>(STATE_MAGIC, &bytes[..cut], true).is_err(), "cut at {cut}");
        }
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x10;
            assert!(decode_with::<Saved<u64>>(STATE_MAGIC, &flipped, true).is_err(), "flip at {at}");
        }
        // The committed file is written in place: a longer old value may
        // follow the new one, and is ignored; the other file's magic is not.
        let committed = encode_with(COMMITTED_MAGIC, &Some(LogId::<u64>::default())).unwrap();
        let mut longer = committed.clone();
        longer.extend_from_slice(&[0xAB; 9]);
        assert!(decode_with::<Option<LogId<u64>>>(COMMITTED_MAGIC, &longer, false).unwrap().is_some());
        assert!(decode_with::<Option<LogId<u64>>>(STATE_MAGIC, &committed, false).is_err());
    }

    #[test]
    fn the_tail_cache_follows_appends_cuts_and_purges() {
        let mut tail = Tail { first: 0, entries: std::collections::VecDeque::new(), bytes: 0 };
        for i in 5..15u64 {
            tail.push(i, i, 10);
        }
        assert_eq!(tail.get(0, 100), (5, (5..15).collect::<Vec<_>>()));
        assert_eq!(tail.get(7, 9), (7, vec![7, 8]));
        assert_eq!(tail.get(0, 5), (5, vec![]));
        tail.truncate_from(12);
        tail.purge_to(8);
        assert_eq!((tail.get(0, 100), tail.bytes), ((8, vec![8, 9, 10, 11]), 40));
        // A gap (the log started over): only the new entry is kept.
        tail.push(40, 40, 10);
        assert_eq!((tail.get(0, 100), tail.bytes), ((40, vec![40]), 10));
        // Bounded by bytes: the oldest go first.
        for i in 41..41 + (TAIL_BYTES / (1 << 20)) as u64 + 2 {
            tail.push(i, i, 1 << 20);
        }
        assert!(tail.bytes <= TAIL_BYTES && tail.first > 40);
        tail.truncate_from(0);
        assert_eq!((tail.get(0, u64::MAX), tail.bytes), ((u64::MAX, vec![]), 0));
    }
}

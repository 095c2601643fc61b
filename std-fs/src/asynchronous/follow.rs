//! The async follower: [`Follower`] on tokio.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{EntryBuf, RecordBuf, task_failed};
use crate::fs::{Fs, StdFs};
use crate::wal::{self, Error, FollowConfig};

type Result<T> = std::result::Result<T, Error>;

/// Records read per hop to the blocking pool, at most.
const BATCH: usize = 1024;

/// How long one hop waits for a new record before it returns empty.
const HOP_WAIT: Duration = Duration::from_millis(500);

/// A batch read on the blocking pool, and the error that ended it early.
type Batch = (Vec<EntryBuf>, Option<Error>);

/// Follows a WAL that a writer (in this process or another) appends to:
/// the async face of [`blocking::Follower`](crate::blocking::Follower),
/// which says what a follower returns, reports and never does.
///
/// Records are read on tokio's blocking pool, up to 1 024 per hop; a wait
/// for new records holds a thread of that pool for at most half a second
/// per hop. Cancelling [`next`](Self::next) loses nothing: a read under way
/// is taken up by the next call.
///
/// ```
/// use nori_wal::{FollowConfig, Follower, Record, Wal, WalConfig};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("nori-wal-async-follow-doc-{}", std::process::id()));
/// let (wal, _) = Wal::open(WalConfig::new(&dir)).await?; // the writer (usually another process)
/// let mut follower = Follower::open(FollowConfig::new(&dir)).await?;
/// wal.append(&Record::raw(b"hello")).await?;
/// let entry = follower.next().await?; // waits for the writer
/// assert_eq!((entry.lsn, entry.record.as_record()), (0, Record::raw(b"hello")));
/// # wal.close().await?; drop(follower); std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
pub struct Follower<S: Fs = StdFs> {
    follower: Option<wal::Follower<S>>,
    ready: VecDeque<EntryBuf>,
    error: Option<Error>,
    pending: Option<JoinHandle<(wal::Follower<S>, Batch)>>,
    /// The reader's position after the last batch (it is away on the
    /// blocking pool while a batch is read).
    position: nori_wal_core::Lsn,
}

impl<S: Fs> std::fmt::Debug for Follower<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").field("ready", &self.ready.len()).finish_non_exhaustive()
    }
}

impl Follower<StdFs> {
    /// Starts following the WAL `config` names; see
    /// [`blocking::Follower::open`](crate::blocking::Follower::open).
    ///
    /// ```
    /// use nori_wal::{FollowConfig, Follower};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-async-follow-open-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let mut follower = Follower::open(FollowConfig::new(&dir)).await?; // no writer yet: it waits
    /// assert!(follower.try_next().await?.is_none());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`blocking::Follower::open`](crate::blocking::Follower::open).
    pub async fn open(config: FollowConfig) -> Result<Self> {
        Self::open_in(StdFs, config).await
    }
}

impl<S: Fs> Follower<S> {
    /// [`Follower::open`] on the file system `fs`.
    ///
    /// ```
    /// use nori_wal::fs::StdFs;
    /// use nori_wal::{FollowConfig, Follower};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-async-follow-in-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let follower = Follower::open_in(StdFs, FollowConfig::new(&dir)).await?;
    /// assert_eq!(follower.next_lsn(), 0);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Follower::open`].
    pub async fn open_in(fs: S, config: FollowConfig) -> Result<Self> {
        let follower = super::blocking(move || wal::Follower::open_in(fs, config)).await?;
        let position = follower.next_lsn();
        Ok(Self { follower: Some(follower), ready: VecDeque::new(), error: None, pending: None, position })
    }

    /// The LSN of the next record this follower returns.
    ///
    /// ```
    /// use nori_wal::{FollowConfig, Follower};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-async-follow-lsn-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let follower = Follower::open(FollowConfig::new(&dir).from(7)).await?;
    /// assert_eq!(follower.next_lsn(), 7);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn next_lsn(&self) -> nori_wal_core::Lsn {
        self.ready.front().map_or(self.position, |entry| entry.lsn)
    }

    /// The next record, waiting for the writer to append one.
    ///
    /// # Errors
    ///
    /// As [`blocking::Follower::try_next`](crate::blocking::Follower::try_next);
    /// after an error the next call goes on.
    pub async fn next(&mut self) -> Result<EntryBuf> {
        loop {
            if let Some(entry) = self.take()? {
                return Ok(entry);
            }
            self.fill(HOP_WAIT).await?;
        }
    }

    /// The next record if one is there now, or `None`.
    ///
    /// ```
    /// use nori_wal::{FollowConfig, Follower, Record, Wal, WalConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("nori-wal-async-follow-try-{}", std::process::id()));
    /// let (wal, _) = Wal::open(WalConfig::new(&dir)).await?;
    /// wal.append(&Record::raw(b"a")).await?;
    /// let mut follower = Follower::open(FollowConfig::new(&dir)).await?;
    /// assert_eq!(follower.try_next().await?.map(|e| e.lsn), Some(0));
    /// assert!(follower.try_next().await?.is_none());
    /// # wal.close().await?; std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`next`](Self::next).
    pub async fn try_next(&mut self) -> Result<Option<EntryBuf>> {
        if let Some(entry) = self.take()? {
            return Ok(Some(entry));
        }
        self.fill(Duration::ZERO).await?;
        self.take()
    }

    /// A record read and not yet returned, or the error that ended a batch.
    fn take(&mut self) -> Result<Option<EntryBuf>> {
        if let Some(entry) = self.ready.pop_front() {
            return Ok(Some(entry));
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Reads a batch on the blocking pool, waiting up to `wait` for its
    /// first record. A read under way (its caller cancelled) is awaited
    /// rather than started again.
    async fn fill(&mut self, wait: Duration) -> Result<()> {
        if self.pending.is_none() {
            let Some(mut follower) = self.follower.take() else {
                return Err(Error::Internal { what: "a follower's reader was lost with a failed task" });
            };
            self.pending = Some(tokio::task::spawn_blocking(move || {
                let batch = read_batch(&mut follower, wait);
                (follower, batch)
            }));
        }
        let Some(pending) = self.pending.as_mut() else { return Ok(()) };
        let joined = pending.await;
        self.pending = None;
        let (follower, (entries, error)) = joined.map_err(task_failed)?;
        self.position = follower.next_lsn();
        self.follower = Some(follower);
        self.ready.extend(entries);
        if error.is_some() {
            self.error = error;
        }
        Ok(())
    }
}

/// Up to [`BATCH`] records, waiting up to `wait` for the first.
fn read_batch<S: Fs>(follower: &mut wal::Follower<S>, wait: Duration) -> Batch {
    let mut out = Vec::new();
    let first = match follower.wait_next(wait) {
        Ok(entry) => entry.map(|e| EntryBuf { lsn: e.lsn, record: RecordBuf::from(&e.record) }),
        Err(e) => return (out, Some(e)),
    };
    let Some(first) = first else { return (out, None) };
    out.push(first);
    while out.len() < BATCH {
        match follower.try_next() {
            Ok(Some(e)) => out.push(EntryBuf { lsn: e.lsn, record: RecordBuf::from(&e.record) }),
            Ok(None) => break,
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

//! Following a WAL that another process writes: [`Follower`].

use std::path::PathBuf;
use std::time::Duration;

use nori_wal_core::format::{
    BATCH_ENTRIES_AT, Body, EpochKey, FrameKind, Malformed, Mark, Version, decode_frame_in, frame_header_len,
    frame_len_in, frame_len_of, record_at, v2,
};
use nori_wal_core::ring::Entry;
use nori_wal_core::ring::segment::Damage;
use nori_wal_core::{DecodeError, Lsn};

use super::error::{Corruption, Error};
use super::{compress, segment};
use crate::fs::{File, Fs, OpenMode, StdFs};

type Result<T> = std::result::Result<T, Error>;

/// Bytes read from a segment file at a time.
const CHUNK: usize = 1 << 20;

/// Bytes read at a time where the follower looks again at what it read.
const FRESH: usize = 64 << 10;

/// How long a follower waits before it reads a position again to confirm
/// damage, after it saw the writer past it.
const CONFIRM: Duration = Duration::from_millis(20);

/// What a [`Follower`] reads and how it waits.
///
/// ```
/// use std::time::Duration;
/// use nori_wal::wal::FollowConfig;
/// let config = FollowConfig::new("/var/lib/app/wal")
///     .from(1_000)
///     .durable_only(true)
///     .poll(Duration::from_millis(20));
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct FollowConfig {
    dir: PathBuf,
    from: Option<Lsn>,
    durable_only: bool,
    poll: Duration,
}

impl FollowConfig {
    /// Follows the WAL in `dir` from its first record, returning every
    /// record fully written, polling every 50 ms.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), from: None, durable_only: false, poll: Duration::from_millis(50) }
    }

    /// Starts at `lsn` instead of the log's first record.
    #[must_use]
    pub const fn from(mut self, lsn: Lsn) -> Self {
        self.from = Some(lsn);
        self
    }

    /// Returns only records that a mark of the writer shows durable (off by
    /// default).
    ///
    /// Off, a follower returns each record once it is fully written, which
    /// under `FsyncPolicy::Os` or `Batch` may be before it is durable: a
    /// power cut may then lose a record the follower returned (the writer's
    /// recovery cuts it, and new records take its LSN). On, a record is
    /// returned once a mark written after a sync covers it: the writer
    /// writes one ahead of the first frame after each sync, at the start of
    /// each segment and at a clean close, so the newest records show up
    /// when the writer next appends, rotates or closes.
    #[must_use]
    pub const fn durable_only(mut self, on: bool) -> Self {
        self.durable_only = on;
        self
    }

    /// How often [`Follower::wait_next`] looks for new records (50 ms by
    /// default). With the feature `notify`, a change in the directory wakes
    /// it sooner: this is then the fallback for a notification lost.
    #[must_use]
    pub const fn poll(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }
}

/// A segment file being read.
struct Seg<F> {
    path: PathBuf,
    base: Lsn,
    key: EpochKey,
    /// Where its frames end (its seal slot, in format version 2).
    size: u64,
    version: Version,
    file: F,
}

/// What a cursor found at its position.
enum Step {
    /// A frame of records: `count` of them from `first`, of `kind`; the
    /// payload is `chunk[payload]`, or the cursor's `plain` when it was
    /// compressed.
    Records { kind: FrameKind, payload: std::ops::Range<usize>, plain: bool, first: Lsn, count: u32 },
    /// A mark.
    Mark(Mark),
    /// Padding, stepped over.
    Padding,
    /// Nothing valid at the position (read afresh).
    Stop(Damage),
}

/// A position in one segment file and the bytes read there.
struct Cursor<F> {
    seg: Option<Seg<F>>,
    /// Offset of the next frame in the segment.
    pos: u64,
    /// The LSN expected at `pos`.
    at: Lsn,
    /// Bytes of the segment from `chunk_at`.
    chunk: Vec<u8>,
    chunk_at: u64,
    /// The decompressed payload of the last compressed frame.
    plain: Vec<u8>,
}

impl<F: File> Cursor<F> {
    fn new(seg: Option<Seg<F>>, at: Lsn) -> Self {
        let pos = seg.as_ref().map_or(0, |s| segment::frames_offset(s.version));
        Self { seg, pos, at, chunk: Vec::new(), chunk_at: 0, plain: Vec::new() }
    }

    /// Whether the next step reads from the file.
    fn needs_fill(&self) -> bool {
        self.seg.is_some()
            && (self.pos < self.chunk_at
                || self.pos + frame_len_of(Version::V1, 0) > self.chunk_at + self.chunk.len() as u64)
    }

    /// Makes `chunk` hold the segment's bytes `[pos, pos + need)` (as far
    /// as the segment goes), reading afresh when `fresh` or when they are
    /// not there; bytes past the end of the file read as zeros.
    fn fill(&mut self, need: usize, fresh: bool) -> Result<()> {
        let Some(seg) = &self.seg else { return Ok(()) };
        let have = self.chunk_at + self.chunk.len() as u64;
        if !fresh && self.pos >= self.chunk_at && self.pos + need as u64 <= have {
            return Ok(());
        }
        let left = seg.size.saturating_sub(self.pos);
        // A fresh read looks again at where the writer was: a little is
        // enough, and keeps a follower waiting at the end cheap.
        let len = (need.max(if fresh { FRESH } else { CHUNK }) as u64).min(left) as usize;
        self.chunk.clear();
        self.chunk.resize(len, 0);
        let mut done = 0;
        while done < len {
            match seg.file.read_at(&mut self.chunk[done..], self.pos + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read", &seg.path, e)),
            }
        }
        self.chunk_at = self.pos;
        Ok(())
    }

    /// Reads the frame at `pos` and steps past it when it is valid. An
    /// invalid one is read again from the file before it is reported, so
    /// that bytes read before the writer wrote them are never the answer.
    fn step(&mut self) -> Result<Step> {
        match self.try_step(false)? {
            Step::Stop(_) => self.try_step(true),
            step => Ok(step),
        }
    }

    fn try_step(&mut self, fresh: bool) -> Result<Step> {
        let Some(seg) = &self.seg else { return Ok(Step::Stop(Damage::MissingSegment)) };
        let (key, size, base, version) = (seg.key, seg.size, seg.base, seg.version);
        let needed = frame_len_of(version, 0);
        let available = size.saturating_sub(self.pos);
        if available < needed {
            return Ok(Step::Stop(Damage::Frame(DecodeError::Truncated { needed, available })));
        }
        let header_len = (frame_header_len(version) as u64).min(available) as usize;
        self.fill(header_len, fresh)?;
        let off = (self.pos - self.chunk_at) as usize;
        let len = match frame_len_in(version, &self.chunk[off..off + header_len], &key) {
            Ok(len) => len,
            Err(e) => return Ok(Step::Stop(Damage::Frame(e))),
        };
        // A frame longer than a chunk must also fit in the file as it is
        // now: a length that checks out by chance in garbage cannot make
        // the follower allocate what was never written.
        let written = if len > CHUNK {
            let seg = self.seg.as_ref().map(|s| (&s.file, &s.path));
            match seg {
                Some((file, path)) => {
                    file.size().map_err(|e| Error::io("size", path, e))?.saturating_sub(self.pos)
                }
                None => 0,
            }
        } else {
            available
        };
        if len as u64 > available.min(written) {
            let (frame_len, available) = (len as u64, available.min(written));
            return Ok(Step::Stop(Damage::Frame(DecodeError::LengthOutOfBounds { frame_len, available })));
        }
        self.fill(len, false)?;
        let off = (self.pos - self.chunk_at) as usize;
        let frame = match decode_frame_in(version, &self.chunk[off..off + len], &key, base, self.at) {
            Ok(frame) => frame,
            Err(e) => return Ok(Step::Stop(Damage::Frame(e))),
        };
        let (first, kind) = (frame.first_lsn(), frame.kind());
        let payload = off + frame.header_len()..off + len;
        let (kind, count, plain) = match frame.compressed() {
            Err(e) => return Ok(Step::Stop(Damage::Frame(e))),
            Ok(None) => match frame.body() {
                Ok(Body::Mark(mark)) => {
                    self.pos += len as u64;
                    return Ok(Step::Mark(mark));
                }
                Ok(Body::Padding) => {
                    self.pos += len as u64;
                    return Ok(Step::Padding);
                }
                // Declared lost by a repair: its LSNs are stepped over.
                Ok(Body::Hole { count }) => {
                    self.pos += len as u64;
                    self.at = first + u64::from(count);
                    return Ok(Step::Padding);
                }
                Ok(Body::Seal(_)) => {
                    let reason = Malformed::MisplacedFrame;
                    return Ok(Step::Stop(Damage::Frame(DecodeError::MalformedBody { reason })));
                }
                Ok(body) => (kind, body.record_count(), false),
                Err(e) => return Ok(Step::Stop(Damage::Frame(e))),
            },
            Ok(Some(packed)) => {
                let plain_len = packed.uncompressed_len as usize;
                if plain_len as u64 > size {
                    let reason = Malformed::UncompressedTooLarge;
                    return Ok(Step::Stop(Damage::Frame(DecodeError::MalformedBody { reason })));
                }
                if let Err(e) = compress::decompress(packed.codec, packed.data, plain_len, &mut self.plain) {
                    return Ok(Step::Stop(Damage::Frame(e)));
                }
                match Body::parse(kind, &self.plain) {
                    Ok(body) => (kind, body.record_count(), true),
                    Err(e) => return Ok(Step::Stop(Damage::Frame(e))),
                }
            }
        };
        if count == 0 {
            self.pos += len as u64;
            return Ok(Step::Padding);
        }
        if first != self.at {
            return Ok(Step::Stop(Damage::LsnMismatch { found: first }));
        }
        self.pos += len as u64;
        self.at = first + u64::from(count);
        let payload = if plain { 0..self.plain.len() } else { payload };
        Ok(Step::Records { kind, payload, plain, first, count })
    }

    /// The first valid frame after `pos` in the bytes read there (a fresh
    /// read, after a step that stopped): its offset and the LSN it starts
    /// at, when it is not below the one expected at `pos`. A frame checks
    /// out only under this segment's epoch, so it was written here.
    fn frame_after(&mut self) -> Result<Option<(u64, Lsn)>> {
        let Some(seg) = &self.seg else { return Ok(None) };
        if self.pos < self.chunk_at {
            return Ok(None);
        }
        let start = (self.pos - self.chunk_at) as usize;
        let bytes = &self.chunk[start.min(self.chunk.len())..];
        if seg.version == Version::V2 {
            // The frames' LSNs are bound, not stored: solved for, and each
            // candidate confirmed by the frame after it (FORMAT.md v2.3).
            let found = v2::find_after_damage(bytes, 0, &seg.key, self.at, None, 1);
            return Ok(found.map(|r| (self.pos + r.offset as u64, r.lsn)));
        }
        let header_len = frame_len_of(Version::V1, 0) as usize;
        for off in 1..bytes.len().saturating_sub(header_len) {
            let Ok(len) = frame_len_in(Version::V1, &bytes[off..off + header_len], &seg.key) else {
                continue;
            };
            let Some(frame) = bytes.get(off..off + len) else { continue };
            match decode_frame_in(Version::V1, frame, &seg.key, seg.base, self.at) {
                Ok(f) if f.first_lsn() >= self.at => return Ok(Some((self.pos + off as u64, f.first_lsn()))),
                _ => {}
            }
        }
        Ok(None)
    }

    /// Steps over frames until one does not check out: where the segment's
    /// frames end, and the LSN there.
    fn run_to_end(&mut self) -> Result<()> {
        while !matches!(self.step()?, Step::Stop(_)) {}
        Ok(())
    }
}

/// The frame whose records are being returned.
#[derive(Debug, Clone, Copy)]
struct Current {
    kind: FrameKind,
    plain: bool,
    start: usize,
    end: usize,
    first: Lsn,
    count: u32,
    next: u32,
    entry_at: usize,
}

/// What to do about a position where no valid frame is.
enum Verdict {
    /// Read on: the position moved (to the next segment, or after a cut).
    Moved,
    /// Nothing more for now.
    Wait,
    /// Report this; the position has moved past it.
    Report(Error),
}

/// Reads a WAL directory that a writer (in this process or another) is
/// appending to, from an LSN on, and waits for new records. It takes no
/// lock and changes nothing.
///
/// It returns every record that was fully written when read, in LSN order,
/// across rotations; with [`FollowConfig::durable_only`], only those the
/// writer has made durable. It never returns a torn or phantom record, and
/// never reports a write in flight as damage.
///
/// A reader in another process cannot take a consistent copy of a file
/// that is being written: a read may see a frame's first bytes and not its
/// last, or blank space where the writer's next bytes land a moment later.
/// So what a follower reads is a claim to settle, not a verdict:
///
/// - A frame that checks out (its header check and CRC) at the place its
///   LSN says is returned: it was fully written when read.
/// - Anything else at the follower's position (blank space, a torn or
///   damaged frame) is where the log ends *for now*, until the writer is
///   seen past it: a valid frame further on in the segment, or records in a
///   later one (the writer writes in LSN order, so what comes before them
///   was written first). Then the position is read again, twice, a moment
///   apart; if the frame is still not there, the damage is reported once
///   ([`Error::Corrupt`], at the LSN expected there) and the follower goes
///   on after it.
/// - Segments reclaimed below the follower (`truncate_before`) are reported
///   as [`Error::Reclaimed`]; a cut behind it (`truncate_after`) as
///   [`Error::Cut`]. Each says where the follower goes on.
///
/// It reads with `pread`, never through a map: a file that the writer
/// shortens or replaces cannot fault it (`SIGBUS`). It sees what the writer
/// has written to its files: under `FsyncPolicy::Os` the writer's buffer
/// holds the newest records until it fills, or until a sync or a rotation.
///
/// ```
/// use std::time::Duration;
/// use nori_wal::blocking::Wal;
/// use nori_wal::wal::{FollowConfig, Follower};
/// use nori_wal::{Record, WalConfig};
///
/// # let dir = std::env::temp_dir().join(format!("nori-wal-follow-doc-{}", std::process::id()));
/// let (wal, _) = Wal::open(WalConfig::new(&dir))?; // the writer (usually another process)
/// wal.append(&Record::raw(b"one"))?;
/// let mut follower = Follower::open(FollowConfig::new(&dir))?;
/// assert_eq!(follower.try_next()?.map(|e| e.lsn), Some(0));
/// assert!(follower.try_next()?.is_none(), "nothing more yet");
/// wal.append(&Record::raw(b"two"))?;
/// let entry = follower.wait_next(Duration::from_secs(5))?.expect("appended");
/// assert_eq!((entry.lsn, entry.record), (1, Record::raw(b"two")));
/// # drop(follower); drop(wal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Follower<S: Fs = StdFs> {
    fs: S,
    dir: PathBuf,
    config: FollowConfig,
    /// The lock file, for the log's start record.
    lock: Option<S::File>,
    cursor: Cursor<S::File>,
    /// The next LSN to return.
    lsn: Lsn,
    current: Option<Current>,
    /// The highest `durable_end` of the marks read.
    durable: Lsn,
    /// In durable-only mode, a second cursor that reads ahead for marks.
    ahead: Option<Cursor<S::File>>,
    /// Wakes a wait when the directory changes (feature `notify`).
    #[cfg(feature = "notify")]
    watch: Option<Watch>,
}

/// A watch of the WAL directory: a change wakes a waiting follower.
#[cfg(feature = "notify")]
struct Watch {
    _watcher: notify::RecommendedWatcher,
    changed: std::sync::mpsc::Receiver<()>,
}

#[cfg(feature = "notify")]
impl Watch {
    /// Watches `dir`; `None` where the system offers no watch (the
    /// follower then polls only).
    fn new(dir: &std::path::Path) -> Option<Self> {
        use notify::Watcher;
        // One pending wake-up is enough: a burst of writes wakes once.
        let (tx, changed) = std::sync::mpsc::sync_channel(1);
        let mut watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
            let _ = tx.try_send(());
        })
        .ok()?;
        watcher.watch(dir, notify::RecursiveMode::NonRecursive).ok()?;
        Some(Self { _watcher: watcher, changed })
    }
}

impl<S: Fs> std::fmt::Debug for Follower<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").field("dir", &self.dir).field("lsn", &self.lsn).finish_non_exhaustive()
    }
}

impl Follower<StdFs> {
    /// Starts following the WAL `config` names. The directory may be empty
    /// or not hold a segment yet: the follower waits for the writer.
    ///
    /// # Errors
    ///
    /// [`Error::NotADirectory`]; [`Error::Io`] when the directory cannot be
    /// read (a missing one included).
    pub fn open(config: FollowConfig) -> Result<Self> {
        Self::open_in(StdFs, config)
    }
}

impl<S: Fs> Follower<S> {
    /// [`Follower::open`] on the file system `fs`.
    ///
    /// # Errors
    ///
    /// As [`Follower::open`].
    pub fn open_in(fs: S, config: FollowConfig) -> Result<Self> {
        let dir = config.dir.clone();
        match fs.kind(&dir) {
            Ok(crate::fs::Kind::Dir) => {}
            Ok(_) => return Err(Error::NotADirectory { path: dir }),
            Err(e) => return Err(Error::io("open", &dir, e)),
        }
        let mut follower = Self {
            fs,
            dir,
            lock: None,
            cursor: Cursor::new(None, 0),
            lsn: 0,
            current: None,
            durable: 0,
            ahead: None,
            #[cfg(feature = "notify")]
            watch: None,
            config,
        };
        let segments = follower.list()?;
        let from = match follower.config.from {
            Some(lsn) => lsn,
            None => follower.log_start()?.max(segments.first().copied().unwrap_or(0)),
        };
        follower.lsn = from;
        follower.position(&segments, from)?;
        Ok(follower)
    }

    /// The next LSN this follower returns.
    #[must_use]
    pub const fn next_lsn(&self) -> Lsn {
        self.lsn
    }

    /// The next record if one is there now, or `None` when the follower has
    /// read everything written so far.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] for damage the writer is past (once; the follower
    /// then goes on at the next segment), [`Error::Reclaimed`] and
    /// [`Error::Cut`] for what the writer removed behind it (it goes on
    /// where each says); [`Error::Io`]. After an error, the next call goes
    /// on.
    pub fn try_next(&mut self) -> Result<Option<Entry<'_>>> {
        if !self.advance()? {
            return Ok(None);
        }
        self.take().map(Some)
    }

    /// The next record, waiting up to `timeout` for the writer to append
    /// one; `None` when none came.
    ///
    /// # Errors
    ///
    /// As [`try_next`](Self::try_next).
    pub fn wait_next(&mut self, timeout: Duration) -> Result<Option<Entry<'_>>> {
        let deadline = std::time::Instant::now() + timeout;
        while !self.advance()? {
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.pause(self.config.poll.min(deadline - now));
        }
        self.take().map(Some)
    }

    /// Waits up to `limit`, or until the directory changes.
    fn pause(&mut self, limit: Duration) {
        #[cfg(feature = "notify")]
        {
            if self.watch.is_none() {
                self.watch = Watch::new(&self.dir);
            }
            if let Some(watch) = &self.watch {
                let _ = watch.changed.recv_timeout(limit);
                return;
            }
        }
        std::thread::sleep(limit);
    }

    /// Moves to the next record to return; `false` when there is none for
    /// now.
    fn advance(&mut self) -> Result<bool> {
        loop {
            match self.current {
                Some(cur) if cur.next < cur.count => {
                    let lsn = cur.first + u64::from(cur.next);
                    if self.config.durable_only && lsn >= self.durable && !self.read_ahead(lsn)? {
                        return Ok(false);
                    }
                    if lsn >= self.lsn {
                        return Ok(true);
                    }
                    let entry_at = self.entry(&cur)?.1;
                    self.current = Some(Current { next: cur.next + 1, entry_at, ..cur });
                }
                _ => {
                    self.current = None;
                    if !self.next_frame()? {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Returns the record [`advance`](Self::advance) found.
    fn take(&mut self) -> Result<Entry<'_>> {
        let Some(cur) = self.current else { return Err(Error::Internal { what: "no record to take" }) };
        let lsn = cur.first + u64::from(cur.next);
        let entry_at = match record_at(cur.kind, self.payload(&cur), cur.entry_at) {
            Ok((_, entry_at)) => entry_at,
            Err(e) => {
                // A frame whose CRC checked out but whose body does not
                // parse: written so, not in flight.
                self.current = None;
                let c = self.corruption(lsn, Damage::Frame(e));
                return Err(self.skip_segment(c));
            }
        };
        self.current = Some(Current { next: cur.next + 1, entry_at, ..cur });
        self.lsn = lsn + 1;
        let bytes = if cur.plain { &self.cursor.plain } else { &self.cursor.chunk };
        let (record, _) = record_at(cur.kind, &bytes[cur.start..cur.end], cur.entry_at)
            .map_err(|_| Error::Internal { what: "a record parsed twice differently" })?;
        Ok(Entry { lsn, record })
    }

    fn payload(&self, cur: &Current) -> &[u8] {
        if cur.plain {
            &self.cursor.plain[cur.start..cur.end]
        } else {
            &self.cursor.chunk[cur.start..cur.end]
        }
    }

    fn entry(&self, cur: &Current) -> Result<(nori_wal_core::Record<'_>, usize)> {
        let lsn = cur.first + u64::from(cur.next);
        record_at(cur.kind, self.payload(cur), cur.entry_at)
            .map_err(|e| Error::Corrupt(self.corruption(lsn, Damage::Frame(e))))
    }

    fn corruption(&self, lsn: Lsn, damage: Damage) -> Corruption {
        let segment = self.cursor.seg.as_ref().map(|s| s.path.clone()).unwrap_or_default();
        Corruption { segment, offset: self.cursor.pos, lsn, damage }
    }

    /// Loads the next frame of records; `false` when there is none for now.
    fn next_frame(&mut self) -> Result<bool> {
        loop {
            if self.cursor.needs_fill() {
                // About to read new bytes: the writer may have moved the
                // log's start past the follower, or cut its file, meanwhile.
                match self.check_moved()? {
                    Verdict::Moved | Verdict::Wait => {}
                    Verdict::Report(e) => return Err(e),
                }
            }
            match self.cursor.step()? {
                Step::Records { kind, payload, plain, first, count } => {
                    self.current = Some(Current {
                        kind,
                        plain,
                        start: payload.start,
                        end: payload.end,
                        first,
                        count,
                        next: 0,
                        entry_at: BATCH_ENTRIES_AT,
                    });
                    return Ok(true);
                }
                Step::Mark(mark) => self.durable = self.durable.max(mark.durable_end),
                Step::Padding => {}
                Step::Stop(damage) => match self.settle(damage)? {
                    Verdict::Moved => {}
                    Verdict::Wait => return Ok(false),
                    Verdict::Report(e) => return Err(e),
                },
            }
        }
    }

    /// Whether the follower's position was reclaimed, or its file cut or
    /// replaced, behind it.
    fn check_moved(&mut self) -> Result<Verdict> {
        let start = self.log_start()?;
        if start > self.lsn {
            return Ok(Verdict::Report(self.reclaimed(start)));
        }
        if seg_file_changed(&self.cursor)? {
            let segments = self.list()?;
            return self.after_cut(&segments);
        }
        Ok(Verdict::Moved)
    }

    /// Decides what the position where no valid frame is means.
    fn settle(&mut self, damage: Damage) -> Result<Verdict> {
        // Reclaimed below the follower?
        let start = self.log_start()?;
        if start > self.cursor.at.max(self.lsn) {
            return Ok(Verdict::Report(self.reclaimed(start)));
        }
        // The common case first, without listing the directory: the
        // segment ended here and the next one starts where it did.
        if let Some(seg) = &self.cursor.seg
            && self.cursor.at > seg.base
            && seg.file.is_at(&seg.path).map_err(|e| Error::io("read", &seg.path, e))? != Some(false)
            && let Some(next) = self.open_segment(self.cursor.at)?
        {
            let at = self.cursor.at;
            self.cursor = Cursor::new(Some(next), at);
            self.ahead = None;
            return Ok(Verdict::Moved);
        }
        let segments = self.list()?;
        let Some(seg) = &self.cursor.seg else {
            // Waiting for the segment that holds `at` to appear.
            let at = self.cursor.at;
            if let Some(first) = segments.first().copied().filter(|&f| f > at) {
                return Ok(Verdict::Report(self.reclaimed(first)));
            }
            return Ok(if self.position(&segments, at)? { Verdict::Moved } else { Verdict::Wait });
        };
        // Replaced or removed behind the follower (truncate_after)?
        if seg.file.is_at(&seg.path).map_err(|e| Error::io("read", &seg.path, e))? == Some(false) {
            return self.after_cut(&segments);
        }
        let base = seg.base;
        let at = self.cursor.at;
        let Some(next) = segments.iter().copied().find(|&b| b > base) else {
            // The newest segment: written up to here for now, unless a
            // frame further on shows the writer past this place.
            let Some((found, found_at)) = self.cursor.frame_after()? else { return Ok(Verdict::Wait) };
            if let Some(not_damage) = self.confirm()? {
                return Ok(not_damage);
            }
            let c = self.corruption(at, damage);
            (self.cursor.pos, self.cursor.at) = (found, found_at);
            self.lsn = self.lsn.max(found_at);
            self.ahead = None;
            return Ok(Verdict::Report(Error::Corrupt(c)));
        };
        if next == at {
            // Rotated here (whatever follows the last frame is not a record).
            return Ok(if self.position(&segments, at)? { Verdict::Moved } else { Verdict::Wait });
        }
        if next < at {
            // The next segment starts inside this one's records: this file
            // was cut and a new one started (seen where files have no
            // identity to compare).
            let lsn = self.lsn;
            self.position(&segments, next)?;
            return Ok(Verdict::Report(Error::Cut { lsn, next }));
        }
        // Records `at..next` belong here. Damage only once the writer is
        // past them, and a fresh read still does not find them.
        if !self.writer_past(next, at)? {
            return Ok(Verdict::Wait);
        }
        if let Some(not_damage) = self.confirm()? {
            return Ok(not_damage);
        }
        let c = self.corruption(at, damage);
        Ok(Verdict::Report(self.skip_segment(c)))
    }

    /// Reads the cursor's position again, twice, a moment apart, after the
    /// writer was seen past it: `None` when the frame is still not there in
    /// the same file (damage), else what to do instead (the frame was in
    /// flight when first read, or the file was cut or replaced meanwhile).
    fn confirm(&mut self) -> Result<Option<Verdict>> {
        for _ in 0..2 {
            std::thread::sleep(CONFIRM);
            let (pos, at) = (self.cursor.pos, self.cursor.at);
            if !matches!(self.cursor.try_step(true)?, Step::Stop(_)) {
                // Written meanwhile: read it properly from here.
                (self.cursor.pos, self.cursor.at) = (pos, at);
                return Ok(Some(Verdict::Moved));
            }
        }
        if seg_file_changed(&self.cursor)? {
            let segments = self.list()?;
            return self.after_cut(&segments).map(Some);
        }
        Ok(None)
    }

    /// Whether the writer has written past LSN `at`: the segment starting
    /// at `next` holds a record frame (written after everything before it),
    /// or a mark saying `at` was durable.
    fn writer_past(&self, next: Lsn, at: Lsn) -> Result<bool> {
        let Some(seg) = self.open_segment(next)? else { return Ok(false) };
        let mut probe = Cursor::new(Some(seg), next);
        loop {
            match probe.step()? {
                Step::Records { .. } => return Ok(true),
                Step::Mark(mark) if mark.durable_end > at => return Ok(true),
                Step::Mark(_) | Step::Padding => {}
                Step::Stop(_) => return Ok(false),
            }
        }
    }

    /// Reports damage `c` and moves the follower to the next segment.
    fn skip_segment(&mut self, c: Corruption) -> Error {
        let base = self.cursor.seg.as_ref().map_or(0, |s| s.base);
        match self.list().map(|segs| segs.into_iter().find(|&b| b > base)) {
            Ok(Some(next)) => {
                self.lsn = self.lsn.max(next);
                self.cursor = Cursor::new(None, next);
                self.ahead = None;
            }
            Ok(None) => {}
            Err(e) => return e,
        }
        Error::Corrupt(c)
    }

    /// The follower's segment file was replaced or removed: finds where the
    /// log now continues, and reports a cut of records already returned.
    fn after_cut(&mut self, segments: &[Lsn]) -> Result<Verdict> {
        let Some(seg) = self.cursor.seg.as_ref() else { return Ok(Verdict::Wait) };
        let (base, epoch) = (seg.base, seg.key.epoch());
        let pos = self.cursor.pos;
        let lsn = self.lsn;
        // The file now at the path: a cut copy (same epoch, shorter) or a new
        // segment of the same name (a new epoch).
        if let Some(now) = self.open_segment(base)? {
            if now.key.epoch() == epoch {
                let mut probe = Cursor::new(Some(now), base);
                probe.run_to_end()?;
                if probe.pos >= pos {
                    // The cut fell after the follower: read on in the copy.
                    probe.pos = pos;
                    probe.at = self.cursor.at;
                    self.cursor = probe;
                    self.ahead = None;
                    return Ok(Verdict::Moved);
                }
                let next = probe.at;
                self.cursor = probe;
                self.ahead = None;
                self.current = None;
                self.lsn = next;
                return Ok(if lsn > next {
                    Verdict::Report(Error::Cut { lsn, next })
                } else {
                    Verdict::Moved
                });
            }
            self.cursor = Cursor::new(Some(now), base);
            self.ahead = None;
            self.lsn = base;
            return Ok(if lsn > base {
                Verdict::Report(Error::Cut { lsn, next: base })
            } else {
                Verdict::Moved
            });
        }
        // Removed: the log now ends in an earlier segment (cut there, or
        // whole up to this one's base), or nothing before it is left.
        let start = self.log_start()?;
        if start > lsn {
            return Ok(Verdict::Report(self.reclaimed(start)));
        }
        // Segments of one log have epochs increasing with their base LSNs,
        // so one below this one with a higher epoch was created after the
        // cut: the log from the cut on lives there. The cut fell where the
        // newest older one's frames end.
        let mut older = None;
        for &b in segments.iter().rev().filter(|&&b| b < base) {
            match self.open_segment(b)? {
                Some(seg) if seg.key.epoch() < epoch => {
                    older = Some(seg);
                    break;
                }
                _ => {}
            }
        }
        let next = match older {
            Some(seg) => {
                let b = seg.base;
                let mut probe = Cursor::new(Some(seg), b);
                probe.run_to_end()?;
                let next = probe.at;
                self.cursor = probe;
                next
            }
            None => {
                self.cursor = Cursor::new(None, base);
                base
            }
        };
        self.ahead = None;
        self.current = None;
        self.lsn = next.min(lsn);
        Ok(if lsn > next { Verdict::Report(Error::Cut { lsn, next }) } else { Verdict::Moved })
    }

    /// Reports that the follower's position fell below the log's start,
    /// and moves it there.
    fn reclaimed(&mut self, first: Lsn) -> Error {
        let lsn = self.lsn.min(self.cursor.at);
        self.lsn = first;
        self.current = None;
        self.ahead = None;
        match self.list().and_then(|segs| self.position(&segs, first)) {
            Ok(_) => Error::Reclaimed { lsn, first },
            Err(e) => e,
        }
    }

    /// Puts the cursor at the start of the segment holding `lsn` (the
    /// newest starting at or below it); `false` when there is none yet.
    fn position(&mut self, segments: &[Lsn], lsn: Lsn) -> Result<bool> {
        self.ahead = None;
        self.current = None;
        let Some(base) = segments.iter().copied().rfind(|&b| b <= lsn) else {
            self.cursor = Cursor::new(None, lsn);
            return Ok(false);
        };
        match self.open_segment(base)? {
            Some(seg) => {
                self.cursor = Cursor::new(Some(seg), base);
                Ok(true)
            }
            None => {
                // Being created (no header yet) or just removed.
                self.cursor = Cursor::new(None, lsn);
                Ok(false)
            }
        }
    }

    /// Opens the segment file of `base` and reads its header; `None` when
    /// it is gone or its header is not (yet) there.
    fn open_segment(&self, base: Lsn) -> Result<Option<Seg<S::File>>> {
        let path = self.dir.join(segment::file_name(base));
        let file = match self.fs.open(&path, OpenMode::Read) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let header = match segment::peek_header(&file).map_err(|e| Error::io("read", &path, e))? {
            Ok(h) if segment::plausible(&h, base) => h,
            _ => return Ok(None),
        };
        let (version, size) = (header.version, segment::size_of(&header));
        let size = segment::frames_end(version, size);
        Ok(Some(Seg { path, base, key: EpochKey::new(header.epoch), size, version, file }))
    }

    /// The base LSNs of the segment files, oldest first.
    fn list(&self) -> Result<Vec<Lsn>> {
        let names = self.fs.list(&self.dir).map_err(|e| Error::io("list", &self.dir, e))?;
        let mut bases: Vec<Lsn> = names.iter().filter_map(|n| segment::parse_name(n)).collect();
        bases.sort_unstable();
        Ok(bases)
    }

    /// The log's start as the lock file records it (0 without one).
    fn log_start(&mut self) -> Result<Lsn> {
        if self.lock.is_none() {
            let path = self.dir.join(segment::LOCK_FILE);
            match self.fs.open(&path, OpenMode::Read) {
                Ok(f) => self.lock = Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(Error::io("open", &path, e)),
            }
        }
        let Some(lock) = &self.lock else { return Ok(0) };
        let start =
            segment::read_start(lock).map_err(|e| Error::io("read", self.dir.join(segment::LOCK_FILE), e))?;
        Ok(start.map_or(0, |(_, lsn)| lsn))
    }

    /// In durable-only mode, reads ahead for a mark covering `lsn`;
    /// `true` once one does.
    fn read_ahead(&mut self, lsn: Lsn) -> Result<bool> {
        if self.ahead.is_none() {
            let Some(seg) = self.cursor.seg.as_ref() else { return Ok(false) };
            let Some(seg) = self.open_segment(seg.base)? else { return Ok(false) };
            let mut ahead = Cursor::new(Some(seg), self.cursor.at);
            ahead.pos = self.cursor.pos;
            self.ahead = Some(ahead);
        }
        let Some(mut ahead) = self.ahead.take() else { return Ok(false) };
        let found = self.scan_marks(&mut ahead, lsn);
        self.ahead = Some(ahead);
        found
    }

    /// Steps `ahead` over frames, across segments that plainly follow,
    /// until a mark covers `lsn` (`true`) or it reaches what is written so
    /// far (`false`).
    fn scan_marks(&mut self, ahead: &mut Cursor<S::File>, lsn: Lsn) -> Result<bool> {
        while self.durable <= lsn {
            match ahead.step()? {
                Step::Mark(mark) => self.durable = self.durable.max(mark.durable_end),
                Step::Records { .. } | Step::Padding => {}
                Step::Stop(_) => {
                    // On to the next segment only where it plainly follows.
                    let base = ahead.seg.as_ref().map_or(0, |s| s.base);
                    let at = ahead.at;
                    if self.list()?.into_iter().find(|&b| b > base) != Some(at) {
                        return Ok(false);
                    }
                    let Some(seg) = self.open_segment(at)? else { return Ok(false) };
                    *ahead = Cursor::new(Some(seg), at);
                }
            }
        }
        Ok(true)
    }
}

/// Whether the cursor's segment file is no longer the one at its path.
fn seg_file_changed<F: File>(cursor: &Cursor<F>) -> Result<bool> {
    match &cursor.seg {
        Some(seg) => {
            Ok(seg.file.is_at(&seg.path).map_err(|e| Error::io("read", &seg.path, e))? == Some(false))
        }
        None => Ok(false),
    }
}

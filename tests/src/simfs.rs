//! A simulated file system for the file WAL's crash tests: it keeps, for
//! each file, what is durable and what was written since the last sync, and
//! for each directory which entries are durable; a crash keeps only what a
//! power cut may keep (F1–F4, F11, F13, F14 of RELIABILITY.md).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use nori_wal::fs::{File, Fs, Kind, OpenMode};
use rand::Rng;
use rand::rngs::SmallRng;

/// Faults injected while the file system runs.
#[derive(Debug, Clone, Default)]
pub struct FsFaults {
    /// F11: the n-th `sync_data` (0-based, over all files) fails with EIO,
    /// and the data written since the file's last good sync is dropped from
    /// the page cache (reads return the old bytes); later syncs succeed.
    pub fail_sync: Option<u64>,
    /// F13: the total size of all files may not exceed this many bytes.
    pub capacity: Option<u64>,
    /// The process dies after this many changing operations (writes,
    /// length changes, syncs, creations, removals, renames): each later one
    /// fails and changes nothing, so that a crash can be taken at any point
    /// inside a WAL operation.
    pub halt_after: Option<u64>,
    /// F7: reads that cover this byte of any file fail with EIO (a latent
    /// sector error).
    pub bad_byte: Option<u64>,
}

/// How a crash treats what was not synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsCut {
    /// F1: every unsynced write and directory change is lost.
    DropUnsynced,
    /// F2/F3: each unsynced write persisted or not at random; the last one
    /// kept may be torn at a random byte.
    RandomSubset,
    /// F4: as `DropUnsynced`, but each file keeps its current length, the
    /// bytes past its durable length holding zeros or garbage.
    SizeWithoutData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    File(u64),
    Dir,
}

#[derive(Debug, Clone, Default)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Unsynced writes: (offset, bytes), and `None` for a length change.
    pending: Vec<(u64, Option<Vec<u8>>)>,
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<PathBuf, Entry>,
    /// Entries as of the last sync of their directory.
    durable_entries: BTreeMap<PathBuf, Entry>,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    locked: HashSet<u64>,
    faults: FsFaults,
    syncs: u64,
    /// Changing operations done.
    ops: u64,
    /// Directory syncs done, for tests that count them.
    pub dir_syncs: u64,
    /// How long each `sync_data` takes (a disk's flush), outside the lock.
    sync_time: std::time::Duration,
    /// The thread that made the last `sync_data`.
    last_syncer: Option<std::thread::ThreadId>,
}

/// A simulated file system; clones share it.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

impl State {
    /// Bytes held by the files the directories name.
    fn used(&self) -> u64 {
        let live: BTreeSet<u64> = self
            .entries
            .values()
            .filter_map(|e| if let Entry::File(id) = e { Some(*id) } else { None })
            .collect();
        live.iter().filter_map(|id| self.inodes.get(id)).map(|i| i.current.len() as u64).sum()
    }

    /// Counts a changing operation; fails once the process is dead.
    fn tick(&mut self) -> io::Result<()> {
        self.ops += 1;
        match self.faults.halt_after {
            Some(n) if self.ops > n => Err(io::Error::other("simulated crash: the process is gone")),
            _ => Ok(()),
        }
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display()))
}

impl SimFs {
    /// An empty file system with a root directory `/`.
    #[must_use]
    pub fn new(faults: FsFaults) -> Self {
        let mut state = State { faults, ..State::default() };
        state.entries.insert(PathBuf::from("/"), Entry::Dir);
        state.durable_entries.insert(PathBuf::from("/"), Entry::Dir);
        Self { state: Arc::new(Mutex::new(state)) }
    }

    /// Each `sync_data` takes `sync_time` (a disk's flush), outside the
    /// file system's lock.
    #[must_use]
    pub fn slow_syncs(self, sync_time: std::time::Duration) -> Self {
        self.lock().sync_time = sync_time;
        self
    }

    /// The thread that made the last `sync_data` of any file.
    #[must_use]
    pub fn last_syncer(&self) -> Option<std::thread::ThreadId> {
        self.lock().last_syncer
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Directory syncs so far.
    #[must_use]
    pub fn dir_syncs(&self) -> u64 {
        self.lock().dir_syncs
    }

    /// The files of `dir` with their lengths and first bytes, for failure
    /// reports.
    #[must_use]
    pub fn describe(&self, dir: &Path) -> String {
        let state = self.lock();
        let mut out = String::new();
        for (path, entry) in &state.entries {
            if path.parent() != Some(dir) {
                continue;
            }
            if let Entry::File(id) = entry {
                let data = &state.inodes[id].current;
                let head: Vec<String> = data.iter().take(64).map(|b| format!("{b:02x}")).collect();
                out.push_str(&format!("{} ({} bytes): {}\n", path.display(), data.len(), head.concat()));
            }
        }
        out
    }

    /// Changing operations so far (see [`FsFaults::halt_after`]).
    #[must_use]
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: FsFaults) {
        self.lock().faults = faults;
    }

    /// The file system a power cut now leaves behind, as `cut` says. Open
    /// files of `self` do not carry over.
    #[must_use]
    pub fn crash(&self, cut: FsCut, rng: &mut SmallRng) -> Self {
        let state = self.lock();
        let mut after = State { faults: FsFaults::default(), ..State::default() };
        after.entries = state.durable_entries.clone();
        after.durable_entries = state.durable_entries.clone();
        after.next_inode = state.next_inode;
        for entry in state.durable_entries.values() {
            let Entry::File(id) = *entry else { continue };
            let Some(inode) = state.inodes.get(&id) else { continue };
            let mut data = inode.durable.clone();
            match cut {
                FsCut::DropUnsynced => {}
                FsCut::RandomSubset => {
                    let last = inode.pending.len().saturating_sub(1);
                    for (i, (offset, write)) in inode.pending.iter().enumerate() {
                        if !rng.random_bool(0.5) {
                            continue;
                        }
                        match write {
                            Some(bytes) => {
                                let keep =
                                    if i == last { rng.random_range(0..=bytes.len()) } else { bytes.len() };
                                apply(&mut data, *offset, &bytes[..keep]);
                            }
                            None => data.resize(*offset as usize, 0),
                        }
                    }
                }
                FsCut::SizeWithoutData => {
                    let len = inode.current.len();
                    if len > data.len() {
                        let from = data.len();
                        data.resize(len, 0);
                        if rng.random_bool(0.5) {
                            rng.fill(&mut data[from..]);
                        }
                    }
                }
            }
            after.inodes.insert(id, Inode { current: data.clone(), durable: data, pending: Vec::new() });
        }
        Self { state: Arc::new(Mutex::new(after)) }
    }
}

fn apply(data: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let end = offset as usize + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[offset as usize..end].copy_from_slice(bytes);
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

impl Fs for SimFs {
    type File = SimFile;

    fn kind(&self, path: &Path) -> io::Result<Kind> {
        match self.lock().entries.get(path) {
            Some(Entry::File(_)) => Ok(Kind::File),
            Some(Entry::Dir) => Ok(Kind::Dir),
            None => Err(not_found(path)),
        }
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.tick()?;
        for ancestor in dir.ancestors().collect::<Vec<_>>().into_iter().rev() {
            match state.entries.get(ancestor) {
                Some(Entry::Dir) => {}
                Some(Entry::File(_)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        format!("{}", ancestor.display()),
                    ));
                }
                None => {
                    state.entries.insert(ancestor.to_path_buf(), Entry::Dir);
                }
            }
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let state = self.lock();
        if state.entries.get(dir) != Some(&Entry::Dir) {
            return Err(not_found(dir));
        }
        Ok(state
            .entries
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(ToOwned::to_owned))
            .collect())
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<SimFile> {
        let mut state = self.lock();
        if state.entries.get(&parent(path)) != Some(&Entry::Dir) {
            return Err(not_found(&parent(path)));
        }
        let id = match (state.entries.get(path).copied(), mode) {
            (Some(Entry::File(_)), OpenMode::CreateNew) => {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{}", path.display())));
            }
            (Some(Entry::Dir), _) => {
                return Err(io::Error::new(io::ErrorKind::IsADirectory, format!("{}", path.display())));
            }
            (Some(Entry::File(id)), _) => id,
            (None, OpenMode::CreateNew) => {
                state.tick()?;
                let id = state.next_inode;
                state.next_inode += 1;
                state.inodes.insert(id, Inode::default());
                state.entries.insert(path.to_path_buf(), Entry::File(id));
                id
            }
            (None, _) => return Err(not_found(path)),
        };
        Ok(SimFile {
            state: Arc::clone(&self.state),
            id,
            writable: mode != OpenMode::Read,
            locked: false.into(),
        })
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.tick()?;
        match state.entries.get(path) {
            Some(Entry::File(_)) => {
                state.entries.remove(path);
                Ok(())
            }
            _ => Err(not_found(path)),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.tick()?;
        let Some(entry @ Entry::File(_)) = state.entries.get(from).copied() else {
            return Err(not_found(from));
        };
        state.entries.remove(from);
        state.entries.insert(to.to_path_buf(), entry);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.tick()?;
        if state.entries.get(dir) != Some(&Entry::Dir) {
            return Err(not_found(dir));
        }
        state.dir_syncs += 1;
        // The children of `dir` become durable as they are now; the
        // directory itself as well (its own entry lives in its parent, but
        // a created directory must exist for its children to).
        let children: BTreeSet<PathBuf> = state
            .entries
            .keys()
            .chain(state.durable_entries.keys())
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect();
        for child in children {
            match state.entries.get(&child).copied() {
                Some(entry) => state.durable_entries.insert(child, entry),
                None => state.durable_entries.remove(&child),
            };
        }
        for ancestor in dir.ancestors() {
            state.durable_entries.insert(ancestor.to_path_buf(), Entry::Dir);
        }
        Ok(())
    }
}

/// A file of [`SimFs`].
#[derive(Debug)]
pub struct SimFile {
    state: Arc<Mutex<State>>,
    id: u64,
    writable: bool,
    locked: std::sync::atomic::AtomicBool,
}

impl SimFile {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        if self.locked.load(std::sync::atomic::Ordering::Relaxed) {
            let id = self.id;
            self.lock().locked.remove(&id);
        }
    }
}

impl File for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let state = self.lock();
        if let Some(bad) = state.faults.bad_byte
            && (offset..offset + buf.len() as u64).contains(&bad)
        {
            return Err(io::Error::other("injected EIO: latent sector error"));
        }
        let data = &state.inodes[&self.id].current;
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "file opened read-only"));
        }
        let mut state = self.lock();
        state.tick()?;
        let mut data = data;
        let mut full = false;
        if let Some(capacity) = state.faults.capacity {
            let used = state.used();
            let own = state.inodes[&self.id].current.len() as u64;
            let growth = (offset + data.len() as u64).saturating_sub(own);
            let room = capacity.saturating_sub(used);
            if growth > room {
                let keep = (data.len() as u64 - (growth - room)) as usize;
                data = &data[..keep];
                full = true;
            }
        }
        let inode = state.inodes.get_mut(&self.id).expect("open inode");
        apply(&mut inode.current, offset, data);
        inode.pending.push((offset, Some(data.to_vec())));
        if full { Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on device")) } else { Ok(()) }
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.lock().inodes[&self.id].current.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        state.tick()?;
        let inode = state.inodes.get_mut(&self.id).expect("open inode");
        inode.current.resize(len as usize, 0);
        inode.pending.push((len, None));
        Ok(())
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        state.tick()?;
        let own = state.inodes[&self.id].current.len() as u64;
        if len <= own {
            return Ok(());
        }
        if let Some(capacity) = state.faults.capacity {
            let used = state.used();
            if len - own > capacity.saturating_sub(used) {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on device"));
            }
        }
        let inode = state.inodes.get_mut(&self.id).expect("open inode");
        inode.current.resize(len as usize, 0);
        inode.pending.push((len, None));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let sync_time = self.lock().sync_time;
        if !sync_time.is_zero() {
            std::thread::sleep(sync_time);
        }
        let mut state = self.lock();
        state.last_syncer = Some(std::thread::current().id());
        state.tick()?;
        let n = state.syncs;
        state.syncs += 1;
        let fail = state.faults.fail_sync == Some(n);
        let inode = state.inodes.get_mut(&self.id).expect("open inode");
        if fail {
            // The dirty pages are dropped: the data is gone, and says so once.
            inode.current = inode.durable.clone();
            inode.pending.clear();
            return Err(io::Error::other("injected EIO on fdatasync"));
        }
        inode.durable = inode.current.clone();
        inode.pending.clear();
        Ok(())
    }

    fn try_lock(&self) -> io::Result<bool> {
        let id = self.id;
        let mut state = self.lock();
        if state.locked.contains(&id) {
            return Ok(self.locked.load(std::sync::atomic::Ordering::Relaxed));
        }
        state.locked.insert(id);
        self.locked.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }
}

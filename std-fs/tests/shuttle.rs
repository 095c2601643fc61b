//! Group commit and readers under shuttle's randomized scheduler (feature
//! `shuttle`): `cargo test -p nori-wal --features shuttle --test shuttle`.
//!
//! Checked over many random interleavings: every acknowledged append is
//! covered by a completed sync (it survives a crash that keeps only synced
//! bytes); no waiter hangs when a sync fails (shuttle reports a deadlock);
//! every waiter of a failed sync and every later call gets an error; a
//! reader never sees a record past the written end or out of order. Under
//! `Os`, with a write buffer so small that nearly every append hands a
//! buffer to the write-behind thread: no hand-off, sync or read waits
//! forever, and what a `sync` acknowledged survives the crash.
#![cfg(feature = "shuttle")]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nori_wal::blocking::Wal;
use nori_wal::fs::{File, Fs, Kind, OpenMode};
use nori_wal::{FsyncPolicy, Lsn, Record, WalConfig};

/// A tiny in-memory file system: each file keeps its current and its
/// synced bytes; the n-th sync may fail (dropping what was not synced).
#[derive(Clone, Default)]
struct MemFs(Arc<Mutex<MemState>>);

#[derive(Default)]
struct MemState {
    files: BTreeMap<PathBuf, Arc<Mutex<MemFile>>>,
    syncs: u64,
    fail_sync: Option<u64>,
}

#[derive(Default, Clone)]
struct MemFile {
    current: Vec<u8>,
    synced: Vec<u8>,
}

struct Handle(Arc<Mutex<MemFile>>, Arc<Mutex<MemState>>);

impl MemFs {
    /// What survives a power cut: the synced bytes of every file.
    fn crash(&self) -> MemFs {
        let state = self.0.lock().unwrap();
        let files = state
            .files
            .iter()
            .map(|(p, f)| {
                let synced = f.lock().unwrap().synced.clone();
                (p.clone(), Arc::new(Mutex::new(MemFile { current: synced.clone(), synced })))
            })
            .collect();
        MemFs(Arc::new(Mutex::new(MemState { files, syncs: 0, fail_sync: None })))
    }
}

impl Fs for MemFs {
    type File = Handle;

    fn kind(&self, path: &Path) -> io::Result<Kind> {
        let state = self.0.lock().unwrap();
        if state.files.contains_key(path) {
            Ok(Kind::File)
        } else if path == Path::new("/wal") {
            Ok(Kind::Dir)
        } else {
            Err(io::ErrorKind::NotFound.into())
        }
    }

    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, _dir: &Path) -> io::Result<Vec<OsString>> {
        let state = self.0.lock().unwrap();
        Ok(state.files.keys().filter_map(|p| p.file_name().map(ToOwned::to_owned)).collect())
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Handle> {
        let mut state = self.0.lock().unwrap();
        let file = match (state.files.get(path), mode) {
            (Some(_), OpenMode::CreateNew) => return Err(io::ErrorKind::AlreadyExists.into()),
            (Some(f), _) => Arc::clone(f),
            (None, OpenMode::CreateNew) => {
                let f = Arc::new(Mutex::new(MemFile::default()));
                state.files.insert(path.to_path_buf(), Arc::clone(&f));
                f
            }
            (None, _) => return Err(io::ErrorKind::NotFound.into()),
        };
        Ok(Handle(file, Arc::clone(&self.0)))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.0.lock().unwrap().files.remove(path).map(|_| ()).ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.0.lock().unwrap();
        let f = state.files.remove(from).ok_or(io::Error::from(io::ErrorKind::NotFound))?;
        state.files.insert(to.to_path_buf(), f);
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}

impl File for Handle {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let f = self.0.lock().unwrap();
        let start = (offset as usize).min(f.current.len());
        let n = buf.len().min(f.current.len() - start);
        buf[..n].copy_from_slice(&f.current[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let mut f = self.0.lock().unwrap();
        let end = offset as usize + data.len();
        if f.current.len() < end {
            f.current.resize(end, 0);
        }
        f.current[offset as usize..end].copy_from_slice(data);
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.lock().unwrap().current.len() as u64)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let mut f = self.0.lock().unwrap();
        if (f.current.len() as u64) < len {
            f.current.resize(len as usize, 0);
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.lock().unwrap().current.resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let fail = {
            let mut state = self.1.lock().unwrap();
            let n = state.syncs;
            state.syncs += 1;
            state.fail_sync == Some(n)
        };
        let mut f = self.0.lock().unwrap();
        if fail {
            let synced = f.synced.clone();
            f.current = synced;
            return Err(io::Error::other("injected EIO"));
        }
        f.synced = f.current.clone();
        Ok(())
    }

    fn try_lock(&self) -> io::Result<bool> {
        Ok(true)
    }
}

fn config() -> WalConfig {
    WalConfig::new("/wal").segment_size(8192).fsync(FsyncPolicy::Always)
}

fn value(t: u32, i: u32) -> Vec<u8> {
    format!("t{t} i{i}").into_bytes()
}

/// Records a writer knows durable: LSN and value.
type Durable = Mutex<Vec<(Lsn, Vec<u8>)>>;

/// Runs `writers` threads of `write` (given the WAL, the thread's number and
/// where to put the records it knows durable) beside a reader that checks
/// what it sees; the `fail`-th sync fails. Then: a poisoned WAL
/// acknowledges nothing more, and after a power cut that keeps only synced
/// bytes (before the WAL is closed: a close would sync the rest) every
/// record known durable is there.
fn run(config: WalConfig, writers: u32, fail: Option<u64>, write: fn(&Wal<MemFs>, u32, &Durable)) {
    let fs = MemFs::default();
    fs.0.lock().unwrap().fail_sync = fail;
    let (wal, _) = Wal::open_in(fs.clone(), config.clone()).unwrap();
    let wal = Arc::new(wal);
    let durable = Arc::new(Durable::default());
    let handles: Vec<_> = (0..writers)
        .map(|t| {
            let (wal, durable) = (Arc::clone(&wal), Arc::clone(&durable));
            shuttle::thread::spawn(move || write(&wal, t, &durable))
        })
        .collect();
    let reader = {
        let wal = Arc::clone(&wal);
        shuttle::thread::spawn(move || {
            if let Ok(mut iter) = wal.iter() {
                let mut last: Option<Lsn> = None;
                while let Ok(Some(entry)) = iter.try_next() {
                    assert!(last.is_none_or(|l| entry.lsn == l + 1), "the reader saw a gap");
                    let v = entry.record.raw_payload().unwrap_or_default();
                    assert!(v.starts_with(b"t"), "the reader saw a record never appended");
                    last = Some(entry.lsn);
                }
            }
        })
    };
    for h in handles {
        h.join().unwrap();
    }
    reader.join().unwrap();
    if wal.is_poisoned() {
        assert!(wal.append(&Record::raw(b"later")).is_err(), "a poisoned WAL acknowledged an append");
    }
    let crashed = fs.crash();
    let durable = durable.lock().unwrap().clone();
    // Dropping stops the WAL's threads: that must not hang either.
    drop(wal);
    let (wal, _) = Wal::open_in(crashed, config).unwrap();
    let mut found = BTreeMap::new();
    let mut iter = wal.iter().unwrap();
    while let Some(entry) = iter.try_next().unwrap() {
        found.insert(entry.lsn, entry.record.raw_payload().unwrap_or_default().to_vec());
    }
    for (lsn, v) in durable {
        assert_eq!(found.get(&lsn), Some(&v), "LSN {lsn} was reported durable and is lost");
    }
}

/// Three writers append three records each under `Always`; each append
/// acknowledged is covered by a completed sync. The `fail`-th sync fails.
fn group_commit(fail: Option<u64>) {
    run(config(), 3, fail, |wal, t, durable| {
        for i in 0..3 {
            let Ok(lsn) = wal.append(&Record::raw(&value(t, i))) else { return };
            assert!(wal.durable_lsn() >= Some(lsn), "acknowledged before durable");
            durable.lock().unwrap().push((lsn, value(t, i)));
        }
    });
}

#[test]
fn acknowledged_appends_are_covered_by_a_completed_sync() {
    shuttle::check_random(|| group_commit(None), 300);
}

#[test]
fn a_failed_sync_reaches_every_waiter_and_none_hangs() {
    for fail in [1u64, 2, 3, 5] {
        shuttle::check_random(move || group_commit(Some(fail)), 150);
    }
}

/// Two writers append four records each under `Os` with a write buffer of
/// 100 bytes (a hand-off to the write-behind thread every record or two)
/// and call `sync` every other append; what a `sync` returned for is
/// durable. The `fail`-th sync fails.
fn write_behind(fail: Option<u64>) {
    let config = WalConfig::new("/wal").segment_size(8192).fsync(FsyncPolicy::Os).write_buffer(100);
    run(config, 2, fail, |wal, t, durable| {
        let mut mine = Vec::new();
        for i in 0..4 {
            let Ok(lsn) = wal.append(&Record::raw(&value(t, i))) else { return };
            mine.push((lsn, value(t, i)));
            if i % 2 == 1 {
                if wal.sync().is_err() {
                    return;
                }
                assert!(wal.durable_lsn() >= Some(lsn), "sync returned before durable");
                durable.lock().unwrap().append(&mut mine);
            }
        }
    });
}

#[test]
fn write_behind_hands_off_and_syncs_without_hanging() {
    shuttle::check_random(|| write_behind(None), 300);
}

#[test]
fn write_behind_with_a_failed_sync_never_hangs() {
    for fail in [1u64, 2, 4] {
        shuttle::check_random(move || write_behind(Some(fail)), 100);
    }
}

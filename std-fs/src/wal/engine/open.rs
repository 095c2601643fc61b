//! Opening a WAL: the directory, its lock, recovery, and the threads the
//! policy needs.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nori_wal_core::format::EpochKey;

use super::append::{Active, Inner};
use super::behind::{BEHIND_BUFFERS, WriteBehind};
use super::commit::GroupCommit;
use super::{Result, Shared, Wal, stats, timer};
use crate::fs::{File, Fs, Kind, OpenMode};
use crate::wal::config::{Codec, FsyncPolicy, WalConfig};
use crate::wal::error::{ConfigError, Error};
use crate::wal::recovery::{self, Effect, RecoveryInfo};
use crate::wal::segment;
use crate::wal::sync::{AtomicU64, JoinHandle, Mutex};

impl<S: Fs> Wal<S> {
    /// [`Wal::open`] on the file system `fs`.
    ///
    /// # Errors
    ///
    /// As [`Wal::open`].
    pub fn open_in(fs: S, config: WalConfig) -> Result<(Self, RecoveryInfo)> {
        #[cfg(feature = "tracing")]
        let _span = tracing::info_span!("nori_wal_open", dir = %config.dir.display()).entered();
        check_config(&config)?;
        let dir = config.dir.clone();
        open_dir(&fs, &dir, config.dir_mode)?;
        let lock_file = take_lock(&fs, &dir, config.file_mode)?;
        let lock_path = dir.join(segment::LOCK_FILE);
        let start = segment::read_start(&lock_file).map_err(|e| Error::io("read", &lock_path, e))?;
        let recovered = recovery::recover(&fs, &config, start.map_or(0, |(_, lsn)| lsn), Effect::Repair)?;
        trace!(
            info,
            records = recovered.info.records,
            case = ?recovered.info.case,
            torn_tail = recovered.info.torn_tail,
            segments = recovered.info.segments,
            elapsed_us = recovered.info.elapsed.as_micros() as u64,
            "recovered"
        );
        #[cfg(feature = "tracing")]
        if let Some(c) = &recovered.info.corruption {
            tracing::warn!(damage = %c, "recovery found damage");
        }
        // Appends go on in the newest segment, in its own format version
        // (the configured version takes over at the next rotation).
        let active = recovered.active.and_then(|(file, pos, frames_crc)| {
            let meta = recovered.segments.last()?;
            Some(Active {
                file: Arc::new(file),
                path: meta.path.clone(),
                key: EpochKey::new(meta.epoch),
                base: meta.base,
                version: meta.version,
                end: meta.frames_end(),
                frames_crc: frames_crc
                    .filter(|_| meta.version == nori_wal_core::format::Version::V2)
                    .map(super::append::SealSum::new),
                pos,
                written: pos,
                marked_durable: recovered.next_lsn,
                created: Instant::now(),
            })
        });
        let buffer = config.write_buffer.min(4 << 20);
        let inner = Inner {
            segments: recovered.segments,
            active,
            next_lsn: recovered.next_lsn,
            log_start: recovered.log_start,
            max_epoch: recovered.max_epoch,
            buf: Vec::with_capacity(buffer),
            skips: recovered.skips,
            unsynced: Vec::new(),
            bytes_written: 0,
            segments_created: 0,
            opened_at: recovered.next_lsn,
        };
        let shared = Arc::new(Shared {
            fs,
            inner: Mutex::new(inner),
            commit: GroupCommit::new(recovered.next_lsn),
            timer: timer::Timer::default(),
            behind: (!matches!(config.fsync, FsyncPolicy::Always))
                .then(|| WriteBehind::new(BEHIND_BUFFERS, buffer)),
            counters: stats::Counters::default(),
            recovery: recovered.info.clone(),
            lock_file,
            start_seq: AtomicU64::new(start.map_or(0, |(seq, _)| seq)),
            config,
        });
        let (worker, writer) = start_threads(&shared, &dir)?;
        Ok((Self { shared, worker, writer }, recovered.info))
    }
}

/// Checks that `dir` is a directory, creating it (durably, with the
/// permission bits `mode`) if it is missing.
fn open_dir<S: Fs>(fs: &S, dir: &Path, mode: u32) -> Result<()> {
    match fs.kind(dir) {
        Ok(Kind::Dir) => Ok(()),
        Ok(_) => Err(Error::NotADirectory { path: dir.to_path_buf() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs.create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
            fs.set_mode(dir, mode).map_err(|e| Error::io("set the modes of", dir, e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs.sync_dir(parent).map_err(|e| Error::io("sync", parent, e))?;
            }
            Ok(())
        }
        Err(e) => Err(Error::io("open", dir, e)),
    }
}

/// Opens (creating, with the permission bits `mode`) the directory's lock
/// file and takes its lock, with room for the log start it may keep.
fn take_lock<S: Fs>(fs: &S, dir: &Path, mode: u32) -> Result<S::File> {
    let lock_path = dir.join(segment::LOCK_FILE);
    let lock_file = match fs.open(&lock_path, OpenMode::CreateNew) {
        Ok(f) => {
            f.set_mode(mode).map_err(|e| Error::io("set the modes of", &lock_path, e))?;
            fs.sync_dir(dir).map_err(|e| Error::io("sync", dir, e))?;
            f
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            fs.open(&lock_path, OpenMode::ReadWrite).map_err(|e| Error::io("open", &lock_path, e))?
        }
        Err(e) => return Err(Error::io("create", &lock_path, e)),
    };
    // A process forked by another thread holds a copy of a closed WAL's
    // lock until it execs: a held lock is tried again briefly.
    let mut tries = 0;
    while !lock_file.try_lock().map_err(|e| Error::io("lock", &lock_path, e))? {
        tries += 1;
        if tries == 10 {
            return Err(Error::Locked { dir: dir.to_path_buf() });
        }
        crate::wal::sync::sleep(Duration::from_millis(5));
    }
    // Room for the log start it may keep, so that recording it needs no
    // space later (a reclaim on a full disk).
    lock_file.allocate(segment::START_LEN).map_err(|e| Error::io("prepare", &lock_path, e))?;
    Ok(lock_file)
}

/// The background timer's thread (batch window, age rotation) and the
/// write-behind thread, when the configuration needs them.
type Threads = (Option<JoinHandle<()>>, Option<JoinHandle<()>>);

fn start_threads<S: Fs>(shared: &Arc<Shared<S>>, dir: &Path) -> Result<Threads> {
    let window = match shared.config.fsync {
        FsyncPolicy::Batch(window) => Some(window),
        _ => None,
    };
    let age = shared.config.max_segment_age;
    // Under `Always`, async appends, and blocking ones made while a sync
    // runs, ask this thread for their syncs and wait for them.
    let asked_syncs = shared.config.fsync == FsyncPolicy::Always;
    let worker = if window.is_some() || age.is_some() || asked_syncs {
        let shared = Arc::clone(shared);
        let handle =
            crate::wal::sync::spawn("nori-wal-sync", move || shared.timer.run(window, age, &*shared))
                .map_err(|e| Error::io("start the sync thread for", dir, e))?;
        Some(handle)
    } else {
        None
    };
    let writer = if shared.behind.is_some() {
        let shared = Arc::clone(shared);
        let handle = crate::wal::sync::spawn("nori-wal-write", move || shared.write_behind())
            .map_err(|e| Error::io("start the write thread for", dir, e))?;
        Some(handle)
    } else {
        None
    };
    Ok((worker, writer))
}

/// Checks the configuration once, before anything is opened.
fn check_config(config: &WalConfig) -> Result<()> {
    let size = config.segment_size;
    if !(segment::MIN_SEGMENT..=segment::MAX_SEGMENT).contains(&size) {
        return Err(ConfigError::SegmentSize {
            given: size,
            min: segment::MIN_SEGMENT,
            max: segment::MAX_SEGMENT,
        }
        .into());
    }
    if config.max_record_len == 0 {
        return Err(ConfigError::RecordLimit.into());
    }
    if config.fsync == FsyncPolicy::Batch(Duration::ZERO) {
        return Err(ConfigError::BatchWindow.into());
    }
    if matches!(config.compression, Codec::Zstd { .. }) && !cfg!(feature = "zstd") {
        return Err(ConfigError::ZstdUnavailable.into());
    }
    let (file, dir) = (config.file_mode, config.dir_mode);
    if (file | dir) & !0o777 != 0 || file & 0o600 != 0o600 || dir & 0o700 != 0o700 {
        return Err(ConfigError::Modes { file, dir }.into());
    }
    Ok(())
}

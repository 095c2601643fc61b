//! Group commit on a ring log over a raw device: many threads append, one
//! sync covers every record flushed before it, and the sync runs outside
//! the lock while others keep appending.

use std::sync::{Condvar, Mutex, PoisonError};

use nori_wal_backends::raw::{RawDevice, RawOptions, RawSyncHandle};
use nori_wal_core::ring::{Error, RingConfig, RingLog};
use nori_wal_core::{Geometry, Lsn, RamDevice, Record};
use nori_wal_tests::media::ImageFile;

const TMP: &str = env!("CARGO_TARGET_TMPDIR");

struct Shared<'b> {
    log: RingLog<'b, RawDevice>,
    syncing: bool,
    syncs: u64,
}

/// Appends `record` and returns once it is durable, syncing as the group's
/// leader when no sync is running, waiting for the running one otherwise.
fn append_durable(state: &Mutex<Shared<'_>>, done: &Condvar, handle: &RawSyncHandle, record: &[u8]) -> Lsn {
    let mut guard = state.lock().unwrap_or_else(PoisonError::into_inner);
    let lsn = guard.log.append(&Record::raw(record)).unwrap();
    loop {
        if guard.log.durable_lsn().is_some_and(|d| d >= lsn) {
            return lsn;
        }
        if guard.syncing {
            guard = done.wait(guard).unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        // Lead: flush under the lock, sync outside it.
        let end = guard.log.flush().unwrap();
        guard.syncing = true;
        drop(guard);
        let result = handle.sync();
        guard = state.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(()) => guard.log.synced(end),
            Err(_) => guard.log.sync_failed(),
        }
        guard.syncing = false;
        guard.syncs += 1;
        done.notify_all();
    }
}

#[test]
fn one_sync_covers_many_appends_and_everything_acknowledged_survives() {
    let image = ImageFile::new(TMP, "group-commit", 8 << 20);
    let mut buffer = vec![0u8; 64 * 1024];
    let (threads, per_thread) = (8, 150);
    let acked: Vec<Vec<(Lsn, Vec<u8>)>>;
    let syncs;
    {
        let device = RawDevice::open(&image.path, RawOptions::default()).unwrap();
        let handle = device.sync_handle().unwrap();
        let (log, _) = RingLog::open(device, RingConfig::new(1 << 20), &mut buffer).unwrap();
        let state = Mutex::new(Shared { log, syncing: false, syncs: 0 });
        let done = Condvar::new();
        acked = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let (state, done, handle) = (&state, &done, &handle);
                    scope.spawn(move || {
                        (0..per_thread)
                            .map(|i| {
                                let record = format!("thread {t} record {i}").into_bytes();
                                (append_durable(state, done, handle, &record), record)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        syncs = state.lock().unwrap().syncs;
    }
    let appends = (threads * per_thread) as u64;
    println!("{appends} durable appends from {threads} threads took {syncs} device syncs");
    assert!(syncs < appends, "syncs must be shared");
    // Reopen: every acknowledged record is there, with its content.
    let device = RawDevice::open(&image.path, RawOptions::default()).unwrap();
    let (mut log, info) = RingLog::open(device, RingConfig::new(1 << 20), &mut buffer).unwrap();
    assert!(info.corruption.is_none());
    let mut read = vec![0u8; 8192];
    let mut iter = log.iter_from(0, &mut read).unwrap();
    let mut found = std::collections::HashMap::new();
    while let Some(entry) = iter.try_next().unwrap() {
        found.insert(entry.lsn, entry.record.raw_payload().unwrap().to_vec());
    }
    for (lsn, record) in acked.iter().flatten() {
        assert_eq!(found.get(lsn), Some(record), "LSN {lsn}");
    }
}

#[test]
fn a_failed_external_sync_poisons_the_log() {
    let mut ram = RamDevice::new(vec![0u8; 4 * 4096], Geometry::block(512).unwrap()).unwrap();
    let mut buffer = [0u8; 1024];
    let (mut log, _) = RingLog::open(&mut ram, RingConfig::new(4096), &mut buffer).unwrap();
    log.append(&Record::raw(b"a")).unwrap();
    let end = log.flush().unwrap();
    log.sync_failed();
    // A late report of success changes nothing: nothing more is acknowledged.
    log.synced(end);
    assert_eq!(log.durable_lsn(), None);
    assert!(matches!(log.append(&Record::raw(b"b")), Err(Error::Poisoned)));
    assert!(matches!(log.flush(), Err(Error::Poisoned)));
}

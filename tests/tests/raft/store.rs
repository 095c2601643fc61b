//! The log storage's own cases: readers while a node writes, holes
//! refused, a damaged state file refused, a torn committed file ignored.

use std::time::Duration;

use nori_wal::raft::{COMMITTED_FILE, Error, LogStore, STATE_FILE};
use nori_wal::{RecoveryMode, WalConfig};
use nori_wal_raft_cluster::{Config, Router, Set, caught_up, initialize, start, write};
use nori_wal_tests::walkit::{Scratch, flip_bit, segment_files};
use openraft::storage::{RaftLogReader, RaftLogStorage};

const TIMEOUT: Duration = Duration::from_secs(20);

fn set(i: u64) -> Set {
    Set { key: format!("k{i}"), value: format!("v{i}") }
}

/// A cluster of one on `dir` that takes `writes` writes, then stops.
async fn write_through_a_node(dir: &std::path::Path, writes: u64) -> LogStore<Config> {
    let store = LogStore::<Config>::open(WalConfig::new(dir)).await.unwrap();
    let router = Router::default();
    let node = start(1, store.clone(), &router).await.unwrap();
    initialize(std::slice::from_ref(&node)).await.unwrap();
    assert!(caught_up(&router, &node, TIMEOUT).await);
    for i in 0..writes {
        write(&router, &set(i), TIMEOUT).await.unwrap();
    }
    node.raft.shutdown().await.unwrap();
    store
}

#[test]
fn readers_read_while_a_node_writes() {
    let scratch = Scratch::new("raft-readers");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let store = LogStore::<Config>::open(WalConfig::new(scratch.wal())).await.unwrap();
        let mut reader = store.clone();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = std::sync::Arc::clone(&done);
        let reads = tokio::spawn(async move {
            let mut checked = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let entries = reader.try_get_log_entries(..).await.unwrap();
                for (k, e) in entries.iter().enumerate() {
                    assert_eq!(e.log_id.index, entries[0].log_id.index + k as u64, "contiguous indexes");
                }
                checked += entries.len() as u64;
                tokio::task::yield_now().await;
            }
            checked
        });
        {
            let router = Router::default();
            let node = start(1, store, &router).await.unwrap();
            initialize(std::slice::from_ref(&node)).await.unwrap();
            assert!(caught_up(&router, &node, TIMEOUT).await);
            for i in 0..300 {
                write(&router, &set(i), TIMEOUT).await.unwrap();
            }
            node.raft.shutdown().await.unwrap();
            done.store(true, std::sync::atomic::Ordering::Release);
            assert!(reads.await.unwrap() > 0, "the reader read entries");
        }
    });
}

#[test]
fn a_log_with_holes_is_refused() {
    let scratch = Scratch::new("raft-holes");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        drop(write_through_a_node(&scratch.wal(), 40).await);
    });
    // Damage in the middle of the log, skipped and declared lost (a hole).
    let file = &segment_files(&scratch.wal())[0];
    let len = std::fs::metadata(file).unwrap().len();
    let config = WalConfig::new(scratch.wal());
    {
        let (wal, _) = nori_wal::blocking::Wal::open(config.clone()).unwrap();
        let end = wal.next_lsn();
        drop(wal);
        assert!(end > 20 && len > 600);
    }
    flip_bit(file, 600, 1);
    let (wal, info) =
        nori_wal::blocking::Wal::open(config.clone().recovery(RecoveryMode::SkipDamaged)).unwrap();
    assert!(info.corruption.is_some(), "the flip hit a frame: {info:?}");
    assert!(wal.declare_lost().unwrap().holes > 0);
    drop(wal);
    runtime.block_on(async {
        let refused = LogStore::<Config>::open(config).await;
        let err = refused.unwrap_err();
        assert!(matches!(err, Error::Holes { .. }), "{err}");
        assert!(err.to_string().contains("Raft needs every index"), "{err}");
    });
}

#[test]
fn a_damaged_state_file_is_refused_and_a_torn_committed_file_ignored() {
    let scratch = Scratch::new("raft-state");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let mut store = write_through_a_node(&scratch.wal(), 10).await;
        assert!(store.read_committed().await.unwrap().is_some());
        let vote = store.read_vote().await.unwrap();
        drop(store);
        // The committed file torn: ignored (nothing to re-apply), the vote kept.
        let committed = scratch.wal().join(COMMITTED_FILE);
        let len = std::fs::metadata(&committed).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&committed).unwrap().set_len(len / 2).unwrap();
        let mut store = LogStore::<Config>::open(WalConfig::new(scratch.wal())).await.unwrap();
        assert_eq!(store.read_committed().await.unwrap(), None);
        assert_eq!(store.read_vote().await.unwrap(), vote);
        // The membership entry, the leader's blank entry, then the writes.
        assert_eq!(store.get_log_state().await.unwrap().last_log_id.map(|l| l.index), Some(11));
        drop(store);
        // The state file damaged: refused, saying which file.
        flip_bit(&scratch.wal().join(STATE_FILE), 10, 0);
        let err = LogStore::<Config>::open(WalConfig::new(scratch.wal())).await.unwrap_err();
        assert!(matches!(err, Error::StateDamaged { .. }), "{err}");
        assert!(err.to_string().contains(STATE_FILE), "{err}");
    });
}

//! The crash test of the Raft log storage: a child process runs a real
//! openraft node (a cluster of one) on `nori_wal::raft::LogStore` and
//! reports each client write the node acknowledged; the parent kills it
//! with SIGKILL at random moments, many times. After each kill the log
//! holds every acknowledged write and the saved vote is the last one the
//! node reported; after each restart the node itself, its state machine
//! rebuilt from the log, holds every acknowledged write.
//!
//! `NORI_WAL_RAFT_KILL_ROUNDS` sets the number of kills (default 8).

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

use nori_wal::WalConfig;
use nori_wal::raft::LogStore;
use nori_wal_raft_cluster::{Config, Router, Set, caught_up, initialize, start, write};
use nori_wal_tests::walkit::Scratch;
use openraft::storage::{RaftLogReader, RaftLogStorage};
use openraft::{EntryPayload, Vote};
use rand::Rng;

const TIMEOUT: Duration = Duration::from_secs(30);

fn set(i: u64) -> Set {
    Set { key: format!("key-{i:08}"), value: format!("value {i} {}", "x".repeat((i % 50) as usize)) }
}

/// The child: starts the node, checks it holds the `acked` writes before,
/// reports its vote, then writes until killed, reporting each
/// acknowledged write.
fn child(dir: &str, acked: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let store = LogStore::<Config>::open(WalConfig::new(dir)).await.expect("the child opens the store");
        let router = Router::default();
        let node = start(1, store, &router).await.expect("the node starts");
        if !node.raft.is_initialized().await.expect("the node answers") {
            initialize(std::slice::from_ref(&node)).await.expect("the cluster of one starts");
        }
        assert!(caught_up(&router, &node, TIMEOUT).await, "the node leads and applies its log");
        let mut out = std::io::stdout().lock();
        for i in 0..acked {
            if node.machine.get(&set(i).key).await != Some(set(i).value) {
                writeln!(out, "missing {i}").unwrap();
                out.flush().unwrap();
                std::process::exit(3);
            }
        }
        let vote = node.raft.metrics().borrow().vote;
        writeln!(out, "recovered {} {} {}", vote.leader_id.term, vote.leader_id.node_id, vote.committed)
            .unwrap();
        out.flush().unwrap();
        for i in acked.. {
            write(&router, &set(i), TIMEOUT).await.expect("the node takes the write");
            writeln!(out, "ack {i}").unwrap();
            out.flush().unwrap();
        }
    });
}

/// What the store in `dir` holds once the child is dead: its vote, and
/// the writes its log holds.
fn inspect(dir: &std::path::Path) -> (Option<Vote<u64>>, std::collections::BTreeMap<String, String>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut store = LogStore::<Config>::open(WalConfig::new(dir)).await.expect("the store reopens");
        let vote = store.read_vote().await.unwrap();
        let mut writes = std::collections::BTreeMap::new();
        for entry in store.try_get_log_entries(..).await.unwrap() {
            if let EntryPayload::Normal(set) = entry.payload {
                writes.insert(set.key, set.value);
            }
        }
        (vote, writes)
    })
}

#[test]
fn sigkill_of_a_node_loses_no_acknowledged_write_nor_its_vote() {
    if let Ok(dir) = std::env::var("NORI_WAL_RAFT_KILL_CHILD") {
        let acked = std::env::var("NORI_WAL_RAFT_ACKED").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        child(&dir, acked);
        return;
    }
    let rounds: u32 =
        std::env::var("NORI_WAL_RAFT_KILL_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let scratch = Scratch::new("raft-kill");
    let mut rng = nori_wal_tests::sim::rng(0x4af7);
    let mut acked = 0u64;
    let mut last_vote: Option<Vote<u64>> = None;
    for round in 0..rounds {
        let (mut child, lines, reader) = nori_wal_tests::spawn_child(
            module_path!(),
            "sigkill_of_a_node_loses_no_acknowledged_write_nor_its_vote",
            &[
                ("NORI_WAL_RAFT_KILL_CHILD", scratch.wal().as_os_str()),
                ("NORI_WAL_RAFT_ACKED", std::ffi::OsStr::new(&acked.to_string())),
            ],
        );
        // The child's own lines only (not the test harness's).
        let (tx, rx) = mpsc::channel();
        let own = std::thread::spawn(move || {
            for line in lines {
                if ["recovered ", "missing ", "ack "].iter().any(|p| line.starts_with(p)) {
                    let _ = tx.send(line);
                }
            }
        });
        // The restarted node first proves it holds every write acknowledged
        // before, and says its vote.
        let recovered = rx.recv_timeout(TIMEOUT).expect("the child reports its recovery");
        let fields: Vec<&str> = recovered.split_whitespace().collect();
        assert_eq!(fields.first(), Some(&"recovered"), "round {round}: {recovered}");
        let vote = Vote::new_committed(fields[1].parse().unwrap(), fields[2].parse().unwrap());
        assert_eq!(fields[3], "true", "round {round}: the leader's vote is committed");
        assert!(
            last_vote.is_none_or(|v| v <= vote),
            "round {round}: vote went back from {last_vote:?} to {vote}"
        );
        // Then it writes; it is killed at a random moment.
        let first = rx.recv_timeout(TIMEOUT).expect("the child acknowledged no write");
        std::thread::sleep(Duration::from_millis(rng.random_range(0..400)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        own.join().unwrap();
        let mut lines = vec![first];
        lines.extend(rx.try_iter());
        let acks: Vec<u64> = lines.iter().filter_map(|l| l.strip_prefix("ack ")?.parse().ok()).collect();
        assert_eq!(acks.first(), Some(&acked), "round {round}: writes start after the acknowledged ones");
        assert!(acks.windows(2).all(|w| w[1] == w[0] + 1), "round {round}: acknowledgements in order");
        acked = acks.last().map_or(acked, |a| a + 1);

        let (saved, writes) = inspect(&scratch.wal());
        assert_eq!(saved, Some(vote), "round {round}: the saved vote is the last one the node reported");
        for i in 0..acked {
            assert_eq!(
                writes.get(&set(i).key),
                Some(&set(i).value),
                "round {round}: acknowledged write {i} lost"
            );
        }
        last_vote = Some(vote);
    }
    println!("raft kill test: {rounds} SIGKILLs of a node, {acked} acknowledged writes kept");
}

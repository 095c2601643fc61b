//! Client writes through a three-node openraft cluster in one process
//! (`nori_wal_raft_cluster`), each node's log on nori-wal's log storage
//! (`nori_wal::raft::LogStore`) against the same cluster with an in-memory
//! log storage, alternating in the same run.
//!
//! `cargo bench -p nori-wal-tests --bench raft` (`-- --quick` for a smoke
//! run). `NORI_WAL_BENCH_DIR` places the logs (default: the system's
//! temporary directory).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nori_wal::raft::LogStore;
use nori_wal::{FsyncPolicy, WalConfig};
use nori_wal_raft_cluster::memory::MemoryLog;
use nori_wal_raft_cluster::{Config, Node, Router, Set, initialize, leader, start};

#[derive(Clone, Copy, Debug)]
enum Storage {
    Memory,
    Wal(FsyncPolicy),
}

impl Storage {
    fn name(self) -> String {
        match self {
            Self::Memory => "in-memory log storage".into(),
            Self::Wal(FsyncPolicy::Always) => "nori-wal, `FsyncPolicy::Always` (the default)".into(),
            Self::Wal(policy) => format!("nori-wal, `FsyncPolicy::{policy:?}`"),
        }
    }
}

fn bench_dir(name: &str) -> PathBuf {
    let root = std::env::var("NORI_WAL_BENCH_DIR").map_or_else(|_| std::env::temp_dir(), PathBuf::from);
    let dir = root.join(format!("nori-wal-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Client writes per second: `clients` tasks writing `writes` keys in all
/// through the leader, each write acknowledged (committed) before the
/// task's next.
async fn run(storage: Storage, clients: usize, writes: usize) -> (f64, (f64, f64)) {
    let router = Router::default();
    let dir = bench_dir("raft");
    let mut nodes: Vec<Node> = Vec::new();
    let mut stores = Vec::new();
    for id in 1..=3u64 {
        let node = match storage {
            Storage::Memory => start(id, MemoryLog::default(), &router).await.unwrap(),
            Storage::Wal(policy) => {
                let config = WalConfig::new(dir.join(format!("node-{id}"))).fsync(policy);
                let store = LogStore::<Config>::open(config).await.unwrap();
                stores.push((id, store.clone()));
                start(id, store, &router).await.unwrap()
            }
        };
        nodes.push(node);
    }
    initialize(&nodes).await.unwrap();
    let id = leader(&router, Duration::from_secs(20)).await.expect("a leader");
    let raft = router.get(id).unwrap();
    let set = |i: usize| Set { key: format!("key-{i:08}"), value: format!("value {i:032}") };
    for i in 0..20 {
        raft.client_write(set(i)).await.unwrap();
    }
    let t = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (mut raft, router) = (raft.clone(), router.clone());
            tokio::spawn(async move {
                for i in (c..writes).step_by(clients) {
                    // A new leader (an election on a loaded machine): the
                    // write goes to it.
                    while raft.client_write(set(i)).await.is_err() {
                        let id = leader(&router, Duration::from_secs(20)).await.expect("a leader");
                        raft = router.get(id).expect("the leader is up");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let rate = writes as f64 / t.elapsed().as_secs_f64();
    // Syncs per write, on the leader and on the busiest follower.
    let mut syncs = (0.0, 0.0);
    for (node, store) in &stores {
        let st = store.wal().stats();
        let per_write = st.syncs as f64 / st.records.max(1) as f64;
        if *node == id {
            syncs.0 = per_write;
        } else {
            syncs.1 = f64::max(syncs.1, per_write);
        }
    }
    for node in nodes {
        node.raft.shutdown().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
    (rate, syncs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 1 } else { 3 };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let kinds = [
        Storage::Memory,
        Storage::Wal(FsyncPolicy::Always),
        Storage::Wal(FsyncPolicy::Batch(Duration::from_millis(1))),
    ];
    println!("machine: {} cores", std::thread::available_parallelism().map_or(0, usize::from));
    for (clients, writes) in [(1usize, 1000usize), (64, 20_000)] {
        let writes = if quick { 64 } else { writes };
        // Alternating: each round runs every storage once, in turn.
        let mut rates = vec![Vec::new(); kinds.len()];
        let mut syncs = vec![(0.0, 0.0); kinds.len()];
        for _ in 0..rounds {
            for (k, kind) in kinds.iter().enumerate() {
                let (rate, per_write) = runtime.block_on(run(*kind, clients, writes));
                rates[k].push(rate);
                syncs[k] = per_write;
            }
        }
        println!(
            "\n### {clients} client(s), {writes} writes of 50-byte values, 3 nodes (medians of {rounds} alternating rounds)\n"
        );
        println!(
            "| log storage | writes/s | vs in-memory | each round | syncs per write: leader, follower |"
        );
        println!("|---|---:|---:|---|---|");
        let base = median(rates[0].clone());
        for ((kind, r), s) in kinds.iter().zip(&rates).zip(&syncs) {
            let each: Vec<String> = r.iter().map(|x| format!("{x:.0}")).collect();
            let rate = median(r.clone());
            let syncs =
                if matches!(kind, Storage::Memory) { "-".into() } else { format!("{:.2}, {:.2}", s.0, s.1) };
            println!("| {} | {rate:.0} | {:.3}x | {} | {syncs} |", kind.name(), rate / base, each.join(", "));
        }
    }
}

//! Three nodes of a replicated key-value store in one process, each with
//! nori-wal as its Raft log storage. Writes go through the leader; the
//! leader is stopped, its directory reopened and the node restarted; a new
//! leader is elected, the old one rejoins and catches up. Checks, and
//! prints, that no acknowledged write was lost on any node.
//!
//! `cargo run -p nori-wal-raft-cluster [DIR]` (a temporary directory by
//! default, removed at the end).

use std::path::PathBuf;
use std::time::Duration;

use nori_wal::WalConfig;
use nori_wal::raft::LogStore;
use nori_wal_raft_cluster::{Config, Node, Router, Set, caught_up, initialize, leader, start, write};

const TIMEOUT: Duration = Duration::from_secs(20);

fn set(i: usize) -> Set {
    Set { key: format!("key-{i:05}"), value: format!("value {i}") }
}

async fn open_node(
    dir: &std::path::Path,
    id: u64,
    router: &Router,
) -> Result<Node, Box<dyn std::error::Error>> {
    let store = LogStore::<Config>::open(WalConfig::new(dir.join(format!("node-{id}")))).await?;
    Ok(start(id, store, router).await?)
}

/// Writes `range` through the leader; returns how many were acknowledged.
async fn write_all(router: &Router, range: std::ops::Range<usize>) -> Result<usize, String> {
    let n = range.len();
    for i in range {
        write(router, &set(i), TIMEOUT).await?;
    }
    Ok(n)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dir, temporary) = match std::env::args().nth(1) {
        Some(dir) => (PathBuf::from(dir), false),
        None => (std::env::temp_dir().join(format!("nori-wal-raft-cluster-{}", std::process::id())), true),
    };
    let router = Router::default();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(open_node(&dir, id, &router).await?);
    }
    initialize(&nodes).await?;
    let first = leader(&router, TIMEOUT).await.ok_or("no leader elected")?;
    println!("3 nodes in {}; node {first} leads", dir.display());

    let mut acked = write_all(&router, 0..300).await?;
    println!("{acked} writes acknowledged through node {first}");

    // The leader stops: its Raft task ends and it leaves the network.
    router.remove(first);
    let old = nodes.iter().position(|n| n.id == first).ok_or("leader not among the nodes")?;
    nodes.remove(old).raft.shutdown().await?;
    let second = leader(&router, TIMEOUT).await.ok_or("no new leader elected")?;
    println!("node {first} stopped; node {second} leads now");

    acked += write_all(&router, 300..500).await?;
    println!("{acked} writes acknowledged in all");

    // The old leader's directory reopened, the node restarted: it rebuilds
    // its state machine from its log, then catches up from the leader.
    let back = open_node(&dir, first, &router).await?;
    println!("node {first} restarted from {}", dir.join(format!("node-{first}")).display());
    if !caught_up(&router, &back, TIMEOUT).await {
        return Err(format!("node {first} did not catch up").into());
    }
    nodes.push(back);

    let mut lost = 0;
    for node in &nodes {
        caught_up(&router, node, TIMEOUT).await;
        let mut missing = 0;
        for i in 0..acked {
            if node.machine.get(&set(i).key).await.as_deref() != Some(set(i).value.as_str()) {
                missing += 1;
            }
        }
        println!(
            "node {}: {} keys, {missing} acknowledged writes missing",
            node.id,
            node.machine.len().await
        );
        lost += missing;
    }
    for node in &nodes {
        node.raft.shutdown().await?;
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if lost > 0 {
        return Err(format!("{lost} acknowledged writes lost").into());
    }
    println!("no acknowledged write was lost");
    Ok(())
}

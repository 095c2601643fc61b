//! A replicated key-value store on openraft, with nori-wal as each node's
//! log storage (`nori_wal::raft::LogStore`): the state machine, an
//! in-process network, an in-memory log storage to compare with, and the
//! helpers the example (`src/main.rs`), the crash test and the benchmark
//! share.

pub mod machine;
pub mod memory;
pub mod network;

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, Raft};

pub use machine::{Config, Machine, Set};
pub use network::Router;

/// A node: its Raft handle and its state machine.
#[derive(Clone)]
pub struct Node {
    /// The node's id.
    pub id: u64,
    /// The running Raft node.
    pub raft: Raft<Config>,
    /// Its state machine.
    pub machine: Machine,
}

/// openraft's timing for nodes in one process: heartbeats every 50 ms,
/// elections after 150–300 ms of silence, snapshots only when asked (so
/// that every entry stays in the log, where the tests look for it).
///
/// # Panics
///
/// Never: the values are valid.
#[must_use]
pub fn raft_config() -> Arc<openraft::Config> {
    let config = openraft::Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        snapshot_policy: openraft::SnapshotPolicy::Never,
        ..Default::default()
    };
    Arc::new(config.validate().expect("a valid openraft configuration"))
}

/// Starts node `id` on `log_store`, with a fresh state machine, reachable
/// through `router`.
///
/// # Errors
///
/// openraft's, when the node cannot start (its storage fails).
pub async fn start<LS: RaftLogStorage<Config>>(
    id: u64,
    log_store: LS,
    router: &Router,
) -> Result<Node, openraft::error::Fatal<u64>> {
    let machine = Machine::default();
    let raft = Raft::new(id, raft_config(), router.clone(), log_store, machine.clone()).await?;
    router.add(id, raft.clone());
    Ok(Node { id, raft, machine })
}

/// Makes `nodes` one cluster, from the first of them.
///
/// # Errors
///
/// openraft's.
pub async fn initialize(nodes: &[Node]) -> Result<(), Box<dyn std::error::Error>> {
    let members =
        nodes.iter().map(|n| (n.id, BasicNode::default())).collect::<std::collections::BTreeMap<_, _>>();
    nodes[0].raft.initialize(members).await?;
    Ok(())
}

/// The leader of the newest term among the running nodes, once it says
/// so itself, waiting up to `timeout`. (A restarted leader may still
/// believe in its old term until it hears of the new one.)
#[must_use]
pub async fn leader(router: &Router, timeout: Duration) -> Option<u64> {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        let newest = router
            .nodes()
            .iter()
            .map(|raft| raft.metrics().borrow().clone())
            .filter_map(|m| Some((m.current_term, m.current_leader?)))
            .max();
        if let Some((term, leader)) = newest
            && router.get(leader).is_some_and(|r| {
                let m = r.metrics().borrow().clone();
                m.current_term == term && m.current_leader == Some(leader)
            })
        {
            return Some(leader);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Writes `set` through the cluster's leader, waiting for one (up to
/// `timeout`) and following a redirect. Returns once the leader says the
/// write is committed: acknowledged.
///
/// # Errors
///
/// The last error when no leader took the write in time.
pub async fn write(router: &Router, set: &Set, timeout: Duration) -> Result<(), String> {
    let until = Instant::now() + timeout;
    let mut last = String::from("no leader");
    while Instant::now() < until {
        if let Some(leader) = leader(router, until.saturating_duration_since(Instant::now())).await
            && let Some(raft) = router.get(leader)
        {
            match raft.client_write(set.clone()).await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => last = format!("{f}"),
                Err(e) => last = e.to_string(),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(last)
}

/// Waits until `node` follows the leader of the newest term and has
/// applied its last log index (up to `timeout`); whether it did.
pub async fn caught_up(router: &Router, node: &Node, timeout: Duration) -> bool {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if let Some(leader) = leader(router, Duration::from_millis(500)).await
            && let Some(target) = router.get(leader).and_then(|r| r.metrics().borrow().last_log_index)
        {
            let metrics = node.raft.metrics().borrow().clone();
            if metrics.current_leader == Some(leader) && metrics.last_applied.map(|l| l.index) >= Some(target)
            {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

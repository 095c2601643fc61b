//! An in-process network: each RPC is a call on the target node's Raft
//! handle; a node removed from the router is unreachable, as a stopped
//! machine is.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};

use crate::Config;

/// The nodes that are up, by id; clones share them.
#[derive(Clone, Default)]
pub struct Router {
    nodes: Arc<Mutex<BTreeMap<u64, Raft<Config>>>>,
}

impl Router {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Raft<Config>>> {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes node `id` reachable.
    pub fn add(&self, id: u64, raft: Raft<Config>) {
        self.lock().insert(id, raft);
    }

    /// Makes node `id` unreachable; returns its handle.
    pub fn remove(&self, id: u64) -> Option<Raft<Config>> {
        self.lock().remove(&id)
    }

    /// Node `id`, when it is up.
    #[must_use]
    pub fn get(&self, id: u64) -> Option<Raft<Config>> {
        self.lock().get(&id).cloned()
    }

    /// The nodes that are up.
    #[must_use]
    pub fn nodes(&self) -> Vec<Raft<Config>> {
        self.lock().values().cloned().collect()
    }
}

impl RaftNetworkFactory<Config> for Router {
    type Network = Client;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Client {
        Client { router: self.clone(), target }
    }
}

/// A connection to one node.
pub struct Client {
    router: Router,
    target: u64,
}

impl Client {
    // openraft's own error type, as its traits return it.
    #[allow(clippy::result_large_err)]
    fn target<E: std::error::Error>(&self) -> Result<Raft<Config>, RPCError<u64, BasicNode, E>> {
        self.router.get(self.target).ok_or_else(|| {
            let down = std::io::Error::other(format!("node {} is down", self.target));
            RPCError::Unreachable(Unreachable::new(&down))
        })
    }
}

impl RaftNetwork<Config> for Client {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Config>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let raft = self.target()?;
        raft.append_entries(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Config>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>>
    {
        let raft = self.target()?;
        raft.install_snapshot(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let raft = self.target()?;
        raft.vote(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

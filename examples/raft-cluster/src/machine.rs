//! A small in-memory key-value state machine: what an application keeps
//! beside its log (its snapshots in memory too). After a restart it is
//! rebuilt from the log (openraft re-applies the committed entries).

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};

/// A client's write: set `key` to `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Set {
    /// The key.
    pub key: String,
    /// Its new value.
    pub value: String,
}

openraft::declare_raft_types!(
    /// The cluster's Raft types: writes of one key, node ids of u64.
    pub Config: D = Set, R = Option<String>
);

#[derive(Default)]
struct Inner {
    applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    data: BTreeMap<String, String>,
    snapshot: Option<(SnapshotMeta<u64, BasicNode>, Vec<u8>)>,
    snapshots: u64,
}

/// The state machine; clones share it.
#[derive(Clone, Default)]
pub struct Machine(Arc<tokio::sync::Mutex<Inner>>);

impl Machine {
    /// The value of `key`.
    pub async fn get(&self, key: &str) -> Option<String> {
        self.0.lock().await.data.get(key).cloned()
    }

    /// How many keys it holds.
    pub async fn len(&self) -> usize {
        self.0.lock().await.data.len()
    }

    /// Whether it holds no key.
    pub async fn is_empty(&self) -> bool {
        self.len().await == 0
    }
}

fn snapshot_of(meta: &SnapshotMeta<u64, BasicNode>, bytes: &[u8]) -> Snapshot<Config> {
    Snapshot { meta: meta.clone(), snapshot: Box::new(Cursor::new(bytes.to_vec())) }
}

impl RaftSnapshotBuilder<Config> for Machine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Config>, StorageError<u64>> {
        let mut inner = self.0.lock().await;
        let bytes = postcard::to_stdvec(&inner.data).map_err(|e| StorageIOError::read_state_machine(&e))?;
        inner.snapshots += 1;
        let id = match &inner.applied {
            Some(applied) => format!("{}-{}-{}", applied.leader_id, applied.index, inner.snapshots),
            None => format!("--{}", inner.snapshots),
        };
        let meta = SnapshotMeta {
            last_log_id: inner.applied,
            last_membership: inner.membership.clone(),
            snapshot_id: id,
        };
        inner.snapshot = Some((meta.clone(), bytes.clone()));
        Ok(snapshot_of(&meta, &bytes))
    }
}

impl RaftStateMachine<Config> for Machine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let inner = self.0.lock().await;
        Ok((inner.applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Option<String>>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<Config>> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.0.lock().await;
        let mut out = Vec::new();
        for entry in entries {
            inner.applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => out.push(None),
                EntryPayload::Normal(set) => out.push(inner.data.insert(set.key, set.value)),
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembership::new(Some(entry.log_id), m);
                    out.push(None);
                }
            }
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let bytes = snapshot.into_inner();
        let data = postcard::from_bytes(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let mut inner = self.0.lock().await;
        inner.data = data;
        inner.applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.snapshot = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Config>>, StorageError<u64>> {
        let inner = self.0.lock().await;
        Ok(inner.snapshot.as_ref().map(|(meta, bytes)| snapshot_of(meta, bytes)))
    }
}

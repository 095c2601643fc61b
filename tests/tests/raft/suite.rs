//! openraft's own storage suite (`openraft::testing::Suite::test_all`)
//! against `nori_wal::raft::LogStore`, each of its tests on a fresh
//! directory.

use nori_wal::WalConfig;
use nori_wal::raft::LogStore;
use nori_wal_tests::walkit::Scratch;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{StorageError, StorageIOError};

use nori_wal_raft_cluster::{Config, Machine};

struct Builder;

impl StoreBuilder<Config, LogStore<Config>, Machine, Scratch> for Builder {
    async fn build(&self) -> Result<(Scratch, LogStore<Config>, Machine), StorageError<u64>> {
        let scratch = Scratch::new("raft-suite");
        let store =
            LogStore::open(WalConfig::new(scratch.wal())).await.map_err(|e| StorageIOError::write(&e))?;
        Ok((scratch, store, Machine::default()))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    Suite::test_all(Builder).unwrap();
}

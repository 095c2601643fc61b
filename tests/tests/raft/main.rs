//! nori-wal as openraft's log storage: openraft's own storage suite, and
//! nodes on it (`raft::LogStore`, feature `openraft`).

mod kill;
mod store;
mod suite;

//! The storage trait: the only door to disk for the Raft layer.
//!
//! One store per node holds the Raft logs and Raft state of every group on
//! it, and on a witness the cross-region log's records, in column families
//! ([`Cf`]). Sharing one store means one
//! write-ahead log: fsyncs of different shards are grouped for free.
//! Raft and keyspace code see only this trait; the RocksDB implementation
//! ([`RocksStorage`]) is the one place that imports `rocksdb`.
//! [`GroupCommit`] turns many appenders' writes and durability waits into
//! one store write and one fsync.
//!
//! # Correctness
//!
//! - [`Storage::write`] applies a batch atomically: all of it or none of it
//!   is visible, before and after a crash.
//! - After [`Storage::sync`] returns `Ok`, every batch written before the
//!   call survives a power loss.
//! - Reads see every batch whose `write` has returned.

mod group_commit;
mod rocks;
#[cfg(test)]
pub mod test_store;

use std::path::Path;

pub use group_commit::GroupCommit;
pub use rocks::RocksStorage;

use crate::error::Result;

/// A column family of the node store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cf {
    /// Raft log entries: key `group (u64 BE) ‖ index (u64 BE)`.
    RaftLog,
    /// Raft state (vote, committed, last purged): key `group (u64 BE) ‖ name`.
    RaftState,
    /// The witness's cross-region log records: key `shard (u64 BE) ‖ gseq
    /// (u64 BE)` (see [`crate::witness`]).
    Xlog,
}

impl Cf {
    /// Every column family, in creation order.
    pub const ALL: [Cf; 3] = [Cf::RaftLog, Cf::RaftState, Cf::Xlog];

    /// The on-disk name.
    pub fn name(self) -> &'static str {
        match self {
            Cf::RaftLog => "raft_log",
            Cf::RaftState => "raft_state",
            Cf::Xlog => "xlog",
        }
    }
}

/// One change inside a [`Batch`].
#[derive(Debug, Clone)]
pub enum BatchOp {
    /// Store `value` under `key`.
    Put(Cf, Vec<u8>, Vec<u8>),
    /// Remove every key in `[from, to)`.
    DeleteRange(Cf, Vec<u8>, Vec<u8>),
}

/// Changes applied together by [`Storage::write`].
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The changes, in order.
    pub ops: Vec<BatchOp>,
}

impl Batch {
    /// Adds a put.
    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Put(cf, key.into(), value.into()));
    }

    /// Adds a range deletion of `[from, to)`.
    pub fn delete_range(&mut self, cf: Cf, from: impl Into<Vec<u8>>, to: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::DeleteRange(cf, from.into(), to.into()));
    }

    /// The bytes of keys and values it holds.
    pub fn bytes(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                BatchOp::Put(_, key, value) => key.len() + value.len(),
                BatchOp::DeleteRange(_, from, to) => from.len() + to.len(),
            })
            .sum()
    }
}

/// A key-value store with column families, atomic batches and explicit sync.
pub trait Storage: Send + Sync + 'static {
    /// The value of `key`, if any.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Key-value pairs in `[from, to)`, in key order, at most `limit` of them.
    fn scan(&self, cf: Cf, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Key-value pairs in `[from, to)`, in key order, each read while the
    /// values before it hold fewer than `bytes` (the first always is).
    fn scan_bytes(&self, cf: Cf, from: &[u8], to: &[u8], bytes: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// The last key-value pair in `[from, to)`.
    fn last(&self, cf: Cf, from: &[u8], to: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>>;

    /// Applies `batch` atomically (not yet durable; see [`Storage::sync`]).
    fn write(&self, batch: Batch) -> Result<()>;

    /// Makes every write so far durable.
    fn sync(&self) -> Result<()>;

    /// Where the store lives, for error messages.
    fn path(&self) -> &Path;
}

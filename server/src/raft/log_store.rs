//! The Raft log of one group, kept in the node's shared [`Storage`].
//!
//! Keys are `group (u64 BE) ‖ index (u64 BE)` in [`Cf::RaftLog`], so one
//! group's entries are contiguous and in index order; the vote, the
//! committed log id and the last purged log id live under
//! `group ‖ name` in [`Cf::RaftState`].
//!
//! Every record is stored as `crc32 (u32 LE) ‖ postcard(entry)`. A record
//! whose checksum does not match is reported with the store, the group and
//! the index, and the group stops: a node never serves from a log it cannot
//! trust.
//!
//! # Correctness
//!
//! - `append` makes entries readable before it returns and calls the flush
//!   callback only once they are durable (per the fsync setting).
//! - `save_vote` is durable before it returns (a node must never vote twice
//!   in a term, even across a crash).
//! - `save_committed` lets a restarted node re-apply its committed log on top
//!   of its last snapshot before serving reads.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::entry::RaftEntry;
use openraft::storage::RaftLogStorage;
use openraft::{OptionalSend, RaftLogReader};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Fsync;
use crate::error::Error;
use crate::raft::typ::{Entry, GroupId, IoFlushed, LogId, LogState, TypeConfig, Vote};
use crate::storage::{Batch, Cf, GroupCommit, Storage};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const PURGED: &[u8] = b"purged";

/// One group's view of the node store.
#[derive(Clone)]
pub struct LogStore {
    storage: Arc<dyn Storage>,
    group: GroupId,
    /// Where appends wait for durability; `None` when fsync is off.
    commit: Option<GroupCommit>,
}

impl LogStore {
    /// The log of `group` inside `storage`; with `fsync` on, appends are
    /// acknowledged through the node's shared `commit`.
    pub fn new(storage: Arc<dyn Storage>, group: GroupId, fsync: Fsync, commit: GroupCommit) -> Self {
        LogStore {
            storage,
            group,
            commit: (fsync == Fsync::Always).then_some(commit),
        }
    }

    fn log_key(&self, index: u64) -> [u8; 16] {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&self.group.to_be_bytes());
        key[8..].copy_from_slice(&index.to_be_bytes());
        key
    }

    /// Keys of this group lie in `[log_key(0), end_key())`.
    fn end_key(&self) -> [u8; 8] {
        (self.group + 1).to_be_bytes()
    }

    fn state_key(&self, name: &[u8]) -> Vec<u8> {
        let mut key = self.group.to_be_bytes().to_vec();
        key.extend_from_slice(name);
        key
    }

    fn decode_entry(&self, key: &[u8], value: &[u8]) -> Result<Entry, Error> {
        let index = u64::from_be_bytes(key[8..16].try_into().expect("log keys are 16 bytes"));
        let corrupt = |detail: String| Error::Corrupt {
            what: "raft log record",
            path: self
                .storage
                .path()
                .join(format!("{}/group-{}", Cf::RaftLog.name(), self.group)),
            offset: index,
            detail,
        };
        if value.len() < 4 {
            return Err(corrupt(format!("record of {} bytes is too short", value.len())));
        }
        let (crc, payload) = value.split_at(4);
        let stored = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
        let actual = crc32fast::hash(payload);
        if stored != actual {
            return Err(corrupt(format!(
                "crc32 mismatch (stored {stored:#010x}, computed {actual:#010x})"
            )));
        }
        let entry: Entry = postcard::from_bytes(payload).map_err(|e| corrupt(format!("undecodable: {e}")))?;
        if entry.index() != index {
            return Err(corrupt(format!("record holds index {}", entry.index())));
        }
        Ok(entry)
    }

    fn get_state<T: DeserializeOwned>(&self, name: &[u8]) -> io::Result<Option<T>> {
        let Some(bytes) = self
            .storage
            .get(Cf::RaftState, &self.state_key(name))
            .map_err(io::Error::other)?
        else {
            return Ok(None);
        };
        let value = postcard::from_bytes(&bytes).map_err(|e| {
            io::Error::other(Error::Corrupt {
                what: "raft state",
                path: self.storage.path().join(Cf::RaftState.name()),
                offset: self.group,
                detail: format!("{} undecodable: {e}", String::from_utf8_lossy(name)),
            })
        })?;
        Ok(Some(value))
    }

    fn put_state<T: Serialize>(&self, batch: &mut Batch, name: &[u8], value: &T) -> io::Result<()> {
        let bytes = postcard::to_allocvec(value).map_err(io::Error::other)?;
        batch.put(Cf::RaftState, self.state_key(name), bytes);
        Ok(())
    }

    async fn sync(&self) -> io::Result<()> {
        let storage = self.storage.clone();
        tokio::task::spawn_blocking(move || storage.sync())
            .await
            .map_err(io::Error::other)?
            .map_err(io::Error::other)
    }
}

/// Encodes a log record: `crc32 (u32 LE) ‖ postcard(entry)`.
pub fn encode_entry(entry: &Entry) -> io::Result<Vec<u8>> {
    let size = postcard::experimental::serialized_size(entry).map_err(io::Error::other)?;
    let mut record = Vec::with_capacity(4 + size);
    record.extend_from_slice(&[0; 4]);
    postcard::to_io(entry, &mut record).map_err(io::Error::other)?;
    let crc = crc32fast::hash(&record[4..]);
    record[..4].copy_from_slice(&crc.to_le_bytes());
    Ok(record)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let from = self.log_key(start);
        let to: Vec<u8> = match range.end_bound() {
            Bound::Included(&i) if i < u64::MAX => self.log_key(i + 1).to_vec(),
            Bound::Excluded(&i) => self.log_key(i).to_vec(),
            _ => self.end_key().to_vec(),
        };
        if from.as_slice() >= to.as_slice() {
            return Ok(Vec::new());
        }
        let records = self
            .storage
            .scan(Cf::RaftLog, &from, &to, usize::MAX)
            .map_err(io::Error::other)?;
        records
            .iter()
            .map(|(k, v)| self.decode_entry(k, v).map_err(io::Error::other))
            .collect()
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        self.get_state(VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> io::Result<LogState> {
        let last_purged_log_id: Option<LogId> = self.get_state(PURGED)?;
        let last = self
            .storage
            .last(Cf::RaftLog, &self.log_key(0), &self.end_key())
            .map_err(io::Error::other)?;
        let last_log_id = match last {
            Some((k, v)) => Some(self.decode_entry(&k, &v).map_err(io::Error::other)?.log_id()),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        let mut batch = Batch::default();
        self.put_state(&mut batch, VOTE, vote)?;
        self.storage.write(batch).map_err(io::Error::other)?;
        // A vote is a promise: it must survive a crash whatever the fsync setting.
        self.sync().await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        let mut batch = Batch::default();
        self.put_state(&mut batch, COMMITTED, &committed)?;
        self.storage.write(batch).map_err(io::Error::other)
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        Ok(self.get_state::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IoFlushed) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
    {
        let mut batch = Batch::default();
        for entry in entries {
            batch.put(Cf::RaftLog, self.log_key(entry.index()), encode_entry(&entry)?);
        }
        fail::fail_point!("log-append-before");
        self.storage.write(batch).map_err(io::Error::other)?;
        fail::fail_point!("log-append-after");
        match &self.commit {
            Some(commit) => commit.after_sync(move |result| callback.io_completed(result.map_err(io::Error::other))),
            None => callback.io_completed(Ok(())),
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let from = last_log_id.map_or(0, |id| id.index() + 1);
        let mut batch = Batch::default();
        batch.delete_range(Cf::RaftLog, self.log_key(from), self.end_key());
        self.storage.write(batch).map_err(io::Error::other)
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        // Record the purge point first: entries at or below it are ignored
        // from then on, so a crash between the two steps is harmless.
        let mut batch = Batch::default();
        self.put_state(&mut batch, PURGED, &log_id)?;
        batch.delete_range(Cf::RaftLog, self.log_key(0), self.log_key(log_id.index() + 1));
        self.storage.write(batch).map_err(io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use openraft::StorageError;
    use openraft::testing::log::{StoreBuilder, Suite};
    use openraft::vote::RaftLeaderIdExt;

    use super::*;
    use crate::raft::state_machine::StateMachine;
    use crate::storage::RocksStorage;

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
            let dir = tempfile::tempdir().expect("temp dir");
            let storage: Arc<dyn Storage> =
                Arc::new(RocksStorage::open(&dir.path().join("store")).expect("open store"));
            let commit = GroupCommit::start(&storage).expect("committer");
            let log = LogStore::new(storage, 7, Fsync::Always, commit);
            let sm = StateMachine::open(dir.path().join("snapshots")).expect("state machine");
            Ok((dir, log, sm))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_openraft_storage_conformance_suite() {
        Suite::test_all(Builder).await.expect("conformance suite");
    }

    #[tokio::test]
    async fn a_record_with_a_bad_checksum_names_group_and_index() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(RocksStorage::open(dir.path()).unwrap());
        let commit = GroupCommit::start(&storage).unwrap();
        let mut log = LogStore::new(storage.clone(), 3, Fsync::Never, commit);
        let entry = Entry {
            log_id: LogId::new(
                <openraft::alias::LeaderIdOf<TypeConfig> as RaftLeaderIdExt>::new_committed(1, 1),
                5,
            ),
            payload: openraft::EntryPayload::Blank,
        };
        let mut record = encode_entry(&entry).unwrap();
        let last = record.len() - 1;
        record[last] ^= 1;
        let mut batch = Batch::default();
        batch.put(Cf::RaftLog, log.log_key(5), record);
        storage.write(batch).unwrap();
        let err = log.try_get_log_entries(5..6).await.unwrap_err().to_string();
        assert!(err.contains("crc32 mismatch"), "{err}");
        assert!(err.contains("group-3") && err.contains("offset 5"), "{err}");
    }
}

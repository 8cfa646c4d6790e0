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
//! The newest entries are also kept in memory ([`Recent`]): a leader reads
//! back every entry it replicates, once per follower, and those reads are
//! almost always of what was appended a moment ago. Only a follower that
//! fell further behind makes the leader read (and check) the store, at
//! most [`PAYLOAD_BYTES`] of it (and one entry more) per request.
//!
//! With fsync on, every change goes through the node's [`GroupCommit`],
//! which writes the batches of all groups queued since its last sync as one
//! store write: an append returns once its batch is queued (when the
//! queue is full, once it has room again), and the entries it added are
//! read from memory until their batch is written ([`Recent`] keeps them
//! until then, whatever its bounds). Truncations, purges and votes are
//! queued behind the appends before them and waited for, so the store sees
//! every group's changes in the order they were made.
//!
//! # Correctness
//!
//! - `append` makes entries readable before it returns (from memory, until
//!   the store holds them) and calls the flush callback only once they are
//!   durable (per the fsync setting).
//! - `save_vote` is durable before it returns (a node must never vote twice
//!   in a term, even across a crash).
//! - `save_committed` lets a restarted node re-apply its committed log on top
//!   of its last snapshot before serving reads. It is only a head start (a
//!   node that restarts behind learns the rest from its leader), so the
//!   newest committed id is not written on its own but rides along with the
//!   next append: commits advance once per batch on every replica, and a
//!   write of their own would double the store's writes.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

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
/// Newest entries a group keeps in memory for replication.
const RECENT_ENTRIES: usize = 1024;
/// Most bytes (as stored) of entries a group keeps in memory: an entry
/// may hold many writes (see [`crate::proposals`]), so a count alone
/// would let busy groups keep hundreds of MiB. Decoded, entries take some
/// three times their stored size; a leader mostly replicates its last
/// few entries, so a few of them suffice (more cost memory and, measured,
/// throughput: BENCHMARKS.md).
const RECENT_BYTES: usize = 64 * 1024;
/// Most bytes (as stored) of entries a follower is sent in one request,
/// beyond one entry more. openraft bounds a request by its count of
/// entries only (`max_payload_entries`), and one entry may hold a write of
/// up to [`crate::proposals::MAX_WRITE_BYTES`]: a follower catching up
/// could be sent more than a replication frame holds
/// ([`crate::raft::append_link::MAX_FRAME`]) and never catch up.
pub const PAYLOAD_BYTES: usize = 8 << 20;

/// The newest entries of a group's log, with consecutive indexes; always
/// the last entries of the log (appends, truncations and purges change
/// both, and an append always extends the log's end), and every entry
/// not yet written to the store.
#[derive(Default)]
struct Recent {
    /// Each entry with its size as stored.
    entries: VecDeque<(Entry, usize)>,
    /// The sizes' sum.
    bytes: usize,
    /// Entries below this index are in the store (or gone from the log),
    /// so they may be forgotten here.
    written_below: u64,
}

impl Recent {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.index())
    }

    /// Keeps `appended` (each with its size as stored, not yet written),
    /// which follow the entries kept (openraft truncates a conflicting tail
    /// before it appends over it); anything else starts afresh. The oldest
    /// written entries go once more than [`RECENT_ENTRIES`] or
    /// [`RECENT_BYTES`] are kept.
    fn append(&mut self, appended: Vec<(Entry, usize)>) {
        let Some((first, _)) = appended.first() else {
            return;
        };
        self.written_below = self.written_below.min(first.index());
        let follows = self
            .entries
            .back()
            .is_none_or(|(last, _)| last.index() + 1 == first.index());
        if !follows {
            debug_assert!(
                self.entries.iter().all(|(e, _)| e.index() < self.written_below),
                "an append that does not follow would forget entries not yet written"
            );
            self.entries.clear();
            self.bytes = 0;
        }
        for (entry, size) in appended {
            self.bytes += size;
            self.entries.push_back((entry, size));
        }
        self.forget_written_beyond_bounds();
    }

    /// Records that the entries up to and including index `last` are in
    /// the store.
    fn written(&mut self, last: u64) {
        self.written_below = self.written_below.max(last + 1);
        self.forget_written_beyond_bounds();
    }

    fn forget_written_beyond_bounds(&mut self) {
        while (self.entries.len() > RECENT_ENTRIES || self.bytes > RECENT_BYTES)
            && self.first_index().is_some_and(|first| first < self.written_below)
        {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((_, size)) = self.entries.pop_front() {
            self.bytes -= size;
        }
    }

    /// Forgets entries from index `from` on.
    fn truncate(&mut self, from: u64) {
        while self.entries.back().is_some_and(|(e, _)| e.index() >= from) {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes -= size;
            }
        }
    }

    /// Forgets entries up to and including index `upto`.
    fn purge(&mut self, upto: u64) {
        while self.entries.front().is_some_and(|(e, _)| e.index() <= upto) {
            self.pop_front();
        }
    }

    /// Entries `[start, end)` (`end` `None`: to the last) if all that the
    /// log holds of them are kept. The entries kept are the log's last ones,
    /// so a range that starts among them is whole up to the log's end.
    fn get(&self, start: u64, end: Option<u64>) -> Option<impl Iterator<Item = &(Entry, usize)>> {
        let first = self.first_index()?;
        let kept_end = first + self.entries.len() as u64;
        let end = end.map_or(kept_end, |end| end.min(kept_end));
        (first <= start && start <= end && end <= kept_end)
            .then(|| self.entries.range((start - first) as usize..(end - first) as usize))
    }
}

/// One group's view of the node store.
#[derive(Clone)]
pub struct LogStore {
    storage: Arc<dyn Storage>,
    group: GroupId,
    /// Where every change is queued to be written and synced (see the
    /// module's essay); `None` when fsync is off.
    commit: Option<GroupCommit>,
    /// The newest entries, shared with every clone (log readers).
    recent: Arc<Mutex<Recent>>,
    /// The newest committed log id not yet queued with an append (see the
    /// module's correctness notes).
    unsaved_commit: Arc<Mutex<Option<LogId>>>,
}

impl LogStore {
    /// The log of `group` inside `storage`; with `fsync` on, appends are
    /// acknowledged through the node's shared `commit`.
    pub fn new(storage: Arc<dyn Storage>, group: GroupId, fsync: Fsync, commit: GroupCommit) -> Self {
        LogStore {
            storage,
            group,
            commit: (fsync == Fsync::Always).then_some(commit),
            recent: Arc::default(),
            unsaved_commit: Arc::default(),
        }
    }

    fn unsaved_commit(&self) -> std::sync::MutexGuard<'_, Option<LogId>> {
        self.unsaved_commit.lock().expect("unsaved commit lock")
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().expect("recent entries lock")
    }

    fn log_key(&self, index: u64) -> [u8; 16] {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&self.group.to_be_bytes());
        key[8..].copy_from_slice(&index.to_be_bytes());
        key
    }

    /// Keys of this group lie in `[log_key(0), end_key())`: the next
    /// group's first key or, for the last group id (the meta group's),
    /// a key after every 16-byte key.
    fn end_key(&self) -> Vec<u8> {
        match self.group.checked_add(1) {
            Some(next) => next.to_be_bytes().to_vec(),
            None => [0xff; 17].to_vec(),
        }
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

    /// Writes `batch` behind every change queued before it (see the
    /// module's essay); with fsync on, it is durable on return.
    async fn write(&self, batch: Batch) -> io::Result<()> {
        match &self.commit {
            Some(commit) => commit.write_durably(batch).await.map_err(io::Error::other),
            None => self.storage.write(batch).map_err(io::Error::other),
        }
    }

    async fn sync(&self) -> io::Result<()> {
        let storage = self.storage.clone();
        tokio::task::spawn_blocking(move || storage.sync())
            .await
            .map_err(io::Error::other)?
            .map_err(io::Error::other)
    }

    /// The entries in `[start, end)`, oldest first, each taken while the
    /// entries before it hold fewer than `bytes` as stored (the first
    /// always is).
    fn read_entries(&self, start: u64, end: Option<u64>, bytes: usize) -> io::Result<Vec<Entry>> {
        if end.is_some_and(|end| end <= start) {
            return Ok(Vec::new());
        }
        // The entries kept in memory may not be in the store yet, so a range
        // that runs into them takes them from memory, and the rest from the
        // store, where every older entry is.
        let (store_end, kept) = {
            let recent = self.recent();
            if let Some(kept) = recent.get(start, end) {
                let mut entries = Vec::new();
                take_within(kept.cloned(), bytes, &mut 0, &mut entries);
                return Ok(entries);
            }
            let first_kept = recent
                .first_index()
                .filter(|&first| start < first && end.is_none_or(|end| first < end));
            match first_kept {
                Some(first) => (
                    Some(first),
                    recent
                        .get(first, end)
                        .map(|kept| kept.cloned().collect())
                        .unwrap_or_default(),
                ),
                None => (end, Vec::new()),
            }
        };
        let from = self.log_key(start);
        let to = store_end.map_or_else(|| self.end_key(), |end| self.log_key(end).to_vec());
        let records = self
            .storage
            .scan_bytes(Cf::RaftLog, &from, &to, bytes)
            .map_err(io::Error::other)?;
        let mut entries = Vec::with_capacity(records.len() + kept.len());
        let mut taken = 0;
        for (key, record) in &records {
            entries.push(self.decode_entry(key, record).map_err(io::Error::other)?);
            taken += record.len();
        }
        // Past the bound within the store, nothing kept may follow: it
        // would leave a gap.
        take_within(kept, bytes, &mut taken, &mut entries);
        Ok(entries)
    }
}

/// Takes `entries` (each with its size as stored) in order while those
/// taken, counted in `taken`, hold fewer than `bytes`; the first of all
/// (`taken` still zero) always.
fn take_within(
    entries: impl IntoIterator<Item = (Entry, usize)>,
    bytes: usize,
    taken: &mut usize,
    into: &mut Vec<Entry>,
) {
    for (entry, size) in entries {
        if *taken >= bytes.max(1) {
            break;
        }
        *taken += size;
        into.push(entry);
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
        let end = match range.end_bound() {
            Bound::Included(&i) => i.checked_add(1),
            Bound::Excluded(&i) => Some(i),
            Bound::Unbounded => None,
        };
        self.read_entries(start, end, usize::MAX)
    }

    /// What replication sends a follower: see [`PAYLOAD_BYTES`].
    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> io::Result<Vec<Entry>> {
        self.read_entries(start, Some(end), PAYLOAD_BYTES)
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
        self.write(batch).await?;
        // A vote is a promise: it must survive a crash whatever the fsync
        // setting (with fsync on, `write` made it durable).
        if self.commit.is_none() {
            self.sync().await?;
        }
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        if committed.is_some() {
            *self.unsaved_commit() = committed;
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        let unsaved = *self.unsaved_commit();
        match unsaved {
            Some(committed) => Ok(Some(committed)),
            None => Ok(self.get_state::<Option<LogId>>(COMMITTED)?.flatten()),
        }
    }

    async fn append<I>(&mut self, entries: I, callback: IoFlushed) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
    {
        let mut batch = Batch::default();
        let mut sized = Vec::new();
        for entry in entries {
            let record = encode_entry(&entry)?;
            let size = record.len();
            batch.put(Cf::RaftLog, self.log_key(entry.index()), record);
            sized.push((entry, size));
        }
        let committed = self.unsaved_commit().take();
        if committed.is_some() {
            self.put_state(&mut batch, COMMITTED, &committed)?;
        }
        let last = sized.last().map(|(entry, _)| entry.index());
        fail::fail_point!("log-append-before");
        match &self.commit {
            Some(commit) => {
                self.recent().append(sized);
                let recent = self.recent.clone();
                commit
                    .write(batch, move |result| {
                        if let (Ok(()), Some(last)) = (&result, last) {
                            recent.lock().expect("recent entries lock").written(last);
                        }
                        callback.io_completed(result.map_err(io::Error::other));
                    })
                    .await;
            }
            None => {
                self.storage.write(batch).map_err(io::Error::other)?;
                let mut recent = self.recent();
                recent.append(sized);
                if let Some(last) = last {
                    recent.written(last);
                }
                drop(recent);
                callback.io_completed(Ok(()));
            }
        }
        fail::fail_point!("log-append-after");
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let from = last_log_id.map_or(0, |id| id.index() + 1);
        let mut batch = Batch::default();
        batch.delete_range(Cf::RaftLog, self.log_key(from), self.end_key());
        self.write(batch).await?;
        self.recent().truncate(from);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        // The purge point and the deletion are one atomic batch: entries
        // at or below the point are ignored from then on.
        let mut batch = Batch::default();
        self.put_state(&mut batch, PURGED, &log_id)?;
        batch.delete_range(Cf::RaftLog, self.log_key(0), self.log_key(log_id.index() + 1));
        self.write(batch).await?;
        self.recent().purge(log_id.index());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::StorageError;
    use openraft::testing::log::{StoreBuilder, Suite};
    use openraft::vote::RaftLeaderIdExt;

    use super::*;
    use crate::keyspace::{SetCondition, Write, WriteOp};
    use crate::raft::state_machine::StateMachine;
    use crate::storage::RocksStorage;
    use crate::storage::test_store::TestStore;

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
            let dir = tempfile::tempdir().expect("temp dir");
            let storage: Arc<dyn Storage> =
                Arc::new(RocksStorage::open(&dir.path().join("store")).expect("open store"));
            let commit = GroupCommit::start(&storage).expect("committer");
            let log = LogStore::new(storage, 7, Fsync::Always, commit);
            let sm = StateMachine::open(
                dir.path().join("snapshots"),
                false,
                crate::xlog::Stance {
                    epoch: 1,
                    serving: true,
                },
            )
            .expect("state machine");
            Ok((dir, log, sm))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_openraft_storage_conformance_suite() {
        Suite::test_all(Builder).await.expect("conformance suite");
    }

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(
                <openraft::alias::LeaderIdOf<TypeConfig> as RaftLeaderIdExt>::new_committed(1, 1),
                index,
            ),
            payload: openraft::EntryPayload::Blank,
        }
    }

    /// An entry at `index` that sets a value of `bytes` bytes.
    fn set_entry(index: u64, bytes: usize) -> Entry {
        Entry {
            log_id: entry(index).log_id,
            payload: openraft::EntryPayload::Normal(Write::new(WriteOp::Set {
                key: bytes::Bytes::from_static(b"k"),
                value: vec![b'v'; bytes].into(),
                expire_at_ms: None,
                condition: SetCondition::Always,
                keep_ttl: false,
                get: false,
            })),
        }
    }

    /// A store in a new temporary directory (deleted with it), and its
    /// committer.
    fn fresh_store() -> (tempfile::TempDir, Arc<dyn Storage>, GroupCommit) {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(RocksStorage::open(dir.path()).unwrap());
        let commit = GroupCommit::start(&storage).unwrap();
        (dir, storage, commit)
    }

    fn indexes(entries: Option<Vec<Entry>>) -> Option<Vec<u64>> {
        entries.map(|entries| entries.iter().map(|e| e.index()).collect())
    }

    /// The indexes of the entries `recent` gives for `[start, end)`.
    fn kept(recent: &Recent, start: u64, end: Option<u64>) -> Option<Vec<u64>> {
        recent
            .get(start, end)
            .map(|kept| kept.map(|(e, _)| e.index()).collect())
    }

    /// Writes `entries` of `log` straight to `storage`, as if their
    /// batches were written and gone from memory.
    fn put_in_store(log: &LogStore, storage: &Arc<dyn Storage>, entries: impl Iterator<Item = Entry>) {
        let mut batch = Batch::default();
        for entry in entries {
            batch.put(Cf::RaftLog, log.log_key(entry.index()), encode_entry(&entry).unwrap());
        }
        storage.write(batch).unwrap();
    }

    /// Appends `entries` to `recent` and marks them written.
    fn append_written(recent: &mut Recent, entries: Vec<(Entry, usize)>) {
        let last = entries.last().map(|(entry, _)| entry.index());
        recent.append(entries);
        recent.written(last.expect("entries to append"));
    }

    #[test]
    fn recent_entries_stay_the_logs_tail() {
        let mut recent = Recent::default();
        // Entries of 10 bytes each, as stored: the count binds first.
        let sized = |indexes: std::ops::RangeInclusive<u64>| indexes.map(|i| (entry(i), 10)).collect::<Vec<_>>();
        append_written(&mut recent, sized(1..=10));
        assert_eq!(kept(&recent, 3, Some(6)), Some(vec![3, 4, 5]));
        assert_eq!(kept(&recent, 9, None), Some(vec![9, 10]));
        assert_eq!(kept(&recent, 9, Some(12)), Some(vec![9, 10]), "to the end");
        assert_eq!(kept(&recent, 12, Some(14)), None, "past the end");
        recent.truncate(8);
        assert_eq!(kept(&recent, 6, None), Some(vec![6, 7]));
        assert_eq!(kept(&recent, 8, Some(9)), Some(vec![]), "truncated");
        recent.purge(4);
        assert_eq!(kept(&recent, 4, Some(6)), None, "purged");
        assert_eq!(kept(&recent, 5, Some(6)), Some(vec![5]));
        append_written(&mut recent, sized(20..=20));
        assert_eq!(
            kept(&recent, 5, Some(6)),
            None,
            "an append that does not follow starts afresh"
        );
        assert_eq!(kept(&recent, 20, None), Some(vec![20]));
        append_written(&mut recent, sized(21..=21 + RECENT_ENTRIES as u64));
        assert_eq!(recent.entries.len(), RECENT_ENTRIES);
        assert_eq!(recent.first_index(), Some(22));
        // Large entries are bounded by their bytes, not their count.
        let last = 22 + RECENT_ENTRIES as u64;
        append_written(
            &mut recent,
            vec![(entry(last), RECENT_BYTES / 2), (entry(last + 1), RECENT_BYTES / 2)],
        );
        assert_eq!(recent.first_index(), Some(last));
        assert_eq!(recent.bytes, RECENT_BYTES);
        recent.truncate(last + 1);
        assert_eq!(recent.bytes, RECENT_BYTES / 2);
        assert_eq!(kept(&recent, last, None), Some(vec![last]));
    }

    #[test]
    fn entries_not_yet_written_stay_in_memory_past_the_bounds() {
        let mut recent = Recent::default();
        let big = |index| vec![(entry(index), RECENT_BYTES)];
        append_written(&mut recent, big(1));
        recent.append(big(2));
        recent.append(big(3));
        assert_eq!(recent.first_index(), Some(2), "the written entry goes, the others stay");
        assert_eq!(kept(&recent, 2, None), Some(vec![2, 3]));
        recent.written(2);
        assert_eq!(kept(&recent, 2, None), None, "written, over the bound");
        assert_eq!(kept(&recent, 3, None), Some(vec![3]));
        recent.truncate(3);
        recent.written(3);
        recent.append(big(3));
        recent.append(big(4));
        assert_eq!(
            kept(&recent, 3, None),
            Some(vec![3, 4]),
            "an entry written before a truncation does not count for the one appended over it"
        );
    }

    #[tokio::test]
    async fn appends_through_the_committer_are_read_back_before_and_after_they_are_written() {
        let (_dir, store, storage) = TestStore::temporary();
        let commit = GroupCommit::start(&storage).unwrap();
        let reopened = || LogStore::new(storage.clone(), 2, Fsync::Always, commit.clone());
        let mut log = reopened();
        // Entries of about 40 KiB, so the memory bound holds only one.
        let big = |index| set_entry(index, 40 << 10);
        // The store takes no write until released: every entry is read
        // back from memory.
        store.hold(true);
        for index in 1..=5 {
            log.append([big(index)], IoFlushed::noop()).await.unwrap();
            let read = log.try_get_log_entries(1..=index).await.unwrap();
            assert_eq!(indexes(Some(read)), Some((1..=index).collect()), "not yet written");
        }
        assert_eq!(storage.get(Cf::RaftLog, &log.log_key(1)).unwrap(), None);
        store.hold(false);
        // Queued behind the appends: once it is durable, so are they.
        commit.write_durably(Batch::default()).await.unwrap();
        let read = log.try_get_log_entries(1..=5).await.unwrap();
        assert_eq!(indexes(Some(read)), Some((1..=5).collect()), "written");
        log.truncate_after(Some(entry(3).log_id)).await.unwrap();
        assert_eq!(
            reopened().get_log_state().await.unwrap().last_log_id,
            Some(entry(3).log_id),
            "the truncation is written after the appends it removes"
        );
        let read = reopened().try_get_log_entries(1..10).await.unwrap();
        assert_eq!(indexes(Some(read)), Some(vec![1, 2, 3]));
    }

    #[tokio::test]
    async fn a_read_from_the_store_takes_entries_not_yet_written_from_memory() {
        let (_dir, storage, commit) = fresh_store();
        let mut log = LogStore::new(storage.clone(), 6, Fsync::Always, commit);
        // Entries 1-3 are in the store and gone from memory; 4-5 are kept
        // in memory, queued but not written.
        put_in_store(&log, &storage, (1..=3).map(entry));
        log.recent().append(vec![(entry(4), 10), (entry(5), 10)]);
        let read = log.try_get_log_entries(1..=5).await.unwrap();
        assert_eq!(indexes(Some(read)), Some(vec![1, 2, 3, 4, 5]));
        let read = log.try_get_log_entries(2..).await.unwrap();
        assert_eq!(indexes(Some(read)), Some(vec![2, 3, 4, 5]));
        let read = log.try_get_log_entries(1..3).await.unwrap();
        assert_eq!(indexes(Some(read)), Some(vec![1, 2]));
        let read = log.try_get_log_entries(1..=7).await.unwrap();
        assert_eq!(indexes(Some(read)), Some(vec![1, 2, 3, 4, 5]), "past the end");
    }

    #[tokio::test]
    async fn a_follower_is_sent_at_most_the_payload_bound_and_one_entry_more() {
        let (_dir, storage, commit) = fresh_store();
        let mut log = LogStore::new(storage.clone(), 8, Fsync::Always, commit);
        // Entries 1-3 are in the store, of 3 MiB each; 4-5 are kept in
        // memory only, counted as 5 MiB each.
        put_in_store(&log, &storage, (1..=3).map(|index| set_entry(index, 3 << 20)));
        log.recent().append(vec![(entry(4), 5 << 20), (entry(5), 5 << 20)]);
        for (start, end, sent, why) in [
            (1, 6, vec![1, 2, 3], "the third passes the bound of 8 MiB"),
            (3, 6, vec![3, 4], "from the store, then from memory"),
            (4, 6, vec![4, 5], "from memory alone"),
            (2, 3, vec![2], "the range's end"),
        ] {
            let read = log.limited_get_log_entries(start, end).await.unwrap();
            assert_eq!(indexes(Some(read)), Some(sent), "{start}..{end}: {why}");
        }
        let read = log.try_get_log_entries(1..6).await.unwrap();
        assert_eq!(indexes(Some(read)), Some(vec![1, 2, 3, 4, 5]), "unbounded");
    }

    #[tokio::test]
    async fn the_committed_id_is_written_with_the_next_append() {
        let (_dir, storage, commit) = fresh_store();
        let reopened = || LogStore::new(storage.clone(), 4, Fsync::Never, commit.clone());
        let mut log = reopened();
        log.append([entry(1)], IoFlushed::noop()).await.unwrap();
        log.save_committed(Some(entry(1).log_id)).await.unwrap();
        assert_eq!(log.read_committed().await.unwrap(), Some(entry(1).log_id));
        assert_eq!(
            reopened().read_committed().await.unwrap(),
            None,
            "not written on its own"
        );
        log.append([entry(2)], IoFlushed::noop()).await.unwrap();
        assert_eq!(reopened().read_committed().await.unwrap(), Some(entry(1).log_id));
    }

    #[tokio::test]
    async fn the_last_group_id_finds_truncates_and_reopens_its_log() {
        let (_dir, storage, commit) = fresh_store();
        // The meta group's id, with a neighbour whose keys must stay apart.
        let reopened = |group| LogStore::new(storage.clone(), group, Fsync::Never, commit.clone());
        let mut neighbour = reopened(u64::MAX - 1);
        neighbour.append((1..=2).map(entry), IoFlushed::noop()).await.unwrap();
        let mut log = reopened(u64::MAX);
        log.append((1..=5).map(entry), IoFlushed::noop()).await.unwrap();
        assert_eq!(
            reopened(u64::MAX).get_log_state().await.unwrap().last_log_id,
            Some(entry(5).log_id)
        );
        log.truncate_after(Some(entry(3).log_id)).await.unwrap();
        let mut log = reopened(u64::MAX);
        assert_eq!(log.get_log_state().await.unwrap().last_log_id, Some(entry(3).log_id));
        let read = log.try_get_log_entries(1..10).await.unwrap();
        assert_eq!(indexes(Some(read)), Some(vec![1, 2, 3]));
        let neighbour = reopened(u64::MAX - 1).try_get_log_entries(1..10).await.unwrap();
        assert_eq!(indexes(Some(neighbour)), Some(vec![1, 2]));
    }

    #[tokio::test]
    async fn a_record_with_a_bad_checksum_names_group_and_index() {
        let (_dir, storage, commit) = fresh_store();
        let mut log = LogStore::new(storage.clone(), 3, Fsync::Never, commit);
        let mut record = encode_entry(&entry(5)).unwrap();
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

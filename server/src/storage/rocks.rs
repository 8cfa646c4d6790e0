//! [`Storage`] on RocksDB: one database per node, a column family per [`Cf`].
//!
//! Writes go to the write-ahead log without a per-write fsync; durability is
//! asked for explicitly with [`Storage::sync`] (`flush_wal(true)`), so that
//! concurrent appends of many shards share one fsync.
//!
//! The logs (Raft entries, and the witness's cross-region records) keep
//! their values in blob files, with only keys and references in the LSM
//! tree. Every group's entries share one key range, so each flush of
//! them overlaps all the older ones, and compaction rewrote the whole
//! retained log again and again: 8.5 % of the nodes' CPU under SETs at
//! depth 16 with 8 groups, and stalls in the p99.9 latency
//! (BENCHMARKS.md). A blob file is written once, by the flush, and deleted
//! once compaction has dropped every entry in it as purged.
//!
//! The write-ahead log is kept to [`WAL_TOTAL`]: the Raft state's small
//! writes ride in every log file, and its memtable hardly ever fills, so
//! without a bound every log file was kept up to RocksDB's default (four
//! times every memtable's room, some 700 MB here), all of it replayed at
//! the next start.
//!
//! Recovery tolerates only a damaged *last* record of the write-ahead log
//! (a write torn by power loss, which was never fsynced, hence never
//! acknowledged). Damage anywhere else makes opening fail with RocksDB's
//! `Corruption` error, so the node refuses to start instead of silently
//! dropping records it had acknowledged (RocksDB's default recovery mode
//! stops replay at the damage and carries on).

use std::path::{Path, PathBuf};

use rocksdb::{ColumnFamilyDescriptor, DB, DBRecoveryMode, Direction, IteratorMode, Options, ReadOptions, WriteBatch};

use super::{Batch, BatchOp, Cf, Storage};
use crate::error::{Error, Result};

/// Bytes of one column family's memtable before it is flushed.
const MEMTABLE_SIZE: usize = 8 << 20;
/// Most bytes all memtables together hold (the store flushes beyond).
const MEMTABLES_TOTAL: usize = 32 << 20;
/// Most bytes of write-ahead log kept: past it, the column families that
/// hold the oldest log file back are flushed, so that a restart replays at
/// most this much.
const WAL_TOTAL: u64 = 64 << 20;

/// The RocksDB-backed node store.
pub struct RocksStorage {
    db: DB,
    path: PathBuf,
}

impl RocksStorage {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_max_background_jobs(2);
        options.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
        options.set_paranoid_checks(true);
        // Memtables hold log entries until flushed; the keys themselves
        // live in the state machine, so the store needs little memory.
        options.set_db_write_buffer_size(MEMTABLES_TOTAL);
        options.set_max_total_wal_size(WAL_TOTAL);
        let families = Cf::ALL.iter().map(|&cf| {
            let mut family = Options::default();
            family.set_write_buffer_size(MEMTABLE_SIZE);
            if matches!(cf, Cf::RaftLog | Cf::Xlog) {
                family.set_enable_blob_files(true);
                family.set_min_blob_size(0);
                family.set_blob_file_size(MEMTABLE_SIZE as u64);
            }
            ColumnFamilyDescriptor::new(cf.name(), family)
        });
        let db = DB::open_cf_descriptors(&options, path, families)
            .map_err(|e| Error::Storage(format!("cannot open {}: {e}", path.display())))?;
        Ok(RocksStorage {
            db,
            path: path.to_path_buf(),
        })
    }

    fn cf(&self, cf: Cf) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(cf.name())
            .expect("column families are created at open")
    }

    fn failed(&self, what: &str, e: rocksdb::Error) -> Error {
        Error::Storage(format!("{what} in {}: {e}", self.path.display()))
    }

    fn range_options(from: &[u8], to: &[u8]) -> ReadOptions {
        let mut options = ReadOptions::default();
        options.set_iterate_lower_bound(from.to_vec());
        options.set_iterate_upper_bound(to.to_vec());
        options
    }

    /// The key-value pairs in `[from, to)`, in key order, as they are read.
    fn range(&self, cf: Cf, from: &[u8], to: &[u8]) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> {
        self.db
            .iterator_cf_opt(
                self.cf(cf),
                Self::range_options(from, to),
                IteratorMode::From(from, Direction::Forward),
            )
            .map(|item| {
                item.map(|(k, v)| (k.into_vec(), v.into_vec()))
                    .map_err(|e| self.failed("scan", e))
            })
    }
}

impl Storage for RocksStorage {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(cf), key).map_err(|e| self.failed("get", e))
    }

    fn scan(&self, cf: Cf, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.range(cf, from, to).take(limit).collect()
    }

    fn scan_bytes(&self, cf: Cf, from: &[u8], to: &[u8], bytes: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut read = 0;
        self.range(cf, from, to)
            .take_while(|item| {
                let more = read < bytes.max(1);
                read += item.as_ref().map_or(0, |(_, v)| v.len());
                more
            })
            .collect()
    }

    fn last(&self, cf: Cf, from: &[u8], to: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut iter = self
            .db
            .iterator_cf_opt(self.cf(cf), Self::range_options(from, to), IteratorMode::End);
        iter.next()
            .transpose()
            .map(|kv| kv.map(|(k, v)| (k.into_vec(), v.into_vec())))
            .map_err(|e| self.failed("scan", e))
    }

    fn write(&self, batch: Batch) -> Result<()> {
        let mut wb = WriteBatch::default();
        for op in batch.ops {
            match op {
                BatchOp::Put(cf, k, v) => wb.put_cf(self.cf(cf), k, v),
                BatchOp::DeleteRange(cf, from, to) => wb.delete_range_cf(self.cf(cf), from, to),
            }
        }
        self.db.write(wb).map_err(|e| self.failed("write", e))
    }

    fn sync(&self) -> Result<()> {
        self.db.flush_wal(true).map_err(|e| self.failed("fsync", e))
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_ranges_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RocksStorage::open(dir.path()).unwrap();
            let mut batch = Batch::default();
            for i in 0u8..10 {
                batch.put(Cf::RaftLog, vec![i], vec![i * 2]);
            }
            batch.put(Cf::RaftState, b"v".to_vec(), b"1".to_vec());
            store.write(batch).unwrap();
            let mut batch = Batch::default();
            batch.delete_range(Cf::RaftLog, vec![0], vec![3]);
            store.write(batch).unwrap();
            store.sync().unwrap();
            let all = store.scan(Cf::RaftLog, &[0], &[255], usize::MAX).unwrap();
            assert_eq!(all.first().unwrap().0, vec![3]);
            assert_eq!(store.scan(Cf::RaftLog, &[0], &[255], 2).unwrap().len(), 2);
            // Values of 1 byte each: three fit under a bound of 3 bytes.
            assert_eq!(store.scan_bytes(Cf::RaftLog, &[0], &[255], 3).unwrap().len(), 3);
            assert_eq!(
                store.scan_bytes(Cf::RaftLog, &[0], &[255], 0).unwrap().len(),
                1,
                "the first pair comes whatever the bound"
            );
            assert_eq!(store.scan_bytes(Cf::RaftLog, &[0], &[255], usize::MAX).unwrap(), all);
            assert_eq!(store.last(Cf::RaftLog, &[0], &[6]).unwrap().unwrap().0, vec![5]);
            assert_eq!(store.last(Cf::RaftLog, &[20], &[30]).unwrap(), None);
        }
        let store = RocksStorage::open(dir.path()).unwrap();
        assert_eq!(store.get(Cf::RaftState, b"v").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get(Cf::RaftLog, &[1]).unwrap(), None);
        assert_eq!(store.get(Cf::RaftLog, &[9]).unwrap(), Some(vec![18]));
    }

    /// Bytes of the files in `dir` named `*.{extension}`.
    fn bytes_of(dir: &Path, extension: &str) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == extension))
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum()
    }

    #[test]
    fn a_purged_log_leaves_bounded_files_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStorage::open(dir.path()).unwrap();
        let entry = vec![7; 64 << 10];
        // 256 MiB of log entries, each batch with a small state change (as
        // appends carry the committed index), the log purged behind to
        // its newest 8 to 24 MiB.
        for i in 0u32..4096 {
            let mut batch = Batch::default();
            batch.put(Cf::RaftLog, i.to_be_bytes().to_vec(), entry.clone());
            batch.put(Cf::RaftState, b"committed".to_vec(), i.to_be_bytes().to_vec());
            if i % 256 == 255 {
                batch.delete_range(Cf::RaftLog, vec![], (i - 128).to_be_bytes().to_vec());
            }
            store.write(batch).unwrap();
        }
        let wal = bytes_of(dir.path(), "log");
        assert!(wal <= 2 * WAL_TOTAL, "{wal} bytes of write-ahead log kept");
        // Blob files go once compaction drops what was purged: compacted
        // here and now, rather than waited for in the background.
        store
            .db
            .compact_range_cf(store.cf(Cf::RaftLog), None::<&[u8]>, None::<&[u8]>);
        let blob = bytes_of(dir.path(), "blob");
        assert!(blob <= 96 << 20, "{blob} bytes of blob files kept");
        let last = 4095u32.to_be_bytes();
        assert_eq!(store.get(Cf::RaftLog, &last).unwrap(), Some(entry));
    }
}

//! The witness's store: a bounded window of every shard's cross-region log,
//! durable before it is acknowledged.
//!
//! The witness region holds no keys and runs no group. The primary
//! region's shard leaders ship it the same records as the secondary
//! regions (see [`crate::shipping`]); it keeps them in the node store's
//! `xlog` column family under `shard ‖ gseq`, fsynced (through the node's
//! [`GroupCommit`]) before it answers with the gseq it now holds, and keeps
//! the newest `[xlog] max_records` of each shard. Those records are what a
//! forced failover pulls to lose nothing.
//!
//! Records are taken in gseq order only: duplicates are skipped, and a
//! batch that does not continue the shard's records is refused unless it
//! says to start over there (`restart`): the shipper does so when the
//! witness needs records the primary no longer keeps, or holds records the
//! primary never had. The witness then drops what it held for the shard.
//!
//! # Correctness
//!
//! A batch is acknowledged only after a sync that began after it was
//! written, so an acknowledged gseq survives the witness's crash. Batches
//! of one shard are written one at a time (the shard's lock), so the
//! store's records of a shard always form one run `oldest..=head`; on
//! start, each shard's run is read back from the store's first and last
//! keys.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::{Batch, Cf, GroupCommit, Storage};
use crate::wire;
use crate::xlog::Record;

/// Records of one shard, as shipped to the witness.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WitnessBatch {
    /// The shard.
    pub shard: u64,
    /// The records, oldest first.
    pub records: Vec<Record>,
    /// Drop what is held for the shard and start over at the first record.
    pub restart: bool,
}

/// The run of records held for one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// The oldest gseq held (0: none).
    pub oldest: u64,
    /// The newest gseq held (0: none).
    pub head: u64,
}

/// The witness's records of every shard.
pub struct WitnessStore {
    storage: Arc<dyn Storage>,
    commit: GroupCommit,
    max_records: u64,
    held: Mutex<BTreeMap<u64, Held>>,
    /// One writer per shard at a time.
    writing: tokio::sync::Mutex<()>,
}

fn key(shard: u64, gseq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    key.extend_from_slice(&shard.to_be_bytes());
    key.extend_from_slice(&gseq.to_be_bytes());
    key
}

fn gseq_of(key: &[u8]) -> u64 {
    u64::from_be_bytes(key[8..16].try_into().expect("16-byte xlog key"))
}

impl WitnessStore {
    /// Opens the records of `shards` shards held in `storage`.
    pub fn open(storage: Arc<dyn Storage>, commit: GroupCommit, shards: u64, max_records: u64) -> Result<Self> {
        let mut held = BTreeMap::new();
        for shard in 0..shards {
            let (from, to) = (key(shard, 0), key(shard, u64::MAX));
            let first = storage.scan(Cf::Xlog, &from, &to, 1)?.into_iter().next();
            let last = storage.last(Cf::Xlog, &from, &to)?;
            if let (Some((first, _)), Some((last, _))) = (first, last) {
                let run = Held {
                    oldest: gseq_of(&first),
                    head: gseq_of(&last),
                };
                held.insert(shard, run);
            }
        }
        Ok(WitnessStore {
            storage,
            commit,
            max_records,
            held: Mutex::new(held),
            writing: tokio::sync::Mutex::new(()),
        })
    }

    /// The run held for `shard`.
    pub fn held(&self, shard: u64) -> Held {
        self.held
            .lock()
            .expect("held lock")
            .get(&shard)
            .copied()
            .unwrap_or_default()
    }

    /// Stores the records of `batch` that continue the shard's run, durably;
    /// the newest gseq then held.
    pub async fn append(&self, batch: WitnessBatch) -> Result<u64> {
        let _writing = self.writing.lock().await;
        let shard = batch.shard;
        let mut run = self.held(shard);
        let mut write = Batch::default();
        if batch.restart {
            write.delete_range(Cf::Xlog, key(shard, 0), key(shard, u64::MAX));
            run = Held::default();
        }
        for record in &batch.records {
            let next = run.head == 0 || record.gseq == run.head + 1;
            if record.gseq <= run.head && run.head > 0 {
                continue;
            }
            if !next || !record.intact() {
                break;
            }
            write.put(Cf::Xlog, key(shard, record.gseq), wire::encode(record)?.to_vec());
            if run.head == 0 {
                run.oldest = record.gseq;
            }
            run.head = record.gseq;
        }
        if run.head >= run.oldest + self.max_records {
            let oldest = run.head + 1 - self.max_records;
            write.delete_range(Cf::Xlog, key(shard, run.oldest), key(shard, oldest));
            run.oldest = oldest;
        }
        if !write.ops.is_empty() {
            self.storage.write(write)?;
            let (done, synced) = tokio::sync::oneshot::channel();
            self.commit.after_sync(move |result| {
                let _ = done.send(result);
            });
            synced
                .await
                .map_err(|_| Error::Storage("the witness's sync was dropped".into()))?
                .map_err(Error::Storage)?;
            self.held.lock().expect("held lock").insert(shard, run);
        }
        Ok(run.head)
    }

    /// The records held for `shard` after `after`, at most `limit` of them.
    pub fn records(&self, shard: u64, after: u64, limit: usize) -> Result<Vec<Record>> {
        let from = key(shard, after.saturating_add(1));
        self.storage
            .scan(Cf::Xlog, &from, &key(shard, u64::MAX), limit)?
            .into_iter()
            .map(|(_, value)| wire::decode(&value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::storage::RocksStorage;

    fn records(gseqs: std::ops::RangeInclusive<u64>) -> Vec<Record> {
        gseqs.map(|g| Record::new(g, g, Bytes::from(g.to_string()))).collect()
    }

    fn store(dir: &std::path::Path, max_records: u64) -> WitnessStore {
        let storage: Arc<dyn Storage> = Arc::new(RocksStorage::open(dir).unwrap());
        let commit = GroupCommit::start(&storage).unwrap();
        WitnessStore::open(storage, commit, 2, max_records).unwrap()
    }

    fn batch(shard: u64, records: Vec<Record>, restart: bool) -> WitnessBatch {
        WitnessBatch {
            shard,
            records,
            restart,
        }
    }

    #[tokio::test]
    async fn records_are_kept_in_order_bounded_and_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let witness = store(dir.path(), 5);
            assert_eq!(witness.append(batch(0, records(1..=3), false)).await.unwrap(), 3);
            assert_eq!(
                witness.append(batch(0, records(2..=4), false)).await.unwrap(),
                4,
                "duplicates skipped"
            );
            assert_eq!(
                witness.append(batch(0, records(6..=7), false)).await.unwrap(),
                4,
                "a gap is refused"
            );
            let mut corrupt = records(5..=5);
            corrupt[0].payload = Bytes::from_static(b"flipped");
            assert_eq!(
                witness.append(batch(0, corrupt, false)).await.unwrap(),
                4,
                "a bad checksum too"
            );
            assert_eq!(witness.append(batch(0, records(5..=8), false)).await.unwrap(), 8);
            assert_eq!(witness.held(0), Held { oldest: 4, head: 8 }, "the newest 5");
            assert_eq!(witness.held(1), Held::default(), "shards are apart");
        }
        let witness = store(dir.path(), 5);
        assert_eq!(witness.held(0), Held { oldest: 4, head: 8 });
        let back: Vec<u64> = witness.records(0, 5, 10).unwrap().iter().map(|r| r.gseq).collect();
        assert_eq!(back, vec![6, 7, 8]);
        assert_eq!(witness.append(batch(0, records(20..=21), true)).await.unwrap(), 21);
        assert_eq!(
            witness.held(0),
            Held { oldest: 20, head: 21 },
            "a restart drops the old run"
        );
    }
}

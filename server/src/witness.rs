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
//! says to start over after a gseq (`restart_after`): the shipper does so
//! when the witness needs records the primary no longer keeps, or holds
//! records the primary never had. The witness then drops what it held for
//! the shard and holds the records from that gseq on (none yet, when the
//! primary keeps none: the next write is the first).
//!
//! A forced failover pulls the records the new primary lacks
//! ([`WitnessStore::pull`]) in the epoch it is about to start; from then on
//! the witness refuses that shard's batches of earlier epochs, durably
//! (each shard's floor is a record of its own, under shard `u64::MAX`), so
//! an old primary that comes back cannot get a write acknowledged that
//! the new primary never saw. The floors are per shard because each
//! failover group moves to epochs of its own.
//! A forced failover that is aborted after its pull leaves the floor at an
//! epoch no region will ever be primary in; the witness then lowers it
//! back to the current epoch ([`WitnessStore::unfence`]), or the primary
//! that stays could ship it nothing.
//!
//! # Correctness
//!
//! A batch is acknowledged only after a sync that began after it was
//! written, so an acknowledged gseq survives the witness's crash. Batches
//! are written one at a time, so the store's records of a shard always
//! form one run `oldest..=head`; on start, each shard's run is read back
//! from the store's first and last keys. (A run started over with no
//! records yet is not: the witness then answers that it holds nothing, and
//! the shipper starts it over again.)

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
    /// Drop what is held for the shard and start over after this gseq.
    pub restart_after: Option<u64>,
    /// The epoch the shipping primary serves.
    pub epoch: u64,
}

/// A request to the witness.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WitnessCall {
    /// Store records; answers the newest gseq then held.
    Store(WitnessBatch),
    /// Answer the records of `shard` after `after` (up to about a MiB),
    /// refusing batches of epochs before `epoch` from now on.
    Pull {
        /// The shard.
        shard: u64,
        /// The gseq the new primary holds.
        after: u64,
        /// The epoch the failover starts.
        epoch: u64,
    },
}

/// The witness's answer to a [`WitnessCall`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WitnessAnswer {
    /// The newest gseq held.
    Held(u64),
    /// Records, oldest first (none: nothing after).
    Records(Vec<Record>),
}

/// The most payload bytes one pull answers with.
const MAX_PULL_BYTES: usize = 1 << 20;

/// The run of records held for one shard: gseqs `oldest..=head`, none
/// when `oldest` is past `head`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The oldest gseq held.
    pub oldest: u64,
    /// The newest gseq held, or the one the run starts after.
    pub head: u64,
}

impl Default for Held {
    /// No records: the run starts at gseq 1.
    fn default() -> Self {
        Held { oldest: 1, head: 0 }
    }
}

/// The witness's records of every shard.
pub struct WitnessStore {
    storage: Arc<dyn Storage>,
    commit: GroupCommit,
    max_records: u64,
    held: Mutex<BTreeMap<u64, Held>>,
    /// Per shard, batches of epochs before this one are refused.
    floors: Mutex<BTreeMap<u64, u64>>,
    /// One batch written at a time.
    writing: tokio::sync::Mutex<()>,
}

fn key(shard: u64, gseq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    key.extend_from_slice(&shard.to_be_bytes());
    key.extend_from_slice(&gseq.to_be_bytes());
    key
}

/// Where `shard`'s epoch floor is kept.
fn floor_key(shard: u64) -> Vec<u8> {
    key(u64::MAX, shard)
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
        let mut floors = BTreeMap::new();
        for (key, bytes) in storage.scan(Cf::Xlog, &floor_key(0), &floor_key(u64::MAX), usize::MAX)? {
            floors.insert(gseq_of(&key), wire::decode(&bytes)?);
        }
        Ok(WitnessStore {
            storage,
            commit,
            max_records,
            held: Mutex::new(held),
            floors: Mutex::new(floors),
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

    /// Answers `call`.
    pub async fn call(&self, call: WitnessCall) -> Result<WitnessAnswer> {
        match call {
            WitnessCall::Store(batch) => self.append(batch).await.map(WitnessAnswer::Held),
            WitnessCall::Pull { shard, after, epoch } => {
                self.pull(shard, after, epoch).await.map(WitnessAnswer::Records)
            }
        }
    }

    /// Stores the records of `batch` that continue the shard's run, durably;
    /// the newest gseq then held.
    pub async fn append(&self, batch: WitnessBatch) -> Result<u64> {
        let _writing = self.writing.lock().await;
        let floor = self.floor(batch.shard);
        if batch.epoch < floor {
            return Err(Error::Failover(format!(
                "the witness takes no records of epoch {} after a failover to epoch {floor}",
                batch.epoch
            )));
        }
        let shard = batch.shard;
        let mut run = self.held(shard);
        let mut write = Batch::default();
        if let Some(after) = batch.restart_after {
            write.delete_range(Cf::Xlog, key(shard, 0), key(shard, u64::MAX));
            run = Held {
                oldest: after + 1,
                head: after,
            };
        }
        for record in &batch.records {
            if record.gseq <= run.head {
                continue;
            }
            if record.gseq != run.head + 1 || !record.intact() {
                break;
            }
            write.put(Cf::Xlog, key(shard, record.gseq), wire::encode(record)?.to_vec());
            run.head = record.gseq;
        }
        if run.head >= run.oldest + self.max_records {
            let oldest = run.head + 1 - self.max_records;
            write.delete_range(Cf::Xlog, key(shard, run.oldest), key(shard, oldest));
            run.oldest = oldest;
        }
        if !write.ops.is_empty() {
            self.write_durably(write).await?;
            self.held.lock().expect("held lock").insert(shard, run);
        }
        Ok(run.head)
    }

    /// The records of `shard` after `after` (up to about a MiB), once
    /// batches of epochs before `epoch` are refused, durably.
    pub async fn pull(&self, shard: u64, after: u64, epoch: u64) -> Result<Vec<Record>> {
        let _writing = self.writing.lock().await;
        if self.floor(shard) < epoch {
            self.set_floor(shard, epoch).await?;
        }
        let (from, to) = (key(shard, after + 1), key(shard, u64::MAX));
        let mut records = Vec::new();
        let mut bytes = 0;
        for (_, value) in self.storage.scan(Cf::Xlog, &from, &to, 4096)? {
            let record: Record = wire::decode(&value)?;
            bytes += record.payload.len();
            records.push(record);
            if bytes >= MAX_PULL_BYTES {
                break;
            }
        }
        Ok(records)
    }

    /// The epoch before which `shard`'s batches are refused.
    pub fn floor(&self, shard: u64) -> u64 {
        let floors = self.floors.lock().expect("floors lock");
        floors.get(&shard).copied().unwrap_or(0)
    }

    /// Lowers `shard`'s floor from `abandoned` (an epoch a failover began
    /// towards and never switched to) back to `epoch`, durably; a floor at
    /// any other epoch is left as it is. Whether it was lowered.
    pub async fn unfence(&self, shard: u64, abandoned: u64, epoch: u64) -> Result<bool> {
        let _writing = self.writing.lock().await;
        if self.floor(shard) != abandoned {
            return Ok(false);
        }
        self.set_floor(shard, epoch).await?;
        Ok(true)
    }

    /// Sets `shard`'s floor to `epoch`, durably (with the write lock held).
    async fn set_floor(&self, shard: u64, epoch: u64) -> Result<()> {
        let mut write = Batch::default();
        write.put(Cf::Xlog, floor_key(shard), wire::encode(&epoch)?.to_vec());
        self.write_durably(write).await?;
        self.floors.lock().expect("floors lock").insert(shard, epoch);
        Ok(())
    }

    /// Writes `write` and waits until it is durable.
    async fn write_durably(&self, write: Batch) -> Result<()> {
        self.commit.write_durably(write).await.map_err(Error::Storage)
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

    fn batch(shard: u64, records: Vec<Record>, restart_after: Option<u64>) -> WitnessBatch {
        WitnessBatch {
            shard,
            records,
            restart_after,
            epoch: 1,
        }
    }

    /// The gseqs the store holds for `shard`.
    fn stored(witness: &WitnessStore, shard: u64) -> Vec<u64> {
        let scanned = witness
            .storage
            .scan(Cf::Xlog, &key(shard, 0), &key(shard, u64::MAX), 100);
        let decoded = scanned
            .unwrap()
            .into_iter()
            .map(|(_, value)| wire::decode::<Record>(&value));
        decoded.map(|r| r.unwrap().gseq).collect()
    }

    #[tokio::test]
    async fn records_are_kept_in_order_bounded_and_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let witness = store(dir.path(), 5);
            assert_eq!(witness.append(batch(0, records(1..=3), None)).await.unwrap(), 3);
            assert_eq!(
                witness.append(batch(0, records(2..=4), None)).await.unwrap(),
                4,
                "duplicates skipped"
            );
            assert_eq!(
                witness.append(batch(0, records(6..=7), None)).await.unwrap(),
                4,
                "a gap is refused"
            );
            let mut corrupt = records(5..=5);
            corrupt[0].payload = Bytes::from_static(b"flipped");
            assert_eq!(
                witness.append(batch(0, corrupt, None)).await.unwrap(),
                4,
                "a bad checksum too"
            );
            assert_eq!(witness.append(batch(0, records(5..=8), None)).await.unwrap(), 8);
            assert_eq!(witness.held(0), Held { oldest: 4, head: 8 }, "the newest 5");
            assert_eq!(witness.held(1), Held::default(), "shards are apart");
        }
        let witness = store(dir.path(), 5);
        assert_eq!(witness.held(0), Held { oldest: 4, head: 8 });
        assert_eq!(stored(&witness, 0), vec![4, 5, 6, 7, 8]);
        assert_eq!(witness.append(batch(0, records(20..=21), Some(19))).await.unwrap(), 21);
        assert_eq!(
            witness.held(0),
            Held { oldest: 20, head: 21 },
            "a restart drops the old run"
        );
        assert_eq!(stored(&witness, 0), vec![20, 21]);
        assert_eq!(
            witness.append(batch(0, Vec::new(), Some(30))).await.unwrap(),
            30,
            "a restart with no records yet holds nothing up to its gseq"
        );
        assert_eq!(witness.append(batch(0, records(31..=31), None)).await.unwrap(), 31);
        assert_eq!(stored(&witness, 0), vec![31]);
    }

    #[tokio::test]
    async fn a_pull_answers_what_follows_and_fences_earlier_epochs_for_good() {
        let dir = tempfile::tempdir().unwrap();
        {
            let witness = store(dir.path(), 100);
            witness.append(batch(0, records(1..=5), None)).await.unwrap();
            let pulled = witness.pull(0, 3, 2).await.unwrap();
            assert_eq!(pulled.iter().map(|r| r.gseq).collect::<Vec<_>>(), vec![4, 5]);
            let refused = witness.append(batch(0, records(6..=6), None)).await;
            assert!(refused.unwrap_err().to_string().contains("epoch 1"), "an old epoch");
            let other = witness.append(batch(1, records(1..=1), None)).await;
            assert_eq!(other.unwrap(), 1, "another shard's floor is its own");
        }
        let witness = store(dir.path(), 100);
        assert!(
            witness.append(batch(0, records(6..=6), None)).await.is_err(),
            "after a restart too"
        );
        let mut newer = batch(0, records(6..=6), None);
        newer.epoch = 2;
        assert_eq!(witness.append(newer).await.unwrap(), 6);
    }

    #[tokio::test]
    async fn an_abandoned_epochs_fence_is_lifted_for_good() {
        let dir = tempfile::tempdir().unwrap();
        {
            let witness = store(dir.path(), 100);
            witness.pull(0, 0, 3).await.unwrap();
            witness.pull(1, 0, 3).await.unwrap();
            assert!(!witness.unfence(0, 2, 1).await.unwrap(), "another epoch's fence stays");
            assert_eq!(witness.floor(0), 3);
            assert!(witness.unfence(0, 3, 1).await.unwrap());
        }
        let witness = store(dir.path(), 100);
        assert_eq!((witness.floor(0), witness.floor(1)), (1, 3), "after a restart too");
        assert_eq!(witness.append(batch(0, records(1..=2), None)).await.unwrap(), 2);
    }
}

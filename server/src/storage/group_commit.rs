//! Group commit: one store write and one fsync for every batch waiting on
//! them.
//!
//! Raft groups append to the shared store independently, and each append
//! must be durable before it is acknowledged. Rather than a store write and
//! an fsync per append, appenders hand their batch and a completion to the
//! committer thread, which takes every batch queued so far, writes them as
//! one store write, syncs the store once, and completes them all. Under load
//! the number of writes and fsyncs per second stays roughly constant while
//! the batches they cover grow. The syncs are counted (`INFO persistence`
//! shows the count), so writes per fsync can be measured.
//!
//! Each store write has a fixed cost (RocksDB's write thread, a log record
//! and a system call), which every group's appends paid on their own: with
//! 8 shards it was 15 % of a node's CPU under SETs. One write per sync pays
//! it once for every group (BENCHMARKS.md).
//!
//! Batches for many groups arrive one group's batch at a time, so a sync
//! started at the first arrival covers few of them: about five writes per
//! fsync with 8 shards under 50 connections, and every fsync costs CPU
//! and thread wake-ups of its own. So once a sync has covered more than
//! one batch (writers are concurrent), the next waits [`LINGER`] for
//! more before it starts: three times as many writes per fsync, and some
//! 7 % more SETs per second on 2 cores (`cairn-bench shards --counts 8`,
//! BENCHMARKS.md). A lone writer, whose syncs each cover one batch,
//! never waits. The wait is a sleep, not a wait on the queue: a thread
//! waiting on the queue is woken by every batch that arrives, and on
//! a virtual machine every wake-up leaves the guest (context switches per
//! write from 2.8 to 2.0, and 8 % more SETs/s).
//!
//! The queue holds at most [`ROOM`] bytes of batches. An appender that
//! finds it full waits (asynchronously) until the committer has completed
//! enough of them: a disk that stalls holds up its appenders, as a store
//! write that blocks would, instead of letting the queue (and the log
//! entries the Raft log keeps in memory until they are written) grow
//! without bound. A batch larger than the room waits until the queue is
//! empty, then goes alone.
//!
//! # Correctness
//!
//! - Batches are written in the order they were queued, and the merged
//!   write is atomic, so a batch is never visible without every batch
//!   queued before it; callers that must order a change after earlier ones
//!   (a truncation after the appends it removes) queue it too.
//! - A completion runs after its batch was written and a sync that began
//!   after the write returned, so its batch is durable. Until then the
//!   batch may not be in the store at all: what a caller must read back
//!   at once it keeps itself (the Raft log keeps its newest entries).
//! - After a failed write or sync, nothing more is written: every batch
//!   queued then or later fails with the first error. A batch written
//!   after one that failed could leave a hole in a group's log (its core
//!   queues its next batch before it hears of the failure), and a sync
//!   that succeeds after one that failed may not cover what the failed
//!   one lost.
//! - The thread ends when the last [`GroupCommit`] handle is dropped.
//!   It holds the store only weakly, so the store is closed by its owners,
//!   never by this thread racing the process's exit (RocksDB must be closed
//!   before the process tears down its statics).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Batch, Storage};

type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;

/// How long a sync waits for more batches once the last one covered
/// several (see the module's essay).
const LINGER: Duration = Duration::from_millis(1);
/// Most bytes of batches queued and not yet completed (see the module's
/// essay): room for a few of the largest appends a follower catching up
/// receives (see [`crate::proposals`]).
const ROOM: usize = 64 << 20;

/// A batch waiting for the committer, with what to call once it is durable.
struct Queued {
    batch: Batch,
    done: Completion,
    /// Its share of the queue's room, given back once it is completed.
    room: OwnedSemaphorePermit,
}

/// A handle to the node's committer thread; clones share it.
#[derive(Clone)]
pub struct GroupCommit {
    queue: Sender<Queued>,
    syncs: Arc<AtomicU64>,
    /// Bytes the queue has room for.
    room: Arc<Semaphore>,
    /// The most bytes one batch takes of the room.
    room_bytes: usize,
}

impl GroupCommit {
    /// Starts the committer thread for `storage`.
    pub fn start(storage: &Arc<dyn Storage>) -> std::io::Result<Self> {
        Self::start_with_room(storage, ROOM)
    }

    /// Starts the committer thread for `storage`, with a queue that holds
    /// at most `room_bytes` of batches.
    fn start_with_room(storage: &Arc<dyn Storage>, room_bytes: usize) -> std::io::Result<Self> {
        let (queue, pending) = channel();
        let storage = Arc::downgrade(storage);
        let syncs = Arc::new(AtomicU64::new(0));
        let counted = syncs.clone();
        std::thread::Builder::new()
            .name("cairn-fsync".into())
            .spawn(move || commit_loop(&storage, pending, &counted))?;
        Ok(GroupCommit {
            queue,
            syncs,
            room: Arc::new(Semaphore::new(room_bytes)),
            room_bytes,
        })
    }

    /// Store syncs made since the thread started.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Queues `batch` behind every batch queued before it, once the queue
    /// has room for it, and calls `done` once it is durable.
    pub async fn write(&self, batch: Batch, done: impl FnOnce(Result<(), String>) + Send + 'static) {
        let bytes = batch.bytes().min(self.room_bytes) as u32;
        let Ok(room) = self.room.clone().acquire_many_owned(bytes).await else {
            // The semaphore is never closed; were it, nothing could queue.
            done(Err("the store's queue is closed".into()));
            return;
        };
        let queued = Queued {
            batch,
            done: Box::new(done),
            room,
        };
        if let Err(returned) = self.queue.send(queued) {
            (returned.0.done)(Err("the store is shutting down".into()));
        }
    }

    /// Writes `batch` as [`GroupCommit::write`] does, and waits until it is
    /// durable.
    pub async fn write_durably(&self, batch: Batch) -> Result<(), String> {
        let (done, durable) = tokio::sync::oneshot::channel();
        self.write(batch, move |result| {
            let _ = done.send(result);
        })
        .await;
        durable
            .await
            .unwrap_or_else(|_| Err("the store's committer stopped".into()))
    }
}

fn commit_loop(storage: &Weak<dyn Storage>, pending: Receiver<Queued>, syncs: &AtomicU64) {
    // Whether the last sync covered more than one batch.
    let mut concurrent = false;
    // The first failure, which every later batch fails with.
    let mut failed: Option<String> = None;
    while let Ok(first) = pending.recv() {
        let mut queued = vec![first];
        if concurrent {
            std::thread::sleep(LINGER);
        }
        queued.extend(pending.try_iter());
        concurrent = queued.len() > 1;
        let mut merged = Batch::default();
        let mut completions = Vec::with_capacity(queued.len());
        for Queued { batch, done, room } in queued {
            merged.ops.extend(batch.ops);
            completions.push((done, room));
        }
        let result = match (&failed, storage.upgrade()) {
            (Some(first), _) => Err(format!("an earlier store write or sync failed: {first}")),
            (None, Some(storage)) => {
                syncs.fetch_add(1, Ordering::Relaxed);
                storage
                    .write(merged)
                    .and_then(|()| {
                        fail::fail_point!("log-written-before-sync");
                        storage.sync()
                    })
                    .map_err(|e| e.to_string())
            }
            (None, None) => Err("the store is closed".into()),
        };
        if let (None, Err(error)) = (&failed, &result) {
            failed = Some(error.clone());
        }
        for (done, room) in completions {
            done(result.clone());
            drop(room);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::storage::test_store::TestStore;
    use crate::storage::{Cf, RocksStorage};

    /// A put of `value` under `key`.
    fn put(key: u8, value: Vec<u8>) -> Batch {
        let mut batch = Batch::default();
        batch.put(Cf::RaftLog, vec![key], value);
        batch
    }

    #[tokio::test]
    async fn after_a_failed_write_nothing_more_is_written() {
        let (_dir, store, storage) = TestStore::temporary();
        store.fail(true);
        let commit = GroupCommit::start(&storage).unwrap();
        let first = commit.write_durably(put(1, vec![1])).await.unwrap_err();
        assert!(first.contains("the disk is full"), "{first}");
        store.fail(false);
        let later = commit.write_durably(put(2, vec![2])).await.unwrap_err();
        assert!(
            later.contains("earlier") && later.contains("the disk is full"),
            "{later}"
        );
        assert_eq!(storage.get(Cf::RaftLog, &[2]).unwrap(), None, "written after a failure");
    }

    #[tokio::test]
    async fn a_stalled_disk_holds_up_writers_once_the_queue_is_full() {
        let (_dir, store, storage) = TestStore::temporary();
        store.hold(true);
        // Room for three batches of 1 KiB (each 1 byte of key).
        let commit = GroupCommit::start_with_room(&storage, 3 * 1025).unwrap();
        let (tx, mut completed) = tokio::sync::mpsc::unbounded_channel();
        for key in 0..3 {
            let tx = tx.clone();
            commit
                .write(put(key, vec![key; 1024]), move |r| tx.send((key, r)).unwrap())
                .await;
        }
        let fourth = {
            let commit = commit.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                commit
                    .write(put(3, vec![3; 1024]), move |r| tx.send((3, r)).unwrap())
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!fourth.is_finished(), "a fourth batch was queued past the queue's room");
        store.hold(false);
        fourth.await.unwrap();
        let mut done = Vec::new();
        for _ in 0..4 {
            let (key, result) = completed.recv().await.unwrap();
            result.unwrap();
            done.push(key);
        }
        assert_eq!(done, [0, 1, 2, 3], "completed in the order queued");
        assert_eq!(storage.get(Cf::RaftLog, &[3]).unwrap(), Some(vec![3; 1024]));
        // A batch larger than the whole room still goes, alone.
        commit.write_durably(put(4, vec![4; 8192])).await.unwrap();
    }

    #[tokio::test]
    async fn every_batch_is_written_in_order_before_its_completion_runs() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(RocksStorage::open(dir.path()).unwrap());
        let commit = GroupCommit::start(&storage).unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = channel();
        for i in 0u8..100 {
            let mut batch = Batch::default();
            batch.put(Cf::RaftLog, vec![i % 10], vec![i]);
            let done = done.clone();
            let tx = tx.clone();
            let storage = storage.clone();
            commit
                .write(batch, move |result| {
                    result.unwrap();
                    let stored = storage.get(Cf::RaftLog, &[i % 10]).unwrap().unwrap();
                    assert!(stored[0] >= i, "batch {i} is not in the store: {stored:?}");
                    done.fetch_add(1, Ordering::SeqCst);
                    tx.send(()).unwrap();
                })
                .await;
        }
        for _ in 0..100 {
            rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 100);
        let last: Vec<u8> = (0..10)
            .map(|k| storage.get(Cf::RaftLog, &[k]).unwrap().unwrap()[0])
            .collect();
        assert_eq!(last, (90..100).collect::<Vec<u8>>(), "the last batch queued wins");
        assert!((1..=100).contains(&commit.syncs()), "{} syncs", commit.syncs());
    }
}

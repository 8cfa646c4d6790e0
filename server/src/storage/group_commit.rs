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

use super::{Batch, Storage};

type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;

/// How long a sync waits for more batches once the last one covered
/// several (see the module's essay).
const LINGER: Duration = Duration::from_millis(1);

/// A batch waiting for the committer, with what to call once it is durable.
struct Queued {
    batch: Batch,
    done: Completion,
}

/// A handle to the node's committer thread; clones share it.
#[derive(Clone)]
pub struct GroupCommit {
    queue: Sender<Queued>,
    syncs: Arc<AtomicU64>,
}

impl GroupCommit {
    /// Starts the committer thread for `storage`.
    pub fn start(storage: &Arc<dyn Storage>) -> std::io::Result<Self> {
        let (queue, pending) = channel();
        let storage = Arc::downgrade(storage);
        let syncs = Arc::new(AtomicU64::new(0));
        let counted = syncs.clone();
        std::thread::Builder::new()
            .name("cairn-fsync".into())
            .spawn(move || commit_loop(&storage, pending, &counted))?;
        Ok(GroupCommit { queue, syncs })
    }

    /// Store syncs made since the thread started.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Writes `batch` after every batch queued before it, and calls `done`
    /// once it is durable.
    pub fn write(&self, batch: Batch, done: impl FnOnce(Result<(), String>) + Send + 'static) {
        let queued = Queued {
            batch,
            done: Box::new(done),
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
        });
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
        for Queued { batch, done } in queued {
            merged.ops.extend(batch.ops);
            completions.push(done);
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
        for done in completions {
            done(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::error::{Error, Result};
    use crate::storage::{Cf, RocksStorage};

    /// A store whose writes fail while `failing` is set.
    struct Flaky {
        inner: RocksStorage,
        failing: std::sync::atomic::AtomicBool,
    }

    impl Storage for Flaky {
        fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
            self.inner.get(cf, key)
        }

        fn scan(&self, cf: Cf, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
            self.inner.scan(cf, from, to, limit)
        }

        fn last(&self, cf: Cf, from: &[u8], to: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
            self.inner.last(cf, from, to)
        }

        fn write(&self, batch: Batch) -> Result<()> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(Error::Storage("the disk is full".into()));
            }
            self.inner.write(batch)
        }

        fn sync(&self) -> Result<()> {
            self.inner.sync()
        }

        fn path(&self) -> &std::path::Path {
            self.inner.path()
        }
    }

    /// Queues a put of `key` and waits for its completion.
    fn put(commit: &GroupCommit, key: u8) -> Result<(), String> {
        let mut batch = Batch::default();
        batch.put(Cf::RaftLog, vec![key], vec![key]);
        let (tx, rx) = channel();
        commit.write(batch, move |result| tx.send(result).unwrap());
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap()
    }

    #[test]
    fn after_a_failed_write_nothing_more_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let flaky = Arc::new(Flaky {
            inner: RocksStorage::open(dir.path()).unwrap(),
            failing: true.into(),
        });
        let storage: Arc<dyn Storage> = flaky.clone();
        let commit = GroupCommit::start(&storage).unwrap();
        let first = put(&commit, 1).unwrap_err();
        assert!(first.contains("the disk is full"), "{first}");
        flaky.failing.store(false, Ordering::SeqCst);
        let later = put(&commit, 2).unwrap_err();
        assert!(
            later.contains("earlier") && later.contains("the disk is full"),
            "{later}"
        );
        assert_eq!(storage.get(Cf::RaftLog, &[2]).unwrap(), None, "written after a failure");
    }

    #[test]
    fn every_batch_is_written_in_order_before_its_completion_runs() {
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
            commit.write(batch, move |result| {
                result.unwrap();
                let stored = storage.get(Cf::RaftLog, &[i % 10]).unwrap().unwrap();
                assert!(stored[0] >= i, "batch {i} is not in the store: {stored:?}");
                done.fetch_add(1, Ordering::SeqCst);
                tx.send(()).unwrap();
            });
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

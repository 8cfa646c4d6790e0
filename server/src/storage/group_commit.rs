//! Group commit: one fsync for every write waiting on one.
//!
//! Raft groups append to the shared store independently, and each append
//! must be durable before it is acknowledged. Rather than one fsync per
//! append, appenders hand a completion to the committer thread, which takes
//! every completion queued so far, syncs the store once, and completes them
//! all. Under load the number of fsyncs per second stays roughly constant
//! while the writes they cover grow. The syncs are counted (`INFO
//! persistence` shows the count), so writes per fsync can be measured.
//!
//! Writes to many groups arrive one group's batch at a time, so a sync
//! started at the first arrival covers few of them: about five writes per
//! fsync with 8 shards under 50 connections, and every fsync costs CPU
//! and thread wake-ups of its own. So once a sync has covered more than
//! one completion (writers are concurrent), the next waits [`LINGER`] for
//! more before it starts: three times as many writes per fsync, and some
//! 7 % more SETs per second on 2 cores (`cairn-bench shards --counts 8`,
//! BENCHMARKS.md). A lone writer, whose syncs each cover one completion,
//! never waits. The wait is a sleep, not a wait on the queue: a thread
//! waiting on the queue is woken by every completion that arrives, and on
//! a virtual machine every wake-up leaves the guest (context switches per
//! write from 2.8 to 2.0, and 8 % more SETs/s).
//!
//! # Correctness
//!
//! A completion is queued only after its write has returned, and the sync
//! that completes it starts after it was dequeued, so that sync covers the
//! write. The thread ends when the last [`GroupCommit`] handle is dropped.
//! It holds the store only weakly, so the store is closed by its owners,
//! never by this thread racing the process's exit (RocksDB must be closed
//! before the process tears down its statics).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Storage;

type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;

/// How long a sync waits for more completions once the last one covered
/// several (see the module's essay).
const LINGER: Duration = Duration::from_millis(1);

/// A handle to the node's committer thread; clones share it.
#[derive(Clone)]
pub struct GroupCommit {
    queue: Sender<Completion>,
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

    /// Calls `done` once every write made before this call is durable.
    pub fn after_sync(&self, done: impl FnOnce(Result<(), String>) + Send + 'static) {
        if let Err(returned) = self.queue.send(Box::new(done)) {
            (returned.0)(Err("the store is shutting down".into()));
        }
    }
}

fn commit_loop(storage: &Weak<dyn Storage>, pending: Receiver<Completion>, syncs: &AtomicU64) {
    // Whether the last sync covered more than one completion.
    let mut concurrent = false;
    while let Ok(first) = pending.recv() {
        let mut batch = vec![first];
        if concurrent {
            std::thread::sleep(LINGER);
        }
        batch.extend(pending.try_iter());
        concurrent = batch.len() > 1;
        let result = match storage.upgrade() {
            Some(storage) => {
                syncs.fetch_add(1, Ordering::Relaxed);
                storage.sync().map_err(|e| e.to_string())
            }
            None => Err("the store is closed".into()),
        };
        for done in batch {
            done(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::storage::{Batch, Cf, RocksStorage};

    #[test]
    fn every_completion_runs_after_a_sync() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(RocksStorage::open(dir.path()).unwrap());
        let commit = GroupCommit::start(&storage).unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = channel();
        for i in 0u8..100 {
            let mut batch = Batch::default();
            batch.put(Cf::RaftLog, vec![i], vec![i]);
            storage.write(batch).unwrap();
            let done = done.clone();
            let tx = tx.clone();
            commit.after_sync(move |result| {
                result.unwrap();
                done.fetch_add(1, Ordering::SeqCst);
                tx.send(()).unwrap();
            });
        }
        for _ in 0..100 {
            rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 100);
        assert!((1..=100).contains(&commit.syncs()), "{} syncs", commit.syncs());
    }
}

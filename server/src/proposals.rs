//! Proposals: a group's writes, many to a Raft entry.
//!
//! Every entry costs the same fixed work whatever it holds: a message to
//! the Raft core and its answer, a record in each replica's log store, its
//! share of every append sent to a follower, and openraft's bookkeeping of
//! it on every replica. A client's write of a few dozen bytes is small
//! next to that. So at most [`MAX_PROPOSING`] entries of a group's writes
//! are on their way at once (a caller that gives up frees its slot
//! early). A write that finds one of those slots free and nothing queued
//! is proposed at once, alone, by its own caller. Else it is queued, and
//! the [`Proposer`]'s task proposes the writes queued, oldest first and
//! up to an entry's limits, as one entry ([`WriteOp::Batch`]) as soon as a
//! slot frees. Writes are only combined while they would have waited
//! anyway, as group commit combines fsyncs ([`crate::storage`]).
//!
//! An entry holds at most [`MAX_BYTES`] of writes (a larger write is an
//! entry of its own), because openraft counts entries, not bytes, when it
//! keeps them in memory. One client write holds at most
//! [`MAX_WRITE_BYTES`]; a larger one is refused before it is forwarded or
//! proposed ([`check_size`]). Every request a follower is sent must fit in
//! one replication frame ([`MAX_FRAME`]), and holds at most
//! [`PAYLOAD_BYTES`] of entries and one entry more, so an entry has to be
//! smaller than a frame: a write too large for one would be in the log but
//! could never reach a follower, and its group could commit nothing after
//! it.
//!
//! # Correctness
//!
//! A batch entry applies its writes one after the other, each exactly as
//! an entry of its own (its own clock, session tag and cross-region
//! record; see [`crate::raft::state_machine`]), so batching changes no
//! reply. The task proposes its writes in the order they were queued (a
//! write that found a slot free may overtake them: all of them are in
//! flight at once, so either order is linearizable). The entry's
//! fate is each of its writes': all committed and applied, or all failed
//! alike, so a write whose entry was discarded by a leader change is
//! [`Error::Indeterminate`], never retried blindly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{Semaphore, SemaphorePermit, mpsc, oneshot};

use crate::error::{Error, Result};
use crate::keyspace::{Reply, Write, WriteOp};
use crate::raft::append_link::MAX_FRAME;
use crate::raft::log_store::PAYLOAD_BYTES;
use crate::raft::typ::{Raft, TypeConfig};
use crate::wire;

/// Most entries of one group's writes proposed and not yet answered.
const MAX_PROPOSING: usize = 4;
/// Most writes in one entry.
const MAX_WRITES: usize = 256;
/// Most encoded bytes of writes in one entry, unless it is a single write.
const MAX_BYTES: usize = 64 * 1024;
/// Most encoded bytes of one client write (see the module's essay).
pub const MAX_WRITE_BYTES: usize = 32 << 20;
// A request to a follower holds entries up to the payload bound, one entry
// more (one write; or a batch of writes, of at most `MAX_BYTES`; or a
// shipped batch, of at most 1 MiB unless it is one record, see
// `crate::xlog`), and the request's own fields.
const _: () = assert!(PAYLOAD_BYTES + MAX_WRITE_BYTES + (2 << 20) <= MAX_FRAME);

/// Refuses a client's write of `bytes` encoded if it is larger than one
/// write may be ([`Error::WriteTooLarge`], naming both sizes).
pub fn check_size(bytes: usize) -> Result<()> {
    match bytes <= MAX_WRITE_BYTES {
        true => Ok(()),
        false => Err(Error::WriteTooLarge {
            bytes,
            limit: MAX_WRITE_BYTES,
        }),
    }
}

/// A write's reply, and the index of the entry that applied it.
pub type Committed = (Reply, u64);

/// A write waiting to be proposed.
struct Queued {
    write: Write,
    /// Its encoded size.
    size: usize,
    done: oneshot::Sender<Result<Committed>>,
}

/// Entries and writes committed through the proposer, so that writes per
/// entry can be measured.
#[derive(Debug, Default)]
pub struct Proposed {
    /// Entries proposed that committed.
    pub entries: AtomicU64,
    /// Writes they held.
    pub writes: AtomicU64,
}

/// Proposes one group's writes (see the module's essay). Dropping it ends
/// its task once the entries proposed are answered.
pub struct Proposer {
    shard: u64,
    raft: Raft,
    queue: mpsc::UnboundedSender<Queued>,
    shared: Arc<Shared>,
}

/// What writers and the proposer's task share.
struct Shared {
    /// Writes queued and not yet proposed.
    queued: AtomicUsize,
    /// One permit per entry that may be on its way.
    slots: Semaphore,
    proposed: Proposed,
}

impl Proposer {
    /// Starts proposing writes to `raft`, the group of `shard`.
    pub fn start(raft: Raft, shard: u64) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queued: AtomicUsize::new(0),
            slots: Semaphore::new(MAX_PROPOSING),
            proposed: Proposed::default(),
        });
        tokio::spawn(propose_queued(raft.clone(), shard, shared.clone(), receiver));
        Proposer {
            shard,
            raft,
            queue,
            shared,
        }
    }

    /// Entries and writes proposed so far.
    pub fn proposed(&self) -> &Proposed {
        &self.shared.proposed
    }

    /// Proposes `write`; answers once it is committed and applied here. A
    /// client's write over [`MAX_WRITE_BYTES`] is refused
    /// ([`check_size`]); bookkeeping writes are bounded by how they are
    /// built.
    ///
    /// A write that finds nothing queued and a slot free is proposed here
    /// and now (no hand-over to the task: at low load that would cost a
    /// wake-up per write for nothing to combine). Else it is queued, and
    /// waits for the task to propose it.
    pub async fn write(&self, write: Write) -> Result<Committed> {
        let size = wire::encoded_len(&write)?;
        if !write.op.is_bookkeeping() {
            check_size(size)?;
        }
        let shared = &self.shared;
        if shared.queued.load(Ordering::Acquire) == 0
            && let Ok(_slot) = shared.slots.try_acquire()
        {
            return propose_one(&self.raft, self.shard, write, &shared.proposed).await;
        }
        let stopped = || Error::Fatal {
            shard: self.shard,
            detail: "the group's proposer stopped".into(),
        };
        let (done, answer) = oneshot::channel();
        shared.queued.fetch_add(1, Ordering::AcqRel);
        self.queue.send(Queued { write, size, done }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The proposer's task: proposes the writes queued, each entry once a
/// slot is free, until the queue closes and every entry proposed was
/// answered.
async fn propose_queued(raft: Raft, shard: u64, shared: Arc<Shared>, mut receiver: mpsc::UnboundedReceiver<Queued>) {
    let mut proposing = FuturesUnordered::new();
    // The oldest write taken from the queue (or held over from a full
    // entry), waiting for a slot.
    let mut next: Option<Queued> = None;
    let mut open = true;
    loop {
        tokio::select! {
            Some(()) = proposing.next() => {}
            queued = receiver.recv(), if open && next.is_none() => match queued {
                Some(queued) => next = Some(queued),
                None => open = false,
            },
            slot = shared.slots.acquire(), if next.is_some() => {
                let first = next.take().expect("a write waits for the slot");
                let batch = gather(first, &mut receiver, &mut next);
                shared.queued.fetch_sub(batch.len(), Ordering::AcqRel);
                let slot = slot.expect("the slots are never closed");
                proposing.push(propose(&raft, shard, batch, slot, &shared.proposed));
            }
            else => break,
        }
    }
}

impl Proposed {
    /// Counts an entry of `writes` writes.
    fn count(&self, writes: usize) {
        self.entries.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
    }
}

/// `first` and the writes queued behind it, up to an entry's limits; a
/// write that would take the entry past [`MAX_BYTES`] is left in `held`,
/// to start the next entry.
fn gather(first: Queued, queued: &mut mpsc::UnboundedReceiver<Queued>, held: &mut Option<Queued>) -> Vec<Queued> {
    let mut bytes = first.size;
    let mut batch = vec![first];
    while batch.len() < MAX_WRITES {
        let Ok(next) = queued.try_recv() else {
            break;
        };
        if bytes + next.size > MAX_BYTES {
            *held = Some(next);
            break;
        }
        bytes += next.size;
        batch.push(next);
    }
    batch
}

/// Proposes `write` as an entry of its own, counting it in `proposed` if
/// it was taken.
async fn propose_one(raft: &Raft, shard: u64, write: Write, proposed: &Proposed) -> Result<Committed> {
    let response = Box::pin(raft.client_write(write))
        .await
        .map_err(|err| refused(shard, &err))?;
    proposed.count(1);
    Ok((response.data, response.log_id.index()))
}

/// Proposes `batch` as one entry holding `slot`, answers each of its
/// writes, and counts the entry in `proposed` if it was taken.
async fn propose(raft: &Raft, shard: u64, mut batch: Vec<Queued>, slot: SemaphorePermit<'_>, proposed: &Proposed) {
    if batch.len() == 1 {
        let Queued { write, done, .. } = batch.pop().expect("one write");
        let _ = done.send(propose_one(raft, shard, write, proposed).await);
        return;
    }
    let (writes, waiting): (Vec<Write>, Vec<_>) = batch.into_iter().map(|q| (q.write, q.done)).unzip();
    let count = writes.len();
    let outcome = Box::pin(raft.client_write(Write::new(WriteOp::Batch { writes: writes.into() }))).await;
    drop(slot);
    let replies: Vec<Result<Committed>> = match outcome {
        Ok(response) => {
            proposed.count(count);
            let index = response.log_id.index();
            match response.data {
                Reply::List(replies) if replies.len() == count => {
                    replies.into_iter().map(|reply| Ok((reply, index))).collect()
                }
                other => (0..count)
                    .map(|_| {
                        Err(Error::Fatal {
                            shard,
                            detail: format!("a batch of {count} writes was answered {other:?}"),
                        })
                    })
                    .collect(),
            }
        }
        Err(err) => (0..count).map(|_| Err(refused(shard, &err))).collect(),
    };
    for (done, reply) in waiting.into_iter().zip(replies) {
        let _ = done.send(reply);
    }
}

/// What a write whose entry failed with `err` answers.
fn refused(shard: u64, err: &RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> Error {
    match err {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => Error::NotLeader {
            shard,
            leader: forward.leader_id,
        },
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(_)) => Error::Indeterminate { shard },
        err => Error::Fatal {
            shard,
            detail: err.to_string(),
        },
    }
}

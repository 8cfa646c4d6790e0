//! `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`: transactions of one
//! shard, applied as one Raft entry, so all or nothing, in order, with
//! nothing interleaved.
//!
//! After `MULTI` every command is checked and queued (`+QUEUED`) instead of
//! run; an unknown command or a wrong number of arguments makes `EXEC`
//! fail with `-EXECABORT`, as in Redis, while other errors are answered in
//! `EXEC`'s reply at their place. `EXEC` sends the queue to the shard as
//! one [`WriteOp::Transaction`]; commands on keys of several shards get
//! Redis Cluster's `-CROSSSLOT`, and commands that span the keyspace
//! (`KEYS`, `DBSIZE`, `FLUSHALL`, multi-shard `DEL`…) cannot be queued.
//!
//! `WATCH` records a fingerprint of each key (a hash of its type, value and
//! deadline); the transaction applies only if every watched key still has
//! its fingerprint when the entry is applied, otherwise `EXEC` answers nil.
//! Unlike Redis, a key changed and then changed back counts as unchanged.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{Call, Client, Outcome, Spec, error_frame, reply_frame};
use crate::keyspace::{Read, Reply, Step, Write, WriteOp};
use crate::resp::frame::Frame;
use crate::resp::server::Shared;
use crate::shard::Request;

/// Commands that act on the transaction itself rather than being queued.
pub const CONTROL: &[&str] = &["exec", "discard", "multi", "watch", "unwatch", "quit", "reset"];

/// A queued command.
enum Queued {
    /// A step for a shard, and how to reply to it.
    Step {
        shard: u64,
        step: Step,
        reply: fn(Reply) -> Frame,
    },
    /// A reply already known (an argument error found while queueing).
    Ready(Frame),
}

/// An open `MULTI`.
#[derive(Default)]
pub struct Transaction {
    queued: Vec<Queued>,
    /// A command could not be queued: `EXEC` will refuse.
    failed: bool,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("queued", &self.queued.len())
            .field("failed", &self.failed)
            .finish()
    }
}

/// Watched keys with their shard and fingerprint, filled in by `WATCH`'s
/// reads (which finish after the command returns, hence shared).
pub type Watched = Arc<Mutex<Vec<(u64, Bytes, i64)>>>;

/// Marks an open transaction as failed (a command could not be queued).
pub fn fail(client: &mut Client) {
    if let Some(transaction) = client.transaction.as_mut() {
        transaction.failed = true;
    }
}

/// Queues a command of an open transaction.
pub fn queue(shared: &Arc<Shared>, client: &mut Client, spec: &Spec, args: Vec<Bytes>) -> Outcome {
    let item = match (spec.run)(shared, client, args) {
        Outcome::Call(Call {
            shard,
            request: Request::Write(write),
            reply,
        }) => Queued::Step {
            shard,
            step: Step::Write(write.op),
            reply,
        },
        Outcome::Call(Call {
            shard,
            request: Request::Read(read) | Request::ReadIndex(read),
            reply,
        }) => Queued::Step {
            shard,
            step: Step::Read(read),
            reply,
        },
        Outcome::Reply(frame) => Queued::Ready(frame),
        // Anything but one keyspace step on one shard.
        Outcome::Later(_) | Outcome::Call(_) => {
            fail(client);
            return Outcome::Reply(Frame::error(format!(
                "ERR '{}' cannot be part of a transaction here: its keys span shards or it reads the whole keyspace",
                spec.name
            )));
        }
        close @ Outcome::Close(_) => return close,
    };
    if let Some(transaction) = client.transaction.as_mut() {
        transaction.queued.push(item);
    }
    Outcome::Reply(Frame::Simple("QUEUED".into()))
}

fn exec(shared: &Arc<Shared>, client: &mut Client) -> Outcome {
    let Some(transaction) = client.transaction.take() else {
        return Outcome::Reply(Frame::error("ERR EXEC without MULTI"));
    };
    let watched = std::mem::take(&mut *client.watched.lock().expect("watch lock"));
    if transaction.failed {
        return Outcome::Reply(Frame::error(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    let shards: std::collections::BTreeSet<u64> = transaction
        .queued
        .iter()
        .filter_map(|item| match item {
            Queued::Step { shard, .. } => Some(*shard),
            Queued::Ready(_) => None,
        })
        .chain(watched.iter().map(|(shard, _, _)| *shard))
        .collect();
    if shards.len() > 1 {
        return Outcome::Reply(Frame::error("CROSSSLOT Keys in request don't hash to the same slot"));
    }
    let Some(&shard) = shards.first() else {
        // Nothing for the cluster: the replies are already known.
        let replies = transaction
            .queued
            .into_iter()
            .map(|item| match item {
                Queued::Ready(frame) => frame,
                Queued::Step { .. } => unreachable!("no steps"),
            })
            .collect();
        return Outcome::Reply(Frame::Array(replies));
    };
    let mut steps = Vec::new();
    let mut replies = Vec::new();
    for item in transaction.queued {
        match item {
            Queued::Step { step, reply, .. } => {
                steps.push(step);
                replies.push(Ok(reply));
            }
            Queued::Ready(frame) => replies.push(Err(frame)),
        }
    }
    let op = WriteOp::Transaction {
        steps,
        watched: watched.into_iter().map(|(_, key, seen)| (key, seen)).collect(),
    };
    let shared = shared.clone();
    Outcome::Later(Box::pin(async move {
        let answer = match shared.execute(shard, Request::Write(Write::new(op))).await {
            Ok(answer) => answer.reply,
            Err(err) => return error_frame(err),
        };
        let Reply::List(results) = answer else {
            // A watched key changed: nothing was applied.
            return Frame::NullArray;
        };
        let mut results = results.into_iter();
        Frame::Array(
            replies
                .into_iter()
                .map(|reply| match reply {
                    Ok(format) => results.next().map_or(Frame::Null, |r| reply_frame(r, format)),
                    Err(frame) => frame,
                })
                .collect(),
        )
    }))
}

/// `MULTI`.
pub static MULTI: Spec = Spec {
    name: "multi",
    arity: 1,
    flags: &["noscript", "loading", "stale", "fast", "allow-busy"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@fast", "@transaction"],
    run: |_, client: &mut Client, _| {
        if client.transaction.is_some() {
            return Outcome::Reply(Frame::error("ERR MULTI calls can not be nested"));
        }
        client.transaction = Some(Transaction::default());
        Outcome::Reply(Frame::ok())
    },
};

/// `EXEC`.
pub static EXEC: Spec = Spec {
    name: "exec",
    flags: &["noscript", "loading", "stale", "skip-slowlog"],
    categories: &["@slow", "@transaction"],
    run: |shared, client: &mut Client, _| exec(shared, client),
    ..MULTI
};

/// `DISCARD`.
pub static DISCARD: Spec = Spec {
    name: "discard",
    run: |_, client: &mut Client, _| {
        if client.transaction.take().is_none() {
            return Outcome::Reply(Frame::error("ERR DISCARD without MULTI"));
        }
        client.watched.lock().expect("watch lock").clear();
        Outcome::Reply(Frame::ok())
    },
    ..MULTI
};

/// `WATCH key [key ...]`.
pub static WATCH: Spec = Spec {
    name: "watch",
    arity: -2,
    first_key: 1,
    last_key: -1,
    step: 1,
    run: |shared, client: &mut Client, args| {
        if client.transaction.is_some() {
            return Outcome::Reply(Frame::error("ERR WATCH inside MULTI is not allowed"));
        }
        let shared = shared.clone();
        let watched = client.watched.clone();
        Outcome::Later(Box::pin(async move {
            for key in args.into_iter().skip(1) {
                let shard = shared.node.slots().shard_of_key(&key);
                let read = Read::Fingerprint { key: key.clone() };
                match shared.execute(shard, Request::Read(read)).await {
                    Ok(answer) => {
                        let seen = if let Reply::Int(n) = answer.reply { n } else { -1 };
                        watched.lock().expect("watch lock").push((shard, key, seen));
                    }
                    Err(err) => return error_frame(err),
                }
            }
            Frame::ok()
        }))
    },
    ..MULTI
};

/// `UNWATCH`.
pub static UNWATCH: Spec = Spec {
    name: "unwatch",
    run: |_, client: &mut Client, _| {
        client.watched.lock().expect("watch lock").clear();
        Outcome::Reply(Frame::ok())
    },
    ..MULTI
};

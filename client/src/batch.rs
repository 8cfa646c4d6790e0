//! Typed batches: many operations sent together, one `Batch` call per
//! node, all nodes at once.
//!
//! A batch is a convenience for throughput, not a transaction: operations
//! run concurrently, as that many calls in flight at once would, each is
//! applied exactly once and each has its own outcome. What it saves is a
//! call per operation (an HTTP/2 exchange each way), which is most of a
//! small operation's cost.
//!
//! Each round routes every unanswered operation as a call of its own would
//! be routed (to its shard's leader when it needs one, see
//! [`crate::client`]) and sends each node its share, in calls of at most
//! [`CALL_OPS`] operations and [`CALL_BYTES`]. An operation that failed in
//! a way a call would retry (the node did not lead, could not be reached,
//! its outcome is unknown) goes into the next round, until the handle's
//! deadline: at once when every such failure named its shard's leader,
//! else after a backoff pause. A write keeps its session tag through every
//! attempt, so it is applied once however often it is sent; when a whole
//! call fails, its writes are sent again rather than reported failed, since
//! the node may have applied them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_proto::kv;
use cairn_proto::kv::{batch_op, batch_result};
use prost::Message as _;

use crate::client::{Client, check_key, request, ttl_ms};
use crate::error::{Error, Result};
use crate::metrics::{Attempt, Count};
use crate::options::SetOptions;
use crate::pool::kv_client;
use crate::reply::{CasOutcome, Reply, Ttl};
use crate::session::Ticket;

/// Most operations in one `Batch` call (the server takes up to 4096).
pub const CALL_OPS: usize = 1024;
/// Most encoded bytes of operations in one `Batch` call.
pub const CALL_BYTES: usize = 4 * 1024 * 1024;

/// One operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// [`Client::get`].
    Get(Bytes),
    /// [`Client::set_with`].
    Set(Bytes, Bytes, SetOptions),
    /// [`Client::delete`].
    Delete(Bytes),
    /// [`Client::incr`].
    Incr(Bytes, i64),
    /// [`Client::compare_and_set`].
    CompareAndSet(Bytes, Option<Bytes>, Bytes),
    /// [`Client::expire`].
    Expire(Bytes, Duration),
    /// [`Client::ttl`].
    Ttl(Bytes),
}

impl Op {
    /// Its name, as its own call's (for metrics).
    fn name(&self) -> &'static str {
        match self {
            Op::Get(_) => "get",
            Op::Set(..) => "set",
            Op::Delete(_) => "delete",
            Op::Incr(..) => "incr",
            Op::CompareAndSet(..) => "compare_and_set",
            Op::Expire(..) => "expire",
            Op::Ttl(_) => "ttl",
        }
    }
}

/// The outcome of one operation, of the matching kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Of [`Op::Get`].
    Value(Option<Bytes>),
    /// Of [`Op::Set`] (stored?), [`Op::Delete`] (existed?) and
    /// [`Op::Expire`] (existed?).
    Done(bool),
    /// Of [`Op::Incr`].
    Counter(i64),
    /// Of [`Op::CompareAndSet`].
    Cas(CasOutcome),
    /// Of [`Op::Ttl`].
    Ttl(Ttl),
}

/// Operations to send together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Adds any operation.
    pub fn push(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }

    /// Adds a get.
    pub fn get(self, key: impl Into<Bytes>) -> Self {
        self.push(Op::Get(key.into()))
    }

    /// Adds a set.
    pub fn set(self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        self.push(Op::Set(key.into(), value.into(), SetOptions::default()))
    }

    /// Adds a delete.
    pub fn delete(self, key: impl Into<Bytes>) -> Self {
        self.push(Op::Delete(key.into()))
    }

    /// Adds an increment.
    pub fn incr(self, key: impl Into<Bytes>, delta: i64) -> Self {
        self.push(Op::Incr(key.into(), delta))
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// How many operations there are.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl Client {
    /// Runs every operation of `batch`: one call per node, all at once;
    /// outcomes come back in the batch's order, each with its own result.
    ///
    /// Each operation counts as a call of its own in [`Client::stats`] and
    /// for the metrics hook, and each time it is sent as an attempt.
    pub async fn batch(&self, batch: &Batch) -> Vec<Result<Reply<Outcome>>> {
        let started = Instant::now();
        let deadline = started + self.options.deadline;
        let mut outcomes = Outcomes {
            client: self,
            started,
            slots: batch.ops.iter().map(|_| None).collect(),
        };
        // Tickets are held until the batch ends: every attempt of a write
        // carries the same tag.
        let mut tickets: Vec<Ticket> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        for (position, op) in batch.ops.iter().enumerate() {
            let op_name = op.name();
            match self.batch_message(op) {
                Ok((key, mut op)) => {
                    let writes = match session_of(&mut op) {
                        Some(session) => {
                            let ticket = self.inner.session.begin();
                            *session = Some(ticket.tag());
                            tickets.push(ticket);
                            true
                        }
                        None => false,
                    };
                    self.inner.counters.bump(Count::Call);
                    pending.push(Pending {
                        position,
                        name: op_name,
                        key,
                        op: kv::BatchOp { op: Some(op) },
                        writes,
                        attempts: 0,
                        last: None,
                    });
                }
                // Refused before it is sent, as its own call would be.
                Err(err) => outcomes.slots[position] = Some(Err(err)),
            }
        }
        let mut backoffs = 0u32;
        while !pending.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                for mut op in pending.drain(..) {
                    let last = op.last.take().unwrap_or_else(|| Error::Unavailable {
                        node: 0,
                        detail: "no attempt could be made".into(),
                    });
                    let timeout = Error::Timeout {
                        attempts: op.attempts,
                        elapsed: started.elapsed(),
                        last: Box::new(last),
                    };
                    outcomes.finish(&op, Err(timeout));
                }
                break;
            }
            let (retry, at_once) = self
                .batch_round(std::mem::take(&mut pending), left, &mut outcomes)
                .await;
            pending = retry;
            if !pending.is_empty() && !at_once {
                tokio::time::sleep(self.inner.settings.backoff.pause(backoffs).min(left)).await;
                backoffs += 1;
            }
        }
        drop(tickets);
        outcomes
            .slots
            .into_iter()
            .map(|outcome| outcome.unwrap_or_else(|| Err(Error::Internal("operation left without an outcome".into()))))
            .collect()
    }

    /// Sends `ops` in one call per node, each within `left`; fills in
    /// the outcome of each operation that is done. Returns the operations
    /// to send again, and whether that may be at once (every one of them
    /// failed on a node that named its shard's leader).
    async fn batch_round(
        &self,
        ops: Vec<Pending>,
        left: Duration,
        outcomes: &mut Outcomes<'_>,
    ) -> (Vec<Pending>, bool) {
        let inner = &self.inner;
        let mut retry = Vec::new();
        let mut at_once = true;
        let reads_need_leader = self.options.consistency.needs_leader();
        let mut by_node: BTreeMap<(u64, bool), Vec<(u64, Pending)>> = BTreeMap::new();
        for mut op in ops {
            let shard = inner.topology.read().expect("topology lock").shard_of_key(&op.key);
            match inner.route(shard, op.writes || reads_need_leader, self.local_reads) {
                Some(target) => by_node.entry(target).or_default().push((shard, op)),
                None => {
                    op.last = Some(Error::Unavailable {
                        node: 0,
                        detail: "every node's circuit breaker is open".into(),
                    });
                    retry.push(op);
                    at_once = false;
                }
            }
        }
        let timeout = inner.settings.attempt_timeout.min(left);
        let calls = by_node
            .into_iter()
            .flat_map(|(target, ops)| chunks(ops).into_iter().map(move |ops| (target, ops)))
            .map(|((node, direct), ops)| async move {
                let message = kv::BatchRequest {
                    ops: ops.iter().map(|(_, op)| op.op.clone()).collect(),
                };
                let sent_at = Instant::now();
                let sent = async {
                    let channel = inner.channel(node)?;
                    let reply = kv_client(channel).batch(request(message, direct, timeout)).await;
                    reply.map_err(|status| Error::from_status(&status, node, ops[0].0))
                };
                let reply = match tokio::time::timeout(timeout, sent).await {
                    Ok(Ok(reply)) if reply.get_ref().results.len() == ops.len() => Ok(reply.into_inner().results),
                    Ok(Ok(reply)) => Err(Error::Internal(format!(
                        "node {node} answered a batch of {} operations with {} results",
                        ops.len(),
                        reply.get_ref().results.len()
                    ))),
                    Ok(Err(err)) => Err(err),
                    Err(_) => Err(Error::AttemptTimeout { node, after: timeout }),
                };
                (node, direct, ops, reply, sent_at.elapsed())
            });
        for (node, direct, ops, reply, latency) in futures::future::join_all(calls).await {
            let attempt = |op: &mut Pending, shard: u64, error: Option<&Error>| {
                op.attempts += 1;
                inner.counters.bump(Count::Attempt);
                inner.metrics.attempt(&Attempt {
                    op: op.name,
                    shard,
                    node,
                    latency,
                    error,
                });
            };
            let results = match reply {
                Ok(results) => {
                    inner.breaker(node).success();
                    results
                }
                Err(err) => {
                    inner.note_node(node, &err);
                    for (shard, mut op) in ops {
                        attempt(&mut op, shard, Some(&err));
                        inner.note_shard(node, shard, &err);
                        if err.is_retryable() || op.writes {
                            op.last = Some(err.clone());
                            retry.push(op);
                            at_once = false;
                        } else {
                            outcomes.finish(&op, Err(err.clone()));
                        }
                    }
                    continue;
                }
            };
            for ((shard, mut op), result) in ops.into_iter().zip(results) {
                let result = outcome(result, node, shard);
                attempt(&mut op, shard, result.as_ref().err());
                match result {
                    Ok(reply) => {
                        if (op.writes || reads_need_leader) && !direct {
                            inner.note_forwarded(shard, Some(reply.header.served_by).filter(|&n| n != 0));
                        }
                        outcomes.finish(&op, Ok(reply));
                    }
                    Err(err) if err.is_retryable() => {
                        at_once &= inner.note_shard(node, shard, &err);
                        op.last = Some(err);
                        retry.push(op);
                    }
                    Err(err) => outcomes.finish(&op, Err(err)),
                }
            }
        }
        (retry, at_once)
    }

    /// The message of one operation (a write not tagged yet), and its key.
    fn batch_message(&self, op: &Op) -> Result<(Bytes, batch_op::Op)> {
        use batch_op::Op as Wire;
        let read = Some(self.options.consistency.to_proto());
        let (key, message) = match op.clone() {
            Op::Get(key) => (key.clone(), Wire::Get(kv::GetRequest { key, read })),
            Op::Ttl(key) => (key.clone(), Wire::Ttl(kv::TtlRequest { key, read })),
            Op::Set(key, value, options) => (key.clone(), Wire::Set(Client::set_message(key, value, options)?)),
            Op::Delete(key) => (
                key.clone(),
                Wire::Delete(kv::DeleteRequest {
                    keys: vec![key],
                    session: None,
                }),
            ),
            Op::Incr(key, delta) => (
                key.clone(),
                Wire::Incr(kv::IncrRequest {
                    key,
                    delta,
                    session: None,
                }),
            ),
            Op::CompareAndSet(key, expected, new_value) => (
                key.clone(),
                Wire::CompareAndSet(kv::CompareAndSetRequest {
                    key,
                    expected,
                    new_value,
                    session: None,
                }),
            ),
            Op::Expire(key, ttl) => (
                key.clone(),
                Wire::Expire(kv::ExpireRequest {
                    key,
                    ttl_ms: ttl_ms(ttl),
                    session: None,
                }),
            ),
        };
        check_key(&key)?;
        Ok((key, message))
    }
}

/// Where a write's session tag goes; `None` for a read.
fn session_of(op: &mut batch_op::Op) -> Option<&mut Option<kv::WriteSession>> {
    use batch_op::Op as Wire;
    match op {
        Wire::Set(m) => Some(&mut m.session),
        Wire::Delete(m) => Some(&mut m.session),
        Wire::Incr(m) => Some(&mut m.session),
        Wire::CompareAndSet(m) => Some(&mut m.session),
        Wire::Expire(m) => Some(&mut m.session),
        Wire::Get(_) | Wire::Ttl(_) => None,
    }
}

/// The outcomes of a batch's operations, in the batch's order, as they
/// arrive.
struct Outcomes<'a> {
    client: &'a Client,
    started: Instant,
    slots: Vec<Option<Result<Reply<Outcome>>>>,
}

impl Outcomes<'_> {
    /// Records the outcome of `op` and reports it as a finished call.
    fn finish(&mut self, op: &Pending, result: Result<Reply<Outcome>>) {
        let inner = &self.client.inner;
        inner
            .metrics
            .call(op.name, self.started.elapsed(), result.as_ref().err());
        if result.is_err() {
            inner.counters.bump(Count::Error);
        }
        self.slots[op.position] = Some(result);
    }
}

/// An operation still to be answered.
struct Pending {
    /// Its place in the batch.
    position: usize,
    /// Its name, for metrics.
    name: &'static str,
    key: Bytes,
    op: kv::BatchOp,
    /// Whether it writes (so only its shard's leader may answer it, and a
    /// call that failed may have applied it).
    writes: bool,
    /// How many times it was sent.
    attempts: u32,
    /// Why its last attempt failed.
    last: Option<Error>,
}

/// One node's share of a round, cut into calls of at most [`CALL_OPS`]
/// operations and [`CALL_BYTES`] (an operation larger than that goes alone).
fn chunks(ops: Vec<(u64, Pending)>) -> Vec<Vec<(u64, Pending)>> {
    let mut calls: Vec<Vec<(u64, Pending)>> = Vec::new();
    let mut bytes = 0;
    for op in ops {
        let size = op.1.op.encoded_len();
        match calls.last_mut() {
            Some(call) if call.len() < CALL_OPS && bytes + size <= CALL_BYTES => {
                bytes += size;
                call.push(op);
            }
            _ => {
                bytes = size;
                calls.push(vec![op]);
            }
        }
    }
    calls
}

/// The outcome one result of a `Batch` call stands for.
fn outcome(result: kv::BatchResult, node: u64, shard: u64) -> Result<Reply<Outcome>> {
    use batch_result::Result as Wire;
    let (value, header) = match result.result {
        Some(Wire::Get(r)) => (Outcome::Value(r.value), r.header),
        Some(Wire::Set(r)) => (Outcome::Done(r.applied), r.header),
        Some(Wire::Delete(r)) => (Outcome::Done(r.deleted > 0), r.header),
        Some(Wire::Incr(r)) => (Outcome::Counter(r.value), r.header),
        Some(Wire::CompareAndSet(r)) => (
            Outcome::Cas(CasOutcome {
                swapped: r.swapped,
                current: r.current,
            }),
            r.header,
        ),
        Some(Wire::Expire(r)) => (Outcome::Done(r.applied), r.header),
        Some(Wire::Ttl(r)) => (Outcome::Ttl(Ttl::from_ms(r.ttl_ms)), r.header),
        Some(Wire::Failed(failed)) => {
            let mut status = tonic::Status::new(tonic::Code::from(failed.code), failed.message);
            if let Some(leader) = failed.leader {
                status.metadata_mut().insert(
                    crate::error::LEADER_METADATA,
                    leader.to_string().parse().expect("digits are ascii"),
                );
            }
            return Err(Error::from_status(&status, node, shard));
        }
        None => return Err(Error::Internal("a batch result with no outcome".into())),
    };
    Ok(Reply {
        value,
        header: header.into(),
    })
}

//! Typed batches: many operations sent together, each routed to its own
//! shard and all in flight at once.
//!
//! A batch is a convenience for throughput, not a transaction: operations
//! on different shards are independent, each is retried and applied
//! exactly once on its own, and each has its own outcome.

use std::time::Duration;

use bytes::Bytes;

use crate::client::Client;
use crate::error::Result;
use crate::options::SetOptions;
use crate::reply::{CasOutcome, Reply, Ttl};

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
    /// Runs every operation of `batch` concurrently; outcomes come back in
    /// the batch's order, each with its own result.
    pub async fn batch(&self, batch: &Batch) -> Vec<Result<Reply<Outcome>>> {
        let calls = batch.ops.iter().cloned().map(|op| self.run(op));
        futures::future::join_all(calls).await
    }

    async fn run(&self, op: Op) -> Result<Reply<Outcome>> {
        fn wrap<T>(reply: Result<Reply<T>>, outcome: fn(T) -> Outcome) -> Result<Reply<Outcome>> {
            reply.map(|r| Reply {
                value: outcome(r.value),
                header: r.header,
            })
        }
        match op {
            Op::Get(key) => wrap(self.get(key).await, Outcome::Value),
            Op::Set(key, value, options) => wrap(self.set_with(key, value, options).await, Outcome::Done),
            Op::Delete(key) => wrap(self.delete(key).await, Outcome::Done),
            Op::Incr(key, delta) => wrap(self.incr(key, delta).await, Outcome::Counter),
            Op::CompareAndSet(key, expected, new) => wrap(self.compare_and_set(key, expected, new).await, Outcome::Cas),
            Op::Expire(key, ttl) => wrap(self.expire(key, ttl).await, Outcome::Done),
            Op::Ttl(key) => wrap(self.ttl(key).await, Outcome::Ttl),
        }
    }
}

//! What the client counts, and the hook applications plug their metrics
//! system into.
//!
//! [`Stats`] are always kept (cheap atomic counters, read with
//! [`Client::stats`](crate::Client::stats)). A [`MetricsHook`] set on the
//! builder additionally sees every attempt and every finished call, with
//! its latency, to feed Prometheus, OpenTelemetry or anything else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::Error;

/// Counters since the client was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Calls made by the application.
    pub calls: u64,
    /// Attempts sent to nodes (calls plus retries).
    pub attempts: u64,
    /// Attempts a node refused because it does not lead the shard.
    pub not_leader: u64,
    /// Calls that returned an error to the application.
    pub errors: u64,
    /// Topology updates received from the stream.
    pub topology_updates: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    calls: AtomicU64,
    attempts: AtomicU64,
    not_leader: AtomicU64,
    errors: AtomicU64,
    topology_updates: AtomicU64,
}

/// Which counter to bump.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    Call,
    Attempt,
    NotLeader,
    Error,
    TopologyUpdate,
}

impl Counters {
    pub(crate) fn bump(&self, count: Count) {
        let counter = match count {
            Count::Call => &self.calls,
            Count::Attempt => &self.attempts,
            Count::NotLeader => &self.not_leader,
            Count::Error => &self.errors,
            Count::TopologyUpdate => &self.topology_updates,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            calls: self.calls.load(Ordering::Relaxed),
            attempts: self.attempts.load(Ordering::Relaxed),
            not_leader: self.not_leader.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            topology_updates: self.topology_updates.load(Ordering::Relaxed),
        }
    }
}

/// One attempt of a call, as a hook sees it.
#[derive(Debug)]
pub struct Attempt<'a> {
    /// The operation (`get`, `set`, …).
    pub op: &'static str,
    /// The shard.
    pub shard: u64,
    /// The node it went to.
    pub node: u64,
    /// How long it took.
    pub latency: Duration,
    /// Its failure, if it failed.
    pub error: Option<&'a Error>,
}

/// Receives the client's measurements; every method has an empty default.
pub trait MetricsHook: Send + Sync + 'static {
    /// After every attempt.
    fn attempt(&self, _attempt: &Attempt<'_>) {}

    /// After every call, with its total latency and outcome.
    fn call(&self, _op: &'static str, _latency: Duration, _error: Option<&Error>) {}

    /// When a node's circuit breaker opens.
    fn breaker_opened(&self, _node: u64) {}
}

/// The hook used when none is set.
pub(crate) struct NoMetrics;

impl MetricsHook for NoMetrics {}

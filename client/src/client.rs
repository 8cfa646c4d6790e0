//! The client: every call routed by slot to the right node, retried through
//! failures inside its deadline, and every write applied exactly once.
//!
//! # One call
//!
//! 1. The key's slot gives the shard; the topology gives its leader.
//! 2. Calls that need the leader (writes, linearizable reads) go straight
//!    to it with `cairn-route: direct`; a node that no longer leads says so
//!    and names the new leader, which the client then tries at once. When
//!    the leader is unknown or its circuit breaker is open, the call goes to
//!    another replica, which forwards it. Weaker reads go to any replica.
//! 3. Transient failures are retried with backoff and jitter until the
//!    deadline; permanent ones return at once.
//!
//! A write keeps one session tag across all its attempts, so however many
//! of them reach the leader, it is applied once and every attempt gets the
//! same answer.

use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_proto::kv;
use cairn_proto::kv::kv_client::KvClient;
use rand::Rng;
use tonic::transport::Channel;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::breaker::{Breaker, BreakerConfig, BreakerState};
use crate::error::{Error, ROUTE_METADATA, Result};
use crate::metrics::{Attempt, Count, Counters, MetricsHook, Stats};
use crate::options::{CallOptions, Condition, SetOptions};
use crate::pool::{Pool, kv_client};
use crate::reply::{CasOutcome, Header, MGet, Reply, Ttl};
use crate::session::Session;
use crate::topology::Topology;

/// Settings fixed when the client is built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) attempt_timeout: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) breaker: BreakerConfig,
}

/// What every handle of one client shares.
pub(crate) struct Inner {
    pub(crate) topology: RwLock<Topology>,
    /// The region the client runs in: where read-only handles read.
    pub(crate) region: String,
    pub(crate) pool: Pool,
    pub(crate) breakers: Mutex<std::collections::HashMap<u64, Arc<Breaker>>>,
    pub(crate) settings: Settings,
    pub(crate) session: Arc<Session>,
    pub(crate) counters: Counters,
    pub(crate) metrics: Arc<dyn MetricsHook>,
    /// Background tasks (topology stream, breaker probes), stopped on drop.
    pub(crate) tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().expect("tasks lock").drain(..) {
            task.abort();
        }
    }
}

impl Inner {
    pub(crate) fn breaker(&self, node: u64) -> Arc<Breaker> {
        self.breakers
            .lock()
            .expect("breakers lock")
            .entry(node)
            .or_insert_with(|| Arc::new(Breaker::new(self.settings.breaker)))
            .clone()
    }

    /// Every node's id.
    pub(crate) fn node_ids(&self) -> Vec<u64> {
        self.topology
            .read()
            .expect("topology lock")
            .nodes
            .keys()
            .copied()
            .collect()
    }

    pub(crate) fn channel(&self, node: u64) -> Result<Channel> {
        let addr = self
            .topology
            .read()
            .expect("topology lock")
            .nodes
            .get(&node)
            .map(|n| n.grpc_addr.clone())
            .ok_or_else(|| Error::Internal(format!("node {node} is not in the topology")))?;
        self.pool.channel(node, &addr)
    }

    /// Learns the leader of `shard` from a forwarded answer, which names
    /// the node that served it.
    pub(crate) fn note_forwarded(&self, shard: u64, served_by: Option<u64>) {
        if let Some(leader) = served_by {
            self.topology
                .write()
                .expect("topology lock")
                .set_leader(shard, Some(leader));
        }
    }

    /// Counts a failed attempt on `node` against the node's breaker, or
    /// for it when the node itself answered.
    pub(crate) fn note_node(&self, node: u64, err: &Error) {
        if !err.is_node_failure() {
            self.breaker(node).success();
        } else if self.breaker(node).failure() {
            self.metrics.breaker_opened(node);
        }
    }

    /// Forgets or corrects the leader of `shard` as a failed attempt on
    /// `node` says; whether the next attempt may go at once (the node named
    /// the leader).
    pub(crate) fn note_shard(&self, node: u64, shard: u64, err: &Error) -> bool {
        if err.is_node_failure() {
            let mut topology = self.topology.write().expect("topology lock");
            if topology.leader(shard) == Some(node) {
                topology.set_leader(shard, None);
            }
        }
        match err {
            Error::NotLeader { leader, .. } => {
                self.counters.bump(Count::NotLeader);
                let hint = leader.filter(|&l| l != node);
                self.topology.write().expect("topology lock").set_leader(shard, hint);
                hint.is_some()
            }
            _ => false,
        }
    }

    /// Where to send an attempt for `shard`: the leader (directly) when
    /// needed and reachable, else any replica whose breaker lets it through
    /// (which forwards when needed). With `local`, a replica in the
    /// client's own region comes first.
    pub(crate) fn route(&self, shard: u64, needs_leader: bool, local: bool) -> Option<(u64, bool)> {
        let (leader, mut near, mut candidates) = {
            let topology = self.topology.read().expect("topology lock");
            let info = topology.shard(shard);
            let near: Vec<u64> = match info {
                Some(info) if local => info
                    .replicas
                    .iter()
                    .copied()
                    .filter(|&n| topology.region_of(n) == Some(self.region.as_str()))
                    .collect(),
                _ => Vec::new(),
            };
            let voters = info.map(|s| s.voters.clone()).unwrap_or_default();
            let others: Vec<u64> = topology.nodes.keys().filter(|n| !voters.contains(n)).copied().collect();
            (info.and_then(|s| s.leader), near, [voters, others].concat())
        };
        if needs_leader && let Some(leader) = leader {
            if self.breaker(leader).allow() {
                return Some((leader, true));
            }
            candidates.retain(|&n| n != leader);
        }
        for list in [&mut near, &mut candidates] {
            if list.is_empty() {
                continue;
            }
            let start = rand::rng().random_range(0..list.len());
            list.rotate_left(start);
            if let Some(&n) = list.iter().find(|&&n| self.breaker(n).allow()) {
                return Some((n, false));
            }
        }
        None
    }
}

/// A handle on a Cairn cluster. Clones share connections, topology and
/// session; [`Client::with`] makes a handle with other call options.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    pub(crate) options: CallOptions,
    /// Reads go to a replica in the client's region first (read-only
    /// handles).
    pub(crate) local_reads: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A request with the attempt's timeout and routing metadata.
pub(crate) fn request<T>(message: T, direct: bool, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    if direct {
        request
            .metadata_mut()
            .insert(ROUTE_METADATA, "direct".parse().expect("ascii"));
    }
    request
}

pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("key must not be empty".into()));
    }
    Ok(())
}

pub(crate) fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

impl Client {
    /// Starts building a client.
    pub fn builder() -> crate::ClientBuilder {
        crate::ClientBuilder::default()
    }

    /// A handle on the same client with other call options.
    pub fn with(&self, options: CallOptions) -> Client {
        Client {
            inner: self.inner.clone(),
            options,
            local_reads: self.local_reads,
        }
    }

    /// The options calls through this handle use.
    pub fn options(&self) -> CallOptions {
        self.options
    }

    /// The cluster as the client knows it now.
    pub fn topology(&self) -> Topology {
        self.inner.topology.read().expect("topology lock").clone()
    }

    /// Counters since the client was built.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// The state of `node`'s circuit breaker.
    pub fn breaker_state(&self, node: u64) -> BreakerState {
        self.inner.breaker(node).state()
    }

    /// Runs one call: attempts routed and retried until success, a
    /// permanent error or the deadline.
    async fn call<T, F, Fut>(&self, op: &'static str, key: &[u8], needs_leader: bool, mut attempt: F) -> Result<T>
    where
        T: Served,
        F: FnMut(KvClient<Channel>, bool, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let inner = &self.inner;
        let started = Instant::now();
        let deadline = started + self.options.deadline;
        let shard = inner.topology.read().expect("topology lock").shard_of_key(key);
        inner.counters.bump(Count::Call);
        let span = tracing::debug_span!("cairn_call", op, shard);
        let outcome = async {
            let mut attempts = 0u32;
            let mut retries = 0u32;
            let mut last: Option<Error> = None;
            loop {
                let now = Instant::now();
                let left = deadline.saturating_duration_since(now);
                if left.is_zero() {
                    return Err(Error::Timeout {
                        attempts,
                        elapsed: started.elapsed(),
                        last: Box::new(last.unwrap_or_else(|| Error::Unavailable {
                            node: 0,
                            detail: "no attempt could be made".into(),
                        })),
                    });
                }
                let Some((node, direct)) = inner.route(shard, needs_leader, self.local_reads) else {
                    last = Some(Error::Unavailable {
                        node: 0,
                        detail: "every node's circuit breaker is open".into(),
                    });
                    tokio::time::sleep(inner.settings.backoff.pause(retries).min(left)).await;
                    retries += 1;
                    continue;
                };
                let timeout = inner.settings.attempt_timeout.min(left);
                let channel = inner.channel(node)?;
                attempts += 1;
                inner.counters.bump(Count::Attempt);
                let sent = Instant::now();
                let result = match tokio::time::timeout(timeout, attempt(kv_client(channel), direct, timeout)).await {
                    Ok(Ok(response)) => Ok(response.into_inner()),
                    Ok(Err(status)) => Err(Error::from_status(&status, node, shard)),
                    Err(_) => Err(Error::AttemptTimeout { node, after: timeout }),
                };
                inner.metrics.attempt(&Attempt {
                    op,
                    shard,
                    node,
                    latency: sent.elapsed(),
                    error: result.as_ref().err(),
                });
                let err = match result {
                    Ok(value) => {
                        inner.breaker(node).success();
                        if needs_leader && !direct {
                            inner.note_forwarded(shard, value.served_by());
                        }
                        return Ok(value);
                    }
                    Err(err) => err,
                };
                tracing::debug!(node, attempt = attempts, error = %err, "attempt failed");
                inner.note_node(node, &err);
                let at_once = inner.note_shard(node, shard, &err);
                if !err.is_retryable() {
                    return Err(err);
                }
                last = Some(err);
                if !at_once {
                    tokio::time::sleep(inner.settings.backoff.pause(retries).min(left)).await;
                    retries += 1;
                }
            }
        }
        .instrument(span)
        .await;
        inner.metrics.call(op, started.elapsed(), outcome.as_ref().err());
        if outcome.is_err() {
            inner.counters.bump(Count::Error);
        }
        outcome
    }

    /// A write call: the same session tag on every attempt.
    async fn write<M, T, F, Fut>(&self, op: &'static str, key: &[u8], message: M, mut send: F) -> Result<T>
    where
        M: Clone + WithSession,
        T: Served,
        F: FnMut(KvClient<Channel>, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let ticket = self.inner.session.begin();
        let message = message.with_session(ticket.tag());
        let result = self
            .call(op, key, true, |kv, direct, timeout| {
                send(kv, request(message.clone(), direct, timeout))
            })
            .await;
        drop(ticket);
        result
    }

    /// A read call at this handle's consistency.
    async fn read<M, T, F, Fut>(&self, op: &'static str, key: &[u8], message: M, mut send: F) -> Result<T>
    where
        M: Clone,
        T: Served,
        F: FnMut(KvClient<Channel>, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let needs_leader = self.options.consistency.needs_leader();
        self.call(op, key, needs_leader, |kv, direct, timeout| {
            send(kv, request(message.clone(), direct, timeout))
        })
        .await
    }

    /// The value of `key` (`None` if absent).
    pub async fn get(&self, key: impl Into<Bytes>) -> Result<Reply<Option<Bytes>>> {
        let key = key.into();
        check_key(&key)?;
        let message = kv::GetRequest {
            key: key.clone(),
            read: Some(self.options.consistency.to_proto()),
        };
        let reply = self
            .read("get", &key, message, |mut kv, r| async move { kv.get(r).await })
            .await?;
        Ok(Reply {
            value: reply.value,
            header: reply.header.into(),
        })
    }

    /// Sets `key` to `value`; returns true (the value is stored).
    pub async fn set(&self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<Reply<bool>> {
        self.set_with(key, value, SetOptions::default()).await
    }

    /// Sets `key` to `value` with a TTL and/or a condition; returns whether
    /// the value was stored (false when the condition did not hold).
    pub async fn set_with(
        &self,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
        options: SetOptions,
    ) -> Result<Reply<bool>> {
        let key = key.into();
        let message = Client::set_message(key.clone(), value.into(), options)?;
        let reply = self
            .write("set", &key, message, |mut kv, r| async move { kv.set(r).await })
            .await?;
        Ok(Reply {
            value: reply.applied,
            header: reply.header.into(),
        })
    }

    /// The message of a set, not tagged yet.
    pub(crate) fn set_message(key: Bytes, value: Bytes, options: SetOptions) -> Result<kv::SetRequest> {
        check_key(&key)?;
        if options.ttl.is_some_and(|ttl| ttl_ms(ttl) == 0) {
            return Err(Error::InvalidArgument("ttl must be at least 1 ms".into()));
        }
        let condition = match options.condition {
            Condition::Always => kv::SetCondition::Always,
            Condition::IfAbsent => kv::SetCondition::IfAbsent,
            Condition::IfPresent => kv::SetCondition::IfPresent,
        };
        Ok(kv::SetRequest {
            key,
            value,
            ttl_ms: options.ttl.map_or(0, ttl_ms),
            condition: condition.into(),
            session: None,
        })
    }

    /// Removes `key`; returns whether it existed.
    pub async fn delete(&self, key: impl Into<Bytes>) -> Result<Reply<bool>> {
        let key = key.into();
        check_key(&key)?;
        let message = kv::DeleteRequest {
            keys: vec![key.clone()],
            session: None,
        };
        let reply = self
            .write("delete", &key, message, |mut kv, r| async move { kv.delete(r).await })
            .await?;
        Ok(Reply {
            value: reply.deleted > 0,
            header: reply.header.into(),
        })
    }

    /// Adds `delta` to the integer at `key` (absent counts as 0); returns
    /// the new value. Applied exactly once, however often it is retried.
    pub async fn incr(&self, key: impl Into<Bytes>, delta: i64) -> Result<Reply<i64>> {
        let key = key.into();
        check_key(&key)?;
        let message = kv::IncrRequest {
            key: key.clone(),
            delta,
            session: None,
        };
        let reply = self
            .write("incr", &key, message, |mut kv, r| async move { kv.incr(r).await })
            .await?;
        Ok(Reply {
            value: reply.value,
            header: reply.header.into(),
        })
    }

    /// Stores `new` at `key` only if the key holds `expected` now (`None`:
    /// only if the key is absent).
    pub async fn compare_and_set(
        &self,
        key: impl Into<Bytes>,
        expected: Option<Bytes>,
        new: impl Into<Bytes>,
    ) -> Result<Reply<CasOutcome>> {
        let key = key.into();
        check_key(&key)?;
        let message = kv::CompareAndSetRequest {
            key: key.clone(),
            expected,
            new_value: new.into(),
            session: None,
        };
        let reply = self
            .write("compare_and_set", &key, message, |mut kv, r| async move {
                kv.compare_and_set(r).await
            })
            .await?;
        Ok(Reply {
            value: CasOutcome {
                swapped: reply.swapped,
                current: reply.current,
            },
            header: reply.header.into(),
        })
    }

    /// Makes `key` expire `ttl` from now (zero deletes it); returns whether
    /// the key existed.
    pub async fn expire(&self, key: impl Into<Bytes>, ttl: Duration) -> Result<Reply<bool>> {
        let key = key.into();
        check_key(&key)?;
        let message = kv::ExpireRequest {
            key: key.clone(),
            ttl_ms: ttl_ms(ttl),
            session: None,
        };
        let reply = self
            .write("expire", &key, message, |mut kv, r| async move { kv.expire(r).await })
            .await?;
        Ok(Reply {
            value: reply.applied,
            header: reply.header.into(),
        })
    }

    /// How long `key` has left to live.
    pub async fn ttl(&self, key: impl Into<Bytes>) -> Result<Reply<Ttl>> {
        let key = key.into();
        check_key(&key)?;
        let message = kv::TtlRequest {
            key: key.clone(),
            read: Some(self.options.consistency.to_proto()),
        };
        let reply = self
            .read("ttl", &key, message, |mut kv, r| async move { kv.ttl(r).await })
            .await?;
        Ok(Reply {
            value: Ttl::from_ms(reply.ttl_ms),
            header: reply.header.into(),
        })
    }

    /// The values of several keys, fetched from every shard involved at
    /// once. Each shard's part is consistent on its own; the whole is not
    /// one snapshot across shards.
    pub async fn mget<K: Into<Bytes>>(&self, keys: impl IntoIterator<Item = K>) -> Result<MGet> {
        let keys: Vec<Bytes> = keys.into_iter().map(Into::into).collect();
        for key in &keys {
            check_key(key)?;
        }
        let mut by_shard: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
        {
            let topology = self.inner.topology.read().expect("topology lock");
            for (i, key) in keys.iter().enumerate() {
                by_shard.entry(topology.shard_of_key(key)).or_default().push(i);
            }
        }
        let calls = by_shard.values().map(|positions| {
            let message = kv::MGetRequest {
                keys: positions.iter().map(|&i| keys[i].clone()).collect(),
                read: Some(self.options.consistency.to_proto()),
            };
            let first = keys[positions[0]].clone();
            async move {
                self.read("mget", &first, message, |mut kv, r| async move { kv.m_get(r).await })
                    .await
            }
        });
        let replies = futures::future::try_join_all(calls).await?;
        let mut values = vec![None; keys.len()];
        let mut headers = Vec::new();
        for (reply, positions) in replies.into_iter().zip(by_shard.values()) {
            headers.extend(reply.headers.into_iter().map(|h| Header::from(Some(h))));
            for (&i, value) in positions.iter().zip(reply.values) {
                values[i] = value.value;
            }
        }
        Ok(MGet { values, headers })
    }
}

/// Write messages carry a session tag.
pub(crate) trait WithSession {
    fn with_session(self, session: kv::WriteSession) -> Self;
}

macro_rules! with_session {
    ($($message:ty),*) => {
        $(impl WithSession for $message {
            fn with_session(self, session: kv::WriteSession) -> Self {
                Self { session: Some(session), ..self }
            }
        })*
    };
}

with_session!(
    kv::SetRequest,
    kv::DeleteRequest,
    kv::IncrRequest,
    kv::CompareAndSetRequest,
    kv::ExpireRequest
);

/// Replies name the node that served them.
pub(crate) trait Served {
    fn served_by(&self) -> Option<u64>;
}

macro_rules! served {
    ($($reply:ty),*) => {
        $(impl Served for $reply {
            fn served_by(&self) -> Option<u64> {
                self.header.as_ref().map(|h| h.served_by).filter(|&n| n != 0)
            }
        })*
    };
}

served!(
    kv::GetReply,
    kv::SetReply,
    kv::DeleteReply,
    kv::IncrReply,
    kv::CompareAndSetReply,
    kv::ExpireReply,
    kv::TtlReply
);

impl Served for kv::MGetReply {
    fn served_by(&self) -> Option<u64> {
        self.headers.first().map(|h| h.served_by).filter(|&n| n != 0)
    }
}

//! The `Kv` gRPC service: typed key-value calls routed by slot to the
//! shard's leader (through [`Node::execute`]), with a header saying which
//! shard, log index and node answered.
//!
//! Writes may carry a client session (`client_id`, `seq`), which makes a
//! retried write apply once (see [`crate::sessions`]). Reads carry a
//! consistency level; the weaker ones are answered by this node's replica
//! when it may (see [`Node::read`]). A caller that routes by leader itself
//! sends `cairn-route: direct` and gets `UNAVAILABLE` with a `cairn-leader`
//! hint instead of a forwarded answer when it picked the wrong node.
//!
//! A `Batch` call carries operations on keys of any shards and runs them as
//! that many calls in flight at once would run, each with the batch's
//! routing: one HTTP/2 exchange instead of one per operation, which is most
//! of a small call's cost. Each operation succeeds or fails on its own, with
//! the status its own call would have ended with (a `cairn-leader` hint
//! included). So that one stalled operation (a shard without a quorum)
//! cannot make the caller give up on the others, each gets nine tenths of
//! the call's `grpc-timeout` and then fails on its own as `UNAVAILABLE`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_proto::kv::kv_server::Kv;
use cairn_proto::kv::{
    BatchOp, BatchReply, BatchRequest, BatchResult, CompareAndSetReply, CompareAndSetRequest,
    Consistency as ProtoConsistency, DeleteReply, DeleteRequest, ExpireReply, ExpireRequest, GetReply, GetRequest,
    IncrReply, IncrRequest, MGetReply, MGetRequest, OpStatus, OptionalValue, ReadOptions, ReplyHeader,
    SetCondition as ProtoCondition, SetReply, SetRequest, TtlReply, TtlRequest, WriteSession, batch_op, batch_result,
};
use tonic::{Request, Response, Status};

use super::{LEADER_METADATA, ROUTE_METADATA, status};
use crate::keyspace::{ExpireCondition, KvError, Read, Reply, SetCondition, Write, WriteOp};
use crate::node::{Consistency, Node};
use crate::sessions::{REPLY_NOT_KEPT, SessionTag};
use crate::shard::{Answer, Request as ShardRequest, now_ms};

/// Most operations one `Batch` call may carry.
pub const MAX_BATCH: usize = 4096;

/// Serves applications.
pub struct KvService {
    node: Arc<Node>,
}

impl KvService {
    /// A service in front of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        KvService { node }
    }

    /// Proposes `op` on the shard of `key`, tagged with the client's session.
    async fn write(
        &self,
        key: &[u8],
        op: WriteOp,
        session: Option<WriteSession>,
        direct: bool,
    ) -> Result<(ReplyHeader, Reply), Status> {
        let shard = self.node.slots().shard_of_key(key);
        let write = Write {
            now_ms: now_ms(),
            session: session.map(|s| SessionTag {
                client: s.client_id,
                seq: s.seq,
                acked_below: s.acked_below,
            }),
            op,
        };
        let request = ShardRequest::Write(write);
        let answer = if direct {
            self.node.execute_here(shard, request).await
        } else {
            self.node.execute(shard, request).await
        }
        .map_err(status)?;
        // For cairn-client's tests: the write is applied, its reply is lost.
        fail::fail_point!("kv-reply-lost", |_| Err(Status::unavailable(
            "reply lost (fault point kv-reply-lost)"
        )));
        Ok((header(shard, &answer), answer.reply))
    }

    /// Answers `read` on the shard of `key` at the asked consistency.
    async fn read(
        &self,
        key: &[u8],
        read: Read,
        options: Option<ReadOptions>,
        direct: bool,
    ) -> Result<(ReplyHeader, Reply), Status> {
        let shard = self.node.slots().shard_of_key(key);
        let answer = self
            .node
            .read(shard, read, consistency(options)?, direct)
            .await
            .map_err(status)?;
        Ok((header(shard, &answer), answer.reply))
    }

    /// Runs one operation of a batch as a call of its own.
    async fn batch_op(&self, op: BatchOp, direct: bool) -> BatchResult {
        use batch_op::Op;
        use batch_result::Result as Done;
        let Some(op) = op.op else {
            return failed(&Status::invalid_argument("batch operation names no operation"));
        };
        let result = match op {
            Op::Get(m) => self.get(call(m, direct)).await.map(|r| Done::Get(r.into_inner())),
            Op::Set(m) => self.set(call(m, direct)).await.map(|r| Done::Set(r.into_inner())),
            Op::Delete(m) => self.delete(call(m, direct)).await.map(|r| Done::Delete(r.into_inner())),
            Op::Incr(m) => self.incr(call(m, direct)).await.map(|r| Done::Incr(r.into_inner())),
            Op::CompareAndSet(m) => self
                .compare_and_set(call(m, direct))
                .await
                .map(|r| Done::CompareAndSet(r.into_inner())),
            Op::Expire(m) => self.expire(call(m, direct)).await.map(|r| Done::Expire(r.into_inner())),
            Op::Ttl(m) => self.ttl(call(m, direct)).await.map(|r| Done::Ttl(r.into_inner())),
        };
        match result {
            Ok(done) => BatchResult { result: Some(done) },
            Err(status) => failed(&status),
        }
    }
}

/// How long the caller waits for a call, from its `grpc-timeout` header
/// (digits and a unit: hours, minutes, seconds, milli-, micro-, nanoseconds).
fn caller_timeout<T>(request: &Request<T>) -> Option<Duration> {
    let header = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = header.split_at(header.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A request of one batch operation, routed as the batch was.
fn call<T>(message: T, direct: bool) -> Request<T> {
    let mut request = Request::new(message);
    if direct {
        request
            .metadata_mut()
            .insert(ROUTE_METADATA, "direct".parse().expect("ascii"));
    }
    request
}

/// The result of a batch operation that failed with `status`, the status
/// (and leader hint) as data.
fn failed(status: &Status) -> BatchResult {
    let failed = OpStatus {
        code: status.code().into(),
        message: status.message().to_string(),
        leader: status
            .metadata()
            .get(LEADER_METADATA)
            .and_then(|v| v.to_str().ok()?.parse().ok()),
    };
    BatchResult {
        result: Some(batch_result::Result::Failed(failed)),
    }
}

/// Whether the caller asked this node not to forward (`cairn-route: direct`).
fn direct<T>(request: &Request<T>) -> bool {
    request
        .metadata()
        .get(ROUTE_METADATA)
        .is_some_and(|route| route == "direct")
}

fn consistency(options: Option<ReadOptions>) -> Result<Consistency, Status> {
    let options = options.unwrap_or_default();
    match ProtoConsistency::try_from(options.consistency) {
        Ok(ProtoConsistency::Linearizable) => Ok(Consistency::Linearizable),
        Ok(ProtoConsistency::ReadIndex) => Ok(Consistency::ReadIndex),
        Ok(ProtoConsistency::BoundedStaleness) if options.max_staleness_ms == 0 => Err(Status::invalid_argument(
            "bounded staleness needs max_staleness_ms greater than 0",
        )),
        Ok(ProtoConsistency::BoundedStaleness) => {
            Ok(Consistency::Bounded(Duration::from_millis(options.max_staleness_ms)))
        }
        Ok(ProtoConsistency::Stale) => Ok(Consistency::Stale),
        Err(_) => Err(Status::invalid_argument(format!(
            "unknown consistency {}",
            options.consistency
        ))),
    }
}

fn header(shard: u64, answer: &Answer) -> ReplyHeader {
    ReplyHeader {
        shard,
        applied_index: answer.index,
        served_by: answer.served_by,
    }
}

fn unexpected(reply: Reply) -> Status {
    match reply {
        Reply::Err(KvError::NotInteger) => Status::failed_precondition("value is not an integer or out of range"),
        Reply::Err(KvError::Overflow) => Status::failed_precondition("increment or decrement would overflow"),
        Reply::Err(KvError::DuplicateRequest) => Status::aborted("duplicate of a write that was already answered"),
        Reply::Err(KvError::ReplyNotKept) => Status::aborted(REPLY_NOT_KEPT),
        Reply::Err(KvError::NoSuchKey) => Status::not_found("no such key"),
        Reply::Err(KvError::WrongType) => Status::failed_precondition("the key holds another type than a string"),
        Reply::Err(KvError::HashNotInteger) => Status::failed_precondition("hash value is not an integer"),
        Reply::Err(KvError::TooLong) => Status::failed_precondition("string exceeds the maximum size (512 MiB)"),
        other => Status::internal(format!("unexpected reply {other:?}")),
    }
}

fn non_empty(key: &Bytes) -> Result<(), Status> {
    if key.is_empty() {
        return Err(Status::invalid_argument("key must not be empty"));
    }
    Ok(())
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetReply>, Status> {
        let direct = direct(&request);
        let GetRequest { key, read } = request.into_inner();
        non_empty(&key)?;
        let (header, reply) = self.read(&key.clone(), Read::Get { key }, read, direct).await?;
        let value = match reply {
            Reply::Value(v) => Some(v),
            Reply::Nil => None,
            other => return Err(unexpected(other)),
        };
        Ok(Response::new(GetReply {
            header: Some(header),
            value,
        }))
    }

    async fn set(&self, request: Request<SetRequest>) -> Result<Response<SetReply>, Status> {
        let direct = direct(&request);
        let SetRequest {
            key,
            value,
            ttl_ms,
            condition,
            session,
        } = request.into_inner();
        non_empty(&key)?;
        let condition = match ProtoCondition::try_from(condition) {
            Ok(ProtoCondition::Always) => SetCondition::Always,
            Ok(ProtoCondition::IfAbsent) => SetCondition::IfAbsent,
            Ok(ProtoCondition::IfPresent) => SetCondition::IfPresent,
            Err(_) => return Err(Status::invalid_argument(format!("unknown set condition {condition}"))),
        };
        let expire_at_ms = match ttl_ms {
            0 => None,
            ttl => Some(deadline(ttl)?),
        };
        let op = WriteOp::Set {
            key: key.clone(),
            value,
            expire_at_ms,
            condition,
            keep_ttl: false,
            get: false,
        };
        let (header, reply) = self.write(&key, op, session, direct).await?;
        let applied = match reply {
            Reply::Ok => true,
            Reply::Nil => false,
            other => return Err(unexpected(other)),
        };
        Ok(Response::new(SetReply {
            header: Some(header),
            applied,
        }))
    }

    async fn delete(&self, request: Request<DeleteRequest>) -> Result<Response<DeleteReply>, Status> {
        let direct = direct(&request);
        let DeleteRequest { keys, session } = request.into_inner();
        let [key] = keys.as_slice() else {
            return Err(Status::invalid_argument(format!(
                "delete takes exactly one key per call, got {}",
                keys.len()
            )));
        };
        non_empty(key)?;
        let (header, reply) = self.write(&key.clone(), WriteOp::Del { keys }, session, direct).await?;
        match reply {
            Reply::Int(n) => Ok(Response::new(DeleteReply {
                header: Some(header),
                deleted: n as u64,
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn incr(&self, request: Request<IncrRequest>) -> Result<Response<IncrReply>, Status> {
        let direct = direct(&request);
        let IncrRequest { key, delta, session } = request.into_inner();
        non_empty(&key)?;
        let (header, reply) = self
            .write(&key.clone(), WriteOp::IncrBy { key, delta }, session, direct)
            .await?;
        match reply {
            Reply::Int(value) => Ok(Response::new(IncrReply {
                header: Some(header),
                value,
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn compare_and_set(
        &self,
        request: Request<CompareAndSetRequest>,
    ) -> Result<Response<CompareAndSetReply>, Status> {
        let direct = direct(&request);
        let CompareAndSetRequest {
            key,
            expected,
            new_value,
            session,
        } = request.into_inner();
        non_empty(&key)?;
        let op = WriteOp::CompareAndSet {
            key: key.clone(),
            expected,
            new: new_value,
        };
        let (header, reply) = self.write(&key, op, session, direct).await?;
        match reply {
            Reply::Swap { swapped, current } => Ok(Response::new(CompareAndSetReply {
                header: Some(header),
                swapped,
                current,
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn m_get(&self, request: Request<MGetRequest>) -> Result<Response<MGetReply>, Status> {
        let direct = direct(&request);
        let MGetRequest { keys, read } = request.into_inner();
        for key in &keys {
            non_empty(key)?;
        }
        let consistency = consistency(read)?;
        let slots = self.node.slots();
        let mut by_shard: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
        for (i, key) in keys.iter().enumerate() {
            by_shard.entry(slots.shard_of_key(key)).or_default().push(i);
        }
        let calls = by_shard.iter().map(|(&shard, positions)| {
            let shard_keys = positions.iter().map(|&i| keys[i].clone()).collect();
            async move {
                let answer = self
                    .node
                    .read(shard, Read::MGet { keys: shard_keys }, consistency, direct)
                    .await
                    .map_err(status)?;
                Ok::<_, Status>((shard, answer))
            }
        });
        let answers = futures::future::try_join_all(calls).await?;
        let mut values = vec![OptionalValue { value: None }; keys.len()];
        let mut headers = Vec::new();
        for ((shard, answer), positions) in answers.into_iter().zip(by_shard.values()) {
            headers.push(header(shard, &answer));
            let Reply::Values(found) = answer.reply else {
                return Err(unexpected(answer.reply));
            };
            for (&i, value) in positions.iter().zip(found) {
                values[i].value = value;
            }
        }
        Ok(Response::new(MGetReply { headers, values }))
    }

    async fn expire(&self, request: Request<ExpireRequest>) -> Result<Response<ExpireReply>, Status> {
        let direct = direct(&request);
        let ExpireRequest { key, ttl_ms, session } = request.into_inner();
        non_empty(&key)?;
        let op = WriteOp::Expire {
            key: key.clone(),
            expire_at_ms: deadline(ttl_ms)?,
            condition: ExpireCondition::default(),
        };
        let (header, reply) = self.write(&key, op, session, direct).await?;
        match reply {
            Reply::Int(n) => Ok(Response::new(ExpireReply {
                header: Some(header),
                applied: n == 1,
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn ttl(&self, request: Request<TtlRequest>) -> Result<Response<TtlReply>, Status> {
        let direct = direct(&request);
        let TtlRequest { key, read } = request.into_inner();
        non_empty(&key)?;
        let (header, reply) = self.read(&key.clone(), Read::Ttl { key }, read, direct).await?;
        match reply {
            Reply::Int(ttl_ms) => Ok(Response::new(TtlReply {
                header: Some(header),
                ttl_ms,
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn batch(&self, request: Request<BatchRequest>) -> Result<Response<BatchReply>, Status> {
        let direct = direct(&request);
        let budget = caller_timeout(&request).map(|timeout| timeout.mul_f64(0.9));
        let BatchRequest { ops } = request.into_inner();
        if ops.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!(
                "a batch holds at most {MAX_BATCH} operations, this one {}",
                ops.len()
            )));
        }
        let runs = ops.into_iter().map(|op| {
            let run = self.batch_op(op, direct);
            async move {
                let Some(budget) = budget else {
                    return run.await;
                };
                tokio::time::timeout(budget, run).await.unwrap_or_else(|_| {
                    failed(&Status::unavailable(
                        "the operation did not finish within the call's deadline; a write may or may not have been applied",
                    ))
                })
            }
        });
        let results = futures::future::join_all(runs).await;
        Ok(Response::new(BatchReply { results }))
    }
}

/// The absolute deadline `ttl_ms` from now.
fn deadline(ttl_ms: u64) -> Result<u64, Status> {
    now_ms()
        .checked_add(ttl_ms)
        .ok_or_else(|| Status::invalid_argument(format!("ttl_ms {ttl_ms} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout_of(header: &str) -> Option<Duration> {
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert("grpc-timeout", header.parse().expect("ascii"));
        caller_timeout(&request)
    }

    #[test]
    fn a_callers_grpc_timeout_is_read_in_every_unit() {
        assert_eq!(timeout_of("1000m"), Some(Duration::from_secs(1)));
        assert_eq!(timeout_of("5S"), Some(Duration::from_secs(5)));
        assert_eq!(timeout_of("2M"), Some(Duration::from_secs(120)));
        assert_eq!(timeout_of("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(timeout_of("250u"), Some(Duration::from_micros(250)));
        assert_eq!(timeout_of("7n"), Some(Duration::from_nanos(7)));
        assert_eq!(timeout_of("5x"), None);
        assert_eq!(timeout_of("m"), None);
        assert_eq!(caller_timeout(&Request::new(())), None, "no header, no budget");
    }
}

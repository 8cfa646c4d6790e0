//! The `Kv` gRPC service: typed key-value calls routed by slot to the
//! shard's leader (through [`Node::execute`]), with a header saying which
//! shard, log index and node answered.

use std::sync::Arc;

use bytes::Bytes;
use cairn_proto::kv::kv_server::Kv;
use cairn_proto::kv::{
    CompareAndSetReply, CompareAndSetRequest, DeleteReply, DeleteRequest, GetReply, GetRequest, IncrReply, IncrRequest,
    MGetReply, MGetRequest, OptionalValue, ReplyHeader, SetCondition as ProtoCondition, SetReply, SetRequest,
};
use tonic::{Request, Response, Status};

use super::status;
use crate::keyspace::{KvError, Read, Reply, SetCondition, Write, WriteOp};
use crate::node::Node;
use crate::shard::{Answer, Request as ShardRequest, now_ms};

/// Serves applications.
pub struct KvService {
    node: Arc<Node>,
}

impl KvService {
    /// A service in front of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        KvService { node }
    }

    async fn run(&self, key: &[u8], request: ShardRequest) -> Result<(ReplyHeader, Reply), Status> {
        let shard = self.node.slots().shard_of_key(key);
        let answer = self.node.execute(shard, request).await.map_err(status)?;
        Ok((header(shard, &answer), answer.reply))
    }

    async fn write(&self, key: &[u8], op: WriteOp) -> Result<(ReplyHeader, Reply), Status> {
        self.run(key, ShardRequest::Write(Write { now_ms: now_ms(), op })).await
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
        let GetRequest { key } = request.into_inner();
        non_empty(&key)?;
        let (header, reply) = self.run(&key.clone(), ShardRequest::Read(Read::Get { key })).await?;
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
        let SetRequest {
            key,
            value,
            ttl_ms,
            condition,
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
            ttl => Some(
                now_ms()
                    .checked_add(ttl)
                    .ok_or_else(|| Status::invalid_argument("ttl_ms is too large"))?,
            ),
        };
        let op = WriteOp::Set {
            key: key.clone(),
            value,
            expire_at_ms,
            condition,
            keep_ttl: false,
            get: false,
        };
        let (header, reply) = self.write(&key, op).await?;
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
        let DeleteRequest { keys } = request.into_inner();
        let [key] = keys.as_slice() else {
            return Err(Status::invalid_argument(format!(
                "delete takes exactly one key per call, got {}",
                keys.len()
            )));
        };
        non_empty(key)?;
        let (header, reply) = self.write(&key.clone(), WriteOp::Del { keys }).await?;
        match reply {
            Reply::Int(n) => Ok(Response::new(DeleteReply {
                header: Some(header),
                deleted: n as u64,
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn incr(&self, request: Request<IncrRequest>) -> Result<Response<IncrReply>, Status> {
        let IncrRequest { key, delta } = request.into_inner();
        non_empty(&key)?;
        let (header, reply) = self.write(&key.clone(), WriteOp::IncrBy { key, delta }).await?;
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
        let CompareAndSetRequest {
            key,
            expected,
            new_value,
        } = request.into_inner();
        non_empty(&key)?;
        let op = WriteOp::CompareAndSet {
            key: key.clone(),
            expected,
            new: new_value,
        };
        let (header, reply) = self.write(&key, op).await?;
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
        let MGetRequest { keys } = request.into_inner();
        for key in &keys {
            non_empty(key)?;
        }
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
                    .execute(shard, ShardRequest::Read(Read::MGet { keys: shard_keys }))
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
}

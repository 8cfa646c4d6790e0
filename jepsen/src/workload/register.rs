//! The register workload: reads, unique writes and compare-and-sets on
//! rotating keys, through cairn-client or through the raw gRPC `Kv` service
//! of one node at a time (which forwards to the leader and never retries).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use cairn_proto::kv::kv_client::KvClient;
use cairn_proto::kv::{CompareAndSetRequest, GetRequest, SetCondition, SetRequest};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tonic::transport::{Channel, Endpoint};

use super::{Context, Fields, OP_TIMEOUT, Via, cairn_client, client_write_status};
use crate::history::{Kind, Status};

/// Keys in use at once.
const KEYS: u64 = 8;
/// Operations per key before the key is retired.
const OPS_PER_KEY: u64 = 150;

fn channel(ctx: &Context, node: usize) -> KvClient<Channel> {
    let addr = ctx.grpc[node % ctx.grpc.len()];
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .expect("socket addresses are valid URIs")
        .connect_timeout(std::time::Duration::from_millis(500));
    KvClient::new(endpoint.connect_lazy())
}

/// Classifies a failed raw gRPC write: `fail` only if it certainly did
/// nothing.
fn write_status(status: &tonic::Status) -> Status {
    let message = status.message();
    let refused = message.contains("tcp connect error");
    let no_leader = status.code() == tonic::Code::Unavailable && message.contains("has no leader");
    if refused || no_leader {
        Status::Fail
    } else {
        Status::Unknown
    }
}

fn text(value: Bytes) -> String {
    String::from_utf8_lossy(&value).into_owned()
}

/// A connection of one workload client.
enum Conn {
    /// cairn-client, which routes and retries by itself.
    Client(cairn_client::Client),
    /// One node's `Kv` service; moves to the next node after a failure.
    Grpc { kv: KvClient<Channel>, node: usize },
}

/// An operation's outcome: its result, or how it failed.
type Outcome<T> = Result<T, Status>;

impl Conn {
    async fn read(&mut self, key: &str) -> Outcome<Option<String>> {
        // A read that did not complete had no effect.
        let value = match self {
            Conn::Client(client) => match tokio::time::timeout(OP_TIMEOUT, client.get(key.to_string())).await {
                Ok(Ok(reply)) => reply.value,
                _ => return Err(Status::Fail),
            },
            Conn::Grpc { kv, .. } => {
                let request = GetRequest {
                    key: key.to_string().into(),
                    ..Default::default()
                };
                match tokio::time::timeout(OP_TIMEOUT, kv.get(request)).await {
                    Ok(Ok(reply)) => reply.into_inner().value,
                    _ => return Err(Status::Fail),
                }
            }
        };
        Ok(value.map(text))
    }

    async fn write(&mut self, key: &str, value: &str) -> Outcome<()> {
        match self {
            Conn::Client(client) => {
                match tokio::time::timeout(OP_TIMEOUT, client.set(key.to_string(), value.to_string())).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(err)) => Err(client_write_status(&err)),
                    Err(_) => Err(Status::Unknown),
                }
            }
            Conn::Grpc { kv, .. } => {
                let request = SetRequest {
                    key: key.to_string().into(),
                    value: value.to_string().into(),
                    ttl_ms: 0,
                    condition: SetCondition::Always.into(),
                    ..Default::default()
                };
                match tokio::time::timeout(OP_TIMEOUT, kv.set(request)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(err)) => Err(write_status(&err)),
                    Err(_) => Err(Status::Unknown),
                }
            }
        }
    }

    /// Returns whether it swapped and the value the key holds after it.
    async fn cas(&mut self, key: &str, expected: Option<String>, new: &str) -> Outcome<(bool, Option<String>)> {
        let (swapped, current) = match self {
            Conn::Client(client) => {
                let call = client.compare_and_set(key.to_string(), expected.map(Bytes::from), new.to_string());
                match tokio::time::timeout(OP_TIMEOUT, call).await {
                    Ok(Ok(reply)) => (reply.value.swapped, reply.value.current),
                    Ok(Err(err)) => return Err(client_write_status(&err)),
                    Err(_) => return Err(Status::Unknown),
                }
            }
            Conn::Grpc { kv, .. } => {
                let request = CompareAndSetRequest {
                    key: key.to_string().into(),
                    expected: expected.map(Into::into),
                    new_value: new.to_string().into(),
                    ..Default::default()
                };
                match tokio::time::timeout(OP_TIMEOUT, kv.compare_and_set(request)).await {
                    Ok(Ok(reply)) => {
                        let reply = reply.into_inner();
                        (reply.swapped, reply.current)
                    }
                    Ok(Err(err)) => return Err(write_status(&err)),
                    Err(_) => return Err(Status::Unknown),
                }
            }
        };
        Ok((
            swapped,
            if swapped {
                Some(new.to_string())
            } else {
                current.map(text)
            },
        ))
    }

    /// After a failure: a raw connection tries the next node (the one it
    /// used may be down); cairn-client does this by itself.
    fn after_failure(&mut self, ctx: &Context) {
        if let Conn::Grpc { kv, node } = self {
            *node += 1;
            *kv = channel(ctx, *node);
        }
    }
}

/// One client: runs until the deadline.
pub async fn client(id: u64, ctx: Arc<Context>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut conn = match ctx.via {
        Via::Client => match cairn_client(&ctx).await {
            Some(client) => Conn::Client(client),
            None => return,
        },
        Via::Grpc | Via::Resp => Conn::Grpc {
            kv: channel(&ctx, id as usize),
            node: id as usize,
        },
        Via::Batch => unreachable!("Workload::supports keeps registers off batches"),
    };
    // What this client last saw each key hold: its cas expectations.
    let mut known: HashMap<String, Option<String>> = HashMap::new();
    let mut n = 0u64;
    while tokio::time::Instant::now() < ctx.deadline {
        let issued = ctx.issued.fetch_add(1, Ordering::Relaxed);
        let generation = issued / (KEYS * OPS_PER_KEY);
        let key = format!("r{}", generation * KEYS + rng.random_range(0..KEYS));
        let call = ctx.recorder.now();
        let choice = rng.random_range(0..10);
        let status = if choice < 4 {
            let outcome = conn.read(&key).await;
            let fields = match &outcome {
                Ok(value) => {
                    known.insert(key.clone(), value.clone());
                    Fields {
                        result: Some(value.as_ref().map_or(json!(null), |v| json!(v))),
                        ..Fields::status(Status::Ok)
                    }
                }
                Err(status) => Fields::status(*status),
            };
            ctx.record(id, call, Kind::Read, &key, fields);
            outcome.err()
        } else if choice < 7 {
            n += 1;
            let value = format!("c{id}-{n}");
            let outcome = conn.write(&key, &value).await;
            if outcome.is_ok() {
                known.insert(key.clone(), Some(value.clone()));
            }
            let fields = Fields {
                value: Some(value),
                ..Fields::status(outcome.err().unwrap_or(Status::Ok))
            };
            ctx.record(id, call, Kind::Write, &key, fields);
            outcome.err()
        } else {
            n += 1;
            let new = format!("c{id}-{n}");
            let expected = known.get(&key).cloned().flatten();
            let outcome = conn.cas(&key, expected.clone(), &new).await;
            let result = match &outcome {
                Ok((swapped, current)) => {
                    known.insert(key.clone(), current.clone());
                    Some(json!(swapped))
                }
                Err(_) => None,
            };
            let fields = Fields {
                expected: Some(expected),
                new: Some(new),
                result,
                ..Fields::status(outcome.as_ref().err().copied().unwrap_or(Status::Ok))
            };
            ctx.record(id, call, Kind::Cas, &key, fields);
            outcome.err()
        };
        if status.is_some() {
            conn.after_failure(&ctx);
            known.clear();
        }
    }
}

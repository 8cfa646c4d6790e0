//! The register workload over gRPC: reads, unique writes and
//! compare-and-sets on rotating keys.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cairn_proto::kv::kv_client::KvClient;
use cairn_proto::kv::{CompareAndSetRequest, GetRequest, SetCondition, SetRequest};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tonic::transport::{Channel, Endpoint};

use super::{Context, Fields, OP_TIMEOUT};
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

/// Classifies a failed write: `fail` only if it certainly did nothing.
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

/// One client: runs until the deadline.
pub async fn client(id: u64, ctx: Arc<Context>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut node = id as usize;
    let mut kv = channel(&ctx, node);
    let mut known: HashMap<String, Option<String>> = HashMap::new();
    let mut n = 0u64;
    while tokio::time::Instant::now() < ctx.deadline {
        let issued = ctx.issued.fetch_add(1, Ordering::Relaxed);
        let generation = issued / (KEYS * OPS_PER_KEY);
        let key = format!("r{}", generation * KEYS + rng.random_range(0..KEYS));
        let call = ctx.recorder.now();
        let choice = rng.random_range(0..10);
        let failed = if choice < 4 {
            let reply = tokio::time::timeout(
                OP_TIMEOUT,
                kv.get(GetRequest {
                    key: key.clone().into(),
                    ..Default::default()
                }),
            )
            .await;
            match reply {
                Ok(Ok(reply)) => {
                    let value = reply
                        .into_inner()
                        .value
                        .map(|v| String::from_utf8_lossy(&v).into_owned());
                    known.insert(key.clone(), value.clone());
                    let fields = Fields {
                        result: Some(value.map_or(json!(null), |v| json!(v))),
                        ..Fields::status(Status::Ok)
                    };
                    ctx.record(id, call, Kind::Read, &key, fields);
                    false
                }
                // A read that did not complete had no effect.
                _ => {
                    ctx.record(id, call, Kind::Read, &key, Fields::status(Status::Fail));
                    true
                }
            }
        } else if choice < 7 {
            n += 1;
            let value = format!("c{id}-{n}");
            let request = SetRequest {
                key: key.clone().into(),
                value: value.clone().into(),
                ttl_ms: 0,
                condition: SetCondition::Always.into(),
                ..Default::default()
            };
            let status = match tokio::time::timeout(OP_TIMEOUT, kv.set(request)).await {
                Ok(Ok(_)) => Status::Ok,
                Ok(Err(err)) => write_status(&err),
                Err(_) => Status::Unknown,
            };
            if status == Status::Ok {
                known.insert(key.clone(), Some(value.clone()));
            }
            let fields = Fields {
                value: Some(value),
                ..Fields::status(status)
            };
            ctx.record(id, call, Kind::Write, &key, fields);
            status != Status::Ok
        } else {
            n += 1;
            let new = format!("c{id}-{n}");
            let expected = known.get(&key).cloned().flatten();
            let request = CompareAndSetRequest {
                key: key.clone().into(),
                expected: expected.clone().map(Into::into),
                new_value: new.clone().into(),
                ..Default::default()
            };
            let (status, result) = match tokio::time::timeout(OP_TIMEOUT, kv.compare_and_set(request)).await {
                Ok(Ok(reply)) => {
                    let reply = reply.into_inner();
                    let current = if reply.swapped {
                        Some(new.clone())
                    } else {
                        reply.current.map(|v| String::from_utf8_lossy(&v).into_owned())
                    };
                    known.insert(key.clone(), current);
                    (Status::Ok, Some(json!(reply.swapped)))
                }
                Ok(Err(err)) => (write_status(&err), None),
                Err(_) => (Status::Unknown, None),
            };
            let fields = Fields {
                expected: Some(expected),
                new: Some(new),
                result,
                ..Fields::status(status)
            };
            ctx.record(id, call, Kind::Cas, &key, fields);
            status != Status::Ok
        };
        if failed {
            // Try another node; the one we used may be down.
            node += 1;
            kv = channel(&ctx, node);
            known.clear();
        }
    }
}

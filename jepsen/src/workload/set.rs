//! The set workload: each added element is its own key
//! (`s<set>:<element>`), written through the Redis protocol or
//! cairn-client, and the final read is an `MGET` of every element ever
//! attempted.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::{Context, Fields, OP_TIMEOUT, Via, cairn_client, client_write_status, resp_definitely_failed};
use crate::history::{Kind, Status};
use crate::resp_client::{Reply, RespClient};

/// Sets written concurrently.
const SETS: u64 = 3;

/// One client: adds unique elements until the deadline.
pub async fn client(id: u64, ctx: Arc<Context>, seed: u64) {
    match ctx.via {
        Via::Client => through_client(id, ctx, seed).await,
        Via::Resp | Via::Grpc => through_resp(id, ctx, seed).await,
    }
}

async fn through_client(id: u64, ctx: Arc<Context>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let Some(client) = cairn_client(&ctx).await else {
        return;
    };
    let mut n = 0u64;
    while tokio::time::Instant::now() < ctx.deadline {
        n += 1;
        let set = format!("s{}", rng.random_range(0..SETS));
        let element = format!("{id}-{n}");
        let call = ctx.recorder.now();
        let key = format!("{set}:{element}");
        let status = match tokio::time::timeout(OP_TIMEOUT, client.set(key, "1")).await {
            Ok(Ok(_)) => Status::Ok,
            Ok(Err(err)) => client_write_status(&err),
            Err(_) => Status::Unknown,
        };
        let fields = Fields {
            value: Some(element),
            ..Fields::status(status)
        };
        ctx.record(id, call, Kind::Add, &set, fields);
    }
}

async fn through_resp(id: u64, ctx: Arc<Context>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut node = id as usize;
    let mut conn: Option<RespClient> = None;
    let mut n = 0u64;
    while tokio::time::Instant::now() < ctx.deadline {
        n += 1;
        let set = format!("s{}", rng.random_range(0..SETS));
        let element = format!("{id}-{n}");
        let call = ctx.recorder.now();
        if conn.is_none() {
            conn = RespClient::connect(ctx.resp[node % ctx.resp.len()]).await.ok();
        }
        let key = format!("{set}:{element}");
        let status = match conn.as_mut() {
            // Nothing could be sent.
            None => Status::Fail,
            Some(c) => match tokio::time::timeout(OP_TIMEOUT, c.call(&[b"SET", key.as_bytes(), b"1"])).await {
                Ok(Ok(Reply::Simple(ok))) if ok == "OK" => Status::Ok,
                Ok(Ok(Reply::Error(e))) if resp_definitely_failed(&e) => Status::Fail,
                _ => Status::Unknown,
            },
        };
        if status != Status::Ok {
            conn = None;
            node += 1;
        }
        let fields = Fields {
            value: Some(element),
            ..Fields::status(status)
        };
        ctx.record(id, call, Kind::Add, &set, fields);
    }
}

/// Reads every set once the cluster is healed.
pub async fn final_read(ctx: &Context) -> anyhow::Result<()> {
    let mut attempted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for op in ctx.recorder.ops() {
        if op.op == Kind::Add && op.status != Status::Fail {
            attempted.entry(op.key.clone()).or_default().extend(op.value);
        }
    }
    for (set, elements) in attempted {
        let call = ctx.recorder.now();
        let present = read_elements(ctx, &set, &elements).await?;
        let fields = Fields {
            result: Some(json!(present)),
            ..Fields::status(Status::Ok)
        };
        ctx.record(u64::MAX, call, Kind::Read, &set, fields);
    }
    Ok(())
}

async fn read_elements(ctx: &Context, set: &str, elements: &[String]) -> anyhow::Result<Vec<String>> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    'attempt: for attempt in 0.. {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "final read of {set} kept failing"
        );
        let Ok(mut conn) = RespClient::connect(ctx.resp[attempt % ctx.resp.len()]).await else {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        };
        let mut present = Vec::new();
        for chunk in elements.chunks(200) {
            let keys: Vec<String> = chunk.iter().map(|e| format!("{set}:{e}")).collect();
            let mut args: Vec<&[u8]> = vec![b"MGET"];
            args.extend(keys.iter().map(|k| k.as_bytes()));
            match conn.call(&args).await {
                Ok(Reply::Array(values)) if values.len() == chunk.len() => {
                    for (element, value) in chunk.iter().zip(values) {
                        if matches!(value, Reply::Bulk(Some(_))) {
                            present.push(element.clone());
                        }
                    }
                }
                _ => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue 'attempt;
                }
            }
        }
        return Ok(present);
    }
    unreachable!("the attempt loop only ends by returning")
}

//! The counter workload: increments of a few keys, then a final `GET` of
//! each. Through the Redis protocol an `INCR` whose answer is lost is
//! `unknown`; through cairn-client it is retried with the same session
//! (exactly once), so the final value must equal the acknowledged
//! increments within the few calls that ran out of deadline. Through
//! cairn-client's batches each batch increments every counter once, and
//! each increment is recorded with its own outcome.

use std::collections::BTreeSet;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::{
    Context, Fields, OP_TIMEOUT, Via, batch_write_status, cairn_client, client_write_status, resp_definitely_failed,
};
use crate::history::{Kind, Status};
use crate::resp_client::{Reply, RespClient};
use cairn_client::Batch;

/// Counters incremented concurrently.
const COUNTERS: u64 = 2;

/// One client: increments until the deadline.
pub async fn client(id: u64, ctx: Arc<Context>, seed: u64) {
    match ctx.via {
        Via::Client => through_client(id, ctx, seed).await,
        Via::Batch => through_batches(id, ctx).await,
        Via::Resp | Via::Grpc => through_resp(id, ctx, seed).await,
    }
}

async fn through_batches(id: u64, ctx: Arc<Context>) {
    let Some(client) = cairn_client(&ctx).await else {
        return;
    };
    let keys: Vec<String> = (0..COUNTERS).map(|i| format!("c{i}")).collect();
    let batch = keys.iter().fold(Batch::new(), |batch, key| batch.incr(key.clone(), 1));
    while tokio::time::Instant::now() < ctx.deadline {
        let call = ctx.recorder.now();
        let outcomes = tokio::time::timeout(OP_TIMEOUT, client.batch(&batch)).await;
        for (i, key) in keys.iter().enumerate() {
            ctx.record(
                id,
                call,
                Kind::Incr,
                key,
                Fields::status(batch_write_status(&outcomes, i)),
            );
        }
    }
}

async fn through_client(id: u64, ctx: Arc<Context>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let Some(client) = cairn_client(&ctx).await else {
        return;
    };
    while tokio::time::Instant::now() < ctx.deadline {
        let key = format!("c{}", rng.random_range(0..COUNTERS));
        let call = ctx.recorder.now();
        let status = match tokio::time::timeout(OP_TIMEOUT, client.incr(key.clone(), 1)).await {
            Ok(Ok(_)) => Status::Ok,
            Ok(Err(err)) => client_write_status(&err),
            Err(_) => Status::Unknown,
        };
        ctx.record(id, call, Kind::Incr, &key, Fields::status(status));
    }
}

async fn through_resp(id: u64, ctx: Arc<Context>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut node = id as usize;
    let mut conn: Option<RespClient> = None;
    while tokio::time::Instant::now() < ctx.deadline {
        let key = format!("c{}", rng.random_range(0..COUNTERS));
        let call = ctx.recorder.now();
        if conn.is_none() {
            conn = RespClient::connect(ctx.resp[node % ctx.resp.len()]).await.ok();
        }
        let status = match conn.as_mut() {
            None => Status::Fail,
            Some(c) => match tokio::time::timeout(OP_TIMEOUT, c.call(&[b"INCR", key.as_bytes()])).await {
                Ok(Ok(Reply::Int(_))) => Status::Ok,
                Ok(Ok(Reply::Error(e))) if resp_definitely_failed(&e) => Status::Fail,
                _ => Status::Unknown,
            },
        };
        if status != Status::Ok {
            conn = None;
            node += 1;
        }
        ctx.record(id, call, Kind::Incr, &key, Fields::status(status));
    }
}

/// Reads every counter once the cluster is healed.
pub async fn final_read(ctx: &Context) -> anyhow::Result<()> {
    let keys: BTreeSet<String> = ctx
        .recorder
        .ops()
        .into_iter()
        .filter(|op| op.op == Kind::Incr)
        .map(|op| op.key)
        .collect();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    for key in keys {
        let mut attempt = 0;
        loop {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "final read of {key} kept failing"
            );
            attempt += 1;
            let call = ctx.recorder.now();
            let reply = match RespClient::connect(ctx.resp[attempt % ctx.resp.len()]).await {
                Ok(mut conn) => conn.call(&[b"GET", key.as_bytes()]).await.ok(),
                Err(_) => None,
            };
            let value = match reply {
                Some(Reply::Bulk(Some(v))) => String::from_utf8_lossy(&v).parse::<i64>().ok(),
                Some(Reply::Bulk(None)) => Some(0),
                _ => None,
            };
            if let Some(value) = value {
                let fields = Fields {
                    result: Some(json!(value)),
                    ..Fields::status(Status::Ok)
                };
                ctx.record(u64::MAX, call, Kind::Read, &key, fields);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

//! The set workload: each added element is its own key
//! (`s<set>:<element>`), written through the Redis protocol, cairn-client
//! or its batches (a few adds per batch), and the final read is an `MGET`
//! of every element ever attempted. Now and then a client probes (`GET`,
//! linearizable) one of its own recently acknowledged elements: after a
//! failover that discarded writes, no probe may still see them.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::{
    BATCH, Context, Fields, OP_TIMEOUT, Via, batch_write_status, cairn_client, client_write_status,
    resp_definitely_failed,
};
use crate::history::{Kind, Status};
use crate::resp_client::{Reply, RespClient};
use cairn_client::Batch;

/// Sets written concurrently.
const SETS: u64 = 3;
/// One add in this many is followed by a probe.
const PROBE_EVERY: u32 = 4;
/// How many of its latest acknowledged elements a client probes among.
const PROBED: usize = 50;

/// A client's latest acknowledged elements, and which to probe next.
#[derive(Default)]
struct Probes {
    recent: std::collections::VecDeque<(String, String)>,
}

impl Probes {
    /// Notes an acknowledged add; maybe returns `(set, element)` to probe.
    fn after_ack(&mut self, set: &str, element: &str, rng: &mut StdRng) -> Option<(String, String)> {
        self.recent.push_back((set.to_string(), element.to_string()));
        if self.recent.len() > PROBED {
            self.recent.pop_front();
        }
        if rng.random_range(0..PROBE_EVERY) != 0 {
            return None;
        }
        self.recent.get(rng.random_range(0..self.recent.len())).cloned()
    }
}

/// Records a probe's outcome: `Some(found)` when it was answered.
fn record_probe(ctx: &Context, id: u64, call: u64, (set, element): (String, String), found: Option<bool>) {
    let fields = Fields {
        value: Some(element),
        result: found.map(|f| json!(f)),
        ..Fields::status(if found.is_some() { Status::Ok } else { Status::Unknown })
    };
    ctx.record(id, call, Kind::Contains, &set, fields);
}

/// One client: adds unique elements until the deadline.
pub async fn client(id: u64, ctx: Arc<Context>, seed: u64) {
    match ctx.via {
        Via::Client => through_client(id, ctx, seed, false).await,
        Via::Batch => through_client(id, ctx, seed, true).await,
        Via::Resp | Via::Grpc => through_resp(id, ctx, seed).await,
    }
}

/// Adds through cairn-client: one call per add, or (`batched`) a
/// [`BATCH`] of adds per `Client::batch`, each recorded on its own.
async fn through_client(id: u64, ctx: Arc<Context>, seed: u64, batched: bool) {
    let mut rng = StdRng::seed_from_u64(seed);
    let Some(client) = cairn_client(&ctx).await else {
        return;
    };
    let mut probes = Probes::default();
    let mut n = 0u64;
    while tokio::time::Instant::now() < ctx.deadline {
        let adds: Vec<(String, String)> = (0..if batched { BATCH } else { 1 })
            .map(|_| {
                n += 1;
                (format!("s{}", rng.random_range(0..SETS)), format!("{id}-{n}"))
            })
            .collect();
        let key = |(set, element): &(String, String)| format!("{set}:{element}");
        let call = ctx.recorder.now();
        let statuses: Vec<Status> = if batched {
            let batch = adds.iter().fold(Batch::new(), |batch, add| batch.set(key(add), "1"));
            let outcomes = tokio::time::timeout(OP_TIMEOUT, client.batch(&batch)).await;
            (0..adds.len()).map(|i| batch_write_status(&outcomes, i)).collect()
        } else {
            let status = match tokio::time::timeout(OP_TIMEOUT, client.set(key(&adds[0]), "1")).await {
                Ok(Ok(_)) => Status::Ok,
                Ok(Err(err)) => client_write_status(&err),
                Err(_) => Status::Unknown,
            };
            vec![status]
        };
        for ((set, element), status) in adds.iter().zip(statuses) {
            let fields = Fields {
                value: Some(element.clone()),
                ..Fields::status(status)
            };
            ctx.record(id, call, Kind::Add, set, fields);
            if status != Status::Ok {
                continue;
            }
            if let Some(probe) = probes.after_ack(set, element, &mut rng) {
                let call = ctx.recorder.now();
                let key = format!("{}:{}", probe.0, probe.1);
                let found = match tokio::time::timeout(OP_TIMEOUT, client.get(key)).await {
                    Ok(Ok(reply)) => Some(reply.value.is_some()),
                    _ => None,
                };
                record_probe(&ctx, id, call, probe, found);
            }
        }
    }
}

async fn through_resp(id: u64, ctx: Arc<Context>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut node = id as usize;
    let mut conn: Option<RespClient> = None;
    let mut probes = Probes::default();
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
        let fields = Fields {
            value: Some(element.clone()),
            ..Fields::status(status)
        };
        ctx.record(id, call, Kind::Add, &set, fields);
        let probe = match (status, conn.as_mut()) {
            (Status::Ok, Some(c)) => probes.after_ack(&set, &element, &mut rng).map(|p| (p, c)),
            _ => None,
        };
        if let Some((probe, c)) = probe {
            let call = ctx.recorder.now();
            let key = format!("{}:{}", probe.0, probe.1);
            let found = match tokio::time::timeout(OP_TIMEOUT, c.call(&[b"GET", key.as_bytes()])).await {
                Ok(Ok(Reply::Bulk(value))) => Some(value.is_some()),
                _ => None,
            };
            let answered = found.is_some();
            record_probe(&ctx, id, call, probe, found);
            if !answered {
                conn = None;
                node += 1;
            }
        }
        if status != Status::Ok {
            conn = None;
            node += 1;
        }
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

//! Cairn's own API as a load target: the same operations through
//! `cairn-client` (gRPC, routed by slot straight to shard leaders,
//! linearizable reads by default, exactly-once writes).
//!
//! One client is shared by every connection task, as an application would
//! share it: it multiplexes requests over a few HTTP/2 channels per node. A
//! pipeline of one operation is a call of its own; a longer one is a
//! [`Batch`] (one call per node), and each of its operations takes the
//! batch's time.

use std::time::{Duration, Instant};

use cairn_client::{Batch, Client};

use crate::workload::Op;

/// Builds the shared client from a node's gRPC address (`host:port`).
pub async fn connect(seed: &str) -> anyhow::Result<Client> {
    Ok(Client::builder().seeds([seed.to_string()]).build().await?)
}

/// Runs `ops` on `client` (see the module's notes); calls `done` once per
/// operation with its latency and whether it failed.
pub async fn send(client: &Client, ops: Vec<Op>, value: &[u8], mut done: impl FnMut(usize, Duration, usize)) {
    let value = bytes::Bytes::copy_from_slice(value);
    let start = Instant::now();
    if let [op] = ops.as_slice() {
        let failed = match op {
            Op::Get(key) => client.get(key.clone()).await.is_err(),
            Op::Set(key) => client.set(key.clone(), value).await.is_err(),
            Op::Incr(key) => client.incr(key.clone(), 1).await.is_err(),
        };
        done(1, start.elapsed(), usize::from(failed));
        return;
    }
    let batch = ops.into_iter().fold(Batch::new(), |batch, op| match op {
        Op::Get(key) => batch.get(key),
        Op::Set(key) => batch.set(key, value.clone()),
        Op::Incr(key) => batch.incr(key, 1),
    });
    let outcomes = client.batch(&batch).await;
    let took = start.elapsed();
    for outcome in outcomes {
        done(1, took, usize::from(outcome.is_err()));
    }
}

//! Cairn's own API as a load target: the same operations through
//! `cairn-client` (gRPC, routed by slot straight to shard leaders,
//! linearizable reads by default, exactly-once writes).
//!
//! One client is shared by every connection task, as an application would
//! share it: it multiplexes requests over a few HTTP/2 channels per node. A
//! pipeline of `n` operations is `n` concurrent calls, each timed on its
//! own.

use std::time::{Duration, Instant};

use cairn_client::Client;
use futures::future::join_all;

use crate::workload::Op;

/// Builds the shared client from a node's gRPC address (`host:port`).
pub async fn connect(seed: &str) -> anyhow::Result<Client> {
    Ok(Client::builder().seeds([seed.to_string()]).build().await?)
}

/// Runs `ops` concurrently on `client`; calls `done` once per operation
/// with its own latency and whether it failed.
pub async fn send(client: &Client, ops: Vec<Op>, value: &[u8], mut done: impl FnMut(usize, Duration, usize)) {
    let calls = ops.into_iter().map(|op| {
        let value = bytes::Bytes::copy_from_slice(value);
        async move {
            let start = Instant::now();
            let failed = match op {
                Op::Get(key) => client.get(key).await.is_err(),
                Op::Set(key) => client.set(key, value).await.is_err(),
                Op::Incr(key) => client.incr(key, 1).await.is_err(),
            };
            (start.elapsed(), failed)
        }
    });
    for (took, failed) in join_all(calls).await {
        done(1, took, usize::from(failed));
    }
}

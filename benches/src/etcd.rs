//! The etcd side of the load generator: the same operations as linearizable
//! etcd reads (`Range`, etcd's default) and puts, over the official gRPC
//! API (the `etcd-client` crate).
//!
//! A pipeline of `n` operations is `n` concurrent requests on the
//! connection's HTTP/2 channel, each timed on its own. `INCR` has no single
//! etcd request, so workload F is refused for etcd.

use std::time::Instant;

use etcd_client::{Client, KvClient};
use futures::future::join_all;

use crate::workload::Op;

/// One client of an etcd cluster.
pub struct EtcdSession {
    kv: KvClient,
}

impl EtcdSession {
    /// Connects to the cluster through `endpoints` (`host:port`).
    pub async fn open(endpoints: &[String]) -> anyhow::Result<EtcdSession> {
        let client = Client::connect(endpoints, None).await?;
        Ok(EtcdSession { kv: client.kv_client() })
    }

    /// Runs `ops` concurrently; calls `done` once per operation with its
    /// own latency and whether it failed.
    pub async fn send(
        &mut self,
        ops: Vec<Op>,
        value: &[u8],
        mut done: impl FnMut(usize, std::time::Duration, usize),
    ) -> anyhow::Result<()> {
        let requests = ops.into_iter().map(|op| {
            let mut kv = self.kv.clone();
            let value = value.to_vec();
            async move {
                let start = Instant::now();
                let result = match op {
                    Op::Get(key) => kv.get(key, None).await.map(drop),
                    Op::Set(key) => kv.put(key, value, None).await.map(drop),
                    Op::Incr(_) => unreachable!("workload f is refused for etcd before the run"),
                };
                (start.elapsed(), result.is_err())
            }
        });
        for (took, failed) in join_all(requests).await {
            done(1, took, usize::from(failed));
        }
        Ok(())
    }
}

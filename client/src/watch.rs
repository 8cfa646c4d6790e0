//! The client's background work: following the topology stream, and
//! probing nodes whose circuit breaker is open.
//!
//! The stream (`Admin.Watch`) sends the cluster status whenever a shard's
//! leader changes, so the client routes to a new leader before any request
//! has to be refused by the old one. When the node it streams from dies or
//! falls silent (HTTP/2 keep-alive notices), the client streams from
//! another. Both tasks hold the client weakly and are stopped when the last
//! handle is dropped.

use std::sync::{Arc, Weak};
use std::time::Duration;

use cairn_proto::admin::StatusRequest;
use cairn_proto::admin::admin_client::AdminClient;
use futures::StreamExt;

use crate::breaker::BreakerState;
use crate::client::Inner;
use crate::metrics::Count;
use crate::topology::Topology;

/// Pause before streaming from another node after a stream ended.
const RESTREAM_PAUSE: Duration = Duration::from_millis(100);

/// Starts the background tasks of a new client.
pub(crate) fn start(inner: &Arc<Inner>, watch_topology: bool) {
    let mut tasks = inner.tasks.lock().expect("tasks lock");
    if watch_topology {
        tasks.push(tokio::spawn(follow_topology(Arc::downgrade(inner))).abort_handle());
    }
    tasks.push(tokio::spawn(probe_breakers(Arc::downgrade(inner))).abort_handle());
}

/// Streams topology updates from one node after another, forever.
async fn follow_topology(weak: Weak<Inner>) {
    let mut turn = 0usize;
    loop {
        let channel = {
            let Some(inner) = weak.upgrade() else { return };
            let nodes = inner.node_ids();
            let Some(node) = (0..nodes.len())
                .map(|i| nodes[(turn + i) % nodes.len()])
                .find(|&n| inner.breaker(n).state() == BreakerState::Closed)
            else {
                drop(inner);
                turn += 1;
                tokio::time::sleep(RESTREAM_PAUSE).await;
                continue;
            };
            turn = nodes.iter().position(|&n| n == node).unwrap_or(0) + 1;
            inner.channel(node).ok()
        };
        let stream = match channel {
            Some(channel) => AdminClient::new(channel).watch(StatusRequest {}).await.ok(),
            None => None,
        };
        if let Some(response) = stream {
            let mut stream = response.into_inner();
            while let Some(Ok(status)) = stream.next().await {
                let Some(inner) = weak.upgrade() else { return };
                if let Ok(update) = Topology::from_status(status) {
                    let changed = inner.topology.write().expect("topology lock").merge(update);
                    inner.counters.bump(Count::TopologyUpdate);
                    if changed {
                        tracing::debug!("leaders changed (topology stream)");
                    }
                }
            }
        }
        tokio::time::sleep(RESTREAM_PAUSE).await;
    }
}

/// Sends a status request to every node whose breaker waits for a probe,
/// so a node that came back is used again even if no request goes its way.
async fn probe_breakers(weak: Weak<Inner>) {
    loop {
        let (interval, attempt_timeout, due) = {
            let Some(inner) = weak.upgrade() else { return };
            let nodes = inner.node_ids();
            let due: Vec<u64> = nodes
                .into_iter()
                .filter(|&n| inner.breaker(n).state() == BreakerState::HalfOpen)
                .collect();
            let settings = inner.settings;
            (settings.breaker.open_for / 2, settings.attempt_timeout, due)
        };
        for node in due {
            let Some(inner) = weak.upgrade() else { return };
            let breaker = inner.breaker(node);
            if !breaker.allow() {
                continue;
            }
            let Ok(channel) = inner.channel(node) else { continue };
            drop(inner);
            let mut request = tonic::Request::new(StatusRequest {});
            request.set_timeout(attempt_timeout);
            let answered = tokio::time::timeout(attempt_timeout, AdminClient::new(channel).status(request))
                .await
                .is_ok_and(|r| r.is_ok());
            if answered {
                breaker.success();
            } else {
                breaker.failure();
            }
        }
        tokio::time::sleep(interval.max(Duration::from_millis(10))).await;
    }
}

//! One circuit breaker per node: it opens when the node dies (and requests
//! stop going there), and closes again once the node is back.

#[path = "../../server/tests/fixtures/mod.rs"]
mod fixtures;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_client::{Attempt, BreakerConfig, BreakerState, CallOptions, Client, Consistency, MetricsHook};
use cairn_server::config::RaftOptions;
use fixtures::Cluster;

/// Counts attempts per node and breaker openings.
#[derive(Default, Clone)]
struct Seen {
    attempts: Arc<Mutex<HashMap<u64, u64>>>,
    opened: Arc<Mutex<Vec<u64>>>,
}

impl MetricsHook for Seen {
    fn attempt(&self, attempt: &Attempt<'_>) {
        *self.attempts.lock().unwrap().entry(attempt.node).or_default() += 1;
    }

    fn breaker_opened(&self, node: u64) {
        self.opened.lock().unwrap().push(node);
    }
}

impl Seen {
    fn attempts_to(&self, node: u64) -> u64 {
        self.attempts.lock().unwrap().get(&node).copied().unwrap_or(0)
    }
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t40_breaker_opens_on_a_dead_node_and_closes_when_it_returns() {
    let mut cluster = Cluster::start(3, 4, RaftOptions::default());
    let seen = Seen::default();
    let client = Client::builder()
        .seeds([cluster.topology.node(1).unwrap().grpc_addr.to_string()])
        .breaker(BreakerConfig {
            failure_threshold: 2,
            open_for: Duration::from_millis(300),
        })
        .metrics(seen.clone())
        .build()
        .await
        .unwrap();
    // Stale reads go to any replica, so every node gets some.
    let reads = client.with(CallOptions::default().consistency(Consistency::Stale));
    client.set("k", "v").await.unwrap();
    let read_many = |n: usize| {
        let reads = reads.clone();
        async move {
            for _ in 0..n {
                // A stale read may not see the write yet; it must not fail.
                reads.get("k").await.expect("reads never fail");
            }
        }
    };
    read_many(30).await;
    assert!(seen.attempts_to(3) > 0);

    cluster.kill(3);
    for _ in 0..200 {
        if client.breaker_state(3) == BreakerState::Open {
            break;
        }
        read_many(1).await;
    }
    assert_eq!(client.breaker_state(3), BreakerState::Open);
    assert!(seen.opened.lock().unwrap().contains(&3));
    let before = seen.attempts_to(3);
    read_many(50).await;
    assert!(
        seen.attempts_to(3) - before <= 1,
        "an open breaker skips its node (at most one probe)"
    );

    cluster.start_node(3);
    wait_for(
        "the breaker closes after the node returns",
        Duration::from_secs(30),
        || client.breaker_state(3) == BreakerState::Closed,
    )
    .await;
    let before = seen.attempts_to(3);
    read_many(50).await;
    assert!(seen.attempts_to(3) > before, "requests reach the node again");
}

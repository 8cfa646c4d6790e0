//! Kill -9 the node leading most shards while clients write and read in a
//! loop with a 5 s deadline: no error reaches the application, every
//! acknowledged write is there, and every counter equals the increments
//! acknowledged (none lost, none applied twice).

#[path = "../../server/tests/fixtures/mod.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_client::Client;
use cairn_server::config::RaftOptions;
use fixtures::Cluster;

const WORKERS: usize = 4;

struct Worker {
    keys: Vec<(String, String)>,
    increments: i64,
    errors: Vec<String>,
    slowest: Duration,
}

async fn work(client: Client, id: usize, stop: Arc<AtomicBool>) -> Worker {
    let mut worker = Worker {
        keys: Vec::new(),
        increments: 0,
        errors: Vec::new(),
        slowest: Duration::ZERO,
    };
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let key = format!("w{id}:{i}");
        let value = format!("v{i}");
        let started = Instant::now();
        match client.set(key.clone(), value.clone()).await {
            Ok(_) => worker.keys.push((key.clone(), value.clone())),
            Err(err) => worker.errors.push(format!("set {key}: {err}")),
        }
        match client.incr(format!("count:{id}"), 1).await {
            Ok(_) => worker.increments += 1,
            Err(err) => worker.errors.push(format!("incr: {err}")),
        }
        match client.get(key.clone()).await {
            Ok(reply) if reply.value.as_deref() == Some(value.as_bytes()) => {}
            Ok(reply) => worker.errors.push(format!("get {key}: {:?}", reply.value)),
            Err(err) => worker.errors.push(format!("get {key}: {err}")),
        }
        worker.slowest = worker.slowest.max(started.elapsed());
    }
    worker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_a_killed_leader_costs_latency_not_errors_or_duplicates() {
    let mut cluster = Cluster::start(3, 4, RaftOptions::default());
    let seeds: Vec<String> = cluster.topology.nodes.iter().map(|n| n.grpc_addr.to_string()).collect();
    let client = Client::builder().seeds(seeds).build().await.unwrap();
    let mut led: BTreeMap<u64, usize> = BTreeMap::new();
    for shard in &client.topology().shards {
        *led.entry(shard.leader.unwrap()).or_default() += 1;
    }
    let victim = *led.iter().max_by_key(|(_, n)| **n).unwrap().0;

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|id| tokio::spawn(work(client.clone(), id, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.kill(victim);
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for worker in workers {
        results.push(worker.await.unwrap());
    }

    let errors: Vec<&String> = results.iter().flat_map(|w| &w.errors).collect();
    assert!(errors.is_empty(), "errors reached the application: {errors:?}");
    let written: usize = results.iter().map(|w| w.keys.len()).sum();
    let after = client.topology();
    assert!(
        after.shards.iter().all(|s| s.leader.is_some_and(|l| l != victim)),
        "every shard moved away from node {victim}: {after:?}"
    );
    for (id, worker) in results.iter().enumerate() {
        let keys: Vec<Bytes> = worker.keys.iter().map(|(k, _)| Bytes::from(k.clone())).collect();
        let found = client.mget(keys).await.unwrap();
        for ((key, value), found) in worker.keys.iter().zip(found.values) {
            assert_eq!(found.as_deref(), Some(value.as_bytes()), "acknowledged {key} is lost");
        }
        let count = client.get(format!("count:{id}")).await.unwrap().value.unwrap();
        assert_eq!(
            std::str::from_utf8(&count).unwrap(),
            worker.increments.to_string(),
            "counter {id} equals its acknowledged increments exactly"
        );
    }
    let slowest = results.iter().map(|w| w.slowest).max().unwrap();
    let stats = client.stats();
    println!(
        "FAILOVER node {victim} killed {:?} ago: {written} acknowledged writes, 0 errors, slowest iteration {slowest:?}, {} calls in {} attempts",
        killed.elapsed(),
        stats.calls,
        stats.attempts
    );
    assert!(written > 100, "the workers made progress: {written}");
}

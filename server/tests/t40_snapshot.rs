//! A follower left behind past a log purge receives a snapshot and
//! converges; one left behind by writes too large to send together is
//! sent them from the log a few at a time; a node whose snapshot holds a
//! string of the largest size restarts from it; a shard whose keys keep
//! growing is snapshotted again and again.

mod fixtures;

use std::time::{Duration, Instant};

use cairn_server::config::RaftOptions;
use fixtures::{Cluster, Value};

#[test]
fn t40_lagging_follower_is_caught_up_by_snapshot() {
    let mut cluster = Cluster::start(
        3,
        2,
        RaftOptions {
            snapshot_every: 100,
            logs_kept_behind_snapshot: 10,
            ..RaftOptions::default()
        },
    );
    cluster.kill(3);
    let mut client = cluster.client(1);
    for i in 0..1500 {
        assert_eq!(
            client.cmd(&["SET", &format!("k{i}"), &format!("v{i}")]),
            Value::Simple("OK".into())
        );
    }
    // Every replica left snapshots its shards (and purges its log) within
    // a second or two of the writes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while [1, 2]
        .iter()
        .any(|&id| (0..2).any(|shard| shard_snapshots_taken(&cluster, id, shard) == 0))
    {
        assert!(
            Instant::now() < deadline,
            "nodes 1 and 2 took no snapshot of each shard"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.start_node(3);
    wait_for_keys(&cluster, 3, 1500, Duration::from_secs(30));
    assert!(
        cluster.log(3).contains("snapshot installed") && snapshot_files(&cluster, 3) > 0,
        "node 3 caught up through a snapshot install"
    );
    // With node 1 gone, node 3 is needed for every majority.
    cluster.stop(1);
    cluster.wait_ready(Duration::from_secs(30));
    let mut client = cluster.client(3);
    for i in (0..1500).step_by(11) {
        assert_eq!(client.cmd(&["GET", &format!("k{i}")]).text(), Some(format!("v{i}")));
    }
}

#[test]
fn t41_a_follower_behind_by_large_writes_catches_up_from_the_log() {
    // Each write is an entry of its own, and the five together are more
    // than one replication request may carry (64 MiB).
    let mut cluster = Cluster::start(3, 1, RaftOptions::default());
    cluster.kill(3);
    let mut client = cluster.client(1);
    let value = "x".repeat(20 << 20);
    for i in 0..5 {
        assert_eq!(
            client.cmd(&["SET", &format!("large{i}"), &value]),
            Value::Simple("OK".into())
        );
    }
    cluster.start_node(3);
    wait_for_keys(&cluster, 3, 5, Duration::from_secs(60));
    assert!(
        !cluster.log(3).contains("snapshot installed"),
        "node 3 caught up from the log, not a snapshot"
    );
    // With node 1 gone, node 3 is needed for every majority.
    cluster.stop(1);
    cluster.wait_ready(Duration::from_secs(30));
    let mut client = cluster.client(3);
    for i in 0..5 {
        assert_eq!(client.cmd(&["STRLEN", &format!("large{i}")]), Value::Int(20 << 20));
    }
    assert_eq!(client.cmd(&["SET", "after", "1"]), Value::Simple("OK".into()));
}

#[test]
fn t42_a_node_holding_a_string_of_the_largest_size_restarts_from_its_snapshot() {
    let mut cluster = Cluster::start(
        3,
        1,
        RaftOptions {
            snapshot_every: 100,
            ..RaftOptions::default()
        },
    );
    let mut client = cluster.client(1);
    // 512 MiB, Redis's limit too: zeros, then an "x".
    let last = (512u64 << 20) - 1;
    assert_eq!(
        client.cmd(&["SETRANGE", "big", &last.to_string(), "x"]),
        Value::Int(512 << 20)
    );
    for i in 0..150 {
        assert_eq!(client.cmd(&["SET", &format!("k{i}"), "v"]), Value::Simple("OK".into()));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while snapshot_files(&cluster, 2) == 0 {
        assert!(Instant::now() < deadline, "node 2 took no snapshot");
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.kill(2);
    cluster.start_node(2);
    // With node 1 gone, node 2 is needed for every majority.
    cluster.stop(1);
    cluster.wait_ready(Duration::from_secs(60));
    let mut client = cluster.client(2);
    assert_eq!(client.cmd(&["STRLEN", "big"]), Value::Int(512 << 20));
    let tail = client.cmd(&["GETRANGE", "big", &(last - 1).to_string(), "-1"]);
    assert_eq!(tail, Value::Bulk(Some(b"\0x".to_vec())));
    assert!(
        !cluster.log(2).contains("snapshot unusable"),
        "node 2 read its snapshot:\n{}",
        cluster.log(2)
    );
}

#[test]
fn t43_a_shard_whose_keys_keep_growing_is_snapshotted_again() {
    // Every write adds a key: a snapshot is due again once the writes since
    // the last one are as many as it holds keys.
    let cluster = Cluster::start(
        1,
        1,
        RaftOptions {
            snapshot_every: 100,
            ..RaftOptions::default()
        },
    );
    let mut client = cluster.client(1);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut keys = 0;
    while shard_snapshots_taken(&cluster, 1, 0) < 3 {
        assert!(
            Instant::now() < deadline,
            "{} snapshots of shard 0 after {keys} keys",
            shard_snapshots_taken(&cluster, 1, 0)
        );
        for _ in 0..200 {
            let set = client.cmd(&["SET", &format!("k{keys}"), "v"]);
            assert_eq!(set, Value::Simple("OK".into()));
            keys += 1;
        }
    }
}

/// Snapshots node `id` wrote of shard `shard`, as its log tells.
fn shard_snapshots_taken(cluster: &Cluster, id: u64, shard: u64) -> usize {
    let dir = format!("shard-{shard}/");
    let log = cluster.log(id);
    log.lines()
        .filter(|l| l.contains("snapshot written") && l.contains(&dir))
        .count()
}

fn snapshot_files(cluster: &Cluster, id: u64) -> usize {
    let dir = cluster.node_dir(id).join("snapshots");
    walk(&dir)
}

fn walk(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path)
            } else {
                usize::from(path.extension().is_some_and(|x| x == "snap"))
            }
        })
        .sum()
}

/// Waits until node `id`'s replicas hold `keys` keys; fails after `within`.
fn wait_for_keys(cluster: &Cluster, id: u64, keys: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let held = local_keys(cluster, id);
        if held >= keys {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {id} holds {held} of {keys} keys after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Keys held by a node's local replicas (INFO keyspace).
fn local_keys(cluster: &Cluster, id: u64) -> usize {
    let Some(mut client) = fixtures::Resp::try_connect(cluster.topology.node(id).unwrap().resp_addr) else {
        return 0;
    };
    let Ok(Value::Bulk(Some(text))) = client.try_cmd(&["INFO", "keyspace"]) else {
        return 0;
    };
    String::from_utf8_lossy(&text)
        .lines()
        .find_map(|l| l.strip_prefix("db0:keys=")?.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

//! Real Redis clients, unchanged, against a Cairn cluster: `redis-cli`
//! (plain and `-c`), `redis-benchmark` (plain and `--cluster`), the `redis`
//! crate's cluster client and redis-py's `RedisCluster`. The cluster-aware
//! ones route by slot to leaders and keep working when the node leading
//! the most shards is killed and its shards' leadership moves (they follow
//! `CLUSTER SLOTS` and `-MOVED`).
//!
//! Needs redis-tools and python3-redis (installed by `scripts/setup`).

mod fixtures;

use std::process::Command;
use std::time::{Duration, Instant};

use cairn_server::config::RaftOptions;
use fixtures::Cluster;
use redis::Commands;

/// Runs a program to completion; its stdout, or a failure naming it.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot run ({e}); scripts/setup installs it"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The node leading the most shards.
fn busiest_leader(cluster: &Cluster) -> u64 {
    let mut counts = std::collections::BTreeMap::new();
    for leader in cluster.leaders(1).into_values() {
        *counts.entry(leader).or_insert(0) += 1;
    }
    counts.into_iter().max_by_key(|&(_, n)| n).map(|(id, _)| id).unwrap()
}

fn port(cluster: &Cluster, id: u64) -> String {
    cluster.topology.node(id).unwrap().resp_addr.port().to_string()
}

#[test]
fn t95_redis_cli_and_redis_benchmark_work_unchanged() {
    let cluster = Cluster::start(3, 4, RaftOptions::default());
    let p = port(&cluster, 1);
    assert_eq!(run("redis-cli", &["-p", &p, "SET", "cli:k", "v"]).trim(), "OK");
    assert_eq!(run("redis-cli", &["-p", &p, "GET", "cli:k"]).trim(), "v");
    // `-c` follows -MOVED from whichever node it asks first.
    for id in cluster.ids() {
        let p = port(&cluster, id);
        let key = format!("cli:{id}");
        assert_eq!(run("redis-cli", &["-c", "-p", &p, "SET", &key, "x"]).trim(), "OK");
        assert_eq!(run("redis-cli", &["-c", "-p", &p, "GET", &key]).trim(), "x");
    }
    for extra in [&[][..], &["--cluster"][..]] {
        let mut args = vec!["-p", &p, "-t", "set,get,incr,mset", "-n", "2000", "-c", "8", "-q"];
        args.extend_from_slice(extra);
        let out = run("redis-benchmark", &args);
        for test in ["SET", "GET", "INCR"] {
            assert!(
                out.lines()
                    .any(|l| l.contains(&format!("{test}: ")) && l.contains("requests per second")),
                "redis-benchmark {extra:?} reported no {test} figure: {out}"
            );
        }
    }
}

#[test]
fn t96_redis_crate_cluster_client_keeps_working_when_leaders_move() {
    let mut cluster = Cluster::start(3, 4, RaftOptions::default());
    let urls: Vec<String> = cluster
        .ids()
        .iter()
        .map(|&id| format!("redis://127.0.0.1:{}/", port(&cluster, id)))
        .collect();
    let client = redis::cluster::ClusterClient::builder(urls)
        .retries(10)
        .build()
        .unwrap();
    let mut conn = client.get_connection().unwrap();
    for i in 0..200 {
        let () = conn.set(format!("rs:{i}"), i).unwrap();
    }
    let values: Vec<i64> = (0..200).map(|i| conn.get(format!("rs:{i}")).unwrap()).collect();
    assert_eq!(values, (0..200).collect::<Vec<_>>());
    let () = redis::cmd("HSET")
        .arg("rs:h")
        .arg("f")
        .arg("v")
        .query(&mut conn)
        .map(|_: i64| ())
        .unwrap();

    // The node leading the most shards dies and comes back: its shards are
    // led elsewhere meanwhile. (This client reconnects to a dead address
    // rather than re-reading the slot map, against Redis Cluster too, so
    // the node is restarted; the client then gets -MOVED or is forwarded.)
    let victim = busiest_leader(&cluster);
    cluster.kill(victim);
    std::thread::sleep(Duration::from_secs(2));
    cluster.start_node(victim);
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 200..300 {
        loop {
            match conn.set::<_, _, ()>(format!("rs:{i}"), i) {
                Ok(()) => break,
                Err(err) => {
                    assert!(Instant::now() < deadline, "SET rs:{i} still failing: {err}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    for i in 0..300 {
        let value: i64 = conn.get(format!("rs:{i}")).unwrap();
        assert_eq!(value, i, "rs:{i}");
    }
}

#[test]
fn t97_redis_py_cluster_client_follows_leaders_that_move() {
    let mut cluster = Cluster::start(3, 4, RaftOptions::default());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/redis_py_cluster.py");
    // Debian's python3 carries python3-redis; another python3 first on the
    // PATH may not.
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let victim = busiest_leader(&cluster);
    let survivor = cluster.ids().into_iter().find(|&id| id != victim).unwrap();
    let p = port(&cluster, survivor);
    assert!(run(python, &[script, &p, "write"]).contains("written"));
    cluster.kill(victim);
    assert!(run(python, &[script, &p, "after-failover"]).contains("read back"));
}

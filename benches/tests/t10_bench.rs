//! `cairn-bench run`, `compare`, `memory` and `shards` end to end, briefly (this
//! checks the tools work, not how fast anything is): against a
//! redis-server, and against a Cairn cluster both plain and cluster-aware
//! with pipelining, with the JSON report a script would read, and clear
//! errors for bad options.

#[path = "../../server/tests/fixtures/mod.rs"]
mod fixtures;

use std::process::Command;

use cairn_server::config::RaftOptions;
use fixtures::{Cluster, Redis};

const BENCH: &str = env!("CARGO_BIN_EXE_cairn-bench");

/// The tests here start many servers and load them; one at a time, so
/// they never share the machine's two cores or ports in flight.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `cairn-bench run` with short windows; the parsed JSON report.
fn bench(port: u16, extra: &[&str]) -> serde_json::Value {
    let port = port.to_string();
    let mut args = vec![
        "run",
        "-p",
        &port,
        "--keys",
        "500",
        "--warmup",
        "0.2",
        "--duration",
        "1",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = Command::new(BENCH).args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cairn-bench {args:?}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn assert_clean(report: &serde_json::Value, what: &str) {
    assert!(report["ops"].as_u64().unwrap() > 0, "{what}: no operations: {report}");
    assert_eq!(report["errors"].as_u64(), Some(0), "{what}: {report}");
    let (p50, max) = (report["p50_ms"].as_f64().unwrap(), report["max_ms"].as_f64().unwrap());
    assert!(p50 > 0.0 && p50 <= max, "{what}: {report}");
}

#[test]
fn t10_bench_drives_redis_and_cairn() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let redis = Redis::start();
    let redis_port = redis.client_port();
    for workload in ["get", "set", "a", "f"] {
        assert_clean(&bench(redis_port, &["--workload", workload, "-c", "4"]), workload);
    }

    let cluster = Cluster::start(3, 4, RaftOptions::default());
    let port = cluster.topology.node(1).unwrap().resp_addr.port();
    assert_clean(&bench(port, &["--workload", "b", "-c", "4"]), "plain");
    let zipfian = [
        "--workload",
        "a",
        "-c",
        "2",
        "--pipeline",
        "8",
        "--cluster",
        "--distribution",
        "zipfian",
    ];
    assert_clean(&bench(port, &zipfian), "cluster-aware, pipelined");

    let out = Command::new(BENCH).args(["run", "--pipeline", "0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pipeline"));
}

#[test]
fn t20_compare_runs_every_peer_and_stops_them() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(BENCH)
        .args([
            "compare",
            "--workloads",
            "get,set",
            "--keys",
            "200",
            "-c",
            "2",
            "--warmup",
            "0",
        ])
        .args([
            "--duration",
            "0.5",
            "--redis-benchmark-requests",
            "500",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cairn-bench compare: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = report["runs"].as_array().unwrap();
    let peers: Vec<&str> = runs.iter().map(|r| r["peer"].as_str().unwrap()).collect();
    assert_eq!(
        peers,
        [
            "redis no persistence",
            "redis appendfsync always",
            "etcd 3 members",
            "cairn 3 zones",
            "cairn grpc (cairn-client)"
        ]
        .repeat(2)
    );
    for run in runs {
        let what = format!("{} {}", run["workload"], run["peer"]);
        assert_clean(run, &what);
        // Each run is charged the CPU time its server's processes spent.
        assert!(run["server_cpu_us_per_op"].as_f64().unwrap() > 0.0, "{what}: {run}");
    }
    // GET at half of each Redis-protocol server's peak, with no more
    // connections than the peak run had.
    let half_peaks = report["get_at_half_peak"].as_array().unwrap();
    let measured: Vec<&str> = half_peaks.iter().map(|r| r["peer"].as_str().unwrap()).collect();
    assert_eq!(
        measured,
        ["redis no persistence", "redis appendfsync always", "cairn 3 zones"]
    );
    for half_peak in half_peaks {
        assert_clean(half_peak, &format!("half of peak on {}", half_peak["peer"]));
        let connections = half_peak["connections"].as_u64().unwrap();
        assert!((1..=2).contains(&connections), "{half_peak}");
        assert!(half_peak["peak_ops_per_sec"].as_f64().unwrap() > 0.0, "{half_peak}");
    }
    let benchmarks = report["redis_benchmark"].as_array().unwrap();
    assert_eq!(
        benchmarks.len(),
        3 * 2,
        "SET and GET for each Redis-protocol peer: {benchmarks:?}"
    );
    // Nothing it started outlives it.
    let left = Command::new("pgrep").args(["-f", "cairn-bench-"]).output().unwrap();
    assert!(left.stdout.is_empty(), "{}", String::from_utf8_lossy(&left.stdout));
}

#[test]
fn t30_memory_measures_every_process_and_a_restart() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(BENCH)
        .args(["memory", "--keys", "5000", "-c", "4", "--output", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cairn-bench memory: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let memory = report["memory"].as_array().unwrap();
    let processes: Vec<&str> = memory.iter().map(|m| m["process"].as_str().unwrap()).collect();
    assert_eq!(
        processes,
        ["redis-server", "cairn node 1", "cairn node 2", "cairn node 3"]
    );
    for m in memory {
        assert!(m["rss_after"].as_u64().unwrap() > 0, "{m}");
    }
    assert!(
        memory[0]["used_memory_per_key"].as_f64().unwrap() > 0.0,
        "{}",
        memory[0]
    );
    // The restarted node held every key (plus the readiness probes) again.
    let recovery = &report["recovery"];
    assert!(recovery["keys"].as_u64().unwrap() >= 5000, "{recovery}");
    assert!(
        recovery["recovered_ms"].as_f64().unwrap() >= recovery["answered_ms"].as_f64().unwrap(),
        "{recovery}"
    );
    let left = Command::new("pgrep").args(["-f", "cairn-bench-"]).output().unwrap();
    assert!(left.stdout.is_empty(), "{}", String::from_utf8_lossy(&left.stdout));
}

#[test]
fn t40_shards_runs_a_cluster_of_each_count_in_turn() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(BENCH)
        .args([
            "shards",
            "--counts",
            "1,2",
            "--fsync",
            "always,never",
            "--workloads",
            "set,get",
        ])
        .args([
            "--keys",
            "200",
            "-c",
            "2",
            "--warmup",
            "0",
            "--duration",
            "0.5",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cairn-bench shards: {stderr}");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs: Vec<(u64, &str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |field: &str| r[field].as_str().unwrap();
            (r["shards"].as_u64().unwrap(), text("fsync"), text("workload"))
        })
        .collect();
    let each = |shards| {
        [
            (shards, "always", "set"),
            (shards, "always", "get"),
            (shards, "never", "set"),
            (shards, "never", "get"),
        ]
    };
    assert_eq!(runs, [each(1), each(2)].concat());
    for row in rows.as_array().unwrap() {
        let what = format!(
            "{} on {} shards, fsync {}",
            row["workload"], row["shards"], row["fsync"]
        );
        assert_clean(row, &what);
        // What the writes cost the nodes: CPU, and with fsync always, the
        // fsyncs that covered them; with fsync never, none.
        if row["workload"] == "set" {
            assert!(row["cpu_us_per_op"].as_f64().unwrap() > 0.0, "{what}: {row}");
            let per_fsync = &row["ops_per_fsync"];
            match row["fsync"].as_str().unwrap() {
                "always" => assert!(per_fsync.as_f64().unwrap() > 0.0, "{what}: {row}"),
                _ => assert!(per_fsync.is_null(), "{what}: {row}"),
            }
        }
    }
    let left = Command::new("pgrep").args(["-f", "cairn-bench-"]).output().unwrap();
    assert!(left.stdout.is_empty(), "{}", String::from_utf8_lossy(&left.stdout));

    let out = Command::new(BENCH)
        .args(["shards", "--counts", "3,0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--counts") && stderr.contains("got 0"), "{stderr}");
}

//! `cairn-bench compare`: Cairn next to its peers, on this machine, in one
//! run.
//!
//! It starts, each on loopback ports of its own and in a temporary
//! directory: `redis-server` twice (no persistence, and `appendfsync
//! always`, which fsyncs every write as Cairn does), a 3-member etcd
//! cluster, and a Cairn dev cluster (3 zones, fsync always), which is
//! driven twice: over the Redis protocol and over its gRPC API. Then it runs
//! each workload against each of them in turn with the same generator and
//! settings, prints one table with Cairn's ratio to each peer, and runs
//! redis-benchmark against Redis and Cairn with the same flags so the
//! figures people know sit beside ours. Without pipelining it also
//! measures each Redis-protocol server's GET latency at half of its own
//! peak ([`crate::half_peak`]). Everything it started is stopped when it
//! ends, fails or is interrupted.
//!
//! Each run also says what an operation cost the server: the CPU time of
//! its processes over the measured window (Redis, the three etcd members,
//! the three Cairn nodes; [`crate::cost`]) per operation. On a machine
//! whose cores the servers share with the generator, throughput alone
//! does not say whether a server was held back by its own work or by
//! waiting (Redis with `appendfsync always` waits for its disk, with
//! CPU to spare).

use std::net::SocketAddr;
use std::process::Command;

use anyhow::Context;
use serde::Serialize;

use crate::cost::{cpu_ticks_of, cpu_us_per_op};
use crate::half_peak::{self, HalfPeak};
use crate::peers::{Peer, cairn, etcd, redis};
use crate::report::{Measured, Output, machine, today};
use crate::runner::{self, Load, Target};
use crate::workload::Workload;

/// One row of the comparison.
#[derive(Serialize)]
struct Row {
    workload: Workload,
    peer: String,
    #[serde(flatten)]
    measured: Measured,
    /// The server's CPU time per operation, in µs.
    server_cpu_us_per_op: f64,
}

/// A server's GET latency at half of its peak.
#[derive(Serialize)]
struct HalfPeakRow {
    peer: String,
    #[serde(flatten)]
    half_peak: HalfPeak,
}

/// What the comparison runs.
pub struct Plan {
    /// Workloads, in order.
    pub workloads: Vec<Workload>,
    /// The load shape shared by every run (its target is replaced).
    pub load: Load,
    /// Requests per redis-benchmark test (0: skip redis-benchmark).
    pub redis_benchmark_requests: u64,
    /// How to print the results.
    pub output: Output,
}

/// Runs the comparison.
pub async fn run(plan: Plan) -> anyhow::Result<()> {
    // Every started process names this directory, so a leftover is easy
    // to find (`pgrep -f cairn-bench-`).
    let dir = tempfile::Builder::new().prefix("cairn-bench-").tempdir()?;
    eprintln!(
        "starting redis-server ×2, etcd ×3, cairn dev in {}",
        dir.path().display()
    );
    let mut peers = vec![
        redis(dir.path(), false).await?,
        redis(dir.path(), true).await?,
        etcd(dir.path()).await?,
    ];
    peers.extend(cairn(dir.path()).await?);
    let mut rows = Vec::new();
    for &workload in &plan.workloads {
        for peer in &peers {
            if workload == Workload::F && matches!(peer.target, Target::Etcd { .. }) {
                continue;
            }
            eprintln!("{workload:?} on {}", peer.name);
            let load = Load {
                target: peer.target.clone(),
                workload,
                ..plan.load.clone()
            };
            let (measured, server_cpu_us_per_op) = measure(load, peer)
                .await
                .with_context(|| format!("{workload:?} on {}", peer.name))?;
            rows.push(Row {
                workload,
                peer: peer.name.clone(),
                measured,
                server_cpu_us_per_op,
            });
        }
    }
    let mut half_peaks = Vec::new();
    if plan.load.pipeline == 1 {
        for peer in peers.iter().filter(|p| matches!(p.target, Target::Resp { .. })) {
            let Some(peak) = rows
                .iter()
                .find(|r| r.workload == Workload::Get && r.peer == peer.name)
                .map(|r| r.measured.ops_per_sec)
            else {
                continue;
            };
            let load = Load {
                target: peer.target.clone(),
                workload: Workload::Get,
                ..plan.load.clone()
            };
            let half_peak = half_peak::measure(&load, peak)
                .await
                .with_context(|| format!("GET at half of the peak on {}", peer.name))?;
            half_peaks.push(HalfPeakRow {
                peer: peer.name.clone(),
                half_peak,
            });
        }
    }
    let mut benchmarks = Vec::new();
    if plan.redis_benchmark_requests > 0 {
        for peer in &peers {
            if let Target::Resp { addr, cluster } = &peer.target {
                for line in redis_benchmark(*addr, *cluster, &plan)? {
                    benchmarks.push(BenchmarkLine {
                        peer: peer.name.clone(),
                        line,
                    });
                }
            }
        }
    }
    match plan.output {
        Output::Json => {
            let report = serde_json::json!({
                "runs": rows,
                "get_at_half_peak": half_peaks,
                "redis_benchmark": benchmarks,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Output::Table => {
            println!("{}", plan.load.shape());
            println!("{} {:>16}", Measured::header(), "server cpu µs/op");
            for row in &rows {
                println!(
                    "{} {:>16.1}",
                    row.measured
                        .row(&format!("{:?} {}", row.workload, row.peer).to_lowercase()),
                    row.server_cpu_us_per_op
                );
            }
            println!();
            for line in ratios(&rows, &plan.workloads) {
                println!("{line}");
            }
            for row in &half_peaks {
                let h = &row.half_peak;
                println!(
                    "get at half of peak: {} with {} connections: {:.0} ops/s ({:.2} of {:.0}), p50 {:.3} ms, p99 {:.3} ms",
                    row.peer,
                    h.connections,
                    h.measured.ops_per_sec,
                    h.share_of_peak(),
                    h.peak_ops_per_sec,
                    h.measured.p50_ms,
                    h.measured.p99_ms
                );
            }
            for b in &benchmarks {
                println!("redis-benchmark {:<26} {}", b.peer, b.line);
            }
        }
        Output::Markdown => print_markdown(&rows, &half_peaks, &benchmarks, &plan),
    }
    Ok(())
}

/// Runs `load` against `peer`: what the generator measured, and the CPU
/// time the peer's servers spent per operation over the measured window.
async fn measure(load: Load, peer: &Peer) -> anyhow::Result<(Measured, f64)> {
    let running = runner::start(load).await?;
    let read = || std::future::ready(cpu_ticks_of(&peer.server_pids));
    let (measured, before, after) = running.finish_reading(read).await?;
    let cpu = cpu_us_per_op(after.saturating_sub(before), measured.ops);
    Ok((measured, cpu))
}

/// Cairn's throughput over each peer's, per workload and per way of
/// driving Cairn.
fn ratios(rows: &[Row], workloads: &[Workload]) -> Vec<String> {
    let mut lines = Vec::new();
    for &workload in workloads {
        let of = |peer: &str| {
            rows.iter()
                .find(|r| r.workload == workload && r.peer.starts_with(peer))
                .map(|r| r.measured.ops_per_sec)
        };
        let cairns = rows
            .iter()
            .filter(|r| r.workload == workload && r.peer.starts_with("cairn"));
        for cairn in cairns {
            let ratios: Vec<String> = ["redis no persistence", "redis appendfsync always", "etcd"]
                .iter()
                .filter_map(|peer| of(peer).map(|ops| format!("{:.2}× {peer}", cairn.measured.ops_per_sec / ops)))
                .collect();
            lines.push(format!(
                "{}: {} = {}",
                format!("{workload:?}").to_lowercase(),
                cairn.peer,
                ratios.join(", ")
            ));
        }
    }
    lines
}

/// The comparison as a Markdown report.
fn print_markdown(rows: &[Row], half_peaks: &[HalfPeakRow], benchmarks: &[BenchmarkLine], plan: &Plan) {
    println!("## cairn-bench compare\n");
    println!(
        "Machine: {}. Date: {}. Command: `make benchmarks`.\n",
        machine(),
        today()
    );
    println!("{}.\n", plan.load.shape());
    let (header, alignment) = Measured::MARKDOWN_HEADER;
    println!("| workload | server | {header} server CPU µs/op |");
    println!("|---|---|{alignment}---:|");
    for row in rows {
        println!(
            "| {} | {} | {} {:.1} |",
            format!("{:?}", row.workload).to_lowercase(),
            row.peer,
            row.measured.markdown_cells(),
            row.server_cpu_us_per_op
        );
    }
    println!("\nCairn's throughput over each peer's:\n");
    for line in ratios(rows, &plan.workloads) {
        println!("- {line}");
    }
    if !half_peaks.is_empty() {
        println!(
            "\nGET at half of each server's peak: the fewest connections that reach half of the throughput above (closed loop):\n"
        );
        println!("| server | connections | ops/s | share of peak | p50 ms | p99 ms | p99.9 ms |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for row in half_peaks {
            let h = &row.half_peak;
            println!(
                "| {} | {} | {:.0} | {:.2} | {:.3} | {:.3} | {:.3} |",
                row.peer,
                h.connections,
                h.measured.ops_per_sec,
                h.share_of_peak(),
                h.measured.p50_ms,
                h.measured.p99_ms,
                h.measured.p999_ms
            );
        }
    }
    if !benchmarks.is_empty() {
        println!("\nredis-benchmark with the same connections, pipeline, value size and key space:\n");
        println!("| server | result |");
        println!("|---|---|");
        for b in benchmarks {
            println!("| {} | {} |", b.peer, b.line);
        }
    }
}

/// A figure redis-benchmark printed.
#[derive(Serialize)]
struct BenchmarkLine {
    peer: String,
    line: String,
}

/// redis-benchmark with the comparison's connections and pipeline: its
/// `requests per second` lines.
fn redis_benchmark(addr: SocketAddr, cluster: bool, plan: &Plan) -> anyhow::Result<Vec<String>> {
    let mut args = vec![
        "-h".to_string(),
        addr.ip().to_string(),
        "-p".into(),
        addr.port().to_string(),
        "-t".into(),
        "set,get".into(),
        "-n".into(),
        plan.redis_benchmark_requests.to_string(),
        "-c".into(),
        plan.load.connections.to_string(),
        "-P".into(),
        plan.load.pipeline.to_string(),
        "-d".into(),
        plan.load.value_size.to_string(),
        "-r".into(),
        plan.load.keys.to_string(),
        "-q".into(),
    ];
    if cluster {
        args.push("--cluster".into());
    }
    let output = Command::new("redis-benchmark")
        .args(&args)
        .output()
        .context("cannot run redis-benchmark (scripts/setup installs redis-tools)")?;
    let text = String::from_utf8_lossy(&output.stdout).replace('\r', "\n");
    Ok(text
        .lines()
        .filter(|l| l.contains("requests per second"))
        .map(|l| l.trim().to_string())
        .collect())
}

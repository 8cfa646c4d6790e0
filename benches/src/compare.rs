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
//! figures people know sit beside ours. Everything it started is stopped
//! when it ends, fails or is interrupted.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::report::Measured;
use crate::resp::Connection;
use crate::runner::{self, Load, Target};
use crate::workload::Workload;

/// A process started for the comparison, stopped when dropped: with
/// SIGTERM first (`cairn-server dev` then stops its nodes), then SIGKILL
/// if it has not exited within 20 s.
struct Started {
    name: String,
    child: Child,
}

impl Drop for Started {
    fn drop(&mut self) {
        // Already exited (and reaped): its pid may belong to another
        // process by now, so it must not be signalled.
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(name: &str, program: &Path, args: &[String], log: &Path) -> anyhow::Result<Started> {
    let log = std::fs::File::create(log)?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {} (scripts/setup installs it)", program.display()))?;
    Ok(Started {
        name: name.into(),
        child,
    })
}

/// A loopback port free right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Waits until a Redis-protocol server at `addr` answers `probe` with
/// anything but an error.
async fn wait_resp(started: &mut Started, addr: SocketAddr, probe: &[&[u8]]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut conn) = Connection::open(addr).await
            && let Ok(reply) = conn.call(probe).await
            && !matches!(reply, crate::resp::Value::Error(_))
        {
            return Ok(());
        }
        if let Some(status) = started.child.try_wait()? {
            anyhow::bail!("{} exited ({status}) before answering", started.name);
        }
        anyhow::ensure!(Instant::now() < deadline, "{} did not answer within 30 s", started.name);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One peer under load.
struct Peer {
    name: String,
    target: Target,
    /// Kept alive while the peer is measured.
    _processes: Vec<Started>,
}

async fn redis(dir: &Path, fsync: bool) -> anyhow::Result<Peer> {
    let port = free_port()?;
    let data = dir.join(if fsync { "redis-fsync" } else { "redis" });
    std::fs::create_dir_all(&data)?;
    let mut args: Vec<String> = ["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--dir".into(), data.display().to_string()]);
    if fsync {
        args.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
    } else {
        args.extend(["--appendonly", "no"].map(String::from));
    }
    let name = if fsync {
        "redis appendfsync always"
    } else {
        "redis no persistence"
    };
    let mut started = start(name, Path::new("redis-server"), &args, &data.join("log"))?;
    wait_resp(&mut started, loopback(port), &[b"PING"]).await?;
    Ok(Peer {
        name: name.into(),
        target: Target::Resp {
            addr: loopback(port),
            cluster: false,
        },
        _processes: vec![started],
    })
}

async fn etcd(dir: &Path) -> anyhow::Result<Peer> {
    let members: Vec<(String, u16, u16)> = (1..=3)
        .map(|i| Ok((format!("m{i}"), free_port()?, free_port()?)))
        .collect::<anyhow::Result<_>>()?;
    let cluster = members
        .iter()
        .map(|(name, _, peer)| format!("{name}=http://127.0.0.1:{peer}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut processes = Vec::new();
    for (name, client, peer) in &members {
        let data = dir.join(format!("etcd-{name}"));
        std::fs::create_dir_all(&data)?;
        let args = [
            "--name".into(),
            name.clone(),
            "--data-dir".into(),
            data.join("data").display().to_string(),
            "--listen-client-urls".into(),
            format!("http://127.0.0.1:{client}"),
            "--advertise-client-urls".into(),
            format!("http://127.0.0.1:{client}"),
            "--listen-peer-urls".into(),
            format!("http://127.0.0.1:{peer}"),
            "--initial-advertise-peer-urls".into(),
            format!("http://127.0.0.1:{peer}"),
            "--initial-cluster".into(),
            cluster.clone(),
            "--initial-cluster-state".into(),
            "new".into(),
        ];
        processes.push(start(
            &format!("etcd {name}"),
            Path::new("etcd"),
            &args,
            &data.join("log"),
        )?);
    }
    let endpoints: Vec<String> = members.iter().map(|(_, c, _)| format!("127.0.0.1:{c}")).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = async {
            let mut client = etcd_client::Client::connect(&endpoints, None).await?;
            client.put("cairn-bench-ready", "1", None).await?;
            anyhow::Ok(())
        };
        if ready.await.is_ok() {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the etcd cluster did not answer within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(Peer {
        name: "etcd 3 members".into(),
        target: Target::Etcd { endpoints },
        _processes: processes,
    })
}

/// `cairn-server` from the same build as this binary.
fn cairn_server() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("cairn-server");
    anyhow::ensure!(
        path.exists(),
        "{} is missing: build it with cargo build --release -p cairn-server",
        path.display()
    );
    Ok(path)
}

/// The Cairn cluster, as two peers: through the Redis protocol
/// (cluster-aware) and through its gRPC API.
async fn cairn(dir: &Path) -> anyhow::Result<[Peer; 2]> {
    // `dev` uses the port and the 22 above it.
    let port = loop {
        let port = free_port()?;
        if port < 65_000 && (0..=22).all(|off| TcpListener::bind(("127.0.0.1", port + off)).is_ok()) {
            break port;
        }
    };
    let cluster_dir = dir.join("cairn");
    let args = [
        "dev".into(),
        "--dir".into(),
        cluster_dir.display().to_string(),
        "--port".into(),
        port.to_string(),
    ];
    let mut started = start("cairn dev", &cairn_server()?, &args, &dir.join("cairn.log"))?;
    // Ready once a write to every shard goes through: a SET per node.
    for node in 0..3u16 {
        let addr = loopback(port + 10 * node);
        wait_resp(
            &mut started,
            addr,
            &[b"SET", format!("cairn-bench:{node}").as_bytes(), b"1"],
        )
        .await?;
    }
    // Node 1's gRPC port is two above its RESP port.
    let grpc = Peer {
        name: "cairn grpc (cairn-client)".into(),
        target: Target::Grpc {
            seed: format!("127.0.0.1:{}", port + 2),
        },
        _processes: Vec::new(),
    };
    let resp = Peer {
        name: "cairn 3 zones".into(),
        target: Target::Resp {
            addr: loopback(port),
            cluster: true,
        },
        _processes: vec![started],
    };
    Ok([resp, grpc])
}

/// One row of the comparison.
#[derive(Serialize)]
struct Row {
    workload: Workload,
    peer: String,
    #[serde(flatten)]
    measured: Measured,
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

/// How `compare` prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Plain-text tables.
    Table,
    /// One JSON document.
    Json,
    /// A Markdown report (what `make benchmarks` writes to BENCHMARKS.md).
    Markdown,
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
            let measured = runner::run(load)
                .await
                .with_context(|| format!("{workload:?} on {}", peer.name))?;
            rows.push(Row {
                workload,
                peer: peer.name.clone(),
                measured,
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
            let report = serde_json::json!({ "runs": rows, "redis_benchmark": benchmarks });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Output::Table => {
            println!("{}", shape(&plan.load));
            println!("{}", Measured::header());
            for row in &rows {
                println!(
                    "{}",
                    row.measured
                        .row(&format!("{:?} {}", row.workload, row.peer).to_lowercase())
                );
            }
            println!();
            for line in ratios(&rows, &plan.workloads) {
                println!("{line}");
            }
            for b in &benchmarks {
                println!("redis-benchmark {:<26} {}", b.peer, b.line);
            }
        }
        Output::Markdown => print_markdown(&rows, &benchmarks, &plan),
    }
    Ok(())
}

/// The load's settings in one line.
fn shape(load: &Load) -> String {
    format!(
        "{} connections, pipeline {}, {} keys of {} B, values of {} B, {} keys, {:.0} s measured after {:.0} s \
         of warm-up",
        load.connections,
        load.pipeline,
        load.keys,
        load.key_size,
        load.value_size,
        format!("{:?}", load.distribution).to_lowercase(),
        load.duration.as_secs_f64(),
        load.warmup.as_secs_f64()
    )
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

/// The machine, for reports: cores and memory.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let kib: u64 = info.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib / (1024 * 1024))
        })
        .unwrap_or(0);
    format!("{cores} cores, {mem_gib} GiB")
}

fn print_markdown(rows: &[Row], benchmarks: &[BenchmarkLine], plan: &Plan) {
    let date = Command::new("date")
        .args(["-u", "+%F"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("## cairn-bench compare\n");
    println!("Machine: {}. Date: {date}. Command: `make benchmarks`.\n", machine());
    println!("{}.\n", shape(&plan.load));
    println!("| workload | server | ops/s | p50 ms | p99 ms | p99.9 ms | max ms | errors |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let m = &row.measured;
        println!(
            "| {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
            format!("{:?}", row.workload).to_lowercase(),
            row.peer,
            m.ops_per_sec,
            m.p50_ms,
            m.p99_ms,
            m.p999_ms,
            m.max_ms,
            m.errors
        );
    }
    println!("\nCairn's throughput over each peer's:\n");
    for line in ratios(rows, &plan.workloads) {
        println!("- {line}");
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

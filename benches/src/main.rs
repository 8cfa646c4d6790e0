//! `cairn-bench`: load for Cairn and for the stores it is compared with.
//!
//! `cairn-bench run -p 6379 --workload a --connections 50 --pipeline 16
//! --cluster --json` drives one server or cluster: anything that speaks
//! the Redis protocol, plain (every operation to one node, as a plain
//! client does) or cluster-aware (`--cluster`: straight to the node serving
//! each key's slot), Cairn's gRPC API through cairn-client (`--grpc`), or
//! etcd (`--etcd`). `cairn-bench compare` starts Redis,
//! etcd and a Cairn dev cluster and runs the same workloads against each
//! (see [`compare`]); `cairn-bench memory` loads the same keys into Redis
//! and Cairn, compares their memory and times a Cairn node's restart (see
//! [`memory`]); `cairn-bench shards` runs a load against Cairn dev clusters
//! of several shard counts in turn (see [`shards`]). Workloads are YCSB's
//! mixes (see [`workload`]); the key space is loaded first for workloads
//! that read; after a warm-up a fixed window is measured into HDR
//! histograms, and throughput with p50/p99/p99.9/max latency is printed as
//! a table, or as JSON.

mod compare;
mod cost;
mod etcd;
mod grpc;
mod half_peak;
mod memory;
mod peers;
mod report;
mod resp;
mod runner;
mod shards;
mod workload;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use cairn_proto::slot::SLOTS;
use clap::{Parser, Subcommand};

use report::Measured;
use runner::{Load, Target};
use workload::{KeyDistribution, Workload};

#[derive(Parser)]
#[command(name = "cairn-bench", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one workload against one server or cluster.
    Run(RunArgs),
    /// Starts Redis, etcd and Cairn on this machine and runs the same
    /// workloads against each, with Cairn's ratios to each.
    Compare(CompareArgs),
    /// Loads the same keys into Redis and into a Cairn dev cluster and
    /// compares their memory; then times a Cairn node's restart after a
    /// crash.
    Memory(MemoryArgs),
    /// Runs the same load against Cairn dev clusters of each shard count
    /// in turn: how writes batch per Raft group on this machine.
    Shards(ShardsArgs),
}

/// Key and value sizes, shared by every subcommand.
#[derive(clap::Args)]
struct Sizes {
    /// Bytes per key.
    #[arg(long, default_value_t = 16)]
    key_size: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 64)]
    value_size: usize,
}

/// The shape of the load, shared by `run` and `compare`.
#[derive(clap::Args)]
struct Shape {
    /// How keys are drawn.
    #[arg(long, value_enum, default_value_t = KeyDistribution::Uniform)]
    distribution: KeyDistribution,
    /// Keys in the key space.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    #[command(flatten)]
    sizes: Sizes,
    /// Connections (per node with --cluster).
    #[arg(short, long, default_value_t = 50)]
    connections: usize,
    /// Operations in flight per connection.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Skip loading the key space first.
    #[arg(long)]
    no_load: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Host of the server (or of any cluster node).
    #[arg(short = 'H', long, default_value = "127.0.0.1")]
    host: String,
    /// Its port (Redis protocol, or etcd's client port with --etcd).
    #[arg(short, long, default_value_t = 6379)]
    port: u16,
    /// Route each key to the node serving its slot (`CLUSTER SLOTS`).
    #[arg(long, conflicts_with = "etcd")]
    cluster: bool,
    /// The server is etcd: linearizable gets and puts.
    #[arg(long, conflicts_with = "grpc")]
    etcd: bool,
    /// Use Cairn's gRPC API through cairn-client (the port is a node's
    /// gRPC port).
    #[arg(long, conflicts_with = "cluster")]
    grpc: bool,
    /// The operation mix.
    #[arg(long, value_enum, default_value_t = Workload::Get)]
    workload: Workload,
    #[command(flatten)]
    shape: Shape,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct CompareArgs {
    /// Workloads, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "get,set")]
    workloads: Vec<Workload>,
    #[command(flatten)]
    shape: Shape,
    /// Requests per redis-benchmark test run beside ours (0: none).
    #[arg(long, default_value_t = 100_000)]
    redis_benchmark_requests: u64,
    /// How to print the results.
    #[arg(long, value_enum, default_value_t = report::Output::Table)]
    output: report::Output,
}

#[derive(clap::Args)]
struct ShardsArgs {
    /// Shard counts, in order; a cluster of each is started in turn.
    #[arg(long, value_delimiter = ',', default_value = "1,3,8")]
    counts: Vec<u16>,
    /// When the nodes fsync their Raft logs, in order: a cluster of each
    /// count is started for each.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "always")]
    fsync: Vec<peers::Fsync>,
    /// Workloads run against each cluster, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "set")]
    workloads: Vec<Workload>,
    #[command(flatten)]
    shape: Shape,
    /// How to print the results.
    #[arg(long, value_enum, default_value_t = report::Output::Table)]
    output: report::Output,
}

#[derive(clap::Args)]
struct MemoryArgs {
    /// Keys loaded.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    #[command(flatten)]
    sizes: Sizes,
    /// Loading connections (per node for Cairn).
    #[arg(short, long, default_value_t = 50)]
    connections: usize,
    /// How to print the results.
    #[arg(long, value_enum, default_value_t = report::Output::Table)]
    output: report::Output,
}

impl Shape {
    /// A load of this shape for runs that each set their own target and
    /// workload (`compare`, `shards`), checked.
    fn template(&self) -> Result<Load, String> {
        self.load(Target::Etcd { endpoints: Vec::new() }, Workload::Get)
    }

    /// A load of `workload` against `target`, checked.
    fn load(&self, target: Target, workload: Workload) -> Result<Load, String> {
        let seconds = |name: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(format!("--{name} must be a number of seconds ≥ 0, got {value}"))
            }
        };
        if self.keys == 0 || self.connections == 0 || self.pipeline == 0 {
            return Err("--keys, --connections and --pipeline must be at least 1".into());
        }
        let duration = seconds("duration", self.duration)?;
        if duration.is_zero() {
            return Err("--duration must be more than 0 seconds".into());
        }
        Ok(Load {
            target,
            workload,
            distribution: self.distribution,
            keys: self.keys,
            key_size: self.sizes.key_size,
            value_size: self.sizes.value_size,
            connections: self.connections,
            pipeline: self.pipeline,
            warmup: seconds("warmup", self.warmup)?,
            duration,
            preload: !self.no_load,
        })
    }
}

impl RunArgs {
    fn load(&self) -> Result<Load, String> {
        let target = if self.grpc {
            Target::Grpc {
                seed: format!("{}:{}", self.host, self.port),
            }
        } else if self.etcd {
            if self.workload == Workload::F {
                return Err("workload f (INCR) has no single etcd request; use get, set, a, b or c".into());
            }
            Target::Etcd {
                endpoints: vec![format!("{}:{}", self.host, self.port)],
            }
        } else {
            let addr: SocketAddr = (self.host.as_str(), self.port)
                .to_socket_addrs()
                .map_err(|e| format!("--host {}: {e}", self.host))?
                .next()
                .ok_or_else(|| format!("--host {}: no address", self.host))?;
            Target::Resp {
                addr,
                cluster: self.cluster,
            }
        };
        self.shape.load(target, self.workload)
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let load = args.load().map_err(anyhow::Error::msg)?;
    let label = format!("{:?} c={} P={}", load.workload, load.connections, load.pipeline).to_lowercase();
    let measured = runner::run(load).await?;
    if args.json {
        println!("{}", serde_json::to_string(&measured)?);
    } else {
        println!("{}", Measured::header());
        println!("{}", measured.row(&label));
    }
    Ok(())
}

async fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let load = args.shape.template().map_err(anyhow::Error::msg)?;
    compare::run(compare::Plan {
        workloads: args.workloads,
        load,
        redis_benchmark_requests: args.redis_benchmark_requests,
        output: args.output,
    })
    .await
}

async fn shards(args: ShardsArgs) -> anyhow::Result<()> {
    if let Some(bad) = args.counts.iter().find(|&&n| n == 0 || n > SLOTS) {
        anyhow::bail!("--counts: a cluster has 1 to {SLOTS} shards, got {bad}");
    }
    let load = args.shape.template().map_err(anyhow::Error::msg)?;
    shards::run(shards::Plan {
        counts: args.counts,
        fsyncs: args.fsync,
        workloads: args.workloads,
        load,
        output: args.output,
    })
    .await
}

async fn memory(args: MemoryArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.keys > 0 && args.connections > 0,
        "--keys and --connections must be at least 1"
    );
    memory::run(memory::Plan {
        keys: args.keys,
        key_size: args.sizes.key_size,
        value_size: args.sizes.value_size,
        connections: args.connections,
        output: args.output,
    })
    .await
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let work = async {
        match Args::parse().command {
            Command::Run(args) => run(args).await,
            Command::Compare(args) => compare(args).await,
            Command::Memory(args) => memory(args).await,
            Command::Shards(args) => shards(args).await,
        }
    };
    // Interrupted, the work is dropped, and with it every process a
    // comparison started.
    let result = tokio::select! {
        result = work => result,
        () = interrupted() => Err(anyhow::anyhow!("interrupted; everything started was stopped")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cairn-bench: {err:#}");
            ExitCode::from(1)
        }
    }
}

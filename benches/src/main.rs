//! `cairn-bench`: load for Cairn and for the stores it is compared with.
//!
//! `cairn-bench run -p 6379 --workload a --connections 50 --pipeline 16
//! --cluster --json` drives any server that speaks the Redis protocol:
//! plain (every operation to one node, as a plain client does) or
//! cluster-aware (`--cluster`: straight to the node serving each key's
//! slot). Workloads are YCSB's mixes (see [`workload`]); the key space is
//! loaded first for workloads that read; after a warm-up a fixed window is
//! measured into HDR histograms, and throughput with p50/p99/p99.9/max
//! latency is printed as a table, or as JSON with `--json`.

mod report;
mod resp;
mod runner;
mod workload;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use report::Measured;
use runner::Load;
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
}

#[derive(clap::Args)]
struct RunArgs {
    /// Host of the server (or of any cluster node).
    #[arg(short = 'H', long, default_value = "127.0.0.1")]
    host: String,
    /// Its Redis-protocol port.
    #[arg(short, long, default_value_t = 6379)]
    port: u16,
    /// Route each key to the node serving its slot (`CLUSTER SLOTS`).
    #[arg(long)]
    cluster: bool,
    /// The operation mix.
    #[arg(long, value_enum, default_value_t = Workload::Get)]
    workload: Workload,
    /// How keys are drawn.
    #[arg(long, value_enum, default_value_t = KeyDistribution::Uniform)]
    distribution: KeyDistribution,
    /// Keys in the key space.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Bytes per key.
    #[arg(long, default_value_t = 16)]
    key_size: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 64)]
    value_size: usize,
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
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl RunArgs {
    fn load(&self) -> Result<Load, String> {
        let target: SocketAddr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("--host {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("--host {}: no address", self.host))?;
        let positive = |name: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(format!("--{name} must be a number of seconds ≥ 0, got {value}"))
            }
        };
        if self.keys == 0 || self.connections == 0 || self.pipeline == 0 {
            return Err("--keys, --connections and --pipeline must be at least 1".into());
        }
        let duration = positive("duration", self.duration)?;
        if duration.is_zero() {
            return Err("--duration must be more than 0 seconds".into());
        }
        Ok(Load {
            target,
            cluster: self.cluster,
            workload: self.workload,
            distribution: self.distribution,
            keys: self.keys,
            key_size: self.key_size,
            value_size: self.value_size,
            connections: self.connections,
            pipeline: self.pipeline,
            warmup: positive("warmup", self.warmup)?,
            duration,
            preload: !self.no_load && self.workload != Workload::Set,
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let Command::Run(args) = Args::parse().command;
    let load = match args.load() {
        Ok(load) => load,
        Err(err) => {
            eprintln!("cairn-bench: {err}");
            return ExitCode::from(2);
        }
    };
    let label = format!(
        "{:?} c={} P={}{}",
        load.workload,
        load.connections,
        load.pipeline,
        if load.cluster { " cluster" } else { "" }
    )
    .to_lowercase();
    match runner::run(load).await {
        Ok(measured) if args.json => {
            println!("{}", serde_json::to_string(&measured).expect("plain data serializes"));
            ExitCode::SUCCESS
        }
        Ok(measured) => {
            println!("{}", Measured::header());
            println!("{}", measured.row(&label));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cairn-bench: {err:#}");
            ExitCode::from(1)
        }
    }
}

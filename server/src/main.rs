//! `cairn-server`: run one node (`--config FILE`) or a whole local cluster
//! (`dev`). Parses arguments, sets up logging and hands over to the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use cairn_server::config::{
    Durability, FailoverGroupSpec, FailoverOptions, FailoverPolicy, Fsync, LinkLatency, NodeConfig,
};
use cairn_server::dev::{self, DevOptions};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// jemalloc, as Redis uses: it returns freed memory to the system and
/// keeps many small allocations (keys, values) in tight size classes.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Log filter when `RUST_LOG` is not set: Cairn's own events, and only
/// warnings from openraft (its info level narrates every election), less
/// those its replication and heartbeats repeat several times a second for
/// each group while a peer is down (`INFO replication` and `cairn-cli admin
/// status` show which peers lead and follow).
const DEFAULT_LOG: &str = "info,openraft=warn,openraft::replication=error,\
                           openraft::engine::handler::replication_handler=error,openraft::core::heartbeat=error";

/// Cairn: a Redis-protocol key-value store where every write goes through Raft.
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Args {
    /// The node config file (TOML); see docs/example-node.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start a local cluster, one process per node, until Ctrl-C.
    Dev {
        /// Directory for the cluster's files and data (reused if it exists).
        #[arg(long, default_value = "cairn-dev")]
        dir: PathBuf,
        /// RESP port of the first node [default: 6379].
        #[arg(long)]
        port: Option<u16>,
        /// Number of data regions; the first is the primary [default: 2,
        /// with a witness; given, a witness only with --witness].
        #[arg(long)]
        regions: Option<usize>,
        /// Number of zones per data region, one node each [default: 3].
        #[arg(long)]
        zones: Option<usize>,
        /// Add a witness region of one node (the default when --regions is
        /// not given).
        #[arg(long)]
        witness: bool,
        /// When a write is acknowledged: `zone` (a majority of the primary
        /// region's zones) or `witness` (also the witness) [default: zone].
        #[arg(long, value_parser = parse_durability)]
        durability: Option<Durability>,
        /// When each node fsyncs its Raft log: `always` (before a write is
        /// acknowledged) or `never` (a write survives the loss of a
        /// minority of nodes, not a power loss of a majority) [default:
        /// always].
        #[arg(long, value_parser = parse_fsync)]
        fsync: Option<Fsync>,
        /// Fail over only when asked (`CAIRN.FAILOVER`), never by itself.
        #[arg(long)]
        manual_failover: bool,
        /// How long the primary region may be silent before the cluster
        /// fails over by itself, in ms.
        #[arg(long, default_value_t = 10_000)]
        failover_grace_ms: u64,
        /// Number of shards [default: 8].
        #[arg(long)]
        shards: Option<u16>,
        /// A failover group of some shards, for a new cluster, as
        /// NAME:SHARDS[:PRIMARY] (e.g. `orders:0,1:region2`); repeatable.
        /// The shards none names make the group `default`.
        #[arg(long = "failover-group", value_name = "NAME:SHARDS[:PRIMARY]")]
        failover_groups: Vec<FailoverGroupSpec>,
        /// Password of the `default` user (Redis `requirepass`), written
        /// into every node's config when the cluster is created.
        #[arg(long)]
        requirepass: Option<String>,
        /// Latency added to each request between regions, in ms (a fault
        /// knob: cairn-server-failpoints only).
        #[arg(long, default_value_t = 0)]
        region_latency_ms: u64,
        /// Latency added to each request between zones of a region, in ms
        /// (a fault knob: cairn-server-failpoints only).
        #[arg(long, default_value_t = 0)]
        zone_latency_ms: u64,
    },
}

/// Reads `--durability`.
fn parse_durability(text: &str) -> Result<Durability, String> {
    match text {
        "zone" => Ok(Durability::Zone),
        "witness" => Ok(Durability::Witness),
        other => Err(format!("{other:?} is not a durability: use zone or witness")),
    }
}

/// Reads `--fsync`.
fn parse_fsync(text: &str) -> Result<Fsync, String> {
    match text {
        "always" => Ok(Fsync::Always),
        "never" => Ok(Fsync::Never),
        other => Err(format!("{other:?} is not an fsync policy: use always or never")),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // Fault points come from the FAILPOINTS environment variable; a
    // `panic` action aborts the process on the spot, as a crash would.
    #[cfg(feature = "failpoints")]
    let _faults = {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default_hook(info);
            std::process::abort();
        }));
        fail::FailScenario::setup()
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let result = match (args.command, args.config) {
        (
            Some(Command::Dev {
                dir,
                port,
                regions,
                zones,
                witness,
                durability,
                fsync,
                manual_failover,
                failover_grace_ms,
                shards,
                failover_groups,
                requirepass,
                region_latency_ms,
                zone_latency_ms,
            }),
            _,
        ) => {
            let options = DevOptions {
                dir,
                port,
                regions,
                zones,
                witness,
                durability,
                fsync,
                failover: FailoverOptions {
                    policy: match manual_failover {
                        true => FailoverPolicy::Manual,
                        false => FailoverPolicy::Automatic,
                    },
                    grace_ms: failover_grace_ms,
                },
                shards,
                failover_groups,
                requirepass,
                link_latency: LinkLatency {
                    between_regions_ms: region_latency_ms,
                    between_zones_ms: zone_latency_ms,
                },
            };
            dev::run(options, shutdown_signal()).await
        }
        (None, Some(path)) => match NodeConfig::load(&path) {
            Ok(config) => cairn_server::server::run(config, shutdown_signal()).await,
            Err(err) => Err(err),
        },
        (None, None) => {
            eprintln!("cairn-server: give --config FILE to run a node, or `dev` to start a local cluster (see --help)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cairn-server: {err}");
            ExitCode::FAILURE
        }
    }
}

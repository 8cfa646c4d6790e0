//! `cairn-jepsen`: `run` a fault-injection test against a real cluster, or
//! `check` a saved history.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cairn_jepsen::cluster::Layout;
use cairn_jepsen::nemesis::Fault;
use cairn_jepsen::region::Discarded;
use cairn_jepsen::run::{Bug, RunOptions, run};
use cairn_jepsen::workload::{Via, Workload};
use cairn_jepsen::{checker, history};
use cairn_server::config::{Durability, FailoverGroupSpec, FailoverOptions, FailoverPolicy, XlogOptions};
use cairn_server::dev::Shape;
use clap::{Parser, Subcommand};

/// When writes are acknowledged.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DurabilityArg {
    /// By a majority of the primary region's zones.
    Zone,
    /// By the witness too.
    Witness,
}

/// Linearizability and lost-write checks for Cairn under real faults.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a cluster, run a workload under faults, check the history.
    Run {
        /// The workload.
        #[arg(long, value_enum, default_value = "register")]
        workload: Workload,
        /// The path clients take (default: client for register and
        /// counter, resp for set).
        #[arg(long, value_enum)]
        via: Option<Via>,
        /// Faults, comma separated.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "kill,pause")]
        nemesis: Vec<Fault>,
        /// Seconds between injecting a fault and healing it.
        #[arg(long, default_value_t = 3.0)]
        nemesis_interval: f64,
        /// Seconds of load.
        #[arg(long, default_value_t = 60)]
        time: u64,
        /// Nodes of each region, one per zone.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Data regions; with more than one, the cluster has a witness
        /// node too, and the region faults may be injected.
        #[arg(long, default_value_t = 1)]
        regions: usize,
        /// When writes are acknowledged: `zone` (a majority of the primary
        /// region's zones) or `witness` (the witness too).
        #[arg(long, value_enum, default_value = "zone")]
        durability: DurabilityArg,
        /// How long the primary region may be silent before the cluster
        /// fails over by itself.
        #[arg(long, default_value_t = 3000)]
        failover_grace_ms: u64,
        /// Shards.
        #[arg(long, default_value_t = 4)]
        shards: u16,
        /// A failover group of some shards, as NAME:SHARDS[:PRIMARY] (e.g.
        /// `orders:1,3:region2`); repeatable. The rest make `default`.
        #[arg(long = "failover-group", value_name = "NAME:SHARDS[:PRIMARY]")]
        failover_groups: Vec<FailoverGroupSpec>,
        /// The most bytes of writes a shard's cross-region log keeps for a
        /// region that has not taken them (a small bound makes a region
        /// that was cut off resync from a copy of each shard).
        #[arg(long, default_value_t = XlogOptions::default().max_bytes)]
        xlog_max_bytes: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 10)]
        clients: usize,
        /// Seed for every random choice (default: from the clock).
        #[arg(long)]
        seed: Option<u64>,
        /// Output directory (history, summary, node logs).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The cairn-server binary (default: `cairn-server` next to this
        /// one, or `cairn-server-failpoints` when fault points are needed).
        #[arg(long)]
        server: Option<PathBuf>,
        /// Switch on a deliberate server bug; the run must then fail.
        #[arg(long, value_enum)]
        inject_bug: Option<Bug>,
    },
    /// Check a saved history (JSON Lines).
    Check {
        /// The history file.
        file: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match real_main().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("cairn-jepsen: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn real_main() -> anyhow::Result<bool> {
    match Args::parse().command {
        Command::Check { file } => {
            let ops = history::load(&file)?;
            let discarded = Discarded::load_beside(&file)?;
            let report = checker::check_all(&ops, &discarded);
            let html = file.with_extension("html");
            let summary = format!(
                "{}verdict: {}\nreport: {}\n",
                report.summary(),
                if report.valid() { "PASS" } else { "FAIL" },
                html.display()
            );
            cairn_jepsen::report::write(&html, &summary, &report.registers, &ops)?;
            print!("{summary}");
            Ok(report.valid())
        }
        Command::Run {
            workload,
            via,
            nemesis,
            nemesis_interval,
            time,
            nodes,
            regions,
            durability,
            failover_grace_ms,
            shards,
            failover_groups,
            xlog_max_bytes,
            clients,
            seed,
            out,
            server,
            inject_bug,
        } => {
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            });
            let needs_failpoints = inject_bug.is_some() || nemesis.iter().any(|f| f.needs_failpoints());
            let server = match server {
                Some(path) => path,
                None if needs_failpoints => std::env::current_exe()?.with_file_name("cairn-server-failpoints"),
                None => std::env::current_exe()?.with_file_name("cairn-server"),
            };
            anyhow::ensure!(
                server.exists(),
                "no server binary at {}; build it with scripts/build-jepsen, or pass --server",
                server.display()
            );
            anyhow::ensure!(nemesis_interval > 0.0, "--nemesis-interval must be positive");
            if let Some(fault) = nemesis.iter().find(|f| f.needs_regions())
                && regions < 2
            {
                anyhow::bail!("the {} fault needs --regions 2 or more", fault.name());
            }
            anyhow::ensure!(failover_grace_ms >= 1000, "--failover-grace-ms must be at least 1000");
            let layout = Layout {
                shape: Shape {
                    regions,
                    zones: nodes,
                    witness: regions > 1,
                    shards,
                },
                durability: match durability {
                    DurabilityArg::Zone => Durability::Zone,
                    DurabilityArg::Witness => Durability::Witness,
                },
                failover: FailoverOptions {
                    policy: FailoverPolicy::Automatic,
                    grace_ms: failover_grace_ms,
                },
                failover_groups,
                xlog: XlogOptions {
                    max_bytes: xlog_max_bytes,
                    ..XlogOptions::default()
                },
            };
            let via = via.unwrap_or(workload.default_via());
            anyhow::ensure!(
                workload.supports(via),
                "the {workload:?} workload cannot run --via {via:?}"
            );
            let out = out.unwrap_or_else(|| PathBuf::from(format!("jepsen-out/{workload:?}-{seed}").to_lowercase()));
            let options = RunOptions {
                workload,
                via,
                nemesis,
                interval: Duration::from_secs_f64(nemesis_interval),
                time: Duration::from_secs(time),
                layout,
                clients,
                seed,
                out,
                server,
                bug: inject_bug,
            };
            // On Ctrl-C or SIGTERM the run is dropped: its cluster kills
            // every node and removes its namespaces.
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                passed = run(options) => passed,
                _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; the cluster was torn down"),
                _ = term.recv() => anyhow::bail!("terminated; the cluster was torn down"),
            }
        }
    }
}

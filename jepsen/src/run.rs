//! One test run: start a cluster, drive a workload while the nemesis
//! injects faults, heal, take final reads, save the history and check it.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use tokio::time::Instant;

use crate::checker;
use crate::cluster::{Cluster, Layout};
use crate::history::{self, Recorder, Status};
use crate::nemesis::{self, Fault};
use crate::net::Net;
use crate::region::{self, Discarded};
use crate::resp_client::{Reply, RespClient};
use crate::workload::{self, Context, Via, Workload};

/// How long the run waits, after healing, for every old primary to report
/// what it discarded.
const REPORT_PATIENCE: Duration = Duration::from_secs(30);

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The workload.
    pub workload: Workload,
    /// The path clients take.
    pub via: Via,
    /// Faults to inject.
    pub nemesis: Vec<Fault>,
    /// Seconds between a fault and its healing.
    pub interval: Duration,
    /// How long clients run.
    pub time: Duration,
    /// The cluster's regions, zones, shards, durability and failover
    /// policy.
    pub layout: Layout,
    /// Concurrent clients.
    pub clients: usize,
    /// Seed for every random choice.
    pub seed: u64,
    /// Output directory.
    pub out: PathBuf,
    /// The `cairn-server` binary.
    pub server: PathBuf,
    /// A deliberate bug to switch on in every node (the checker must then fail).
    pub bug: Option<Bug>,
}

/// A deliberate server bug, for proving the checkers are not vacuous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bug {
    /// Reads are answered from the local replica without the linearizer.
    StaleRead,
}

impl Bug {
    /// The server fault point that switches it on (`FAILPOINTS` syntax).
    pub fn failpoints(self) -> &'static str {
        match self {
            Bug::StaleRead => "stale-read=return",
        }
    }
}

/// Runs the test; `Ok(true)` when every checker passed.
pub async fn run(options: RunOptions) -> anyhow::Result<bool> {
    std::fs::create_dir_all(&options.out).with_context(|| format!("creating {}", options.out.display()))?;
    let (net, why_loopback) = Net::create(options.layout.nodes())?;
    if let Some(why) = why_loopback {
        eprintln!("WARNING: nodes run on loopback ({why}); partitions cannot be injected");
    }
    let cluster = Cluster::start(
        &options.server,
        &options.out.join("cluster"),
        &options.layout,
        net,
        options.bug.map(|b| b.failpoints().to_string()),
    )?;
    // Clients use the data nodes (the witness serves no data).
    let data_nodes = cluster.data_nodes();
    let grpc = data_nodes.iter().map(|&id| cluster.grpc(id)).collect();
    let resp: Vec<_> = data_nodes.iter().map(|&id| cluster.resp(id)).collect();
    wait_ready(&resp).await?;
    let cluster = Arc::new(Mutex::new(cluster));

    let recorder = Arc::new(Recorder::default());
    let started = SystemTime::now();
    let deadline = Instant::now() + options.time;
    let ctx = Arc::new(Context {
        recorder: recorder.clone(),
        grpc,
        resp: resp.clone(),
        via: options.via,
        deadline,
        issued: AtomicU64::new(0),
    });
    println!(
        "running {:?} via {:?} for {:?} with {} clients, nemesis {:?} every {:?}, seed {}{}",
        options.workload,
        options.via,
        options.time,
        options.clients,
        options.nemesis,
        options.interval,
        options.seed,
        options.bug.map_or(String::new(), |b| format!(", injected bug {b:?}"))
    );
    let nemesis = tokio::spawn(nemesis::run(
        cluster.clone(),
        options.nemesis.clone(),
        options.interval,
        deadline,
        options.seed,
        recorder.clone(),
    ));
    workload::run_clients(options.workload, ctx.clone(), options.clients, options.seed).await;
    let log = nemesis.await?;
    wait_ready(&resp).await?;
    workload::final_reads(options.workload, &ctx).await?;
    let (switches, discarded) = if options.layout.shape.regions > 1 {
        let switches = region::switches(&resp, REPORT_PATIENCE).await?;
        let groups = region::groups(&resp).await?;
        let files: Vec<PathBuf> = {
            let cluster = cluster.lock().expect("cluster lock");
            cluster.ids().iter().map(|&id| cluster.lost_writes_file(id)).collect()
        };
        let discarded = region::discarded(&files, &switches, &groups, started);
        (switches, discarded)
    } else {
        (Vec::new(), Discarded::default())
    };
    discarded.save(&options.out)?;
    let crashes = {
        let mut cluster = cluster.lock().expect("cluster lock");
        let mut crashes = log.crashes.clone();
        crashes.extend(cluster.crashed());
        crashes
    };

    let ops = recorder.ops();
    let history_path = options.out.join("history.jsonl");
    history::save(&history_path, &ops)?;
    let report = checker::check_all(&ops, &discarded);
    let count = |s: Status| ops.iter().filter(|op| op.status == s).count();
    let mut summary = format!(
        "ops: {} ok, {} fail, {} unknown\nfaults injected: {}{}\n",
        count(Status::Ok),
        count(Status::Fail),
        count(Status::Unknown),
        log.injected,
        if log.skipped.is_empty() {
            String::new()
        } else {
            format!(" (NOT injected: {:?})", log.skipped)
        }
    );
    for (at, event) in &log.events {
        summary.push_str(&format!("  {at:8.3}s {event}\n"));
    }
    if options.layout.shape.regions > 1 {
        summary.push_str(&format!(
            "failovers: {} completed{}; writes reported discarded: {}\n",
            switches.len(),
            if switches.iter().all(|s| s.reported) {
                ""
            } else {
                " (some old primaries never reported what they discarded)"
            },
            discarded.keys.len()
        ));
    }
    for (node, status) in &crashes {
        summary.push_str(&format!(
            "CRASH: node {node} exited by itself ({status}); see its log\n"
        ));
    }
    summary.push_str(&report.summary());
    let passed = report.valid() && crashes.is_empty();
    summary.push_str(&format!(
        "verdict: {}\nhistory: {}\n",
        if passed { "PASS" } else { "FAIL" },
        history_path.display()
    ));
    let html = options.out.join("report.html");
    summary.push_str(&format!("report: {}\n", html.display()));
    crate::report::write(&html, &summary, &report.registers, &ops)?;
    std::fs::write(options.out.join("summary.txt"), &summary)?;
    print!("{summary}");
    Ok(passed)
}

/// Waits until every node accepts a write.
async fn wait_ready(resp: &[std::net::SocketAddr]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for addr in resp {
        loop {
            let ok = match RespClient::connect(*addr).await {
                Ok(mut c) => matches!(c.call(&[b"SET", b"jepsen:ready", b"1"]).await, Ok(Reply::Simple(_))),
                Err(_) => false,
            };
            if ok {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "node at {addr} not serving after 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

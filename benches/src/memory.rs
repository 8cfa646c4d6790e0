//! `cairn-bench memory`: what a data set costs in memory next to Redis, and
//! how soon a Cairn node holding it is back after a crash.
//!
//! The same keys (by default 1,000,000 keys of 16 B with 64 B values) are
//! loaded into a `redis-server` without persistence and into a Cairn dev
//! cluster (3 zones: every node holds a replica of every shard). For each
//! process it reports resident memory (`VmRSS`) before and after, and the
//! difference per key; for Redis also its own `used_memory` per key. Cairn
//! is measured once every replica holds every key.
//!
//! Then one Cairn node is killed with SIGKILL and started again from its
//! directory, and two times are measured from the start: until it answers
//! `PING`, and until its replicas hold every key again (`INFO keyspace`),
//! which is its newest snapshot loaded plus its log replayed.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::peers::{self, CairnDev};
use crate::report::{Output, machine, today};
use crate::resp::Connection;
use crate::runner::{self, Load, Target};
use crate::workload::{KeyDistribution, Workload};

/// The node that is killed and restarted.
const RESTARTED_NODE: u16 = 2;
/// How long the killed node may take to exit and free its ports.
const KILL_SETTLES: Duration = Duration::from_secs(10);
/// How long a node may take to hold every key (after loading, or after its
/// restart) before the run gives up.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(300);

/// What the memory run loads.
pub struct Plan {
    /// Keys loaded.
    pub keys: u64,
    /// Bytes per key.
    pub key_size: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Loading connections (per node for Cairn).
    pub connections: usize,
    /// How to print the results.
    pub output: Output,
}

/// One process's memory, before and after loading.
#[derive(Serialize)]
struct Footprint {
    process: String,
    rss_before: u64,
    rss_after: u64,
    rss_per_key: f64,
    /// Redis's own accounting (`used_memory`) per key.
    used_memory_per_key: Option<f64>,
}

/// A restarted node's way back.
#[derive(Serialize)]
struct Recovery {
    keys: u64,
    answered_ms: f64,
    recovered_ms: f64,
}

/// Runs the measurement.
pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("cairn-bench-").tempdir()?;
    eprintln!("starting redis-server and cairn dev in {}", dir.path().display());
    let mut footprints = vec![redis(&plan, dir.path()).await?];
    let dev = peers::cairn_dev(dir.path(), None, None).await?;
    footprints.extend(cairn(&plan, &dev).await?);
    let recovery = restart(&dev, dir.path()).await?;
    match plan.output {
        Output::Json => {
            let report = serde_json::json!({ "memory": footprints, "recovery": recovery });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Output::Table => {
            println!(
                "{:<24} {:>14} {:>14} {:>12} {:>18}",
                "process", "rss before", "rss after", "rss/key", "used_memory/key"
            );
            for f in &footprints {
                let used = f.used_memory_per_key.map_or("-".into(), |b| format!("{b:.0}"));
                println!(
                    "{:<24} {:>14} {:>14} {:>12.0} {:>18}",
                    f.process, f.rss_before, f.rss_after, f.rss_per_key, used
                );
            }
            println!(
                "node {RESTARTED_NODE} restarted after SIGKILL with {} keys: answering after {:.0} ms, every key back after {:.0} ms",
                recovery.keys, recovery.answered_ms, recovery.recovered_ms
            );
        }
        Output::Markdown => print_markdown(&plan, &footprints, &recovery),
    }
    Ok(())
}

fn print_markdown(plan: &Plan, footprints: &[Footprint], recovery: &Recovery) {
    println!("## Memory and recovery\n");
    println!(
        "Machine: {}. Date: {}. Command: `make benchmarks`.\n",
        machine(),
        today()
    );
    println!(
        "{} keys of {} B with values of {} B, loaded into Redis (no persistence) and into a Cairn dev \
         cluster of 3 zones, where every node holds a replica of every shard.\n",
        plan.keys, plan.key_size, plan.value_size
    );
    println!("| process | RSS before | RSS after | RSS per key (B) | used_memory per key (B) |");
    println!("|---|---:|---:|---:|---:|");
    for f in footprints {
        let used = f.used_memory_per_key.map_or("".into(), |b| format!("{b:.0}"));
        println!(
            "| {} | {} MiB | {} MiB | {:.0} | {used} |",
            f.process,
            f.rss_before >> 20,
            f.rss_after >> 20,
            f.rss_per_key
        );
    }
    println!(
        "\nCairn node {RESTARTED_NODE}, killed with SIGKILL while holding {} keys and started again: it \
         answered after {:.0} ms, and held every key again (snapshot loaded, log replayed) after {:.0} ms.",
        recovery.keys, recovery.answered_ms, recovery.recovered_ms
    );
}

/// The load that writes the key space through `target`.
fn loading(plan: &Plan, target: Target) -> Load {
    Load {
        target,
        workload: Workload::Set,
        distribution: KeyDistribution::Uniform,
        keys: plan.keys,
        key_size: plan.key_size,
        value_size: plan.value_size,
        connections: plan.connections,
        pipeline: 64,
        warmup: Duration::ZERO,
        duration: Duration::ZERO,
        preload: true,
    }
}

async fn redis(plan: &Plan, dir: &Path) -> anyhow::Result<Footprint> {
    let redis = peers::redis(dir, false).await?;
    let pid = redis.processes[0].pid();
    let Target::Resp { addr, .. } = redis.target else {
        anyhow::bail!("redis is reached over RESP");
    };
    let mut conn = Connection::open(addr).await?;
    let (rss_before, used_before) = (rss(pid)?, used_memory(&mut conn).await?);
    eprintln!("loading {} keys into redis", plan.keys);
    runner::load_key_space(&loading(plan, redis.target.clone())).await?;
    let (rss_after, used_after) = (rss(pid)?, used_memory(&mut conn).await?);
    Ok(Footprint {
        process: "redis-server".into(),
        rss_before,
        rss_after,
        rss_per_key: per_key(rss_before, rss_after, plan.keys),
        used_memory_per_key: Some(per_key(used_before, used_after, plan.keys)),
    })
}

async fn cairn(plan: &Plan, dev: &CairnDev) -> anyhow::Result<Vec<Footprint>> {
    let nodes: Vec<u16> = dev.nodes().collect();
    let mut before = Vec::new();
    for &node in &nodes {
        before.push(rss(dev.node_pid(node)?)?);
    }
    let held_before = keys_held(dev, 1).await?;
    eprintln!("loading {} keys into cairn", plan.keys);
    let target = Target::Resp {
        addr: dev.resp_addr(1),
        cluster: true,
    };
    runner::load_key_space(&loading(plan, target)).await?;
    let mut footprints = Vec::new();
    for (&node, rss_before) in nodes.iter().zip(before) {
        wait_for_keys(dev, node, held_before + plan.keys).await?;
        let rss_after = rss(dev.node_pid(node)?)?;
        footprints.push(Footprint {
            process: format!("cairn node {node}"),
            rss_before,
            rss_after,
            rss_per_key: per_key(rss_before, rss_after, plan.keys),
            used_memory_per_key: None,
        });
    }
    Ok(footprints)
}

/// Kills [`RESTARTED_NODE`], starts it again and times its way back.
async fn restart(dev: &CairnDev, dir: &Path) -> anyhow::Result<Recovery> {
    let node = RESTARTED_NODE;
    let keys = keys_held(dev, node).await?;
    let pid = dev.node_pid(node)?;
    eprintln!("killing cairn node {node} (pid {pid}) holding {keys} keys, and starting it again");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let deadline = Instant::now() + KILL_SETTLES;
    while is_running(pid) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "cairn node {node} (pid {pid}) outlived SIGKILL by {KILL_SETTLES:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_until_free(&dev.listen_addrs(node), deadline).await?;
    let config = dev.dir.join(format!("node{node}")).join("node.toml");
    let args = ["--config".to_string(), config.display().to_string()];
    let started_at = Instant::now();
    let log = dir.join("restarted.log");
    let mut restarted = peers::start(&format!("cairn node {node}"), &peers::cairn_server()?, &args, &log)?;
    if let Err(err) = peers::wait_resp(&mut restarted, dev.resp_addr(node), &[b"PING"]).await {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        anyhow::bail!(
            "{err}; its log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let answered = started_at.elapsed();
    wait_for_keys(dev, node, keys).await?;
    let recovered = started_at.elapsed();
    Ok(Recovery {
        keys,
        answered_ms: answered.as_secs_f64() * 1e3,
        recovered_ms: recovered.as_secs_f64() * 1e3,
    })
}

fn per_key(before: u64, after: u64, keys: u64) -> f64 {
    after.saturating_sub(before) as f64 / keys as f64
}

/// Whether any thread of `pid` is still running. A process's sockets close
/// only when its last thread has exited, which for a large process comes
/// well after its main thread shows as a zombie; until then its ports are
/// taken.
fn is_running(pid: u32) -> bool {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    threads.flatten().any(|thread| {
        std::fs::read_to_string(thread.path().join("stat"))
            .ok()
            .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| !rest.starts_with(['Z', 'X'])))
            .unwrap_or(false)
    })
}

/// Waits until every one of `addrs` can be bound again (or `deadline`
/// passes). Once the killed process is gone its listeners are closed, yet
/// now and then one of its ports was still taken when the new process
/// bound it a moment later ("Address already in use"). The restart's clock
/// starts after this wait, so the wait does not count in it.
async fn wait_until_free(addrs: &[std::net::SocketAddr], deadline: Instant) -> anyhow::Result<()> {
    for addr in addrs {
        while let Err(err) = std::net::TcpListener::bind(addr) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{addr} still taken {KILL_SETTLES:?} after the node was killed: {err}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

/// Resident memory of `pid` in bytes (`VmRSS`).
fn rss(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("{path} has no VmRSS"))?;
    Ok(kib * 1024)
}

/// Redis's `used_memory`.
async fn used_memory(conn: &mut Connection) -> anyhow::Result<u64> {
    let value = conn
        .info_field("memory", "used_memory")
        .await?
        .context("no used_memory")?;
    Ok(value.parse()?)
}

/// Keys held by a Cairn node's replicas (`INFO keyspace`).
async fn keys_held(dev: &CairnDev, node: u16) -> anyhow::Result<u64> {
    let mut conn = Connection::open(dev.resp_addr(node)).await?;
    let Some(db) = conn.info_field("keyspace", "db0").await? else {
        return Ok(0);
    };
    db.split(',')
        .find_map(|part| part.strip_prefix("keys="))
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("INFO keyspace: bad db0 line {db:?}"))
}

/// Waits until node `node`'s replicas hold at least `keys` keys.
async fn wait_for_keys(dev: &CairnDev, node: u16, keys: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        if keys_held(dev, node).await.is_ok_and(|held| held >= keys) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "cairn node {node} did not hold {keys} keys within {CONVERGE_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

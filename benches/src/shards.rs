//! `cairn-bench shards`: the same load against Cairn dev clusters of
//! different shard counts, one after the other.
//!
//! Each shard is a Raft group, and a group's costs come per batch: a log
//! append, an fsync wait, a message to each follower and its answer, a
//! commit, one wake-up of each task on the way. Concurrent writes to one
//! group share those costs; writes spread over many groups each pay more
//! of them. More shards spread leaders (and their work) over more nodes and
//! cores; fewer shards batch more. Which wins depends on the machine and
//! the load, so this measures it: for each count (and each fsync policy
//! asked for) it starts a fresh dev cluster of 3 zones, runs every
//! workload against it cluster-aware, stops it, and prints one row per
//! cluster and workload: throughput and latency, and what an operation
//! cost the nodes ([`crate::cost`]: CPU, context switches, operations per
//! fsync). Runs with `--fsync never` next to `always` show what the
//! fsyncs cost.

use anyhow::Context;
use serde::Serialize;

use crate::cost::{Cost, Counters};
use crate::peers::{self, Fsync};
use crate::report::{Measured, Output, machine, today};
use crate::resp::SlotMap;
use crate::runner::{self, Load, Target};
use crate::workload::Workload;

/// What the run measures.
pub struct Plan {
    /// Shard counts, in order.
    pub counts: Vec<u16>,
    /// Fsync policies (`dev --fsync`), in order, for each count.
    pub fsyncs: Vec<Fsync>,
    /// Workloads run against each cluster, in order.
    pub workloads: Vec<Workload>,
    /// The load shape shared by every run (its target is replaced).
    pub load: Load,
    /// How to print the results.
    pub output: Output,
}

/// One measured run.
#[derive(Serialize)]
struct Row {
    shards: u16,
    fsync: Fsync,
    workload: Workload,
    #[serde(flatten)]
    measured: Measured,
    #[serde(flatten)]
    cost: Cost,
}

/// Runs the load against a cluster of each shard count in turn.
pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for &shards in &plan.counts {
        for &fsync in &plan.fsyncs {
            rows.extend(run_cluster(&plan, shards, fsync).await?);
        }
    }
    match plan.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Output::Table => {
            println!("{}", plan.load.shape());
            println!("{} {}", Measured::header(), Cost::header());
            for row in &rows {
                let label = format!("{:?} {} shards fsync {}", row.workload, row.shards, row.fsync.name());
                println!("{} {}", row.measured.row(&label.to_lowercase()), row.cost.cells());
            }
        }
        Output::Markdown => {
            println!("Machine: {}. Date: {}.\n", machine(), today());
            println!("{}.\n", plan.load.shape());
            let (header, alignment) = Measured::MARKDOWN_HEADER;
            let (cost_header, cost_alignment) = Cost::MARKDOWN_HEADER;
            println!("| shards | fsync | workload | {header} {cost_header}");
            println!("|---:|---|---|{alignment}{cost_alignment}");
            for row in &rows {
                println!(
                    "| {} | {} | {} | {} {}",
                    row.shards,
                    row.fsync.name(),
                    format!("{:?}", row.workload).to_lowercase(),
                    row.measured.markdown_cells(),
                    row.cost.markdown_cells()
                );
            }
        }
    }
    Ok(())
}

/// Starts a cluster of `shards` shards fsyncing as `fsync` says, runs
/// every workload against it, and stops it.
async fn run_cluster(plan: &Plan, shards: u16, fsync: Fsync) -> anyhow::Result<Vec<Row>> {
    // Every started process names this directory, as in `compare`.
    let dir = tempfile::Builder::new().prefix("cairn-bench-").tempdir()?;
    eprintln!(
        "starting cairn dev with {shards} shards, fsync {}, in {}",
        fsync.name(),
        dir.path().display()
    );
    let dev = peers::cairn_dev(dir.path(), Some(shards), Some(fsync)).await?;
    // The load is measured against what was asked for, or not at all.
    let served = SlotMap::fetch(dev.resp_addr(1)).await?.ranges();
    anyhow::ensure!(
        served == usize::from(shards),
        "a cluster started with {shards} shards lists {served} slot ranges"
    );
    let mut rows = Vec::new();
    for &workload in &plan.workloads {
        eprintln!("{workload:?} on {shards} shards, fsync {}", fsync.name());
        let load = Load {
            target: Target::Resp {
                addr: dev.resp_addr(1),
                cluster: true,
            },
            workload,
            ..plan.load.clone()
        };
        let context = || format!("{workload:?} on {shards} shards, fsync {}", fsync.name());
        let running = runner::start(load).await.with_context(context)?;
        let (measured, before, after) = running
            .finish_reading(|| Counters::read(&dev))
            .await
            .with_context(context)?;
        let cost = Cost::between(before, after, measured.ops, dev.nodes().count());
        rows.push(Row {
            shards,
            fsync,
            workload,
            measured,
            cost,
        });
    }
    // Stopped (dropped) here, before the next cluster starts: one at a time.
    Ok(rows)
}

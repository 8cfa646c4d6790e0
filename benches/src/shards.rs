//! `cairn-bench shards`: the same load against Cairn dev clusters of
//! different shard counts, one after the other.
//!
//! Each shard is a Raft group, and a group's costs come per batch: a log
//! append, an fsync wait, a message to each follower and its answer, a
//! commit, one wake-up of each task on the way. Concurrent writes to one
//! group share those costs; writes spread over many groups each pay more
//! of them. More shards spread leaders (and their work) over more nodes and
//! cores; fewer shards batch more. Which wins depends on the machine and
//! the load, so this measures it: for each count it starts a fresh dev
//! cluster (3 zones, fsync always), runs every workload against it
//! cluster-aware, stops it, and prints one row per count and workload.

use anyhow::Context;
use serde::Serialize;

use crate::peers;
use crate::report::{Measured, Output, machine, today};
use crate::resp::SlotMap;
use crate::runner::{self, Load, Target};
use crate::workload::Workload;

/// What the run measures.
pub struct Plan {
    /// Shard counts, in order.
    pub counts: Vec<u16>,
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
    workload: Workload,
    #[serde(flatten)]
    measured: Measured,
}

/// Runs the load against a cluster of each shard count in turn.
pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for &shards in &plan.counts {
        // Every started process names this directory, as in `compare`.
        let dir = tempfile::Builder::new().prefix("cairn-bench-").tempdir()?;
        eprintln!("starting cairn dev with {shards} shards in {}", dir.path().display());
        let dev = peers::cairn_dev(dir.path(), Some(shards)).await?;
        // The load is measured against what was asked for, or not at all.
        let served = SlotMap::fetch(dev.resp_addr(1)).await?.ranges();
        anyhow::ensure!(
            served == usize::from(shards),
            "a cluster started with {shards} shards lists {served} slot ranges"
        );
        for &workload in &plan.workloads {
            eprintln!("{workload:?} on {shards} shards");
            let load = Load {
                target: Target::Resp {
                    addr: dev.resp_addr(1),
                    cluster: true,
                },
                workload,
                ..plan.load.clone()
            };
            let measured = runner::run(load)
                .await
                .with_context(|| format!("{workload:?} on {shards} shards"))?;
            rows.push(Row {
                shards,
                workload,
                measured,
            });
        }
        // Stopped before the next cluster starts: one at a time.
        drop(dev);
    }
    match plan.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Output::Table => {
            println!("{}", plan.load.shape());
            println!("{}", Measured::header());
            for row in &rows {
                let label = format!("{:?} {} shards", row.workload, row.shards).to_lowercase();
                println!("{}", row.measured.row(&label));
            }
        }
        Output::Markdown => {
            println!("Machine: {}. Date: {}.\n", machine(), today());
            println!("{}.\n", plan.load.shape());
            let (header, alignment) = Measured::MARKDOWN_HEADER;
            println!("| shards | workload | {header}");
            println!("|---:|---|{alignment}");
            for row in &rows {
                println!(
                    "| {} | {} | {}",
                    row.shards,
                    format!("{:?}", row.workload).to_lowercase(),
                    row.measured.markdown_cells()
                );
            }
        }
    }
    Ok(())
}

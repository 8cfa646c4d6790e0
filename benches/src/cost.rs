//! What a Cairn dev cluster spends on a load, per operation: the CPU time
//! and context switches of its node processes and the fsyncs of their
//! Raft logs, over the measured window.
//!
//! On a small machine writes are bound by CPU (the three nodes, the load
//! generator and all their threads share its cores), so what one operation
//! costs says more than throughput about where time goes and whether a
//! change helped. A batch's fixed costs (an fsync, a message to each
//! follower and its answer, a wake-up of each task on the way) show as
//! fewer operations per fsync and more CPU and switches per operation.
//!
//! CPU time comes from each node's `/proc/<pid>/stat`, switches from the
//! `status` of each of its threads, fsyncs from its `INFO persistence`
//! (`cairn_raft_log_fsyncs`). A thread that exits within the window takes
//! its switches with it, so the switches are a floor.
//!
//! The CPU time alone ([`cpu_ticks_of`], [`cpu_us_per_op`]) is read the
//! same way for any server, which is how `compare` sets each peer's CPU
//! per operation beside Cairn's.

use anyhow::Context;
use serde::Serialize;

use crate::peers::CairnDev;
use crate::resp::Connection;

/// Ticks per second of the times in `/proc/<pid>/stat` (`USER_HZ`, fixed
/// at 100 by Linux's user-space ABI).
const TICKS_PER_SEC: f64 = 100.0;

/// A cluster's counters at one instant, summed over its nodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    cpu_ticks: u64,
    switches: u64,
    fsyncs: u64,
}

impl Counters {
    /// Reads every node's counters now.
    pub async fn read(dev: &CairnDev) -> anyhow::Result<Counters> {
        let mut sum = Counters::default();
        for node in dev.nodes() {
            let pid = dev.node_pid(node)?;
            sum.cpu_ticks += cpu_ticks_of(&[pid])?;
            sum.switches += switches(pid);
            let mut conn = Connection::open(dev.resp_addr(node)).await?;
            let fsyncs = conn
                .info_field("persistence", "cairn_raft_log_fsyncs")
                .await?
                .with_context(|| format!("node {node}'s INFO has no cairn_raft_log_fsyncs"))?;
            sum.fsyncs += fsyncs
                .parse::<u64>()
                .with_context(|| format!("node {node}: cairn_raft_log_fsyncs:{fsyncs}"))?;
        }
        Ok(sum)
    }
}

/// What one operation cost the cluster over a window.
#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    /// CPU time of the nodes, in µs per operation.
    pub cpu_us_per_op: f64,
    /// Context switches of the nodes' threads per operation.
    pub switches_per_op: f64,
    /// Operations per Raft log fsync of one node (each node's log holds
    /// every write); none when the nodes did not fsync.
    pub ops_per_fsync: Option<f64>,
}

impl Cost {
    /// The cost of `ops` operations done between `before` and `after`.
    pub fn between(before: Counters, after: Counters, ops: u64, nodes: usize) -> Cost {
        let cpu = cpu_us_per_op(after.cpu_ticks.saturating_sub(before.cpu_ticks), ops);
        let ops = ops.max(1) as f64;
        let fsyncs_per_node = after.fsyncs.saturating_sub(before.fsyncs) as f64 / nodes as f64;
        Cost {
            cpu_us_per_op: cpu,
            switches_per_op: after.switches.saturating_sub(before.switches) as f64 / ops,
            ops_per_fsync: (fsyncs_per_node > 0.0).then(|| ops / fsyncs_per_node),
        }
    }

    /// The Markdown header cells of [`Cost::markdown_cells`], with their
    /// alignment row.
    pub const MARKDOWN_HEADER: (&str, &str) = ("node CPU µs/op | switches/op | ops/fsync |", "---:|---:|---:|");

    /// The figures as the last cells of a Markdown table row.
    pub fn markdown_cells(&self) -> String {
        format!(
            "{:.0} | {:.1} | {} |",
            self.cpu_us_per_op,
            self.switches_per_op,
            self.ops_per_fsync_text()
        )
    }

    /// The table header of [`Cost::cells`].
    pub fn header() -> String {
        format!("{:>12} {:>12} {:>10}", "cpu µs/op", "switches/op", "ops/fsync")
    }

    /// The figures as table cells.
    pub fn cells(&self) -> String {
        format!(
            "{:>12.0} {:>12.1} {:>10}",
            self.cpu_us_per_op,
            self.switches_per_op,
            self.ops_per_fsync_text()
        )
    }

    fn ops_per_fsync_text(&self) -> String {
        self.ops_per_fsync.map_or("-".into(), |n| format!("{n:.1}"))
    }
}

/// µs of CPU time per operation, for `ticks` of it spent on `ops`
/// operations (at least one).
pub fn cpu_us_per_op(ticks: u64, ops: u64) -> f64 {
    ticks as f64 / TICKS_PER_SEC * 1e6 / ops.max(1) as f64
}

/// User and system CPU time of the processes `pids` together, in ticks.
pub fn cpu_ticks_of(pids: &[u32]) -> anyhow::Result<u64> {
    let mut sum = 0;
    for pid in pids {
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        // The fields after the command name (which may hold spaces) start
        // with the state, field 3; utime and stime are fields 14 and 15.
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        match (field(14), field(15)) {
            (Some(user), Some(system)) => sum += user + system,
            _ => anyhow::bail!("{path}: no utime and stime in {stat:?}"),
        }
    }
    Ok(sum)
}

/// Voluntary and involuntary context switches of every live thread of
/// `pid`.
fn switches(pid: u32) -> u64 {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    threads
        .flatten()
        .filter_map(|thread| std::fs::read_to_string(thread.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.starts_with("voluntary_ctxt_switches:") || l.starts_with("nonvoluntary_ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

//! Log compaction: when each group takes a snapshot.
//!
//! A snapshot lets a group purge its log behind it, so a restart replays
//! only the log written since, but it costs work in proportion to what the
//! shard holds: every key and every cross-region record is encoded and
//! written to a file. openraft's own policy, a snapshot every so many log
//! entries, pays that whole cost again every time however large the shard
//! is: with 2 million keys over 8 shards, SETs at depth 1 had a p99.9
//! latency of 178 ms, and 39 ms with the policy below (BENCHMARKS.md).
//! So a group takes a snapshot once both
//!
//! - at least `raft.snapshot_every` log entries were applied since its
//!   last one (openraft's policy, kept as a floor), and
//! - at least as many client writes were applied since then as that
//!   snapshot holds items: strings, fields of hashes, and cross-region
//!   records.
//!
//! The second spreads each snapshot's work over as many writes as it
//! encodes items, however many keys the shard holds, as Redis rewrites its
//! append-only file once it has grown by as much as it was
//! (`auto-aof-rewrite-percentage 100`). A shard whose keys keep growing is
//! snapshotted each time it has taken as many writes again as its last
//! snapshot held, and a restart replays at most about that many writes, or
//! the floor's entries, on top of the snapshot. A hash counts as many
//! items as it has fields, as encoding it costs, so that a shard of a few
//! very large hashes is not encoded whole at every floor.
//!
//! A node builds one snapshot at a time: every [`CHECK`] it looks at its
//! groups, starting after the one it snapshotted last, and has openraft
//! build a snapshot of each group due, one after the other, each once the
//! one before is built. Under an even load every group reaches its
//! threshold at about the same moment, and each node encoding and
//! fsyncing all of them at once held up its writes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::node::Node;
use crate::raft::typ::{GroupId, RaftMetrics};
use crate::shard::Shard;
use crate::ticker::Ticker;

/// How often a node looks for groups due a snapshot.
const CHECK: Duration = Duration::from_secs(1);
/// How long a node waits for a snapshot it asked for before it looks at
/// its groups again (a build can take this long only on a stalled disk).
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// Whether a group is due a snapshot, with `entries` log entries and
/// `writes` client writes applied since its last one, which holds `items`
/// (see the module's essay).
fn due(entries: u64, writes: u64, items: u64, snapshot_every: u64) -> bool {
    entries >= snapshot_every && writes >= items
}

/// Runs until `stop` turns true.
pub async fn run(node: Arc<Node>, stop: watch::Receiver<bool>) {
    let snapshot_every = node.config().raft.snapshot_every;
    let mut ticker = Ticker::new(CHECK, stop);
    let mut last = None;
    while ticker.tick().await {
        while let Some((shard, applied)) = next_due(&node, last, snapshot_every) {
            last = Some(shard.group);
            match ticker.unless_stopped(snapshot(shard, applied)).await {
                Some(true) => {}
                Some(false) => break,
                None => return,
            }
        }
    }
}

/// The first group due a snapshot after group `last` (wrapping round),
/// with the index of its last entry applied.
fn next_due(node: &Node, last: Option<GroupId>, snapshot_every: u64) -> Option<(&Shard, u64)> {
    let groups: Vec<&Shard> = node.shards().chain(node.meta_replica()).collect();
    let start = last.map_or(0, |last| groups.iter().position(|s| s.group > last).unwrap_or(0));
    let (passed, rest) = groups.split_at(start);
    rest.iter()
        .chain(passed)
        .find_map(|&shard| is_due(shard, snapshot_every))
}

/// `shard` and the index of its last entry applied, if it is due.
fn is_due(shard: &Shard, snapshot_every: u64) -> Option<(&Shard, u64)> {
    let metrics = shard.metrics();
    let applied = metrics.last_applied?.index;
    let entries = match metrics.snapshot {
        Some(snapshot) => applied.saturating_sub(snapshot.index),
        None => applied + 1,
    };
    let (writes, items) = shard.since_snapshot();
    due(entries, writes, items, snapshot_every).then_some((shard, applied))
}

/// Has openraft build a snapshot of `shard` and waits until one covers
/// the entry at `applied`; whether one does (a build that fails stops the
/// group).
async fn snapshot(shard: &Shard, applied: u64) -> bool {
    if let Err(err) = shard.raft().trigger().snapshot().await {
        tracing::warn!(shard = shard.shard, cause = %err, "snapshot not started");
        return false;
    }
    let covers = |m: &RaftMetrics| m.snapshot.is_some_and(|s| s.index >= applied);
    let wait = shard.raft().wait(Some(BUILD_TIMEOUT));
    let settled = wait.metrics(|m| covers(m) || m.running_state.is_err(), "snapshot built");
    match Box::pin(settled).await {
        Ok(metrics) => covers(&metrics),
        Err(err) => {
            tracing::warn!(shard = shard.shard, cause = %err, "snapshot not built in time");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_due_once_its_writes_since_cover_its_last_snapshot() {
        // A small shard: the entry floor decides.
        assert!(!due(9_999, 50_000, 100, 10_000));
        assert!(due(10_000, 50_000, 100, 10_000));
        // A large one waits for as many writes as its snapshot holds items.
        assert!(!due(50_000, 199_999, 200_000, 10_000));
        assert!(due(50_000, 200_000, 200_000, 10_000));
    }
}

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
//! - at least as many client writes were applied since then as the
//!   snapshot would hold items (keys and cross-region records).
//!
//! The second keeps the snapshots' work per write bounded however many
//! keys the shard holds, much as Redis rewrites its append-only file once
//! it has grown by as much as it was (`auto-aof-rewrite-percentage 100`),
//! and a restart replays about as many writes at most as the snapshot
//! holds items, on top of it. A collection counts as one item however many
//! fields it has, so a shard of a few very large hashes or sets is still
//! snapshotted as often as the floor says, as it was before.
//!
//! Every [`CHECK`] each node looks at its groups in turn and has openraft
//! build a snapshot of the first one due, then waits until it is built
//! before it looks further: one snapshot at a time per node. Under an even
//! load every group reaches its threshold at about the same moment, and
//! each node encoding and fsyncing all of them at once held up its writes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::node::Node;
use crate::shard::Shard;

/// How often a node looks for groups due a snapshot.
pub const CHECK: Duration = Duration::from_secs(1);
/// How long a node waits for a snapshot it asked for before it looks at
/// its groups again (a build that failed is retried then).
const BUILD_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether a group is due a snapshot, with `entries` log entries and
/// `writes` client writes applied since its last one, and `items` keys and
/// records to encode (see the module's essay).
pub fn due(entries: u64, writes: u64, items: u64, snapshot_every: u64) -> bool {
    entries >= snapshot_every && writes >= items
}

/// Runs until `stop` turns true.
pub async fn run(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let snapshot_every = node.config().raft.snapshot_every;
    let mut interval = tokio::time::interval(CHECK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let mut groups = node.shards().chain(node.meta_replica());
        let Some((shard, applied)) = groups.find_map(|shard| is_due(shard, snapshot_every)) else {
            continue;
        };
        tokio::select! {
            () = snapshot(shard, applied) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// `shard` and the index of its last entry applied, if it is due.
fn is_due(shard: &Shard, snapshot_every: u64) -> Option<(&Shard, u64)> {
    let metrics = shard.metrics();
    let applied = metrics.last_applied?.index;
    let entries = match metrics.snapshot {
        Some(snapshot) => applied - snapshot.index,
        None => applied + 1,
    };
    let (writes, items) = shard.since_snapshot();
    due(entries, writes, items, snapshot_every).then_some((shard, applied))
}

/// Has openraft build a snapshot of `shard` and waits until one covers
/// the entry at `applied`.
async fn snapshot(shard: &Shard, applied: u64) {
    if let Err(err) = shard.raft().trigger().snapshot().await {
        tracing::warn!(shard = shard.shard, cause = %err, "snapshot not started");
        return;
    }
    let wait = shard.raft().wait(Some(BUILD_TIMEOUT));
    let built = wait.metrics(|m| m.snapshot.is_some_and(|s| s.index >= applied), "snapshot built");
    if let Err(err) = Box::pin(built).await {
        tracing::warn!(shard = shard.shard, cause = %err, "snapshot not built in time");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_due_once_its_writes_since_cover_what_a_snapshot_holds() {
        // A small shard: the entry floor decides.
        assert!(!due(9_999, 50_000, 100, 10_000));
        assert!(due(10_000, 50_000, 100, 10_000));
        // A large one waits for as many writes as it holds items.
        assert!(!due(50_000, 199_999, 200_000, 10_000));
        assert!(due(50_000, 200_000, 200_000, 10_000));
    }
}

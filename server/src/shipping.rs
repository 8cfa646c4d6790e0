//! Shipping the cross-region log: the primary region's shard leaders send
//! their records to every secondary region.
//!
//! On a node of the primary region, one task per local primary group and
//! destination region runs while this node leads the group. It asks the
//! destination group what it holds (an empty batch), then sends the records
//! after that as a write of the destination group ([`WriteOp::Xlog`]),
//! forwarded to its leader like any request ([`Node::execute_in`]), which
//! proposes it through its own Raft log: a secondary region is as
//! zone-redundant as the primary. The reply is the gseq the destination
//! then holds, and the next batch starts after it, so a lost or repeated
//! batch costs a resend, never a gap or a double apply.
//!
//! One batch is in flight per destination; whatever was applied meanwhile
//! goes in the next one (up to [`MAX_BATCH_BYTES`]), so batches grow with
//! the load and the link's round trip. A batch that reaches the head of the
//! log carries the leader's clock from before it read the records: the
//! destination then holds every write acknowledged before that time (a
//! leader acknowledges a write only after applying it). With nothing to
//! send, an empty batch goes every [`HEARTBEAT`] so that the destination
//! can tell it is fresh.
//!
//! Once every destination acknowledged records, the leader trims them from
//! the log through its own group ([`WriteOp::XlogTrim`]). A destination that
//! needs records already trimmed, or claims more than the log has, is
//! reported as stuck in [`crate::shard::Shard::progress`] (`INFO
//! replication`): bringing it back needs a resync, which is not built yet.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::RegionRole;
use crate::keyspace::{Reply, Write, WriteOp};
use crate::node::Node;
use crate::placement::{RegionIndex, group_id};
use crate::shard::{Request, Shard, now_ms};
use crate::xlog::{Progress, Since};

/// The most payload bytes one batch carries (one record at least).
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// How often an idle destination hears that it is fresh.
pub const HEARTBEAT: Duration = Duration::from_millis(250);
/// How often a follower checks whether it now leads.
const LEADERSHIP_POLL: Duration = Duration::from_millis(100);
/// The pause after a failed or stuck batch.
const RETRY: Duration = Duration::from_millis(500);
/// Records acknowledged by every destination before they are trimmed.
const TRIM_BATCH: u64 = 1024;
/// Acknowledged records are trimmed at least this often.
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true; returns at once on a node outside the
/// primary region, or when there is no secondary region.
pub async fn run(node: Arc<Node>, stop: watch::Receiver<bool>) {
    let topology = &node.config().topology;
    let destinations: Vec<RegionIndex> = topology
        .region_specs()
        .iter()
        .enumerate()
        .filter(|(_, r)| r.role == RegionRole::Secondary)
        .map(|(i, _)| i as RegionIndex)
        .collect();
    if node.region().1 != RegionRole::Primary || destinations.is_empty() {
        return;
    }
    let mut tasks = JoinSet::new();
    for shard in node.serving().map(|s| s.shard) {
        for &region in &destinations {
            let shipper = Shipper {
                node: node.clone(),
                shard,
                region,
                destinations: destinations.len(),
                stop: stop.clone(),
            };
            tasks.spawn(shipper.run());
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Ships one shard's log to one destination region.
struct Shipper {
    node: Arc<Node>,
    shard: u64,
    region: RegionIndex,
    destinations: usize,
    stop: watch::Receiver<bool>,
}

impl Shipper {
    async fn run(mut self) {
        let target = group_id(self.region, self.shard);
        // What the destination holds, once it said so under this
        // leadership.
        let mut acked: Option<u64> = None;
        let mut sent = Instant::now() - HEARTBEAT;
        let mut trimmed = Instant::now();
        while !*self.stop.borrow() {
            let node = self.node.clone();
            let shard = node.shard(self.shard).expect("a shipper runs for a local replica");
            if shard.leader() != Some(node.id()) {
                acked = None;
                self.pause(LEADERSHIP_POLL).await;
                continue;
            }
            let as_of_ms = now_ms();
            let (records, complete) = match acked.map(|a| shard.xlog_since(a, MAX_BATCH_BYTES)) {
                None => (Vec::new(), false),
                Some(Since::Records { records, complete }) => (records, complete),
                Some(Since::Trimmed) => {
                    self.stuck(shard, acked, "needs records already trimmed; a resync is needed");
                    acked = None;
                    self.pause(RETRY).await;
                    continue;
                }
                Some(Since::Ahead) => {
                    self.stuck(shard, acked, "holds records this log never had; a resync is needed");
                    acked = None;
                    self.pause(RETRY).await;
                    continue;
                }
            };
            if acked.is_some() && records.is_empty() && sent.elapsed() < HEARTBEAT {
                let next = shard.applied_index() + 1;
                let wait = HEARTBEAT - sent.elapsed();
                tokio::select! {
                    _ = shard.wait_applied(next, wait) => {}
                    _ = self.stop.changed() => {}
                }
                continue;
            }
            let shipped = records.last().map(|r| r.gseq);
            let batch = WriteOp::Xlog {
                records,
                as_of_ms: if complete { as_of_ms } else { 0 },
            };
            sent = Instant::now();
            match node.execute_in(target, Request::Write(Write::new(batch))).await {
                Ok(answer) => match answer.reply {
                    Reply::Int(gseq) => {
                        let gseq = gseq as u64;
                        acked = Some(gseq);
                        let progress = Progress {
                            shipped: shipped.unwrap_or(gseq).max(gseq),
                            acked: gseq,
                            stuck: None,
                        };
                        shard.set_progress(self.region, progress);
                        if self.trim(shard, &mut trimmed).await {
                            trimmed = Instant::now();
                        }
                    }
                    other => {
                        self.stuck(shard, acked, &format!("answered {other:?}"));
                        acked = None;
                        self.pause(RETRY).await;
                    }
                },
                Err(err) => {
                    tracing::debug!(shard = self.shard, region = self.region, cause = %err, "shipping paused");
                    self.stuck(shard, acked, &err.to_string());
                    acked = None;
                    self.pause(RETRY).await;
                }
            }
        }
    }

    /// Trims the records every destination acknowledged, when enough of
    /// them piled up or a while passed since `trimmed`; whether it did.
    async fn trim(&self, shard: &Shard, trimmed: &mut Instant) -> bool {
        let progress = shard.progress();
        if progress.len() < self.destinations {
            return false;
        }
        let through = progress.values().map(|p| p.acked).min().unwrap_or(0);
        let Some(oldest) = shard.xlog_oldest() else {
            return false;
        };
        let due = through >= oldest + TRIM_BATCH || (through >= oldest && trimmed.elapsed() >= TRIM_EVERY);
        if !due {
            return false;
        }
        let trim = Request::Write(Write::new(WriteOp::XlogTrim { through }));
        match shard.execute(trim).await {
            Ok(_) => true,
            Err(err) => {
                tracing::debug!(shard = self.shard, cause = %err, "xlog not trimmed");
                *trimmed = Instant::now();
                false
            }
        }
    }

    /// Notes why shipping to this destination does not progress.
    fn stuck(&self, shard: &Shard, acked: Option<u64>, why: &str) {
        let mut progress = shard.progress().remove(&self.region).unwrap_or_default();
        progress.acked = progress.acked.max(acked.unwrap_or(0));
        progress.stuck = Some(why.to_string());
        shard.set_progress(self.region, progress);
    }

    /// Sleeps for `duration`, or until the node stops.
    async fn pause(&mut self, duration: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(duration) => {}
            _ = self.stop.wait_for(|stop| *stop) => {}
        }
    }
}

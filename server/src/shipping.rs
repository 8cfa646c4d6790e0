//! Shipping the cross-region log: the primary region's shard leaders send
//! their records to every secondary region and to the witness.
//!
//! On every node of a data region, one task per local group and
//! destination region (every other data region, and the witness) runs; it
//! ships while its group's region is the primary and this node leads the
//! group, so shipping follows failovers. Every batch carries the epoch the
//! group was opened in: a destination takes it only while it is sealed and
//! not in a later epoch (see [`crate::xlog::Xlog::admits`]), and the
//! witness only while no forced failover pulled it in a later epoch. It asks the
//! destination group what it holds (an empty batch), then sends the records
//! after that as a write of the destination group ([`WriteOp::Xlog`]),
//! forwarded to its leader like any request ([`Node::execute_in`]), which
//! proposes it through its own Raft log: a secondary region is as
//! zone-redundant as the primary. The witness gets the same records on the
//! peer service's `Witness` call and stores them (see [`crate::witness`]).
//! The reply is the gseq the destination then holds, and the next batch
//! starts after it, so a lost or repeated batch costs a resend, never a gap
//! or a double apply.
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
//! the log through its own group ([`WriteOp::XlogTrim`]); it trims the
//! oldest anyway once the log holds more than `[xlog] max_records`, or
//! more than `max_bytes` of writes, so a region that is down costs bounded
//! memory. A destination that needs
//! records already trimmed, or claims more than the log has, is resynced:
//! the leader sends it a copy of the shard as of its current gseq
//! ([`WriteOp::XlogReset`], in parts of up to [`MAX_BATCH_BYTES`]), then
//! ships from there. Why a destination does not progress is kept in
//! [`crate::shard::Shard::progress`] (`INFO replication`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::RegionRole;
use crate::keyspace::{KvError, Reply, Write, WriteOp};
use crate::node::Node;
use crate::placement::{RegionIndex, group_id};
use crate::raft::typ::{GroupId, NodeId};
use crate::shard::{Request, Shard, now_ms};
use crate::witness::WitnessBatch;
use crate::xlog::{Progress, Record, Since};

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

/// Where a shard's records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    /// Another data region's group of the shard.
    Region(GroupId),
    /// The witness node.
    Witness(NodeId),
}

/// Runs until `stop` turns true; returns at once on a node without data,
/// or when there is nowhere to ship to.
pub async fn run(node: Arc<Node>, stop: watch::Receiver<bool>) {
    let topology = &node.config().topology;
    let (own, role) = node.region();
    let destinations: Vec<(RegionIndex, Option<NodeId>)> = topology
        .region_specs()
        .iter()
        .enumerate()
        .map(|(index, spec)| (index as RegionIndex, spec.role))
        .filter(|&(index, _)| index != own)
        .map(|(index, role)| {
            (
                index,
                (role == RegionRole::Witness).then(|| topology.witness_node()).flatten(),
            )
        })
        .collect();
    if role == RegionRole::Witness || destinations.is_empty() {
        return;
    }
    let mut tasks = JoinSet::new();
    for shard in node.shards().map(|s| s.shard) {
        for &(region, witness) in &destinations {
            let shipper = Shipper {
                node: node.clone(),
                shard,
                own,
                region,
                to: match witness {
                    Some(node) => Destination::Witness(node),
                    None => Destination::Region(group_id(region, shard)),
                },
                destinations: destinations.len(),
                max_records: node.config().xlog.max_records,
                max_bytes: node.config().xlog.max_bytes,
                stop: stop.clone(),
            };
            tasks.spawn(shipper.run());
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Why a destination did not take a batch.
enum NotTaken {
    /// Its copy of the shard must be replaced first (a resync).
    NeedsCopy,
    /// Anything else, said.
    Failed(String),
}

/// Ships one shard's log to one destination region.
struct Shipper {
    node: Arc<Node>,
    shard: u64,
    /// This node's region, whose group ships while it is the primary.
    own: RegionIndex,
    /// The destination's region.
    region: RegionIndex,
    to: Destination,
    destinations: usize,
    /// `[xlog] max_records`.
    max_records: u64,
    /// `[xlog] max_bytes`.
    max_bytes: u64,
    stop: watch::Receiver<bool>,
}

impl Shipper {
    async fn run(mut self) {
        // What the destination holds, once it said so under this
        // leadership.
        let mut acked: Option<u64> = None;
        // The destination said its copy must be replaced.
        let mut needs_copy = false;
        let mut sent = Instant::now() - HEARTBEAT;
        let mut trimmed = Instant::now();
        while !*self.stop.borrow() {
            let node = self.node.clone();
            let group = node.group(group_id(self.own, self.shard));
            let shard = group.expect("a shipper runs for a local replica");
            if node.primary_of(self.shard) != self.own || shard.leader() != Some(node.id()) {
                if acked.take().is_some() {
                    shard.clear_progress(self.region);
                }
                self.pause(LEADERSHIP_POLL).await;
                continue;
            }
            let epoch = shard.stance().epoch;
            let as_of_ms = now_ms();
            let next = if needs_copy {
                Err("holds a copy to be replaced (an old primary's, or a resync cut short)")
            } else {
                match acked.map(|a| shard.xlog_since(a, MAX_BATCH_BYTES)) {
                    None => Ok((Vec::new(), false)),
                    Some(Since::Records { records, complete }) => Ok((records, complete)),
                    Some(Since::Trimmed) => Err("needed records already trimmed"),
                    Some(Since::Ahead) => Err("held records this log never had"),
                }
            };
            let (records, complete) = match next {
                Ok(next) => next,
                Err(why) => {
                    needs_copy = false;
                    self.stuck(shard, acked, &format!("resyncing: it {why}"));
                    acked = match self.resync(&node, shard, why, epoch).await {
                        Ok(gseq) => Some(gseq),
                        Err(err) => {
                            self.stuck(shard, None, &format!("resync failed: {err}"));
                            self.pause(RETRY).await;
                            None
                        }
                    };
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
            sent = Instant::now();
            match self
                .send(&node, records, if complete { as_of_ms } else { 0 }, epoch)
                .await
            {
                Ok(gseq) => {
                    acked = Some(gseq);
                    let progress = Progress {
                        shipped: shipped.unwrap_or(gseq).max(gseq),
                        acked: gseq,
                        stuck: None,
                    };
                    shard.set_progress(self.region, progress);
                }
                Err(NotTaken::NeedsCopy) => needs_copy = true,
                Err(NotTaken::Failed(err)) => {
                    tracing::debug!(shard = self.shard, region = self.region, cause = %err, "shipping paused");
                    self.stuck(shard, acked, &err);
                    acked = None;
                }
            }
            // Also when the destination is unreachable: the bound holds
            // while a region is down.
            self.trim(shard, &mut trimmed).await;
            if acked.is_none() {
                self.pause(RETRY).await;
            }
        }
    }

    /// Sends records (none: a probe or a heartbeat); the gseq the
    /// destination then holds.
    async fn send(&self, node: &Node, records: Vec<Record>, as_of_ms: u64, epoch: u64) -> Result<u64, NotTaken> {
        match self.to {
            Destination::Region(group) => {
                let batch = Write::new(WriteOp::Xlog {
                    records,
                    as_of_ms,
                    epoch,
                });
                let answer = node
                    .execute_in(group, Request::Write(batch))
                    .await
                    .map_err(|e| NotTaken::Failed(e.to_string()))?;
                match answer.reply {
                    Reply::Int(gseq) => Ok(gseq as u64),
                    Reply::Err(KvError::NeedsCopy) => Err(NotTaken::NeedsCopy),
                    Reply::Err(KvError::Fenced) => Err(NotTaken::Failed(format!(
                        "the destination takes writes itself or serves an epoch after {epoch}"
                    ))),
                    other => Err(NotTaken::Failed(format!("answered {other:?}"))),
                }
            }
            Destination::Witness(witness) => {
                let batch = WitnessBatch {
                    shard: self.shard,
                    records,
                    restart_after: None,
                    epoch,
                };
                node.send_to_witness(witness, batch)
                    .await
                    .map_err(|e| NotTaken::Failed(e.to_string()))
            }
        }
    }

    /// Brings a destination that needs records no longer kept back into
    /// the window; the gseq it then holds. A secondary region gets a copy
    /// of the shard, part by part; the witness, which holds records only,
    /// starts over at the oldest record kept (after the head, when the
    /// window is empty).
    async fn resync(&self, node: &Node, shard: &Shard, why: &str, epoch: u64) -> Result<u64, String> {
        let group = match self.to {
            Destination::Region(group) => group,
            Destination::Witness(witness) => {
                // From the oldest record kept, or after the head when none
                // is: the next write is then the witness's first.
                let after = match shard.xlog_oldest() {
                    Some(oldest) => oldest - 1,
                    None => shard.xlog_position().0,
                };
                let records = match shard.xlog_since(after, MAX_BATCH_BYTES) {
                    Since::Records { records, .. } => records,
                    _ => Vec::new(),
                };
                let batch = WitnessBatch {
                    shard: self.shard,
                    records,
                    restart_after: Some(after),
                    epoch,
                };
                tracing::warn!(shard = self.shard, after, "the witness starts over: it {why}");
                return node.send_to_witness(witness, batch).await.map_err(|e| e.to_string());
            }
        };
        let (gseq, parts) = shard.xlog_image(MAX_BATCH_BYTES).map_err(|e| e.to_string())?;
        tracing::warn!(
            shard = self.shard,
            region = self.region,
            gseq,
            parts = parts.len(),
            "resyncing a destination: it {why}"
        );
        let count = parts.len();
        for (part, image) in parts.into_iter().enumerate() {
            let last = part + 1 == count;
            let reset = WriteOp::XlogReset {
                gseq,
                part: part as u32,
                last,
                image,
                epoch,
            };
            let answer = node
                .execute_in(group, Request::Write(Write::new(reset)))
                .await
                .map_err(|e| e.to_string())?;
            match answer.reply {
                Reply::Ok if !last => {}
                Reply::Int(held) if last && held as u64 == gseq => return Ok(gseq),
                other => return Err(format!("part {part} of {count} answered {other:?}")),
            }
        }
        Err("a copy of no parts".into())
    }

    /// Trims the records every destination acknowledged, and any beyond
    /// the newest `[xlog] max_records` or `max_bytes`, when enough of them
    /// piled up or a while passed since `trimmed`.
    async fn trim(&self, shard: &Shard, trimmed: &mut Instant) {
        let Some(oldest) = shard.xlog_oldest() else {
            return;
        };
        let progress = shard.progress();
        let acked_by_all = if progress.len() < self.destinations {
            0
        } else {
            progress.values().map(|p| p.acked).min().unwrap_or(0)
        };
        let (head, _) = shard.xlog_position();
        let through = acked_by_all
            .max(head.saturating_sub(self.max_records))
            .max(shard.xlog_over_bytes(self.max_bytes));
        let due = through >= oldest + TRIM_BATCH || (through >= oldest && trimmed.elapsed() >= TRIM_EVERY);
        if !due {
            return;
        }
        let trim = Request::Write(Write::new(WriteOp::XlogTrim { through }));
        if let Err(err) = shard.execute(trim).await {
            tracing::debug!(shard = self.shard, cause = %err, "xlog not trimmed");
        }
        *trimmed = Instant::now();
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

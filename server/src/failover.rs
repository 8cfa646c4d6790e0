//! Failover: moving a failover group's primary to another region, and the
//! old primary's way back.
//!
//! [`start`] marks a failover in the group's record in the meta group (see
//! [`crate::meta`]); from then on the group's lease is not renewed, and
//! the meta group's leader drives it ([`run`]), so a driver that dies is
//! replaced by the next leader, which takes every step again (each is
//! idempotent). Each step concerns the failover group's shards only; the
//! other groups go on as they were:
//!
//! - **Planned.** Each shard's group in the old primary is sealed through
//!   its own log (`WriteOp::XlogSeal`): writes applied after the seal are
//!   refused, whoever proposed them, and the seal answers the shard's last
//!   gseq. The driver waits until the target's group holds that gseq (the
//!   old primary's shippers keep shipping), so nothing is lost.
//! - **Forced.** The old primary is not asked: the driver waits until the
//!   last lease the meta group granted has run out by its own clock (see
//!   [`crate::lease`]), then pulls from the witness every record the
//!   target lacks, in the new epoch (from then on the witness refuses the
//!   old one), and ships them to the target. What neither had is lost.
//!
//! Then every target group is opened in the failover's own epoch
//! ([`Meta::opening`]: one no failover before it began towards) with
//! `WriteOp::XlogOpen`, and the record switched ([`MetaOp::Switch`]) with
//! the gseq each shard was handed over at; the new primary's nodes renew
//! their lease at once and writes go on. A failover that cannot complete
//! is aborted with the reason, and a planned one reopens the old primary;
//! an opening that fails while some target group may be open is first
//! taken up again on every tick, for up to [`OPEN_WAIT`] after the
//! failover began. A target group that an earlier driver of the same
//! failover opened refuses the next driver's probe (it takes no shipping
//! while open), so the driver asks its stance instead (`Request::Stance`):
//! open in the failover's epoch, it holds what it held when opened, since
//! nothing writes to it before the switch grants its region the lease.
//!
//! An aborted failover may leave target groups open in its epoch (opened
//! before a later step failed, or by an opening whose answer was lost),
//! and a forced one the witness refusing the epoch before it. That epoch
//! is then abandoned ([`Meta::abandoned`]): no region is ever primary in
//! it, so nothing was written there. Each such group's leader closes it
//! back to the current epoch (`WriteOp::XlogClose`, [`close_abandoned`]),
//! and the witness lowers its floor back ([`unfence_witness`]); a driver
//! whose probe meets such a group closes it itself. The primary then ships
//! to them again, and the next failover finds them as they were.
//!
//! With the `automatic` policy the driver starts a forced failover to the
//! next data region itself once the primary renewed nothing for the
//! grace period.
//!
//! An old primary that comes back after a forced failover finds its groups
//! still open in an epoch that ended ([`step_down`]): each group's leader,
//! once a linearizable stance read has it apply its whole log, writes the
//! records past the handover to the lost-writes report
//! (`lost-writes.log` in the data dir: a line per record, then one with
//! the count), then gives up its copy (`WriteOp::XlogDiscard`), then tells
//! the meta group the count (`MetaOp::ReportLost`, shown by
//! `CAIRN.FAILOVERS`), again on every tick until it is recorded; a node
//! that crashed before that finds the count in its report when it starts
//! ([`unreported_in`]). The copy is given up because its state holds
//! those writes, and its gseqs past the handover number other writes than
//! the new primary's, so it takes no shipped records until the new
//! primary's shipper replaces it whole (a resync). A group with nothing
//! past the handover is only sealed.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{Durability, RegionRole};
use crate::error::{Error, Result};
use crate::keyspace::{KvError, Reply, Rpo, Write, WriteOp};
use crate::meta::{AUTOMATIC, Failing, Failover, FailoverGroup, Meta, MetaOp, Policy};
use crate::node::Node;
use crate::placement::{RegionIndex, group_id, shard_of_group};
use crate::shard::{Request, Shard, now_ms};
use crate::ticker::Ticker;
use crate::wire;
use crate::xlog::{Record, Stance};

/// How often the driver and the old primary look at the record.
const TICK: Duration = Duration::from_millis(100);
/// How long a planned failover waits for the target to catch up.
const DRAIN_WAIT: Duration = Duration::from_secs(10);
/// How long a new driver gives a live primary to renew before it trusts
/// the record's silence: three renewals' worth.
const RENEWAL_ROOM_MS: u64 = 3000;
/// How long after a failover began its driver goes on trying to open a
/// target that may be partly open, before it aborts.
const OPEN_WAIT: Duration = Duration::from_secs(20);
/// How long [`start`] waits for the failover to complete.
pub const FAILOVER_WAIT: Duration = Duration::from_secs(30);
/// The lost-writes report, in the data dir.
pub const LOST_WRITES_FILE: &str = "lost-writes.log";

/// The data region a failover of group `group` to `region` goes to, or
/// what is wrong with the request.
pub fn target(node: &Node, group: &str, region: &str) -> Result<RegionIndex> {
    let refuse = |why: String| Err(Error::Failover(why));
    if !node.has_meta_group() {
        return refuse("this cluster has one region: there is no failover group".into());
    }
    let groups = node.failover_groups();
    if !groups.iter().any(|g| g.name == group) {
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        return refuse(format!(
            "no failover group named '{group}' (failover groups: {})",
            names.join(", ")
        ));
    }
    let topology = &node.config().topology;
    let Some(to) = topology.region_index(region) else {
        let names: Vec<String> = topology.region_specs().iter().map(|r| r.name.clone()).collect();
        return refuse(format!("no region named '{region}' (regions: {})", names.join(", ")));
    };
    if topology.region_specs()[usize::from(to)].role == RegionRole::Witness {
        return refuse(format!(
            "region '{region}' is the witness: it holds no data and cannot be primary"
        ));
    }
    Ok(to)
}

/// What a forced failover now would lose, per shard: asked of each
/// shard's primary leader, counting as safe what the next region of its
/// failover group or the witness acknowledged.
pub async fn rpo(node: &Node) -> Result<Vec<(u64, Rpo)>> {
    let witness = node.config().topology.witness_region();
    let mut all = Vec::new();
    for group in node.failover_groups() {
        for &shard in &group.shards {
            let safe_in = group.next_region().into_iter().chain(witness).collect();
            all.push((shard, safe_in));
        }
    }
    all.sort_unstable_by_key(|&(shard, _)| shard);
    let mut rpos = Vec::new();
    for (shard, safe_in) in all {
        let request = Request::Rpo { safe_in };
        match node.execute(shard, request).await?.reply {
            Reply::Rpo(rpo) => rpos.push((shard, rpo)),
            other => return Err(Error::Wire(format!("shard {shard} answered {other:?}"))),
        }
    }
    Ok(rpos)
}

/// Starts a failover of failover group `group` to `to` and waits until
/// it switched (or gave up); the failover as the history keeps it, and the
/// epoch it switched to.
pub async fn start(
    node: &Node,
    group: &str,
    to: RegionIndex,
    forced: bool,
    by: String,
) -> Result<(Failover, Option<u64>)> {
    let begin = MetaOp::Begin {
        group: group.into(),
        to,
        forced,
        by,
    };
    let answer = node.execute_meta(begin).await?;
    if let Some(why) = answer.refused {
        return Err(Error::Failover(why));
    }
    let failing = answer.meta.group(group).and_then(|g| g.failing.clone());
    let started_ms = failing.map_or(0, |f| f.started_ms);
    let deadline = Instant::now() + FAILOVER_WAIT;
    while Instant::now() < deadline {
        tokio::time::sleep(TICK).await;
        let Ok(meta) = node.read_meta().await else {
            continue;
        };
        node.set_meta(meta.clone());
        let done = meta
            .history
            .iter()
            .rev()
            .find(|f| f.group == group && f.started_ms == started_ms);
        match done {
            Some(failover) if failover.aborted.is_some() => {
                return Err(Error::Failover(failover.aborted.clone().unwrap_or_default()));
            }
            Some(failover) => return Ok((failover.clone(), meta.to_epoch(failover))),
            None => {}
        }
    }
    Err(Error::Failover(format!(
        "not complete after {} s; CAIRN.STATUS shows how it goes on",
        FAILOVER_WAIT.as_secs()
    )))
}

/// Runs until `stop` turns true; returns at once in a cluster of one
/// region.
pub async fn run(node: Arc<Node>, stop: watch::Receiver<bool>) {
    if !node.has_meta_group() {
        return;
    }
    let mut ticker = Ticker::new(TICK, stop);
    // Since when (ms since the Unix epoch) this node has led a meta group
    // that answered: renewals cannot get through a meta group without a
    // majority, so the record's silence counts only once a live primary
    // has had [`RENEWAL_ROOM_MS`] to renew under this leader.
    let mut watching: Option<u64> = None;
    let mut unreported = unreported_in(&node.config().data_dir.join(LOST_WRITES_FILE));
    while ticker.tick().await {
        match node.region().1 {
            RegionRole::Witness => unfence_witness(&node).await,
            _ => {
                step_down(&node, &mut unreported).await;
                report_lost(&node, &mut unreported).await;
                close_abandoned(&node).await;
            }
        }
        let leads_meta = node.meta_replica().is_some_and(|m| m.leader() == Some(node.id()));
        let meta = match leads_meta {
            true => node.read_meta().await.ok().filter(|m| !m.groups.is_empty()),
            false => None,
        };
        match meta {
            Some(meta) => {
                // The groups' failovers go side by side: one that waits for
                // a drain or a lease holds no other back.
                let watching_ms = *watching.get_or_insert_with(now_ms);
                let drives = meta.groups.iter().map(|g| drive(&node, &meta, g, watching_ms));
                futures::future::join_all(drives).await;
            }
            None => watching = None,
        }
    }
}

/// On the meta group's leader, watching it since `watching_ms`: takes the
/// failover of `group` under way to its end, or starts one the policy
/// asks for.
async fn drive(node: &Node, meta: &Meta, group: &FailoverGroup, watching_ms: u64) {
    let (Some(failing), Some(opening)) = (group.failing.clone(), group.opening()) else {
        let now = now_ms();
        let silent_ms = now.saturating_sub(group.renewed_ms);
        let watched_ms = now.saturating_sub(watching_ms);
        if let Policy::Automatic { grace_ms } = group.policy
            && silent_ms > grace_ms
            && watched_ms > grace_ms.min(RENEWAL_ROOM_MS)
            && let Some(to) = group.next_region()
        {
            tracing::warn!(
                group = group.name,
                primary = group.primary,
                to,
                grace_ms,
                "the primary is silent: failing over"
            );
            let begin = MetaOp::Begin {
                group: group.name.clone(),
                to,
                forced: true,
                by: AUTOMATIC.into(),
            };
            if let Err(err) = node.execute_meta(begin).await {
                tracing::warn!(cause = %err, "automatic failover not started");
            }
        }
        return;
    };
    tracing::info!(
        group = group.name,
        from = group.primary,
        to = failing.to,
        forced = failing.forced,
        "failing over"
    );
    let attempt = Attempt {
        meta,
        group,
        failing: &failing,
        opening,
    };
    let handover = match failing.forced {
        true => pull(node, &attempt).await,
        false => drain(node, &attempt).await,
    };
    let opened = match handover {
        Ok(handover) => match open(node, group, failing.to, opening).await {
            Ok(()) => Ok(handover),
            Err(why)
                if now_ms() < failing.started_ms + OPEN_WAIT.as_millis() as u64
                    && maybe_open(node, group, failing.to, opening).await =>
            {
                // Taken up again from the next tick on: each step finds
                // what was done already.
                tracing::warn!(%why, "failover not complete yet");
                return;
            }
            Err(why) => Err(why),
        },
        Err(err) => Err(err),
    };
    let opened = opened.and_then(|handover| given_up_before_switch().map(|()| handover));
    let op = match opened {
        Ok(handover) => {
            // A driver that stops here (its node lost the meta group or
            // died) leaves the target open and the record unswitched.
            fail::fail_point!("failover-before-switch", |_| ());
            MetaOp::Switch {
                group: group.name.clone(),
                epoch: group.epoch,
                handover,
            }
        }
        Err(why) => {
            tracing::warn!(%why, "failover aborted");
            if !failing.forced {
                // Writes go on where they were.
                let _ = open(node, group, group.primary, group.epoch).await;
            }
            MetaOp::Abort {
                group: group.name.clone(),
                epoch: group.epoch,
                why,
            }
        }
    };
    match node.execute_meta(op).await {
        Ok(answer) => match answer.refused {
            None => tracing::info!(
                group = group.name,
                epoch = opening,
                primary = failing.to,
                "failover done"
            ),
            Some(why) => tracing::warn!(%why, "failover not recorded"),
        },
        Err(err) => tracing::warn!(cause = %err, "failover not recorded; the next leader takes it up"),
    }
}

/// Why the driver gives up with its target open, when the fault point
/// `failover-abort-before-switch` says to: the target is then left open in
/// an abandoned epoch.
fn given_up_before_switch() -> Result<(), String> {
    fail::fail_point!("failover-abort-before-switch", |_| Err(
        "given up before the switch (fault point failover-abort-before-switch)".into()
    ));
    Ok(())
}

/// The failover under way, as the driver found it.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    /// The meta group's state.
    meta: &'a Meta,
    /// Its failover group.
    group: &'a FailoverGroup,
    /// The failover.
    failing: &'a Failing,
    /// The epoch it opens its target in.
    opening: u64,
}

/// A planned failover's handover: seals the old primary and waits until
/// the target holds everything it applied.
async fn drain(node: &Node, attempt: &Attempt<'_>) -> Result<BTreeMap<u64, u64>, String> {
    let Attempt {
        meta,
        group,
        failing,
        opening,
    } = *attempt;
    let mut sealed = BTreeMap::new();
    for &shard in &group.shards {
        let seal = Request::Write(Write::new(WriteOp::XlogSeal));
        let gseq = gseq_of(node.execute_in(group_id(group.primary, shard), seal).await).map_err(|e| {
            format!("shard {shard} of the primary region could not be sealed ({e}); FORCE fails over without it")
        })?;
        sealed.insert(shard, gseq);
    }
    let deadline = Instant::now() + DRAIN_WAIT;
    for (&shard, &gseq) in &sealed {
        loop {
            let target = group_id(failing.to, shard);
            let held = probe(node, meta, target, group.epoch, opening).await;
            match held {
                Ok(held) if held >= gseq => break,
                _ if Instant::now() >= deadline => {
                    return Err(format!(
                        "shard {shard} of region {} did not catch up with gseq {gseq} within {} s ({held:?})",
                        failing.to,
                        DRAIN_WAIT.as_secs()
                    ));
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
    Ok(sealed)
}

/// A forced failover's handover: waits out the old primary's lease, then
/// fills the target in from the witness.
async fn pull(node: &Node, attempt: &Attempt<'_>) -> Result<BTreeMap<u64, u64>, String> {
    let Attempt {
        meta,
        group,
        failing,
        opening: epoch,
    } = *attempt;
    let wait = group.lease_end_ms().saturating_sub(now_ms());
    if wait > 0 {
        tracing::info!(wait_ms = wait, "waiting out the old primary's lease");
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    let witness = node.config().topology.witness_node();
    let mut handover = BTreeMap::new();
    for &shard in &group.shards {
        let target = group_id(failing.to, shard);
        let mut held = probe(node, meta, target, epoch, epoch)
            .await
            .map_err(|e| format!("shard {shard} of region {} cannot be reached: {e}", failing.to))?;
        while let Some(witness) = witness {
            let records = match node.pull_from_witness(witness, shard, held, epoch).await {
                Ok(records) => records,
                Err(err) if group.durability == Durability::Zone => {
                    tracing::warn!(shard, cause = %err, "the witness cannot be reached: failing over without it");
                    break;
                }
                Err(err) => {
                    return Err(format!(
                        "the witness cannot be reached ({err}) and durability = \"witness\" loses nothing"
                    ));
                }
            };
            if records.is_empty() {
                break;
            }
            let batch = WriteOp::Xlog {
                records,
                as_of_ms: 0,
                epoch,
            };
            let applied = gseq_of(node.execute_in(target, Request::Write(Write::new(batch))).await)
                .map_err(|e| format!("shard {shard}: the witness's records were not applied: {e}"))?;
            if applied <= held {
                return Err(format!(
                    "shard {shard}: the witness's records after gseq {held} do not apply"
                ));
            }
            held = applied;
        }
        handover.insert(shard, held);
    }
    Ok(handover)
}

/// Opens the groups of `region` that serve `group`'s shards in `epoch`.
async fn open(node: &Node, group: &FailoverGroup, region: RegionIndex, epoch: u64) -> Result<(), String> {
    for &shard in &group.shards {
        let open = Request::Write(Write::new(WriteOp::XlogOpen { epoch }));
        let answer = node.execute_in(group_id(region, shard), open).await;
        let why = match answer.map(|a| a.reply) {
            Ok(Reply::Int(_)) => continue,
            Ok(Reply::Nil) => "it holds a partial copy (a resync is under way)".to_string(),
            Ok(other) => format!("it answered {other:?}"),
            Err(err) => err.to_string(),
        };
        return Err(format!("shard {shard} of region {region} could not be opened: {why}"));
    }
    Ok(())
}

/// Whether some group of `region` serving `group`'s shards may be open
/// in `epoch`, by this driver or one before it (a group that does not
/// answer may be): the region is then open in an epoch the record has
/// not switched to, which finishing the failover sets right soonest.
async fn maybe_open(node: &Node, group: &FailoverGroup, region: RegionIndex, epoch: u64) -> bool {
    for &shard in &group.shards {
        let stance = stance_of(node, group_id(region, shard)).await;
        if !stance.is_ok_and(|(stance, _)| stance != Stance::open_in(epoch)) {
            return true;
        }
    }
    false
}

/// Group `group`'s stance and the gseq it holds, read linearizably.
async fn stance_of(node: &Node, group: u64) -> Result<(Stance, u64)> {
    match node.execute_in(group, Request::Stance).await?.reply {
        Reply::Stance { stance, gseq } => Ok((stance, gseq)),
        other => Err(Error::Failover(format!("answered {other:?} to a stance read"))),
    }
}

/// The gseq group `group` holds, asked with an empty batch of `epoch`. A
/// target that a driver before this one opened in `opening` (this
/// failover's epoch) refuses the batch, and holds what it held when it
/// was opened: nothing writes to it before the switch. One that an
/// aborted failover opened is closed first (see [`Meta::abandoned`]).
async fn probe(node: &Node, meta: &Meta, group: u64, epoch: u64, opening: u64) -> Result<u64> {
    let batch = WriteOp::Xlog {
        records: Vec::new(),
        as_of_ms: 0,
        epoch,
    };
    let request = Request::Write(Write::new(batch));
    let answer = node.execute_in(group, request.clone()).await?;
    if answer.reply != Reply::Err(KvError::Fenced) {
        return gseq_of(Ok(answer));
    }
    match stance_of(node, group).await? {
        (stance, gseq) if stance == Stance::open_in(opening) => Ok(gseq),
        (stance, _) if stance.serving && abandoned(meta, shard_of_group(group), stance.epoch) => {
            close(node, meta, group, stance.epoch).await?;
            gseq_of(node.execute_in(group, request).await)
        }
        (stance, _) => Err(Error::Failover(format!(
            "answered Err(Fenced), and is not open in epoch {opening} ({stance:?})"
        ))),
    }
}

/// Whether `shard`'s failover group abandoned `epoch` (see
/// [`Meta::abandoned`]).
fn abandoned(meta: &Meta, shard: u64, epoch: u64) -> bool {
    meta.group_of(shard).is_some_and(|g| meta.abandoned(g, epoch))
}

/// Closes group `group`, open in the `abandoned` epoch, back to the
/// current one of its failover group in `meta`.
async fn close(node: &Node, meta: &Meta, group: u64, abandoned: u64) -> Result<()> {
    let epoch = meta.group_of(shard_of_group(group)).map_or(0, |g| g.epoch);
    let close = WriteOp::XlogClose { abandoned, epoch };
    gseq_of(node.execute_in(group, Request::Write(Write::new(close))).await)?;
    tracing::warn!(group, abandoned, epoch, "closed a group an aborted failover had opened");
    Ok(())
}

/// On a data node: closes every group it leads that an aborted failover
/// left open (see [`Meta::abandoned`]), so that it takes shipping again.
async fn close_abandoned(node: &Node) {
    let meta = node.meta_view().borrow().clone();
    let leading = node.shards().filter(|s| s.leader() == Some(node.id()));
    for shard in leading {
        let stance = shard.stance();
        if !stance.serving || !abandoned(&meta, shard.shard, stance.epoch) {
            continue;
        }
        if let Err(err) = close(node, &meta, shard.group, stance.epoch).await {
            tracing::warn!(group = shard.group, cause = %err, "not closed yet");
        }
    }
}

/// On the witness: lowers each shard's floor that an aborted forced
/// failover raised to its abandoned epoch back to the current one, so
/// that the primary that stays can ship to it again.
async fn unfence_witness(node: &Node) {
    let Some(witness) = node.witness() else {
        return;
    };
    let meta = node.meta_view().borrow().clone();
    for group in &meta.groups {
        for &shard in &group.shards {
            let floor = witness.floor(shard);
            if !meta.abandoned(group, floor) {
                continue;
            }
            match witness.unfence(shard, floor, group.epoch).await {
                Ok(true) => tracing::warn!(
                    shard,
                    abandoned = floor,
                    epoch = group.epoch,
                    "the witness takes the current epoch again after an aborted failover"
                ),
                Ok(false) => {}
                Err(err) => tracing::warn!(shard, cause = %err, "the witness's floor not lowered yet"),
            }
        }
    }
}

/// The gseq a seal, an opening or a batch answered.
fn gseq_of(answer: Result<crate::shard::Answer>) -> Result<u64> {
    match answer?.reply {
        Reply::Int(gseq) => Ok(gseq as u64),
        other => Err(Error::Failover(format!("answered {other:?}"))),
    }
}

/// What this node's step-downs discarded and the meta group has not
/// recorded yet: records, by (ended epoch, shard).
type Unreported = BTreeMap<(u64, u64), u64>;

/// On a node of a region that is no longer the primary: every group it
/// leads that is still open in an epoch that ended writes the records past
/// the handover to the report, and their count to `unreported`, then
/// gives its copy up (or only seals it, when nothing is past the
/// handover).
async fn step_down(node: &Node, unreported: &mut Unreported) {
    let meta = node.meta_view().borrow().clone();
    let (region, _) = node.region();
    let leading = node.shards().filter(|s| s.leader() == Some(node.id()));
    for shard in leading {
        let Some(group) = meta.group_of(shard.shard) else {
            continue;
        };
        if group.primary == region || !open_before(shard.stance(), group.epoch) {
            continue;
        }
        // A leader just elected after a restart may not have applied all
        // its log yet: what it holds past the handover is read only once
        // it has (no client write is proposed to it meanwhile: its region
        // has no lease).
        let (stance, gseq) = match stance_of(node, shard.group).await {
            Ok(read) => read,
            Err(err) => {
                tracing::debug!(shard = shard.shard, cause = %err, "stance not read; stepping down later");
                continue;
            }
        };
        if !open_before(stance, group.epoch) {
            continue;
        }
        let handover = meta
            .ended(shard.shard, stance.epoch)
            .and_then(|f| f.handover.get(&shard.shard).copied());
        let handover = handover.unwrap_or(gseq);
        let lost = shard.xlog_after(handover);
        let records = gseq.saturating_sub(handover);
        if let Err(err) = report(node, shard, (stance.epoch, handover, records), &lost) {
            tracing::error!(cause = %err, "lost writes not reported; the group stays open");
            continue;
        }
        // With nothing past the handover this copy is the new primary's
        // up to there and only needs sealing; otherwise it holds writes the
        // new primary never had, so it is given up and resynced whole.
        let op = if lost.is_empty() {
            WriteOp::XlogSeal
        } else {
            WriteOp::XlogDiscard
        };
        let given_up = shard.execute(Request::Write(Write::new(op))).await;
        // A node that stops here has the count in its report only.
        fail::fail_point!("step-down-before-report", |_| ());
        // Told whether or not the step was answered: it may have applied
        // though its answer was lost, and one that did not is done again
        // next tick, on a copy nothing writes to, so with the same count.
        unreported.insert((stance.epoch, shard.shard), records);
        if let Err(err) = given_up {
            tracing::warn!(shard = shard.shard, cause = %err, "not sealed yet");
            continue;
        }
        tracing::warn!(
            shard = shard.shard,
            epoch = stance.epoch,
            records,
            "stepped down; writes past the handover discarded"
        );
    }
}

/// Whether a group in `stance` is open in an epoch before `epoch` (one
/// that ended).
fn open_before(stance: Stance, epoch: u64) -> bool {
    stance.serving && stance.epoch < epoch
}

/// Tells the meta group each count in `unreported` it has not recorded,
/// keeping those it could not reach it with for the next tick.
async fn report_lost(node: &Node, unreported: &mut Unreported) {
    if unreported.is_empty() {
        return;
    }
    let meta = node.meta_view().borrow().clone();
    if meta.groups.is_empty() {
        // Not heard from the meta group yet.
        return;
    }
    unreported.retain(|&(epoch, shard), _| !meta.ended(shard, epoch).is_some_and(|f| f.lost.contains_key(&shard)));
    let pending: Vec<((u64, u64), u64)> = unreported.iter().map(|(&key, &records)| (key, records)).collect();
    for ((epoch, shard), records) in pending {
        match node.execute_meta(MetaOp::ReportLost { epoch, shard, records }).await {
            Ok(answer) => {
                if let Some(why) = answer.refused {
                    tracing::warn!(epoch, shard, records, %why, "lost writes not recorded");
                }
                unreported.remove(&(epoch, shard));
            }
            Err(err) => {
                tracing::debug!(cause = %err, "lost writes not recorded yet; trying again");
                return;
            }
        }
    }
}

/// The counts a lost-writes report at `path` holds (its last count line
/// per ended epoch and shard): what this node may not have told the meta
/// group before it stopped. [`report_lost`] leaves out what it recorded.
fn unreported_in(path: &Path) -> Unreported {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Unreported::new(),
        Err(err) => {
            tracing::warn!(path = %path.display(), cause = %err, "lost-writes report unreadable; its counts are not told again");
            return Unreported::new();
        }
    };
    text.lines().filter_map(count_line).collect()
}

/// A count line's (ended epoch, shard) and count: exactly
/// `epoch=E shard=S handover=H discarded=N`, never a record line, whatever
/// its write's keys hold.
fn count_line(line: &str) -> Option<((u64, u64), u64)> {
    let parts: Vec<&str> = line.split(' ').collect();
    let [epoch, shard, handover, records] = parts.as_slice() else {
        return None;
    };
    let value = |part: &str, name: &str| part.strip_prefix(name)?.strip_prefix('=')?.parse::<u64>().ok();
    value(handover, "handover")?;
    Some((
        (value(epoch, "epoch")?, value(shard, "shard")?),
        value(records, "discarded")?,
    ))
}

/// Appends `lost` (the records of `shard` past `handover` that it applied
/// in `epoch`, `records` of them) to the lost-writes report, then a line
/// with their count, durably.
fn report(node: &Node, shard: &Shard, (epoch, handover, records): (u64, u64, u64), lost: &[Record]) -> Result<()> {
    let path = node.config().data_dir.join(LOST_WRITES_FILE);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let mut text = String::new();
    for record in lost {
        // A write with a client session may be retried by its client, and
        // applied again by the new primary: the session says whose it was.
        let (session, write) = match wire::decode::<Write>(&record.payload) {
            Ok(write) => (
                write.session.map(|s| format!(" session={}:{}", s.client, s.seq)),
                format!("{:?}", write.op),
            ),
            Err(err) => (None, format!("(undecodable: {err})")),
        };
        text.push_str(&format!(
            "epoch={epoch} shard={} gseq={} proposed_ms={}{} write={write}\n",
            shard.shard,
            record.gseq,
            record.proposed_ms,
            session.unwrap_or_default()
        ));
    }
    text.push_str(&format!(
        "epoch={epoch} shard={} handover={handover} discarded={records}\n",
        shard.shard
    ));
    file.write_all(text.as_bytes()).map_err(|e| Error::io(&path, e))?;
    file.sync_all().map_err(|e| Error::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_gives_back_its_last_count_per_epoch_and_shard() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOST_WRITES_FILE);
        assert!(unreported_in(&path).is_empty(), "no report, nothing to tell");
        // Shard 2's count line was never written: its record says nothing.
        let text = "epoch=1 shard=2 gseq=3 proposed_ms=5 write=Set { key: b\"x discarded=9 y\" }\n\
                    epoch=1 shard=0 gseq=7 proposed_ms=5 write=Set { key: b\"a\" }\n\
                    epoch=1 shard=0 handover=6 discarded=1\n\
                    epoch=1 shard=1 handover=9 discarded=0\n\
                    epoch=1 shard=0 gseq=7 proposed_ms=5 write=Set { key: b\"a\" }\n\
                    epoch=1 shard=0 handover=6 discarded=1\n\
                    epoch=3 shard=0 handover=20 discarded=4\n";
        std::fs::write(&path, text).unwrap();
        let counts = unreported_in(&path);
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            vec![((1, 0), 1), ((1, 1), 0), ((3, 0), 4)]
        );
    }
}

//! Cairn's own commands for the failover groups: `CAIRN.STATUS`,
//! `CAIRN.FAILOVER`, `CAIRN.FAILOVERS` and `CAIRN.RPO`.
//!
//! They read and change the meta group (see [`crate::meta`] and
//! [`crate::failover`]) from any node, and answer text in `INFO`'s
//! `field:value` shape (a block per failover group for `CAIRN.STATUS`, one
//! failover per line for `CAIRN.FAILOVERS`), naming regions as the
//! topology does. A cluster of one region has no failover group, and says
//! so.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use super::{Client, Outcome, Spec, error_frame, syntax_error};
use crate::config::Durability;
use crate::error::Error;
use crate::failover;
use crate::keyspace::Rpo;
use crate::meta::{Failover, FailoverGroup, Meta, Policy};
use crate::node::Node;
use crate::placement::RegionIndex;
use crate::resp::frame::Frame;
use crate::resp::server::Shared;
use crate::shard::now_ms;

/// `CAIRN.STATUS`.
pub static STATUS: Spec = Spec {
    name: "cairn.status",
    arity: 1,
    flags: &["admin", "stale"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@admin", "@slow"],
    run: |shared, _: &mut Client, _| {
        in_group(shared, |node| async move {
            let meta = node.read_meta().await?;
            if meta.groups.is_empty() {
                return Err(Error::Failover("the meta group holds no failover group yet".into()));
            }
            let mut blocks: Vec<String> = meta.groups.iter().map(|g| status(&node, g)).collect();
            blocks.push(layout_line(&meta));
            Ok(blocks.join("\n"))
        })
    },
};

/// `CAIRN.FAILOVER group TO region [FORCE]`.
pub static FAILOVER: Spec = Spec {
    name: "cairn.failover",
    arity: -4,
    flags: &["admin", "noscript"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@admin", "@slow", "@dangerous"],
    run: |shared, client: &mut Client, args| {
        let node = shared.node.clone();
        let target = match parse_failover(&node, &args) {
            Ok(target) => target,
            Err(frame) => return Outcome::Reply(frame),
        };
        let by = format!("client {} ({})", client.id(), client.entry.addr);
        Outcome::Later(Box::pin(async move {
            let (group, to, forced) = target;
            match failover::start(&node, &group, to, forced, by).await {
                Ok((failover, to_epoch)) => Frame::bulk(describe(&node, &failover, to_epoch)),
                Err(err) => error_frame(err),
            }
        }))
    },
};

/// `CAIRN.FAILOVERS`.
pub static FAILOVERS: Spec = Spec {
    name: "cairn.failovers",
    arity: 1,
    flags: &["admin", "stale"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@admin", "@slow"],
    run: |shared, _: &mut Client, _| {
        in_group(shared, |node| async move {
            let meta = node.read_meta().await?;
            let lines = meta.history.iter().map(|f| describe(&node, f, meta.to_epoch(f)) + "\n");
            Ok(lines.collect())
        })
    },
};

/// `CAIRN.RPO`.
pub static RPO: Spec = Spec {
    name: "cairn.rpo",
    arity: 1,
    flags: &["admin", "stale"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@admin", "@slow"],
    run: |shared, _: &mut Client, _| {
        in_group(shared, |node| async move {
            let shards = failover::rpo(&node).await?;
            let line = |(shard, rpo): &(u64, Rpo)| {
                format!(
                    "shard:{shard} head:{} safe:{} lost_records:{} lost_bytes:{} lost_ms:{}\n",
                    rpo.head, rpo.safe, rpo.lost.records, rpo.lost.bytes, rpo.lost.ms
                )
            };
            Ok(shards.iter().map(line).collect())
        })
    },
};

/// Answers the text `answer` makes, in a cluster with a failover group.
fn in_group<F, Fut>(shared: &Arc<Shared>, answer: F) -> Outcome
where
    F: FnOnce(Arc<Node>) -> Fut,
    Fut: Future<Output = Result<String, Error>> + Send + 'static,
{
    let node = shared.node.clone();
    if !node.has_meta_group() {
        return Outcome::Reply(error_frame(Error::Failover(
            "this cluster has one region: there is no failover group".into(),
        )));
    }
    let answered = answer(node);
    Outcome::Later(Box::pin(async move {
        match answered.await {
            Ok(text) => Frame::bulk(text),
            Err(err) => error_frame(err),
        }
    }))
}

/// `group TO region [FORCE]`: the target region and whether forced, or
/// the error naming what is wrong (nothing is changed).
fn parse_failover(node: &Node, args: &[Bytes]) -> Result<(String, RegionIndex, bool), Frame> {
    let forced = match args.get(4).map(|a| a.to_ascii_uppercase()) {
        None => false,
        Some(word) if word == b"FORCE" && args.len() == 5 => true,
        Some(_) => return Err(syntax_error()),
    };
    if !args[2].eq_ignore_ascii_case(b"TO") {
        return Err(syntax_error());
    }
    let group = String::from_utf8_lossy(&args[1]);
    let region = String::from_utf8_lossy(&args[3]);
    let to = failover::target(node, &group, &region).map_err(error_frame)?;
    Ok((group.into_owned(), to, forced))
}

fn region_name(node: &Node, region: RegionIndex) -> String {
    node.config().topology.region_name(region)
}

/// `CAIRN.STATUS`'s block for `group`.
fn status(node: &Node, group: &FailoverGroup) -> String {
    let mut out = String::new();
    let regions: Vec<String> = group.regions.iter().map(|&r| region_name(node, r)).collect();
    let policy = match group.policy {
        Policy::Manual => "manual".to_string(),
        Policy::Automatic { grace_ms } => format!("automatic grace_ms={grace_ms}"),
    };
    let shards: Vec<String> = group.shards.iter().map(u64::to_string).collect();
    let _ = writeln!(out, "failover_group:{}", group.name);
    let _ = writeln!(out, "shards:{}", shards.join(","));
    let _ = writeln!(out, "epoch:{}", group.epoch);
    let _ = writeln!(out, "primary:{}", region_name(node, group.primary));
    let _ = writeln!(out, "regions:{}", regions.join(","));
    let _ = writeln!(out, "policy:{policy}");
    let durability = match group.durability {
        Durability::Zone => "zone",
        Durability::Witness => "witness",
    };
    let _ = writeln!(out, "durability:{durability}");
    let _ = writeln!(out, "primary_silent_ms:{}", now_ms().saturating_sub(group.renewed_ms));
    match &group.failing {
        None => {
            let _ = writeln!(out, "state:serving");
        }
        Some(failing) => {
            let kind = if failing.forced { "forced" } else { "planned" };
            let _ = writeln!(
                out,
                "state:failing_over to={} kind={kind} by={} for_ms={}",
                region_name(node, failing.to),
                failing.by,
                now_ms().saturating_sub(failing.started_ms)
            );
        }
    }
    out
}

/// Whether the meta group recorded the cluster's layout, and its size.
fn layout_line(meta: &Meta) -> String {
    match &meta.layout {
        Some(layout) => {
            let (shards, regions, nodes) = (layout.slots.len(), layout.regions.len(), layout.nodes.len());
            format!("layout:recorded shards={shards} regions={regions} nodes={nodes}\n")
        }
        None => "layout:unrecorded\n".into(),
    }
}

/// One failover on one line, with the epoch it switched to.
fn describe(node: &Node, f: &Failover, to_epoch: Option<u64>) -> String {
    let kind = f.kind();
    let mut line = format!(
        "group:{} epoch:{}->{} from:{} to:{} kind:{kind} by:{} started_ms:{} rto_ms:{}",
        f.group,
        f.from_epoch,
        to_epoch.map_or_else(|| "?".to_string(), |e| e.to_string()),
        region_name(node, f.from),
        region_name(node, f.to),
        f.by.replace(' ', "_"),
        f.started_ms,
        f.rto_ms()
    );
    if let Some(why) = &f.aborted {
        line = format!(
            "group:{} epoch:{} from:{} to:{} kind:{kind} started_ms:{} aborted:{}",
            f.group,
            f.from_epoch,
            region_name(node, f.from),
            region_name(node, f.to),
            f.started_ms,
            why.replace(' ', "_")
        );
        return line;
    }
    let handover: Vec<String> = f
        .handover
        .iter()
        .map(|(shard, gseq)| format!("{shard}={gseq}"))
        .collect();
    let _ = write!(line, " handover:{}", handover.join(","));
    let lost = match f.lost() {
        (lost, 0) => lost.to_string(),
        (lost, unreported) => format!("{lost}+unknown({unreported}_shards_not_reported)"),
    };
    let _ = write!(line, " lost_records:{lost}");
    line
}

//! `INFO [section ...]`: the sections client libraries read, in Redis's
//! `key:value` text format (a verbatim string under RESP3).
//!
//! `memory` reports the process's resident memory as `used_memory` (Cairn
//! has no allocator accounting of its own); `persistence` reports no RDB or
//! AOF work ever in progress, because every write is durable in the Raft
//! log when it is acknowledged (`cairn_raft_log_fsync` says how).
//!
//! `keyspace` counts the keys held by this node's local replicas of shards
//! it leads (and, for shards led elsewhere, the local replica's count), so
//! `INFO` never waits on the network.
//!
//! `replication` has a line per local group (`cairn_shard<n>`: its Raft
//! role and position, its gseq in the cross-region log and, on a secondary
//! region's replica, how far behind the primary's clock it is), and on the
//! leader of a primary group a line per destination region
//! (`cairn_xlog<n>`: shipped and acknowledged gseq, and the lag in records,
//! bytes and milliseconds); on the witness, a line per shard
//! (`cairn_witness<n>`: the oldest and newest gseq it holds). In a
//! cluster of several regions, a `cairn_failover_<group>` line per
//! failover group says which region is its primary in which epoch as the
//! node last heard, whether this node holds its primary lease, and its
//! failovers and records lost so far (from the reports of old primaries
//! that came back).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::hello::REDIS_VERSION;
use super::{Client, Outcome, Spec};
use crate::config::Fsync;
use crate::node::Node;
use crate::resp::frame::Frame;
use crate::resp::server::Shared;
use crate::shard::{Shard, now_ms};

/// `INFO`.
pub static SPEC: Spec = Spec {
    name: "info",
    arity: -1,
    flags: &["loading", "stale"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@slow", "@dangerous"],
    run: |shared, _: &mut Client, args| {
        let wanted: Vec<String> = args[1..]
            .iter()
            .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
            .collect();
        Outcome::Reply(Frame::Verbatim {
            format: *b"txt",
            text: render(shared, &wanted).into(),
        })
    },
};

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cluster",
    "keyspace",
];

/// This process's resident memory in bytes (Linux `/proc/self/statm`; 0
/// where that is not available).
fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok());
    pages.unwrap_or(0) * 4096
}

/// Bytes as Redis's `*_human` fields print them (`1.50M`).
fn human(bytes: u64) -> String {
    const UNITS: &[(&str, u64)] = &[("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    UNITS.iter().find(|(_, size)| bytes >= *size).map_or_else(
        || format!("{bytes}B"),
        |(unit, size)| format!("{:.2}{unit}", bytes as f64 / *size as f64),
    )
}

fn render(shared: &Arc<Shared>, wanted: &[String]) -> String {
    let everything = wanted.iter().any(|w| w == "all" || w == "everything");
    let show = |section: &str| {
        if wanted.is_empty() || wanted.iter().any(|w| w == "default") {
            DEFAULT_SECTIONS.contains(&section)
        } else {
            everything || wanted.iter().any(|w| w == section)
        }
    };
    let node = &shared.node;
    let me = node.config().me();
    let mut out = String::new();
    if show("server") {
        let uptime = shared.started.elapsed().as_secs();
        let _ = write!(
            out,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\ncairn_version:{}\r\nredis_mode:standalone\r\n\
             os:{}\r\narch_bits:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime}\r\n\
             uptime_in_days:{}\r\ncairn_node_id:{}\r\ncairn_zone:{}\r\ncairn_region:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            usize::BITS,
            std::process::id(),
            me.resp_addr.port(),
            uptime / 86_400,
            me.id,
            me.zone,
            me.region,
        );
    }
    if show("clients") {
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\n\r\n",
            shared.clients.load(Ordering::Relaxed)
        );
    }
    if show("memory") {
        let resident = resident_bytes();
        let _ = write!(
            out,
            "# Memory\r\nused_memory:{resident}\r\nused_memory_human:{}\r\nused_memory_rss:{resident}\r\n\
             used_memory_rss_human:{}\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n\
             mem_allocator:libc\r\n\r\n",
            human(resident),
            human(resident),
        );
    }
    if show("persistence") {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let started = now.saturating_sub(shared.started.elapsed()).as_secs();
        let (entries, writes) = node.proposed();
        let fsync = match node.config().storage.fsync {
            Fsync::Always => "always",
            Fsync::Never => "never",
        };
        let _ = write!(
            out,
            "# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:0\r\n\
             rdb_bgsave_in_progress:0\r\nrdb_last_save_time:{started}\r\nrdb_last_bgsave_status:ok\r\n\
             aof_enabled:0\r\naof_rewrite_in_progress:0\r\ncairn_raft_log_fsync:{fsync}\r\n\
             cairn_raft_log_fsyncs:{}\r\ncairn_raft_entries_proposed:{entries}\r\n\
             cairn_writes_proposed:{writes}\r\n\r\n",
            node.log_fsyncs(),
        );
    }
    if show("stats") {
        let _ = write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\r\n",
            shared.connections.load(Ordering::Relaxed),
            shared.commands.load(Ordering::Relaxed)
        );
    }
    if show("replication") {
        match shared.read_only {
            // As a Redis replica says it: its master is this node's
            // read/write listener, which takes the writes it refuses.
            Some(_) => {
                let master = node.config().me().resp_addr;
                let _ = write!(
                    out,
                    "# Replication\r\nrole:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\n\
                     master_link_status:up\r\nslave_read_only:1\r\nconnected_slaves:0\r\n",
                    master.ip(),
                    master.port()
                );
            }
            None => {
                let _ = write!(out, "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n");
            }
        }
        if node.has_meta_group() {
            let meta = node.meta_view().borrow().clone();
            for group in node.failover_groups() {
                let history = meta.history.iter().filter(|f| f.group == group.name);
                let switched = history.clone().filter(|f| f.aborted.is_none()).count();
                let lost: u64 = history.map(|f| f.lost().0).sum();
                let _ = write!(
                    out,
                    "cairn_failover_{}:epoch={},primary={},lease={},failovers={switched},lost_records={lost}\r\n",
                    group.name,
                    group.epoch,
                    node.config().topology.region_name(group.primary),
                    u8::from(node.lease(&group.name).is_some_and(|l| l.holds())),
                );
            }
        }
        for shard in node.shards() {
            let metrics = shard.metrics();
            let role = if metrics.current_leader == Some(node.id()) {
                "leader"
            } else {
                "follower"
            };
            let (gseq, fresh_ms) = shard.xlog_position();
            let _ = write!(
                out,
                "cairn_shard{}:role={role},leader={},term={},applied={},group={},gseq={gseq}",
                shard.shard,
                metrics.current_leader.unwrap_or(0),
                metrics.current_term,
                metrics.last_applied.as_ref().map_or(0, |l| l.index()),
                shard.group,
            );
            if fresh_ms > 0 {
                let _ = write!(out, ",fresh_lag_ms={}", now_ms().saturating_sub(fresh_ms));
            }
            out.push_str("\r\n");
            if role == "leader" {
                xlog_lines(&mut out, node, shard);
            }
        }
        if let Some(witness) = node.witness() {
            for shard in 0..u64::from(node.slots().shards()) {
                let held = witness.held(shard);
                let _ = write!(
                    out,
                    "cairn_witness{shard}:oldest={},head={}\r\n",
                    held.oldest, held.head
                );
            }
        }
        out.push_str("\r\n");
    }
    if show("cluster") {
        out.push_str("# Cluster\r\ncluster_enabled:1\r\n\r\n");
    }
    if show("keyspace") {
        let keys: usize = node.shards().map(|s| s.key_count()).sum();
        let expires: usize = node.shards().map(|s| s.expiring_count()).sum();
        out.push_str("# Keyspace\r\n");
        if keys > 0 {
            let _ = write!(out, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
        }
        out.push_str("\r\n");
    }
    while out.ends_with("\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

/// One line per destination region the shard's log ships to (written by
/// its leader): what was shipped and acknowledged, what the destination
/// lacks in records, bytes and milliseconds, and how many records the log
/// keeps for all destinations.
fn xlog_lines(out: &mut String, node: &Node, shard: &Shard) {
    let regions = node.config().topology.region_specs();
    for (region, progress, lag) in shard.shipping() {
        let _ = write!(
            out,
            "cairn_xlog{}:region={},shipped={},acked={},lag_records={},lag_bytes={},lag_ms={},kept={}",
            shard.shard,
            regions.get(usize::from(region)).map_or("?", |r| r.name.as_str()),
            progress.shipped,
            progress.acked,
            lag.records,
            lag.bytes,
            lag.ms,
            shard.xlog_kept(),
        );
        if let Some(why) = &progress.stuck {
            let _ = write!(out, ",stuck={}", why.replace([',', '\r', '\n'], " "));
        }
        out.push_str("\r\n");
    }
}

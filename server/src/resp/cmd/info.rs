//! `INFO [section ...]`: the sections client libraries read, in Redis's
//! `key:value` text format (a verbatim string under RESP3).
//!
//! `keyspace` counts the keys held by this node's local replicas of shards
//! it leads (and, for shards led elsewhere, the local replica's count), so
//! `INFO` never waits on the network.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::hello::REDIS_VERSION;
use super::{Client, Outcome, Spec};
use crate::resp::frame::Frame;
use crate::resp::server::Shared;

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

const DEFAULT_SECTIONS: &[&str] = &["server", "clients", "stats", "replication", "cluster", "keyspace"];

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
    if show("stats") {
        let _ = write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\r\n",
            shared.connections.load(Ordering::Relaxed),
            shared.commands.load(Ordering::Relaxed)
        );
    }
    if show("replication") {
        let _ = write!(out, "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n");
        for shard in node.shards() {
            let metrics = shard.metrics();
            let role = if metrics.current_leader == Some(node.id()) {
                "leader"
            } else {
                "follower"
            };
            let _ = write!(
                out,
                "cairn_shard{}:role={role},leader={},term={},applied={}\r\n",
                shard.id,
                metrics.current_leader.unwrap_or(0),
                metrics.current_term,
                metrics.last_applied.as_ref().map_or(0, |l| l.index()),
            );
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

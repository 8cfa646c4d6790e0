//! `CLUSTER INFO | MYID | KEYSLOT | SLOTS | SHARDS | NODES |
//! COUNTKEYSINSLOT | GETKEYSINSLOT`, `READONLY` and
//! `READWRITE`: enough of Redis Cluster's protocol for cluster-aware
//! clients to route each key straight to its shard leader.
//!
//! Cairn's shards are Redis Cluster's slot ranges, and a shard's leader is
//! the range's master; the other replicas are its replicas. A node leads
//! some shards and follows others, so in `CLUSTER NODES` every node is a
//! master of the slots it leads. Node ids are the topology's numeric ids
//! written as 40 hex digits. Asking for the slot map (or sending
//! `READONLY`/`READWRITE`) marks the connection cluster-aware: from then on
//! a command for a shard led elsewhere gets `-MOVED slot host:port` instead
//! of being forwarded (see [`super::dispatch`]). On the read-only
//! listener the addresses given are the nodes' read-only listeners, so a
//! cluster client that starts there stays on them (and is never moved).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use super::{Client, Outcome, Spec, error_frame, parse_int};
use crate::config::NodeSpec;
use crate::keyspace::{Read, Reply};
use crate::resp::frame::Frame;
use crate::resp::server::Shared;
use crate::shard::Request;
use crate::slot::{SLOTS, key_slot};

/// A node's Redis Cluster id.
pub fn node_id(id: u64) -> String {
    format!("{id:040x}")
}

/// A shard's leader as this node knows it, else its first replica.
fn master(shared: &Shared, shard: u64) -> u64 {
    let node = &shared.node;
    node.shard(shard)
        .and_then(|s| s.leader())
        .unwrap_or_else(|| node.serving_replicas(shard)[0])
}

fn spec_of(shared: &Shared, id: u64) -> Option<&NodeSpec> {
    shared.node.config().topology.node(id)
}

/// Where a client of this listener reaches `node`: its read-only
/// listener for a client of the read-only listener (where it has one), so
/// that a cluster client stays on read-only listeners; else its RESP
/// address.
fn listener_of(shared: &Shared, node: &NodeSpec) -> SocketAddr {
    match (&shared.read_only, node.ro_addr) {
        (Some(_), Some(ro)) => ro,
        _ => node.resp_addr,
    }
}

/// `[ip, port, id]` of a node (`CLUSTER SLOTS`).
fn slot_node(shared: &Shared, node: &NodeSpec) -> Frame {
    let addr = listener_of(shared, node);
    Frame::Array(vec![
        Frame::bulk(addr.ip().to_string()),
        Frame::Integer(addr.port().into()),
        Frame::bulk(node_id(node.id)),
    ])
}

fn slots(shared: &Shared) -> Frame {
    let map = shared.node.slots();
    let ranges = (0..u64::from(map.shards()))
        .map(|shard| {
            let (first, last) = map.slot_range(shard);
            let leader = master(shared, shard);
            let mut entry = vec![Frame::Integer(first.into()), Frame::Integer(last.into())];
            let replicas = shared.node.serving_replicas(shard).iter().copied();
            let ordered = std::iter::once(leader).chain(replicas.filter(|&n| n != leader));
            entry.extend(ordered.filter_map(|n| spec_of(shared, n)).map(|n| slot_node(shared, n)));
            Frame::Array(entry)
        })
        .collect();
    Frame::Array(ranges)
}

fn shards(shared: &Shared) -> Frame {
    let map = shared.node.slots();
    let entries = (0..u64::from(map.shards()))
        .map(|shard| {
            let (first, last) = map.slot_range(shard);
            let leader = master(shared, shard);
            let applied = shared
                .node
                .shard(shard)
                .and_then(|s| s.metrics().last_applied)
                .map_or(0, |l| l.index());
            let nodes = shared
                .node
                .serving_replicas(shard)
                .iter()
                .filter_map(|&n| spec_of(shared, n))
                .map(|n| {
                    let role = if n.id == leader { "master" } else { "replica" };
                    let addr = listener_of(shared, n);
                    Frame::Map(vec![
                        (Frame::bulk("id"), Frame::bulk(node_id(n.id))),
                        (Frame::bulk("port"), Frame::Integer(addr.port().into())),
                        (Frame::bulk("ip"), Frame::bulk(addr.ip().to_string())),
                        (Frame::bulk("endpoint"), Frame::bulk(addr.ip().to_string())),
                        (Frame::bulk("role"), Frame::bulk(role)),
                        (Frame::bulk("replication-offset"), Frame::Integer(applied as i64)),
                        (Frame::bulk("health"), Frame::bulk("online")),
                    ])
                })
                .collect();
            Frame::Map(vec![
                (
                    Frame::bulk("slots"),
                    Frame::Array(vec![Frame::Integer(first.into()), Frame::Integer(last.into())]),
                ),
                (Frame::bulk("nodes"), Frame::Array(nodes)),
            ])
        })
        .collect();
    Frame::Array(entries)
}

fn nodes(shared: &Shared) -> Frame {
    let map = shared.node.slots();
    let me = shared.node.id();
    let mut out = String::new();
    for node in &shared.node.config().topology.nodes {
        let flags = if node.id == me { "myself,master" } else { "master" };
        let _ = write!(
            out,
            "{} {}@{} {flags} - 0 0 0 connected",
            node_id(node.id),
            listener_of(shared, node),
            node.grpc_addr.port()
        );
        for shard in (0..u64::from(map.shards())).filter(|&s| master(shared, s) == node.id) {
            let (first, last) = map.slot_range(shard);
            let _ = write!(out, " {first}-{last}");
        }
        out.push('\n');
    }
    Frame::bulk(out)
}

fn info(shared: &Shared) -> Frame {
    let node = &shared.node;
    let shards = u64::from(node.slots().shards());
    let led = (0..shards)
        .filter(|&s| node.shard(s).and_then(|s| s.leader()).is_some())
        .count() as u64;
    let state = if led == shards { "ok" } else { "fail" };
    let term = node.shards().map(|s| s.metrics().current_term).max().unwrap_or(0);
    let masters: std::collections::BTreeSet<u64> = (0..shards).map(|s| master(shared, s)).collect();
    Frame::bulk(format!(
        "cluster_state:{state}\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:{}\r\n\
         cluster_slots_pfail:0\r\ncluster_slots_fail:{}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\n\
         cluster_current_epoch:{term}\r\ncluster_my_epoch:{term}\r\ncluster_stats_messages_sent:0\r\n\
         cluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n",
        if state == "ok" { 16384 } else { 0 },
        if state == "ok" { 0 } else { 16384 },
        node.config().topology.nodes.len(),
        masters.len(),
    ))
}

/// `COUNTKEYSINSLOT slot` (no `count`) or `GETKEYSINSLOT slot count`,
/// answered by the leader of the slot's shard.
fn slot_keys(shared: &Arc<Shared>, slot: &[u8], count: Option<&[u8]>) -> Outcome {
    let slot = match parse_int(slot) {
        Ok(slot) if (0..i64::from(SLOTS)).contains(&slot) => slot as u16,
        Ok(_) => return Outcome::Reply(Frame::error("ERR Invalid slot")),
        Err(_) => return Outcome::Reply(Frame::error("ERR Invalid slot")),
    };
    let limit = match count.map(parse_int) {
        None => usize::MAX,
        Some(Ok(n)) if n >= 0 => n as usize,
        Some(_) => return Outcome::Reply(Frame::error("ERR Invalid number of keys")),
    };
    let counting = count.is_none();
    let shared = shared.clone();
    Outcome::Later(Box::pin(async move {
        let shard = shared.node.slots().shard_of_slot(slot);
        match shared
            .execute(shard, Request::Read(Read::SlotKeys { slot, limit }))
            .await
        {
            Ok(answer) => match answer.reply {
                Reply::Keys(keys) if counting => Frame::Integer(keys.len() as i64),
                Reply::Keys(keys) => Frame::Array(keys.into_iter().map(Frame::Bulk).collect()),
                other => Frame::error(format!("ERR unexpected reply {other:?}")),
            },
            Err(err) => error_frame(err),
        }
    }))
}

fn cluster(shared: &Arc<Shared>, client: &mut Client, args: &[bytes::Bytes]) -> Outcome {
    let sub = args[1].to_ascii_lowercase();
    let wrong_args = || {
        Frame::error(format!(
            "ERR wrong number of arguments for 'cluster|{}' command",
            String::from_utf8_lossy(&sub)
        ))
    };
    Outcome::Reply(match (sub.as_slice(), args.len()) {
        (b"info", 2) => info(shared),
        (b"myid", 2) => Frame::bulk(node_id(shared.node.id())),
        (b"keyslot", 3) => Frame::Integer(key_slot(&args[2]).into()),
        (b"slots", 2) => {
            client.cluster_aware = true;
            slots(shared)
        }
        (b"shards", 2) => {
            client.cluster_aware = true;
            shards(shared)
        }
        (b"nodes", 2) => {
            client.cluster_aware = true;
            nodes(shared)
        }
        (b"countkeysinslot", 3) => return slot_keys(shared, &args[2], None),
        (b"getkeysinslot", 4) => return slot_keys(shared, &args[2], Some(&args[3])),
        (
            b"info" | b"myid" | b"keyslot" | b"slots" | b"shards" | b"nodes" | b"countkeysinslot" | b"getkeysinslot",
            _,
        ) => wrong_args(),
        _ => Frame::error(format!(
            "ERR unknown subcommand '{}'. Try CLUSTER HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    })
}

/// `CLUSTER`.
pub static CLUSTER: Spec = Spec {
    name: "cluster",
    arity: -2,
    flags: &["stale"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@slow"],
    run: |shared, client: &mut Client, args| cluster(shared, client, &args),
};

/// `READONLY`: accepted; marks the connection cluster-aware (reads are
/// still answered by shard leaders).
pub static READONLY: Spec = Spec {
    name: "readonly",
    arity: 1,
    flags: &["loading", "stale", "fast"],
    categories: &["@keyspace", "@fast"],
    run: |_, client: &mut Client, _| {
        client.cluster_aware = true;
        Outcome::Reply(Frame::ok())
    },
    ..CLUSTER
};

/// `READWRITE`: accepted; marks the connection cluster-aware.
pub static READWRITE: Spec = Spec {
    name: "readwrite",
    ..READONLY
};

//! Consensus: one openraft group per shard, all groups of a node sharing one
//! store and one connection per peer.
//!
//! - [`typ`]: every openraft type, named once.
//! - [`log_store`]: a group's Raft log and state in the node store, with a
//!   crc32 on every record.
//! - [`state_machine`] and [`snapshot_file`]: the in-memory keyspace a group
//!   applies to, and its checksummed snapshot files.
//! - [`network`]: Raft RPCs to peers over gRPC, multiplexed by group id,
//!   and replication on [`append_link`]'s connections of its own.
//!
//! The protocol is Raft (Ongaro & Ousterhout, 2014) as openraft implements
//! it, with pre-vote, leader leases for reads (§6.4's lease-based read, with
//! ReadIndex as fallback) and snapshots for log compaction (§7).
//!
//! A leader that restarts must win a new election before it leads again
//! (openraft's `enable_leader_restore` is off). A leader sends its entries
//! to followers before they are durable in its own log, so a crash can
//! leave it with a shorter log than its followers hold in its term. Were it
//! to lead on in that term, its next entries would take the indexes and the
//! term of entries the followers already hold; a follower takes an entry
//! with the same index and term as one it holds for the same entry, keeps
//! its own, and reports it as matched, so the leader would acknowledge
//! writes that no follower stored (the fault matrix found this:
//! docs/testing.md). A leader of a new term writes entries of that term,
//! which replace any others at their indexes.

pub mod append_link;
pub mod log_store;
pub mod network;
pub mod snapshot_file;
pub mod state_machine;
pub mod typ;

use crate::config::RaftOptions;
use crate::error::{Error, Result};

/// The openraft configuration for every group of a node.
pub fn openraft_config(cluster_name: &str, options: &RaftOptions) -> Result<openraft::Config> {
    let config = openraft::Config {
        cluster_name: cluster_name.to_string(),
        heartbeat_interval: options.heartbeat_ms,
        election_timeout_min: options.election_timeout_min_ms,
        election_timeout_max: options.election_timeout_max_ms,
        // Snapshots are taken when `crate::compaction` says.
        snapshot_policy: openraft::SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: options.logs_kept_behind_snapshot,
        install_snapshot_timeout: 10_000,
        enable_pre_vote: Some(true),
        enable_leader_restore: Some(false),
        ..Default::default()
    };
    config
        .validate()
        .map_err(|e| Error::Config(format!("raft settings rejected: {e}")))
}

//! Every openraft type Cairn uses, named once.
//!
//! openraft 0.10 is generic over a type configuration; the rest of the crate
//! uses these aliases only, so an openraft upgrade is a change to this file.

use crate::keyspace::{Reply, Write};
use crate::raft::snapshot_file::SnapshotFile;
use crate::raft::state_machine::StateMachine;

openraft::declare_raft_types!(
    /// Cairn's Raft type configuration: log entries carry keyspace writes,
    /// nodes are addressed through the topology (so membership carries no
    /// addresses).
    pub TypeConfig:
        D = Write,
        R = Reply,
        NodeId = u64,
        Node = openraft::EmptyNode,
);

/// A node id (as in the topology).
pub type NodeId = u64;
/// A Raft group id; a group is one shard.
pub type GroupId = u64;
/// One shard's Raft instance on this node.
pub type Raft = openraft::Raft<TypeConfig, StateMachine>;
/// A log entry.
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
/// A log id (leader and index).
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
/// A vote.
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
/// The payload of a log entry.
pub type EntryPayload = openraft::alias::EntryPayloadOf<TypeConfig>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
/// A snapshot: metadata and its file.
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotFile>;
/// Membership as stored by the state machine.
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
/// Log state (last purged, last present).
pub type LogState = openraft::storage::LogState<TypeConfig>;
/// Raft metrics.
pub type RaftMetrics = openraft::RaftMetrics<TypeConfig>;
/// The flush callback handed to a log append.
pub type IoFlushed = openraft::storage::IOFlushed<TypeConfig>;
/// AppendEntries request.
pub type AppendEntriesRequest = openraft::raft::AppendEntriesRequest<TypeConfig>;
/// A follower's answer to one request of a replication stream: how far
/// its log now matches the leader's, or why the stream ends.
pub type StreamAppendResult = openraft::raft::StreamAppendResult<TypeConfig>;
/// Vote (and pre-vote) request.
pub type VoteRequest = openraft::raft::VoteRequest<TypeConfig>;
/// Vote (and pre-vote) response.
pub type VoteResponse = openraft::raft::VoteResponse<TypeConfig>;
/// Snapshot install response.
pub type SnapshotResponse = openraft::raft::SnapshotResponse<TypeConfig>;
/// Leadership transfer request.
pub type TransferLeaderRequest = openraft::raft::TransferLeaderRequest<TypeConfig>;
/// Leadership transfer response.
pub type TransferLeaderResponse = openraft::raft::TransferLeaderResponse<TypeConfig>;
/// An error from a Raft API call.
pub type RaftError<E = std::convert::Infallible> = openraft::error::RaftError<TypeConfig, E>;
/// Why a client write failed.
pub type ClientWriteError = openraft::error::ClientWriteError<TypeConfig>;
/// Why a linearizable read could not be confirmed.
pub type LinearizableReadError = openraft::error::LinearizableReadError<TypeConfig>;
/// A failed RPC to a peer.
pub type RpcError = openraft::error::RPCError<TypeConfig>;
/// A failed snapshot stream to a peer.
pub type StreamingError = openraft::error::StreamingError<TypeConfig>;
/// A peer that cannot be reached now.
pub type Unreachable = openraft::error::Unreachable<TypeConfig>;

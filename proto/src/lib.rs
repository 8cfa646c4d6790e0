//! Cairn's wire protocols: the protobuf messages and tonic services every
//! binary speaks, and the Redis protocol's request framing.
//!
//! - [`raft`]: node-to-node traffic (Raft RPCs per group, snapshot streams,
//!   requests forwarded to a shard leader). Raft payloads are opaque bytes
//!   encoded by the server, so an openraft upgrade never changes this crate.
//! - [`kv`]: the key-value API for applications.
//! - [`admin`]: cluster status for operators and tools, and the topology
//!   stream clients route by.
//! - [`resp`]: Redis-protocol requests as clients send them (kept apart
//!   from the server so the parser can be fuzzed on its own).
//! - [`slot`]: how a key maps to a hash slot and a slot to a shard, which
//!   servers and clients must compute alike.
//!
//! The `.proto` files under `proto/cairn/` are the source of truth; the code
//! is generated at build time with a vendored `protoc`.

pub mod resp;
pub mod slot;

#[allow(missing_docs)]
mod generated {

    /// Node-to-node Raft and forwarding service.
    pub mod raft {
        tonic::include_proto!("cairn.raft.v1");
    }

    /// The key-value service for applications.
    pub mod kv {
        tonic::include_proto!("cairn.kv.v1");
    }

    /// Cluster status for operators.
    pub mod admin {
        tonic::include_proto!("cairn.admin.v1");
    }
}

pub use generated::{admin, kv, raft};

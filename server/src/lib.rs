//! Cairn's server: a Redis-protocol key-value store where every write goes
//! through Raft.
//!
//! Layers look only down:
//!
//! ```text
//!   resp (Redis protocol), grpc (Kv, Admin, peer Raft service)
//!     └─ node (routing, forwarding) ─ shard (one group on this node)
//!          ├─ proposals (a group's writes, many to a Raft entry)
//!          ├─ witness (the witness's store of the cross-region log)
//!          └─ raft (openraft: log store, state machine, network)
//!               ├─ keyspace (in-memory data, deterministic apply), acl (users)
//!               └─ storage (the Storage trait; RocksDB behind it)
//! ```
//!
//! `config`, `placement` and `slot` are shared vocabulary; `xlog` is the
//! cross-region log and `meta` the meta group's state (with `layout`, what
//! every node must agree on), as state machines keep them; `server` wires
//! a node's listeners and background work (`expiry`, `compaction`,
//! `users_refresh`, `shipping`, `lease`, `failover`, `layout_check`, most
//! paced by a `ticker`) together; `dev` runs a whole local cluster as
//! child processes.

pub mod acl;
pub mod compaction;
pub mod config;
pub mod dev;
pub mod error;
pub mod expiry;
pub mod failover;
pub mod grpc;
pub mod keyspace;
pub mod layout;
pub mod layout_check;
pub mod lease;
pub mod meta;
pub mod node;
pub mod placement;
pub mod proposals;
pub mod raft;
pub mod resp;
pub mod server;
pub mod sessions;
pub mod shard;
pub mod shipping;
pub mod storage;
pub mod ticker;
pub mod users_refresh;
pub mod wire;
pub mod witness;
pub mod xlog;

pub use cairn_proto::slot;

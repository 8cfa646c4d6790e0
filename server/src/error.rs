//! The one error type of the server crate.
//!
//! Errors are grouped by what the caller can do about them: a config error
//! stops the node before it starts; `Corrupt` names the file and offset and
//! makes the node refuse to serve; `NotLeader`, `NoLeader` and `Unreachable`
//! are transient (a client may retry, a node forwards or waits);
//! `Fatal` means a Raft group stopped and the node must not serve it.

use std::path::PathBuf;

/// The server crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside a node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config or topology file is malformed or inconsistent.
    #[error("{0}")]
    Config(String),

    /// An operating-system I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },

    /// The storage engine failed.
    #[error("storage: {0}")]
    Storage(String),

    /// Stored bytes failed their checksum or could not be decoded.
    #[error("corrupt {what} in {path} at offset {offset}: {detail}")]
    Corrupt {
        /// What was being read ("snapshot block", "raft log record").
        what: &'static str,
        /// The file (or store) it lives in.
        path: PathBuf,
        /// Byte offset (files) or log index (raft log).
        offset: u64,
        /// Why it is considered corrupt.
        detail: String,
    },

    /// This node does not lead the shard; `leader` is the known leader, if any.
    #[error("node does not lead shard {shard}")]
    NotLeader {
        /// The shard asked for.
        shard: u64,
        /// The leader this node knows of.
        leader: Option<u64>,
    },

    /// No leader is known for the shard (an election is under way or a
    /// majority is unreachable).
    #[error("shard {shard} has no leader right now")]
    NoLeader {
        /// The shard asked for.
        shard: u64,
    },

    /// A write was appended but discarded by a leader change: it may or may
    /// not commit later, so it must not be retried blindly.
    #[error("shard {shard} changed leader before the write was confirmed; it may or may not have been applied")]
    Indeterminate {
        /// The shard.
        shard: u64,
    },

    /// A peer node could not be reached.
    #[error("node {node} is unreachable: {detail}")]
    Unreachable {
        /// The peer.
        node: u64,
        /// What the transport said.
        detail: String,
    },

    /// A Raft group stopped; the node must not serve it any more.
    #[error("raft group {shard} stopped: {detail}")]
    Fatal {
        /// The group.
        shard: u64,
        /// Why it stopped.
        detail: String,
    },

    /// `durability = "witness"`, and the witness has not acknowledged the
    /// shard's records lately: the write was refused, nothing was written.
    #[error("shard {shard} cannot reach the witness right now (durability = \"witness\"); nothing was written")]
    NoWitness {
        /// The shard.
        shard: u64,
    },

    /// `durability = "witness"`: the write was applied in the primary
    /// region (or the read saw writes that were), but the witness did not
    /// acknowledge it in time.
    #[error(
        "shard {shard} applied the writes this answer depends on, but the witness did not acknowledge them \
         within {waited_ms} ms (durability = \"witness\"): they are not yet safe from the loss of the primary region"
    )]
    NotWitnessed {
        /// The shard.
        shard: u64,
        /// How long the write waited.
        waited_ms: u64,
    },

    /// This node's region holds no primary lease for the current epoch
    /// (it is not the primary, or the meta group cannot be reached):
    /// nothing was done.
    #[error("shard {shard}: this node holds no primary lease right now; nothing was done")]
    NoLease {
        /// The shard.
        shard: u64,
    },

    /// The shard's group here no longer takes writes: its region is
    /// failing over, or failed over, to another (nothing was done).
    #[error("shard {shard} is failing over to another region; nothing was done")]
    NotServing {
        /// The shard.
        shard: u64,
    },

    /// A failover could not be started or did not complete.
    #[error("failover: {0}")]
    Failover(String),

    /// A write reached the read-only listener.
    #[error("the read-only listener takes no writes")]
    ReadOnly,

    /// The read-only listener's replica cannot show it is within the
    /// staleness bound, and its config says to refuse.
    #[error(
        "shard {shard}'s replica here cannot show it is within read_only.max_staleness_ms = {bound_ms}, \
         and read_only.past_bound is \"refuse\""
    )]
    PastStalenessBound {
        /// The shard.
        shard: u64,
        /// The bound, in ms.
        bound_ms: u64,
    },

    /// A client's write is larger than one write may be (see
    /// [`crate::proposals::MAX_WRITE_BYTES`]).
    #[error("a write of {bytes} bytes is over the {limit}-byte limit of one write; nothing was written")]
    WriteTooLarge {
        /// The write's encoded size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },

    /// A message between nodes could not be encoded or decoded.
    #[error("wire: {0}")]
    Wire(String),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::NotLeader { .. }
                | Error::NoLeader { .. }
                | Error::Unreachable { .. }
                | Error::NoWitness { .. }
                | Error::NoLease { .. }
                | Error::NotServing { .. }
        )
    }
}

//! The one error type of the client, split by what the caller can do.
//!
//! Transient failures (a leader moved, a node is down, an election is under
//! way) are retried inside the call's deadline and never reach the caller
//! unless the deadline runs out ([`Error::Timeout`], which names the last
//! failure). Permanent errors (the request itself is wrong) are returned at
//! once, untouched by retries.

use std::time::Duration;

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request is malformed (an empty key, an unknown option): fixing
    /// the request is the only remedy.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The request is well-formed but the data refuses it, e.g. `incr` on a
    /// value that is not an integer.
    #[error("rejected: {0}")]
    Rejected(String),

    /// The caller is not allowed to do this.
    #[error("not authorized: {0}")]
    Unauthorized(String),

    /// The node answering does not lead the shard (a hint names the leader).
    #[error("node {node} does not lead shard {shard}")]
    NotLeader {
        /// The shard.
        shard: u64,
        /// The node asked.
        node: u64,
        /// The leader it knows of.
        leader: Option<u64>,
    },

    /// A node could not be reached, or could not serve right now.
    #[error("node {node} unavailable: {detail}")]
    Unavailable {
        /// The node.
        node: u64,
        /// What went wrong.
        detail: String,
    },

    /// An attempt did not complete in time; a write may or may not have
    /// been applied (a retry with the same session applies it once).
    #[error("node {node} did not answer within {after:?}")]
    AttemptTimeout {
        /// The node.
        node: u64,
        /// The attempt's timeout.
        after: Duration,
    },

    /// The call's deadline passed before any attempt succeeded. A write
    /// may or may not have been applied.
    #[error("gave up after {attempts} attempts in {elapsed:?}; last error: {last}")]
    Timeout {
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last transient failure seen.
        last: Box<Error>,
    },

    /// No seed node could be reached to learn the topology.
    #[error("no seed answered: {0}")]
    Discovery(String),

    /// The server failed in a way retrying will not fix.
    #[error("server error: {0}")]
    Internal(String),
}

impl Error {
    /// Whether the same request may succeed if sent again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::NotLeader { .. }
                | Error::Unavailable { .. }
                | Error::AttemptTimeout { .. }
                | Error::Timeout { .. }
                | Error::Discovery(_)
        )
    }

    /// Whether the failure says the node itself is unhealthy (it counts
    /// against the node's circuit breaker).
    pub(crate) fn is_node_failure(&self) -> bool {
        match self {
            Error::AttemptTimeout { .. } => true,
            Error::Unavailable { detail, .. } => detail.starts_with(TRANSPORT),
            _ => false,
        }
    }

    /// The error a gRPC status from `node` stands for.
    pub(crate) fn from_status(status: &tonic::Status, node: u64, shard: u64) -> Self {
        use tonic::Code;
        let message = status.message().to_string();
        match status.code() {
            Code::Unavailable => {
                let leader = status
                    .metadata()
                    .get(LEADER_METADATA)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                if leader.is_some() || message.contains("does not lead") {
                    Error::NotLeader { shard, node, leader }
                } else if std::error::Error::source(status).is_some() {
                    Error::Unavailable {
                        node,
                        detail: format!("{TRANSPORT}{message}"),
                    }
                } else {
                    Error::Unavailable { node, detail: message }
                }
            }
            // The write may have been applied; the session makes a retry safe.
            Code::Unknown | Code::Cancelled => Error::Unavailable { node, detail: message },
            Code::DeadlineExceeded => Error::Unavailable {
                node,
                detail: format!("{TRANSPORT}{message}"),
            },
            Code::InvalidArgument | Code::OutOfRange => Error::InvalidArgument(message),
            Code::FailedPrecondition => Error::Rejected(message),
            Code::Unauthenticated | Code::PermissionDenied => Error::Unauthorized(message),
            _ => Error::Internal(format!("{:?}: {message}", status.code())),
        }
    }
}

/// Prefix of the detail of failures the transport reported (the node is
/// unreachable, not merely busy).
const TRANSPORT: &str = "transport: ";

/// The metadata key a node names the shard leader with.
pub(crate) const LEADER_METADATA: &str = "cairn-leader";
/// The metadata key that asks a node not to forward.
pub(crate) const ROUTE_METADATA: &str = "cairn-route";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_retryable_or_permanent_errors() {
        let mut hinted = tonic::Status::unavailable("node does not lead shard 3");
        hinted.metadata_mut().insert(LEADER_METADATA, "2".parse().unwrap());
        let err = Error::from_status(&hinted, 1, 3);
        assert!(matches!(err, Error::NotLeader { leader: Some(2), .. }), "{err:?}");
        assert!(err.is_retryable());
        for (status, retryable) in [
            (tonic::Status::unavailable("shard 1 has no leader right now"), true),
            (tonic::Status::unknown("may or may not have been applied"), true),
            (tonic::Status::deadline_exceeded("slow"), true),
            (tonic::Status::invalid_argument("key must not be empty"), false),
            (tonic::Status::failed_precondition("value is not an integer"), false),
            (tonic::Status::unauthenticated("who are you"), false),
            (tonic::Status::internal("bug"), false),
        ] {
            let err = Error::from_status(&status, 1, 0);
            assert_eq!(err.is_retryable(), retryable, "{status:?} -> {err:?}");
        }
    }
}

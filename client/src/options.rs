//! Per-call options: how long a call may take and how fresh a read must be.
//!
//! A [`Client`](crate::Client) carries default [`CallOptions`];
//! [`Client::with`](crate::Client::with) returns a handle with other ones
//! (it shares connections and topology, so it is cheap to make per call).

use std::time::Duration;

use cairn_proto::kv;

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Linearizable: the shard leader answers after its lease (or a
    /// ReadIndex round) proves it still leads. The default.
    #[default]
    Linearizable,
    /// Linearizable without trusting clocks: the leader always confirms
    /// with a ReadIndex round (one heartbeat round trip).
    ReadIndex,
    /// Any replica that is provably at most this far behind its leader;
    /// the leader otherwise.
    BoundedStaleness(Duration),
    /// Any replica, however far behind (the cheapest read).
    Stale,
}

impl Consistency {
    /// Whether only the shard leader may answer.
    pub(crate) fn needs_leader(self) -> bool {
        matches!(self, Consistency::Linearizable | Consistency::ReadIndex)
    }

    pub(crate) fn to_proto(self) -> kv::ReadOptions {
        let (consistency, max_staleness_ms) = match self {
            Consistency::Linearizable => (kv::Consistency::Linearizable, 0),
            Consistency::ReadIndex => (kv::Consistency::ReadIndex, 0),
            Consistency::BoundedStaleness(bound) => (
                kv::Consistency::BoundedStaleness,
                u64::try_from(bound.as_millis()).unwrap_or(u64::MAX).max(1),
            ),
            Consistency::Stale => (kv::Consistency::Stale, 0),
        };
        kv::ReadOptions {
            consistency: consistency.into(),
            max_staleness_ms,
        }
    }
}

/// Options of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallOptions {
    /// The whole call, retries included, ends within this.
    pub deadline: Duration,
    /// How fresh reads must be (writes always go to the leader).
    pub consistency: Consistency,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            deadline: Duration::from_secs(5),
            consistency: Consistency::Linearizable,
        }
    }
}

impl CallOptions {
    /// These options with another deadline.
    pub fn deadline(self, deadline: Duration) -> Self {
        CallOptions { deadline, ..self }
    }

    /// These options with another read consistency.
    pub fn consistency(self, consistency: Consistency) -> Self {
        CallOptions { consistency, ..self }
    }
}

/// When a `set` takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    /// Always.
    #[default]
    Always,
    /// Only if the key does not exist (Redis `NX`).
    IfAbsent,
    /// Only if the key exists (Redis `XX`).
    IfPresent,
}

/// Options of a `set`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetOptions {
    /// Expire the key this long after the write (none: never).
    pub ttl: Option<Duration>,
    /// When to write.
    pub condition: Condition,
}

impl SetOptions {
    /// Expire the key `ttl` after the write.
    pub fn ttl(self, ttl: Duration) -> Self {
        SetOptions { ttl: Some(ttl), ..self }
    }

    /// Write only under `condition`.
    pub fn condition(self, condition: Condition) -> Self {
        SetOptions { condition, ..self }
    }
}

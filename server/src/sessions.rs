//! Client sessions: the state that makes a retried write apply exactly once.
//!
//! A client that cannot tell whether its write was applied (the reply was
//! lost, the leader died after appending it) must be able to send it again
//! without applying it twice. So every write from `cairn-client` carries a
//! [`SessionTag`]: the client's id, a sequence number unique within that
//! client, and `acked_below`, the lowest sequence number it still waits for.
//! The state machine of each shard remembers the reply to every tagged write
//! until the client says it has it ([`SessionTag::acked_below`] moves past
//! it), and answers a repeated tag with the remembered reply instead of
//! applying the write again.
//!
//! # Bounds
//!
//! - A client keeps at most [`REPLIES_PER_CLIENT`] replies, of
//!   [`REPLY_BYTES_PER_CLIENT`] in all; older ones are dropped first, and
//!   their sequence numbers count as answered.
//! - A reply over [`MAX_KEPT_REPLY_BYTES`] (the old value of a long string
//!   that `GETDEL` or `SET … GET` replaced) is remembered as
//!   [`KvError::ReplyNotKept`]: a repeat is still not applied, and says so.
//!   Sessions are written into every snapshot, so they must stay small.
//! - A session idle for [`SESSION_IDLE_MS`] (by the clock reading carried in
//!   the log entries, never the applying node's clock) is forgotten.
//!
//! # Correctness
//!
//! Everything here is decided by the log alone: the entries' clock readings,
//! never a local clock or the moment a sweep happens to run. An idle session
//! is treated as absent whether or not it was physically removed yet, so two
//! replicas that swept at different moments still answer alike. Sessions are
//! part of every snapshot.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::keyspace::{KvError, Reply};

/// How long a session may stay idle before it is forgotten (10 minutes).
pub const SESSION_IDLE_MS: u64 = 10 * 60 * 1000;
/// The most replies remembered per client.
pub const REPLIES_PER_CLIENT: usize = 4096;
/// The most bytes of replies remembered per client.
pub const REPLY_BYTES_PER_CLIENT: usize = 4 << 20;
/// The largest reply remembered as it is.
pub const MAX_KEPT_REPLY_BYTES: usize = 64 * 1024;
/// What a repeat of a write whose reply was not kept is told.
pub const REPLY_NOT_KEPT: &str =
    "the write was applied once; its reply, over 65536 bytes, was too large to keep for a repeat";
/// A sweep of idle sessions runs when this many sessions are held.
const SWEEP_AT: usize = 10_000;

/// Identifies one write of one client, for deduplication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTag {
    /// The client's id (random, chosen by the client).
    pub client: u64,
    /// The write's sequence number, unique within the client.
    pub seq: u64,
    /// Every sequence number below this has been answered to the client, so
    /// its reply may be forgotten.
    pub acked_below: u64,
}

/// What a shard remembers of one client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientSession {
    /// Sequence numbers below this are answered (or forgotten): a repeat is
    /// a stale duplicate and is not applied.
    pub floor: u64,
    /// Clock reading of the newest write seen from the client.
    pub last_ms: u64,
    /// Remembered replies by sequence number.
    pub replies: BTreeMap<u64, Reply>,
    /// Their size (see [`reply_bytes`]), counted again on restore.
    #[serde(skip)]
    bytes: usize,
}

impl ClientSession {
    /// The size of the replies remembered.
    pub fn reply_bytes(&self) -> usize {
        self.bytes
    }
}

/// Every client session of one shard.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sessions {
    clients: HashMap<u64, ClientSession>,
}

impl Sessions {
    /// Applies a tagged write through `apply` unless the tag was seen before;
    /// returns the write's reply (the remembered one for a repeat).
    pub fn apply(&mut self, tag: SessionTag, now_ms: u64, apply: impl FnOnce() -> Reply) -> Reply {
        if self.clients.len() >= SWEEP_AT {
            self.clients.retain(|_, s| !is_idle(s, now_ms));
        }
        let session = self.clients.entry(tag.client).or_default();
        if is_idle(session, now_ms) {
            *session = ClientSession::default();
        }
        session.last_ms = session.last_ms.max(now_ms);
        if tag.acked_below > session.floor {
            session.floor = tag.acked_below;
            let kept = session.replies.split_off(&tag.acked_below);
            session.bytes -= session.replies.values().map(reply_bytes).sum::<usize>();
            session.replies = kept;
        }
        if let Some(reply) = session.replies.get(&tag.seq) {
            return reply.clone();
        }
        if tag.seq < session.floor {
            return Reply::Err(KvError::DuplicateRequest);
        }
        let reply = apply();
        let (kept, size) = match reply_bytes(&reply) {
            size if size > MAX_KEPT_REPLY_BYTES => {
                let marker = Reply::Err(KvError::ReplyNotKept);
                let size = reply_bytes(&marker);
                (marker, size)
            }
            size => (reply.clone(), size),
        };
        session.bytes += size;
        session.replies.insert(tag.seq, kept);
        while session.replies.len() > REPLIES_PER_CLIENT || session.bytes > REPLY_BYTES_PER_CLIENT {
            if let Some((oldest, dropped)) = session.replies.pop_first() {
                session.bytes -= reply_bytes(&dropped);
                session.floor = session.floor.max(oldest + 1);
            }
        }
        reply
    }

    /// Every session, for snapshots.
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &ClientSession)> {
        self.clients.iter()
    }

    /// Inserts a session as read back from a snapshot.
    pub fn restore(&mut self, client: u64, mut session: ClientSession) {
        session.bytes = session.replies.values().map(reply_bytes).sum();
        self.clients.insert(client, session);
    }

    /// Number of sessions held.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

fn is_idle(session: &ClientSession, now_ms: u64) -> bool {
    session.last_ms.saturating_add(SESSION_IDLE_MS) < now_ms
}

/// About how many bytes `reply` takes: its values' bytes, and a few for
/// each part.
fn reply_bytes(reply: &Reply) -> usize {
    const PART: usize = 8;
    let value = |v: &Option<Bytes>| PART + v.as_ref().map_or(0, Bytes::len);
    match reply {
        Reply::Value(v) => PART + v.len(),
        Reply::Values(values) => values.iter().map(value).sum(),
        Reply::Swap { current, .. } => value(current),
        Reply::Keys(keys) | Reply::Scan { keys, .. } => keys.iter().map(|k| PART + k.len()).sum(),
        Reply::Pairs(pairs) => pairs.iter().map(|(f, v)| 2 * PART + f.len() + v.len()).sum(),
        Reply::List(replies) => replies.iter().map(reply_bytes).sum(),
        _ => PART,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(seq: u64, acked_below: u64) -> SessionTag {
        SessionTag {
            client: 7,
            seq,
            acked_below,
        }
    }

    #[test]
    fn a_repeated_tag_gets_the_first_reply_without_applying_again() {
        let mut sessions = Sessions::default();
        let mut applied = 0;
        let mut incr = |sessions: &mut Sessions, t| {
            sessions.apply(t, 1_000, || {
                applied += 1;
                Reply::Int(applied)
            })
        };
        assert_eq!(incr(&mut sessions, tag(0, 0)), Reply::Int(1));
        assert_eq!(incr(&mut sessions, tag(0, 0)), Reply::Int(1));
        assert_eq!(incr(&mut sessions, tag(1, 0)), Reply::Int(2));
        // Seq 0 acknowledged: its reply is forgotten, a late copy is refused.
        assert_eq!(incr(&mut sessions, tag(2, 1)), Reply::Int(3));
        assert_eq!(incr(&mut sessions, tag(0, 1)), Reply::Err(KvError::DuplicateRequest));
        assert_eq!(incr(&mut sessions, tag(1, 1)), Reply::Int(2));
        assert_eq!(applied, 3);
    }

    #[test]
    fn replies_are_bounded_and_dropped_ones_count_as_answered() {
        let mut sessions = Sessions::default();
        for seq in 0..REPLIES_PER_CLIENT as u64 + 10 {
            sessions.apply(tag(seq, 0), 0, || Reply::Ok);
        }
        let session = &sessions.clients[&7];
        assert_eq!(session.replies.len(), REPLIES_PER_CLIENT);
        assert_eq!(session.floor, 10);
        assert_eq!(
            sessions.apply(tag(3, 0), 0, || Reply::Nil),
            Reply::Err(KvError::DuplicateRequest)
        );
    }

    #[test]
    fn a_long_reply_is_not_kept_yet_its_write_is_not_applied_again() {
        let mut sessions = Sessions::default();
        let long = Reply::Value(Bytes::from(vec![b'x'; MAX_KEPT_REPLY_BYTES]));
        let mut applied = 0;
        let mut getdel = |sessions: &mut Sessions, seq| {
            sessions.apply(tag(seq, 0), 0, || {
                applied += 1;
                long.clone()
            })
        };
        assert_eq!(getdel(&mut sessions, 0), long, "the first answer is whole");
        assert_eq!(getdel(&mut sessions, 0), Reply::Err(KvError::ReplyNotKept));
        assert_eq!(applied, 1);
        assert!(sessions.clients[&7].reply_bytes() < 100);
        assert!(REPLY_NOT_KEPT.contains(&MAX_KEPT_REPLY_BYTES.to_string()));
    }

    #[test]
    fn replies_are_bounded_by_bytes_and_dropped_ones_count_as_answered() {
        let mut sessions = Sessions::default();
        let reply = Reply::Value(Bytes::from(vec![b'x'; MAX_KEPT_REPLY_BYTES - 100]));
        for seq in 0..100 {
            assert_eq!(sessions.apply(tag(seq, 0), 0, || reply.clone()), reply);
        }
        let session = &sessions.clients[&7];
        assert!(session.reply_bytes() <= REPLY_BYTES_PER_CLIENT);
        assert!(session.reply_bytes() > REPLY_BYTES_PER_CLIENT - MAX_KEPT_REPLY_BYTES);
        assert_eq!(
            session.reply_bytes(),
            session.replies.values().map(reply_bytes).sum::<usize>()
        );
        assert_eq!(
            sessions.apply(tag(0, 0), 0, || Reply::Nil),
            Reply::Err(KvError::DuplicateRequest)
        );
        assert_eq!(sessions.apply(tag(99, 0), 0, || Reply::Nil), reply);
        // Acknowledged replies leave the count too.
        sessions.apply(tag(100, 100), 0, || Reply::Ok);
        assert_eq!(sessions.clients[&7].reply_bytes(), reply_bytes(&Reply::Ok));
    }

    #[test]
    fn idle_sessions_are_forgotten_by_the_entries_clock() {
        let mut sessions = Sessions::default();
        sessions.apply(tag(0, 0), 0, || Reply::Int(1));
        assert_eq!(
            sessions.apply(tag(0, 0), SESSION_IDLE_MS, || Reply::Int(2)),
            Reply::Int(1)
        );
        assert_eq!(
            sessions.apply(tag(0, 0), 2 * SESSION_IDLE_MS + 1, || Reply::Int(3)),
            Reply::Int(3)
        );
    }
}

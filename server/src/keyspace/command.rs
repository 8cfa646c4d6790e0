//! The requests a shard's state machine applies or answers, and its replies.
//!
//! Writes are made deterministic before they are proposed: a relative TTL is
//! already an absolute deadline, and the proposer's clock reading travels in
//! [`Write::now_ms`], so every replica decides "has this key expired?" the
//! same way when it applies the entry. Nothing in apply reads a clock.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::acl::{AclChange, Users};
use crate::meta::{MetaAnswer, MetaOp};
use crate::sessions::SessionTag;
use crate::xlog::{Lag, Record, Stance};

/// The longest string a key may hold (Redis's `proto-max-bulk-len`).
pub const MAX_STRING: u64 = 512 * 1024 * 1024;

/// A write as it is stored in the Raft log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Write {
    /// Milliseconds since the Unix epoch on the proposing node; apply uses it
    /// (never its own clock) to treat expired keys as absent.
    pub now_ms: u64,
    /// Set by clients that retry: makes a repeated write apply once
    /// (see [`crate::sessions`]).
    pub session: Option<SessionTag>,
    /// What to do.
    pub op: WriteOp,
}

impl Write {
    /// An untagged write, clocked now.
    pub fn new(op: WriteOp) -> Self {
        Write {
            now_ms: crate::shard::now_ms(),
            session: None,
            op,
        }
    }
}

/// When a `SET` takes effect (Redis `NX` / `XX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SetCondition {
    /// Always write.
    #[default]
    Always,
    /// Only if the key does not exist (`NX`).
    IfAbsent,
    /// Only if the key exists (`XX`).
    IfPresent,
}

/// A mutation of the keyspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WriteOp {
    /// Set a string value.
    Set {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
        /// Absolute deadline in ms since the epoch, if any.
        expire_at_ms: Option<u64>,
        /// NX / XX.
        condition: SetCondition,
        /// Keep the key's current deadline (`KEEPTTL`).
        keep_ttl: bool,
        /// Reply with the old value (`GET`).
        get: bool,
    },
    /// Remove keys; replies with how many existed.
    Del {
        /// The keys, all of one shard.
        keys: Vec<Bytes>,
    },
    /// Add `delta` to an integer value (absent counts as 0).
    IncrBy {
        /// The key.
        key: Bytes,
        /// The amount, may be negative.
        delta: i64,
    },
    /// Replace the value only if it currently equals `expected`
    /// (`None`: only if the key is absent).
    CompareAndSet {
        /// The key.
        key: Bytes,
        /// The value the key must hold now.
        expected: Option<Bytes>,
        /// The value to store.
        new: Bytes,
    },
    /// Give an existing key a new deadline if `condition` allows; replies
    /// 1, or 0 when the key does not exist or the condition does not hold.
    /// A deadline already past deletes the key.
    Expire {
        /// The key.
        key: Bytes,
        /// Absolute deadline in ms since the epoch.
        expire_at_ms: u64,
        /// Redis's `NX` / `XX` / `GT` / `LT`.
        condition: ExpireCondition,
    },
    /// Append to a string (absent counts as empty); replies the new length.
    Append {
        /// The key.
        key: Bytes,
        /// What to append.
        value: Bytes,
    },
    /// Overwrite part of a string from `offset`, padding with zero bytes
    /// (Redis `SETRANGE`); replies the new length.
    SetRange {
        /// The key.
        key: Bytes,
        /// Where to start writing.
        offset: u64,
        /// What to write.
        value: Bytes,
    },
    /// Remove a key and reply its value (Redis `GETDEL`).
    GetDel {
        /// The key.
        key: Bytes,
    },
    /// Reply a key's value and change its deadline (Redis `GETEX`).
    GetEx {
        /// The key.
        key: Bytes,
        /// The new deadline (`None`: none, i.e. `PERSIST`).
        expire_at_ms: Option<u64>,
    },
    /// Set several keys of one shard at once (Redis `MSET`, or `MSETNX`
    /// when `if_none_exist`: then all or none, replying 1 or 0).
    MSet {
        /// Keys and values.
        pairs: Vec<(Bytes, Bytes)>,
        /// Only if none of the keys exists.
        if_none_exist: bool,
    },
    /// Rename `from` to `to`, keeping its deadline (Redis `RENAME`, or
    /// `RENAMENX` when `if_absent`: then replies 1 or 0). A missing `from`
    /// fails with [`KvError::NoSuchKey`].
    Rename {
        /// The key renamed.
        from: Bytes,
        /// Its new name.
        to: Bytes,
        /// Only if `to` does not exist.
        if_absent: bool,
    },
    /// Copy `from` to `to` with its deadline (Redis `COPY`); replies 1, or
    /// 0 when `from` is missing or `to` exists and not `replace`.
    Copy {
        /// The source.
        from: Bytes,
        /// The destination.
        to: Bytes,
        /// Overwrite an existing destination.
        replace: bool,
    },
    /// Remove every key of the shard (`FLUSHDB`, `FLUSHALL`).
    Flush,
    /// Change a hash (created when absent, removed when emptied).
    Hash(HashWrite),
    /// `MULTI`…`EXEC`: steps applied one after the other in one entry,
    /// unless a watched key changed since it was watched (then nothing is
    /// applied and the reply is nil). Replies one reply per step.
    Transaction {
        /// The queued commands.
        steps: Vec<Step>,
        /// Watched keys and the fingerprint each had when watched.
        watched: Vec<(Bytes, i64)>,
    },
    /// Remove a key's deadline; replies 1 if it had one.
    Persist {
        /// The key.
        key: Bytes,
    },
    /// Remove the keys that have expired by the entry's clock (proposed by
    /// the leader's active expiry; a key renewed since is kept). Replies how
    /// many were removed.
    PurgeExpired {
        /// Keys the leader found expired.
        keys: Vec<Bytes>,
    },
    /// Add a float to a string holding a number (absent counts as 0), as
    /// Redis's `long double` does (see [`super::float`]); replies the new
    /// value as stored.
    IncrByFloat {
        /// The key.
        key: Bytes,
        /// The increment as the client sent it (read in apply, after the
        /// key's type and value are checked, as Redis does).
        increment: Bytes,
    },
    /// A change to the users (only in [`crate::acl::ACL_SHARD`]'s log);
    /// applied by the state machine to its [`crate::acl::Users`], not to
    /// keys. Boxed, as it is rare and large: every write is moved a few
    /// times on its way to the log, and is as large as its largest kind.
    Acl(Box<AclChange>),
    /// Records of the primary region's cross-region log, shipped to a
    /// secondary region's group (see [`crate::xlog`]); applied by the state
    /// machine in gseq order. Replies the gseq applied after them.
    Xlog {
        /// The records, oldest first.
        records: Vec<Record>,
        /// The primary's clock as of which the records hold every write it
        /// had applied (0: the batch does not reach the primary's head).
        as_of_ms: u64,
        /// The epoch the shipping primary serves (see
        /// [`crate::xlog::Xlog::admits`]).
        epoch: u64,
    },
    /// Drop the cross-region log's records up to and including `through`
    /// (every destination acknowledged them, or the window is full).
    XlogTrim {
        /// The last gseq dropped.
        through: u64,
    },
    /// One part of a copy of the primary's shard, resyncing a secondary
    /// region's group that needs records the cross-region log no longer
    /// holds (see [`crate::xlog`]). Part 0 empties the replica; the last
    /// part sets its gseq. Replies the gseq after the last part, `Ok`
    /// after another taken part, `Nil` for a part out of order.
    XlogReset {
        /// The gseq the copy is as of.
        gseq: u64,
        /// Which part, from 0.
        part: u32,
        /// Whether it is the last.
        last: bool,
        /// Blocks of keys, sessions and users (see
        /// [`crate::raft::snapshot_file::image`]).
        image: Bytes,
        /// The epoch the shipping primary serves.
        epoch: u64,
    },
    /// Stop applying client writes: the region is failing over away.
    /// Replies the gseq of the last client write applied.
    XlogSeal,
    /// Apply client writes from now on, in `epoch`: the region becomes
    /// primary. Replies the gseq the region starts after, or `Nil` (and
    /// stays sealed) while a resync is under way.
    XlogOpen {
        /// The new epoch.
        epoch: u64,
    },
    /// A change to the meta group's state (only in
    /// [`crate::meta::META_GROUP`]'s log). Boxed, as `Acl` is.
    Meta(Box<MetaOp>),
    /// Stop client writes and give up this copy: an old primary whose
    /// writes past the handover were discarded. The group refuses shipped
    /// records and opening until a resync replaces its copy. Replies the
    /// gseq it held.
    XlogDiscard,
    /// Close a group that a failover opened in `abandoned`, an epoch it
    /// never switched to (see [`crate::meta::Meta::abandoned`]): it takes
    /// shipping again, from `epoch` (the current one) on. A group not open
    /// in `abandoned` is left as it is. Replies the gseq it holds.
    XlogClose {
        /// The abandoned epoch.
        abandoned: u64,
        /// The current epoch.
        epoch: u64,
    },
    /// Client writes proposed together as one entry (see
    /// [`crate::proposals`]), applied one after the other, each exactly as
    /// an entry of its own would be. Replies one reply per write.
    Batch {
        /// The writes, in the order they arrived; shared, because an
        /// entry is copied for each follower it is sent to and for its
        /// apply, and a batch may hold hundreds of writes. Stored as a
        /// sequence, as a `Vec` would be.
        writes: Arc<[Write]>,
    },
}

/// When `EXPIRE` may set a deadline (Redis 7 options; several may be set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ExpireCondition {
    /// Only if the key has no deadline.
    pub nx: bool,
    /// Only if the key has a deadline.
    pub xx: bool,
    /// Only if the new deadline is later (no deadline counts as infinite).
    pub gt: bool,
    /// Only if the new deadline is earlier (no deadline counts as infinite).
    pub lt: bool,
}

impl ExpireCondition {
    /// Whether a key with deadline `current` may get `new`.
    pub fn allows(self, current: Option<u64>, new: u64) -> bool {
        !(self.nx && current.is_some()
            || self.xx && current.is_none()
            || self.gt && current.is_none_or(|c| new <= c)
            || self.lt && current.is_some_and(|c| new >= c))
    }
}

impl WriteOp {
    /// Whether this is the cluster's bookkeeping (the cross-region log,
    /// the meta group) rather than a client's write.
    pub fn is_bookkeeping(&self) -> bool {
        matches!(
            self,
            WriteOp::Xlog { .. }
                | WriteOp::XlogTrim { .. }
                | WriteOp::XlogReset { .. }
                | WriteOp::XlogSeal
                | WriteOp::XlogOpen { .. }
                | WriteOp::XlogDiscard
                | WriteOp::XlogClose { .. }
                | WriteOp::Meta(_)
        )
    }

    /// The keys this write touches.
    pub fn keys(&self) -> Vec<&Bytes> {
        match self {
            WriteOp::Set { key, .. }
            | WriteOp::IncrBy { key, .. }
            | WriteOp::CompareAndSet { key, .. }
            | WriteOp::Expire { key, .. }
            | WriteOp::Append { key, .. }
            | WriteOp::SetRange { key, .. }
            | WriteOp::GetDel { key }
            | WriteOp::GetEx { key, .. }
            | WriteOp::Persist { key }
            | WriteOp::IncrByFloat { key, .. } => vec![key],
            WriteOp::MSet { pairs, .. } => pairs.iter().map(|(key, _)| key).collect(),
            WriteOp::Rename { from, to, .. } | WriteOp::Copy { from, to, .. } => vec![from, to],
            WriteOp::Hash(write) => vec![write.key()],
            WriteOp::Transaction { steps, watched } => steps
                .iter()
                .flat_map(|step| match step {
                    Step::Write(op) => op.keys(),
                    Step::Read(_) => Vec::new(),
                })
                .chain(watched.iter().map(|(key, _)| key))
                .collect(),
            WriteOp::Batch { writes } => writes.iter().flat_map(|write| write.op.keys()).collect(),
            WriteOp::Flush
            | WriteOp::Acl(_)
            | WriteOp::Xlog { .. }
            | WriteOp::XlogTrim { .. }
            | WriteOp::XlogReset { .. }
            | WriteOp::XlogSeal
            | WriteOp::XlogOpen { .. }
            | WriteOp::XlogDiscard
            | WriteOp::XlogClose { .. }
            | WriteOp::Meta(_) => Vec::new(),
            WriteOp::Del { keys } | WriteOp::PurgeExpired { keys } => keys.iter().collect(),
        }
    }
}

impl fmt::Display for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match &self.op {
            WriteOp::Set { .. } => "set",
            WriteOp::Del { .. } => "del",
            WriteOp::IncrBy { .. } => "incrby",
            WriteOp::CompareAndSet { .. } => "cas",
            WriteOp::Expire { .. } => "expire",
            WriteOp::Append { .. } => "append",
            WriteOp::SetRange { .. } => "setrange",
            WriteOp::GetDel { .. } => "getdel",
            WriteOp::GetEx { .. } => "getex",
            WriteOp::MSet { .. } => "mset",
            WriteOp::Rename { .. } => "rename",
            WriteOp::Copy { .. } => "copy",
            WriteOp::Flush => "flush",
            WriteOp::Hash(_) => "hash",
            WriteOp::Transaction { .. } => "transaction",
            WriteOp::Persist { .. } => "persist",
            WriteOp::PurgeExpired { .. } => "purge-expired",
            WriteOp::IncrByFloat { .. } => "incrbyfloat",
            WriteOp::Acl(_) => "acl",
            WriteOp::Xlog { .. } => "xlog",
            WriteOp::XlogTrim { .. } => "xlog-trim",
            WriteOp::XlogReset { .. } => "xlog-reset",
            WriteOp::XlogSeal => "xlog-seal",
            WriteOp::XlogOpen { .. } => "xlog-open",
            WriteOp::XlogDiscard => "xlog-discard",
            WriteOp::XlogClose { .. } => "xlog-close",
            WriteOp::Meta(_) => "meta",
            WriteOp::Batch { .. } => "batch",
        };
        write!(f, "{name}@{}", self.now_ms)
    }
}

/// A read, answered from memory once the shard is known to be current.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Read {
    /// The value of one key.
    Get {
        /// The key.
        key: Bytes,
    },
    /// The values of several keys of one shard.
    MGet {
        /// The keys.
        keys: Vec<Bytes>,
    },
    /// How many of the keys exist (a key named twice counts twice).
    Exists {
        /// The keys.
        keys: Vec<Bytes>,
    },
    /// How many keys the shard holds.
    DbSize,
    /// Milliseconds left to live: -1 without a deadline, -2 when absent.
    Ttl {
        /// The key.
        key: Bytes,
    },
    /// Every live key matching a glob pattern (Redis `KEYS`).
    Keys {
        /// The pattern.
        pattern: Bytes,
    },
    /// The next keys in scan order from a position (Redis `SCAN`).
    Scan {
        /// Where to start (a scan position, see [`scan_position`]).
        from: u64,
        /// About how many keys to visit.
        count: usize,
        /// Keep only keys matching this glob pattern.
        pattern: Option<Bytes>,
        /// Keep only keys of this type (`string`, `hash`).
        type_name: Option<String>,
    },
    /// A key's fingerprint for `WATCH`: a hash of its type, value and
    /// deadline (-1 when absent).
    Fingerprint {
        /// The key.
        key: Bytes,
    },
    /// Up to `limit` live keys of one hash slot (`CLUSTER GETKEYSINSLOT`).
    SlotKeys {
        /// The slot.
        slot: u16,
        /// Most keys returned.
        limit: usize,
    },
    /// Any one live key, chosen at random (`seed` picks it).
    RandomKey {
        /// A random number from the caller.
        seed: u64,
    },
    /// The type of a key's value (`TYPE`): its name, or nil when absent.
    Type {
        /// The key.
        key: Bytes,
    },
    /// A read of a hash.
    Hash(HashRead),
    /// The length of a string (0 when absent).
    Strlen {
        /// The key.
        key: Bytes,
    },
    /// Part of a string, Redis `GETRANGE` indexes (negative from the end,
    /// both ends included).
    GetRange {
        /// The key.
        key: Bytes,
        /// First byte.
        start: i64,
        /// Last byte.
        end: i64,
    },
    /// The absolute deadline in ms since the epoch: -1 without one, -2
    /// when absent.
    ExpireAt {
        /// The key.
        key: Bytes,
    },
}

/// A deterministic failure of a command; part of the reply, not an error of
/// the system (the write still took its place in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvError {
    /// The value is not a base-10 64-bit integer.
    NotInteger,
    /// The arithmetic would overflow a 64-bit integer.
    Overflow,
    /// A copy of a write whose reply the client already has; not applied.
    DuplicateRequest,
    /// The string would exceed [`MAX_STRING`].
    TooLong,
    /// The key to rename does not exist.
    NoSuchKey,
    /// The key holds another type than the command works on.
    WrongType,
    /// A hash field is not a base-10 64-bit integer.
    HashNotInteger,
    /// The value or the increment is not a number `strtold` reads.
    NotFloat,
    /// The sum of a float increment is infinite or NaN.
    NanOrInfinity,
    /// A hash field is not a number `strtold` reads.
    HashNotFloat,
    /// The group's region does not take writes (a failover sealed it).
    NotServing,
    /// Shipping refused: the destination takes client writes, or serves a
    /// later epoch than the shipper.
    Fenced,
    /// Shipping refused: the destination's copy must be replaced first (a
    /// resync cut short, or an old primary's discarded copy).
    NeedsCopy,
    /// A copy of a write that was applied, whose reply was too large to
    /// remember for it (see [`crate::sessions`]); not applied again.
    ReplyNotKept,
}

/// What a write or a read answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// Done (`+OK`).
    Ok,
    /// No value (a missing key, or a condition that did not hold).
    Nil,
    /// A value.
    Value(Bytes),
    /// An integer.
    Int(i64),
    /// Several optional values, in request order.
    Values(Vec<Option<Bytes>>),
    /// The outcome of a compare-and-set, with the value found when it failed.
    Swap {
        /// Whether the new value was stored.
        swapped: bool,
        /// The value found when the swap did not happen.
        current: Option<Bytes>,
    },
    /// Keys (`KEYS`), or hash fields or values.
    Keys(Vec<Bytes>),
    /// Field-value pairs of a hash.
    Pairs(Vec<(Bytes, Bytes)>),
    /// One reply per step of a transaction.
    List(Vec<Reply>),
    /// A step of a scan: the keys visited, and where the next step starts
    /// (`None`: the shard is done).
    Scan {
        /// Keys found.
        keys: Vec<Bytes>,
        /// The next position.
        next: Option<u64>,
    },
    /// A deterministic command failure.
    Err(KvError),
    /// The users table ([`crate::shard::Request::Users`]).
    Users(Users),
    /// The meta group's state after a meta op or read.
    Meta(Box<MetaAnswer>),
    /// What a forced failover now would lose ([`crate::shard::Request::Rpo`]).
    Rpo(Rpo),
    /// Whether a group takes client writes, and the gseq it holds
    /// ([`crate::shard::Request::Stance`]).
    Stance {
        /// Its stance.
        stance: Stance,
        /// The gseq of the last write it applied.
        gseq: u64,
    },
}

/// What a forced failover now would lose of one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rpo {
    /// The last gseq the primary applied.
    pub head: u64,
    /// The last gseq a region that would take over (or the witness) holds.
    pub safe: u64,
    /// What lies between: records, bytes, age of the oldest.
    pub lost: Lag,
}

/// Bits of a scan position; a `SCAN` cursor is the shard above them.
pub const SCAN_POSITION_BITS: u32 = 49;

/// A key's place in scan order: the top bits of a 64-bit FNV-1a hash, the
/// same on every replica and across restarts, so a scan resumed on a new
/// leader continues where it was.
pub fn scan_position(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in key {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash >> (64 - SCAN_POSITION_BITS)
}

/// A change to a hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HashWrite {
    /// Set fields (`HSET`, `HMSET`), or one field only if absent
    /// (`HSETNX`). Replies how many fields are new (`HSETNX`: 1 or 0).
    Set {
        /// The key.
        key: Bytes,
        /// Fields and values.
        pairs: Vec<(Bytes, Bytes)>,
        /// Only fields that do not exist yet.
        if_absent: bool,
    },
    /// Remove fields; replies how many existed.
    Del {
        /// The key.
        key: Bytes,
        /// The fields.
        fields: Vec<Bytes>,
    },
    /// Add to an integer field (absent counts as 0).
    IncrBy {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
        /// The amount.
        delta: i64,
    },
    /// Add a float to a field (absent counts as 0), as `INCRBYFLOAT` does.
    IncrByFloat {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
        /// The increment, already checked to be a finite number.
        increment: Bytes,
    },
}

impl HashWrite {
    /// The hash's key.
    pub fn key(&self) -> &Bytes {
        match self {
            HashWrite::Set { key, .. }
            | HashWrite::Del { key, .. }
            | HashWrite::IncrBy { key, .. }
            | HashWrite::IncrByFloat { key, .. } => key,
        }
    }
}

/// A read of a hash (an absent key reads as an empty hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HashRead {
    /// One field's value.
    Get {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
    },
    /// Several fields' values, in order.
    MGet {
        /// The key.
        key: Bytes,
        /// The fields.
        fields: Vec<Bytes>,
    },
    /// Whether a field exists (1 or 0).
    Exists {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
    },
    /// The number of fields.
    Len {
        /// The key.
        key: Bytes,
    },
    /// The length of a field's value (0 when absent).
    Strlen {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
    },
    /// Every field name.
    Keys {
        /// The key.
        key: Bytes,
    },
    /// Every value.
    Vals {
        /// The key.
        key: Bytes,
    },
    /// Every field and value (optionally only fields matching a pattern:
    /// `HSCAN`).
    GetAll {
        /// The key.
        key: Bytes,
        /// A glob pattern on fields.
        pattern: Option<Bytes>,
    },
    /// Random fields (`HRANDFIELD`): `count` > 0 distinct ones, < 0 that
    /// many with repeats; `seed` makes the choice.
    RandField {
        /// The key.
        key: Bytes,
        /// How many, as Redis reads it.
        count: i64,
        /// A random number from the caller.
        seed: u64,
    },
}

impl HashRead {
    /// The hash's key.
    pub fn key(&self) -> &Bytes {
        match self {
            HashRead::Get { key, .. }
            | HashRead::MGet { key, .. }
            | HashRead::Exists { key, .. }
            | HashRead::Len { key }
            | HashRead::Strlen { key, .. }
            | HashRead::Keys { key }
            | HashRead::Vals { key }
            | HashRead::GetAll { key, .. }
            | HashRead::RandField { key, .. } => key,
        }
    }
}

/// One queued command of a transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Step {
    /// A change.
    Write(WriteOp),
    /// A read, answered at its place in the transaction.
    Read(Read),
}

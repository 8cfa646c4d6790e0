//! The in-memory keyspace of one shard: the cache that reads are served from.
//!
//! Commands carry keys and values as `bytes::Bytes`, but the keyspace
//! stores each key and each string in a boxed slice of its own, exactly
//! sized: a map slot is then 40 bytes instead of 80 (a `Bytes` is four
//! words, a boxed slice two), and no stored key ever grows a shared-buffer
//! header (the first clone of a `Bytes` made from a `Vec` allocates one,
//! for good). A read copies the value out under the read lock, as Redis
//! copies it into the client's output buffer. Every key may carry an
//! absolute deadline (ms since the Unix epoch). A key whose deadline has passed is
//! invisible: reads compare against the reader's clock, writes against the
//! clock reading carried in the log entry ([`Write::now_ms`]), so apply is
//! deterministic on every replica.
//!
//! Keys with a deadline are also indexed by deadline, so the shard leader
//! can find expired keys without scanning ([`Keyspace::expired`]) and
//! propose their removal ([`WriteOp::PurgeExpired`]), as a Redis primary
//! sends `DEL` to its replicas.
//!
//! The keyspace knows nothing of Raft or storage; the Raft state machine
//! owns one per shard and calls [`Keyspace::apply`] for each committed entry.

pub mod command;
pub mod float;
pub mod glob;
pub mod hash;

use std::collections::BTreeSet;
use std::hash::RandomState;
use std::num::NonZeroU64;

use hashbrown::HashMap;
use hashbrown::hash_map::EntryRef;
use indexmap::IndexMap;

use bytes::Bytes;
use float::LongDouble;

pub use command::{
    ExpireCondition, HashRead, HashWrite, KvError, MAX_STRING, Read, Reply, Rpo, SCAN_POSITION_BITS, SetCondition,
    Step, Write, WriteOp, scan_position,
};

/// What a key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// A string.
    Str(Box<[u8]>),
    /// A hash; fields keep their insertion order, as Redis keeps small
    /// hashes. Boxed, so that the common case, a string, pays one pointer
    /// for it in every key's slot rather than a whole map header.
    Hash(Box<IndexMap<Bytes, Bytes>>),
}

/// A stored value and its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The data.
    pub data: Data,
    /// Absolute expiry in ms since the epoch, if any; never zero, so that
    /// `None` costs no extra word.
    deadline: Option<NonZeroU64>,
}

impl Value {
    /// `data` expiring at `expire_at_ms`, if given. A deadline of 0 (long
    /// past, like any other deadline a write would already have removed
    /// its key for) is kept as 1.
    pub fn new(data: Data, expire_at_ms: Option<u64>) -> Self {
        Value {
            data,
            deadline: stored_deadline(expire_at_ms),
        }
    }

    /// A string value, copied into an allocation of its own.
    pub fn string(data: &[u8], expire_at_ms: Option<u64>) -> Self {
        Value::new(Data::Str(data.into()), expire_at_ms)
    }

    /// Absolute expiry in ms since the epoch, if any.
    pub fn expire_at_ms(&self) -> Option<u64> {
        self.deadline.map(NonZeroU64::get)
    }

    fn is_live(&self, now_ms: u64) -> bool {
        self.expire_at_ms().is_none_or(|deadline| deadline > now_ms)
    }

    /// The string, or [`KvError::WrongType`].
    fn as_str(&self) -> Result<&[u8], KvError> {
        match &self.data {
            Data::Str(bytes) => Ok(bytes),
            Data::Hash(_) => Err(KvError::WrongType),
        }
    }

    /// The type's name as `TYPE` reports it.
    pub fn type_name(&self) -> &'static str {
        match self.data {
            Data::Str(_) => "string",
            Data::Hash(_) => "hash",
        }
    }
}

/// A deadline as a [`Value`] keeps it (see [`Value::new`]).
fn stored_deadline(expire_at_ms: Option<u64>) -> Option<NonZeroU64> {
    expire_at_ms.map(|ms| NonZeroU64::new(ms.max(1)).expect("at least 1"))
}

/// The string at a key (`None`: absent), or the error for another type.
type StringAt<'a> = Result<Option<&'a Value>, KvError>;

/// One shard's keys.
#[derive(Debug, Clone, Default)]
pub struct Keyspace {
    /// Hashed with SipHash under a random key, as Redis hashes its keys:
    /// clients choose the keys, and must not be able to choose collisions.
    map: HashMap<Box<[u8]>, Value, RandomState>,
    /// `(deadline, key)` of every key that has a deadline.
    deadlines: BTreeSet<(u64, Bytes)>,
}

impl Keyspace {
    /// Number of keys held, including expired keys not yet removed.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// What a snapshot of the keys holds, item by item: each string, and
    /// each field of a hash (a hash of a million fields costs a snapshot
    /// as much as a million strings). Walks every key.
    pub fn items(&self) -> usize {
        self.map
            .values()
            .map(|value| match &value.data {
                Data::Str(_) => 1,
                Data::Hash(fields) => fields.len().max(1),
            })
            .sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every key and value, in no particular order (for snapshots).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Value)> {
        self.map.iter().map(|(key, value)| (&**key, value))
    }

    /// Inserts a key as read back from a snapshot.
    pub fn restore(&mut self, key: &[u8], value: Value) {
        self.put(key, value);
    }

    /// The data at `key`, for a snapshot's pieces of a long value to fill
    /// in once [`Keyspace::restore`] put it there.
    pub fn restoring(&mut self, key: &[u8]) -> Option<&mut Data> {
        self.map.get_mut(key).map(|value| &mut value.data)
    }

    /// Number of keys that have a deadline.
    pub fn expiring(&self) -> usize {
        self.deadlines.len()
    }

    /// Up to `limit` keys whose deadline is at or before `now_ms`, oldest
    /// deadline first.
    pub fn expired(&self, now_ms: u64, limit: usize) -> Vec<Bytes> {
        self.deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now_ms)
            .take(limit)
            .map(|(_, key)| key.clone())
            .collect()
    }

    fn live(&self, key: &[u8], now_ms: u64) -> Option<&Value> {
        self.map.get(key).filter(|v| v.is_live(now_ms))
    }

    /// The live value at `key` if it is a string.
    fn live_string(&self, key: &[u8], now_ms: u64) -> StringAt<'_> {
        match self.live(key, now_ms) {
            Some(value) => value.as_str().map(|_| Some(value)),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key`, keeping the deadline index in step. A new
    /// key is copied into an allocation of its own, exactly sized (as keys
    /// arrive they are views into a decoded log entry, which a stored view
    /// would keep alive); an overwrite keeps the stored key, so it costs
    /// one lookup and no allocation for the key.
    fn put(&mut self, key: &[u8], value: Value) {
        let deadline = value.expire_at_ms();
        let old_deadline = match self.map.entry_ref(key) {
            EntryRef::Occupied(mut slot) => slot.insert(value).expire_at_ms(),
            EntryRef::Vacant(slot) => {
                slot.insert_with_key(key.into(), value);
                None
            }
        };
        if old_deadline != deadline {
            self.reindex(key, old_deadline, deadline);
        }
    }

    /// Stores the string `value` under `key` until `deadline`, or removes
    /// the key if that deadline has passed by `now`.
    fn put_string(&mut self, key: &[u8], value: &[u8], deadline: Option<u64>, now: u64) {
        if deadline.is_some_and(|d| d <= now) {
            self.take(key);
        } else {
            self.put(key, Value::string(value, deadline));
        }
    }

    /// Moves `key` in the deadline index from `old` to `new`.
    fn reindex(&mut self, key: &[u8], old: Option<u64>, new: Option<u64>) {
        let key = Bytes::copy_from_slice(key);
        if let Some(old) = old {
            self.deadlines.remove(&(old, key.clone()));
        }
        if let Some(new) = new {
            self.deadlines.insert((new, key));
        }
    }

    /// Removes `key`, keeping the deadline index in step.
    fn take(&mut self, key: &[u8]) -> Option<Value> {
        let value = self.map.remove(key)?;
        if let Some(deadline) = value.expire_at_ms() {
            self.reindex(key, Some(deadline), None);
        }
        Some(value)
    }

    /// Gives `key` (if it exists) a new deadline, or none.
    fn set_deadline(&mut self, key: &[u8], deadline: Option<u64>) {
        if let Some(value) = self.map.get_mut(key) {
            let old = value.expire_at_ms();
            value.deadline = stored_deadline(deadline);
            if old != deadline {
                self.reindex(key, old, deadline);
            }
        }
    }

    /// Answers a read as of `now_ms` (the reader's clock).
    pub fn read(&self, read: &Read, now_ms: u64) -> Reply {
        match read {
            Read::Get { key } => match self.live_string(key, now_ms) {
                Ok(Some(v)) => Reply::Value(Bytes::copy_from_slice(v.as_str().expect("a string"))),
                Ok(None) => Reply::Nil,
                Err(err) => Reply::Err(err),
            },
            Read::MGet { keys } => Reply::Values(
                keys.iter()
                    .map(|k| {
                        self.live(k, now_ms)
                            .and_then(|v| v.as_str().ok().map(Bytes::copy_from_slice))
                    })
                    .collect(),
            ),
            Read::Exists { keys } => Reply::Int(keys.iter().filter(|k| self.live(k, now_ms).is_some()).count() as i64),
            Read::DbSize => Reply::Int(self.map.values().filter(|v| v.is_live(now_ms)).count() as i64),
            Read::Ttl { key } => Reply::Int(match self.live(key, now_ms).map(Value::expire_at_ms) {
                None => -2,
                Some(None) => -1,
                Some(Some(deadline)) => (deadline - now_ms) as i64,
            }),
            Read::ExpireAt { key } => Reply::Int(match self.live(key, now_ms) {
                None => -2,
                Some(value) => value.expire_at_ms().map_or(-1, |deadline| deadline as i64),
            }),
            Read::Keys { pattern } => Reply::Keys(
                self.map
                    .iter()
                    .filter(|(key, value)| value.is_live(now_ms) && glob::matches(pattern, key))
                    .map(|(key, _)| Bytes::copy_from_slice(key))
                    .collect(),
            ),
            Read::Fingerprint { key } => Reply::Int(self.fingerprint(key, now_ms)),
            Read::SlotKeys { slot, limit } => Reply::Keys(
                self.map
                    .iter()
                    .filter(|(key, value)| value.is_live(now_ms) && crate::slot::key_slot(key) == *slot)
                    .take(*limit)
                    .map(|(key, _)| Bytes::copy_from_slice(key))
                    .collect(),
            ),
            Read::Scan {
                from,
                count,
                pattern,
                type_name,
            } => self.scan(*from, *count, pattern.as_deref(), type_name.as_deref(), now_ms),
            Read::RandomKey { seed } => {
                let live = self.map.iter().filter(|(_, v)| v.is_live(now_ms));
                let n = live.clone().count();
                match n {
                    0 => Reply::Nil,
                    n => live
                        .map(|(key, _)| Bytes::copy_from_slice(key))
                        .nth((*seed % n as u64) as usize)
                        .map_or(Reply::Nil, Reply::Value),
                }
            }
            Read::Strlen { key } => match self.live_string(key, now_ms) {
                Ok(v) => Reply::Int(v.map_or(0, |v| v.as_str().expect("a string").len() as i64)),
                Err(err) => Reply::Err(err),
            },
            Read::GetRange { key, start, end } => match self.live_string(key, now_ms) {
                Ok(v) => {
                    let data = v.map_or(&[][..], |v| v.as_str().expect("a string"));
                    Reply::Value(range(data, *start, *end))
                }
                Err(err) => Reply::Err(err),
            },
            Read::Type { key } => self.live(key, now_ms).map_or(Reply::Nil, |v| {
                Reply::Value(Bytes::from_static(v.type_name().as_bytes()))
            }),
            Read::Hash(read) => match self.live(read.key(), now_ms) {
                None => hash::read(&IndexMap::new(), read),
                Some(Value {
                    data: Data::Hash(fields),
                    ..
                }) => hash::read(fields, read),
                Some(_) => Reply::Err(KvError::WrongType),
            },
        }
    }

    /// A key's fingerprint for `WATCH` (-1 when absent): FNV-1a over its
    /// type, data and deadline, kept non-negative.
    fn fingerprint(&self, key: &[u8], now_ms: u64) -> i64 {
        let Some(value) = self.live(key, now_ms) else {
            return -1;
        };
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &byte in bytes {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(value.type_name().as_bytes());
        match &value.data {
            Data::Str(data) => eat(data),
            Data::Hash(fields) => {
                for (field, data) in fields.iter() {
                    eat(&(field.len() as u64).to_le_bytes());
                    eat(field);
                    eat(&(data.len() as u64).to_le_bytes());
                    eat(data);
                }
            }
        }
        eat(&value.expire_at_ms().unwrap_or(0).to_le_bytes());
        (hash >> 1) as i64
    }

    /// One step of a scan: the `count` live keys with the lowest scan
    /// positions at or after `from` (with every key sharing the last one's
    /// position, so no key is split across steps), filtered by `pattern`
    /// and type.
    /// Costs a pass over the shard.
    fn scan(&self, from: u64, count: usize, pattern: Option<&[u8]>, type_name: Option<&str>, now_ms: u64) -> Reply {
        let mut candidates: Vec<(u64, &[u8])> = self
            .map
            .iter()
            .filter(|(_, value)| value.is_live(now_ms))
            .map(|(key, _)| (scan_position(key), &**key))
            .filter(|(position, _)| *position >= from)
            .collect();
        candidates.sort_unstable();
        let count = count.max(1);
        let mut end = count.min(candidates.len());
        while end < candidates.len() && end > 0 && candidates[end].0 == candidates[end - 1].0 {
            end += 1;
        }
        let next = candidates.get(end).map(|(position, _)| *position);
        let keys = candidates[..end]
            .iter()
            .filter(|(_, key)| pattern.is_none_or(|p| glob::matches(p, key)))
            .filter(|(_, key)| type_name.is_none_or(|t| self.map[*key].type_name() == t))
            .map(|(_, key)| Bytes::copy_from_slice(key))
            .collect();
        Reply::Scan { keys, next }
    }

    /// Applies a committed write. Deterministic: the result depends only on
    /// the keyspace and `write`.
    pub fn apply(&mut self, write: &Write) -> Reply {
        let now = write.now_ms;
        match &write.op {
            WriteOp::Set {
                key,
                value,
                expire_at_ms,
                condition: SetCondition::Always,
                keep_ttl: false,
                get: false,
            } => {
                // Nothing of the old value matters, whatever its type.
                self.put_string(key, value, *expire_at_ms, now);
                Reply::Ok
            }
            WriteOp::Set {
                key,
                value,
                expire_at_ms,
                condition,
                keep_ttl,
                get,
            } => {
                // Only what is needed of the old value: copying it whole
                // would cost every overwrite an allocation.
                let old = match self.live_string(key, now) {
                    Ok(old) => old,
                    // SET replaces any type, unless it must return the old string.
                    Err(err) if *get => return Reply::Err(err),
                    Err(_) => self.live(key, now),
                };
                let (exists, old_deadline) = (old.is_some(), old.and_then(Value::expire_at_ms));
                let previous = match get {
                    true => old.map(|v| Bytes::copy_from_slice(v.as_str().expect("a string"))),
                    false => None,
                };
                let allowed = match condition {
                    SetCondition::Always => true,
                    SetCondition::IfAbsent => !exists,
                    SetCondition::IfPresent => exists,
                };
                if allowed {
                    let deadline = if *keep_ttl { old_deadline } else { *expire_at_ms };
                    self.put_string(key, value, deadline, now);
                }
                match (get, allowed) {
                    (true, _) => previous.map_or(Reply::Nil, Reply::Value),
                    (false, true) => Reply::Ok,
                    (false, false) => Reply::Nil,
                }
            }
            WriteOp::Del { keys } => {
                let mut removed = 0;
                for key in keys {
                    if let Some(v) = self.take(key)
                        && v.is_live(now)
                    {
                        removed += 1;
                    }
                }
                Reply::Int(removed)
            }
            WriteOp::IncrBy { key, delta } => {
                let old = match self.live_string(key, now) {
                    Ok(old) => old,
                    Err(err) => return Reply::Err(err),
                };
                let current = match old {
                    Some(v) => match parse_i64(v.as_str().expect("a string")) {
                        Some(n) => n,
                        None => return Reply::Err(KvError::NotInteger),
                    },
                    None => 0,
                };
                let Some(next) = current.checked_add(*delta) else {
                    return Reply::Err(KvError::Overflow);
                };
                let expire_at_ms = old.and_then(Value::expire_at_ms);
                self.put(key, Value::string(next.to_string().as_bytes(), expire_at_ms));
                Reply::Int(next)
            }
            WriteOp::IncrByFloat { key, increment } => {
                let old = match self.live_string(key, now) {
                    Ok(old) => old,
                    Err(err) => return Reply::Err(err),
                };
                let current = match old {
                    Some(v) => LongDouble::parse(v.as_str().expect("a string")),
                    None => Some(LongDouble::ZERO),
                };
                let (Some(current), Some(increment)) = (current, LongDouble::parse(increment)) else {
                    return Reply::Err(KvError::NotFloat);
                };
                let Some(next) = (current + increment).to_human() else {
                    return Reply::Err(KvError::NanOrInfinity);
                };
                let expire_at_ms = old.and_then(Value::expire_at_ms);
                self.put(key, Value::string(&next, expire_at_ms));
                Reply::Value(next)
            }
            WriteOp::CompareAndSet { key, expected, new } => {
                let current = match self.live_string(key, now) {
                    Ok(v) => v.map(|v| Bytes::copy_from_slice(v.as_str().expect("a string"))),
                    Err(err) => return Reply::Err(err),
                };
                if current == *expected {
                    self.put(key, Value::string(new, None));
                    Reply::Swap {
                        swapped: true,
                        current: None,
                    }
                } else {
                    Reply::Swap {
                        swapped: false,
                        current,
                    }
                }
            }
            WriteOp::Expire {
                key,
                expire_at_ms,
                condition,
            } => {
                let Some(current) = self.live(key, now).map(Value::expire_at_ms) else {
                    return Reply::Int(0);
                };
                if !condition.allows(current, *expire_at_ms) {
                    return Reply::Int(0);
                }
                if *expire_at_ms <= now {
                    self.take(key);
                } else {
                    self.set_deadline(key, Some(*expire_at_ms));
                }
                Reply::Int(1)
            }
            WriteOp::Append { key, value } => {
                let old = match self.live_string(key, now) {
                    Ok(old) => old.map(|v| (v.as_str().expect("a string"), v.expire_at_ms())),
                    Err(err) => return Reply::Err(err),
                };
                let len = old.as_ref().map_or(0, |(data, _)| data.len()) + value.len();
                if len as u64 > MAX_STRING {
                    return Reply::Err(KvError::TooLong);
                }
                let mut data = Vec::with_capacity(len);
                data.extend_from_slice(old.as_ref().map_or(&[][..], |(old, _)| old));
                data.extend_from_slice(value);
                let expire_at_ms = old.and_then(|(_, expire_at_ms)| expire_at_ms);
                self.put(key, Value::new(Data::Str(data.into()), expire_at_ms));
                Reply::Int(len as i64)
            }
            WriteOp::SetRange { key, offset, value } => {
                let old = match self.live_string(key, now) {
                    Ok(old) => old.map(|v| (v.as_str().expect("a string"), v.expire_at_ms())),
                    Err(err) => return Reply::Err(err),
                };
                let old_len = old.as_ref().map_or(0, |(data, _)| data.len());
                if value.is_empty() {
                    return Reply::Int(old_len as i64);
                }
                let end = offset.saturating_add(value.len() as u64);
                if end > MAX_STRING {
                    return Reply::Err(KvError::TooLong);
                }
                let mut data = old.as_ref().map_or_else(Vec::new, |(data, _)| data.to_vec());
                if (data.len() as u64) < end {
                    data.resize(end as usize, 0);
                }
                data[*offset as usize..end as usize].copy_from_slice(value);
                let len = data.len();
                let expire_at_ms = old.and_then(|(_, expire_at_ms)| expire_at_ms);
                self.put(key, Value::new(Data::Str(data.into()), expire_at_ms));
                Reply::Int(len as i64)
            }
            WriteOp::GetDel { key } => match self.live_string(key, now) {
                Ok(Some(_)) => self.take(key).map_or(Reply::Nil, |v| match v.data {
                    Data::Str(data) => Reply::Value(Bytes::from(data)),
                    Data::Hash(_) => Reply::Err(KvError::WrongType),
                }),
                Ok(None) => Reply::Nil,
                Err(err) => Reply::Err(err),
            },
            WriteOp::GetEx { key, expire_at_ms } => {
                let data = match self.live_string(key, now) {
                    Ok(Some(v)) => Bytes::copy_from_slice(v.as_str().expect("a string")),
                    Ok(None) => return Reply::Nil,
                    Err(err) => return Reply::Err(err),
                };
                match expire_at_ms {
                    Some(deadline) if *deadline <= now => {
                        self.take(key);
                    }
                    deadline => self.set_deadline(key, *deadline),
                }
                Reply::Value(data)
            }
            WriteOp::MSet { pairs, if_none_exist } => {
                if *if_none_exist && pairs.iter().any(|(key, _)| self.live(key, now).is_some()) {
                    return Reply::Int(0);
                }
                for (key, value) in pairs {
                    self.put(key, Value::string(value, None));
                }
                if *if_none_exist { Reply::Int(1) } else { Reply::Ok }
            }
            WriteOp::Rename { from, to, if_absent } => {
                let Some(value) = self.live(from, now).cloned() else {
                    return Reply::Err(KvError::NoSuchKey);
                };
                if *if_absent && self.live(to, now).is_some() {
                    return Reply::Int(0);
                }
                if from != to {
                    self.take(from);
                    self.take(to);
                    self.put(to, value);
                }
                if *if_absent { Reply::Int(1) } else { Reply::Ok }
            }
            WriteOp::Copy { from, to, replace } => {
                let Some(value) = self.live(from, now).cloned() else {
                    return Reply::Int(0);
                };
                if !*replace && self.live(to, now).is_some() {
                    return Reply::Int(0);
                }
                self.take(to);
                self.put(to, value);
                Reply::Int(1)
            }
            WriteOp::Hash(write) => {
                let key = write.key();
                match self.live(key, now).map(|v| matches!(v.data, Data::Hash(_))) {
                    Some(false) => return Reply::Err(KvError::WrongType),
                    Some(true) => {}
                    None => {
                        self.take(key);
                        self.put(key, Value::new(Data::Hash(Box::default()), None));
                    }
                }
                let Some(Value {
                    data: Data::Hash(fields),
                    ..
                }) = self.map.get_mut(&key[..])
                else {
                    unreachable!("a hash was just found or made")
                };
                let reply = hash::apply(fields, write);
                if fields.is_empty() {
                    self.take(key);
                }
                reply
            }
            WriteOp::Transaction { steps, watched } => {
                if watched.iter().any(|(key, seen)| self.fingerprint(key, now) != *seen) {
                    return Reply::Nil;
                }
                Reply::List(
                    steps
                        .iter()
                        .map(|step| match step {
                            Step::Write(op) => self.apply(&Write {
                                now_ms: now,
                                session: None,
                                op: op.clone(),
                            }),
                            Step::Read(read) => self.read(read, now),
                        })
                        .collect(),
                )
            }
            // Applied by the state machine (to the users, or to the
            // cross-region log, or the meta group, or write by write),
            // never queued in a transaction; nothing to do to keys.
            WriteOp::Acl(_)
            | WriteOp::Batch { .. }
            | WriteOp::Xlog { .. }
            | WriteOp::XlogTrim { .. }
            | WriteOp::XlogReset { .. }
            | WriteOp::XlogSeal
            | WriteOp::XlogOpen { .. }
            | WriteOp::XlogDiscard
            | WriteOp::XlogClose { .. }
            | WriteOp::Meta(_) => Reply::Ok,
            WriteOp::Flush => {
                self.map.clear();
                self.deadlines.clear();
                Reply::Ok
            }
            WriteOp::Persist { key } => match self.live(key, now).and_then(Value::expire_at_ms) {
                Some(_) => {
                    self.set_deadline(key, None);
                    Reply::Int(1)
                }
                None => Reply::Int(0),
            },
            WriteOp::PurgeExpired { keys } => {
                let mut purged = 0;
                for key in keys {
                    if self.map.get(&key[..]).is_some_and(|v| !v.is_live(now)) {
                        self.take(key);
                        purged += 1;
                    }
                }
                Reply::Int(purged)
            }
        }
    }
}

/// `GETRANGE`'s slice of `data`, with Redis 7's index rules.
fn range(data: &[u8], start: i64, end: i64) -> Bytes {
    let len = data.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Bytes::new();
    }
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { (len + end).max(0) } else { end };
    let end = end.min(len - 1);
    if start > end || len == 0 {
        return Bytes::new();
    }
    Bytes::copy_from_slice(&data[start as usize..=end as usize])
}

/// Parses a value the way Redis's `string2ll` does: optional `-`, digits,
/// no leading zeros, no spaces, within `i64`.
pub fn parse_i64(data: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(data).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    let well_formed = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    if !well_formed {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_slot_stays_small() {
        // Every key pays for one (key, value) slot of the map, held about
        // half full on average: each byte here costs about two per key.
        assert!(std::mem::size_of::<(Box<[u8]>, Value)>() <= 40);
    }

    fn set(key: &str, value: &str, now_ms: u64) -> Write {
        Write {
            now_ms,
            session: None,
            op: WriteOp::Set {
                key: Bytes::from(key.to_string()),
                value: Bytes::from(value.to_string()),
                expire_at_ms: None,
                condition: SetCondition::Always,
                keep_ttl: false,
                get: false,
            },
        }
    }

    fn get(ks: &Keyspace, key: &str, now_ms: u64) -> Reply {
        ks.read(
            &Read::Get {
                key: Bytes::from(key.to_string()),
            },
            now_ms,
        )
    }

    #[test]
    fn a_hash_counts_as_many_items_as_it_has_fields() {
        let mut ks = Keyspace::default();
        ks.apply(&set("s", "v", 1000));
        let pairs = (0..3)
            .map(|i| (Bytes::from(format!("f{i}")), Bytes::from("v")))
            .collect();
        let hset = Write {
            now_ms: 1000,
            session: None,
            op: WriteOp::Hash(HashWrite::Set {
                key: Bytes::from("h"),
                pairs,
                if_absent: false,
            }),
        };
        assert_eq!(ks.apply(&hset), Reply::Int(3));
        assert_eq!((ks.len(), ks.items()), (2, 4), "a string and three fields");
    }

    #[test]
    fn expired_keys_are_invisible_and_writes_use_the_entry_clock() {
        let mut ks = Keyspace::default();
        let mut w = set("k", "v", 1000);
        if let WriteOp::Set { expire_at_ms, .. } = &mut w.op {
            *expire_at_ms = Some(2000);
        }
        assert_eq!(ks.apply(&w), Reply::Ok);
        assert_eq!(get(&ks, "k", 1999), Reply::Value(Bytes::from("v")));
        assert_eq!(get(&ks, "k", 2000), Reply::Nil);
        // An INCR proposed after the deadline starts from zero on every replica.
        let incr = Write {
            now_ms: 2500,
            session: None,
            op: WriteOp::IncrBy {
                key: Bytes::from("k"),
                delta: 5,
            },
        };
        assert_eq!(ks.apply(&incr), Reply::Int(5));
    }

    #[test]
    fn expire_sets_a_deadline_on_live_keys_only_and_ttl_reports_it() {
        let mut ks = Keyspace::default();
        let expire = |key: &str, expire_at_ms| Write {
            now_ms: 1000,
            session: None,
            op: WriteOp::Expire {
                key: Bytes::from(key.to_string()),
                expire_at_ms,
                condition: ExpireCondition::default(),
            },
        };
        let ttl = |ks: &Keyspace, now_ms| ks.read(&Read::Ttl { key: Bytes::from("k") }, now_ms);
        assert_eq!(ks.apply(&expire("k", 5000)), Reply::Int(0));
        assert_eq!(ttl(&ks, 1000), Reply::Int(-2));
        ks.apply(&set("k", "v", 1000));
        assert_eq!(ttl(&ks, 1000), Reply::Int(-1));
        assert_eq!(ks.apply(&expire("k", 5000)), Reply::Int(1));
        assert_eq!(ttl(&ks, 1500), Reply::Int(3500));
        assert_eq!(ks.apply(&expire("k", 999)), Reply::Int(1));
        assert_eq!(ttl(&ks, 1000), Reply::Int(-2));
    }

    #[test]
    fn expire_conditions_match_redis() {
        let mut ks = Keyspace::default();
        let expire = |expire_at_ms, nx, xx, gt, lt| Write {
            now_ms: 1000,
            session: None,
            op: WriteOp::Expire {
                key: Bytes::from("k"),
                expire_at_ms,
                condition: ExpireCondition { nx, xx, gt, lt },
            },
        };
        ks.apply(&set("k", "v", 1000));
        assert_eq!(
            ks.apply(&expire(9000, false, true, false, false)),
            Reply::Int(0),
            "XX: none yet"
        );
        assert_eq!(
            ks.apply(&expire(9000, false, false, true, false)),
            Reply::Int(0),
            "GT: none is infinite"
        );
        assert_eq!(
            ks.apply(&expire(9000, false, false, false, true)),
            Reply::Int(1),
            "LT: below infinite"
        );
        assert_eq!(
            ks.apply(&expire(8000, true, false, false, false)),
            Reply::Int(0),
            "NX: has one"
        );
        assert_eq!(
            ks.apply(&expire(9500, false, false, true, false)),
            Reply::Int(1),
            "GT: later"
        );
        assert_eq!(
            ks.apply(&expire(9500, false, false, false, true)),
            Reply::Int(0),
            "LT: not earlier"
        );
        let persist = Write {
            now_ms: 1000,
            session: None,
            op: WriteOp::Persist { key: Bytes::from("k") },
        };
        assert_eq!(ks.apply(&persist), Reply::Int(1));
        assert_eq!(ks.apply(&persist), Reply::Int(0));
        assert!(ks.deadlines.is_empty(), "the index follows the deadline");
    }

    #[test]
    fn the_deadline_index_finds_expired_keys_and_purge_removes_only_those() {
        let mut ks = Keyspace::default();
        for (i, deadline) in [3000, 1000, 2000, 5000].into_iter().enumerate() {
            let mut w = set(&format!("k{i}"), "v", 0);
            if let WriteOp::Set { expire_at_ms, .. } = &mut w.op {
                *expire_at_ms = Some(deadline);
            }
            ks.apply(&w);
        }
        ks.apply(&set("forever", "v", 0));
        ks.apply(&set("k2", "overwritten without a deadline", 0));
        assert_eq!(ks.expired(3000, 10), [Bytes::from("k1"), Bytes::from("k0")]);
        assert_eq!(ks.expired(9000, 1), [Bytes::from("k1")]);
        // Keys renewed since the leader listed them are not purged.
        let purge = Write {
            now_ms: 2500,
            session: None,
            op: WriteOp::PurgeExpired {
                keys: vec![Bytes::from("k1"), Bytes::from("k0"), Bytes::from("forever")],
            },
        };
        assert_eq!(ks.apply(&purge), Reply::Int(1));
        assert_eq!(ks.len(), 4);
        assert_eq!(ks.expired(u64::MAX, 10), [Bytes::from("k0"), Bytes::from("k3")]);
    }

    #[test]
    fn a_set_already_past_its_deadline_removes_the_key() {
        let mut ks = Keyspace::default();
        let mut w = set("k", "v", 0);
        if let WriteOp::Set { expire_at_ms, .. } = &mut w.op {
            *expire_at_ms = Some(5000);
        }
        ks.apply(&w);
        let mut late = set("k", "v2", 6000);
        if let WriteOp::Set { expire_at_ms, .. } = &mut late.op {
            *expire_at_ms = Some(5500);
        }
        assert_eq!(ks.apply(&late), Reply::Ok);
        assert_eq!(ks.len(), 0);
        assert!(ks.deadlines.is_empty(), "the index follows the key");
    }

    #[test]
    fn set_conditions_and_get_option() {
        let mut ks = Keyspace::default();
        let mut nx = set("k", "1", 0);
        if let WriteOp::Set { condition, .. } = &mut nx.op {
            *condition = SetCondition::IfAbsent;
        }
        assert_eq!(ks.apply(&nx), Reply::Ok);
        assert_eq!(ks.apply(&nx), Reply::Nil);
        let mut xx_get = set("k", "2", 0);
        if let WriteOp::Set { condition, get, .. } = &mut xx_get.op {
            *condition = SetCondition::IfPresent;
            *get = true;
        }
        assert_eq!(ks.apply(&xx_get), Reply::Value(Bytes::from("1")));
        assert_eq!(get(&ks, "k", 0), Reply::Value(Bytes::from("2")));
    }

    #[test]
    fn incr_rules_match_redis() {
        let mut ks = Keyspace::default();
        let incr = |delta| Write {
            now_ms: 0,
            session: None,
            op: WriteOp::IncrBy {
                key: Bytes::from("n"),
                delta,
            },
        };
        assert_eq!(ks.apply(&incr(1)), Reply::Int(1));
        assert_eq!(ks.apply(&incr(-3)), Reply::Int(-2));
        assert_eq!(ks.apply(&incr(i64::MIN)), Reply::Err(KvError::Overflow));
        ks.apply(&set("n", "007", 0));
        assert_eq!(ks.apply(&incr(1)), Reply::Err(KvError::NotInteger));
        for bad in [" 1", "1 ", "+1", "", "-", "-0", "1.0", "99999999999999999999"] {
            assert_eq!(parse_i64(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn compare_and_set_swaps_only_on_match() {
        let mut ks = Keyspace::default();
        let cas = |expected: Option<&str>, new: &str| Write {
            now_ms: 0,
            session: None,
            op: WriteOp::CompareAndSet {
                key: Bytes::from("c"),
                expected: expected.map(|e| Bytes::from(e.to_string())),
                new: Bytes::from(new.to_string()),
            },
        };
        assert_eq!(
            ks.apply(&cas(None, "a")),
            Reply::Swap {
                swapped: true,
                current: None
            }
        );
        assert_eq!(
            ks.apply(&cas(None, "b")),
            Reply::Swap {
                swapped: false,
                current: Some(Bytes::from("a"))
            }
        );
        assert_eq!(
            ks.apply(&cas(Some("a"), "b")),
            Reply::Swap {
                swapped: true,
                current: None
            }
        );
        assert_eq!(get(&ks, "c", 0), Reply::Value(Bytes::from("b")));
    }
}

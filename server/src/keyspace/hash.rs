//! Hashes: reads and changes of one hash's fields, as Redis 7 does them.
//!
//! Fields keep their insertion order and a removed field closes its gap,
//! which is what Redis does for small hashes, so `HGETALL` of a small hash
//! lists fields in the same order on Cairn and on Redis.

use bytes::Bytes;
use indexmap::IndexMap;

use super::command::{HashRead, HashWrite, KvError, Reply};
use super::float::LongDouble;
use super::{glob, parse_i64};

/// The fields of one hash.
pub type Fields = IndexMap<Bytes, Bytes>;

/// Answers a read of `fields`.
pub fn read(fields: &Fields, read: &HashRead) -> Reply {
    match read {
        HashRead::Get { field, .. } => fields.get(field).map_or(Reply::Nil, |v| Reply::Value(v.clone())),
        HashRead::MGet { fields: wanted, .. } => Reply::Values(wanted.iter().map(|f| fields.get(f).cloned()).collect()),
        HashRead::Exists { field, .. } => Reply::Int(i64::from(fields.contains_key(field))),
        HashRead::Len { .. } => Reply::Int(fields.len() as i64),
        HashRead::Strlen { field, .. } => Reply::Int(fields.get(field).map_or(0, |v| v.len() as i64)),
        HashRead::Keys { .. } => Reply::Keys(fields.keys().cloned().collect()),
        HashRead::Vals { .. } => Reply::Keys(fields.values().cloned().collect()),
        HashRead::GetAll { pattern, .. } => Reply::Pairs(
            fields
                .iter()
                .filter(|(field, _)| pattern.as_ref().is_none_or(|p| glob::matches(p, field)))
                .map(|(f, v)| (f.clone(), v.clone()))
                .collect(),
        ),
        HashRead::RandField { count, seed, .. } => Reply::Pairs(random(fields, *count, *seed)),
    }
}

/// `HRANDFIELD`'s choice: `count` > 0 distinct fields (all of them if there
/// are fewer), < 0 exactly `-count` fields that may repeat.
fn random(fields: &Fields, count: i64, seed: u64) -> Vec<(Bytes, Bytes)> {
    if fields.is_empty() {
        return Vec::new();
    }
    let n = fields.len() as u64;
    let pick = |i: u64| {
        let (f, v) = fields
            .get_index((seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) % n) as usize)
            .expect("index below len");
        (f.clone(), v.clone())
    };
    if count < 0 {
        return (0..count.unsigned_abs()).map(pick).collect();
    }
    let start = seed % n;
    (0..(count as u64).min(n))
        .map(|i| {
            let (f, v) = fields.get_index(((start + i) % n) as usize).expect("index below len");
            (f.clone(), v.clone())
        })
        .collect()
}

/// Applies a change to `fields`.
pub fn apply(fields: &mut Fields, write: &HashWrite) -> Reply {
    match write {
        HashWrite::Set { pairs, if_absent, .. } => {
            let mut added = 0;
            for (field, value) in pairs {
                if *if_absent && fields.contains_key(field) {
                    continue;
                }
                if fields.insert(field.clone(), value.clone()).is_none() {
                    added += 1;
                }
            }
            Reply::Int(added)
        }
        HashWrite::Del { fields: gone, .. } => {
            Reply::Int(gone.iter().filter(|f| fields.shift_remove(*f).is_some()).count() as i64)
        }
        HashWrite::IncrBy { field, delta, .. } => {
            let current = match fields.get(field) {
                Some(value) => match parse_i64(value) {
                    Some(n) => n,
                    None => return Reply::Err(KvError::HashNotInteger),
                },
                None => 0,
            };
            let Some(next) = current.checked_add(*delta) else {
                return Reply::Err(KvError::Overflow);
            };
            fields.insert(field.clone(), Bytes::from(next.to_string()));
            Reply::Int(next)
        }
        HashWrite::IncrByFloat { field, increment, .. } => {
            let Some(increment) = LongDouble::parse(increment) else {
                return Reply::Err(KvError::NotFloat);
            };
            let current = match fields.get(field) {
                Some(value) => match LongDouble::parse(value) {
                    Some(n) => n,
                    None => return Reply::Err(KvError::HashNotFloat),
                },
                None => LongDouble::ZERO,
            };
            let Some(next) = (current + increment).to_human() else {
                return Reply::Err(KvError::NanOrInfinity);
            };
            fields.insert(field.clone(), next.clone());
            Reply::Value(next)
        }
    }
}

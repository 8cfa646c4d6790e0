//! The `SET` shorthands: `SETNX key value` (1 if set), `SETEX key seconds
//! value`, `PSETEX key milliseconds value` and `GETSET key value` (the old
//! value), each answering exactly as Redis 7 does.

use std::sync::Arc;

use bytes::Bytes;

use super::{Client, Outcome, Spec, bulk_or_null, on_key, parse_int, write};
use crate::keyspace::{Reply, SetCondition, WriteOp};
use crate::resp::frame::Frame;
use crate::resp::server::Shared;
use crate::shard::now_ms;

fn set(key: Bytes, value: Bytes, expire_at_ms: Option<u64>, condition: SetCondition, get: bool) -> WriteOp {
    WriteOp::Set {
        key,
        value,
        expire_at_ms,
        condition,
        keep_ttl: false,
        get,
    }
}

/// `SETEX`/`PSETEX`: `args` are name, key, time, value.
fn set_with_ttl(shared: &Arc<Shared>, mut args: Vec<Bytes>, name: &str, unit_ms: i64) -> Outcome {
    let invalid = || Outcome::Reply(Frame::error(format!("ERR invalid expire time in '{name}' command")));
    let ttl = match parse_int(&args[2]) {
        Ok(ttl) if ttl <= 0 => return invalid(),
        Ok(ttl) => ttl,
        Err(frame) => return Outcome::Reply(frame),
    };
    let Some(at) = ttl.checked_mul(unit_ms).and_then(|ms| ms.checked_add(now_ms() as i64)) else {
        return invalid();
    };
    let value = args.swap_remove(3);
    let key = args.swap_remove(1);
    let op = set(key.clone(), value, Some(at as u64), SetCondition::Always, false);
    on_key(shared, &key, write(op), |_| Frame::ok())
}

/// `SETNX`.
pub static SETNX: Spec = Spec {
    name: "setnx",
    arity: 3,
    flags: &["write", "denyoom", "fast"],
    first_key: 1,
    last_key: 1,
    step: 1,
    categories: &["@write", "@string", "@fast"],
    run: |shared, _: &mut Client, mut args| {
        let value = args.swap_remove(2);
        let key = args.swap_remove(1);
        let op = set(key.clone(), value, None, SetCondition::IfAbsent, false);
        on_key(shared, &key, write(op), |reply| {
            Frame::Integer(i64::from(reply == Reply::Ok))
        })
    },
};

/// `SETEX`.
pub static SETEX: Spec = Spec {
    name: "setex",
    arity: 4,
    flags: &["write", "denyoom"],
    categories: &["@write", "@string", "@slow"],
    run: |shared, _: &mut Client, args| set_with_ttl(shared, args, "setex", 1000),
    ..SETNX
};

/// `PSETEX`.
pub static PSETEX: Spec = Spec {
    name: "psetex",
    run: |shared, _: &mut Client, args| set_with_ttl(shared, args, "psetex", 1),
    ..SETEX
};

/// `GETSET`.
pub static GETSET: Spec = Spec {
    name: "getset",
    run: |shared, _: &mut Client, mut args| {
        let value = args.swap_remove(2);
        let key = args.swap_remove(1);
        let op = set(key.clone(), value, None, SetCondition::Always, true);
        on_key(shared, &key, write(op), bulk_or_null)
    },
    ..SETNX
};

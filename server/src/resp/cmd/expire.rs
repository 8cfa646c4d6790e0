//! `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT key time [NX|XX|GT|LT]`:
//! give a key a deadline, as Redis 7 does.
//!
//! The deadline is made absolute here (on this node's clock) before it is
//! proposed; the options are checked against the key's current deadline
//! when the entry is applied. Replies 1 when the deadline was set (or the
//! key deleted because the deadline has already passed), 0 when the key
//! does not exist or an option prevented it.

use std::sync::Arc;

use bytes::Bytes;

use super::{Client, Outcome, Spec, integer, on_key, parse_int, write};
use crate::keyspace::{ExpireCondition, WriteOp};
use crate::resp::frame::Frame;
use crate::resp::server::Shared;
use crate::shard::now_ms;

/// How the time argument is read.
#[derive(Clone, Copy)]
enum Unit {
    /// Seconds from now.
    Seconds,
    /// Milliseconds from now.
    Millis,
    /// A Unix time in seconds.
    UnixSeconds,
    /// A Unix time in milliseconds.
    UnixMillis,
}

/// Parses `NX XX GT LT` the way Redis 7 does, errors included.
fn condition(options: &[Bytes]) -> Result<ExpireCondition, Frame> {
    let mut condition = ExpireCondition::default();
    for option in options {
        match option.to_ascii_lowercase().as_slice() {
            b"nx" => condition.nx = true,
            b"xx" => condition.xx = true,
            b"gt" => condition.gt = true,
            b"lt" => condition.lt = true,
            _ => {
                return Err(Frame::error(format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(option)
                )));
            }
        }
    }
    if condition.nx && (condition.xx || condition.gt || condition.lt) {
        return Err(Frame::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if condition.gt && condition.lt {
        return Err(Frame::error(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(condition)
}

/// The absolute deadline in ms, or Redis's error when it does not fit.
fn deadline(name: &str, time: i64, unit: Unit) -> Result<u64, Frame> {
    let invalid = || Frame::error(format!("ERR invalid expire time in '{name}' command"));
    let ms = match unit {
        Unit::Seconds | Unit::UnixSeconds => time.checked_mul(1000).ok_or_else(invalid)?,
        Unit::Millis | Unit::UnixMillis => time,
    };
    let absolute = match unit {
        Unit::Seconds | Unit::Millis => ms.checked_add(now_ms() as i64).ok_or_else(invalid)?,
        Unit::UnixSeconds | Unit::UnixMillis => ms,
    };
    // A deadline in the past deletes the key; clamp it to "long ago".
    Ok(absolute.max(0) as u64)
}

fn expire(shared: &Arc<Shared>, name: &str, mut args: Vec<Bytes>, unit: Unit) -> Outcome {
    let time = match parse_int(&args[2]) {
        Ok(time) => time,
        Err(frame) => return Outcome::Reply(frame),
    };
    let condition = match condition(&args[3..]) {
        Ok(condition) => condition,
        Err(frame) => return Outcome::Reply(frame),
    };
    let expire_at_ms = match deadline(name, time, unit) {
        Ok(deadline) => deadline,
        Err(frame) => return Outcome::Reply(frame),
    };
    let key = args.swap_remove(1);
    let op = WriteOp::Expire {
        key: key.clone(),
        expire_at_ms,
        condition,
    };
    on_key(shared, &key, write(op), integer)
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`.
pub static EXPIRE: Spec = Spec {
    name: "expire",
    arity: -3,
    flags: &["write", "fast"],
    first_key: 1,
    last_key: 1,
    step: 1,
    categories: &["@keyspace", "@write", "@fast"],
    run: |shared, _: &mut Client, args| expire(shared, "expire", args, Unit::Seconds),
};

/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`.
pub static PEXPIRE: Spec = Spec {
    name: "pexpire",
    run: |shared, _: &mut Client, args| expire(shared, "pexpire", args, Unit::Millis),
    ..EXPIRE
};

/// `EXPIREAT key unix-time-seconds [NX|XX|GT|LT]`.
pub static EXPIREAT: Spec = Spec {
    name: "expireat",
    run: |shared, _: &mut Client, args| expire(shared, "expireat", args, Unit::UnixSeconds),
    ..EXPIRE
};

/// `PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]`.
pub static PEXPIREAT: Spec = Spec {
    name: "pexpireat",
    run: |shared, _: &mut Client, args| expire(shared, "pexpireat", args, Unit::UnixMillis),
    ..EXPIRE
};

/// `PERSIST key`: removes the key's deadline; 1 if it had one.
pub static PERSIST: Spec = Spec {
    name: "persist",
    arity: 2,
    run: |shared, _: &mut Client, mut args| {
        let key = args.swap_remove(1);
        on_key(shared, &key.clone(), write(WriteOp::Persist { key }), integer)
    },
    ..EXPIRE
};

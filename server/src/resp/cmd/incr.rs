//! `INCR`, `DECR`, `INCRBY`, `DECRBY`, `INCRBYFLOAT`: arithmetic on a
//! string value.
//!
//! The delta is fixed when the command is parsed and the addition happens in
//! the state machine on the replicated value, so every replica computes the
//! same result. `INCRBYFLOAT` hands its increment over as text: Redis checks
//! the key's type and value before the increment, and so does apply.

use std::sync::Arc;

use bytes::Bytes;

use super::{Client, Outcome, Spec, bulk_or_null, on_key, parse_int, write};
use crate::keyspace::{Reply, WriteOp};
use crate::resp::frame::Frame;
use crate::resp::server::Shared;

fn incr_by(shared: &Arc<Shared>, key: Bytes, delta: i64) -> Outcome {
    on_key(
        shared,
        &key.clone(),
        write(WriteOp::IncrBy { key, delta }),
        |reply| match reply {
            Reply::Int(n) => Frame::Integer(n),
            other => Frame::error(format!("ERR unexpected reply {other:?}")),
        },
    )
}

const FLAGS: &[&str] = &["write", "denyoom", "fast"];
const CATEGORIES: &[&str] = &["@write", "@string", "@fast"];

/// `INCR key`.
pub static INCR: Spec = Spec {
    name: "incr",
    arity: 2,
    flags: FLAGS,
    first_key: 1,
    last_key: 1,
    step: 1,
    categories: CATEGORIES,
    run: |shared, _: &mut Client, mut args| incr_by(shared, args.swap_remove(1), 1),
};

/// `DECR key`.
pub static DECR: Spec = Spec {
    name: "decr",
    run: |shared, _: &mut Client, mut args| incr_by(shared, args.swap_remove(1), -1),
    ..INCR
};

/// `INCRBY key increment`.
pub static INCRBY: Spec = Spec {
    name: "incrby",
    arity: 3,
    run: |shared, _: &mut Client, mut args| match parse_int(&args[2]) {
        Ok(delta) => incr_by(shared, args.swap_remove(1), delta),
        Err(frame) => Outcome::Reply(frame),
    },
    ..INCR
};

/// `DECRBY key decrement`.
pub static DECRBY: Spec = Spec {
    name: "decrby",
    arity: 3,
    run: |shared, _: &mut Client, mut args| match parse_int(&args[2]).map(i64::checked_neg) {
        Ok(Some(delta)) => incr_by(shared, args.swap_remove(1), delta),
        Ok(None) => Outcome::Reply(Frame::error("ERR decrement would overflow")),
        Err(frame) => Outcome::Reply(frame),
    },
    ..INCR
};

/// `INCRBYFLOAT key increment`: replies the new value as Redis prints it.
pub static INCRBYFLOAT: Spec = Spec {
    name: "incrbyfloat",
    arity: 3,
    run: |shared, _: &mut Client, mut args| {
        let increment = args.swap_remove(2);
        let key = args.swap_remove(1);
        on_key(
            shared,
            &key.clone(),
            write(WriteOp::IncrByFloat { key, increment }),
            bulk_or_null,
        )
    },
    ..INCR
};

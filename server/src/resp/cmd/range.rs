//! `GETRANGE key start end` (and its old name `SUBSTR`) and `SETRANGE key
//! offset value`: read or overwrite part of a string, with Redis 7's index
//! rules (negative indexes count from the end; `SETRANGE` pads with zero
//! bytes and never creates a key for an empty value).

use std::sync::Arc;

use bytes::Bytes;

use super::{Client, Outcome, Spec, integer, on_key, parse_int, write};
use crate::keyspace::{MAX_STRING, Read, Reply, WriteOp};
use crate::resp::frame::Frame;
use crate::resp::server::Shared;
use crate::shard::Request;

fn get_range(shared: &Arc<Shared>, mut args: Vec<Bytes>) -> Outcome {
    let (start, end) = match (parse_int(&args[2]), parse_int(&args[3])) {
        (Ok(start), Ok(end)) => (start, end),
        (Err(frame), _) | (_, Err(frame)) => return Outcome::Reply(frame),
    };
    let key = args.swap_remove(1);
    let read = Read::GetRange {
        key: key.clone(),
        start,
        end,
    };
    on_key(shared, &key, Request::Read(read), |reply| match reply {
        Reply::Value(v) => Frame::Bulk(v),
        other => Frame::error(format!("ERR unexpected reply {other:?}")),
    })
}

/// `GETRANGE`.
pub static GETRANGE: Spec = Spec {
    name: "getrange",
    arity: 4,
    flags: &["readonly"],
    first_key: 1,
    last_key: 1,
    step: 1,
    categories: &["@read", "@string", "@slow"],
    run: |shared, _: &mut Client, args| get_range(shared, args),
};

/// `SUBSTR` (the old name of `GETRANGE`).
pub static SUBSTR: Spec = Spec {
    name: "substr",
    ..GETRANGE
};

/// `SETRANGE`.
pub static SETRANGE: Spec = Spec {
    name: "setrange",
    arity: 4,
    flags: &["write", "denyoom"],
    categories: &["@write", "@string", "@slow"],
    run: |shared, _: &mut Client, mut args| {
        let offset = match parse_int(&args[2]) {
            Ok(offset) if offset < 0 => return Outcome::Reply(Frame::error("ERR offset is out of range")),
            Ok(offset) => offset as u64,
            Err(frame) => return Outcome::Reply(frame),
        };
        let value = args.swap_remove(3);
        if !value.is_empty() && offset.saturating_add(value.len() as u64) > MAX_STRING {
            return Outcome::Reply(Frame::error(
                "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
            ));
        }
        let key = args.swap_remove(1);
        on_key(
            shared,
            &key.clone(),
            write(WriteOp::SetRange { key, offset, value }),
            integer,
        )
    },
    ..GETRANGE
};

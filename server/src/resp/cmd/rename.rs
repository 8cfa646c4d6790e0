//! `RENAME key newkey`, `RENAMENX key newkey` and `COPY source destination
//! [DB 0] [REPLACE]`: one Raft entry, so both keys must live on one shard
//! (`-CROSSSLOT` otherwise; `{hash tags}` keep them together). The deadline
//! moves (or is copied) with the value.

use std::sync::Arc;

use bytes::Bytes;

use super::{Client, Outcome, Spec, integer, on_key, one_shard, parse_int, syntax_error, write};
use crate::keyspace::WriteOp;
use crate::resp::frame::Frame;
use crate::resp::server::Shared;

fn rename(shared: &Arc<Shared>, args: &[Bytes], if_absent: bool) -> Outcome {
    let (from, to) = (args[1].clone(), args[2].clone());
    if let Err(frame) = one_shard(shared, &[&from, &to]) {
        return Outcome::Reply(frame);
    }
    let op = WriteOp::Rename {
        from: from.clone(),
        to,
        if_absent,
    };
    if if_absent {
        on_key(shared, &from, write(op), integer)
    } else {
        on_key(shared, &from, write(op), |_| Frame::ok())
    }
}

/// `RENAME`.
pub static RENAME: Spec = Spec {
    name: "rename",
    arity: 3,
    flags: &["write"],
    first_key: 1,
    last_key: 2,
    step: 1,
    categories: &["@keyspace", "@write", "@slow"],
    run: |shared, _: &mut Client, args| rename(shared, &args, false),
};

/// `RENAMENX`: 1 if renamed, 0 if the new name exists.
pub static RENAMENX: Spec = Spec {
    name: "renamenx",
    flags: &["write", "fast"],
    categories: &["@keyspace", "@write", "@fast"],
    run: |shared, _: &mut Client, args| rename(shared, &args, true),
    ..RENAME
};

/// `COPY`: 1 if copied, 0 if the source is missing or the destination
/// exists without `REPLACE`.
pub static COPY: Spec = Spec {
    name: "copy",
    arity: -3,
    flags: &["write", "denyoom"],
    run: |shared, _: &mut Client, args| {
        let mut replace = false;
        let mut i = 3;
        while i < args.len() {
            match args[i].to_ascii_lowercase().as_slice() {
                b"replace" => replace = true,
                b"db" if i + 1 < args.len() => {
                    i += 1;
                    match parse_int(&args[i]) {
                        Ok(0) => {}
                        Ok(_) => return Outcome::Reply(Frame::error("ERR DB index is out of range")),
                        Err(frame) => return Outcome::Reply(frame),
                    }
                }
                _ => return Outcome::Reply(syntax_error()),
            }
            i += 1;
        }
        let (from, to) = (args[1].clone(), args[2].clone());
        if from == to {
            return Outcome::Reply(Frame::error("ERR source and destination objects are the same"));
        }
        if let Err(frame) = one_shard(shared, &[&from, &to]) {
            return Outcome::Reply(frame);
        }
        on_key(
            shared,
            &from.clone(),
            write(WriteOp::Copy { from, to, replace }),
            integer,
        )
    },
    ..RENAME
};

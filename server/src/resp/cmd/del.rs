//! `DEL key [key ...]` and `UNLINK` (the same here: memory is freed at
//! once either way): how many of the keys existed. Keys of one shard are
//! removed in one Raft entry; across shards the deletes are not atomic.

use super::{Client, Spec, sum_fan_out, write};
use crate::keyspace::WriteOp;

/// `DEL`.
pub static SPEC: Spec = Spec {
    name: "del",
    arity: -2,
    flags: &["write"],
    first_key: 1,
    last_key: -1,
    step: 1,
    categories: &["@keyspace", "@write", "@slow"],
    run: |shared, _: &mut Client, args| sum_fan_out(shared, args, |keys| write(WriteOp::Del { keys })),
};

/// `UNLINK`.
pub static UNLINK: Spec = Spec {
    name: "unlink",
    flags: &["write", "fast"],
    categories: &["@keyspace", "@write", "@fast"],
    ..SPEC
};

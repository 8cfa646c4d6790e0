//! `EXISTS key [key ...]` and `TOUCH`: how many of the keys exist (a key
//! named twice counts twice). Keys are not tracked for eviction, so `TOUCH`
//! only counts.

use super::{Client, Spec, sum_fan_out};
use crate::keyspace::Read;
use crate::shard::Request;

/// `EXISTS`.
pub static SPEC: Spec = Spec {
    name: "exists",
    arity: -2,
    flags: &["readonly", "fast"],
    first_key: 1,
    last_key: -1,
    step: 1,
    categories: &["@keyspace", "@read", "@fast"],
    run: |shared, _: &mut Client, args| sum_fan_out(shared, args, |keys| Request::Read(Read::Exists { keys })),
};

/// `TOUCH`.
pub static TOUCH: Spec = Spec { name: "touch", ..SPEC };

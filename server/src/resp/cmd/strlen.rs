//! `STRLEN key`: the length of a string, 0 when the key does not exist.

use super::{Client, Spec, integer, on_key};
use crate::keyspace::Read;
use crate::shard::Request;

/// `STRLEN`.
pub static SPEC: Spec = Spec {
    name: "strlen",
    arity: 2,
    flags: &["readonly", "fast"],
    first_key: 1,
    last_key: 1,
    step: 1,
    categories: &["@read", "@string", "@fast"],
    run: |shared, _: &mut Client, mut args| {
        let key = args.swap_remove(1);
        on_key(shared, &key.clone(), Request::Read(Read::Strlen { key }), integer)
    },
};

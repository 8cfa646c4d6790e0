//! `APPEND key value`: appends to a string (creating it); replies the new
//! length.

use super::{Client, Spec, integer, on_key, write};
use crate::keyspace::WriteOp;

/// `APPEND`.
pub static SPEC: Spec = Spec {
    name: "append",
    arity: 3,
    flags: &["write", "denyoom", "fast"],
    first_key: 1,
    last_key: 1,
    step: 1,
    categories: &["@write", "@string", "@fast"],
    run: |shared, _: &mut Client, mut args| {
        let value = args.swap_remove(2);
        let key = args.swap_remove(1);
        on_key(shared, &key.clone(), write(WriteOp::Append { key, value }), integer)
    },
};

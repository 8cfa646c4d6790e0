//! `TYPE key`: `string`, or `none` when the key does not exist (strings
//! are the only type so far).

use super::{Client, Spec, on_key};
use crate::keyspace::{Read, Reply};
use crate::resp::frame::Frame;
use crate::shard::Request;

/// `TYPE`.
pub static SPEC: Spec = Spec {
    name: "type",
    arity: 2,
    flags: &["readonly", "fast"],
    first_key: 1,
    last_key: 1,
    step: 1,
    categories: &["@keyspace", "@read", "@fast"],
    run: |shared, _: &mut Client, mut args| {
        let key = args.swap_remove(1);
        let read = Read::Exists {
            keys: vec![key.clone()],
        };
        on_key(shared, &key, Request::Read(read), |reply| {
            Frame::Simple(if reply == Reply::Int(1) { "string" } else { "none" }.into())
        })
    },
};

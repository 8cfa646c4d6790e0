//! `TYPE key`: `string`, `hash`, or `none` when the key does not exist.

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
        on_key(
            shared,
            &key.clone(),
            Request::Read(Read::Type { key }),
            |reply| match reply {
                Reply::Value(name) => Frame::Simple(String::from_utf8_lossy(&name).into_owned()),
                _ => Frame::Simple("none".into()),
            },
        )
    },
};

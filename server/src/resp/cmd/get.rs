//! `GET key`: the value, or nil; linearizable (served by the shard leader
//! after it confirms its lease).

use super::{Client, Spec, on_key};
use crate::keyspace::{Read, Reply};
use crate::resp::frame::Frame;
use crate::shard::Request;

/// `GET`.
pub static SPEC: Spec = Spec {
    name: "get",
    arity: 2,
    flags: &["readonly", "fast"],
    first_key: 1,
    last_key: 1,
    step: 1,
    categories: &["@read", "@string", "@fast"],
    run: |shared, _: &mut Client, mut args| {
        let key = args.swap_remove(1);
        on_key(
            shared,
            &key.clone(),
            Request::Read(Read::Get { key }),
            |reply| match reply {
                Reply::Value(v) => Frame::Bulk(v),
                _ => Frame::Null,
            },
        )
    },
};

//! `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME key`: a key's deadline, as
//! Redis 7 reports it: -2 when the key does not exist, -1 when it has no
//! deadline; seconds are rounded to the nearest (`TTL`, `EXPIRETIME`).

use std::sync::Arc;

use bytes::Bytes;

use super::{Client, Outcome, Spec, integer, on_key};
use crate::keyspace::{Read, Reply};
use crate::resp::frame::Frame;
use crate::resp::server::Shared;
use crate::shard::Request;

fn seconds(reply: Reply) -> Frame {
    match reply {
        Reply::Int(n) if n < 0 => Frame::Integer(n),
        Reply::Int(ms) => Frame::Integer((ms + 500) / 1000),
        other => Frame::error(format!("ERR unexpected reply {other:?}")),
    }
}

fn ask(shared: &Arc<Shared>, mut args: Vec<Bytes>, read: fn(Bytes) -> Read, reply: fn(Reply) -> Frame) -> Outcome {
    let key = args.swap_remove(1);
    on_key(shared, &key.clone(), Request::Read(read(key)), reply)
}

/// `TTL key`: seconds left.
pub static TTL: Spec = Spec {
    name: "ttl",
    arity: 2,
    flags: &["readonly", "fast"],
    first_key: 1,
    last_key: 1,
    step: 1,
    categories: &["@keyspace", "@read", "@fast"],
    run: |shared, _: &mut Client, args| ask(shared, args, |key| Read::Ttl { key }, seconds),
};

/// `PTTL key`: milliseconds left.
pub static PTTL: Spec = Spec {
    name: "pttl",
    run: |shared, _: &mut Client, args| ask(shared, args, |key| Read::Ttl { key }, integer),
    ..TTL
};

/// `EXPIRETIME key`: the deadline as a Unix time in seconds.
pub static EXPIRETIME: Spec = Spec {
    name: "expiretime",
    run: |shared, _: &mut Client, args| ask(shared, args, |key| Read::ExpireAt { key }, seconds),
    ..TTL
};

/// `PEXPIRETIME key`: the deadline as a Unix time in milliseconds.
pub static PEXPIRETIME: Spec = Spec {
    name: "pexpiretime",
    run: |shared, _: &mut Client, args| ask(shared, args, |key| Read::ExpireAt { key }, integer),
    ..TTL
};

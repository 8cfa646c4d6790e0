//! `MSET key value [key value ...]` and `MSETNX`: set several keys in one
//! Raft entry, so atomically — which needs every key on one shard; keys on
//! several shards get Redis Cluster's `-CROSSSLOT` error (use `{hash
//! tags}` to keep related keys together).

use std::sync::Arc;

use bytes::Bytes;

use super::{Client, Outcome, Spec, integer, on_key, one_shard, write};
use crate::keyspace::WriteOp;
use crate::resp::frame::Frame;
use crate::resp::server::Shared;

fn mset(shared: &Arc<Shared>, args: Vec<Bytes>, name: &str, if_none_exist: bool) -> Outcome {
    if args.len().is_multiple_of(2) {
        return Outcome::Reply(Frame::error(format!(
            "ERR wrong number of arguments for '{name}' command"
        )));
    }
    let pairs: Vec<(Bytes, Bytes)> = args[1..]
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    let keys: Vec<&Bytes> = pairs.iter().map(|(key, _)| key).collect();
    if let Err(frame) = one_shard(shared, &keys) {
        return Outcome::Reply(frame);
    }
    let key = pairs[0].0.clone();
    let op = WriteOp::MSet { pairs, if_none_exist };
    if if_none_exist {
        on_key(shared, &key, write(op), integer)
    } else {
        on_key(shared, &key, write(op), |_| Frame::ok())
    }
}

/// `MSET`.
pub static MSET: Spec = Spec {
    name: "mset",
    arity: -3,
    flags: &["write", "denyoom"],
    first_key: 1,
    last_key: -1,
    step: 2,
    categories: &["@write", "@string", "@slow"],
    run: |shared, _: &mut Client, args| mset(shared, args, "mset", false),
};

/// `MSETNX`: all or none; 1 if set, 0 if any key existed.
pub static MSETNX: Spec = Spec {
    name: "msetnx",
    run: |shared, _: &mut Client, args| mset(shared, args, "msetnx", true),
    ..MSET
};

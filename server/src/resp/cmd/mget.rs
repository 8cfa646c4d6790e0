//! `MGET key [key ...]`: values in request order. Keys of one shard are
//! one read (which `MULTI` can queue); keys of different shards are read
//! from each shard concurrently; each shard's part is linearizable,
//! the whole is not atomic across shards.

use bytes::Bytes;

use super::{Client, Outcome, Spec, fan_out, on_key, one_shard};
use crate::keyspace::{Read, Reply};
use crate::resp::frame::Frame;
use crate::shard::Request;

/// `MGET`.
pub static SPEC: Spec = Spec {
    name: "mget",
    arity: -2,
    flags: &["readonly", "fast"],
    first_key: 1,
    last_key: -1,
    step: 1,
    categories: &["@read", "@string", "@fast"],
    run: |shared, _: &mut Client, args| {
        let keys: Vec<&Bytes> = args[1..].iter().collect();
        if one_shard(shared, &keys).is_ok() {
            let read = Request::Read(Read::MGet {
                keys: args[1..].to_vec(),
            });
            return on_key(shared, &args[1].clone(), read, |reply| match reply {
                Reply::Values(values) => {
                    Frame::Array(values.into_iter().map(|v| v.map_or(Frame::Null, Frame::Bulk)).collect())
                }
                other => Frame::error(format!("ERR unexpected reply {other:?}")),
            });
        }
        let shared = shared.clone();
        Outcome::Later(Box::pin(async move {
            let keys = &args[1..];
            let replies = match fan_out(&shared, keys, |keys| Request::Read(Read::MGet { keys })).await {
                Ok(replies) => replies,
                Err(frame) => return frame,
            };
            let mut values = vec![Frame::Null; keys.len()];
            for (positions, reply) in replies {
                if let Reply::Values(found) = reply {
                    for (i, value) in positions.into_iter().zip(found) {
                        values[i] = value.map_or(Frame::Null, Frame::Bulk);
                    }
                }
            }
            Frame::Array(values)
        }))
    },
};

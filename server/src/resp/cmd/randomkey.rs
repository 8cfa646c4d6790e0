//! `RANDOMKEY`: any live key, or nil when there is none. Shards are tried
//! in random order; within a shard the pick costs a pass over its keys.

use super::{Client, Outcome, Spec, error_frame};
use crate::keyspace::{Read, Reply};
use crate::resp::frame::Frame;
use crate::shard::Request;

/// `RANDOMKEY`.
pub static SPEC: Spec = Spec {
    name: "randomkey",
    arity: 1,
    flags: &["readonly"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@keyspace", "@read", "@slow"],
    run: |shared, _: &mut Client, _| {
        let shared = shared.clone();
        Outcome::Later(Box::pin(async move {
            let shards = u64::from(shared.node.slots().shards());
            let first: u64 = rand::random();
            for i in 0..shards {
                let shard = (first.wrapping_add(i)) % shards;
                let read = Read::RandomKey { seed: rand::random() };
                match shared.execute(shard, Request::Read(read)).await {
                    Ok(answer) => {
                        if let Reply::Value(key) = answer.reply {
                            return Frame::Bulk(key);
                        }
                    }
                    Err(err) => return error_frame(err),
                }
            }
            Frame::Null
        }))
    },
};

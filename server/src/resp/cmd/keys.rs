//! `KEYS pattern`: every live key matching a glob pattern, gathered from
//! every shard (each shard's part is linearizable; the whole is not one
//! snapshot). Like Redis's, it visits the whole keyspace: prefer `SCAN`.

use super::{Client, Outcome, Spec, on_every_shard};
use crate::keyspace::{Read, Reply};
use crate::resp::frame::Frame;
use crate::shard::Request;

/// `KEYS`.
pub static SPEC: Spec = Spec {
    name: "keys",
    arity: 2,
    flags: &["readonly"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@keyspace", "@read", "@slow", "@dangerous"],
    run: |shared, _: &mut Client, mut args| {
        let shared = shared.clone();
        let pattern = args.swap_remove(1);
        Outcome::Later(Box::pin(async move {
            match on_every_shard(&shared, Request::Read(Read::Keys { pattern })).await {
                Ok(replies) => Frame::Array(
                    replies
                        .into_iter()
                        .flat_map(|reply| match reply {
                            Reply::Keys(keys) => keys,
                            _ => Vec::new(),
                        })
                        .map(Frame::Bulk)
                        .collect(),
                ),
                Err(frame) => frame,
            }
        }))
    },
};

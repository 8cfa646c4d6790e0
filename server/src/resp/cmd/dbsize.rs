//! `DBSIZE`: the number of live keys, summed over every shard's leader.

use super::{Client, Outcome, Spec, on_every_shard};
use crate::keyspace::{Read, Reply};
use crate::resp::frame::Frame;
use crate::shard::Request;

/// `DBSIZE`.
pub static SPEC: Spec = Spec {
    name: "dbsize",
    arity: 1,
    flags: &["readonly", "fast"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@keyspace", "@read", "@fast"],
    run: |shared, _: &mut Client, _| {
        let shared = shared.clone();
        Outcome::Later(Box::pin(async move {
            match on_every_shard(&shared, Request::Read(Read::DbSize)).await {
                Ok(replies) => Frame::Integer(
                    replies
                        .into_iter()
                        .map(|reply| if let Reply::Int(n) = reply { n } else { 0 })
                        .sum(),
                ),
                Err(frame) => frame,
            }
        }))
    },
};

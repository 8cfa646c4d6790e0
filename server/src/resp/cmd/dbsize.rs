//! `DBSIZE`: the number of live keys, summed over every shard's leader.

use super::{Client, Outcome, Spec, error_frame};
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
        let node = shared.node.clone();
        Outcome::Later(Box::pin(async move {
            let shards = 0..u64::from(node.slots().shards());
            let calls = shards.map(|shard| node.execute(shard, Request::Read(Read::DbSize)));
            match futures::future::try_join_all(calls).await {
                Ok(answers) => Frame::Integer(
                    answers
                        .into_iter()
                        .map(|a| if let Reply::Int(n) = a.reply { n } else { 0 })
                        .sum(),
                ),
                Err(err) => error_frame(err),
            }
        }))
    },
};

//! `FLUSHDB [ASYNC|SYNC]` and `FLUSHALL [ASYNC|SYNC]` (one database, so
//! the same): every shard removes all its keys through Raft, so every
//! replica does. Shards are flushed concurrently, not atomically together.

use super::{Client, Outcome, Spec, on_every_shard, syntax_error, write};
use crate::keyspace::WriteOp;
use crate::resp::frame::Frame;

/// `FLUSHDB`.
pub static FLUSHDB: Spec = Spec {
    name: "flushdb",
    arity: -1,
    flags: &["write"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@keyspace", "@write", "@slow", "@dangerous"],
    run: |shared, _: &mut Client, args| {
        match args.get(1).map(|a| a.to_ascii_lowercase()) {
            None => {}
            Some(mode) if args.len() == 2 && (mode == b"async" || mode == b"sync") => {}
            Some(_) => return Outcome::Reply(syntax_error()),
        }
        let shared = shared.clone();
        Outcome::Later(Box::pin(async move {
            match on_every_shard(&shared, write(WriteOp::Flush)).await {
                Ok(_) => Frame::ok(),
                Err(frame) => frame,
            }
        }))
    },
};

/// `FLUSHALL`.
pub static FLUSHALL: Spec = Spec {
    name: "flushall",
    ..FLUSHDB
};

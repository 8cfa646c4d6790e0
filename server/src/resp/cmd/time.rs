//! `TIME` (this node's clock: seconds and microseconds) and `LASTSAVE`
//! (when this node started: every write is durable in the Raft log as it
//! is acknowledged, so there is no separate save).

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Client, Outcome, Spec};
use crate::resp::frame::Frame;

/// `TIME`.
pub static TIME: Spec = Spec {
    name: "time",
    arity: 1,
    flags: &["loading", "stale", "fast"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@fast"],
    run: |_, _: &mut Client, _| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Outcome::Reply(Frame::Array(vec![
            Frame::bulk(now.as_secs().to_string()),
            Frame::bulk(now.subsec_micros().to_string()),
        ]))
    },
};

/// `LASTSAVE`.
pub static LASTSAVE: Spec = Spec {
    name: "lastsave",
    categories: &["@admin", "@fast", "@dangerous"],
    run: |shared, _: &mut Client, _| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let started = now.saturating_sub(shared.started.elapsed());
        Outcome::Reply(Frame::Integer(started.as_secs() as i64))
    },
    ..TIME
};

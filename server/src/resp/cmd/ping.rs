//! `PING [message]`: `+PONG`, or the message as a bulk string.

use super::{Client, Outcome, Spec};
use crate::resp::frame::Frame;

/// `PING`.
pub static SPEC: Spec = Spec {
    name: "ping",
    arity: -1,
    flags: &["fast", "stale"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@fast", "@connection"],
    run: |_, _: &mut Client, args| match args.len() {
        1 => Outcome::Reply(Frame::Simple("PONG".into())),
        2 => Outcome::Reply(Frame::Bulk(args[1].clone())),
        _ => Outcome::Reply(Frame::error("ERR wrong number of arguments for 'ping' command")),
    },
};

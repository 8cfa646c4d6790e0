//! `ECHO message`: the message back, as a bulk string.

use super::{Client, Outcome, Spec};
use crate::resp::frame::Frame;

/// `ECHO`.
pub static SPEC: Spec = Spec {
    name: "echo",
    arity: 2,
    flags: &["fast", "stale"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@fast", "@connection"],
    run: |_, _: &mut Client, args| Outcome::Reply(Frame::Bulk(args[1].clone())),
};

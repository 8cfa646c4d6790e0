//! `QUIT`: `+OK`, then the connection closes.

use super::{Client, Outcome, Spec};
use crate::resp::frame::Frame;

/// `QUIT`.
pub static SPEC: Spec = Spec {
    name: "quit",
    arity: -1,
    flags: &["fast", "stale", "noscript", "no-auth"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@fast", "@connection"],
    run: |_, _: &mut Client, _| Outcome::Close(Frame::ok()),
};

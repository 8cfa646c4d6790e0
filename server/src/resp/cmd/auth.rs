//! `AUTH [username] password`. No password is configured yet, so every
//! connection is the `default` user, as in a Redis without `requirepass`:
//! `AUTH password` gets Redis's "no password configured" error, and
//! `AUTH default anything` succeeds while other users do not exist.

use super::{Client, Outcome, Spec};
use crate::resp::frame::Frame;

/// `AUTH`.
pub static SPEC: Spec = Spec {
    name: "auth",
    arity: -2,
    flags: &["noscript", "loading", "stale", "fast", "no-auth", "allow-busy"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@fast", "@connection"],
    run: |_, _: &mut Client, args| {
        Outcome::Reply(match args.len() {
            2 => Frame::error(
                "ERR AUTH <password> called without any password configured for the default user. \
                 Are you sure your configuration is correct?",
            ),
            3 if args[1].as_ref() == b"default" => Frame::ok(),
            3 => Frame::error("WRONGPASS invalid username-password pair or user is disabled."),
            _ => Frame::error("ERR syntax error"),
        })
    },
};

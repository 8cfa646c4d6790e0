//! `AUTH [username] password`: logs the connection in as a user (see
//! [`crate::acl`]). `AUTH password` is the `default` user; when that user
//! needs no password, Redis's "no password configured" error.

use super::{Client, Outcome, Spec, acl, syntax_error};
use crate::acl::DEFAULT_USER;
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
    run: |shared, client: &mut Client, args| {
        let result = match args.len() {
            2 if shared.node.user(DEFAULT_USER).is_some_and(|u| u.nopass) => Err(Frame::error(
                "ERR AUTH <password> called without any password configured for the default user. \
                 Are you sure your configuration is correct?",
            )),
            2 => acl::log_in(shared, client, DEFAULT_USER.as_bytes(), &args[1]),
            3 => acl::log_in(shared, client, &args[1], &args[2]),
            _ => Err(syntax_error()),
        };
        Outcome::Reply(result.map_or_else(|frame| frame, |()| Frame::ok()))
    },
};

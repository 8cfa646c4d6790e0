//! `RESET`: returns the connection to its initial state (RESP2, no name,
//! replies on, not cluster-aware, no transaction or watched keys, logged in
//! as a new connection would be) and answers `+RESET`.

use super::{Client, Outcome, ReplyMode, Spec, acl};
use crate::resp::frame::{Frame, Protocol};

/// `RESET`.
pub static SPEC: Spec = Spec {
    name: "reset",
    arity: 1,
    flags: &["noscript", "loading", "stale", "fast", "no-auth"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@fast", "@connection"],
    run: |shared, client: &mut Client, _| {
        client.set_protocol(Protocol::Resp2);
        client.entry.set_name(None);
        client.cluster_aware = false;
        client.reply = ReplyMode::On;
        client.transaction = None;
        client.watched.lock().expect("watch lock").clear();
        client.set_user(acl::initial_user(shared));
        Outcome::Reply(Frame::Simple("RESET".into()))
    },
};

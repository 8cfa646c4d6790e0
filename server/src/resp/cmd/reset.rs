//! `RESET`: returns the connection to its initial state (RESP2, no name,
//! replies on, not cluster-aware, no transaction or watched keys) and
//! answers `+RESET`.

use super::{Client, Outcome, ReplyMode, Spec};
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
    run: |_, client: &mut Client, _| {
        client.set_protocol(Protocol::Resp2);
        client.entry.set_name(None);
        client.cluster_aware = false;
        client.reply = ReplyMode::On;
        client.transaction = None;
        client.watched.lock().expect("watch lock").clear();
        Outcome::Reply(Frame::Simple("RESET".into()))
    },
};

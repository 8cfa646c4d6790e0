//! `SELECT db`: Cairn has one database, like Redis Cluster: `SELECT 0` is
//! accepted, any other index gets Redis Cluster's error.

use super::{Client, Outcome, Spec, parse_int};
use crate::resp::frame::Frame;

/// `SELECT`.
pub static SPEC: Spec = Spec {
    name: "select",
    arity: 2,
    flags: &["loading", "stale", "fast"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@keyspace", "@fast"],
    run: |_, _: &mut Client, args| {
        Outcome::Reply(match parse_int(&args[1]) {
            Ok(0) => Frame::ok(),
            Ok(_) => Frame::error("ERR SELECT is not allowed in cluster mode"),
            Err(_) => Frame::error("ERR value is not an integer or out of range"),
        })
    },
};

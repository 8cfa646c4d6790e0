//! `HELLO [protover [AUTH username password] [SETNAME clientname]]`:
//! switches between RESP2 and RESP3 and describes the server.

use super::{Client, Outcome, Spec, acl, parse_int, syntax_error};
use crate::resp::frame::{Frame, Protocol};
use crate::resp::server::Shared;

/// The Redis version Cairn reports, for clients that check features by it.
pub const REDIS_VERSION: &str = "7.2.0";

/// `HELLO`.
pub static SPEC: Spec = Spec {
    name: "hello",
    arity: -1,
    flags: &["noscript", "loading", "stale", "fast", "no-auth"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@fast", "@connection"],
    run: |shared, client: &mut Client, args| Outcome::Reply(hello(shared, client, &args).unwrap_or_else(|frame| frame)),
};

fn hello(shared: &Shared, client: &mut Client, args: &[bytes::Bytes]) -> Result<Frame, Frame> {
    let mut protocol = client.protocol;
    if let Some(version) = args.get(1) {
        let version =
            parse_int(version).map_err(|_| Frame::error("ERR Protocol version is not an integer or out of range"))?;
        protocol = match version {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => return Err(Frame::error("NOPROTO unsupported protocol version")),
        };
    }
    let mut name = None;
    let mut credentials = None;
    let mut i = 2;
    while i < args.len() {
        match args[i].to_ascii_uppercase().as_slice() {
            b"AUTH" if i + 2 < args.len() => {
                credentials = Some((&args[i + 1], &args[i + 2]));
                i += 3;
            }
            b"SETNAME" if i + 1 < args.len() => {
                name = Some(args[i + 1].clone());
                i += 2;
            }
            _ => return Err(syntax_error()),
        }
    }
    match credentials {
        Some((user, password)) => acl::log_in(shared, client, user, password)?,
        None if client.user.is_none() => {
            return Err(Frame::error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> \
                 <pass> option can be used to authenticate the client and select the RESP protocol \
                 version at the same time",
            ));
        }
        None => {}
    }
    client.set_protocol(protocol);
    if name.is_some() {
        client.entry.set_name(name);
    }
    Ok(Frame::Map(vec![
        (Frame::bulk("server"), Frame::bulk("redis")),
        (Frame::bulk("version"), Frame::bulk(REDIS_VERSION)),
        (
            Frame::bulk("proto"),
            Frame::Integer(if protocol == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (Frame::bulk("id"), Frame::Integer(client.id() as i64)),
        (Frame::bulk("mode"), Frame::bulk("cluster")),
        (Frame::bulk("role"), Frame::bulk("master")),
        (Frame::bulk("modules"), Frame::Array(Vec::new())),
    ]))
}

//! `CLIENT ID | SETNAME | GETNAME | LIST | INFO | KILL | NO-EVICT | REPLY`:
//! this connection's identity and the node's view of every connection.

use std::sync::Arc;

use bytes::Bytes;

use super::{Client, Outcome, ReplyMode, Spec, syntax_error};
use crate::resp::frame::Frame;
use crate::resp::server::Shared;

/// Text as Redis sends it (verbatim in RESP3, bulk in RESP2).
fn text(text: String) -> Frame {
    Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(text),
    }
}

/// Whether Redis accepts `name` as a client name (printable, no spaces).
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// `CLIENT KILL addr` (old form: OK or an error) or `CLIENT KILL [ID id]
/// [ADDR addr] [LADDR addr] [SKIPME yes|no] …` (new form: how many).
fn kill(shared: &Shared, me: u64, args: &[Bytes]) -> Frame {
    if args.len() == 3 {
        let addr = String::from_utf8_lossy(&args[2]);
        return match shared.registry.all().into_iter().find(|e| e.addr.to_string() == addr) {
            Some(entry) => {
                entry.kill();
                Frame::ok()
            }
            None => Frame::error("ERR No such client"),
        };
    }
    let (mut id, mut addr, mut laddr, mut user, mut skip_me) = (None, None, None, None, true);
    for pair in args[2..].chunks(2) {
        let [filter, value] = pair else {
            return syntax_error();
        };
        let value_text = String::from_utf8_lossy(value).into_owned();
        match filter.to_ascii_lowercase().as_slice() {
            b"id" => match value_text.parse::<u64>() {
                Ok(n) => id = Some(n),
                Err(_) => return Frame::error("ERR client-id should be greater than 0"),
            },
            b"addr" => addr = Some(value_text),
            b"laddr" => laddr = Some(value_text),
            b"skipme" => match value_text.to_ascii_lowercase().as_str() {
                "yes" => skip_me = true,
                "no" => skip_me = false,
                _ => return syntax_error(),
            },
            b"user" if shared.node.user(&value_text).is_none() => {
                return Frame::error(format!("ERR No such user '{value_text}'"));
            }
            b"user" => user = Some(value_text),
            b"type" | b"maxage" => {}
            _ => return syntax_error(),
        }
    }
    let mut killed = 0;
    for entry in shared.registry.all() {
        let chosen = id.is_none_or(|id| entry.id == id)
            && addr.as_ref().is_none_or(|a| entry.addr.to_string() == *a)
            && laddr.as_ref().is_none_or(|a| entry.local.to_string() == *a)
            && user.as_ref().is_none_or(|u| entry.user().as_ref() == Some(u))
            && !(skip_me && entry.id == me);
        if chosen {
            entry.kill();
            killed += 1;
        }
    }
    Frame::Integer(killed)
}

fn client(shared: &Arc<Shared>, client: &mut Client, args: &[Bytes]) -> Frame {
    let sub = args[1].to_ascii_lowercase();
    let wrong_args = || {
        Frame::error(format!(
            "ERR wrong number of arguments for 'client|{}' command",
            String::from_utf8_lossy(&sub)
        ))
    };
    match (sub.as_slice(), args.len()) {
        (b"id", 2) => Frame::Integer(client.id() as i64),
        (b"getname", 2) => client.entry.name().map_or(Frame::Null, Frame::Bulk),
        (b"setname", 3) if !valid_name(&args[2]) => {
            Frame::error("ERR Client names cannot contain spaces, newlines or special characters.")
        }
        (b"setname", 3) => {
            client.entry.set_name((!args[2].is_empty()).then(|| args[2].clone()));
            Frame::ok()
        }
        (b"info", 2) => text(format!("{}\n", client.entry.describe())),
        (b"list", 2) => text(
            shared
                .registry
                .all()
                .iter()
                .map(|e| format!("{}\n", e.describe()))
                .collect(),
        ),
        (b"kill", n) if n >= 3 => kill(shared, client.id(), args),
        (b"no-evict", 3) => match args[2].to_ascii_lowercase().as_slice() {
            b"on" | b"off" => Frame::ok(),
            _ => syntax_error(),
        },
        (b"reply", 3) => match args[2].to_ascii_lowercase().as_slice() {
            b"on" => {
                client.reply = ReplyMode::On;
                Frame::ok()
            }
            b"off" => {
                client.reply = ReplyMode::Off;
                Frame::ok()
            }
            b"skip" => {
                client.reply = ReplyMode::Skip;
                Frame::ok()
            }
            _ => syntax_error(),
        },
        (b"id" | b"getname" | b"setname" | b"info" | b"list" | b"kill" | b"no-evict" | b"reply", _) => wrong_args(),
        _ => Frame::error(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

/// `CLIENT`.
pub static SPEC: Spec = Spec {
    name: "client",
    arity: -2,
    flags: &["noscript", "loading", "stale"],
    first_key: 0,
    last_key: 0,
    step: 0,
    // The categories of its most dangerous subcommands (`KILL`, `LIST`).
    categories: &["@admin", "@slow", "@dangerous", "@connection"],
    run: |shared, me: &mut Client, args| Outcome::Reply(client(shared, me, &args)),
};

//! `ACL SETUSER | GETUSER | DELUSER | LIST | USERS | WHOAMI | CAT | GENPASS
//! | SAVE | LOAD | HELP`, and the checks every command passes: who the
//! client is (`-NOAUTH`) and what that user may run and touch (`-NOPERM`).
//!
//! Changes to users are written to the Raft log of [`ACL_SHARD`] (see
//! [`crate::acl`]), so they reach every node and survive restarts; reads
//! (`GETUSER`, `LIST`, the per-command checks) use this node's replica.
//! A container command (`CLIENT`, `CONFIG`, `ACL`…) is checked against the
//! categories of its most dangerous subcommand; `+client|id` allows one
//! subcommand by name.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::RngCore;

use super::{BY_NAME, Client, Outcome, Spec, TABLE, error_frame, key_positions, reply_frame};
use crate::acl::{ACL_SHARD, AclChange, CATEGORIES, DEFAULT_USER, Rule, User};
use crate::keyspace::{Write, WriteOp};
use crate::resp::frame::Frame;
use crate::resp::server::Shared;
use crate::shard::Request;

/// Commands whose first argument is a subcommand, named `name|sub` in
/// rules and errors.
const CONTAINERS: &[&str] = &["acl", "client", "cluster", "command", "config"];

/// The user a new (or `RESET`) connection is: `default` when it needs no
/// password, else nobody until `AUTH`.
pub fn initial_user(shared: &Shared) -> Option<String> {
    let default = shared.node.user(DEFAULT_USER)?;
    (default.enabled && default.nopass).then(|| DEFAULT_USER.to_string())
}

/// Makes the client `name` if `password` is right for it.
pub fn log_in(shared: &Shared, client: &mut Client, name: &[u8], password: &[u8]) -> Result<(), Frame> {
    let name = String::from_utf8_lossy(name).into_owned();
    match shared.node.user(&name) {
        Some(user) if user.accepts(password) => {
            client.set_user(Some(name));
            Ok(())
        }
        _ => Err(Frame::error(
            "WRONGPASS invalid username-password pair or user is disabled.",
        )),
    }
}

/// Whether the client may run this command on these arguments: the error
/// to answer if not. A client whose user was deleted since it logged in is
/// also disconnected after the answer (Redis disconnects those).
pub fn check(shared: &Shared, client: &mut Client, spec: &Spec, args: &[Bytes]) -> Result<(), Frame> {
    if spec.flags.contains(&"no-auth") {
        return Ok(());
    }
    let Some(name) = client.user.as_deref() else {
        return Err(Frame::error("NOAUTH Authentication required."));
    };
    let Some(user) = shared.node.user(name) else {
        client.entry.kill();
        return Err(Frame::error("ERR this connection's user was deleted"));
    };
    let subcommand = CONTAINERS.contains(&spec.name).then(|| args.get(1)).flatten();
    if !user.may_run(spec.name, subcommand.map(Bytes::as_ref), spec.categories) {
        let full = match subcommand {
            Some(sub) => format!("{}|{}", spec.name, String::from_utf8_lossy(sub).to_ascii_lowercase()),
            None => spec.name.to_string(),
        };
        return Err(Frame::error(format!(
            "NOPERM this user has no permissions to run the '{full}' command"
        )));
    }
    if !key_positions(spec, args.len()).all(|i| user.may_access(&args[i])) {
        return Err(Frame::error(
            "NOPERM this user has no permissions to access one of the keys used as arguments",
        ));
    }
    Ok(())
}

/// `ACL`.
pub static SPEC: Spec = Spec {
    name: "acl",
    arity: -2,
    flags: &["noscript", "loading", "stale"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@admin", "@slow", "@dangerous"],
    run: |shared, client: &mut Client, args| acl(shared, client, args),
};

fn acl(shared: &Arc<Shared>, client: &mut Client, args: Vec<Bytes>) -> Outcome {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let argc = args.len();
    let arity_ok = match sub.as_str() {
        "setuser" | "deluser" => argc >= 3,
        "getuser" => argc == 3,
        "list" | "users" | "whoami" | "save" | "load" | "help" => argc == 2,
        "cat" | "genpass" => argc <= 3,
        _ => {
            return Outcome::Reply(Frame::error(format!(
                "ERR unknown subcommand '{}'. Try ACL HELP.",
                String::from_utf8_lossy(&args[1])
            )));
        }
    };
    if !arity_ok {
        return Outcome::Reply(Frame::error(match sub.as_str() {
            "cat" | "genpass" => format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
                String::from_utf8_lossy(&args[1])
            ),
            _ => format!("ERR wrong number of arguments for 'acl|{sub}' command"),
        }));
    }
    let node = &shared.node;
    Outcome::Reply(match sub.as_str() {
        "setuser" => return set_user(shared, &args),
        "deluser" => return del_user(shared, &args),
        "getuser" => node
            .user(&String::from_utf8_lossy(&args[2]))
            .map_or(Frame::Null, |user| describe(&user)),
        "list" => Frame::Array(
            node.users()
                .into_iter()
                .map(|(name, user)| Frame::bulk(format!("user {name} {}", user.describe())))
                .collect(),
        ),
        "users" => Frame::Array(node.users().into_iter().map(|(name, _)| Frame::bulk(name)).collect()),
        "whoami" => client.user.clone().map_or(Frame::Null, Frame::bulk),
        "cat" => match args.get(2) {
            None => Frame::Array(CATEGORIES.iter().map(|c| Frame::bulk(*c)).collect()),
            Some(category) => category_commands(&String::from_utf8_lossy(category)),
        },
        "genpass" => generate_password(args.get(2)),
        "save" | "load" => Frame::error(
            "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the \
             ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file \
             set) in order to store users in the Redis configuration.",
        ),
        _ => Frame::Array(HELP.iter().map(|line| Frame::Simple((*line).into())).collect()),
    })
}

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bit-count>]",
    "    Generate a secure 256-bit user password. The optional `bit-count` argument",
    "    can be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Print this help.",
];

/// `ACL GETUSER`'s reply.
fn describe(user: &User) -> Frame {
    let field = |name: &str, value: Frame| (Frame::bulk(name.to_string()), value);
    Frame::Map(vec![
        field(
            "flags",
            Frame::Array(user.flags().into_iter().map(Frame::bulk).collect()),
        ),
        field(
            "passwords",
            Frame::Array(user.passwords.iter().map(|p| Frame::bulk(p.clone())).collect()),
        ),
        field("commands", Frame::bulk(user.command_rules())),
        field("keys", Frame::bulk(user.key_rules())),
        field("channels", Frame::bulk(user.channel_rules())),
        field("selectors", Frame::Array(Vec::new())),
    ])
}

/// Whether a rule names a command (or `command|subcommand`) Cairn has.
fn known_command(name: &str) -> bool {
    let base = name.split_once('|').map_or(name, |(base, _)| base);
    BY_NAME.contains_key(base)
}

fn set_user(shared: &Arc<Shared>, args: &[Bytes]) -> Outcome {
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    if name.bytes().any(|b| b == b' ' || b == 0) {
        return Outcome::Reply(Frame::error("ERR Usernames can't contain spaces or null characters"));
    }
    let mut rules = Vec::with_capacity(args.len() - 3);
    for arg in &args[3..] {
        let text = String::from_utf8_lossy(arg);
        match Rule::parse(&text, known_command) {
            Ok(rule) => rules.push(rule),
            Err(reason) => {
                return Outcome::Reply(Frame::error(format!(
                    "ERR Error in ACL SETUSER modifier '{text}': {reason}"
                )));
            }
        }
    }
    let base = if name == DEFAULT_USER {
        User::default_user(shared.node.config().auth.requirepass.as_deref())
    } else {
        User::default()
    };
    propose(shared, AclChange::SetUser { name, rules, base })
}

fn del_user(shared: &Arc<Shared>, args: &[Bytes]) -> Outcome {
    let names: Vec<String> = args[2..]
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    if names.iter().any(|n| n == DEFAULT_USER) {
        return Outcome::Reply(Frame::error("ERR The 'default' user cannot be removed"));
    }
    propose(shared, AclChange::DelUser { names })
}

/// How long a change waits for this node's replica to apply it.
const LOCAL_APPLY_WAIT: Duration = Duration::from_secs(5);

/// Writes a change to the users through [`ACL_SHARD`]'s log, and answers
/// once this node's replica has it too (or, on a node without one, once it
/// fetched the table again), so an `AUTH` right after, on the same node,
/// sees the change.
fn propose(shared: &Arc<Shared>, change: AclChange) -> Outcome {
    let shared = shared.clone();
    Outcome::Later(Box::pin(async move {
        let request = Request::Write(Write::new(WriteOp::Acl(Box::new(change))));
        match shared.execute(ACL_SHARD, request).await {
            Ok(answer) => {
                match shared.node.shard(ACL_SHARD) {
                    Some(shard) => {
                        shard.wait_applied(answer.index, LOCAL_APPLY_WAIT).await;
                    }
                    None => {
                        // Best effort: the background refresh retries.
                        let _ = shared.node.fetch_users().await;
                    }
                }
                reply_frame(answer.reply, |reply| match reply {
                    crate::keyspace::Reply::Int(n) => Frame::Integer(n),
                    _ => Frame::ok(),
                })
            }
            Err(err) => error_frame(err),
        }
    }))
}

/// `ACL CAT category`: Cairn's commands in it.
fn category_commands(category: &str) -> Frame {
    let lower = category.to_ascii_lowercase();
    if !CATEGORIES.contains(&lower.as_str()) {
        return Frame::error(format!("ERR Unknown category '{category}'"));
    }
    let tag = format!("@{lower}");
    Frame::Array(
        TABLE
            .iter()
            .filter(|spec| spec.categories.contains(&tag.as_str()))
            .map(|spec| Frame::bulk(spec.name))
            .collect(),
    )
}

/// `ACL GENPASS [bits]`: random hex, 256 bits unless told.
fn generate_password(bits: Option<&Bytes>) -> Frame {
    let bits = match bits.map(|b| String::from_utf8_lossy(b).parse::<usize>()) {
        None => 256,
        Some(Ok(bits)) if (1..=4096).contains(&bits) => bits,
        Some(_) => {
            return Frame::error(
                "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up \
                 to 4096",
            );
        }
    };
    let mut bytes = vec![0u8; bits.div_ceil(8)];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Frame::bulk(hex[..bits.div_ceil(4)].to_string())
}

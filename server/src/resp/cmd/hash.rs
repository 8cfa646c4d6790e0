//! The hash commands: `HSET HSETNX HMSET HGET HMGET HDEL HEXISTS HLEN
//! HSTRLEN HKEYS HVALS HGETALL HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN`, answering as
//! Redis 7 does (a hash emptied by `HDEL` disappears; any of them on a key
//! holding a string gets `-WRONGTYPE`).
//!
//! `HSCAN` returns the whole hash in one step (cursor `0`), as Redis does
//! for the small hashes it keeps compact.

use std::sync::Arc;

use bytes::Bytes;

use super::{Client, Outcome, Spec, bulk_or_null, integer, not_float, on_key, parse_int, syntax_error, write};
use crate::keyspace::float::LongDouble;
use crate::keyspace::{HashRead, HashWrite, Read, Reply, WriteOp};
use crate::resp::frame::Frame;
use crate::resp::server::Shared;
use crate::shard::Request;

fn read(shared: &Arc<Shared>, read: HashRead, reply: fn(Reply) -> Frame) -> Outcome {
    let key = read.key().clone();
    on_key(shared, &key, Request::Read(Read::Hash(read)), reply)
}

fn change(shared: &Arc<Shared>, change: HashWrite, reply: fn(Reply) -> Frame) -> Outcome {
    let key = change.key().clone();
    on_key(shared, &key, write(WriteOp::Hash(change)), reply)
}

fn bulks(reply: Reply) -> Frame {
    match reply {
        Reply::Keys(items) => Frame::Array(items.into_iter().map(Frame::Bulk).collect()),
        Reply::Values(items) => Frame::Array(items.into_iter().map(|v| v.map_or(Frame::Null, Frame::Bulk)).collect()),
        other => Frame::error(format!("ERR unexpected reply {other:?}")),
    }
}

fn map(reply: Reply) -> Frame {
    match reply {
        Reply::Pairs(pairs) => Frame::Map(
            pairs
                .into_iter()
                .map(|(f, v)| (Frame::Bulk(f), Frame::Bulk(v)))
                .collect(),
        ),
        other => Frame::error(format!("ERR unexpected reply {other:?}")),
    }
}

/// Field-value arguments from `args[2..]`, or Redis's arity error.
fn pairs(name: &str, args: &[Bytes]) -> Result<Vec<(Bytes, Bytes)>, Frame> {
    if args.len() < 4 || !args.len().is_multiple_of(2) {
        return Err(Frame::error(format!(
            "ERR wrong number of arguments for '{name}' command"
        )));
    }
    Ok(args[2..].chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect())
}

fn hset(shared: &Arc<Shared>, args: Vec<Bytes>, name: &str, reply: fn(Reply) -> Frame) -> Outcome {
    match pairs(name, &args) {
        Ok(pairs) => change(
            shared,
            HashWrite::Set {
                key: args[1].clone(),
                pairs,
                if_absent: false,
            },
            reply,
        ),
        Err(frame) => Outcome::Reply(frame),
    }
}

/// `HSET key field value [field value ...]`: how many fields are new.
pub static HSET: Spec = Spec {
    name: "hset",
    arity: -4,
    flags: &["write", "denyoom", "fast"],
    first_key: 1,
    last_key: 1,
    step: 1,
    categories: &["@write", "@hash", "@fast"],
    run: |shared, _: &mut Client, args| hset(shared, args, "hset", integer),
};

/// `HMSET key field value [field value ...]`: `OK`.
pub static HMSET: Spec = Spec {
    name: "hmset",
    run: |shared, _: &mut Client, args| hset(shared, args, "hmset", |_| Frame::ok()),
    ..HSET
};

/// `HSETNX key field value`: 1 if set, 0 if the field existed.
pub static HSETNX: Spec = Spec {
    name: "hsetnx",
    arity: 4,
    run: |shared, _: &mut Client, args| {
        let set = HashWrite::Set {
            key: args[1].clone(),
            pairs: vec![(args[2].clone(), args[3].clone())],
            if_absent: true,
        };
        change(shared, set, integer)
    },
    ..HSET
};

/// `HDEL key field [field ...]`: how many fields existed.
pub static HDEL: Spec = Spec {
    name: "hdel",
    arity: -3,
    flags: &["write", "fast"],
    categories: &["@write", "@hash", "@fast"],
    run: |shared, _: &mut Client, args| {
        let del = HashWrite::Del {
            key: args[1].clone(),
            fields: args[2..].to_vec(),
        };
        change(shared, del, integer)
    },
    ..HSET
};

/// `HINCRBY key field increment`.
pub static HINCRBY: Spec = Spec {
    name: "hincrby",
    arity: 4,
    run: |shared, _: &mut Client, args| match parse_int(&args[3]) {
        Ok(delta) => {
            let incr = HashWrite::IncrBy {
                key: args[1].clone(),
                field: args[2].clone(),
                delta,
            };
            change(shared, incr, integer)
        }
        Err(frame) => Outcome::Reply(frame),
    },
    ..HSET
};

/// `HINCRBYFLOAT key field increment`: replies the new value as Redis
/// prints it. The increment is checked first, as Redis does.
pub static HINCRBYFLOAT: Spec = Spec {
    name: "hincrbyfloat",
    arity: 4,
    run: |shared, _: &mut Client, args| match LongDouble::parse(&args[3]) {
        None => Outcome::Reply(not_float()),
        Some(increment) if !increment.is_finite() => Outcome::Reply(Frame::error("ERR value is NaN or Infinity")),
        Some(_) => {
            let incr = HashWrite::IncrByFloat {
                key: args[1].clone(),
                field: args[2].clone(),
                increment: args[3].clone(),
            };
            change(shared, incr, bulk_or_null)
        }
    },
    ..HSET
};

/// `HGET key field`.
pub static HGET: Spec = Spec {
    name: "hget",
    arity: 3,
    flags: &["readonly", "fast"],
    first_key: 1,
    last_key: 1,
    step: 1,
    categories: &["@read", "@hash", "@fast"],
    run: |shared, _: &mut Client, args| {
        let get = HashRead::Get {
            key: args[1].clone(),
            field: args[2].clone(),
        };
        read(shared, get, bulk_or_null)
    },
};

/// `HMGET key field [field ...]`.
pub static HMGET: Spec = Spec {
    name: "hmget",
    arity: -3,
    run: |shared, _: &mut Client, args| {
        let get = HashRead::MGet {
            key: args[1].clone(),
            fields: args[2..].to_vec(),
        };
        read(shared, get, bulks)
    },
    ..HGET
};

/// `HEXISTS key field`.
pub static HEXISTS: Spec = Spec {
    name: "hexists",
    run: |shared, _: &mut Client, args| {
        let exists = HashRead::Exists {
            key: args[1].clone(),
            field: args[2].clone(),
        };
        read(shared, exists, integer)
    },
    ..HGET
};

/// `HSTRLEN key field`.
pub static HSTRLEN: Spec = Spec {
    name: "hstrlen",
    run: |shared, _: &mut Client, args| {
        let strlen = HashRead::Strlen {
            key: args[1].clone(),
            field: args[2].clone(),
        };
        read(shared, strlen, integer)
    },
    ..HGET
};

/// `HLEN key`.
pub static HLEN: Spec = Spec {
    name: "hlen",
    arity: 2,
    run: |shared, _: &mut Client, args| read(shared, HashRead::Len { key: args[1].clone() }, integer),
    ..HGET
};

/// `HKEYS key`.
pub static HKEYS: Spec = Spec {
    name: "hkeys",
    arity: 2,
    flags: &["readonly"],
    categories: &["@read", "@hash", "@slow"],
    run: |shared, _: &mut Client, args| read(shared, HashRead::Keys { key: args[1].clone() }, bulks),
    ..HGET
};

/// `HVALS key`.
pub static HVALS: Spec = Spec {
    name: "hvals",
    run: |shared, _: &mut Client, args| read(shared, HashRead::Vals { key: args[1].clone() }, bulks),
    ..HKEYS
};

/// `HGETALL key`: a map in RESP3, field-value pairs in RESP2.
pub static HGETALL: Spec = Spec {
    name: "hgetall",
    run: |shared, _: &mut Client, args| {
        let all = HashRead::GetAll {
            key: args[1].clone(),
            pattern: None,
        };
        read(shared, all, map)
    },
    ..HKEYS
};

/// `HRANDFIELD key [count [WITHVALUES]]`.
pub static HRANDFIELD: Spec = Spec {
    name: "hrandfield",
    arity: -2,
    run: |shared, client: &mut Client, args| {
        let (count, with_values) = match args.len() {
            2 => (None, false),
            3 | 4 => match parse_int(&args[2]) {
                Ok(_) if args.len() == 4 && !args[3].eq_ignore_ascii_case(b"WITHVALUES") => {
                    return Outcome::Reply(syntax_error());
                }
                Ok(count) => (Some(count), args.len() == 4),
                Err(frame) => return Outcome::Reply(frame),
            },
            _ => return Outcome::Reply(syntax_error()),
        };
        let random = HashRead::RandField {
            key: args[1].clone(),
            count: count.unwrap_or(1),
            seed: rand::random(),
        };
        let resp3 = client.protocol == crate::resp::frame::Protocol::Resp3;
        let reply: fn(Reply) -> Frame = match (count, with_values, resp3) {
            (None, _, _) => |reply| match reply {
                Reply::Pairs(pairs) => pairs.into_iter().next().map_or(Frame::Null, |(f, _)| Frame::Bulk(f)),
                other => Frame::error(format!("ERR unexpected reply {other:?}")),
            },
            (Some(_), false, _) => |reply| match reply {
                Reply::Pairs(pairs) => Frame::Array(pairs.into_iter().map(|(f, _)| Frame::Bulk(f)).collect()),
                other => Frame::error(format!("ERR unexpected reply {other:?}")),
            },
            (Some(_), true, true) => |reply| match reply {
                Reply::Pairs(pairs) => Frame::Array(
                    pairs
                        .into_iter()
                        .map(|(f, v)| Frame::Array(vec![Frame::Bulk(f), Frame::Bulk(v)]))
                        .collect(),
                ),
                other => Frame::error(format!("ERR unexpected reply {other:?}")),
            },
            (Some(_), true, false) => |reply| match reply {
                Reply::Pairs(pairs) => Frame::Array(
                    pairs
                        .into_iter()
                        .flat_map(|(f, v)| [Frame::Bulk(f), Frame::Bulk(v)])
                        .collect(),
                ),
                other => Frame::error(format!("ERR unexpected reply {other:?}")),
            },
        };
        read(shared, random, reply)
    },
    ..HKEYS
};

/// `HSCAN key cursor [MATCH pattern] [COUNT count]`.
pub static HSCAN: Spec = Spec {
    name: "hscan",
    arity: -3,
    run: |shared, _: &mut Client, args| {
        if std::str::from_utf8(&args[2])
            .ok()
            .and_then(|c| c.parse::<u64>().ok())
            .is_none()
        {
            return Outcome::Reply(Frame::error("ERR invalid cursor"));
        }
        let mut pattern = None;
        for pair in args[3..].chunks(2) {
            match pair {
                [option, value] if option.eq_ignore_ascii_case(b"MATCH") => pattern = Some(value.clone()),
                [option, value] if option.eq_ignore_ascii_case(b"COUNT") => match parse_int(value) {
                    Ok(n) if n >= 1 => {}
                    Ok(_) => return Outcome::Reply(syntax_error()),
                    Err(frame) => return Outcome::Reply(frame),
                },
                _ => return Outcome::Reply(syntax_error()),
            }
        }
        let all = HashRead::GetAll {
            key: args[1].clone(),
            pattern,
        };
        read(shared, all, |reply| match reply {
            Reply::Pairs(pairs) => Frame::Array(vec![
                Frame::bulk("0"),
                Frame::Array(
                    pairs
                        .into_iter()
                        .flat_map(|(f, v)| [Frame::Bulk(f), Frame::Bulk(v)])
                        .collect(),
                ),
            ]),
            other => Frame::error(format!("ERR unexpected reply {other:?}")),
        })
    },
    ..HKEYS
};

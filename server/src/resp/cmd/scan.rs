//! `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`: walks the
//! keyspace a step at a time, shard after shard.
//!
//! The cursor holds the shard in its high bits and a scan position within
//! the shard below them ([`SCAN_POSITION_BITS`]). Within a shard keys are
//! visited in order of a hash of the key, which every replica computes
//! alike, so a scan resumed after a leader change continues where it was:
//! every key present for the whole scan is returned at least once, as Redis
//! promises. Each step costs a pass over one shard's keys.

use bytes::Bytes;

use super::{Client, Outcome, Spec, error_frame, kv_error, parse_int, syntax_error};
use crate::keyspace::{Read, Reply, SCAN_POSITION_BITS};
use crate::resp::frame::Frame;
use crate::shard::Request;

/// Parsed options.
struct Options {
    shard: u64,
    from: u64,
    count: usize,
    pattern: Option<Bytes>,
    type_name: Option<String>,
}

fn parse(args: &[Bytes]) -> Result<Options, Frame> {
    let cursor: u64 = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| Frame::error("ERR invalid cursor"))?;
    let mut options = Options {
        shard: cursor >> SCAN_POSITION_BITS,
        from: cursor & ((1 << SCAN_POSITION_BITS) - 1),
        count: 10,
        pattern: None,
        type_name: None,
    };
    for pair in args[2..].chunks(2) {
        let [option, value] = pair else {
            return Err(syntax_error());
        };
        match option.to_ascii_lowercase().as_slice() {
            b"match" => options.pattern = Some(value.clone()),
            b"count" => match parse_int(value)? {
                n if n < 1 => return Err(syntax_error()),
                n => options.count = n as usize,
            },
            b"type" => options.type_name = Some(String::from_utf8_lossy(value).to_ascii_lowercase()),
            _ => return Err(syntax_error()),
        }
    }
    Ok(options)
}

/// `SCAN`.
pub static SPEC: Spec = Spec {
    name: "scan",
    arity: -2,
    flags: &["readonly"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@keyspace", "@read", "@slow"],
    run: |shared, _: &mut Client, args| {
        let options = match parse(&args) {
            Ok(options) => options,
            Err(frame) => return Outcome::Reply(frame),
        };
        let shared = shared.clone();
        Outcome::Later(Box::pin(async move {
            let shards = u64::from(shared.node.slots().shards());
            if options.shard >= shards {
                return reply(0, Vec::new());
            }
            let read = Read::Scan {
                from: options.from,
                count: options.count,
                pattern: options.pattern,
                type_name: options.type_name,
            };
            let (keys, next) = match shared.execute(options.shard, Request::Read(read)).await {
                Ok(answer) => match answer.reply {
                    Reply::Scan { keys, next } => (keys, next),
                    Reply::Err(err) => return kv_error(err),
                    other => return Frame::error(format!("ERR unexpected reply {other:?}")),
                },
                Err(err) => return error_frame(err),
            };
            let cursor = match next {
                Some(position) => (options.shard << SCAN_POSITION_BITS) | position,
                None if options.shard + 1 < shards => (options.shard + 1) << SCAN_POSITION_BITS,
                None => 0,
            };
            reply(cursor, keys)
        }))
    },
};

fn reply(cursor: u64, keys: Vec<Bytes>) -> Frame {
    Frame::Array(vec![
        Frame::bulk(cursor.to_string()),
        Frame::Array(keys.into_iter().map(Frame::Bulk).collect()),
    ])
}

//! `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ts-ms|KEEPTTL]`.
//!
//! Options are parsed with Redis 7's rules (each at most once, `NX`/`XX`
//! and the expiry forms exclusive). A relative expiry becomes an absolute
//! deadline here, before the write is proposed, so every replica applies the
//! same deadline.

use bytes::Bytes;

use super::{Client, Outcome, Spec, on_key, parse_int, syntax_error, write};
use crate::keyspace::{Reply, SetCondition, WriteOp};
use crate::resp::frame::Frame;
use crate::shard::now_ms;

/// `SET`.
pub static SPEC: Spec = Spec {
    name: "set",
    arity: -3,
    flags: &["write", "denyoom"],
    first_key: 1,
    last_key: 1,
    step: 1,
    categories: &["@write", "@string", "@slow"],
    run: |shared, _: &mut Client, args| match parse(&args, now_ms()) {
        Ok(op) => {
            let get = matches!(op, WriteOp::Set { get: true, .. });
            let key = args[1].clone();
            let reply = if get { reply_get } else { reply_set };
            on_key(shared, &key, write(op), reply)
        }
        Err(frame) => Outcome::Reply(frame),
    },
};

fn reply_set(reply: Reply) -> Frame {
    match reply {
        Reply::Ok => Frame::ok(),
        _ => Frame::Null,
    }
}

fn reply_get(reply: Reply) -> Frame {
    match reply {
        Reply::Value(v) => Frame::Bulk(v),
        _ => Frame::Null,
    }
}

/// Parses `SET`'s arguments into a write, as of `now` (ms since the epoch).
pub fn parse(args: &[Bytes], now: u64) -> Result<WriteOp, Frame> {
    let mut condition = SetCondition::Always;
    let mut get = false;
    let mut keep_ttl = false;
    let mut expire_at_ms = None;
    let mut i = 3;
    while i < args.len() {
        let option = args[i].to_ascii_uppercase();
        let next = args.get(i + 1);
        match (option.as_slice(), next) {
            (b"NX", _) if condition != SetCondition::IfPresent => condition = SetCondition::IfAbsent,
            (b"XX", _) if condition != SetCondition::IfAbsent => condition = SetCondition::IfPresent,
            (b"GET", _) => get = true,
            (b"KEEPTTL", _) if expire_at_ms.is_none() => keep_ttl = true,
            (unit @ (b"EX" | b"PX" | b"EXAT" | b"PXAT"), Some(value)) if expire_at_ms.is_none() && !keep_ttl => {
                expire_at_ms = Some(deadline(unit, value, now)?);
                i += 1;
            }
            _ => return Err(syntax_error()),
        }
        i += 1;
    }
    Ok(WriteOp::Set {
        key: args[1].clone(),
        value: args[2].clone(),
        expire_at_ms,
        condition,
        keep_ttl,
        get,
    })
}

fn deadline(unit: &[u8], value: &[u8], now: u64) -> Result<u64, Frame> {
    let invalid = || Frame::error("ERR invalid expire time in 'set' command");
    let n = parse_int(value)?;
    if n <= 0 {
        return Err(invalid());
    }
    let n = n as u64;
    let ms = match unit {
        b"EX" | b"EXAT" => n.checked_mul(1000).ok_or_else(invalid)?,
        _ => n,
    };
    let at = match unit {
        b"EX" | b"PX" => now.checked_add(ms).ok_or_else(invalid)?,
        _ => ms,
    };
    if at > i64::MAX as u64 {
        return Err(invalid());
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<Bytes> {
        text.split(' ').map(|s| Bytes::from(s.to_string())).collect()
    }

    fn deadline_of(op: WriteOp) -> Option<u64> {
        match op {
            WriteOp::Set { expire_at_ms, .. } => expire_at_ms,
            _ => unreachable!(),
        }
    }

    #[test]
    fn expiry_forms_become_absolute_deadlines() {
        assert_eq!(deadline_of(parse(&args("SET k v EX 10"), 1000).unwrap()), Some(11_000));
        assert_eq!(deadline_of(parse(&args("SET k v px 10"), 1000).unwrap()), Some(1010));
        assert_eq!(deadline_of(parse(&args("SET k v EXAT 5"), 1000).unwrap()), Some(5000));
        assert_eq!(deadline_of(parse(&args("SET k v PXAT 5"), 1000).unwrap()), Some(5));
        assert_eq!(deadline_of(parse(&args("SET k v"), 1000).unwrap()), None);
    }

    #[test]
    fn bad_options_get_redis_errors() {
        let err = |text| parse(&args(text), 0).unwrap_err();
        assert_eq!(err("SET k v NX XX"), syntax_error());
        assert_eq!(err("SET k v EX 1 PX 1"), syntax_error());
        assert_eq!(err("SET k v KEEPTTL EX 1"), syntax_error());
        assert_eq!(err("SET k v EX"), syntax_error());
        assert_eq!(err("SET k v BOGUS"), syntax_error());
        assert_eq!(
            err("SET k v EX 0"),
            Frame::error("ERR invalid expire time in 'set' command")
        );
        assert_eq!(
            err("SET k v EX -5"),
            Frame::error("ERR invalid expire time in 'set' command")
        );
        assert_eq!(
            err("SET k v EX abc"),
            Frame::error("ERR value is not an integer or out of range")
        );
        assert_eq!(
            err("SET k v EX 9223372036854775807"),
            Frame::error("ERR invalid expire time in 'set' command")
        );
    }

    #[test]
    fn nx_with_get_is_allowed() {
        let op = parse(&args("SET k v NX GET"), 0).unwrap();
        assert!(matches!(
            op,
            WriteOp::Set {
                condition: SetCondition::IfAbsent,
                get: true,
                ..
            }
        ));
    }
}

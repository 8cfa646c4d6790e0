//! `GETDEL key` and `GETEX key [EX s|PX ms|EXAT ts|PXAT ts-ms|PERSIST]`:
//! reply a string's value and delete the key, or change its deadline.

use bytes::Bytes;

use super::{Client, Outcome, Spec, bulk_or_null, on_key, parse_int, syntax_error, write};
use crate::keyspace::WriteOp;
use crate::resp::frame::Frame;
use crate::shard::{Request, now_ms};

/// `GETDEL`.
pub static GETDEL: Spec = Spec {
    name: "getdel",
    arity: 2,
    flags: &["write", "fast"],
    first_key: 1,
    last_key: 1,
    step: 1,
    categories: &["@write", "@string", "@fast"],
    run: |shared, _: &mut Client, mut args| {
        let key = args.swap_remove(1);
        on_key(shared, &key.clone(), write(WriteOp::GetDel { key }), bulk_or_null)
    },
};

/// What `GETEX`'s options ask for: nothing (a plain read), or a new
/// deadline (`None`: persist).
fn getex_expiry(args: &[Bytes], now: u64) -> Result<Option<Option<u64>>, Frame> {
    let invalid = || Frame::error("ERR invalid expire time in 'getex' command");
    match args {
        [] => Ok(None),
        [option] if option.eq_ignore_ascii_case(b"PERSIST") => Ok(Some(None)),
        [unit, value] => {
            let unit = unit.to_ascii_uppercase();
            if !matches!(unit.as_slice(), b"EX" | b"PX" | b"EXAT" | b"PXAT") {
                return Err(syntax_error());
            }
            let n = parse_int(value)?;
            if n <= 0 {
                return Err(invalid());
            }
            let ms = match unit.as_slice() {
                b"EX" | b"EXAT" => n.checked_mul(1000).ok_or_else(invalid)?,
                _ => n,
            };
            let at = match unit.as_slice() {
                b"EX" | b"PX" => ms.checked_add(now as i64).ok_or_else(invalid)?,
                _ => ms,
            };
            Ok(Some(Some(at as u64)))
        }
        _ => Err(syntax_error()),
    }
}

/// `GETEX`.
pub static GETEX: Spec = Spec {
    name: "getex",
    arity: -2,
    flags: &["write", "fast"],
    run: |shared, _: &mut Client, mut args| {
        let expiry = match getex_expiry(&args[2..], now_ms()) {
            Ok(expiry) => expiry,
            Err(frame) => return Outcome::Reply(frame),
        };
        let key = args.swap_remove(1);
        let request = match expiry {
            None => Request::Read(crate::keyspace::Read::Get { key: key.clone() }),
            Some(expire_at_ms) => write(WriteOp::GetEx {
                key: key.clone(),
                expire_at_ms,
            }),
        };
        on_key(shared, &key, request, bulk_or_null)
    },
    ..GETDEL
};

//! Reply values and their encoding in RESP2 and RESP3.
//!
//! Handlers build one [`Frame`] per reply; the connection encodes it in the
//! protocol the client chose with `HELLO`. RESP3-only types fall back the way
//! Redis falls back for RESP2 clients: maps and sets become flat arrays,
//! doubles become bulk strings, booleans become integers, verbatim strings
//! become bulk strings, and both nulls become `$-1` / `*-1`.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol version a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, every client's default.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

/// One reply value.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+text`.
    Simple(String),
    /// `-ERR text` (the text includes the error code).
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$len\r\nbytes`.
    Bulk(Bytes),
    /// The null bulk string (RESP3 `_`).
    Null,
    /// The null array (RESP3 `_`).
    NullArray,
    /// `*n` followed by the elements.
    Array(Vec<Frame>),
    /// RESP3 `%`: key/value pairs.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~`: an unordered collection.
    Set(Vec<Frame>),
    /// RESP3 `,`: a floating point number.
    Double(f64),
    /// RESP3 `#t` / `#f`.
    Boolean(bool),
    /// RESP3 `=`: text with a three-letter format (`txt`, `mkd`).
    Verbatim {
        /// The format.
        format: [u8; 3],
        /// The text.
        text: Bytes,
    },
    /// RESP3 `>`: an out-of-band message.
    Push(Vec<Frame>),
}

impl Frame {
    /// `+OK`.
    pub fn ok() -> Frame {
        Frame::Simple("OK".into())
    }

    /// An error reply; `message` starts with its code (`ERR`, `WRONGTYPE`…).
    pub fn error(message: impl Into<String>) -> Frame {
        Frame::Error(message.into())
    }

    /// A bulk string.
    pub fn bulk(data: impl Into<Bytes>) -> Frame {
        Frame::Bulk(data.into())
    }

    /// Appends the encoding of this frame in `protocol` to `out`.
    pub fn encode(&self, protocol: Protocol, out: &mut BytesMut) {
        let resp3 = protocol == Protocol::Resp3;
        match self {
            Frame::Simple(text) => line(out, b'+', &single_line(text)),
            Frame::Error(text) => line(out, b'-', &single_line(text)),
            Frame::Integer(n) => int_line(out, b':', *n),
            Frame::Bulk(data) => bulk(out, data),
            Frame::Null if resp3 => out.put_slice(b"_\r\n"),
            Frame::Null => out.put_slice(b"$-1\r\n"),
            Frame::NullArray if resp3 => out.put_slice(b"_\r\n"),
            Frame::NullArray => out.put_slice(b"*-1\r\n"),
            Frame::Array(items) => aggregate(out, b'*', items, protocol),
            Frame::Set(items) => aggregate(out, if resp3 { b'~' } else { b'*' }, items, protocol),
            Frame::Push(items) => aggregate(out, if resp3 { b'>' } else { b'*' }, items, protocol),
            Frame::Map(pairs) => {
                if resp3 {
                    int_line(out, b'%', pairs.len() as i64);
                } else {
                    int_line(out, b'*', 2 * pairs.len() as i64);
                }
                for (key, value) in pairs {
                    key.encode(protocol, out);
                    value.encode(protocol, out);
                }
            }
            Frame::Double(x) => {
                let text = format_double(*x);
                if resp3 {
                    line(out, b',', &text);
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Frame::Boolean(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::Boolean(b) => int_line(out, b':', i64::from(*b)),
            Frame::Verbatim { format, text } if resp3 => {
                int_line(out, b'=', text.len() as i64 + 4);
                out.put_slice(format);
                out.put_u8(b':');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
            Frame::Verbatim { text, .. } => bulk(out, text),
        }
    }
}

/// Simple strings and errors must not contain line breaks.
fn single_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(['\r', '\n']) {
        text.replace(['\r', '\n'], " ").into()
    } else {
        text.into()
    }
}

fn line(out: &mut BytesMut, kind: u8, text: &str) {
    out.reserve(text.len() + 3);
    out.put_u8(kind);
    out.put_slice(text.as_bytes());
    out.put_slice(b"\r\n");
}

fn int_line(out: &mut BytesMut, kind: u8, n: i64) {
    let mut buf = [0u8; 20];
    out.put_u8(kind);
    out.put_slice(format_int(n, &mut buf));
    out.put_slice(b"\r\n");
}

/// Formats `n` in decimal into `buf` without allocating.
fn format_int(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    out.reserve(data.len() + 16);
    int_line(out, b'$', data.len() as i64);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

fn aggregate(out: &mut BytesMut, kind: u8, items: &[Frame], protocol: Protocol) {
    int_line(out, kind, items.len() as i64);
    for item in items {
        item.encode(protocol, out);
    }
}

/// Redis's rendering of a double: `inf`/`-inf`/`nan`, integers without a
/// fraction, otherwise the shortest text that reads back to the same value.
fn format_double(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let mut text = String::new();
    if x.fract() == 0.0 && x.abs() < 1e17 {
        let _ = write!(text, "{}", x as i64);
    } else {
        let _ = write!(text, "{x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(frame: &Frame, protocol: Protocol) -> String {
        let mut out = BytesMut::new();
        frame.encode(protocol, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn scalars() {
        for p in [Protocol::Resp2, Protocol::Resp3] {
            assert_eq!(enc(&Frame::ok(), p), "+OK\r\n");
            assert_eq!(enc(&Frame::error("ERR bad\r\nthing"), p), "-ERR bad  thing\r\n");
            assert_eq!(enc(&Frame::Integer(-42), p), ":-42\r\n");
            assert_eq!(enc(&Frame::Integer(i64::MIN), p), ":-9223372036854775808\r\n");
            assert_eq!(enc(&Frame::Integer(0), p), ":0\r\n");
            assert_eq!(enc(&Frame::bulk("hi"), p), "$2\r\nhi\r\n");
            assert_eq!(enc(&Frame::bulk(""), p), "$0\r\n\r\n");
        }
    }

    #[test]
    fn resp3_types_fall_back_in_resp2() {
        let map = Frame::Map(vec![(Frame::bulk("a"), Frame::Integer(1))]);
        assert_eq!(enc(&map, Protocol::Resp3), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&map, Protocol::Resp2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&Frame::Null, Protocol::Resp3), "_\r\n");
        assert_eq!(enc(&Frame::Null, Protocol::Resp2), "$-1\r\n");
        assert_eq!(enc(&Frame::NullArray, Protocol::Resp2), "*-1\r\n");
        assert_eq!(enc(&Frame::NullArray, Protocol::Resp3), "_\r\n");
        assert_eq!(enc(&Frame::Boolean(true), Protocol::Resp3), "#t\r\n");
        assert_eq!(enc(&Frame::Boolean(false), Protocol::Resp2), ":0\r\n");
        assert_eq!(enc(&Frame::Double(1.5), Protocol::Resp3), ",1.5\r\n");
        assert_eq!(enc(&Frame::Double(3.0), Protocol::Resp2), "$1\r\n3\r\n");
        assert_eq!(enc(&Frame::Double(f64::INFINITY), Protocol::Resp3), ",inf\r\n");
        assert_eq!(
            enc(&Frame::Set(vec![Frame::Integer(1)]), Protocol::Resp3),
            "~1\r\n:1\r\n"
        );
        assert_eq!(
            enc(&Frame::Set(vec![Frame::Integer(1)]), Protocol::Resp2),
            "*1\r\n:1\r\n"
        );
        assert_eq!(enc(&Frame::Push(vec![]), Protocol::Resp3), ">0\r\n");
        let verbatim = Frame::Verbatim {
            format: *b"txt",
            text: Bytes::from("a:b"),
        };
        assert_eq!(enc(&verbatim, Protocol::Resp3), "=7\r\ntxt:a:b\r\n");
        assert_eq!(enc(&verbatim, Protocol::Resp2), "$3\r\na:b\r\n");
    }
}

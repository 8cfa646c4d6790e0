//! Redis-protocol requests as clients send them, parsed the way Redis 7's
//! `networking.c` does (`processMultibulkBuffer` / `processInlineBuffer`).
//!
//! A request is either a multibulk (`*<n>\r\n` then `n` bulk strings) or an
//! inline command (a line split on spaces, with `sdssplitargs` quoting).
//! Arguments are returned as zero-copy slices of the read buffer. Lengths
//! are checked against [`Limits`] before anything is allocated, and a header
//! line without its `\r\n` may not grow past 64 KiB, so a hostile client can
//! neither make the server allocate on its word nor buffer forever. Errors
//! carry Redis's exact wording; the connection answers
//! `-ERR Protocol error: …` and closes.

use bytes::{Bytes, BytesMut};

/// How large a request may be (Redis's defaults).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest bulk string (`proto-max-bulk-len`, 512 MiB).
    pub max_bulk_len: usize,
    /// Most arguments in one multibulk (1024 × 1024).
    pub max_multibulk_len: usize,
    /// Longest inline request (64 KiB).
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: 1024 * 1024,
            max_inline_len: 64 * 1024,
        }
    }
}

/// Longest `*<n>` or `$<n>` line Redis accepts before its `\r\n`.
const MAX_HEADER_LINE: usize = 64 * 1024;

/// Why a request could not be parsed (yet).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// More bytes are needed.
    #[error("incomplete")]
    Incomplete,
    /// The client broke the protocol; the text is Redis's.
    #[error("Protocol error: {0}")]
    Protocol(String),
}

fn protocol(text: &str) -> ParseError {
    ParseError::Protocol(text.into())
}

/// Parses one request from the front of `buf`.
///
/// On success the request's bytes are removed from `buf`; `Ok(None)` is an
/// empty request (a blank inline line, `*0`), which Redis ignores.
pub fn parse_request(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ParseError> {
    match buf.first() {
        None => Err(ParseError::Incomplete),
        Some(b'*') => parse_multibulk(buf, limits),
        Some(_) => parse_inline(buf, limits),
    }
}

/// Finds `\r\n` at or after `from`; the index of `\r`.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|i| from + i)
}

/// Parses a signed decimal as Redis's `string2ll` does: no sign but a
/// leading `-`, no leading zeros, no spaces, no `-0`.
fn parse_len(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let well_formed = !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits == b"0" || digits[0] != b'0')
        && text != b"-0";
    well_formed.then(|| std::str::from_utf8(text).ok()?.parse().ok())?
}

fn parse_multibulk(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ParseError> {
    let Some(end) = find_crlf(buf, 0) else {
        if buf.len() > MAX_HEADER_LINE {
            return Err(protocol("too big mbulk count string"));
        }
        return Err(ParseError::Incomplete);
    };
    let count = parse_len(&buf[1..end])
        .filter(|&n| n <= limits.max_multibulk_len as i64)
        .ok_or_else(|| protocol("invalid multibulk length"))?;
    if count <= 0 {
        let _ = buf.split_to(end + 2);
        return Ok(None);
    }
    // Find where every argument lies before taking anything from `buf`.
    let mut spans = Vec::with_capacity((count as usize).min(1024));
    let mut pos = end + 2;
    for _ in 0..count {
        match buf.get(pos) {
            None => return Err(ParseError::Incomplete),
            Some(b'$') => {}
            Some(&other) => return Err(ParseError::Protocol(format!("expected '$', got '{}'", other as char))),
        }
        let Some(line_end) = find_crlf(buf, pos) else {
            if buf.len() - pos > MAX_HEADER_LINE {
                return Err(protocol("too big bulk count string"));
            }
            return Err(ParseError::Incomplete);
        };
        let len = parse_len(&buf[pos + 1..line_end])
            .filter(|&n| n >= 0 && n <= limits.max_bulk_len as i64)
            .ok_or_else(|| protocol("invalid bulk length"))? as usize;
        let start = line_end + 2;
        if buf.len() < start + len + 2 {
            return Err(ParseError::Incomplete);
        }
        spans.push((start, len));
        pos = start + len + 2;
    }
    let request = buf.split_to(pos).freeze();
    Ok(Some(
        spans
            .into_iter()
            .map(|(start, len)| request.slice(start..start + len))
            .collect(),
    ))
}

fn parse_inline(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ParseError> {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > limits.max_inline_len {
            return Err(protocol("too big inline request"));
        }
        return Err(ParseError::Incomplete);
    };
    if newline > limits.max_inline_len {
        return Err(protocol("too big inline request"));
    }
    let line = buf.split_to(newline + 1).freeze();
    let mut text = line.slice(..newline);
    if text.last() == Some(&b'\r') {
        text = text.slice(..text.len() - 1);
    }
    let args = split_args(&text).ok_or_else(|| protocol("unbalanced quotes in request"))?;
    Ok((!args.is_empty()).then_some(args))
}

/// Splits an inline command like Redis's `sdssplitargs`: spaces separate
/// arguments; `"…"` understands `\n \r \t \b \a \\ \" \xHH`; `'…'` only
/// `\'`; a closing quote must be followed by a space or the end.
fn split_args(line: &Bytes) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == n {
            return Some(args);
        }
        match line[i] {
            b'"' => {
                let mut arg = Vec::new();
                i += 1;
                loop {
                    match line.get(i)? {
                        b'\\'
                            if i + 3 < n
                                && line[i + 1] == b'x'
                                && hex(line[i + 2]).is_some()
                                && hex(line[i + 3]).is_some() =>
                        {
                            arg.push(hex(line[i + 2])? * 16 + hex(line[i + 3])?);
                            i += 4;
                        }
                        b'\\' if i + 1 < n => {
                            arg.push(match line[i + 1] {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 0x08,
                                b'a' => 0x07,
                                other => other,
                            });
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            if i < n && !line[i].is_ascii_whitespace() {
                                return None;
                            }
                            break;
                        }
                        &c => {
                            arg.push(c);
                            i += 1;
                        }
                    }
                }
                args.push(Bytes::from(arg));
            }
            b'\'' => {
                let mut arg = Vec::new();
                i += 1;
                loop {
                    match line.get(i)? {
                        b'\\' if line.get(i + 1) == Some(&b'\'') => {
                            arg.push(b'\'');
                            i += 2;
                        }
                        b'\'' => {
                            i += 1;
                            if i < n && !line[i].is_ascii_whitespace() {
                                return None;
                            }
                            break;
                        }
                        &c => {
                            arg.push(c);
                            i += 1;
                        }
                    }
                }
                args.push(Bytes::from(arg));
            }
            _ => {
                let start = i;
                while i < n && !line[i].is_ascii_whitespace() {
                    i += 1;
                }
                // Unquoted arguments stay zero-copy slices of the buffer.
                args.push(line.slice(start..i));
            }
        }
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Option<Vec<Bytes>>, ParseError> {
        let mut buf = BytesMut::from(input);
        parse_request(&mut buf, &Limits::default())
    }

    fn strs(args: Vec<Bytes>) -> Vec<String> {
        args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect()
    }

    #[test]
    fn multibulk_and_inline() {
        let args = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap().unwrap();
        assert_eq!(strs(args), ["GET", "k"]);
        let args = parse_all(b"SET k \"a b\\x41\\n\" 'c\\'d'\r\n").unwrap().unwrap();
        assert_eq!(strs(args), ["SET", "k", "a bA\n", "c'd"]);
        assert_eq!(parse_all(b"\r\n").unwrap(), None);
        assert_eq!(parse_all(b"*0\r\n").unwrap(), None);
        assert_eq!(parse_all(b"*-1\r\n").unwrap(), None);
    }

    #[test]
    fn protocol_errors_use_redis_wording() {
        let err = |input: &[u8]| match parse_all(input) {
            Err(ParseError::Protocol(text)) => text,
            other => panic!("{input:?}: {other:?}"),
        };
        assert_eq!(err(b"*abc\r\n"), "invalid multibulk length");
        assert_eq!(err(b"*99999999999\r\n"), "invalid multibulk length");
        assert_eq!(err(b"*1\r\n$-1\r\n"), "invalid bulk length");
        assert_eq!(err(b"*1\r\n$999999999999\r\n"), "invalid bulk length");
        assert_eq!(err(b"*1\r\n:1\r\n"), "expected '$', got ':'");
        assert_eq!(err(b"GET \"open\r\n"), "unbalanced quotes in request");
        assert_eq!(err(b"GET \"a\"b\r\n"), "unbalanced quotes in request");
        assert_eq!(err(&vec![b'a'; 70 * 1024]), "too big inline request");
        let mut long_header = b"*".to_vec();
        long_header.extend(vec![b'1'; 70 * 1024]);
        assert_eq!(err(&long_header), "too big mbulk count string");
    }

    #[test]
    fn every_prefix_of_a_pipeline_is_incomplete_then_completes() {
        let pipeline = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nPING\r\n*1\r\n$4\r\nPING\r\n";
        for split in 0..pipeline.len() {
            let mut buf = BytesMut::from(&pipeline[..split]);
            let mut parsed = Vec::new();
            loop {
                match parse_request(&mut buf, &Limits::default()) {
                    Ok(Some(args)) => parsed.push(strs(args)),
                    Ok(None) => {}
                    Err(ParseError::Incomplete) => break,
                    Err(e) => panic!("split {split}: {e}"),
                }
            }
            buf.extend_from_slice(&pipeline[split..]);
            while let Ok(Some(args)) = parse_request(&mut buf, &Limits::default()) {
                parsed.push(strs(args));
            }
            assert_eq!(
                parsed,
                [vec!["SET", "k", "hello"], vec!["PING"], vec!["PING"]],
                "split {split}"
            );
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn arguments_are_slices_of_the_read_buffer() {
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n"[..]);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let args = parse_request(&mut buf, &Limits::default()).unwrap().unwrap();
        for arg in args {
            assert!(range.contains(&(arg.as_ptr() as usize)), "copied argument");
        }
    }

    /// A request as a client library encodes it.
    fn encode(args: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Feeds `input` in chunks of the given sizes, as reads would deliver
    /// it, and collects every request parsed (or the first error).
    fn feed(input: &[u8], chunks: &[usize]) -> Result<Vec<Vec<Bytes>>, ParseError> {
        let mut buf = BytesMut::new();
        let mut parsed = Vec::new();
        let mut rest = input;
        let mut sizes = chunks.iter().cycle();
        while !rest.is_empty() {
            let take = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
            buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            loop {
                match parse_request(&mut buf, &Limits::default()) {
                    Ok(Some(args)) => parsed.push(args),
                    Ok(None) if buf.is_empty() => break,
                    Ok(None) => {}
                    Err(ParseError::Incomplete) => break,
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(parsed)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Whatever the bytes and however the reads split them, a pipeline
        /// of requests parses back to exactly what was sent.
        #[test]
        fn pipelines_parse_back_whatever_the_split(
            requests in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..40), 1..6),
                1..5,
            ),
            chunks in proptest::collection::vec(1usize..64, 1..8),
        ) {
            let input: Vec<u8> = requests.iter().flat_map(|r| encode(r)).collect();
            let parsed = feed(&input, &chunks).unwrap();
            let parsed: Vec<Vec<Vec<u8>>> =
                parsed.into_iter().map(|r| r.into_iter().map(|a| a.to_vec()).collect()).collect();
            proptest::prop_assert_eq!(parsed, requests);
        }

        /// A request cut short anywhere is incomplete, never an error or a
        /// wrong request.
        #[test]
        fn truncated_requests_are_incomplete(
            args in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..40), 1..6),
            cut in proptest::num::usize::ANY,
        ) {
            let input = encode(&args);
            let cut = cut % input.len();
            let mut buf = BytesMut::from(&input[..cut]);
            let result = parse_request(&mut buf, &Limits::default());
            proptest::prop_assert!(
                matches!(result, Err(ParseError::Incomplete)) || (cut == 0 && buf.is_empty()),
                "{:?} after {} of {} bytes", result, cut, input.len()
            );
        }

        /// Arbitrary bytes (biased towards RESP's own characters) never
        /// panic, and every step either consumes input, waits for more, or
        /// names a protocol error.
        #[test]
        fn garbage_is_consumed_or_refused(
            input in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"*$:+-\r\n0123456789 \"'\\x".to_vec()),
                    proptest::num::u8::ANY,
                ],
                0..256,
            ),
        ) {
            let mut buf = BytesMut::from(&input[..]);
            loop {
                let before = buf.len();
                match parse_request(&mut buf, &Limits::default()) {
                    Ok(_) if buf.is_empty() => break,
                    Ok(_) => proptest::prop_assert!(buf.len() < before, "no progress on {:?}", buf),
                    Err(ParseError::Incomplete) => {
                        proptest::prop_assert_eq!(buf.len(), before);
                        break;
                    }
                    Err(ParseError::Protocol(_)) => break,
                }
            }
        }
    }
}

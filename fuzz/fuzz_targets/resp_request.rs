//! Feeds arbitrary bytes to the Redis-protocol request parser, split into
//! reads at points the input chooses, and checks what must always hold: no
//! panic, progress on every step, and the requests found in one pass are
//! the same whatever the split.

#![no_main]

use bytes::BytesMut;
use cairn_proto::resp::{Limits, ParseError, parse_request};
use libfuzzer_sys::fuzz_target;

/// Every request parsed from `input` delivered in `chunk`-byte reads,
/// stopping at the first protocol error.
fn parse_all(input: &[u8], chunk: usize) -> (Vec<Vec<Vec<u8>>>, bool) {
    let limits = Limits::default();
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            match parse_request(&mut buf, &limits) {
                Ok(Some(args)) => requests.push(args.iter().map(|a| a.to_vec()).collect()),
                Ok(None) if buf.is_empty() => break,
                Ok(None) => assert!(buf.len() < before, "an empty request consumed nothing"),
                Err(ParseError::Incomplete) => {
                    assert_eq!(buf.len(), before, "incomplete input was consumed");
                    break;
                }
                Err(ParseError::Protocol(_)) => return (requests, true),
            }
        }
    }
    (requests, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let (whole, whole_failed) = parse_all(input, input.len());
    let (pieces, pieces_failed) = parse_all(input, usize::from(split));
    assert_eq!(whole_failed, pieces_failed, "an error depends on how reads split the input");
    assert_eq!(whole, pieces, "requests depend on how reads split the input");
});

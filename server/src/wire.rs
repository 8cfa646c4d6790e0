//! Encoding of the server's own types inside protobuf `bytes` fields.
//!
//! Raft messages and forwarded shard requests travel between nodes of the
//! same version as postcard, a compact serde format; the protobuf envelope
//! (see `cairn-proto`) carries the group id and routing.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Encodes `value` for the wire.
pub fn encode<T: Serialize>(value: &T) -> Result<Bytes> {
    let failed = |e: postcard::Error| Error::Wire(format!("encode: {e}"));
    // Sized first: growing the buffer as it is written would copy it over
    // and over (every Raft message passes through here).
    let mut out = Vec::with_capacity(encoded_len(value)?);
    postcard::to_io(value, &mut out).map_err(failed)?;
    Ok(Bytes::from(out))
}

/// How many bytes [`encode`] makes of `value`, counted without encoding it.
pub fn encoded_len<T: Serialize>(value: &T) -> Result<usize> {
    postcard::experimental::serialized_size(value).map_err(|e| Error::Wire(format!("encode: {e}")))
}

/// Decodes a value encoded by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Wire(format!("decode: {e}")))
}
